"""``physics_answer`` (Quanta's own): the final number of an answer, checked with its unit.

The answer's final number and unit are read as the physics domain reads them ("Final
answer: 14.4 m/s", else the last number); the reference renders from the item
(``{{item.answer}}``, e.g. ``"51.8 km/h"``, with an optional separate ``unit``). Values are
compared within ``rel_tol`` after converting units (``0.0144 km/s`` equals ``14.4 m/s``).
With ``check_dimension`` an answer in the wrong dimension, or missing a unit the
reference has, scores 0; without it the bare number is compared in the reference's unit.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from quanta.types import GraderType
from quanta_physics.answers import extract_final_answer, values_match
from tune.graders import register_grader
from tune.graders.base import Grade
from tune.graders.config import PhysicsAnswerConfig
from tune.graders.templates import TemplateError, render

if TYPE_CHECKING:
    from quanta.config import Settings


@register_grader(GraderType.PHYSICS_ANSWER)
class PhysicsAnswerGrader:
    def __init__(self, config: PhysicsAnswerConfig) -> None:
        self.config, self.name, self.type = config, config.name, str(config.type)

    @classmethod
    def from_config(cls, config: PhysicsAnswerConfig, settings: Settings) -> PhysicsAnswerGrader:
        """Unit-aware comparison needs nothing beyond its config."""
        return cls(config)

    def _reference(self, item: dict[str, Any], sample: dict[str, Any]) -> tuple[float, str]:
        text = render(self.config.reference, item, sample)
        unit = render(self.config.unit, item, sample).strip() if self.config.unit else None
        parsed = extract_final_answer(text)
        if parsed is None:
            raise TemplateError(f"the reference {text[:80]!r} holds no number")
        return parsed[0], unit if unit is not None else parsed[1]

    def grade(self, sample: dict[str, Any], item: dict[str, Any]) -> Grade:
        try:
            expected, expected_unit = self._reference(item, sample)
            text = render(self.config.input, item, sample)
        except TemplateError as exc:
            return Grade.failed("invalid_variable_error", str(exc))
        answer = extract_final_answer(text)
        if answer is None or not math.isfinite(answer[0]):
            return Grade(score=0.0)
        value, unit = answer
        if not self.config.check_dimension and (not unit or not expected_unit):
            unit = expected_unit  # the bare number, read in the reference's unit
        ok = values_match(value, unit, expected, expected_unit, self.config.rel_tol)
        if not ok and not self.config.check_dimension:
            ok = math.isclose(value, expected, rel_tol=self.config.rel_tol)
        return Grade(score=1.0 if ok else 0.0)
