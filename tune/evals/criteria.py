"""An eval's testing criteria: OpenAI's eval graders, graded by ``tune.graders``.

An eval's grader is a fine-tuning grader (the same config, the same code as
reinforcement training's rewards) plus two fields adapted here, which never reach the
grader: ``pass_threshold``, when a score passes, and the ``id`` Quanta gives each
criterion (a run's ``per_testing_criteria_results`` and each output item's results name
it, ``<name>-<uuid>`` as OpenAI's). A criterion passes as OpenAI's eval graders define it:

- ``string_check`` at a score of 1 (it scores 0 or 1), as Quanta's ``physics_answer``;
- ``text_similarity`` at its ``pass_threshold`` (required);
- ``python``, ``score_model`` and (Quanta's extension) ``multi`` at their
  ``pass_threshold``; without one, at the middle of their range (0.5, or a score
  model's ``range``);
- ``label_model`` when the label its model answers is one of ``passing_labels``.

A criterion whose grader errored (a template naming a missing field, a crashed python
grader, a model that answered nothing readable) fails, and its item counts as errored.
"""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from quanta.config import Settings
from quanta.types import GraderType
from tune.evals.errors import EvalRequestError
from tune.graders import Grade, Grader, build_grader, grader_shape, template_fields
from tune.graders.config import MultiConfig, leaf_configs
from tune.graders.multi import MultiGrader
from tune.graders.templates import TemplateError, check_template

MAX_CRITERIA = 32
THRESHOLD_REQUIRED = frozenset({GraderType.TEXT_SIMILARITY})
THRESHOLD_ALLOWED = frozenset({GraderType.TEXT_SIMILARITY, GraderType.PYTHON,
                               GraderType.SCORE_MODEL, GraderType.MULTI})
MODEL_GRADERS = frozenset({GraderType.SCORE_MODEL, GraderType.LABEL_MODEL})


@dataclass(frozen=True)
class Criterion:
    """One testing criterion: its id, its grader's config and the score that passes."""

    id: str
    config: Any
    pass_threshold: float

    @property
    def name(self) -> str:
        return str(self.config.name)

    @property
    def type(self) -> str:
        return str(self.config.type)

    def passed(self, grade: Grade) -> bool:
        return grade.ok and grade.score >= self.pass_threshold

    def models(self) -> list[str]:
        """The models its grader asks (score_model and label_model parts)."""
        return [leaf.model for leaf in leaf_configs(self.config) if leaf.type in MODEL_GRADERS]

    def build(self, settings_for: Callable[[Any], Settings]) -> Grader:
        """Its grader, each single grader in it built with ``settings_for(its config)``
        (where a model grader asks, with which key: a multi grader's parts may ask
        models of different bases, so different servers)."""
        if isinstance(self.config, MultiConfig):
            parts = {key: build_grader(sub, settings_for(sub))
                     for key, sub in self.config.named().items()}
            return MultiGrader(self.config.name, self.config.calculate_output, parts)
        return build_grader(self.config, settings_for(self.config))

    def wire(self) -> dict[str, Any]:
        """The criterion in OpenAI's shape, as the eval stores and echoes it."""
        wire: dict[str, Any] = {**self.config.model_dump(mode="json", exclude_none=True),
                                "id": self.id}
        if self.config.type in THRESHOLD_ALLOWED:
            wire["pass_threshold"] = self.pass_threshold
        return wire

    @classmethod
    def stored(cls, wire: dict[str, Any]) -> Criterion:
        """A criterion as an eval row stores it (checked when the eval was created)."""
        return parse_criterion(wire, "testing_criteria", id=wire.get("id"))


def parse_criteria(raw: Any) -> list[Criterion]:
    """A create request's ``testing_criteria``, each given a new id (EvalRequestError,
    naming the field, for anything Quanta cannot grade with)."""
    if not isinstance(raw, list) or not raw:
        raise EvalRequestError("testing_criteria: give a list of at least one grader",
                               "testing_criteria")
    if len(raw) > MAX_CRITERIA:
        raise EvalRequestError(f"testing_criteria: at most {MAX_CRITERIA} graders",
                               "testing_criteria")
    return [parse_criterion(c, f"testing_criteria[{i}]") for i, c in enumerate(raw)]


def parse_criterion(raw: Any, param: str, id: str | None = None) -> Criterion:
    if not isinstance(raw, dict):
        raise EvalRequestError(f"{param}: expected a grader object", param)
    kind = raw.get("type")
    if kind not in set(GraderType):
        raise EvalRequestError(
            f"{param}.type: {kind!r} is no grader type Quanta has; one of "
            f"{', '.join(sorted(GraderType))}", f"{param}.type")
    grader = {k: v for k, v in raw.items() if k not in ("id", "pass_threshold")}
    try:
        config = grader_shape(grader, criterion=True)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = _param(param, grader, first.get("loc", ()))
        message = str(first.get("msg", "invalid")).removeprefix("Value error, ")
        raise EvalRequestError(f"{where}: {message}", where) from None
    for where, template, _leaf in template_fields(config, param):
        try:
            check_template(template)
        except TemplateError as exc:
            where = _brackets(where)
            raise EvalRequestError(f"{where}: {exc}", where) from None
    return Criterion(id=id or f"{config.name}-{uuid.uuid4()}", config=config,
                     pass_threshold=_threshold(raw, config, param))


def _threshold(raw: dict[str, Any], config: Any, param: str) -> float:
    kind = GraderType(config.type)
    given = raw.get("pass_threshold")
    if given is None:
        if kind in THRESHOLD_REQUIRED:
            raise EvalRequestError(f"{param}.pass_threshold: a {kind} criterion needs one",
                                   f"{param}.pass_threshold")
        if kind == GraderType.SCORE_MODEL:
            low, high = config.range
            return (low + high) / 2
        return 0.5 if kind in THRESHOLD_ALLOWED else 1.0
    if kind not in THRESHOLD_ALLOWED:
        rule = ("passes when its label is a passing label" if kind == GraderType.LABEL_MODEL
                else "passes at a score of 1")
        raise EvalRequestError(f"{param}.pass_threshold: a {kind} criterion {rule}; it takes "
                               "no pass_threshold", f"{param}.pass_threshold")
    if isinstance(given, bool) or not isinstance(given, int | float):
        raise EvalRequestError(f"{param}.pass_threshold: expected a number",
                               f"{param}.pass_threshold")
    try:
        value = float(given)
    except OverflowError:  # an integer too large for a float
        value = math.inf
    if not math.isfinite(value):
        raise EvalRequestError(f"{param}.pass_threshold: expected a finite number",
                               f"{param}.pass_threshold")
    return value


def _param(prefix: str, body: Any, loc: Sequence[Any]) -> str:
    """A pydantic error location as a path into ``body`` (``a.b[0].c``): the parts that
    are its keys or indexes (the rest name union members); a missing field names itself."""
    path, node = prefix, body
    for index, part in enumerate(loc):
        if isinstance(node, dict) and part in node:
            path, node = f"{path}.{part}", node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            path, node = f"{path}[{part}]", node[part]
        elif isinstance(node, dict) and index == len(loc) - 1 and isinstance(part, str) \
                and "[" not in part and part not in GraderType.__members__.values():
            path = f"{path}.{part}"
    return path


def _brackets(param: str) -> str:
    """``a.input.0.content`` as ``a.input[0].content``."""
    return re.sub(r"\.(\d+)(?=\.|$)", r"[\1]", param)
