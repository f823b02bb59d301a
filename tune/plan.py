"""The training plan: what the tune API accepts and the worker trains, shared by both.

A fine-tuning job's request is checked and resolved once, when the job is created.
OpenAI's ``method`` block (``supervised``, ``dpo`` or ``reinforcement`` with its grader;
hyperparameters may be ``"auto"``) plus Quanta's extension block ``quanta`` (LoRA shape,
QLoRA, step limits, evaluation size, compute dtype, reinforcement sampling). ``resolve``
turns ``"auto"`` into numbers and returns a :class:`TrainingPlan`; the job row stores it
in OpenAI's method shape (:meth:`TrainingPlan.stored`), and the worker validates it back
into the same typed plan (:meth:`TrainingPlan.from_stored`), so it trains exactly what the
API accepted. Both sides import this module; it imports neither (``tune.api`` maps a
:class:`PlanError` to its 400 in ``tune.api.errors``).
"""

from __future__ import annotations

import json
import math
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from quanta.types import ComputeDtype, DatasetFormat, DistributedStrategy, MethodType
from tune.graders.config import GraderConfig, leaf_configs
from tune.integrations import Integrations

M = TypeVar("M", bound=BaseModel)

BASE_LEARNING_RATE = 2e-4
# Reinforcement steps follow a policy gradient over a few sampled completions: at the
# supervised rate they diverge (bench/results/physics.md: lr 4e-4 took an adapter from 83%
# to 27% held-out accuracy in 20 steps, KL 0.45); 2e-5 kept it stable.
BASE_LEARNING_RATE_RFT = 2e-5
AUTO_EPOCHS = 3
AUTO_BATCH_SIZE = 8
AUTO_BETA = 0.1
AUTO_COMPUTE_MULTIPLIER = 1.0
AUTO_EVAL_SAMPLES = 8
GENERATIONS_PER_PROMPT = 4  # RFT completions per prompt at compute_multiplier 1
# RFT: reasoning_effort scales the completion budget (the served models do not reason).
REASONING_BUDGET = {"low": 0.5, "default": 1.0, "medium": 1.0, "high": 2.0}

Auto = Literal["auto"]
# The dataset formats each method trains on: job creation checks the files against them,
# and each training method (``tune.train.methods``) declares its own from this table.
DATASET_FORMATS: dict[MethodType, tuple[DatasetFormat, ...]] = {
    MethodType.SUPERVISED: (DatasetFormat.CHAT, DatasetFormat.CAMEL, DatasetFormat.ALPACA),
    MethodType.DPO: (DatasetFormat.PREFERENCE,),
    MethodType.REINFORCEMENT: (DatasetFormat.REINFORCEMENT,),
}


class PlanError(ValueError):
    """A job request no plan can be made from. ``errors()`` lists the problems in
    pydantic's shape (``loc``, ``msg``), the first naming the field; the API answers it
    as one 400 (``tune.api.errors``), the worker never sees one."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        self._errors = errors
        first = errors[0] if errors else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        super().__init__(f"{where}: {first.get('msg', 'invalid request')}" if where
                         else str(first.get("msg", "invalid request")))

    def errors(self) -> list[dict[str, Any]]:
        return self._errors


def checkpoint_name(model: str, step: int) -> str:
    """A kept checkpoint's model name, as OpenAI names them: what the API lists for a
    checkpoint and what the worker publishes it as."""
    return f"{model}:ckpt-step-{step}"


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


class ReinforcementHyperparameters(SupervisedHyperparameters):
    """OpenAI's reinforcement hyperparameters; ``reasoning_effort`` takes no "auto"."""

    reasoning_effort: Literal["default", "low", "medium", "high"] = "default"
    compute_multiplier: Annotated[
        float | Auto, _in_range("compute_multiplier", 0.00001, 10, above=True)] = "auto"
    eval_interval: Annotated[int | Auto, _in_range("eval_interval", 1, 1_000_000)] = "auto"
    eval_samples: Annotated[int | Auto, _in_range("eval_samples", 1, 1000)] = "auto"


class SupervisedBlock(_Strict):
    hyperparameters: SupervisedHyperparameters = Field(default_factory=SupervisedHyperparameters)


class DpoBlock(_Strict):
    hyperparameters: DpoHyperparameters = Field(default_factory=DpoHyperparameters)


