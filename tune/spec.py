"""A fine-tuning job's request, checked and resolved once, when the job is created.

OpenAI's ``method`` block (``supervised`` or ``dpo`` hyperparameters, each may be
``"auto"``) plus Quanta's extension block ``quanta`` (LoRA shape, QLoRA, step limits,
evaluation size, compute dtype). ``resolve`` turns ``"auto"`` into numbers and returns a
:class:`TrainingPlan`; the job row stores it in OpenAI's method shape
(:meth:`TrainingPlan.stored`), and the worker validates it back into the same typed
plan (:meth:`TrainingPlan.from_stored`), so it trains exactly what the API accepted.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator

from quanta.types import ComputeDtype, MethodType
from tune.errors import invalid_request

BASE_LEARNING_RATE = 2e-4
AUTO_EPOCHS = 3
AUTO_BATCH_SIZE = 8
AUTO_BETA = 0.1
DEFAULT_TARGET_MODULES = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj",
                          "down_proj")

Auto = Literal["auto"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _in_range(name: str, low: float, high: float, *, above: bool = False) -> AfterValidator:
    """"auto" passes; a number must lie in [low, high], or (low, high] with ``above``."""
    bounds = f"> {low:g} and <= {high:g}" if above else f"between {low:g} and {high:g}"

    def check(value: Any) -> Any:
        if isinstance(value, int | float) and not (
                low < value <= high if above else low <= value <= high):
            raise ValueError(f"{name} must be {bounds}")
        return value

    return AfterValidator(check)


class SupervisedHyperparameters(_Strict):
    n_epochs: Annotated[int | Auto, _in_range("n_epochs", 1, 50)] = Field(
        "auto", description="1-50")
    batch_size: Annotated[int | Auto, _in_range("batch_size", 1, 256)] = Field(
        "auto", description="1-256")
    learning_rate_multiplier: Annotated[
        float | Auto, _in_range("learning_rate_multiplier", 0, 100, above=True)] = Field(
        "auto", description="> 0 and <= 100")


class DpoHyperparameters(SupervisedHyperparameters):
    beta: Annotated[float | Auto, _in_range("beta", 0, 2, above=True)] = "auto"


class SupervisedBlock(_Strict):
    hyperparameters: SupervisedHyperparameters = Field(default_factory=SupervisedHyperparameters)


class DpoBlock(_Strict):
    hyperparameters: DpoHyperparameters = Field(default_factory=DpoHyperparameters)


class Method(_Strict):
    type: MethodType = MethodType.SUPERVISED
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
    """Validate a request body; errors become one 400 naming the field."""
    try:
        return JobRequest.model_validate(body)
    except ValidationError as exc:
        raise invalid_request(exc.errors()) from None


class ResolvedHyperparameters(_Strict):
    """Hyperparameters with "auto" resolved; ``beta`` only for DPO."""

    n_epochs: int
    batch_size: int
    learning_rate_multiplier: float
    beta: float | None = None


class TrainingPlan(_Strict):
    """What a job trains: the method, its resolved hyperparameters, Quanta's options."""

    type: MethodType
    hyperparameters: ResolvedHyperparameters
    quanta: QuantaOptions = Field(default_factory=QuantaOptions)

    @property
    def learning_rate(self) -> float:
        return BASE_LEARNING_RATE * self.hyperparameters.learning_rate_multiplier

    @property
    def openai_hyperparameters(self) -> dict[str, Any]:
        """The hyperparameters as OpenAI's method block shows them."""
        return self.hyperparameters.model_dump(exclude_none=True)

    def stored(self) -> dict[str, Any]:
        """The job row's ``method`` column: OpenAI's shape plus the ``quanta`` block."""
        return {"type": str(self.type),
                str(self.type): {"hyperparameters": self.openai_hyperparameters},
                "quanta": self.quanta.model_dump(mode="json")}

    @classmethod
    def from_stored(cls, method: dict[str, Any]) -> TrainingPlan:
        """Validate a job row's ``method`` back into the plan (rows written before a
        field existed get its default)."""
        kind = method["type"]
        return cls(type=kind, hyperparameters=method[kind]["hyperparameters"],
                   quanta=method.get("quanta") or {})


def resolve(request: JobRequest, train_records: int) -> TrainingPlan:
    """The concrete plan stored on the job: hyperparameters with "auto" resolved."""
    method = request.method or Method(
        type=MethodType.SUPERVISED,
        supervised=SupervisedBlock(hyperparameters=request.hyperparameters
                                   or SupervisedHyperparameters()))
    dpo = method.type == MethodType.DPO
    block = method.dpo if dpo else method.supervised
    if block is None:
        block = DpoBlock() if dpo else SupervisedBlock()
    hp = block.hyperparameters.model_dump()
    if hp["n_epochs"] == "auto":
        hp["n_epochs"] = AUTO_EPOCHS
    if hp["batch_size"] == "auto":
        hp["batch_size"] = max(1, min(AUTO_BATCH_SIZE, train_records))
    if hp["learning_rate_multiplier"] == "auto":
        hp["learning_rate_multiplier"] = 1.0
    if dpo and hp.get("beta") == "auto":
        hp["beta"] = AUTO_BETA
    return TrainingPlan(type=method.type, hyperparameters=hp, quanta=request.quanta)
