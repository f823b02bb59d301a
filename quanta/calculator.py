"""Calculation traces: the syntax a model writes its arithmetic in, and the safe evaluator.

A 135M model writes the right formula and the wrong product. So an answer trained for
calculator decoding writes each calculation as an expression between ``<<`` and ``>>``,
and the value follows the closing ``>>``::

    v = u + at = <<8 + 1.6*4>>14.4 m/s

In training data the value is written out (``annotate`` makes it); at serving time the
model stops at ``>>``, the server evaluates the expression and inserts the value, and the
model goes on from there (``serve.calculator``). Expressions are unit-free arithmetic:
numbers (``1.6e-19`` too), ``+ - * / **``, parentheses, the functions in ``FUNCTIONS``
(``sin`` takes radians: ``sin(radians(30))``) and the constants ``pi`` and ``e``. A value
is written with 4 significant figures (``format_value``); one that cannot be computed is
written as ``ERROR_MARKER`` and the text goes on.

The evaluator parses with Python's ``ast`` and evaluates with simpleeval (a maintained,
AST-walking evaluator), never ``eval``: anything but numbers, operators, these names and
calls to these functions is refused before evaluation, and inputs, exponents and results
are bounded so no expression can run long or allocate much.
"""

from __future__ import annotations

import ast
import math
import re
import warnings
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

OPEN = "<<"
CLOSE = ">>"
ERROR_MARKER = "[calculation error]"
MAX_EXPRESSION_CHARS = 256
MAX_NODES = 128
MAX_EXPONENT = 1024.0
SIGNIFICANT_FIGURES = 4
MAX_CALLS = 16  # calculations per completion; after them the model writes the rest alone

FUNCTIONS: dict[str, Callable[..., float]] = {
    "sin": math.sin, "cos": math.cos, "tan": math.tan, "asin": math.asin, "acos": math.acos,
    "atan": math.atan, "atan2": math.atan2, "sinh": math.sinh, "cosh": math.cosh,
    "tanh": math.tanh, "sqrt": math.sqrt, "cbrt": math.cbrt, "exp": math.exp, "log": math.log,
    "log10": math.log10, "log2": math.log2, "radians": math.radians,
    "degrees": math.degrees, "abs": abs, "min": min, "max": max, "hypot": math.hypot,
    "floor": math.floor, "ceil": math.ceil, "round": round,
}
CONSTANTS: dict[str, float] = {"pi": math.pi, "e": math.e}

_ALLOWED_NODES = (ast.Expression, ast.BinOp, ast.UnaryOp, ast.Constant, ast.Name, ast.Call,
                  ast.Load, ast.Add, ast.Sub, ast.Mult, ast.Div, ast.Pow, ast.USub, ast.UAdd)
_CALCULATION = re.compile(re.escape(OPEN) + r"(?P<expression>[^<>\n]*?)" + re.escape(CLOSE))
# What a calculation is written with (and at least one digit); text between << and >>
# written otherwise (C++ streams, shell here-documents) is not a calculation: left alone.
_ARITHMETIC = re.compile(r"[\d\s.+\-*/()a-zA-Z_,]*")


class CalculationError(ValueError):
    """The expression is refused or cannot be evaluated; the message says why."""