class ReinforcementBlock(_Strict):
    grader: GraderConfig
    hyperparameters: ReinforcementHyperparameters = Field(
        default_factory=ReinforcementHyperparameters)

    @model_validator(mode="after")
    def _templates(self) -> ReinforcementBlock:
        from tune.graders import check_templates

        check_templates(self.grader)
        return self


class Method(_Strict):
    type: MethodType = MethodType.SUPERVISED
    supervised: SupervisedBlock | None = None
    dpo: DpoBlock | None = None
    reinforcement: ReinforcementBlock | None = None

    @model_validator(mode="after")
    def _one_block(self) -> Method:
        """A block for another method would be silently ignored: refuse it instead."""
        for kind in MethodType:
            if kind != self.type and getattr(self, str(kind)) is not None:
                raise ValueError(f"method.{kind} is given, but method.type is '{self.type}'")
        return self


class ReinforcementOptions(_Strict):
    """Quanta's knobs for reinforcement jobs (OpenAI leaves these to the service)."""

    # Completions sampled per prompt; default GENERATIONS_PER_PROMPT x compute_multiplier.
    num_generations: int | None = Field(None, ge=2, le=64)
    max_completion_length: int = Field(128, ge=8, le=4096)  # x reasoning_effort's factor
    temperature: float = Field(1.0, gt=0, le=2)
    beta: float = Field(0.04, ge=0, le=10)  # KL penalty against the starting model


# LoRA on these the serving engines refuse (vLLM serves LoRA on linear projections only);
# names as peft matches them, by their last dotted part.
UNSERVABLE_TARGETS = frozenset({"lm_head", "embed_tokens", "wte", "wpe", "embed_out",
                                "embed_in", "word_embeddings"})


def unservable_targets(target_modules: list[str] | None) -> list[str]:
    """The targets the serving engines could not load LoRA on (embeddings, output head)."""
    return sorted(m for m in target_modules or () if m.rsplit(".", 1)[-1] in UNSERVABLE_TARGETS)


# A module's dotted name as peft matches it (``q_proj``, ``layers.0.mlp.up_proj``).
ModuleName = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z0-9_]+)*$",
                                  max_length=200)]


class LoraOptions(_Strict):
    r: int = Field(16, ge=1, le=256)
    alpha: float = Field(32, gt=0, le=1024)
    dropout: float = Field(0.0, ge=0, lt=1)
    # None: the base model's own targets, recorded on it at import by architecture
    # (``quanta.architectures``); the worker fills them in before training.
    target_modules: list[ModuleName] | None = Field(None, min_length=1, max_length=64)

    def for_base(self, base_targets: list[str]) -> LoraOptions:
        """These options with the base's targets where none were asked for."""
        if self.target_modules:
            return self
        return self.model_copy(update={"target_modules": list(base_targets)})


class EvalOptions(_Strict):
    physics_n: int = Field(10, ge=0, le=1000)
    max_new_tokens: int = Field(160, ge=1, le=1024)
    loss_examples: int = Field(64, ge=0, le=10000)
    grader_n: int = Field(10, ge=0, le=1000)  # RFT: validation items the grader scores


class DistributedOptions(_Strict):
    """One job across processes and nodes: torchrun, gloo on CPU, NCCL on GPU."""

    nodes: int = Field(1, ge=1, le=256)
    processes_per_node: int = Field(1, ge=1, le=256)
    strategy: DistributedStrategy = DistributedStrategy.AUTO

    @property
    def world_size(self) -> int:
        return self.nodes * self.processes_per_node


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
    reinforcement: ReinforcementOptions = Field(default_factory=ReinforcementOptions)
    distributed: DistributedOptions = Field(default_factory=DistributedOptions)

    @model_validator(mode="after")
    def _distributed(self) -> QuantaOptions:
        if self.distributed.strategy == DistributedStrategy.FSDP and self.qlora:
            raise ValueError("distributed.strategy 'fsdp' cannot shard 4-bit QLoRA weights: "
                             "use 'ddp' or turn qlora off")
        return self


