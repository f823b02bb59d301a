"""Grader configurations as OpenAI's fine-tuning API spells them, plus ``physics_answer``.

These are the wire shapes (``method.reinforcement.grader`` and the ``/graders/run`` and
``/graders/validate`` bodies), validated once by pydantic; each grader module turns its
config into a scorer. Fields OpenAI defines but Quanta cannot honour are refused with a
400 naming them (``cosine`` and ``meteor`` similarity, image or audio inputs), never
silently ignored.
"""

from __future__ import annotations

import ast
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from quanta.types import GraderType

MAX_SOURCE_BYTES = 256 * 1024  # OpenAI's limit for a python grader's source
MAX_TEMPLATE_CHARS = 64 * 1024
MAX_SAMPLE_CHARS = 100_000  # /graders/run's model_sample


class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=256)


Template = Annotated[str, Field(max_length=MAX_TEMPLATE_CHARS)]


class StringCheckConfig(_Config):
    type: Literal[GraderType.STRING_CHECK]
    input: Template
    reference: Template
    operation: Literal["eq", "ne", "like", "ilike"]


SIMILARITY_METRICS = ("fuzzy_match", "bleu", "gleu", "rouge_1", "rouge_2", "rouge_3",
                      "rouge_4", "rouge_5", "rouge_l")
UNSUPPORTED_METRICS = {
    "cosine": "needs OpenAI's embedding model (OpenAI offers it for evals only)",
    "meteor": "needs the WordNet corpus, which Quanta does not download",
}


class TextSimilarityConfig(_Config):
    type: Literal[GraderType.TEXT_SIMILARITY]
    input: Template
    reference: Template
    evaluation_metric: str

    @field_validator("evaluation_metric")
    @classmethod
    def _metric(cls, value: str) -> str:
        if value in UNSUPPORTED_METRICS:
            raise ValueError(f"'{value}' is not supported by Quanta: "
                             f"{UNSUPPORTED_METRICS[value]}")
        if value not in SIMILARITY_METRICS:
            raise ValueError(f"expected one of {', '.join(SIMILARITY_METRICS)}, got {value!r}")
        return value


class PythonConfig(_Config):
    type: Literal[GraderType.PYTHON]
    source: str = Field(min_length=1)
    image_tag: str | None = Field(None, max_length=64)  # accepted; Quanta has one image

    @field_validator("source")
    @classmethod
    def _source(cls, value: str) -> str:
        """Parsed, never run, here: the code runs only inside the sandbox."""
        if len(value.encode()) > MAX_SOURCE_BYTES:
            raise ValueError(f"the source must be under {MAX_SOURCE_BYTES // 1024} kB")
        try:
            tree = ast.parse(value)
        except SyntaxError as exc:
            raise ValueError(f"the source does not parse: {exc.msg} (line {exc.lineno})") from None
        grades = [node for node in tree.body
                  if isinstance(node, ast.FunctionDef) and node.name == "grade"]
        if not grades:
            raise ValueError("the source must define a top-level function grade(sample, item)")
        args = grades[-1].args
        if len(args.posonlyargs) + len(args.args) != 2:
            raise ValueError("grade must take exactly two arguments: grade(sample, item)")
        return value


class MessageConfig(BaseModel):
    """One message of a score_model grader's prompt (text content only)."""

    model_config = ConfigDict(extra="forbid")

    role: Literal["user", "assistant", "system", "developer"]
    content: str | dict[str, Any] | list[str | dict[str, Any]]
    type: Literal["message"] | None = None

    def text(self) -> str:
        """The content as one string; image and audio parts are refused."""
        parts = self.content if isinstance(self.content, list) else [self.content]
        texts = []
        for part in parts:
            if isinstance(part, str):
                texts.append(part)
            elif part.get("type") in ("input_text", "output_text") and isinstance(
                    part.get("text"), str):
                texts.append(part["text"])
            else:
                raise ValueError(f"content part of type {part.get('type')!r} is not supported "
                                 "by Quanta's score_model grader (text only)")
        return "\n".join(texts)

    @model_validator(mode="after")
    def _text_only(self) -> MessageConfig:
        self.text()
        return self


class SamplingParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    seed: int | None = None
    top_p: float | None = Field(None, ge=0, le=1)
    temperature: float | None = Field(None, ge=0, le=2)
    max_completions_tokens: int | None = Field(None, ge=1, le=4096)
    reasoning_effort: str | None = None  # accepted; the served models do not reason