def check_arithmetic(text: str, names: Mapping[str, object],
                     functions: Mapping[str, object], what: str = "the expression"
                     ) -> ast.Expression:
    """Parse ``text`` and refuse anything but numbers, + - * / **, ``names`` and calls to
    ``functions`` (by name, positional arguments only)."""
    if len(text) > MAX_EXPRESSION_CHARS:
        raise CalculationError(f"{what} is longer than {MAX_EXPRESSION_CHARS} characters")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SyntaxWarning)  # "1and 2": refused below anyway
            tree = ast.parse(text.strip(), mode="eval")
    except (SyntaxError, ValueError) as exc:
        message = exc.msg if isinstance(exc, SyntaxError) else str(exc)
        raise CalculationError(f"{what} does not parse: {message}") from None
    nodes = list(ast.walk(tree))
    if len(nodes) > MAX_NODES:
        raise CalculationError(f"{what} has more than {MAX_NODES} parts")
    for node in nodes:
        if not isinstance(node, _ALLOWED_NODES):
            raise CalculationError(f"{what} may use only numbers, + - * / ** and the "
                                   f"functions {', '.join(functions)}")
        if isinstance(node, ast.Constant) and (isinstance(node.value, bool) or not isinstance(
                node.value, int | float)):
            raise CalculationError(f"{what} may contain only numbers, not {node.value!r}")
        if isinstance(node, ast.Call):
            if not isinstance(node.func, ast.Name) or node.func.id not in functions:
                raise CalculationError(f"{what} may call only {', '.join(functions)}")
            if node.keywords:
                raise CalculationError(f"{what} passes keyword arguments")
        elif isinstance(node, ast.Name) and node.id not in names and node.id not in functions:
            raise CalculationError(f"{what} names {node.id!r}, which is not known here")
    return tree


def _power(base: float, exponent: float) -> float:
    if abs(exponent) > MAX_EXPONENT:
        raise CalculationError(f"exponent {exponent:g} is larger than {MAX_EXPONENT:g}")
    return math.pow(base, exponent)


def evaluate_arithmetic(text: str, names: Mapping[str, float] | None = None,
                        functions: Mapping[str, Callable[..., float]] | None = None,
                        what: str = "the expression") -> float:
    """The finite float value of a restricted arithmetic expression; CalculationError
    otherwise. Integers are floats here, so no operation can build a huge integer."""
    import operator

    from simpleeval import SimpleEval

    names = dict(CONSTANTS if names is None else names)
    functions = dict(FUNCTIONS if functions is None else functions)
    check_arithmetic(text, names, functions, what)
    evaluator = SimpleEval(
        operators={ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
                   ast.Div: operator.truediv, ast.Pow: _power, ast.USub: operator.neg,
                   ast.UAdd: operator.pos},
        functions=functions, names={k: float(v) for k, v in names.items()})
    try:
        result = evaluator.eval(_floats(text.strip()))
    except CalculationError:
        raise
    except Exception as exc:  # ZeroDivisionError, OverflowError, math domain errors
        raise CalculationError(f"{what} failed: {_reason(exc)}") from None
    if isinstance(result, bool) or not isinstance(result, int | float) or not math.isfinite(
            result):
        raise CalculationError(f"{what} gave {result!r}, not a finite number")
    return float(result)


def _floats(text: str) -> str:
    """Integer literals as float literals (``2**3`` -> ``2.0**3.0``) so that every operation
    is a bounded float operation."""
    tree = ast.parse(text, mode="eval")
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, int):
            node.value = float(node.value)
    return ast.unparse(tree)


def _reason(exc: Exception) -> str:
    if isinstance(exc, ZeroDivisionError):
        return "division by zero"
    if isinstance(exc, OverflowError):
        return "the result is too large"
    return str(exc) or type(exc).__name__


def evaluate(expression: str) -> float:
    """A calculation's value (the text between ``<<`` and ``>>``)."""
    return evaluate_arithmetic(expression, what="the calculation")


def format_value(value: float) -> str:
    """``value`` to 4 significant figures, as the answer checker reads it back: plain
    between 1e-4 and 1e6 (``14.4``, ``0.002236``, ``123457``), else ``1.602e-19``."""
    if value == 0:
        return "0"
    magnitude = abs(value)
    if 1e-4 <= magnitude < 1e6:
        exponent = math.floor(math.log10(magnitude))
        decimals = max(0, SIGNIFICANT_FIGURES - 1 - exponent)
        text = f"{round(value, decimals):.{decimals}f}"
        text = text.rstrip("0").rstrip(".") if "." in text else text
        return "0" if text in ("-0", "") else text
    mantissa, _, power = f"{value:.{SIGNIFICANT_FIGURES - 1}e}".partition("e")
    mantissa = mantissa.rstrip("0").rstrip(".")
    return f"{mantissa}e{int(power)}"


