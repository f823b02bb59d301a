"""The worker's side of the job queue: claim, heartbeat, re-queue, checkpoints, pause, finish,
over the registry's job rows.

The job records and transactions are the registry's; the rules are here. What a job's
owner asks (cancel, pause, resume) is the API's side (``tune.api.jobs``): it sets flags on
the row, which ``heartbeat`` reads. Claiming is a
compare-and-set on the row so two workers never run one job: PostgreSQL takes the oldest
queued row with ``SELECT ... FOR UPDATE SKIP LOCKED``; SQLite sets ``status='running'``
only where it is still ``queued`` and keeps the job only if that matched. Every later
write by a worker is guarded by its ``worker_id``, so a worker that lost its job (its
heartbeat went stale and another worker took over) can no longer touch it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from quanta.registry import CheckpointRecord, JobTransaction, Registry, utcnow
from quanta.types import TERMINAL_STATUSES, EventLevel, JobStatus

MAX_ATTEMPTS = 3
CANDIDATES = 20  # queued jobs a SQLite worker tries to claim per poll


def _start(tx: JobTransaction, job_id: str, worker_id: str) -> None:
    job = tx.get(job_id)
    assert job is not None
    if job.started_at is None:
        tx.set(job_id, started_at=job.heartbeat_at)
    tx.add_event(job_id, f"Fine-tuning job started (worker {worker_id})")


def claim(registry: Registry, job_id: str, worker_id: str) -> bool:
    """Compare-and-set one queued job to running for ``worker_id``; False if someone else won."""
    with registry.jobs.transaction() as tx:
        if not tx.set_if(job_id, {"status": JobStatus.QUEUED}, status=JobStatus.RUNNING,
                         worker_id=worker_id, heartbeat_at=utcnow()):
            return False
        _start(tx, job_id, worker_id)
        return True


def claim_next(registry: Registry, worker_id: str) -> str | None:
    """Atomically take the oldest queued job; returns its id or None."""
    with registry.jobs.transaction() as tx:
        if tx.skips_locked_rows:
            job = tx.lock_oldest(JobStatus.QUEUED)
            if job is None:
                return None
            tx.set(job.id, status=JobStatus.RUNNING, worker_id=worker_id, heartbeat_at=utcnow())
            _start(tx, job.id, worker_id)
            return job.id
        candidates = tx.oldest_ids(JobStatus.QUEUED, CANDIDATES)
    for job_id in candidates:
        if claim(registry, job_id, worker_id):
            return job_id
    return None


@dataclass(frozen=True)
class Pulse:
    """What a heartbeat learns: whether the worker still owns the job, and what its owner
    asked for since."""

    owned: bool
    cancel: bool = False
    pause: bool = False


def heartbeat(registry: Registry, job_id: str, worker_id: str) -> Pulse:
    """Refresh the heartbeat and read the job's cancel and pause requests."""
    with registry.jobs.transaction() as tx:
        if not tx.set_if(job_id, {"worker_id": worker_id, "status": JobStatus.RUNNING},
                         heartbeat_at=utcnow()):
            return Pulse(owned=False)
        job = tx.get(job_id)
        assert job is not None
        return Pulse(owned=True, cancel=job.cancel_requested, pause=job.pause_requested)


