"""The tune service's logic, independent of HTTP: files, jobs, events, checkpoints.

Every lookup is scoped to the caller's tenant: another tenant's file or job raises the
same ``NotFoundError`` as an id that never existed. Job creation checks everything first
(request shape, model, files, formats) and writes the job row and its first events in
one transaction, so a rejected request leaves nothing behind.
"""

from __future__ import annotations

import secrets
from collections import Counter
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from quanta.registry import NotFoundError as RegistryNotFound
from quanta.registry import Registry
from quanta.registry import tables as t
from quanta.registry.ids import new_id
from tune import objects, queue
from tune.datafiles import METHOD_FORMATS, validate_upload
from tune.errors import ConflictError, InvalidRequestError, NotFoundError
from tune.spec import parse_request, resolve

FILE_PURPOSES = ("fine-tune",)
MAX_PAGE = 100
STATUSES = ("validating_files", "queued", "running", "succeeded", "failed", "cancelled")


def safe_filename(name: str) -> str:
    """The uploaded name as metadata only: no directories, dots-only or control characters."""
    name = "".join(c for c in name.replace("\\", "/").rsplit("/", 1)[-1] if c.isprintable())
    name = name.strip()[:255]
    return name if name.strip(".") else "upload.jsonl"


def _limit(limit: int | None, default: int) -> int:
    if limit is None:
        return default
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidRequestError(f"limit must be between 1 and {MAX_PAGE}", param="limit",
                                  code="invalid_value")
    return limit


def _after(rows: list[Any], after: str | None, limit: int) -> tuple[list[Any], bool]:
    """Rows following the one whose id is ``after`` (newest-first order), one page."""
    if after is not None:
        ids = [r.id for r in rows]
        if after not in ids:
            raise NotFoundError(f"No such object: {after}", param="after")
        rows = rows[ids.index(after) + 1:]
    return rows[:limit], len(rows) > limit