def result_text(expression: str) -> str:
    """What follows ``>>``: the formatted value, or the error marker."""
    try:
        return format_value(evaluate(expression))
    except CalculationError:
        return ERROR_MARKER


def annotate(expression: str) -> tuple[str, float]:
    """``<<expression>>value`` for a worked answer, and the value (raises CalculationError)."""
    value = evaluate(expression)
    return f"{OPEN}{expression}{CLOSE}{format_value(value)}", value


@dataclass(frozen=True)
class Calculation:
    """One ``<<expression>>`` in a text and the value text written after it."""

    expression: str
    written: str  # the text right after ">>" up to the next space, newline or "<<"
    start: int
    end: int


def calculations(text: str) -> list[Calculation]:
    """Every closed calculation in ``text``, in order."""
    found = []
    for match in _CALCULATION.finditer(text):
        expression = match.group("expression")
        if not _ARITHMETIC.fullmatch(expression) or not any(c.isdigit() for c in expression):
            continue
        rest = text[match.end():]
        written = re.match(r"[^\s<]*", rest)
        value = written.group(0).rstrip(".,;:)") if written else ""
        found.append(Calculation(match.group("expression"), value, match.start(),
                                 match.end()))
    return found


def has_traces(text: str) -> bool:
    """Whether ``text`` contains at least one closed calculation."""
    return bool(calculations(text))


def open_expression(text: str) -> str | None:
    """The expression of a calculation opened and not yet closed at the end of ``text``."""
    start = text.rfind(OPEN)
    if start < 0 or CLOSE in text[start + len(OPEN):]:
        return None
    return text[start + len(OPEN):]


def trace_problems(text: str) -> list[str]:
    """What is wrong with the calculations in a training answer: an expression the
    evaluator refuses, a value that is not the one the server would insert, a calculation
    left open. Empty when the traces are sound."""
    problems = []
    found = calculations(text)
    for calc in found:
        try:
            value = evaluate(calc.expression)
        except CalculationError as exc:
            problems.append(f"{OPEN}{calc.expression}{CLOSE}: {exc}")
            continue
        expected = format_value(value)
        if calc.written != expected:
            problems.append(f"{OPEN}{calc.expression}{CLOSE} is followed by "
                            f"{calc.written!r}; the server inserts {expected!r}")
    if found and OPEN in text[found[-1].end:]:
        problems.append(f"a calculation opened with {OPEN} is never closed with {CLOSE}")
    return problems


def insertion(text: str) -> str:
    """What decoding appends when generation stops at ``>>``: the close and the value of
    the calculation left open (the error marker when it cannot be computed)."""
    expression = open_expression(text)
    return CLOSE + (result_text(expression) if expression is not None else "")


# -- decoding -------------------------------------------------------------------------------
#
# Calculator decoding, engine-independent: the loop drives a ``CompletionSource`` (one
# raw-prompt completion, streamed) and yields what the client sees. Each segment is
# generated with ``>>`` as an extra stop string; when a segment stops there, the open
# calculation is evaluated, ``>>`` and the value are appended, and the next segment
# continues from the prompt plus everything so far (an engine's prefix cache makes that
# cheap). After ``max_calls`` calculations ``>>`` is no longer a stop and the model
# writes the rest by itself. Usage: ``prompt_tokens`` is the first segment's prompt,
# ``completion_tokens`` the sum of every segment's generated tokens (inserted values are
# not generated, so not counted).

@dataclass(frozen=True)
class Delta:
    """A piece of a streamed completion: text, or the end of it (finish and usage)."""

    text: str = ""
    finish_reason: str | None = None
    stop_reason: str | int | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None

    @property
    def is_end(self) -> bool:
        return self.finish_reason is not None


