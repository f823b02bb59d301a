"""The job queue is the ``job`` table: claim, heartbeat, re-queue, events, checkpoints, finish.

Claiming is a compare-and-set on the row so two workers never run one job:
PostgreSQL takes the oldest queued row with ``SELECT ... FOR UPDATE SKIP LOCKED``; SQLite
runs ``UPDATE job SET status='running' ... WHERE id=? AND status='queued'`` and keeps the
job only if exactly one row changed. Every later write by a worker is guarded by its
``worker_id``, so a worker that lost its job (its heartbeat went stale and another worker
took over) can no longer touch it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select, update

from quanta.registry import Registry
from quanta.registry import tables as t
from quanta.registry.ids import new_id

TERMINAL = ("succeeded", "failed", "cancelled")
MAX_ATTEMPTS = 3


def now() -> datetime:
    return datetime.now(UTC)


def add_event(registry: Registry, job_id: str, message: str, *, level: str = "info",
              type: str = "message", data: dict[str, Any] | None = None,
              session: Any = None) -> None:
    row = t.JobEvent(id=new_id("ftevent"), job_id=job_id, level=level, type=type,
                     message=message, data=data, created_at=now())
    if session is not None:
        session.add(row)
        return
    with registry.session() as s:
        s.add(row)


def claim(registry: Registry, job_id: str, worker_id: str) -> bool:
    """Compare-and-set one queued job to running for ``worker_id``; False if someone else won."""
    stamp = now()
    with registry.session() as s:
        changed = s.execute(update(t.Job).where(t.Job.id == job_id, t.Job.status == "queued")
                            .values(status="running", worker_id=worker_id, heartbeat_at=stamp))
        if changed.rowcount != 1:
            return False
        job = s.get(t.Job, job_id)
        job.started_at = job.started_at or stamp
        add_event(registry, job_id, f"Fine-tuning job started (worker {worker_id})", session=s)
        return True


def claim_next(registry: Registry, worker_id: str) -> str | None:
    """Atomically take the oldest queued job; returns its id or None."""
    stamp = now()
    values = dict(status="running", worker_id=worker_id, heartbeat_at=stamp)
    if registry.engine.dialect.name == "postgresql":
        with registry.session() as s:
            job = s.scalar(select(t.Job).where(t.Job.status == "queued")
                           .order_by(t.Job.created_at).limit(1)
                           .with_for_update(skip_locked=True))
            if job is None:
                return None
            for key, value in values.items():
                setattr(job, key, value)
            job.started_at = job.started_at or stamp
            add_event(registry, job.id, f"Fine-tuning job started (worker {worker_id})",
                      session=s)
            return job.id
    with registry.session() as s:
        candidates = list(s.scalars(select(t.Job.id).where(t.Job.status == "queued")
                                    .order_by(t.Job.created_at).limit(20)))
    for job_id in candidates:
        if claim(registry, job_id, worker_id):
            return job_id
    return None


def heartbeat(registry: Registry, job_id: str, worker_id: str) -> tuple[bool, bool]:
    """Refresh the heartbeat; returns (still owned, cancel requested)."""
    with registry.session() as s:
        changed = s.execute(update(t.Job).where(
            t.Job.id == job_id, t.Job.worker_id == worker_id, t.Job.status == "running",
        ).values(heartbeat_at=now()))
        if changed.rowcount != 1:
            return False, False
        cancel = s.scalar(select(t.Job.cancel_requested).where(t.Job.id == job_id))
        return True, bool(cancel)


def requeue_stale(registry: Registry, stale_after: float,
                  max_attempts: int = MAX_ATTEMPTS) -> list[str]:
    """Put running jobs whose worker stopped heart-beating back in the queue.

    A job whose cancellation was requested is cancelled instead; one whose workers died
    ``max_attempts`` times (a deterministic hard crash, e.g. the OOM killer) fails, rather
    than crash-looping every worker that picks it up.
    """
    cutoff = now() - timedelta(seconds=stale_after)
    requeued: list[str] = []
    with registry.session() as s:
        stale = list(s.scalars(select(t.Job).where(t.Job.status == "running",
                                                   t.Job.heartbeat_at < cutoff)))
        for job in stale:
            old = job.worker_id
            deaths = 1 + sum(1 for data in s.scalars(select(t.JobEvent.data).where(
                t.JobEvent.job_id == job.id)) if data and data.get("requeued"))
            status = ("cancelled" if job.cancel_requested
                      else "failed" if deaths >= max_attempts else "queued")
            error = None if status != "failed" else {
                "code": "worker_lost", "param": None,
                "message": f"the job's worker died {deaths} times (killed or out of memory)"}
            changed = s.execute(update(t.Job).where(
                t.Job.id == job.id, t.Job.status == "running", t.Job.worker_id == old,
            ).values(status=status, worker_id=None, error=error,
                     finished_at=None if status == "queued" else now()))
            if changed.rowcount != 1:
                continue
            if status == "cancelled":
                add_event(registry, job.id, "Fine-tuning job cancelled", session=s)
            elif status == "failed":
                add_event(registry, job.id, f"Fine-tuning job failed: {error['message']}",
                          level="error", session=s)
            else:
                add_event(registry, job.id, f"Worker {old} stopped responding; job re-queued, "
                          "it resumes from its last checkpoint", level="warn",
                          data={"requeued": True, "worker": old}, session=s)
                requeued.append(job.id)
    return requeued


def latest_checkpoint(registry: Registry, job_id: str) -> t.Checkpoint | None:
    with registry.session() as s:
        return s.scalar(select(t.Checkpoint).where(t.Checkpoint.job_id == job_id)
                        .order_by(t.Checkpoint.step.desc()).limit(1))


def store_checkpoint(registry: Registry, job_id: str, worker_id: str, step: int,
                     directory: Path, metrics: dict[str, Any]) -> t.Checkpoint | None:
    """Store a Trainer checkpoint directory as a registry artifact; None if the job was lost."""
    with registry.session() as s:
        job = s.get(t.Job, job_id)
        if job is None or job.worker_id != worker_id or job.status != "running":
            return None
        tree = registry.put_tree(s, directory)
        old = s.scalar(select(t.Checkpoint).where(t.Checkpoint.job_id == job_id,
                                                  t.Checkpoint.step == step))
        if old is not None:
            s.delete(old)
            s.flush()
        row = t.Checkpoint(id=new_id("ftckpt"), job_id=job_id, step=step, sha256=tree.sha256,
                           bytes=tree.bytes, metrics=metrics, created_at=now())
        s.add(row)
        add_event(registry, job_id, f"Checkpoint created at step {step}", data={"step": step},
                  session=s)
    return row


def finish(registry: Registry, job_id: str, worker_id: str, status: str, *,
           error: dict[str, Any] | None = None, fine_tuned_model: str | None = None,
           trained_tokens: int | None = None, message: str | None = None) -> bool:
    """Move an owned running job to a terminal status (with its closing event)."""
    assert status in TERMINAL
    with registry.session() as s:
        changed = s.execute(update(t.Job).where(
            t.Job.id == job_id, t.Job.worker_id == worker_id, t.Job.status == "running",
        ).values(status=status, error=error, fine_tuned_model=fine_tuned_model,
                 trained_tokens=trained_tokens, finished_at=now()))
        if changed.rowcount != 1:
            return False
        default = {"succeeded": "The job has successfully completed",
                   "failed": f"Fine-tuning job failed: {(error or {}).get('message', '')}",
                   "cancelled": "Fine-tuning job cancelled"}[status]
        add_event(registry, job_id, message or default,
                  level="error" if status == "failed" else "info", session=s)
    return True


def request_cancel(registry: Registry, job_id: str) -> t.Job:
    """Cancel a job: queued jobs stop at once, running ones at their worker's next poll."""
    with registry.session() as s:
        changed = s.execute(update(t.Job).where(
            t.Job.id == job_id, t.Job.status.in_(("validating_files", "queued")),
        ).values(status="cancelled", cancel_requested=True, finished_at=now()))
        if changed.rowcount == 1:
            add_event(registry, job_id, "Fine-tuning job cancelled", session=s)
        else:
            s.execute(update(t.Job).where(t.Job.id == job_id, t.Job.status == "running")
                      .values(cancel_requested=True))
            job = s.get(t.Job, job_id)
            if job is not None and job.status == "running":
                add_event(registry, job_id, "Cancellation requested", session=s)
        return s.get(t.Job, job_id)
