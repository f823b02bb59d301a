"""The job tables' row API: fine-tuning jobs, their events and their checkpoints.

Every query on ``job``, ``job_event`` and ``checkpoint`` lives here. What the queue does
with them (who may claim a job, when a silent worker's job goes back to the queue, when
it fails) is tune's (``tune/train/queue.py`` for workers, ``tune/api/jobs.py`` for
owners' requests); it writes through a :class:`JobTransaction`, whose guarded updates
are compare-and-set: an UPDATE whose WHERE names the state the caller expects, and which
says whether it matched.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from quanta.registry import tables as t
from quanta.registry.db import compare_and_set
from quanta.registry.errors import NotFoundError
from quanta.registry.ids import new_id
from quanta.registry.records import CheckpointRecord, EventRecord, JobRecord
from quanta.registry.tables import utcnow as now
from quanta.types import EventLevel, EventType, JobStatus

if TYPE_CHECKING:
    from quanta.registry.registry import Registry


def _event(job_id: str, message: str, level: EventLevel, type: EventType,
           data: dict[str, Any] | None) -> t.JobEvent:
    return t.JobEvent(id=new_id("ftevent"), job_id=job_id, level=level, type=type,
                      message=message, data=data, created_at=now())


class JobTransaction:
    """Job-table reads and writes inside one transaction (committed when it ends)."""

    def __init__(self, registry: Registry, session: Session) -> None:
        self._registry = registry
        self.session = session

    def get(self, job_id: str) -> JobRecord | None:
        """The job as this transaction sees it now (after its own writes)."""
        self.session.flush()
        return JobRecord.maybe(self.session.get(t.Job, job_id, populate_existing=True))

    def set(self, job_id: str, **values: Any) -> None:
        """Update the job's columns unconditionally (the caller holds it: see ``set_if``)."""
        self.session.execute(update(t.Job).where(t.Job.id == job_id).values(**values))

    def set_if(self, job_id: str, expect: dict[str, Any], **values: Any) -> bool:
        """Compare-and-set: update the job only if its columns hold ``expect``."""
        return compare_and_set(self.session, t.Job, job_id, expect, **values)

    def add_event(self, job_id: str, message: str, *, level: EventLevel = EventLevel.INFO,
                  type: EventType = EventType.MESSAGE, data: dict[str, Any] | None = None
                  ) -> None:
        self.session.add(_event(job_id, message, level, type, data))

    @property
    def skips_locked_rows(self) -> bool:
        """Can :meth:`lock_oldest` take a row lock other workers skip (PostgreSQL)?"""
        return self.session.get_bind().dialect.name == "postgresql"

    def lock_oldest(self, status: JobStatus) -> JobRecord | None:
        """The oldest job in ``status``, locked for this transaction; rows other
        transactions hold are skipped (``SELECT ... FOR UPDATE SKIP LOCKED``)."""
        return JobRecord.maybe(self.session.scalar(
            select(t.Job).where(t.Job.status == status).order_by(t.Job.created_at).limit(1)
            .with_for_update(skip_locked=True)))

    def oldest_ids(self, status: JobStatus, limit: int) -> list[str]:
        return list(self.session.scalars(select(t.Job.id).where(t.Job.status == status)
                                         .order_by(t.Job.created_at).limit(limit)))

    def stale(self, status: JobStatus, heartbeat_before: datetime) -> list[JobRecord]:
        return JobRecord.all(self.session.scalars(select(t.Job).where(
            t.Job.status == status, t.Job.heartbeat_at < heartbeat_before)))

    def event_data(self, job_id: str) -> list[dict[str, Any]]:
        """The ``data`` of every event of the job that has some, oldest first."""
        return _event_data(self.session, job_id)

    def put_checkpoint(self, job_id: str, step: int, directory: Path,
                       metrics: dict[str, Any]) -> CheckpointRecord:
        """Store a checkpoint directory (replacing one at the same step) and its row."""
        tree = self._registry.put_tree(self.session, directory)
        old = self.session.scalar(select(t.Checkpoint).where(t.Checkpoint.job_id == job_id,
                                                             t.Checkpoint.step == step))
        if old is not None:
            self.session.delete(old)
            self.session.flush()
        row = t.Checkpoint(id=new_id("ftckpt"), job_id=job_id, step=step, sha256=tree.sha256,
                           bytes=tree.bytes, metrics=metrics, created_at=now())
        self.session.add(row)
        self.session.flush()
        return CheckpointRecord.of(row)


def _event_data(session: Session, job_id: str) -> list[dict[str, Any]]:
    rows = session.scalars(select(t.JobEvent.data).where(t.JobEvent.job_id == job_id)
                           .order_by(t.JobEvent.seq))
    return [data for data in rows if data]


