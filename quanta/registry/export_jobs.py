"""The export_job table's row API: exports as queued work.

An export job is claimed, heart-beaten and finished by a quantize worker the way tune's
workers handle fine-tuning jobs, with the same compare-and-set guards: a claim sets
``running`` only where the job is still ``queued``; every later write names the
``worker_id`` that claimed it, so a worker whose heartbeat went stale (killed, say) and
whose job another worker took over can no longer touch it. A stale job goes back to the
queue, and fails once its workers died ``max_attempts`` times.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from quanta.registry import tables as t
from quanta.registry.db import compare_and_set
from quanta.registry.errors import NotFoundError
from quanta.registry.ids import new_id
from quanta.registry.records import ExportJobRecord
from quanta.registry.tables import utcnow
from quanta.types import EventLevel, JobStatus

if TYPE_CHECKING:
    from quanta.registry.registry import Registry

MAX_ATTEMPTS = 3


@dataclass(frozen=True)
class ExportPulse:
    """What a heartbeat learns: whether the worker still holds the job, and whether its
    owner asked to cancel it."""

    owned: bool
    cancel: bool = False


class ExportJobRows:
    def __init__(self, registry: Registry) -> None:
        self._registry = registry

    # -- the API's side ------------------------------------------------------------------

    def create(self, *, tenant_id: str | None, model: str, format: str,
               accuracy_n: int | None = None) -> ExportJobRecord:
        with self._registry.session() as s:
            row = t.ExportJob(id=new_id("exportjob"), tenant_id=tenant_id, model=model,
                              format=format, accuracy_n=accuracy_n, status=JobStatus.QUEUED,
                              events=[_event(f"Export of {model} as {format} queued")],
                              attempts=0, cancel_requested=False, created_at=utcnow())
            s.add(row)
            s.flush()
            return ExportJobRecord.of(row)

    def get(self, job_id: str) -> ExportJobRecord | None:
        with self._registry.session() as s:
            return ExportJobRecord.maybe(s.get(t.ExportJob, job_id))

    def owned(self, tenant_id: str, job_id: str) -> ExportJobRecord:
        """The tenant's export job; another tenant's raises the same NotFoundError as none."""
        job = self.get(job_id)
        if job is None or job.tenant_id != tenant_id:
            raise NotFoundError(f"No such export job: {job_id}")
        return job

    def for_tenant(self, tenant_id: str) -> list[ExportJobRecord]:
        """The tenant's export jobs, newest first."""
        with self._registry.session() as s:
            return ExportJobRecord.all(s.scalars(
                select(t.ExportJob).where(t.ExportJob.tenant_id == tenant_id)
                .order_by(t.ExportJob.created_at.desc(), t.ExportJob.id.desc())))

    def request_cancel(self, tenant_id: str, job_id: str) -> ExportJobRecord:
        """Cancel a queued job now; a running one when its worker next beats (it stops the
        export and keeps nothing of it). A finished job is left as it is."""
        job = self.owned(tenant_id, job_id)
        with self._registry.session() as s:
            if _set_if(s, job_id, {"status": JobStatus.QUEUED}, status=JobStatus.CANCELLED,
                       finished_at=utcnow()):
                _append_event(s, job_id, "Export cancelled")
            elif _set_if(s, job_id, {"status": JobStatus.RUNNING}, cancel_requested=True):
                _append_event(s, job_id, "Cancel requested; the worker stops the export")
        return self.get(job.id) or job

    # -- the worker's side ---------------------------------------------------------------

    def claim_next(self, worker_id: str, candidates: int = 20) -> ExportJobRecord | None:
        """Compare-and-set the oldest queued job to running for ``worker_id``."""
        with self._registry.session() as s:
            ids = list(s.scalars(select(t.ExportJob.id).where(
                t.ExportJob.status == JobStatus.QUEUED)
                .order_by(t.ExportJob.created_at).limit(candidates)))
        for job_id in ids:
            with self._registry.session() as s:
                now = utcnow()
                if _set_if(s, job_id, {"status": JobStatus.QUEUED}, status=JobStatus.RUNNING,
                           worker_id=worker_id, heartbeat_at=now, started_at=now,
                           attempts=t.ExportJob.attempts + 1):
                    _append_event(s, job_id, f"Export started (worker {worker_id})")
                    return ExportJobRecord.of(s.get(t.ExportJob, job_id,
                                                    populate_existing=True))
        return None

    def heartbeat(self, job_id: str, worker_id: str) -> ExportPulse:
        with self._registry.session() as s:
            if not _set_if(s, job_id, {"status": JobStatus.RUNNING, "worker_id": worker_id},
                           heartbeat_at=utcnow()):
                return ExportPulse(owned=False)
            row = s.get(t.ExportJob, job_id, populate_existing=True)
            return ExportPulse(owned=True, cancel=bool(row and row.cancel_requested))

    def finish(self, job_id: str, worker_id: str, status: JobStatus, *,
               export_id: str | None = None, error: dict[str, Any] | None = None,
               message: str) -> bool:
        """End the worker's attempt; False if the worker no longer held the job."""
        with self._registry.session() as s:
            done = _set_if(s, job_id, {"status": JobStatus.RUNNING, "worker_id": worker_id},
                           status=status, export_id=export_id, error=error,
                           finished_at=utcnow(), worker_id=None)
            if done:
                level = EventLevel.ERROR if status == JobStatus.FAILED else EventLevel.INFO
                _append_event(s, job_id, message, level)
            return done

    def requeue_stale(self, stale_after: float,
                      max_attempts: int = MAX_ATTEMPTS) -> list[str]:
        """Put running jobs whose worker stopped beating back in the queue (cancelled if
        their owner asked, failed after ``max_attempts`` dead workers); returns the ids
        re-queued."""
        before = utcnow() - timedelta(seconds=stale_after)
        requeued = []
        with self._registry.session() as s:
            stale = list(s.scalars(select(t.ExportJob).where(
                t.ExportJob.status == JobStatus.RUNNING, t.ExportJob.heartbeat_at < before)))
            for job in stale:
                status = (JobStatus.CANCELLED if job.cancel_requested
                          else JobStatus.FAILED if job.attempts >= max_attempts
                          else JobStatus.QUEUED)
                error = None if status != JobStatus.FAILED else {
                    "code": "worker_lost", "param": None,
                    "message": f"the export's worker died {job.attempts} times"}
                if not _set_if(s, job.id, {"status": JobStatus.RUNNING,
                                           "worker_id": job.worker_id},
                               status=status, worker_id=None, error=error,
                               finished_at=None if status == JobStatus.QUEUED else utcnow()):
                    continue
                _append_event(s, job.id, f"Worker {job.worker_id} stopped responding; the "
                              f"export is {status}", EventLevel.WARN)
                if status == JobStatus.QUEUED:
                    requeued.append(job.id)
        return requeued


def _event(message: str, level: EventLevel = EventLevel.INFO,
           at: datetime | None = None) -> dict[str, Any]:
    return {"created_at": (at or utcnow()).isoformat(), "level": str(level),
            "message": message}


def _set_if(session: Session, job_id: str, expect: dict[str, Any], **values: Any) -> bool:
    return compare_and_set(session, t.ExportJob, job_id, expect, **values)


def _append_event(session: Session, job_id: str, message: str,
                  level: EventLevel = EventLevel.INFO) -> None:
    row = session.get(t.ExportJob, job_id, populate_existing=True, with_for_update=True)
    if row is not None:
        row.events = [*(row.events or []), _event(message, level)]
