"""The registry's rows (SQLAlchemy 2 ORM). Alembic migrations under ``migrations/`` create them.

Every artifact row carries ``tenant_id``, the ``sha256`` of its content (a blob, or a
manifest blob for directory artifacts), ``bytes`` and ``created_at``, plus foreign keys
for lineage: adapter -> base model, training file, job; export -> adapter or base model.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from quanta.types import EventLevel, EventType, JobStatus, UploadStatus


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, datetime: DateTime(timezone=True)}


class Tenant(Base):
    __tablename__ = "tenant"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ApiKey(Base):
    """An API key, stored only as its sha256; ``prefix`` lets users tell keys apart."""

    __tablename__ = "api_key"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenant.id", ondelete="CASCADE"), index=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    name: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)


class Blob(Base):
    """A content-addressed blob known to the registry (the store holds its bytes).

    ``is_tree``: the registry wrote it as a directory's manifest (recorded, never guessed
    from content: an uploaded dataset may look like one); its files are ``TreeMember``s.
    """

    __tablename__ = "blob"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    bytes: Mapped[int] = mapped_column(BigInteger)
    is_tree: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class TreeMember(Base):
    """One file of a directory artifact: the tree's manifest blob names this blob at ``path``."""

    __tablename__ = "tree_member"

    tree_sha256: Mapped[str] = mapped_column(ForeignKey("blob.sha256", ondelete="CASCADE"),
                                             primary_key=True)
    path: Mapped[str] = mapped_column(Text, primary_key=True)
    member_sha256: Mapped[str] = mapped_column(ForeignKey("blob.sha256", ondelete="CASCADE"),
                                               index=True)


class File(Base):
    """An uploaded dataset file (OpenAI ``/v1/files``)."""

    __tablename__ = "file"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenant.id"), index=True)
    filename: Mapped[str] = mapped_column(String(255))
    purpose: Mapped[str] = mapped_column(String(32))
    sha256: Mapped[str] = mapped_column(ForeignKey("blob.sha256"), index=True)
    bytes: Mapped[int] = mapped_column(BigInteger)
    format: Mapped[str | None] = mapped_column(String(32))
    records: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class BaseModelRow(Base):
    """A base model: a directory artifact (safetensors, config, tokenizer) behind a manifest."""

    __tablename__ = "base_model"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    tenant_id: Mapped[str | None] = mapped_column(ForeignKey("tenant.id"))  # None: shared
    sha256: Mapped[str] = mapped_column(ForeignKey("blob.sha256"), index=True)
    bytes: Mapped[int] = mapped_column(BigInteger)
    source: Mapped[str] = mapped_column(Text)
    architecture: Mapped[str | None] = mapped_column(String(100))
    info: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Job(Base):
    """A fine-tuning job (OpenAI ``/v1/fine_tuning/jobs``)."""

    __tablename__ = "job"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenant.id"), index=True)
    model: Mapped[str] = mapped_column(ForeignKey("base_model.id"))
    training_file_id: Mapped[str] = mapped_column(ForeignKey("file.id"))
    validation_file_id: Mapped[str | None] = mapped_column(ForeignKey("file.id"))
    suffix: Mapped[str | None] = mapped_column(String(64))
    seed: Mapped[int] = mapped_column(Integer, default=0)
    method: Mapped[dict[str, Any]] = mapped_column(default=dict)
    job_metadata: Mapped[dict[str, Any] | None] = mapped_column("metadata", JSON, default=None)
    status: Mapped[str] = mapped_column(String(32), index=True,
                                        default=JobStatus.VALIDATING_FILES)
    error: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    fine_tuned_model: Mapped[str | None] = mapped_column(String(255))
    trained_tokens: Mapped[int | None] = mapped_column(BigInteger)
    worker_id: Mapped[str | None] = mapped_column(String(100))
    heartbeat_at: Mapped[datetime | None] = mapped_column(default=None)
    cancel_requested: Mapped[bool] = mapped_column(default=False)
    pause_requested: Mapped[bool] = mapped_column(default=False, server_default=false())
    result_files: Mapped[list[str] | None] = mapped_column(JSON, default=None)
    # The request's ``integrations`` (wandb, mlflow), as the API accepted them.
    integrations: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(default=None)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)

    events: Mapped[list[JobEvent]] = relationship(
        back_populates="job", cascade="all, delete-orphan", order_by="JobEvent.seq"
    )
    checkpoints: Mapped[list[Checkpoint]] = relationship(
        back_populates="job", cascade="all, delete-orphan", order_by="Checkpoint.step"
    )