class JobRequest(_Strict):
    """``POST /v1/fine_tuning/jobs`` body (OpenAI's fields plus ``quanta``)."""

    model: str = Field(min_length=1, max_length=255)
    training_file: str = Field(min_length=1, max_length=64)
    validation_file: str | None = Field(None, min_length=1, max_length=64)
    suffix: str | None = Field(None, max_length=64)
    seed: int | None = Field(None, ge=0, le=2**31 - 1)
    metadata: dict[str, str] | None = None
    method: Method | None = None
    hyperparameters: SupervisedHyperparameters | None = None  # OpenAI's legacy top-level form
    integrations: Integrations | None = None  # wandb (OpenAI's) and mlflow (Quanta's)
    quanta: QuantaOptions = Field(default_factory=QuantaOptions)

    @field_validator("method", mode="before")
    @classmethod
    def _method(cls, v: Any) -> Any:
        if v is None:  # given as null: OpenAI's schema has no null method
            raise ValueError("method must be an object; leave it out for supervised")
        return v

    @field_validator("suffix")
    @classmethod
    def _suffix(cls, v: str | None) -> str | None:
        if v is None:
            return v
        from quanta.registry import check_name

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


def strict(model: type[M], body: Any) -> M:
    """``body`` (decoded JSON) validated as ``model`` in pydantic's strict JSON mode: enums
    and nested objects from their JSON forms, but no boolean for an integer, no number for
    a string, no "2" for 2 (what OpenAI's typed API refuses too)."""
    return model.model_validate_json(json.dumps(body), strict=True)


def parse_request(body: Any) -> JobRequest:
    """Validate a request body (PlanError naming the field)."""
    try:
        return strict(JobRequest, body)
    except ValidationError as exc:
        raise PlanError(exc.errors()) from None


class ResolvedHyperparameters(_Strict):
    """Hyperparameters with "auto" resolved; ``beta`` only for DPO."""

    n_epochs: int
    batch_size: int
    learning_rate_multiplier: float
    beta: float | None = None
    # reinforcement only
    reasoning_effort: str | None = None
    compute_multiplier: float | None = None
    eval_interval: int | None = None
    eval_samples: int | None = None


class StartAdapter(_Strict):
    """The fine-tuned model a job continues (OpenAI allows a ``ft:`` name as ``model``)."""

    id: str
    name: str


class TrainingPlan(_Strict):
    """What a job trains: the method, its resolved hyperparameters, Quanta's options."""

    type: MethodType
    hyperparameters: ResolvedHyperparameters
    grader: GraderConfig | None = None  # reinforcement only
    start_adapter: StartAdapter | None = None
    quanta: QuantaOptions = Field(default_factory=QuantaOptions)

    def for_base(self, base_targets: list[str]) -> TrainingPlan:
        """This plan with the base model's LoRA targets where the job named none."""
        lora = self.quanta.lora.for_base(base_targets)
        if lora is self.quanta.lora:
            return self
        return self.model_copy(update={"quanta": self.quanta.model_copy(update={"lora": lora})})

    @property
    def learning_rate(self) -> float:
        base = (BASE_LEARNING_RATE_RFT if self.type == MethodType.REINFORCEMENT
                else BASE_LEARNING_RATE)
        return base * self.hyperparameters.learning_rate_multiplier

    @property
    def openai_hyperparameters(self) -> dict[str, Any]:
        """The hyperparameters as OpenAI's method block shows them."""
        return self.hyperparameters.model_dump(exclude_none=True)

    @property
    def num_generations(self) -> int:
        """RFT: completions sampled per prompt."""
        chosen = self.quanta.reinforcement.num_generations
        multiplier = self.hyperparameters.compute_multiplier or AUTO_COMPUTE_MULTIPLIER
        return chosen or max(2, round(GENERATIONS_PER_PROMPT * multiplier))

    @property
    def max_completion_length(self) -> int:
        """RFT: the completion budget, scaled by ``reasoning_effort``."""
        factor = REASONING_BUDGET[self.hyperparameters.reasoning_effort or "default"]
        return max(8, int(self.quanta.reinforcement.max_completion_length * factor))

    def stored(self) -> dict[str, Any]:
        """The job row's ``method`` column: OpenAI's shape plus the ``quanta`` block."""
        block: dict[str, Any] = {"hyperparameters": self.openai_hyperparameters}
        if self.grader is not None:
            block = {"grader": self.grader.model_dump(mode="json", exclude_none=True), **block}
        stored = {"type": str(self.type), str(self.type): block,
                  "quanta": self.quanta.model_dump(mode="json")}
        if self.start_adapter is not None:
            stored["start_adapter"] = self.start_adapter.model_dump()
        return stored

    @classmethod
    def from_stored(cls, method: dict[str, Any]) -> TrainingPlan:
        """Validate a job row's ``method`` back into the plan (rows written before a
        field existed get its default)."""
        kind = method["type"]
        return cls(type=kind, hyperparameters=method[kind]["hyperparameters"],
                   grader=method[kind].get("grader"), start_adapter=method.get("start_adapter"),
                   quanta=method.get("quanta") or {})

    def notes(self) -> list[str]:
        """How Quanta honours the reinforcement fields OpenAI leaves open (job events)."""
        if self.type != MethodType.REINFORCEMENT:
            return []
        hp = self.hyperparameters
        notes = [f"Reinforcement: {self.num_generations} completions per prompt "
                 f"(compute_multiplier {hp.compute_multiplier:g}), at most "
                 f"{self.max_completion_length} tokens each (reasoning_effort "
                 f"'{hp.reasoning_effort}': the model does not reason, the budget scales)",
                 f"Reinforcement: every {hp.eval_interval} steps the grader scores "
                 f"{hp.eval_samples} validation items (when a validation file is given)"]
        for grader in leaf_configs(self.grader) if self.grader else []:
            if getattr(grader, "image_tag", None):
                notes.append(f"Grader '{grader.name}': image_tag {grader.image_tag!r} is "
                             "ignored; python graders run on the worker's python3 (stdlib "
                             "only) inside Quanta's sandbox")
            params = getattr(grader, "sampling_params", None)
            if params is not None and params.reasoning_effort:
                notes.append(f"Grader '{grader.name}': sampling_params.reasoning_effort is "
                             "ignored (the grading model does not reason)")
        return notes


