"""``multi``: named graders, each run on the sample, combined by ``calculate_output``.

Each sub-grader's score is a variable of the formula (``tune.graders.formula``); the
sub-scores come back as ``sub_rewards``. A sub-grader's error flags are kept (its score
counts as 0); a formula that fails to evaluate scores 0 with ``formula_parse_error``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from quanta.types import GraderType
from tune.graders import build_grader, register_grader
from tune.graders.base import Grade, Grader
from tune.graders.config import MultiConfig
from tune.graders.formula import FormulaError, evaluate_formula

if TYPE_CHECKING:
    from quanta.config import Settings


@register_grader(GraderType.MULTI)
class MultiGrader:
    def __init__(self, name: str, formula: str, graders: dict[str, Grader]) -> None:
        self.name, self.type = name, "multi"
        self.formula, self.graders = formula, graders

    @classmethod
    def from_config(cls, config: MultiConfig, settings: Settings) -> MultiGrader:
        """Each part is built as a top-level grader would be, with the same settings."""
        graders = {key: build_grader(sub, settings) for key, sub in config.named().items()}
        return cls(config.name, config.calculate_output, graders)

    def grade(self, sample: dict[str, Any], item: dict[str, Any]) -> Grade:
        grades = {key: grader.grade(sample, item) for key, grader in self.graders.items()}
        values = {key: grade.score for key, grade in grades.items()}
        errors: dict[str, Any] = {}
        for grade in grades.values():
            errors.update({k: v for k, v in grade.errors.items() if v})
        try:
            score = evaluate_formula(self.formula, values)
        except FormulaError as exc:
            errors.update({"formula_parse_error": True, "details": str(exc)})
            score = 0.0
        usage: dict[str, int] = {}
        for grade in grades.values():
            for key, count in (grade.token_usage or {}).items():
                usage[key] = usage.get(key, 0) + count
        return Grade(score=score, errors=errors, sub_rewards=values, token_usage=usage or None)