class TuneService:
    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    # -- files -----------------------------------------------------------------------------

    def create_file(self, tenant_id: str, filename: str | None, purpose: str | None,
                    path: Path) -> dict[str, Any]:
        """Validate an uploaded dataset (already on disk) and store it."""
        if purpose not in FILE_PURPOSES:
            raise InvalidRequestError(f"Invalid purpose {purpose!r}: Quanta accepts 'fine-tune'",
                                      param="purpose", code="invalid_value")
        if not filename:
            raise InvalidRequestError("Missing file part 'file'", param="file")
        filename = safe_filename(filename)
        report = validate_upload(path, filename)
        if not report.ok:
            shown = "; ".join(report.errors[:5])
            more = f" (and {len(report.errors) - 5} more)" if len(report.errors) > 5 else ""
            raise InvalidRequestError(f"Invalid file format for fine-tuning: {shown}{more}",
                                      param="file", code="invalid_file_format")
        row = self.registry.add_file(tenant_id, filename, purpose, path,
                                     format=report.format, records=report.records)
        return objects.file_object(row)

    def _file(self, tenant_id: str, file_id: str) -> t.File:
        try:
            return self.registry.get_file(tenant_id, file_id)
        except RegistryNotFound:
            raise NotFoundError(f"No such File object: {file_id}", param="id") from None

    def get_file(self, tenant_id: str, file_id: str) -> dict[str, Any]:
        return objects.file_object(self._file(tenant_id, file_id))

    def file_path(self, tenant_id: str, file_id: str) -> tuple[t.File, Path]:
        row = self._file(tenant_id, file_id)
        return row, self.registry.blob_path(row.sha256)

    def list_files(self, tenant_id: str, purpose: str | None = None, after: str | None = None,
                   limit: int | None = None) -> dict[str, Any]:
        rows = [r for r in self.registry.list_files(tenant_id)
                if purpose is None or r.purpose == purpose]
        rows, more = _after(rows, after, _limit(limit, MAX_PAGE))
        return objects.page([objects.file_object(r) for r in rows], more)

    def delete_file(self, tenant_id: str, file_id: str) -> dict[str, Any]:
        self._file(tenant_id, file_id)
        with self.registry.session() as s:
            used = s.scalar(select(t.Job.id).where(
                (t.Job.training_file_id == file_id) | (t.Job.validation_file_id == file_id)))
        if used:
            raise ConflictError(f"File {file_id} is used by fine-tuning job {used}", param="id",
                                code="file_in_use")
        self.registry.delete("file", file_id, tenant_id)
        return {"id": file_id, "object": "file", "deleted": True}

    # -- jobs ------------------------------------------------------------------------------

    def _job_file(self, tenant_id: str, file_id: str, param: str, method_type: str) -> t.File:
        try:
            row = self.registry.get_file(tenant_id, file_id)
        except RegistryNotFound:
            raise NotFoundError(f"No such File object: {file_id}", param=param,
                                code="file_not_found") from None
        if row.purpose != "fine-tune":
            raise InvalidRequestError(f"File {file_id} has purpose {row.purpose!r}, not "
                                      "'fine-tune'", param=param, code="invalid_file_purpose")
        allowed = METHOD_FORMATS[method_type]
        if row.format not in allowed:
            raise InvalidRequestError(
                f"File {file_id} is in {row.format!r} format; method {method_type!r} needs "
                f"{' or '.join(allowed)}", param=param, code="invalid_file_format")
        return row

    def create_job(self, tenant_id: str, body: Any) -> dict[str, Any]:
        request = parse_request(body)
        method_type = request.method.type if request.method else "supervised"
        try:
            self.registry.get_base_model(request.model, tenant_id)
        except RegistryNotFound:
            raise InvalidRequestError(
                f"Model {request.model} is not available for fine-tuning or does not exist.",
                param="model", code="model_not_available") from None
        train_file = self._job_file(tenant_id, request.training_file, "training_file",
                                    method_type)
        if request.validation_file:
            self._job_file(tenant_id, request.validation_file, "validation_file", method_type)
        method = resolve(request, train_file.records or 1)
        seed = request.seed if request.seed is not None else secrets.randbelow(2**31)
        job = t.Job(id=new_id("ftjob"), tenant_id=tenant_id, model=request.model,
                    training_file_id=request.training_file,
                    validation_file_id=request.validation_file, suffix=request.suffix,
                    seed=seed, method=method, job_metadata=request.metadata,
                    status="queued", created_at=queue.now())
        with self.registry.session() as s:
            s.add(job)
            s.flush()
            queue.add_event(self.registry, job.id, "Created fine-tuning job", session=s)
            queue.add_event(self.registry, job.id,
                            f"Validating training file: {request.training_file}"
                            + (f" and validation file: {request.validation_file}"
                               if request.validation_file else ""), session=s)
            queue.add_event(self.registry, job.id, "Files validated, moving job to queued state",
                            session=s)
        return objects.job_object(job)

    def _job(self, tenant_id: str, job_id: str) -> t.Job:
        with self.registry.session() as s:
            job = s.get(t.Job, job_id)
        if job is None or job.tenant_id != tenant_id:
            raise NotFoundError(f"No such fine-tuning job: {job_id}", param="fine_tuning_job_id")
        return job

    def get_job(self, tenant_id: str, job_id: str) -> dict[str, Any]:
        job = self._job(tenant_id, job_id)
        return objects.job_object(job, self._estimated_finish(job))

    def list_jobs(self, tenant_id: str, after: str | None = None, limit: int | None = None,
                  metadata: dict[str, str] | None = None) -> dict[str, Any]:
        with self.registry.session() as s:
            rows = list(s.scalars(select(t.Job).where(t.Job.tenant_id == tenant_id)
                                  .order_by(t.Job.created_at.desc(), t.Job.id.desc())))
        if metadata:
            rows = [r for r in rows
                    if all((r.job_metadata or {}).get(k) == v for k, v in metadata.items())]
        rows, more = _after(rows, after, _limit(limit, 20))
        return objects.page([objects.job_object(r) for r in rows], more)

    def cancel_job(self, tenant_id: str, job_id: str) -> dict[str, Any]:
        job = self._job(tenant_id, job_id)
        if job.status in queue.TERMINAL:
            raise ConflictError(f"Job {job_id} has already {job.status}; it cannot be cancelled",
                                param="fine_tuning_job_id", code="job_not_cancellable")
        return objects.job_object(queue.request_cancel(self.registry, job_id))

    def list_events(self, tenant_id: str, job_id: str, after: str | None = None,
                    limit: int | None = None) -> dict[str, Any]:
        self._job(tenant_id, job_id)
        limit = _limit(limit, 20)
        with self.registry.session() as s:
            query = select(t.JobEvent).where(t.JobEvent.job_id == job_id)
            if after is not None:
                seq = s.scalar(select(t.JobEvent.seq).where(t.JobEvent.id == after,
                                                            t.JobEvent.job_id == job_id))
                if seq is None:
                    raise NotFoundError(f"No such event: {after}", param="after")
                query = query.where(t.JobEvent.seq < seq)
            rows = list(s.scalars(query.order_by(t.JobEvent.seq.desc()).limit(limit + 1)))
        return objects.page([objects.event_object(r) for r in rows[:limit]], len(rows) > limit)

    def list_checkpoints(self, tenant_id: str, job_id: str, after: str | None = None,
                         limit: int | None = None) -> dict[str, Any]:
        job = self._job(tenant_id, job_id)
        with self.registry.session() as s:
            rows = list(s.scalars(select(t.Checkpoint).where(t.Checkpoint.job_id == job_id)
                                  .order_by(t.Checkpoint.step.desc())))
        rows, more = _after(rows, after, _limit(limit, 10))
        return objects.page([objects.checkpoint_object(r, job) for r in rows], more)

    def _estimated_finish(self, job: t.Job) -> int | None:
        """Start time + elapsed / steps done * total steps, from the newest metrics event."""
        if job.status != "running" or job.started_at is None:
            return None
        with self.registry.session() as s:
            data = s.scalar(select(t.JobEvent.data).where(
                t.JobEvent.job_id == job.id, t.JobEvent.type == "metrics")
                .order_by(t.JobEvent.seq.desc()).limit(1))
        if not data or not data.get("total_steps") or not data.get("step"):
            return None
        started = objects.unix(job.started_at) or 0
        elapsed = max(0, int(queue.now().timestamp()) - started)
        return started + int(elapsed / data["step"] * data["total_steps"])

    # -- metrics ---------------------------------------------------------------------------

    def job_counts(self) -> dict[str, int]:
        with self.registry.session() as s:
            counts = Counter(dict(s.execute(select(t.Job.status, func.count())
                                            .group_by(t.Job.status)).all()))
        return {status: int(counts.get(status, 0)) for status in STATUSES}