def resolve(request: JobRequest, train_records: int,
            start_adapter: StartAdapter | None = None) -> TrainingPlan:
    """The concrete plan stored on the job: hyperparameters with "auto" resolved."""
    method = request.method or Method(
        type=MethodType.SUPERVISED,
        supervised=SupervisedBlock(hyperparameters=request.hyperparameters
                                   or SupervisedHyperparameters()))
    dpo = method.type == MethodType.DPO
    reinforcement = method.type == MethodType.REINFORCEMENT
    block: SupervisedBlock | DpoBlock | ReinforcementBlock | None
    if reinforcement:
        block = method.reinforcement
        if block is None:
            raise PlanError([{"loc": ("method", "reinforcement"), "msg": "a reinforcement "
                                    "job needs method.reinforcement with its grader"}])
    else:
        block = method.dpo if dpo else method.supervised
        if block is None:
            block = DpoBlock() if dpo else SupervisedBlock()
    hp = block.hyperparameters.model_dump()
    if hp["n_epochs"] == "auto":
        hp["n_epochs"] = AUTO_EPOCHS
    world = request.quanta.distributed.world_size
    if hp["batch_size"] == "auto":  # a multiple of the process count: every rank gets rows
        hp["batch_size"] = world * max(1, math.ceil(min(AUTO_BATCH_SIZE, train_records) / world))
    elif hp["batch_size"] % world:
        raise PlanError([{"loc": ("method", str(method.type), "hyperparameters",
                                        "batch_size"),
                                "msg": f"batch_size {hp['batch_size']} is the global batch: it "
                                       f"must be a multiple of the job's {world} processes "
                                       "(quanta.distributed)"}])
    if reinforcement and world > 1:
        raise PlanError([{"loc": ("quanta", "distributed"), "msg": "reinforcement jobs "
                                "run in one process: drop quanta.distributed (Quanta does not "
                                "yet shard GRPO's rollouts)"}])
    if hp["learning_rate_multiplier"] == "auto":
        hp["learning_rate_multiplier"] = 1.0
    if dpo and hp.get("beta") == "auto":
        hp["beta"] = AUTO_BETA
    if reinforcement:
        defaults = {"compute_multiplier": AUTO_COMPUTE_MULTIPLIER,
                    "eval_interval": request.quanta.checkpoint_every,
                    "eval_samples": AUTO_EVAL_SAMPLES}
        hp.update({k: v for k, v in defaults.items() if hp[k] == "auto"})
    grader = block.grader if isinstance(block, ReinforcementBlock) else None
    return TrainingPlan(type=method.type, hyperparameters=hp, grader=grader,
                        start_adapter=start_adapter, quanta=request.quanta)
