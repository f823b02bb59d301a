"""What the registry hands out: frozen records, never its ORM rows.

A service that holds a record cannot write the database behind the registry's back
(no session, no lazy load, no attribute that flushes); every change is a method of the
registry's public API. Each record mirrors its table's columns
(``tests/unit/test_registry_records.py`` keeps them in step).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any, Self


class Record:
    """``of(row)``: the record of an ORM row (the columns this record names)."""

    __slots__ = ()

    @classmethod
    def of(cls, row: Any) -> Self:
        return cls(**{f.name: getattr(row, f.name) for f in fields(cls)})  # type: ignore[arg-type]

    @classmethod
    def all(cls, rows: Iterable[Any]) -> list[Self]:
        return [cls.of(row) for row in rows]

    @classmethod
    def maybe(cls, row: Any | None) -> Self | None:
        return None if row is None else cls.of(row)


@dataclass(frozen=True, slots=True)
class TenantRecord(Record):
    id: str
    name: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class ApiKeyRecord(Record):
    """An API key as stored: its sha256 and a prefix users tell keys apart by."""

    id: str
    tenant_id: str
    key_hash: str
    prefix: str
    name: str | None
    created_at: datetime
    revoked_at: datetime | None


@dataclass(frozen=True, slots=True)
class FileRecord(Record):
    """An uploaded dataset file (OpenAI ``/v1/files``)."""

    id: str
    tenant_id: str
    filename: str
    purpose: str
    sha256: str
    bytes: int
    format: str | None
    records: int | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class BaseModelRecord(Record):
    """A base model (a directory artifact); ``tenant_id`` None: shared by every tenant."""

    id: str
    tenant_id: str | None
    sha256: str
    bytes: int
    source: str
    architecture: str | None
    info: dict[str, Any]
    created_at: datetime


@dataclass(frozen=True, slots=True)
class JobRecord(Record):
    """A fine-tuning job (OpenAI ``/v1/fine_tuning/jobs``)."""

    id: str
    tenant_id: str
    model: str
    training_file_id: str
    validation_file_id: str | None
    suffix: str | None
    seed: int
    method: dict[str, Any]
    job_metadata: dict[str, Any] | None
    status: str
    error: dict[str, Any] | None
    fine_tuned_model: str | None
    trained_tokens: int | None
    worker_id: str | None
    heartbeat_at: datetime | None
    cancel_requested: bool
    pause_requested: bool
    result_files: list[str] | None
    integrations: list[dict[str, Any]] | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None

    def has_metadata(self, wanted: Mapping[str, str]) -> bool:
        """Whether every ``wanted`` pair is in the job's metadata (OpenAI's
        ``metadata[key]=value`` filter). JSON is matched here, not in SQL, because SQLite
        and PostgreSQL query it differently."""
        have = self.job_metadata or {}
        return all(have.get(key) == value for key, value in wanted.items())


@dataclass(frozen=True, slots=True)
class EventRecord(Record):
    """One event of a job; ``seq`` orders them."""

    seq: int
    id: str
    job_id: str
    level: str
    type: str
    message: str
    data: dict[str, Any] | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class CheckpointRecord(Record):
    """A training checkpoint (adapter + optimizer state, a directory artifact)."""

    id: str
    job_id: str
    step: int
    sha256: str
    bytes: int
    metrics: dict[str, Any]
    created_at: datetime


@dataclass(frozen=True, slots=True)
class UploadRecord(Record):
    """A file being uploaded in parts (OpenAI's Uploads API); ``file_id`` once complete."""

    id: str
    tenant_id: str
    filename: str
    purpose: str
    bytes: int
    mime_type: str
    status: str
    file_id: str | None
    created_at: datetime
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class UploadPartRecord(Record):
    id: str
    upload_id: str
    sha256: str
    bytes: int
    created_at: datetime


@dataclass(frozen=True, slots=True)
class AdapterRecord(Record):
    """A trained LoRA adapter, named ``ft:<base>:<tenant>:<suffix>:<id>``."""

    id: str
    name: str
    alias: str | None
    tenant_id: str
    base_model_id: str
    job_id: str | None
    training_file_id: str | None
    sha256: str
    bytes: int
    config: dict[str, Any]
    eval: dict[str, Any]
    pinned: bool
    created_at: datetime


@dataclass(frozen=True, slots=True)
class GrantRecord(Record):
    """An adapter's owner lets another tenant use it (OpenAI's checkpoint permission)."""

    id: str
    adapter_id: str
    tenant_id: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class ExportRecord(Record):
    """A quantized or merged export of an adapter (or of a bare base model)."""

    id: str
    tenant_id: str | None
    adapter_id: str | None
    base_model_id: str
    format: str
    sha256: str
    bytes: int
    metrics: dict[str, Any]
    created_at: datetime


@dataclass(frozen=True, slots=True)
class ExportJobRecord(Record):
    """A requested export and how it went (queued, running, succeeded, ...)."""

    id: str
    tenant_id: str | None
    model: str
    format: str
    accuracy_n: int | None
    status: str
    export_id: str | None
    error: dict[str, Any] | None
    events: list[dict[str, Any]]
    attempts: int
    worker_id: str | None
    heartbeat_at: datetime | None
    cancel_requested: bool
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


@dataclass(frozen=True, slots=True)
class BatchRecord(Record):
    """A batch (OpenAI ``/v1/batches``): its input file, its status and timestamps, the
    counts of its answered lines, and the runner that holds it (``worker_id``)."""

    id: str
    tenant_id: str
    endpoint: str
    input_file_id: str
    completion_window: str
    status: str
    output_file_id: str | None
    error_file_id: str | None
    errors: list[dict[str, Any]] | None
    request_counts: dict[str, int]
    usage: dict[str, Any] | None
    meta: dict[str, Any] | None  # OpenAI's ``metadata``
    output_expires_after: dict[str, Any] | None
    attempts: int
    worker_id: str | None
    heartbeat_at: datetime | None
    cancel_requested: bool
    created_at: datetime
    in_progress_at: datetime | None
    finalizing_at: datetime | None
    completed_at: datetime | None
    failed_at: datetime | None
    expired_at: datetime | None
    expires_at: datetime | None
    cancelling_at: datetime | None
    cancelled_at: datetime | None


@dataclass(frozen=True, slots=True)
class BatchResultRecord(Record):
    """One answered line of a batch: ``record`` is its output-file line (``ok``) or its
    error-file line, as OpenAI writes them."""

    id: int
    batch_id: str
    line: int
    custom_id: str
    ok: bool
    record: dict[str, Any]
    created_at: datetime


@dataclass(frozen=True, slots=True)
class EvalRecord(Record):
    """An eval (OpenAI ``/v1/evals``): its item schema and testing criteria, stored in
    OpenAI's shapes (each criterion with its ``id``)."""

    id: str
    tenant_id: str
    name: str
    data_source_config: dict[str, Any]
    testing_criteria: list[dict[str, Any]]
    meta: dict[str, Any] | None  # OpenAI's ``metadata``
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class EvalRunRecord(Record):
    """A run of an eval over a data source, its running totals, and the worker that holds
    it (``worker_id``)."""

    id: str
    eval_id: str
    tenant_id: str
    name: str
    model: str | None
    data_source: dict[str, Any]
    meta: dict[str, Any] | None  # OpenAI's ``metadata``
    status: str
    error: dict[str, Any] | None
    result_counts: dict[str, Any]
    per_model_usage: list[dict[str, Any]]
    per_testing_criteria_results: list[dict[str, Any]]
    attempts: int
    worker_id: str | None
    heartbeat_at: datetime | None
    cancel_requested: bool
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


@dataclass(frozen=True, slots=True)
class EvalOutputItemRecord(Record):
    """One graded item of a run: its sample and each criterion's result (``status``: pass,
    fail or error)."""

    id: str
    run_id: str
    eval_id: str
    tenant_id: str
    datasource_item_id: int
    datasource_item: dict[str, Any]
    sample: dict[str, Any]
    results: list[dict[str, Any]]
    status: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class ServeEndpointRecord(Record):
    """A ``quanta serve`` process as it registered itself: which base it serves, with which
    engine, where (HTTP ``url``, ``grpc`` address), and when it was last seen alive."""

    id: str
    base_model_id: str
    engine: str
    url: str
    grpc: str | None
    host: str
    pid: int
    started_at: datetime
    last_seen: datetime
