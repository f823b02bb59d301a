"""The batch tables' row API: batches (OpenAI's Batch API) as queued work, and their
answered lines.

A batch is claimed, heart-beaten and finished by a batch runner the way export jobs are
by quantize workers, with the same compare-and-set guards: a claim takes only a batch no
runner holds (``worker_id`` null) and that is not finished; every later write names the
``worker_id`` that claimed it, so a runner whose heartbeat went stale (killed, say) and
whose batch another runner took over can no longer touch it. A stale batch is let go
(its status kept: the next runner goes on from there), and fails once its runners died
``max_attempts`` times.

Each answered line is a ``batch_result`` row, written as soon as it is answered, once
per (batch, line) whoever writes it: a resumed batch asks only the lines not stored. The
batch's ``request_counts`` (and ``usage``) change in the transaction that stores the line,
so they never disagree with the rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from quanta.registry import tables as t
from quanta.registry.db import compare_and_set
from quanta.registry.errors import NotFoundError
from quanta.registry.ids import new_id
from quanta.registry.records import BatchRecord, BatchResultRecord
from quanta.registry.tables import utcnow
from quanta.types import BatchStatus

if TYPE_CHECKING:
    from quanta.registry.registry import Registry

MAX_ATTEMPTS = 3
# The statuses a runner may hold a batch in; the others are final.
OPEN_STATUSES = (BatchStatus.VALIDATING, BatchStatus.IN_PROGRESS, BatchStatus.FINALIZING,
                 BatchStatus.CANCELLING)
# The timestamp each status sets when the batch first enters it.
STATUS_AT = {BatchStatus.IN_PROGRESS: "in_progress_at", BatchStatus.FINALIZING: "finalizing_at",
             BatchStatus.COMPLETED: "completed_at", BatchStatus.FAILED: "failed_at",
             BatchStatus.EXPIRED: "expired_at", BatchStatus.CANCELLING: "cancelling_at",
             BatchStatus.CANCELLED: "cancelled_at"}
USAGE_FIELDS = ("input_tokens", "output_tokens", "total_tokens")


@dataclass(frozen=True)
class BatchPulse:
    """What a heartbeat learns: whether the runner still holds the batch, and whether its
    owner asked to cancel it."""

    owned: bool
    cancel: bool = False


class BatchRows:
    def __init__(self, registry: Registry) -> None:
        self._registry = registry

    # -- the API's side ------------------------------------------------------------------

    def create(self, *, tenant_id: str, endpoint: str, input_file_id: str,
               completion_window: str, window: timedelta, total: int,
               metadata: dict[str, str] | None = None,
               output_expires_after: dict[str, Any] | None = None) -> BatchRecord:
        """A batch whose input file was validated, ``validating`` until a runner takes it;
        it expires ``window`` after its creation."""
        now = utcnow()
        with self._registry.session() as s:
            row = t.Batch(id=new_id("batch"), tenant_id=tenant_id, endpoint=endpoint,
                          input_file_id=input_file_id, completion_window=completion_window,
                          status=BatchStatus.VALIDATING,
                          request_counts={"total": total, "completed": 0, "failed": 0},
                          meta=metadata, output_expires_after=output_expires_after,
                          attempts=0, cancel_requested=False, created_at=now,
                          expires_at=now + window)
            s.add(row)
            s.flush()
            return BatchRecord.of(row)

    def get(self, batch_id: str) -> BatchRecord | None:
        with self._registry.session() as s:
            return BatchRecord.maybe(s.get(t.Batch, batch_id))

    def owned(self, tenant_id: str, batch_id: str) -> BatchRecord:
        """The tenant's batch; another tenant's raises the same NotFoundError as none."""
        batch = self.get(batch_id)
        if batch is None or batch.tenant_id != tenant_id:
            raise NotFoundError(f"No such batch: {batch_id}")
        return batch

    def for_tenant(self, tenant_id: str, *, after: str | None = None,
                   limit: int | None = None) -> list[BatchRecord]:
        """The tenant's batches, newest first: those after the batch ``after`` (a cursor:
        NotFoundError if it is not the tenant's), at most ``limit``."""
        query = select(t.Batch).where(t.Batch.tenant_id == tenant_id)
        with self._registry.session() as s:
            if after is not None:
                cursor = s.get(t.Batch, after)
                if cursor is None or cursor.tenant_id != tenant_id:
                    raise NotFoundError(f"No such batch: {after}")
                query = query.where(
                    (t.Batch.created_at < cursor.created_at)
                    | ((t.Batch.created_at == cursor.created_at) & (t.Batch.id < cursor.id)))
            query = query.order_by(t.Batch.created_at.desc(), t.Batch.id.desc())
            if limit is not None:
                query = query.limit(limit)
            return BatchRecord.all(s.scalars(query))

    def request_cancel(self, tenant_id: str, batch_id: str) -> BatchRecord:
        """Cancel a batch no runner has started at once (``cancelled``, no files); any
        other open batch becomes ``cancelling`` until its runner (this one or the next)
        stops asking and writes the files of the lines answered. A finished batch, or one
        already cancelling, is left as it is."""
        self.owned(tenant_id, batch_id)
        now = utcnow()
        with self._registry.session() as s:
            if not _set_if(s, batch_id, {"status": BatchStatus.VALIDATING, "worker_id": None,
                                         "attempts": 0},
                           status=BatchStatus.CANCELLED, cancel_requested=True,
                           cancelling_at=now, cancelled_at=now):
                for status in (BatchStatus.VALIDATING, BatchStatus.IN_PROGRESS):
                    if _set_if(s, batch_id, {"status": status}, status=BatchStatus.CANCELLING,
                               cancel_requested=True, cancelling_at=now):
                        break
        return self.owned(tenant_id, batch_id)

    # -- the runner's side ---------------------------------------------------------------

    def claim_next(self, worker_id: str, candidates: int = 20) -> BatchRecord | None:
        """Compare-and-set the oldest open batch no runner holds to ``worker_id``."""
        with self._registry.session() as s:
            rows = list(s.execute(select(t.Batch.id, t.Batch.status).where(
                t.Batch.status.in_(OPEN_STATUSES), t.Batch.worker_id.is_(None))
                .order_by(t.Batch.created_at).limit(candidates)))
        for batch_id, status in rows:
            with self._registry.session() as s:
                if _set_if(s, batch_id, {"status": status, "worker_id": None},
                           worker_id=worker_id, heartbeat_at=utcnow(),
                           attempts=t.Batch.attempts + 1):
                    return BatchRecord.of(s.get(t.Batch, batch_id, populate_existing=True))
        return None

    def heartbeat(self, batch_id: str, worker_id: str) -> BatchPulse:
        with self._registry.session() as s:
            if not _set_if(s, batch_id, {"worker_id": worker_id}, heartbeat_at=utcnow()):
                return BatchPulse(owned=False)
            row = s.get(t.Batch, batch_id, populate_existing=True)
            return BatchPulse(owned=True, cancel=bool(row and row.cancel_requested))

    def advance(self, batch_id: str, worker_id: str, status: BatchStatus) -> bool:
        """Move a batch the runner holds to another open status (``in_progress``,
        ``finalizing``), stamping when it first got there; False if the runner no longer
        holds it or a cancel came first (a cancelling batch stays cancelling)."""
        with self._registry.session() as s:
            row = s.get(t.Batch, batch_id)
            if row is None or row.worker_id != worker_id or row.cancel_requested:
                return False
            values: dict[str, Any] = {"status": status}
            if status in STATUS_AT and getattr(row, STATUS_AT[status]) is None:
                values[STATUS_AT[status]] = utcnow()
            return _set_if(s, batch_id, {"worker_id": worker_id, "cancel_requested": False},
                           **values)

    def finish(self, batch_id: str, worker_id: str, status: BatchStatus, *,
               output_file_id: str | None = None, error_file_id: str | None = None,
               errors: list[dict[str, Any]] | None = None) -> bool:
        """End the batch with a final ``status`` and its files; False if the runner no
        longer held it (the files are then the caller's to delete)."""
        values: dict[str, Any] = {"status": status, STATUS_AT[status]: utcnow(),
                                  "worker_id": None, "output_file_id": output_file_id,
                                  "error_file_id": error_file_id}
        if errors is not None:
            values["errors"] = errors
        with self._registry.session() as s:
            return _set_if(s, batch_id, {"worker_id": worker_id}, **values)

    def requeue_stale(self, stale_after: float,
                      max_attempts: int = MAX_ATTEMPTS) -> list[str]:
        """Let go of batches whose runner stopped beating, for the next runner to go on
        with (failed after ``max_attempts`` dead runners); returns the ids let go."""
        before = utcnow() - timedelta(seconds=stale_after)
        released = []
        with self._registry.session() as s:
            stale = list(s.scalars(select(t.Batch).where(
                t.Batch.status.in_(OPEN_STATUSES), t.Batch.worker_id.is_not(None),
                t.Batch.heartbeat_at < before)))
            for batch in stale:
                if batch.attempts >= max_attempts:
                    message = f"the batch's runner died {batch.attempts} times"
                    if _set_if(s, batch.id, {"worker_id": batch.worker_id},
                               status=BatchStatus.FAILED, worker_id=None, failed_at=utcnow(),
                               errors=[{"code": "worker_lost", "message": message,
                                        "param": None, "line": None}]):
                        continue
                elif _set_if(s, batch.id, {"worker_id": batch.worker_id}, worker_id=None):
                    released.append(batch.id)
        return released

    # -- answered lines ------------------------------------------------------------------

    def put_result(self, batch_id: str, line: int, custom_id: str, ok: bool,
                   record: dict[str, Any], usage: dict[str, int] | None = None, *,
                   completed: bool | None = None) -> bool:
        """Store one answered line (``ok``: for the output file, else the error file) and
        count it as ``completed`` (default: ``ok``; an error status serve answered is an
        output line that failed) or failed, adding its ``usage`` (``add_usage``); False,
        changing nothing, if that line was stored already."""
        try:
            with self._registry.session() as s:
                # The insert first: it takes the write lock before the counts are read.
                s.add(t.BatchResult(batch_id=batch_id, line=line, custom_id=custom_id, ok=ok,
                                    record=record, created_at=utcnow()))
                s.flush()
                row = s.get(t.Batch, batch_id, populate_existing=True, with_for_update=True)
                if row is None:
                    raise NotFoundError(f"No such batch: {batch_id}")
                counts = dict(row.request_counts or {})
                key = "completed" if (ok if completed is None else completed) else "failed"
                counts[key] = counts.get(key, 0) + 1
                row.request_counts = counts
                if usage:
                    row.usage = add_usage(row.usage, usage)
        except IntegrityError:
            return False
        return True

    def using_file(self, file_id: str) -> str | None:
        """An open batch reading ``file_id`` (its id), if any: the file may not go yet."""
        with self._registry.session() as s:
            return s.scalar(select(t.Batch.id).where(t.Batch.input_file_id == file_id,
                                                     t.Batch.status.in_(OPEN_STATUSES))
                            .limit(1))

    def answered_lines(self, batch_id: str) -> set[int]:
        with self._registry.session() as s:
            return set(s.scalars(select(t.BatchResult.line)
                                 .where(t.BatchResult.batch_id == batch_id)))

    def results(self, batch_id: str, ok: bool | None = None) -> list[BatchResultRecord]:
        """The batch's answered lines in input-line order (only the output file's, or the
        error file's, with ``ok``)."""
        query = select(t.BatchResult).where(t.BatchResult.batch_id == batch_id)
        if ok is not None:
            query = query.where(t.BatchResult.ok.is_(ok))
        with self._registry.session() as s:
            return BatchResultRecord.all(s.scalars(query.order_by(t.BatchResult.line)))


def add_usage(total: dict[str, Any] | None, usage: dict[str, int]) -> dict[str, Any]:
    """OpenAI's batch ``usage`` with one answer's tokens added (``usage``: input_tokens,
    output_tokens, total_tokens, and cached_tokens/reasoning_tokens when known)."""
    total = total or {"input_tokens": 0, "input_tokens_details": {"cached_tokens": 0},
                      "output_tokens": 0, "output_tokens_details": {"reasoning_tokens": 0},
                      "total_tokens": 0}
    summed = {key: total.get(key, 0) + usage.get(key, 0) for key in USAGE_FIELDS}
    cached = total["input_tokens_details"]["cached_tokens"] + usage.get("cached_tokens", 0)
    reasoning = (total["output_tokens_details"]["reasoning_tokens"]
                 + usage.get("reasoning_tokens", 0))
    return {**summed, "input_tokens_details": {"cached_tokens": cached},
            "output_tokens_details": {"reasoning_tokens": reasoning}}


def _set_if(session: Session, batch_id: str, expect: dict[str, Any], **values: Any) -> bool:
    return compare_and_set(session, t.Batch, batch_id, expect, **values)