class ScoreModelConfig(_Config):
    type: Literal[GraderType.SCORE_MODEL]
    model: str = Field(min_length=1, max_length=255)
    input: list[MessageConfig] = Field(min_length=1, max_length=64)
    range: list[float] = Field(default_factory=lambda: [0.0, 1.0])
    sampling_params: SamplingParams | None = None

    @field_validator("range")
    @classmethod
    def _range(cls, value: list[float]) -> list[float]:
        if len(value) != 2 or not value[0] < value[1]:
            raise ValueError("range must be [min, max] with min < max")
        return value


MAX_LABELS = 64


class LabelModelConfig(_Config):
    """OpenAI's ``label_model``: a model Quanta serves reads the prompt (``input``,
    templated) and answers one of ``labels``; the sample passes (score 1) when that label
    is one of ``passing_labels``. An eval's criterion, or a part of a multi grader, as
    OpenAI allows it."""

    type: Literal[GraderType.LABEL_MODEL]
    model: str = Field(min_length=1, max_length=255)
    input: list[MessageConfig] = Field(min_length=1, max_length=64)
    labels: list[Annotated[str, Field(min_length=1, max_length=256)]] = Field(
        min_length=1, max_length=MAX_LABELS)
    passing_labels: list[str] = Field(min_length=1, max_length=MAX_LABELS)

    @model_validator(mode="after")
    def _labels(self) -> LabelModelConfig:
        if len(set(self.labels)) != len(self.labels):
            raise ValueError("labels must be distinct")
        unknown = [label for label in self.passing_labels if label not in self.labels]
        if unknown:
            raise ValueError(f"passing_labels must be a subset of labels: "
                             f"{', '.join(map(repr, unknown))} is not a label")
        return self


class PhysicsAnswerConfig(_Config):
    """Quanta's grader: the sample's final number against a reference, units converted.

    ``reference`` renders to a value with its unit (``"14.4 m/s"``); ``unit`` may carry the
    unit separately (``{{item.unit}}``). With ``check_dimension`` (the default) an answer
    in a unit of another dimension, or with no unit where one is expected, scores 0.
    """

    type: Literal[GraderType.PHYSICS_ANSWER]
    input: Template = "{{sample.output_text}}"
    reference: Template = "{{item.answer}}"
    unit: Template | None = None
    rel_tol: float = Field(0.02, gt=0, le=1)
    check_dimension: bool = True


SingleGraderConfig = Annotated[
    StringCheckConfig | TextSimilarityConfig | PythonConfig | ScoreModelConfig
    | LabelModelConfig | PhysicsAnswerConfig,
    Field(discriminator="type"),
]


class MultiConfig(_Config):
    """Named graders combined by ``calculate_output`` (``+ - * / ^``, min max abs floor ceil
    exp sqrt log). OpenAI's examples key the graders by name; a list uses each one's name."""

    type: Literal[GraderType.MULTI]
    graders: dict[str, SingleGraderConfig] | list[SingleGraderConfig] = Field(min_length=1,
                                                                          max_length=16)
    calculate_output: str = Field(min_length=1, max_length=1024)

    def named(self) -> dict[str, Any]:
        if isinstance(self.graders, dict):
            return self.graders
        return {g.name: g for g in self.graders}

    @model_validator(mode="after")
    def _formula(self) -> MultiConfig:
        from tune.graders.formula import check_formula

        check_formula(self.calculate_output, set(self.named()))
        return self


def leaf_configs(config: Any) -> list[Any]:
    """The single graders a grader is made of: a multi grader's parts, else itself (OpenAI's
    multi graders do not nest)."""
    return list(config.named().values()) if isinstance(config, MultiConfig) else [config]


GraderConfig = Annotated[
    StringCheckConfig | TextSimilarityConfig | PythonConfig | ScoreModelConfig
    | PhysicsAnswerConfig | MultiConfig,
    Field(discriminator="type"),
]


# An eval's testing criterion: every grader, label_model too (OpenAI's fine-tuning takes a
# label_model only inside a multi grader).
EvalGraderConfig = Annotated[
    StringCheckConfig | TextSimilarityConfig | PythonConfig | ScoreModelConfig
    | LabelModelConfig | PhysicsAnswerConfig | MultiConfig,
    Field(discriminator="type"),
]


class RunRequest(BaseModel):
    """``POST /v1/fine_tuning/alpha/graders/run``."""

    model_config = ConfigDict(extra="forbid")

    grader: GraderConfig
    model_sample: str = Field(max_length=MAX_SAMPLE_CHARS)
    item: dict[str, Any] | None = None


class ValidateRequest(BaseModel):
    """``POST /v1/fine_tuning/alpha/graders/validate``."""

    model_config = ConfigDict(extra="forbid")

    grader: GraderConfig
