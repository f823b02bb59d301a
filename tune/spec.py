"""A fine-tuning job's request, checked and resolved once, when the job is created.

OpenAI's ``method`` block (``supervised`` or ``dpo`` hyperparameters, each may be
``"auto"``) plus Quanta's extension block ``quanta`` (LoRA shape, QLoRA, step limits,
evaluation size). ``resolve`` turns ``"auto"`` into numbers and returns the plain dict
stored in the job row, so the worker trains exactly what the API accepted.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from quanta.types import ComputeDtype
from tune.errors import InvalidRequestError

BASE_LEARNING_RATE = 2e-4
AUTO_EPOCHS = 3
AUTO_BATCH_SIZE = 8
DEFAULT_TARGET_MODULES = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj",
                          "down_proj")

Auto = Literal["auto"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SupervisedHyperparameters(_Strict):
    n_epochs: int | Auto = Field("auto", description="1-50")
    batch_size: int | Auto = Field("auto", description="1-256")
    learning_rate_multiplier: float | Auto = Field("auto", description="> 0 and <= 100")

    @field_validator("n_epochs")
    @classmethod
    def _epochs(cls, v: int | str) -> int | str:
        if isinstance(v, int) and not 1 <= v <= 50:
            raise ValueError("n_epochs must be between 1 and 50")
        return v

    @field_validator("batch_size")
    @classmethod
    def _batch(cls, v: int | str) -> int | str:
        if isinstance(v, int) and not 1 <= v <= 256:
            raise ValueError("batch_size must be between 1 and 256")
        return v

    @field_validator("learning_rate_multiplier")
    @classmethod
    def _lrm(cls, v: float | str) -> float | str:
        if isinstance(v, int | float) and not 0 < v <= 100:
            raise ValueError("learning_rate_multiplier must be > 0 and <= 100")
        return v


class DpoHyperparameters(SupervisedHyperparameters):
    beta: float | Auto = "auto"

    @field_validator("beta")
    @classmethod
    def _beta(cls, v: float | str) -> float | str:
        if isinstance(v, int | float) and not 0 < v <= 2:
            raise ValueError("beta must be > 0 and <= 2")
        return v


class SupervisedBlock(_Strict):
    hyperparameters: SupervisedHyperparameters = Field(default_factory=SupervisedHyperparameters)


class DpoBlock(_Strict):
    hyperparameters: DpoHyperparameters = Field(default_factory=DpoHyperparameters)


class Method(_Strict):
    type: Literal["supervised", "dpo"] = "supervised"
    supervised: SupervisedBlock | None = None
    dpo: DpoBlock | None = None


class LoraOptions(_Strict):
    r: int = Field(16, ge=1, le=256)
    alpha: float = Field(32, gt=0, le=1024)
    dropout: float = Field(0.0, ge=0, lt=1)
    target_modules: list[str] = Field(default_factory=lambda: list(DEFAULT_TARGET_MODULES),
                                      min_length=1)


class EvalOptions(_Strict):
    physics_n: int = Field(10, ge=0, le=1000)
    max_new_tokens: int = Field(96, ge=1, le=1024)
    loss_examples: int = Field(64, ge=0, le=10000)


class QuantaOptions(_Strict):
    """Quanta's extension block (``extra_body={"quanta": {...}}`` with the openai SDK)."""

    lora: LoraOptions = Field(default_factory=LoraOptions)
    qlora: bool = False
    max_steps: int | None = Field(None, ge=1, le=1_000_000)
    checkpoint_every: int = Field(50, ge=1, le=1_000_000)
    max_length: int = Field(512, ge=16, le=32768)
    padding_free: bool = True
    group_by_length: bool = False
    # "auto": chosen per device by quanta.precision (bf16 only where computed natively).
    compute_dtype: ComputeDtype = ComputeDtype.AUTO
    eval: EvalOptions = Field(default_factory=EvalOptions)


class JobRequest(_Strict):
    """``POST /v1/fine_tuning/jobs`` body (OpenAI's fields plus ``quanta``)."""

    model: str = Field(min_length=1, max_length=255)
    training_file: str = Field(min_length=1, max_length=64)
    validation_file: str | None = Field(None, max_length=64)
    suffix: str | None = Field(None, max_length=64)
    seed: int | None = Field(None, ge=0, le=2**31 - 1)
    metadata: dict[str, str] | None = None
    method: Method | None = None
    hyperparameters: SupervisedHyperparameters | None = None  # OpenAI's legacy top-level form
    integrations: list[Any] | None = None
    quanta: QuantaOptions = Field(default_factory=QuantaOptions)

    @field_validator("suffix")
    @classmethod
    def _suffix(cls, v: str | None) -> str | None:
        if v is None:
            return v
        from quanta.registry.ids import check_name

        try:
            return check_name(v.lower(), "suffix")
        except ValueError as exc:
            raise ValueError(str(exc)) from None

    @field_validator("metadata")
    @classmethod
    def _metadata(cls, v: dict[str, str] | None) -> dict[str, str] | None:
        if v is not None and (len(v) > 16 or any(len(k) > 64 or len(s) > 512
                                                 for k, s in v.items())):
            raise ValueError("metadata: at most 16 pairs, keys <= 64 and values <= 512 characters")
        return v


def parse_request(body: Any) -> JobRequest:
    """Validate a request body; errors become one ``InvalidRequestError`` naming the field."""
    try:
        return JobRequest.model_validate(body)
    except ValidationError as exc:
        raise InvalidRequestError.from_validation(exc.errors()) from None


def resolve(request: JobRequest, train_records: int) -> dict[str, Any]:
    """The concrete method dict stored on the job: hyperparameters with "auto" resolved."""
    method = request.method or Method(
        type="supervised",
        supervised=SupervisedBlock(hyperparameters=request.hyperparameters
                                   or SupervisedHyperparameters()))
    block = method.dpo if method.type == "dpo" else method.supervised
    if block is None:
        block = DpoBlock() if method.type == "dpo" else SupervisedBlock()
    hp = block.hyperparameters.model_dump()
    if hp["n_epochs"] == "auto":
        hp["n_epochs"] = AUTO_EPOCHS
    if hp["batch_size"] == "auto":
        hp["batch_size"] = max(1, min(AUTO_BATCH_SIZE, train_records))
    if hp["learning_rate_multiplier"] == "auto":
        hp["learning_rate_multiplier"] = 1.0
    if method.type == "dpo" and hp.get("beta") == "auto":
        hp["beta"] = 0.1
    return {"type": method.type, method.type: {"hyperparameters": hp},
            "quanta": request.quanta.model_dump()}


def hyperparameters(method: dict[str, Any]) -> dict[str, Any]:
    return dict(method[method["type"]]["hyperparameters"])


def learning_rate(method: dict[str, Any]) -> float:
    return BASE_LEARNING_RATE * float(hyperparameters(method)["learning_rate_multiplier"])