def requeue_stale(registry: Registry, stale_after: float,
                  max_attempts: int = MAX_ATTEMPTS) -> list[str]:
    """Put running jobs whose worker stopped heart-beating back in the queue.

    A job whose cancellation was requested is cancelled instead; one whose workers died
    ``max_attempts`` times (a deterministic hard crash, e.g. the OOM killer) fails, rather
    than crash-looping every worker that picks it up.
    """
    requeued: list[str] = []
    with registry.jobs.transaction() as tx:
        for job in tx.stale(JobStatus.RUNNING, utcnow() - timedelta(seconds=stale_after)):
            old = job.worker_id
            deaths = 1 + sum(1 for data in tx.event_data(job.id) if data.get("requeued"))
            status = (JobStatus.CANCELLED if job.cancel_requested
                      else JobStatus.FAILED if deaths >= max_attempts
                      else JobStatus.PAUSED if job.pause_requested else JobStatus.QUEUED)
            error = None if status != JobStatus.FAILED else {
                "code": "worker_lost", "param": None,
                "message": f"the job's worker died {deaths} times (killed or out of memory)"}
            if not tx.set_if(job.id, {"status": JobStatus.RUNNING, "worker_id": old},
                             status=status, worker_id=None, error=error, pause_requested=False,
                             finished_at=utcnow() if status.is_terminal else None):
                continue
            if status == JobStatus.PAUSED:
                tx.add_event(job.id, f"Worker {old} stopped responding; the job is paused as "
                             "asked, resuming continues from its last checkpoint",
                             level=EventLevel.WARN, data={"requeued": True, "worker": old})
            elif status == JobStatus.CANCELLED:
                tx.add_event(job.id, "Fine-tuning job cancelled")
            elif status == JobStatus.FAILED:
                tx.add_event(job.id, f"Fine-tuning job failed: {error['message']}",
                             level=EventLevel.ERROR)
            else:
                tx.add_event(job.id, f"Worker {old} stopped responding; job re-queued, it "
                             "resumes from its last checkpoint", level=EventLevel.WARN,
                             data={"requeued": True, "worker": old})
                requeued.append(job.id)
    return requeued


def store_checkpoint(registry: Registry, job_id: str, worker_id: str, step: int,
                     directory: Path, metrics: dict[str, Any]) -> CheckpointRecord | None:
    """Store a Trainer checkpoint directory as a registry artifact; None if the job was lost."""
    with registry.jobs.transaction() as tx:
        job = tx.get(job_id)
        if job is None or job.worker_id != worker_id or job.status != JobStatus.RUNNING:
            return None
        row = tx.put_checkpoint(job_id, step, directory, metrics)
        tx.add_event(job_id, f"Checkpoint created at step {step}", data={"step": step})
    return row


CLOSING_MESSAGES = {JobStatus.SUCCEEDED: "The job has successfully completed",
                    JobStatus.CANCELLED: "Fine-tuning job cancelled"}


def finish(registry: Registry, job_id: str, worker_id: str, status: JobStatus, *,
           error: dict[str, Any] | None = None, fine_tuned_model: str | None = None,
           trained_tokens: int | None = None, message: str | None = None,
           result_files: list[str] | None = None) -> bool:
    """Move an owned running job to a terminal status (with its closing event)."""
    assert status in TERMINAL_STATUSES
    with registry.jobs.transaction() as tx:
        if not tx.set_if(job_id, {"worker_id": worker_id, "status": JobStatus.RUNNING},
                         status=status, error=error, fine_tuned_model=fine_tuned_model,
                         trained_tokens=trained_tokens, result_files=result_files,
                         pause_requested=False, finished_at=utcnow()):
            return False
        default = CLOSING_MESSAGES.get(
            status, f"Fine-tuning job failed: {(error or {}).get('message', '')}")
        tx.add_event(job_id, message or default,
                     level=EventLevel.ERROR if status == JobStatus.FAILED else EventLevel.INFO)
    return True


def pause(registry: Registry, job_id: str, worker_id: str, step: int | None) -> bool:
    """Park an owned running job as paused (its worker stored a checkpoint at ``step``).

    What the owner asked since the trainer stopped wins: a cancel cancels it; a pause
    withdrawn (resumed before it was taken) queues it again, to go on from that checkpoint.
    """
    owned = {"worker_id": worker_id, "status": JobStatus.RUNNING}
    where = f" at step {step}" if step else " before training"
    with registry.jobs.transaction() as tx:
        if tx.set_if(job_id, {**owned, "cancel_requested": True}, status=JobStatus.CANCELLED,
                     worker_id=None, pause_requested=False, finished_at=utcnow()):
            tx.add_event(job_id, CLOSING_MESSAGES[JobStatus.CANCELLED])
            return True
        if tx.set_if(job_id, {**owned, "pause_requested": False}, status=JobStatus.QUEUED,
                     worker_id=None):
            tx.add_event(job_id, f"Stopped{where} for a pause that was withdrawn; queued to "
                         "continue from there")
            return True
        if not tx.set_if(job_id, owned, status=JobStatus.PAUSED, worker_id=None,
                         pause_requested=False):
            return False
        tx.add_event(job_id, f"Fine-tuning job paused{where}; resuming continues from there",
                     data={"paused_at_step": step or 0})
    return True
