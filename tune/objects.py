"""Registry rows rendered as OpenAI API objects (same fields, same names, unix times)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from quanta.registry import CheckpointRecord, EventRecord, FileRecord, JobRecord, adapter_name
from quanta.types import MethodType
from tune.checkpoints import checkpoint_name


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


def job_object(row: JobRecord, estimated_finish: int | None = None) -> dict[str, Any]:
    method = row.method or {}
    kind = str(method.get("type", MethodType.SUPERVISED))
    block = method.get(kind, {})
    hp = dict(block.get("hyperparameters", {}))  # stored in OpenAI's shape
    method_obj = {"type": kind, kind: {"hyperparameters": hp}}
    if "grader" in block:
        method_obj[kind] = {"grader": block["grader"], "hyperparameters": hp}
    start = method.get("start_adapter")
    return {
        "object": "fine_tuning.job",
        "id": row.id,
        "model": start["name"] if start else row.model,
        "created_at": unix(row.created_at),
        "finished_at": unix(row.finished_at),
        "fine_tuned_model": row.fine_tuned_model,
        "organization_id": row.tenant_id,
        "result_files": list(row.result_files or []),
        "status": row.status,
        "validation_file": row.validation_file_id,
        "training_file": row.training_file_id,
        "hyperparameters": {k: hp[k] for k in ("n_epochs", "batch_size",
                                               "learning_rate_multiplier") if k in hp},
        "trained_tokens": row.trained_tokens,
        "error": row.error,
        "user_provided_suffix": row.suffix,
        "seed": row.seed,
        "estimated_finish": estimated_finish,
        "integrations": list(row.integrations or []),
        "metadata": row.job_metadata,
        "method": method_obj,
        "quanta": method.get("quanta"),
    }


def event_object(row: EventRecord) -> dict[str, Any]:
    return {"object": "fine_tuning.job.event", "id": row.id, "created_at": unix(row.created_at),
            "level": row.level, "message": row.message, "data": row.data or {},
            "type": row.type}


def checkpoint_object(row: CheckpointRecord, job: JobRecord) -> dict[str, Any]:
    """OpenAI's checkpoint object; its model name is what ``tune.checkpoints`` publishes
    (the job's model name and the step)."""
    model = job.fine_tuned_model or adapter_name(job.model, job.tenant_id, job.suffix, job.id)
    name = checkpoint_name(model, row.step)
    metrics = {k: v for k, v in (row.metrics or {}).items() if isinstance(v, int | float)}
    metrics["step"] = row.step
    return {"object": "fine_tuning.job.checkpoint", "id": row.id,
            "created_at": unix(row.created_at), "fine_tuned_model_checkpoint": name,
            "fine_tuning_job_id": row.job_id, "metrics": metrics, "step_number": row.step}


def page(data: list[dict[str, Any]], has_more: bool) -> dict[str, Any]:
    """An OpenAI list; ``first_id``/``last_id`` only when it has items (never null)."""
    listing: dict[str, Any] = {"object": "list", "data": data, "has_more": has_more}
    if data:
        listing.update(first_id=data[0]["id"], last_id=data[-1]["id"])
    return listing