class JobEvent(Base):
    __tablename__ = "job_event"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(40), unique=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("job.id", ondelete="CASCADE"), index=True)
    level: Mapped[str] = mapped_column(String(16), default=EventLevel.INFO)
    type: Mapped[str] = mapped_column(String(16), default=EventType.MESSAGE)
    message: Mapped[str] = mapped_column(Text)
    data: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    job: Mapped[Job] = relationship(back_populates="events")


class Checkpoint(Base):
    """A training checkpoint: a directory artifact (adapter + optimizer state) behind a manifest."""

    __tablename__ = "checkpoint"
    __table_args__ = (UniqueConstraint("job_id", "step"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("job.id", ondelete="CASCADE"), index=True)
    step: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(ForeignKey("blob.sha256"), index=True)
    bytes: Mapped[int] = mapped_column(BigInteger)
    metrics: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    job: Mapped[Job] = relationship(back_populates="checkpoints")


class Upload(Base):
    """A file being uploaded in parts (OpenAI's Uploads API); ``file_id`` once completed."""

    __tablename__ = "upload"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenant.id"), index=True)
    filename: Mapped[str] = mapped_column(String(255))
    purpose: Mapped[str] = mapped_column(String(32))
    bytes: Mapped[int] = mapped_column(BigInteger)
    mime_type: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16), index=True, default=UploadStatus.PENDING)
    file_id: Mapped[str | None] = mapped_column(ForeignKey("file.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column()

    parts: Mapped[list[UploadPart]] = relationship(
        back_populates="upload", cascade="all, delete-orphan", order_by="UploadPart.created_at"
    )


class UploadPart(Base):
    """One part of a pending upload: its bytes are a blob until the upload completes."""

    __tablename__ = "upload_part"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    upload_id: Mapped[str] = mapped_column(ForeignKey("upload.id", ondelete="CASCADE"),
                                           index=True)
    sha256: Mapped[str] = mapped_column(ForeignKey("blob.sha256"), index=True)
    bytes: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    upload: Mapped[Upload] = relationship(back_populates="parts")


class Adapter(Base):
    """A trained LoRA adapter; ``name`` is the OpenAI-style ``ft:<base>:<tenant>:<suffix>:<id>``."""

    __tablename__ = "adapter"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    alias: Mapped[str | None] = mapped_column(String(64))
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenant.id"), index=True)
    base_model_id: Mapped[str] = mapped_column(ForeignKey("base_model.id"))
    job_id: Mapped[str | None] = mapped_column(ForeignKey("job.id"))
    training_file_id: Mapped[str | None] = mapped_column(ForeignKey("file.id"))
    sha256: Mapped[str] = mapped_column(ForeignKey("blob.sha256"), index=True)
    bytes: Mapped[int] = mapped_column(BigInteger)
    config: Mapped[dict[str, Any]] = mapped_column(default=dict)
    eval: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # Kept in the serving engine's memory, never evicted (``quanta adapters pin``); every
    # ``quanta serve`` of its base re-pins it when it starts.
    pinned: Mapped[bool] = mapped_column(default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (UniqueConstraint("tenant_id", "alias"),)


class AdapterPermission(Base):
    """The adapter's owner lets another tenant use it (serve it, fine-tune from it; never
    delete or download it): OpenAI's checkpoint permissions, projects being tenants."""

    __tablename__ = "adapter_permission"
    __table_args__ = (UniqueConstraint("adapter_id", "tenant_id"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    adapter_id: Mapped[str] = mapped_column(ForeignKey("adapter.id", ondelete="CASCADE"),
                                            index=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenant.id", ondelete="CASCADE"),
                                           index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Export(Base):
    """A quantized or merged export of an adapter (or of a bare base model)."""

    __tablename__ = "export"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str | None] = mapped_column(ForeignKey("tenant.id"), index=True)
    adapter_id: Mapped[str | None] = mapped_column(ForeignKey("adapter.id"))
    base_model_id: Mapped[str] = mapped_column(ForeignKey("base_model.id"))
    format: Mapped[str] = mapped_column(String(32))
    sha256: Mapped[str] = mapped_column(ForeignKey("blob.sha256"), index=True)
    bytes: Mapped[int] = mapped_column(BigInteger)
    metrics: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (UniqueConstraint("adapter_id", "base_model_id", "format"),)


class ExportJob(Base):
    """A requested export, queued for a quantize worker (``quanta exports worker``) that
    claims it as tune's workers claim fine-tuning jobs; ``export_id`` once it succeeded."""

    __tablename__ = "export_job"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str | None] = mapped_column(ForeignKey("tenant.id"), index=True)
    model: Mapped[str] = mapped_column(String(255))  # adapter name or base model id
    format: Mapped[str] = mapped_column(String(32))
    accuracy_n: Mapped[int | None] = mapped_column(Integer, default=None)
    status: Mapped[str] = mapped_column(String(32), index=True, default=JobStatus.QUEUED)
    export_id: Mapped[str | None] = mapped_column(String(40), default=None)
    error: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    # Every event, oldest first: {"created_at", "level", "message"}.
    events: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    worker_id: Mapped[str | None] = mapped_column(String(100))
    heartbeat_at: Mapped[datetime | None] = mapped_column(default=None)
    cancel_requested: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(default=None)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)


class ServeEndpoint(Base):
    """A running ``quanta serve`` process: the base model it serves and where clients reach
    it. The server writes its own row (at start, then a heartbeat; deleted at a clean
    shutdown); readers take a row not seen for ``QUANTA_SERVE_ENDPOINT_TTL`` as gone.
    Several rows may share one ``url`` (replicas behind one Service or gateway)."""

    __tablename__ = "serve_endpoint"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    base_model_id: Mapped[str] = mapped_column(String(64), index=True)
    engine: Mapped[str] = mapped_column(String(32))  # vllm, llama-cpp
    url: Mapped[str] = mapped_column(String(255))  # the HTTP base URL clients use
    grpc: Mapped[str | None] = mapped_column(String(255))  # host:port, None: no gRPC
    host: Mapped[str] = mapped_column(String(255))  # the machine it runs on
    pid: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class Eval(Base):
    """An evaluation (OpenAI's Evals API): what its items look like and how each sample is
    graded. Runs of it against models are ``EvalRun`` rows."""

    __tablename__ = "eval"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenant.id"), index=True)
    name: Mapped[str] = mapped_column(String(256))
    data_source_config: Mapped[dict[str, Any]] = mapped_column(JSON)
    testing_criteria: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    meta: Mapped[dict[str, Any] | None] = mapped_column("metadata", JSON, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)  # OpenAI's order_by


class EvalRun(Base):
    """One run of an eval over a data source (a file, or samples asked of a model through
    serve), queued for an eval worker that claims it as tune's workers claim jobs. Totals
    are kept on the row as items are graded, so a resumed run continues them."""

    __tablename__ = "eval_run"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    eval_id: Mapped[str] = mapped_column(ForeignKey("eval.id", ondelete="CASCADE"),
                                         index=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenant.id"), index=True)
    name: Mapped[str] = mapped_column(String(256))
    model: Mapped[str | None] = mapped_column(String(255), default=None)
    data_source: Mapped[dict[str, Any]] = mapped_column(JSON)
    meta: Mapped[dict[str, Any] | None] = mapped_column("metadata", JSON, default=None)
    status: Mapped[str] = mapped_column(String(32), index=True, default="queued")
    error: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    result_counts: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    per_model_usage: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    per_testing_criteria_results: Mapped[list[dict[str, Any]]] = mapped_column(JSON,
                                                                              default=list)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    worker_id: Mapped[str | None] = mapped_column(String(100), default=None)
    heartbeat_at: Mapped[datetime | None] = mapped_column(default=None)
    cancel_requested: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(default=None)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)


class EvalOutputItem(Base):
    """One data-source item of a run: its sample and each criterion's result. Unique per
    (run, item index): a resumed run never grades a stored item twice."""

    __tablename__ = "eval_output_item"
    __table_args__ = (UniqueConstraint("run_id", "datasource_item_id"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("eval_run.id", ondelete="CASCADE"),
                                        index=True)
    eval_id: Mapped[str] = mapped_column(String(40))
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenant.id"), index=True)
    datasource_item_id: Mapped[int] = mapped_column(Integer)
    datasource_item: Mapped[dict[str, Any]] = mapped_column(JSON)
    sample: Mapped[dict[str, Any]] = mapped_column(JSON)
    results: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16))  # pass, fail, error
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Batch(Base):
    """A batch (OpenAI's Batch API): an input file of requests, answered through serve by a
    batch worker that claims it as tune's workers claim jobs; the answers become its output
    and error files."""

    __tablename__ = "batch"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenant.id"), index=True)
    endpoint: Mapped[str] = mapped_column(String(64))
    input_file_id: Mapped[str] = mapped_column(String(40))
    completion_window: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(32), index=True, default="validating")
    output_file_id: Mapped[str | None] = mapped_column(String(40), default=None)
    error_file_id: Mapped[str | None] = mapped_column(String(40), default=None)
    errors: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON, default=None)
    request_counts: Mapped[dict[str, int]] = mapped_column(JSON, default=dict)
    usage: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    meta: Mapped[dict[str, Any] | None] = mapped_column("metadata", JSON, default=None)
    output_expires_after: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    worker_id: Mapped[str | None] = mapped_column(String(100), default=None)
    heartbeat_at: Mapped[datetime | None] = mapped_column(default=None)
    cancel_requested: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    in_progress_at: Mapped[datetime | None] = mapped_column(default=None)
    finalizing_at: Mapped[datetime | None] = mapped_column(default=None)
    completed_at: Mapped[datetime | None] = mapped_column(default=None)
    failed_at: Mapped[datetime | None] = mapped_column(default=None)
    expired_at: Mapped[datetime | None] = mapped_column(default=None)
    expires_at: Mapped[datetime | None] = mapped_column(default=None)
    cancelling_at: Mapped[datetime | None] = mapped_column(default=None)
    cancelled_at: Mapped[datetime | None] = mapped_column(default=None)


class BatchResult(Base):
    """One answered line of a batch (its output-file or error-file line), stored as it is
    answered: a resumed batch asks only the lines not stored, and a cancelled one keeps
    these."""

    __tablename__ = "batch_result"
    __table_args__ = (UniqueConstraint("batch_id", "line"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    batch_id: Mapped[str] = mapped_column(ForeignKey("batch.id", ondelete="CASCADE"),
                                          index=True)
    line: Mapped[int] = mapped_column(Integer)  # 1-based line of the input file
    custom_id: Mapped[str] = mapped_column(String(512))
    ok: Mapped[bool] = mapped_column(Boolean)  # to the output file, else the error file
    record: Mapped[dict[str, Any]] = mapped_column(JSON)  # the file line, as OpenAI's
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
