"""The batch tables' row API: batches (OpenAI's Batch API) as queued work, and their
answered lines.

A batch is claimed, heart-beaten and finished by a batch runner the way export jobs are
by quantize workers, with the same compare-and-set guards: a claim takes only a batch no
runner holds (``worker_id`` null) and that is not finished; every later write names the
``worker_id`` that claimed it, so a runner whose heartbeat went stale (killed, say) and
whose batch another runner took over can no longer touch it. A stale batch is let go
(its status kept: the next runner goes on from there), and fails once its runners died
``max_attempts`` times. A claim prefers a tenant with no batch in progress, so that one
tenant's queue of batches does not hold every runner while another tenant's waits.

Each answered line is a ``batch_result`` row, written as soon as it is answered, once
per (batch, line), and only by the runner holding the batch: a resumed batch asks only
the lines not stored, and a runner that lost its claim stores nothing more. The batch's
``request_counts`` (and ``usage``) change in the transaction that stores the line, so
they never disagree with the rows.

A runner asks serve with an API key minted in the batch's tenant's name (``key_name``);
whatever becomes of the runner, those keys are revoked when the batch is claimed (a
dead runner's, before the next one mints its own), let go, and when it ends.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from quanta.registry import tables as t
from quanta.registry.db import compare_and_set, keyset_page
from quanta.registry.errors import NotFoundError
from quanta.registry.ids import new_id
from quanta.registry.records import BatchRecord, BatchResultRecord
from quanta.registry.tables import utcnow
from quanta.registry.tenants import revoke_keys_named
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

    @staticmethod
    def key_name(batch_id: str) -> str:
        """The name of the API keys a runner mints to answer the batch (as ``quanta
        tenants keys`` lists them); this module revokes them."""
        return f"batch {batch_id}"

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

    def for_tenant(self, tenant_id: str, *, after: str | None = None, limit: int = 20
                   ) -> tuple[list[BatchRecord], bool]:
        """One page of the tenant's batches, newest first, after the batch ``after`` (a
        cursor: NotFoundError if it is not the tenant's), and whether more follow."""
        with self._registry.session() as s:
            rows = keyset_page(s, t.Batch, t.Batch.created_at, t.Batch.tenant_id, tenant_id,
                               after=after, order="desc", limit=limit,
                               missing=f"No such batch: {after}")
            return BatchRecord.all(rows[:limit]), len(rows) > limit

    def request_cancel(self, tenant_id: str, batch_id: str) -> BatchRecord:
        """Cancel a batch no runner has started at once (``cancelled``, no files); any
        other open batch becomes ``cancelling`` until its runner (this one or the next)
        stops asking and writes the files of the lines answered. A finished batch, or one
        already cancelling, is left as it is."""
        self.owned(tenant_id, batch_id)
        now = utcnow()
        with self._registry.session() as s:
            if _set_if(s, batch_id, {"status": BatchStatus.VALIDATING, "worker_id": None,
                                     "attempts": 0},
                       status=BatchStatus.CANCELLED, cancel_requested=True,
                       cancelling_at=now, cancelled_at=now):
                _revoke_keys(s, tenant_id, batch_id)
            else:
                for status in (BatchStatus.VALIDATING, BatchStatus.IN_PROGRESS):
                    if _set_if(s, batch_id, {"status": status}, status=BatchStatus.CANCELLING,
                               cancel_requested=True, cancelling_at=now):
                        break
        return self.owned(tenant_id, batch_id)

    # -- the runner's side ---------------------------------------------------------------

    def claim_next(self, worker_id: str, candidates: int = 20) -> BatchRecord | None:
        """Compare-and-set an open batch no runner holds to ``worker_id``: the oldest of a
        tenant with no batch in progress (held by a runner), else the oldest. The keys
        earlier runners minted for it are revoked in the same transaction."""
        waiting = select(t.Batch.id, t.Batch.status).where(
            t.Batch.status.in_(OPEN_STATUSES), t.Batch.worker_id.is_(None))
        busy = select(t.Batch.tenant_id).where(t.Batch.status.in_(OPEN_STATUSES),
                                               t.Batch.worker_id.is_not(None))
        oldest = (t.Batch.created_at, t.Batch.id)
        with self._registry.session() as s:
            idle = list(s.execute(waiting.where(t.Batch.tenant_id.not_in(busy))
                                  .order_by(*oldest).limit(candidates)))
            rows = idle + [row for row in s.execute(waiting.order_by(*oldest)
                                                    .limit(candidates))
                           if row not in idle]
        for batch_id, status in rows:
            with self._registry.session() as s:
                if _set_if(s, batch_id, {"status": status, "worker_id": None},
                           worker_id=worker_id, heartbeat_at=utcnow(),
                           attempts=t.Batch.attempts + 1):
                    row = s.get(t.Batch, batch_id, populate_existing=True)
                    assert row is not None
                    _revoke_keys(s, row.tenant_id, batch_id)
                    return BatchRecord.of(row)
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
        """End the batch with a final ``status`` and its files, revoking its runners' keys;
        False if the runner no longer held it (the files are then the caller's to
        delete)."""
        values: dict[str, Any] = {"status": status, STATUS_AT[status]: utcnow(),
                                  "worker_id": None, "output_file_id": output_file_id,
                                  "error_file_id": error_file_id}
        if errors is not None:
            values["errors"] = errors
        with self._registry.session() as s:
            if not _set_if(s, batch_id, {"worker_id": worker_id}, **values):
                return False
            row = s.get(t.Batch, batch_id, populate_existing=True)
            assert row is not None
            _revoke_keys(s, row.tenant_id, batch_id)
            return True

    def requeue_stale(self, stale_after: float,
                      max_attempts: int = MAX_ATTEMPTS) -> list[str]:
        """Let go of batches whose runner stopped beating, for the next runner to go on
        with (failed after ``max_attempts`` dead runners), revoking the keys minted for
        them; returns the ids let go."""
        before = utcnow() - timedelta(seconds=stale_after)
        released = []
        with self._registry.session() as s:
            stale = list(s.scalars(select(t.Batch).where(
                t.Batch.status.in_(OPEN_STATUSES), t.Batch.worker_id.is_not(None),
                t.Batch.heartbeat_at < before)))
            for batch in stale:
                if batch.attempts >= max_attempts:
                    message = (f"the batch's runner stopped answering (died or failed) "
                               f"{batch.attempts} times; the runners' logs say why")
                    if _set_if(s, batch.id, {"worker_id": batch.worker_id},
                               status=BatchStatus.FAILED, worker_id=None, failed_at=utcnow(),
                               errors=[{"code": "worker_lost", "message": message,
                                        "param": None, "line": None}]):
                        _revoke_keys(s, batch.tenant_id, batch.id)
                elif _set_if(s, batch.id, {"worker_id": batch.worker_id}, worker_id=None):
                    _revoke_keys(s, batch.tenant_id, batch.id)
                    released.append(batch.id)
        return released

    # -- answered lines ------------------------------------------------------------------

    def put_result(self, batch_id: str, worker_id: str, line: int, custom_id: str, ok: bool,
                   record: dict[str, Any], usage: dict[str, int] | None = None, *,
                   completed: bool | None = None) -> bool:
        """Store one answered line of a batch the runner holds (``ok``: for the output
        file, else the error file) and count it as ``completed`` (default: ``ok``; an
        error status serve answered is an output line that failed) or failed, adding its
        ``usage`` (``add_usage``); False, changing nothing, if that line was stored already
        or the runner no longer holds the batch (then it must stop: another runner goes on
        with it, or it is over)."""
        try:
            with self._registry.session() as s:
                # The guarded write first: it takes the batch's row (and SQLite's write
                # lock) before the counts are read.
                held = s.execute(update(t.Batch).where(
                    t.Batch.id == batch_id, t.Batch.worker_id == worker_id,
                    t.Batch.status.in_(OPEN_STATUSES)).values(heartbeat_at=utcnow()))
                if held.rowcount != 1:
                    return False
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


def _revoke_keys(session: Session, tenant_id: str, batch_id: str) -> None:
    """Revoke the tenant's live keys named for the batch (``BatchRows.key_name``), in the
    caller's transaction: a runner that died, or lost its claim, could not revoke its own."""
    revoke_keys_named(session, tenant_id, BatchRows.key_name(batch_id))
