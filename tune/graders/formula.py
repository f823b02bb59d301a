"""``calculate_output`` of a multi grader: a small arithmetic formula over sub-scores.

OpenAI documents ``+ - * / ^`` (``^`` is a power) and ``min max abs floor ceil exp sqrt
log``. The formula goes through the same restricted evaluator as calculation traces
(``quanta.calculator``: parsed, checked, evaluated by simpleeval, never ``eval``), with the
graders' names as its only variables.
"""

from __future__ import annotations

import math
from typing import Any

from quanta.calculator import CalculationError, check_arithmetic, evaluate_arithmetic

FUNCTIONS: dict[str, Any] = {"min": min, "max": max, "abs": abs, "floor": math.floor,
                             "ceil": math.ceil, "exp": math.exp, "sqrt": math.sqrt,
                             "log": math.log}
WHAT = "calculate_output"


class FormulaError(ValueError):
    """The formula does not parse, names an unknown variable, or fails to evaluate."""


def _python_syntax(formula: str) -> str:
    """OpenAI's ``^`` is a power (binding tighter than ``*``), Python's ``**``."""
    return formula.replace("^", "**")


def check_formula(formula: str, names: set[str]) -> None:
    """Refuse a formula that could not evaluate over these sub-score names."""
    try:
        check_arithmetic(_python_syntax(formula), dict.fromkeys(names, 0.0), FUNCTIONS, WHAT)
    except CalculationError as exc:
        raise FormulaError(str(exc)) from None


def evaluate_formula(formula: str, values: dict[str, float]) -> float:
    """The formula's value over ``values``; raises FormulaError on any failure."""
    try:
        return evaluate_arithmetic(_python_syntax(formula), values, FUNCTIONS, WHAT)
    except CalculationError as exc:
        raise FormulaError(str(exc)) from None
