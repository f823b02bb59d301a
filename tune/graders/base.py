"""The grader interface: ``grade(sample, item) -> Grade``, one module per grader type.

A grader never raises for a bad sample: a template that names a missing field, a python
grader that crashes or hangs, a model grader that answers nonsense all give a score of 0
with the matching OpenAI error flag set, so one bad sample costs one reward, not a job.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, Self

from quanta.data.text import as_text

if TYPE_CHECKING:
    from quanta.config import Settings

# OpenAI's ``metadata.errors`` of a grader run: every flag is present in a response.
ERROR_FLAGS = ("formula_parse_error", "sample_parse_error", "truncated_observation_error",
               "unresponsive_reward_error", "invalid_variable_error", "other_error",
               "python_grader_server_error", "python_grader_runtime_error",
               "model_grader_server_error", "model_grader_refusal_error",
               "model_grader_parse_error")
ERROR_DETAILS = ("python_grader_server_error_type", "python_grader_runtime_error_details",
                 "model_grader_server_error_details")


@dataclass
class Grade:
    """One sample's reward, with what went wrong (flag -> True, detail -> text)."""

    score: float
    errors: dict[str, Any] = field(default_factory=dict)
    sub_rewards: dict[str, float] = field(default_factory=dict)
    token_usage: dict[str, int] | None = None
    sampled_model_name: str | None = None
    # What the grader read beyond its score (a label model's label), for an eval's result.
    details: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def failed(cls, flag: str, detail: str | None = None, detail_key: str | None = None
               ) -> Grade:
        errors: dict[str, Any] = {flag: True}
        if detail_key:
            errors[detail_key] = detail
        elif detail:
            errors["details"] = detail
        return cls(score=0.0, errors=errors)

    @property
    def ok(self) -> bool:
        return not any(self.errors.get(flag) for flag in ERROR_FLAGS)

    def problem(self) -> str | None:
        """A one-line description of the error, for job events."""
        flags = [flag for flag in ERROR_FLAGS if self.errors.get(flag)]
        if not flags:
            return None
        details = [as_text(str(v)) for k, v in self.errors.items()
                   if k not in ERROR_FLAGS and v and k != "python_grader_server_error_type"]
        return ", ".join(flags) + (f": {details[0][:300]}" if details else "")

    def openai_errors(self) -> dict[str, Any]:
        """``metadata.errors`` as OpenAI answers it: every flag and detail, set or not."""
        out: dict[str, Any] = {flag: bool(self.errors.get(flag)) for flag in ERROR_FLAGS}
        for key in ERROR_DETAILS:  # a grader's own words: escaped where they are not text
            value = self.errors.get(key)
            out[key] = as_text(value) if isinstance(value, str) else value
        return out


class ComparisonGrader:
    """A grader that scores the rendered ``input`` against the rendered ``reference``;
    subclasses say how (:meth:`compare`)."""

    def __init__(self, config: Any) -> None:
        self.config, self.name, self.type = config, config.name, str(config.type)

    @classmethod
    def from_config(cls, config: Any, settings: Settings) -> Self:
        """A comparison needs nothing beyond its config."""
        return cls(config)

    def compare(self, given: str, reference: str) -> float:
        raise NotImplementedError

    def grade(self, sample: dict[str, Any], item: dict[str, Any]) -> Grade:
        from tune.graders.templates import TemplateError, render

        try:
            given = render(self.config.input, item, sample)
            reference = render(self.config.reference, item, sample)
        except TemplateError as exc:
            return Grade.failed("invalid_variable_error", str(exc))
        return Grade(score=self.compare(given, reference))


class Grader(Protocol):
    """Scores one model answer (``sample``) to one dataset row (``item``)."""

    name: str
    type: str

    def grade(self, sample: dict[str, Any], item: dict[str, Any]) -> Grade:
        ...


class GraderClass(Protocol):
    """What ``tune.graders.register_grader`` files under a grader type: builds the grader
    from its validated config and the settings it may need (sandbox limits, model URL)."""

    def from_config(self, config: Any, settings: Settings) -> Grader:
        ...