class JobRows:
    """Reads of the job tables, and :meth:`transaction` for guarded writes."""

    def __init__(self, registry: Registry) -> None:
        self._registry = registry

    @contextmanager
    def transaction(self) -> Iterator[JobTransaction]:
        with self._registry.session() as session:
            yield JobTransaction(self._registry, session)

    # -- jobs ------------------------------------------------------------------------------

    def create(self, messages: Iterable[str] = (), **columns: Any) -> JobRecord:
        """Insert a job (a new ``ftjob-`` id and creation time unless given) and its first
        events in one transaction."""
        columns.setdefault("id", new_id("ftjob"))
        columns.setdefault("created_at", now())
        job = t.Job(**columns)
        with self.transaction() as tx:
            tx.session.add(job)
            tx.session.flush()
            for message in messages:
                tx.add_event(job.id, message)
            tx.session.flush()
            return JobRecord.of(job)

    def get(self, job_id: str) -> JobRecord | None:
        with self._registry.session() as s:
            return JobRecord.maybe(s.get(t.Job, job_id))

    def owned(self, tenant_id: str, job_id: str) -> JobRecord:
        """The tenant's job; another tenant's raises the same NotFoundError as none."""
        job = self.get(job_id)
        if job is None or job.tenant_id != tenant_id:
            raise NotFoundError(f"No such fine-tuning job: {job_id}")
        return job

    def by_ids(self, job_ids: Iterable[str]) -> dict[str, JobRecord]:
        with self._registry.session() as s:
            jobs = JobRecord.all(s.scalars(select(t.Job).where(t.Job.id.in_(list(job_ids)))))
        return {job.id: job for job in jobs}

    def for_tenant(self, tenant_id: str) -> list[JobRecord]:
        """The tenant's jobs, newest first."""
        with self._registry.session() as s:
            return JobRecord.all(s.scalars(select(t.Job).where(t.Job.tenant_id == tenant_id)
                                           .order_by(t.Job.created_at.desc(), t.Job.id.desc())))

    def latest(self, tenant_id: str, statuses: Iterable[JobStatus],
               suffix: str | None = None,
               metadata: Mapping[str, str] | None = None) -> JobRecord | None:
        """The tenant's newest job in one of ``statuses`` (with ``suffix`` and every
        ``metadata`` pair, if given)."""
        query = select(t.Job).where(t.Job.tenant_id == tenant_id,
                                    t.Job.status.in_(list(statuses)))
        if suffix is not None:
            query = query.where(t.Job.suffix == suffix)
        with self._registry.session() as s:
            jobs = JobRecord.all(s.scalars(query.order_by(t.Job.created_at.desc())))
        return next((job for job in jobs if job.has_metadata(metadata or {})), None)

    def using_file(self, file_id: str) -> str | None:
        """The id of a job that trains or validates on ``file_id``, if any."""
        with self._registry.session() as s:
            return s.scalar(select(t.Job.id).where(
                (t.Job.training_file_id == file_id) | (t.Job.validation_file_id == file_id)))

    def ids_in(self, status: JobStatus) -> set[str]:
        with self._registry.session() as s:
            return set(s.scalars(select(t.Job.id).where(t.Job.status == status)))

    def status_counts(self) -> dict[JobStatus, int]:
        with self._registry.session() as s:
            counts = Counter(dict(s.execute(select(t.Job.status, func.count())
                                            .group_by(t.Job.status)).all()))
        return {status: int(counts.get(status, 0)) for status in JobStatus}

    # -- events ----------------------------------------------------------------------------

    def add_event(self, job_id: str, message: str, *, level: EventLevel = EventLevel.INFO,
                  type: EventType = EventType.MESSAGE, data: dict[str, Any] | None = None
                  ) -> None:
        with self.transaction() as tx:
            tx.add_event(job_id, message, level=level, type=type, data=data)

    def events(self, job_id: str, *, before: str | None = None, limit: int | None = None,
               type: EventType | None = None, job_ids: Iterable[str] | None = None
               ) -> list[EventRecord]:
        """Events newest first; ``before``: only those older than that event id (a page
        cursor; an unknown id raises NotFoundError); ``job_ids``: several jobs at once."""
        ids = list(job_ids) if job_ids is not None else [job_id]
        query = select(t.JobEvent).where(t.JobEvent.job_id.in_(ids))
        if type is not None:
            query = query.where(t.JobEvent.type == type)
        with self._registry.session() as s:
            if before is not None:
                seq = s.scalar(select(t.JobEvent.seq).where(t.JobEvent.id == before,
                                                            t.JobEvent.job_id.in_(ids)))
                if seq is None:
                    raise NotFoundError(f"No such event: {before}")
                query = query.where(t.JobEvent.seq < seq)
            query = query.order_by(t.JobEvent.seq.desc())
            return EventRecord.all(s.scalars(query.limit(limit) if limit is not None else query))

    def event_data(self, job_id: str) -> list[dict[str, Any]]:
        """The ``data`` of every event of the job that has some, oldest first."""
        with self._registry.session() as s:
            return _event_data(s, job_id)

    def latest_metrics(self, job_id: str) -> dict[str, Any] | None:
        events = self.events(job_id, type=EventType.METRICS, limit=1)
        return events[0].data if events else None

    # -- checkpoints -----------------------------------------------------------------------

    def checkpoints(self, job_id: str) -> list[CheckpointRecord]:
        """The job's checkpoints, newest step first."""
        with self._registry.session() as s:
            return CheckpointRecord.all(s.scalars(
                select(t.Checkpoint).where(t.Checkpoint.job_id == job_id)
                .order_by(t.Checkpoint.step.desc())))

    def latest_checkpoint(self, job_id: str) -> CheckpointRecord | None:
        checkpoints = self.checkpoints(job_id)
        return checkpoints[0] if checkpoints else None

    def count_checkpoints(self, job_ids: Iterable[str]) -> int:
        with self._registry.session() as s:
            return int(s.scalar(select(func.count()).select_from(t.Checkpoint)
                                .where(t.Checkpoint.job_id.in_(list(job_ids)))) or 0)