class CompletionSource(Protocol):
    """One streamed raw-prompt completion; the last Delta has ``finish_reason`` set and,
    where the engine reports it, the token counts."""

    def __call__(self, prompt: str, max_tokens: int | None,
                 stop: Sequence[str]) -> AsyncIterator[Delta]: ...


class EngineError(Exception):
    """The engine refused or failed a segment; carries its own status and body."""

    def __init__(self, status: int, body: bytes, headers: list[tuple[bytes, bytes]] | None = None
                 ) -> None:
        super().__init__(f"engine answered {status}")
        self.status, self.body, self.headers = status, body, headers or []


async def completion_deltas(payloads: AsyncIterator[Mapping[str, Any]],
                            failure: Callable[[Mapping[str, Any]], Exception]
                            ) -> AsyncIterator[Delta]:
    """A ``CompletionSource``'s deltas from the decoded events of an OpenAI completions
    stream: the text as it comes, then the end with the finish reason and usage (None
    where the stream reports none). An error event raises ``failure(event)``."""
    finish, stop_reason, usage = None, None, {}
    async for payload in payloads:
        if "error" in payload:
            raise failure(payload)
        usage = payload.get("usage") or usage
        for choice in payload.get("choices") or []:
            if choice.get("text"):
                yield Delta(text=choice["text"])
            if choice.get("finish_reason"):
                finish, stop_reason = choice["finish_reason"], choice.get("stop_reason")
    yield Delta(finish_reason=finish or "stop", stop_reason=stop_reason,
                prompt_tokens=usage.get("prompt_tokens"),
                completion_tokens=usage.get("completion_tokens"))


def _closed_a_calculation(end: Delta, text: str) -> bool:
    """Whether the segment stopped at the calculator's ``>>`` rather than at the end of the
    answer or a client's stop. vLLM names the stop string it met; for engines that do not
    (llama-cpp-python), a calculation left open at the end of the text tells."""
    if end.finish_reason != "stop":
        return False
    if end.stop_reason is not None:
        return end.stop_reason == CLOSE
    return open_expression(text) is not None


async def calculator_decode(prompt: str, source: CompletionSource, *,
                            max_tokens: int | None, stop: Sequence[str] = (),
                            max_calls: int = MAX_CALLS) -> AsyncIterator[Delta]:
    """Yield text Deltas (generated or inserted) and, last, one end Delta with the usage."""
    text = ""
    calls = 0
    prompt_tokens: int | None = None
    completion_tokens = 0
    while True:
        stops = [*stop, CLOSE] if calls < max_calls else list(stop)
        remaining = None if max_tokens is None else max_tokens - completion_tokens
        segment, end = "", Delta(finish_reason="stop")
        async for delta in source(prompt + text, remaining, stops):
            if delta.text:
                segment += delta.text
                yield Delta(text=delta.text)
            if delta.is_end:
                end = delta
        text += segment
        if prompt_tokens is None:
            prompt_tokens = end.prompt_tokens
        completion_tokens += end.completion_tokens or 0
        out_of_tokens = remaining is not None and (end.completion_tokens or 0) >= remaining
        # The prompt may end inside a calculation (a raw prompt continuing an answer).
        if calls >= max_calls or out_of_tokens or not _closed_a_calculation(end,
                                                                             prompt + text):
            finish = "length" if out_of_tokens and end.finish_reason != "stop" else \
                end.finish_reason
            yield Delta(finish_reason=finish, prompt_tokens=prompt_tokens,
                        completion_tokens=completion_tokens)
            return
        inserted = insertion(prompt + text)
        calls += 1
        text += inserted
        yield Delta(text=inserted)


def calculator_flag(config: Mapping[str, Any] | None) -> bool:
    """Whether an adapter's registry config says it was trained with calculation traces."""
    return bool((config or {}).get("calculator"))
