"""Graders: score a model's answer to a dataset row, as OpenAI's fine-tuning graders do.

One module per grader type behind ``tune.graders.base.Grader``: ``string_check``,
``text_similarity``, ``python`` (sandboxed in ``sandbox``), ``score_model``,
``label_model`` (an eval's criterion, or part of a multi grader), ``multi`` and Quanta's
``physics_answer``. ``config`` holds the wire shapes; :func:`build_grader` turns
a validated config into the grader its module registered for that type
(``@register_grader``; another package adds one through the ``quanta.graders``
entry-point group, ``quanta.plugins``); :func:`run_grader` answers ``/graders/run``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from pydantic import TypeAdapter

from quanta.config import Settings, get_settings
from quanta.plugins import Plugins
from quanta.types import GraderType
from tune.graders.base import Grade, Grader, GraderClass
from tune.graders.config import EvalGraderConfig, GraderConfig, MultiConfig, leaf_configs
from tune.graders.templates import check_template, sample_from_text

_ADAPTER: TypeAdapter[Any] = TypeAdapter(GraderConfig)
_EVAL_ADAPTER: TypeAdapter[Any] = TypeAdapter(EvalGraderConfig)

GRADERS: Plugins[GraderClass] = Plugins("grader type", __name__, "quanta.graders")
register_grader = GRADERS.register


def parse_grader(data: Any, *, criterion: bool = False) -> Any:
    """Validate a grader's JSON into its config (pydantic ``ValidationError`` on bad input,
    ``TemplateError`` for a template variable outside ``item`` and ``sample``);
    ``criterion``: as an eval's testing criterion (which may be a ``label_model``)."""
    config = grader_shape(data, criterion=criterion)
    check_templates(config)
    return config


def grader_shape(data: Any, *, criterion: bool = False) -> Any:
    """A grader's config, its shape validated but not its templates (a caller that names
    the template at fault checks each of ``template_fields``)."""
    return (_EVAL_ADAPTER if criterion else _ADAPTER).validate_python(data)


def check_templates(config: Any) -> None:
    """Refuse template variables outside ``item`` and ``sample`` (TemplateError)."""
    for template in templates_of(config):
        check_template(template)


def template_fields(config: Any, param: str = "grader") -> Iterator[tuple[str, str, Any]]:
    """Every template a grader renders, as ``(its path in the request, the template, the
    single grader rendering it)``: checked before any sample is graded."""
    if isinstance(config, MultiConfig):
        graders = config.graders
        named = graders.items() if isinstance(graders, dict) else enumerate(graders)
        for key, leaf in named:
            yield from template_fields(leaf, f"{param}.graders.{key}")
    elif config.type in (GraderType.SCORE_MODEL, GraderType.LABEL_MODEL):
        for index, message in enumerate(config.input):
            yield f"{param}.input.{index}.content", message.text(), config
    else:
        for key in ("input", "reference", "unit"):
            template = getattr(config, key, None)
            if isinstance(template, str):
                yield f"{param}.{key}", template, config


def templates_of(config: Any) -> list[str]:
    """Every template string a grader renders."""
    return [template for _, template, _ in template_fields(config)]


def score_models_of(config: Any) -> list[str]:
    """The models a grader asks, its score_model and label_model parts' (so the caller can
    check the tenant may use them)."""
    return [leaf.model for leaf in leaf_configs(config)
            if leaf.type in (GraderType.SCORE_MODEL, GraderType.LABEL_MODEL)]


def build_grader(config: Any, settings: Settings | None = None) -> Grader:
    """The grader a validated config describes (registered for its ``type``)."""
    return GRADERS.get(config.type).from_config(config, settings or get_settings())


def grade_sample(config: Any, model_sample: str, item: dict[str, Any] | None,
                 settings: Settings | None = None) -> tuple[Grade, float]:
    """One sample graded, and the seconds it took (what ``/graders/run`` computes, in the
    API's grader pool, ``tune.graders.pool``)."""
    grader = build_grader(config, settings)
    started = time.monotonic()
    grade: Grade = grader.grade(sample_from_text(model_sample), item or {})
    return grade, time.monotonic() - started


def run_response(config: Any, grade: Grade, seconds: float) -> dict[str, Any]:
    """``POST /v1/fine_tuning/alpha/graders/run``'s answer (OpenAI's RunGraderResponse)."""
    usage = grade.token_usage
    return {
        "reward": grade.score,
        "metadata": {
            "name": config.name, "type": str(config.type),
            "errors": grade.openai_errors(),
            "execution_time": seconds,
            "scores": {config.name: grade.score, **grade.sub_rewards},
            "token_usage": usage.get("total_tokens") if usage else None,
            "sampled_model_name": grade.sampled_model_name,
        },
        "sub_rewards": grade.sub_rewards,
        "model_grader_token_usage_per_model": (
            {grade.sampled_model_name or "unknown": usage} if usage else {}),
    }


def run_grader(config: Any, model_sample: str, item: dict[str, Any] | None,
               settings: Settings | None = None) -> dict[str, Any]:
    """Grade one sample here, in this process, and answer as ``/graders/run`` does."""
    return run_response(config, *grade_sample(config, model_sample, item, settings))


__all__ = ["GRADERS", "Grade", "Grader", "build_grader", "check_templates", "grade_sample",
           "grader_shape", "parse_grader", "register_grader", "run_grader", "run_response",
           "sample_from_text", "score_models_of", "template_fields", "templates_of"]
