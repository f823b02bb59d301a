"""Names shared across services, as types: formats, statuses, levels, methods, dtypes.

Each value is spelled once, here; the registry, tune, quantize, serve and the demo
import these enums instead of repeating string literals. They are ``StrEnum``s, so a
member compares equal to its string and is stored in the database and in JSON as
that string: rows written before these types existed read back unchanged.
"""

from __future__ import annotations

from enum import StrEnum


class ArtifactKind(StrEnum):
    """The registry's row kinds, as ``quanta registry ls|show|rm`` names them."""

    FILE = "file"
    BASE_MODEL = "base_model"
    JOB = "job"
    ADAPTER = "adapter"
    EXPORT = "export"
    CHECKPOINT = "checkpoint"


class FilePurpose(StrEnum):
    """OpenAI's ``purpose`` of a file: what a tenant uploads, or what a job wrote."""

    FINE_TUNE = "fine-tune"
    FINE_TUNE_RESULTS = "fine-tune-results"  # a job's step metrics (CSV), never uploaded
    EVALS = "evals"  # an eval run's items (JSONL)
    BATCH = "batch"  # a batch's requests (JSONL)
    BATCH_OUTPUT = "batch_output"  # a batch's answers and errors, never uploaded

    @property
    def uploadable(self) -> bool:
        return self not in (FilePurpose.FINE_TUNE_RESULTS, FilePurpose.BATCH_OUTPUT)


class DatasetFormat(StrEnum):
    """Dataset formats ``quanta.data`` reads (all but preference normalise to chat)."""

    CHAT = "chat"
    PREFERENCE = "preference"
    CAMEL = "camel"
    ALPACA = "alpaca"
    # OpenAI reinforcement fine-tuning rows: a prompt (``messages`` ending with the user)
    # plus any other top-level fields, which graders read as ``{{item.<field>}}``.
    REINFORCEMENT = "reinforcement"


class MethodType(StrEnum):
    """OpenAI's fine-tuning ``method.type``."""

    SUPERVISED = "supervised"
    DPO = "dpo"
    REINFORCEMENT = "reinforcement"


class DistributedStrategy(StrEnum):
    """How a job's processes share the model (``quanta.distributed.strategy``).

    ``AUTO``: DDP on CPUs, FSDP on CUDA GPUs. DDP keeps a replica per process and averages
    gradients; FSDP shards parameters, gradients and optimizer state (CUDA only here).
    """

    AUTO = "auto"
    DDP = "ddp"
    FSDP = "fsdp"


class GraderType(StrEnum):
    """A grader's ``type``: OpenAI's graders plus Quanta's ``physics_answer``
    (``label_model``: an eval's criterion, or a part of a ``multi`` grader, as OpenAI's)."""

    STRING_CHECK = "string_check"
    TEXT_SIMILARITY = "text_similarity"
    PYTHON = "python"
    SCORE_MODEL = "score_model"
    LABEL_MODEL = "label_model"
    MULTI = "multi"
    PHYSICS_ANSWER = "physics_answer"


class JobStatus(StrEnum):
    """A fine-tuning job's status, as OpenAI names them."""

    VALIDATING_FILES = "validating_files"
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    PAUSED = "paused"  # by its owner; resume queues it again, from its last checkpoint

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_STATUSES


TERMINAL_STATUSES = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED})


class UploadStatus(StrEnum):
    """An upload's status (OpenAI's Uploads API): parts are added while it is pending."""

    PENDING = "pending"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    EXPIRED = "expired"


class BatchStatus(StrEnum):
    """A batch's status, as OpenAI's Batch API names them: ``validating`` until a runner
    takes it, ``in_progress`` while it is answered, ``finalizing`` while its files are
    written; a cancel passes through ``cancelling``."""

    VALIDATING = "validating"
    IN_PROGRESS = "in_progress"
    FINALIZING = "finalizing"
    COMPLETED = "completed"
    FAILED = "failed"
    EXPIRED = "expired"
    CANCELLING = "cancelling"
    CANCELLED = "cancelled"

    @property
    def is_terminal(self) -> bool:
        return self in (BatchStatus.COMPLETED, BatchStatus.FAILED, BatchStatus.EXPIRED,
                        BatchStatus.CANCELLED)


class EvalRunStatus(StrEnum):
    """An eval run's status, as OpenAI's Evals API names them (``canceled``, one l)."""

    QUEUED = "queued"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    CANCELED = "canceled"
    FAILED = "failed"

    @property
    def is_terminal(self) -> bool:
        return self in (EvalRunStatus.COMPLETED, EvalRunStatus.CANCELED, EvalRunStatus.FAILED)


class StopReason(StrEnum):
    """Why a worker stops training a job before its last step."""

    LOST = "lost"  # its heartbeat went stale and another worker owns the job now
    CANCELLED = "cancelled"
    PAUSED = "paused"  # at a step boundary, after writing a checkpoint there


class EventLevel(StrEnum):
    """A job event's ``level``."""

    INFO = "info"
    WARN = "warn"
    ERROR = "error"


class EventType(StrEnum):
    """A job event's ``type``: ``metrics`` events carry a step's numbers in ``data``."""

    MESSAGE = "message"
    METRICS = "metrics"


GGUF_PREFIX = "gguf-"


def is_gguf_format(format: str) -> bool:
    """Any GGUF export, built here or registered from elsewhere (``gguf-q4_1``)."""
    return format.startswith(GGUF_PREFIX)


class ExportFormat(StrEnum):
    """What ``quanta export`` builds; exports are addressed as ``<model>@<format>``."""

    MERGED = "merged"
    GGUF_F16 = "gguf-f16"
    GGUF_Q8_0 = "gguf-q8_0"
    GGUF_Q4_K_M = "gguf-q4_k_m"
    GGUF_LORA = "gguf-lora"
    GPTQ = "gptq"

    @property
    def is_gguf(self) -> bool:
        return is_gguf_format(self.value)

    @property
    def adapter_only(self) -> bool:
        """Formats that hold an adapter alone (llama.cpp loads it beside the base GGUF)."""
        return self is ExportFormat.GGUF_LORA


class ComputeDtype(StrEnum):
    """The dtype matmuls run in (storage stays what the registry holds: bf16 safetensors).

    ``AUTO`` asks ``quanta.precision`` to choose for the device at hand.
    """

    AUTO = "auto"
    BFLOAT16 = "bfloat16"
    FLOAT16 = "float16"
    FLOAT32 = "float32"


class LoRAOps(StrEnum):
    """The LoRA ops vLLM's CPU engine runs under ``quanta serve`` (``QUANTA_LORA_OPS``)."""

    QUANTA = "quanta"  # serve.lora_ops: per-adapter products, no LoRA on base-model rows
    VLLM = "vllm"  # vLLM's own per-token gather ops
