"""Read the final numeric answer out of a model's text and check it against a problem.

The checker is deliberately strict about units (a bare number is wrong when a
unit is expected) and lenient about notation: ``3.2e-19``, ``3.2 × 10^-19``,
``3.2x10⁻¹⁹``, ``12,500`` and unit spellings such as ``joules`` or ``m s^-1``.
"""

# Physics text uses the multiplication sign, the minus sign and Greek letters on purpose.
# ruff: noqa: RUF001, RUF002

from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING

from quanta_physics.units import normalise_unit, to_base

if TYPE_CHECKING:
    from quanta_physics.problems import PhysicsProblem

_SUPER_DIGITS = str.maketrans("⁰¹²³⁴⁵⁶⁷⁸⁹⁻⁺", "0123456789-+")
_NUMBER = re.compile(
    r"""
    (?<![\w^.\-−/])                                   # not part of a word, exponent or unit
    (?P<mantissa>[-−+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|[-−+]?\.\d+)
    (?:
        [eE](?P<e>[-−+]?\d+)
      | \s*(?:[x×*·⋅]|\\times|\\cdot)\s*10\s*
        (?:(?:\^|\*\*)\s*\{?\s*\(?\s*(?P<pow>[-−+]?\s*\d+)\s*\)?\s*\}?|(?P<sup>[⁻⁺]?[⁰¹²³⁴⁵⁶⁷⁸⁹]+))
    )?
    """,
    re.VERBOSE,
)
_FINAL = re.compile(r"final\s+answer\s*(?:is)?\s*[:=]?", re.IGNORECASE)


def _to_float(match: re.Match[str]) -> float:
    mantissa = match.group("mantissa").replace(",", "").replace("−", "-")
    exponent = match.group("e") or match.group("pow")
    if match.group("sup"):
        exponent = match.group("sup").translate(_SUPER_DIGITS)
    if exponent is None:
        return float(mantissa)
    # Parse "3.2e-19" as one literal: multiplying by 10**-19 would add rounding error.
    return float(f"{mantissa}e{int(exponent.replace('−', '-').replace(' ', ''))}")


def _unit_after(text: str) -> str:
    """The unit written right after a number: the longest prefix of up to 4 words we know."""
    first_line = text.split("\n", 1)[0]
    first_line = re.sub(r"\\(?:text|mathrm|rm|mbox)\s*\{([^}]*)\}", r"\1", first_line)
    first_line = first_line.replace("\\,", " ").replace("\\ ", " ").replace("$", " ")
    words = first_line.split()
    for size in range(min(4, len(words)), 0, -1):
        unit = normalise_unit(" ".join(words[:size]))
        if unit:
            return unit
    # A unit glued to the number and its punctuation ("11m/s." or "30°,").
    return words[0].strip(" .,;:!?)(\"'*}") if words else ""


def _clean(text: str) -> str:
    text = re.sub(r"\\boxed\s*\{", " ", text)
    return text.replace("**", "").replace("\\(", " ").replace("\\)", " ")


def extract_final_answer(text: str) -> tuple[float, str] | None:
    """``(value, unit)`` from ``Final answer: <number> <unit>``, else the text's last number.

    The unit is canonical (``"J"``, ``"m/s"``) when recognised, the raw word otherwise,
    and ``""`` when no unit follows the number. Returns None when there is no number.
    """
    text = _clean(text)
    finals = list(_FINAL.finditer(text))
    if finals:
        segment = text[finals[-1].end():]
        line = segment.split("\n", 1)[0]
        # "Final answer: v = 11 m/s" -> look after the last "=" on the line.
        start = line.rfind("=") + 1
        match = _NUMBER.search(segment, start)
        # The number belongs to the final answer only if it follows closely (next line at most).
        if match is not None and segment[start:match.start()].count("\n") <= 1:
            return _to_float(match), _unit_after(segment[match.end():])
    matches = list(_NUMBER.finditer(text))
    if not matches:
        return None
    last = matches[-1]
    return _to_float(last), _unit_after(text[last.end():])


def values_match(value: float, unit: str, expected: float, expected_unit: str,
                 rel_tol: float = 0.02) -> bool:
    """True when value+unit equals expected+unit within ``rel_tol``, after unit conversion."""
    if not expected_unit:
        return math.isclose(value, expected, rel_tol=rel_tol, abs_tol=1e-12)
    got_unit = normalise_unit(unit) if unit else None
    want_unit = normalise_unit(expected_unit) or expected_unit
    if got_unit is None:
        return False
    got, want = to_base(value, got_unit), to_base(expected, want_unit)
    if got is None or want is None:
        return got_unit == want_unit and math.isclose(value, expected, rel_tol=rel_tol)
    if got[1] != want[1]:
        return False
    return math.isclose(got[0], want[0], rel_tol=rel_tol, abs_tol=1e-300)


def check_answer(problem: PhysicsProblem, text: str, rel_tol: float = 0.02) -> bool:
    """Whether ``text`` answers ``problem``: value within ``rel_tol`` and a matching unit."""
    answer = extract_final_answer(text)
    if answer is None:
        return False
    return values_match(answer[0], answer[1], problem.value, problem.unit, rel_tol)
