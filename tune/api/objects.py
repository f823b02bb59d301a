"""Registry rows rendered as OpenAI API objects (same fields, same names, unix times), and
OpenAI's lists: one page of them, ``after`` an id, ``limit`` checked.

The fine-tuning job's objects are typed (``FineTuningJob``, ``FineTuningJobEvent``,
``FineTuningJobCheckpoint``): each field declared once, nothing else allowed, so a field
that goes missing or changes type fails where it is built, not in a client. Their routes
declare them as response models (``/docs`` shows them); the functions below return their
JSON form, which the CLI and in-process callers read as OpenAI's SDK would.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from quanta.registry import CheckpointRecord, EventRecord, FileRecord, JobRecord, adapter_name
from quanta.types import EventLevel, EventType, JobStatus, MethodType
from tune.api.errors import HTTPBadRequest, HTTPNotFound
from tune.plan import checkpoint_name

MAX_PAGE = 100  # jobs, events, checkpoints


def unix(value: datetime | None) -> int | None:
    if value is None:
        return None
    if value.tzinfo is None:  # SQLite hands back naive UTC
        value = value.replace(tzinfo=UTC)
    return int(value.timestamp())


def file_object(row: FileRecord) -> dict[str, Any]:
    """OpenAI's file object; files never expire here, so ``expires_at`` (an integer when
    present) and the deprecated ``status_details`` are left out, as OpenAI leaves them."""
    return {"id": row.id, "object": "file", "bytes": row.bytes, "created_at": unix(row.created_at),
            "filename": row.filename, "purpose": row.purpose, "status": "processed"}


class _OpenAIObject(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FineTuningJob(_OpenAIObject):
    """OpenAI's ``fine_tuning.job``, plus Quanta's ``quanta`` block (and ``mlflow`` entries
    in ``integrations``). Nested blocks keep the shapes the job row stores them in."""

    object: Literal["fine_tuning.job"] = "fine_tuning.job"
    id: str
    model: str  # the base model, or the fine-tuned model the job continues
    created_at: int
    finished_at: int | None
    fine_tuned_model: str | None
    organization_id: str  # the tenant
    result_files: list[str]
    status: JobStatus
    validation_file: str | None
    training_file: str
    hyperparameters: dict[str, Any]  # n_epochs, batch_size, learning_rate_multiplier
    trained_tokens: int | None
    error: dict[str, Any] | None  # code, message, param
    user_provided_suffix: str | None
    seed: int
    estimated_finish: int | None
    integrations: list[dict[str, Any]]
    metadata: dict[str, str] | None
    method: dict[str, Any]  # {"type": ..., <type>: {"hyperparameters": ..., "grader"?: ...}}
    quanta: dict[str, Any] | None


class FineTuningJobEvent(_OpenAIObject):
    object: Literal["fine_tuning.job.event"] = "fine_tuning.job.event"
    id: str
    created_at: int
    level: EventLevel
    message: str
    data: dict[str, Any]
    type: EventType


class FineTuningJobCheckpoint(_OpenAIObject):
    object: Literal["fine_tuning.job.checkpoint"] = "fine_tuning.job.checkpoint"
    id: str
    created_at: int
    fine_tuned_model_checkpoint: str
    fine_tuning_job_id: str
    metrics: dict[str, Any]  # step, and the numbers logged at that step
    step_number: int


def job_object(row: JobRecord, estimated_finish: int | None = None) -> dict[str, Any]:
    method = row.method or {}
    kind = str(method.get("type", MethodType.SUPERVISED))
    block = method.get(kind, {})
    hp = dict(block.get("hyperparameters", {}))  # stored in OpenAI's shape
    method_obj = {"type": kind, kind: {"hyperparameters": hp}}
    if "grader" in block:
        method_obj[kind] = {"grader": block["grader"], "hyperparameters": hp}
    start = method.get("start_adapter")
    return FineTuningJob(
        id=row.id,
        model=start["name"] if start else row.model,
        created_at=unix(row.created_at),
        finished_at=unix(row.finished_at),
        fine_tuned_model=row.fine_tuned_model,
        organization_id=row.tenant_id,
        result_files=list(row.result_files or []),
        status=row.status,
        validation_file=row.validation_file_id,
        training_file=row.training_file_id,
        hyperparameters={k: hp[k] for k in ("n_epochs", "batch_size",
                                            "learning_rate_multiplier") if k in hp},
        trained_tokens=row.trained_tokens,
        error=row.error,
        user_provided_suffix=row.suffix,
        seed=row.seed,
        estimated_finish=estimated_finish,
        integrations=list(row.integrations or []),
        metadata=row.job_metadata,
        method=method_obj,
        quanta=method.get("quanta"),
    ).model_dump(mode="json")


def event_object(row: EventRecord) -> dict[str, Any]:
    return FineTuningJobEvent(id=row.id, created_at=unix(row.created_at), level=row.level,
                              message=row.message, data=row.data or {},
                              type=row.type).model_dump(mode="json")


def checkpoint_object(row: CheckpointRecord, job: JobRecord) -> dict[str, Any]:
    """OpenAI's checkpoint object; its model name is what the worker publishes it as
    (``tune.plan.checkpoint_name``: the job's model name and the step)."""
    model = job.fine_tuned_model or adapter_name(job.model, job.tenant_id, job.suffix, job.id)
    name = checkpoint_name(model, row.step)
    metrics = {k: v for k, v in (row.metrics or {}).items() if isinstance(v, int | float)}
    metrics["step"] = row.step
    return FineTuningJobCheckpoint(
        id=row.id, created_at=unix(row.created_at), fine_tuned_model_checkpoint=name,
        fine_tuning_job_id=row.job_id, metrics=metrics, step_number=row.step,
    ).model_dump(mode="json")


def page(data: list[dict[str, Any]], has_more: bool) -> dict[str, Any]:
    """An OpenAI list; ``first_id``/``last_id`` only when it has items (never null)."""
    listing: dict[str, Any] = {"object": "list", "data": data, "has_more": has_more}
    if data:
        listing.update(first_id=data[0]["id"], last_id=data[-1]["id"])
    return listing


def page_limit(limit: int | None, default: int, most: int = MAX_PAGE) -> int:
    if limit is None:
        return default
    if not 1 <= limit <= most:
        raise HTTPBadRequest(f"limit must be between 1 and {most}", param="limit",
                             code="invalid_value")
    return limit


def page_after(rows: list[Any], after: str | None, limit: int) -> tuple[list[Any], bool]:
    """Rows following the one whose id is ``after`` (newest-first order), one page."""
    if after is not None:
        ids = [r.id for r in rows]
        if after not in ids:
            raise HTTPNotFound(f"No such object: {after}", param="after")
        rows = rows[ids.index(after) + 1:]
    return rows[:limit], len(rows) > limit
