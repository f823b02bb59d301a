"""``calculate_output`` of a multi grader: a small arithmetic formula over sub-scores.

OpenAI documents ``+ - * / ^`` (``^`` is a power) and ``min max abs floor ceil exp sqrt
log``. The formula is parsed by simpleeval (a maintained, AST-based evaluator), never by
``eval``: names other than the graders' and functions other than these are refused.
"""

from __future__ import annotations

import ast
import math
from typing import Any

FUNCTIONS: dict[str, Any] = {"min": min, "max": max, "abs": abs, "floor": math.floor,
                             "ceil": math.ceil, "exp": math.exp, "sqrt": math.sqrt,
                             "log": math.log}


class FormulaError(ValueError):
    """The formula does not parse, names an unknown variable, or fails to evaluate."""


def _python_syntax(formula: str) -> str:
    """OpenAI's ``^`` is a power (binding tighter than ``*``), Python's ``**``."""
    return formula.replace("^", "**")


def check_formula(formula: str, names: set[str]) -> None:
    """Refuse a formula that could not evaluate over these sub-score names."""
    try:
        tree = ast.parse(_python_syntax(formula), mode="eval")
    except SyntaxError as exc:
        raise FormulaError(f"calculate_output does not parse: {exc.msg}") from None
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
                raise FormulaError("calculate_output may call only "
                                   f"{', '.join(FUNCTIONS)}")
        elif isinstance(node, ast.Name) and node.id not in names and node.id not in FUNCTIONS:
            raise FormulaError(f"calculate_output names {node.id!r}, which is not one of the "
                               f"graders ({', '.join(sorted(names))})")
        elif isinstance(node, ast.Attribute | ast.Subscript | ast.Lambda | ast.Compare
                        | ast.comprehension | ast.Starred):
            raise FormulaError("calculate_output may use only numbers, grader names, "
                               "+ - * / ^ and the functions " + ", ".join(FUNCTIONS))


def evaluate_formula(formula: str, values: dict[str, float]) -> float:
    """The formula's value over ``values``; raises FormulaError on any failure."""
    from simpleeval import SimpleEval

    check_formula(formula, set(values))
    evaluator = SimpleEval(names=dict(values), functions=FUNCTIONS)
    try:
        result = evaluator.eval(_python_syntax(formula))
    except Exception as exc:  # ZeroDivisionError, simpleeval's limits, math domain errors
        raise FormulaError(f"calculate_output failed: {type(exc).__name__}: {exc}") from None
    if isinstance(result, bool) or not isinstance(result, int | float) or not math.isfinite(
            result):
        raise FormulaError(f"calculate_output gave {result!r}, not a finite number")
    return float(result)
