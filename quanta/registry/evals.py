"""The eval tables' row API: evals (OpenAI's Evals API), their runs as queued work, and
the runs' graded items.

An eval is a tenant's item schema and testing criteria; a run of it is claimed,
heart-beaten and finished by an eval worker the way export jobs are by quantize workers,
with the same compare-and-set guards: a claim sets ``in_progress`` only where the run is
still ``queued``; every later write names the ``worker_id`` that claimed it, so a worker
whose heartbeat went stale (killed, say) and whose run another worker took over can no
longer touch it. A stale run goes back to the queue (its stored items kept: the next
worker goes on from there), and fails once its workers died ``max_attempts`` times. A
claim prefers a tenant with no run in progress, so that one tenant's long run does not
hold every worker while another tenant's runs wait.

A worker asks serve with an API key minted in the run's tenant's name (``key_name``);
whatever becomes of the worker, those keys are revoked when the run is claimed (a dead
worker's, before the next one mints its own), given back, deleted, and when it ends in
any way (finished, canceled while queued, failed or canceled for a lost worker).

Each graded item is an ``eval_output_item`` row, stored once per (run, item index)
whoever writes it; the run's totals (``result_counts``, ``per_testing_criteria_results``,
``per_model_usage``) change in the transaction that stores the item, so they never
disagree with the rows. Lists page with OpenAI's cursor (``after`` an id), in either
order; another tenant's eval, run or item raises the same NotFoundError as none.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from quanta.registry import tables as t
from quanta.registry.db import compare_and_set, keyset_page
from quanta.registry.errors import NotFoundError
from quanta.registry.ids import new_id
from quanta.registry.records import EvalOutputItemRecord, EvalRecord, EvalRunRecord
from quanta.registry.tables import utcnow
from quanta.registry.tenants import revoke_keys_named
from quanta.types import EvalRunStatus

if TYPE_CHECKING:
    from quanta.registry.registry import Registry

MAX_ATTEMPTS = 3
USAGE_FIELDS = ("invocation_count", "prompt_tokens", "completion_tokens", "total_tokens",
                "cached_tokens")
ITEM_STATUSES = ("pass", "fail", "error")
_COUNT_OF_STATUS = {"pass": "passed", "fail": "failed", "error": "errored"}


@dataclass(frozen=True)
class EvalPulse:
    """What a heartbeat learns: whether the worker still holds the run, and whether its
    owner asked to cancel it."""

    owned: bool
    cancel: bool = False


def empty_counts() -> dict[str, int]:
    """OpenAI's ``result_counts`` of a run nothing of which is graded yet."""
    return {"total": 0, "errored": 0, "failed": 0, "passed": 0}


class EvalRows:
    def __init__(self, registry: Registry) -> None:
        self._registry = registry

    @staticmethod
    def key_name(run_id: str) -> str:
        """The name of the API keys a worker mints to sample and grade the run (as
        ``quanta tenants keys`` lists them); this module revokes them."""
        return f"eval run {run_id}"

    # -- evals ---------------------------------------------------------------------------

    def create(self, *, tenant_id: str, name: str, data_source_config: dict[str, Any],
               testing_criteria: list[dict[str, Any]],
               metadata: dict[str, str] | None = None) -> EvalRecord:
        now = utcnow()
        with self._registry.session() as s:
            row = t.Eval(id=new_id("eval"), tenant_id=tenant_id, name=name,
                         data_source_config=data_source_config,
                         testing_criteria=testing_criteria, meta=metadata, created_at=now,
                         updated_at=now)
            s.add(row)
            s.flush()
            return EvalRecord.of(row)

    def owned(self, tenant_id: str, eval_id: str) -> EvalRecord:
        """The tenant's eval; another tenant's raises the same NotFoundError as none."""
        with self._registry.session() as s:
            row = s.get(t.Eval, eval_id)
            if row is None or row.tenant_id != tenant_id:
                raise NotFoundError(f"No such eval: {eval_id}")
            return EvalRecord.of(row)

    def list(self, tenant_id: str, *, after: str | None = None, limit: int = 20,
             order: str = "asc", order_by: str = "created_at"
             ) -> tuple[list[EvalRecord], bool]:
        """One page of the tenant's evals by ``order_by`` (created_at or updated_at), and
        whether more follow."""
        key = t.Eval.updated_at if order_by == "updated_at" else t.Eval.created_at
        with self._registry.session() as s:
            rows = keyset_page(s, t.Eval, key, t.Eval.tenant_id, tenant_id, after=after,
                               order=order, limit=limit, missing=f"No such eval: {after}")
            return EvalRecord.all(rows[:limit]), len(rows) > limit

    def update(self, tenant_id: str, eval_id: str, *, name: str | None = None,
               metadata: dict[str, str] | None = None,
               set_metadata: bool = False) -> EvalRecord:
        """Rename the eval and/or replace its metadata (``set_metadata``: also to None)."""
        self.owned(tenant_id, eval_id)
        with self._registry.session() as s:
            row = s.get(t.Eval, eval_id, with_for_update=True)
            if row is None:
                raise NotFoundError(f"No such eval: {eval_id}")
            if name is not None:
                row.name = name
            if set_metadata:
                row.meta = metadata
            row.updated_at = utcnow()
            s.flush()
            return EvalRecord.of(row)

    def delete(self, tenant_id: str, eval_id: str) -> None:
        """Delete the eval with its runs and their items (a run in progress stops at its
        worker's next heartbeat)."""
        self.owned(tenant_id, eval_id)
        with self._registry.session() as s:
            runs = select(t.EvalRun.id).where(t.EvalRun.eval_id == eval_id)
            for run_id in list(s.scalars(runs)):
                _revoke_keys(s, tenant_id, run_id)
            s.execute(delete(t.EvalOutputItem).where(t.EvalOutputItem.run_id.in_(runs)))
            s.execute(delete(t.EvalRun).where(t.EvalRun.eval_id == eval_id))
            s.execute(delete(t.Eval).where(t.Eval.id == eval_id))

    # -- runs: the API's side ------------------------------------------------------------

    def create_run(self, *, tenant_id: str, eval_id: str, name: str, model: str | None,
                   data_source: dict[str, Any], criteria_ids: Iterable[str],
                   metadata: dict[str, str] | None = None) -> EvalRunRecord:
        """A queued run of the tenant's eval, its totals at zero for each criterion."""
        self.owned(tenant_id, eval_id)
        with self._registry.session() as s:
            row = t.EvalRun(
                id=new_id("evalrun"), eval_id=eval_id, tenant_id=tenant_id, name=name,
                model=model, data_source=data_source, meta=metadata,
                status=EvalRunStatus.QUEUED, result_counts=empty_counts(),
                per_model_usage=[],
                per_testing_criteria_results=[{"testing_criteria": c, "passed": 0,
                                               "failed": 0} for c in criteria_ids],
                attempts=0, cancel_requested=False, created_at=utcnow())
            s.add(row)
            s.flush()
            return EvalRunRecord.of(row)

    def get_run(self, run_id: str) -> EvalRunRecord | None:
        with self._registry.session() as s:
            return EvalRunRecord.maybe(s.get(t.EvalRun, run_id, populate_existing=True))

    def owned_run(self, tenant_id: str, eval_id: str, run_id: str) -> EvalRunRecord:
        """The tenant's run of ``eval_id``; anything else raises NotFoundError."""
        run = self.get_run(run_id)
        if run is None or run.tenant_id != tenant_id or run.eval_id != eval_id:
            raise NotFoundError(f"No such eval run: {run_id}")
        return run

    def list_runs(self, tenant_id: str, eval_id: str, *, after: str | None = None,
                  limit: int = 20, order: str = "asc", status: str | None = None
                  ) -> tuple[list[EvalRunRecord], bool]:
        """One page of the eval's runs by creation (only those in ``status``)."""
        self.owned(tenant_id, eval_id)
        with self._registry.session() as s:
            rows = keyset_page(s, t.EvalRun, t.EvalRun.created_at, t.EvalRun.eval_id, eval_id,
                               after=after, order=order, limit=limit,
                               missing=f"No such eval run: {after}",
                               where=() if status is None else (t.EvalRun.status == status,))
            return EvalRunRecord.all(rows[:limit]), len(rows) > limit

    def request_cancel(self, tenant_id: str, eval_id: str, run_id: str) -> EvalRunRecord:
        """Cancel a queued run now; one in progress when its worker next beats (the items
        graded so far are kept). A finished run is left as it is."""
        self.owned_run(tenant_id, eval_id, run_id)
        with self._registry.session() as s:
            if _set_if(s, run_id, {"status": EvalRunStatus.QUEUED},
                       status=EvalRunStatus.CANCELED, cancel_requested=True,
                       finished_at=utcnow()):
                _revoke_keys(s, tenant_id, run_id)  # a dead worker's, if it was resumable
            else:
                _set_if(s, run_id, {"status": EvalRunStatus.IN_PROGRESS},
                        cancel_requested=True)
        return self.owned_run(tenant_id, eval_id, run_id)

    def delete_run(self, tenant_id: str, eval_id: str, run_id: str) -> None:
        """Delete the run and its items (in progress, its worker stops at its next beat)."""
        self.owned_run(tenant_id, eval_id, run_id)
        with self._registry.session() as s:
            _revoke_keys(s, tenant_id, run_id)
            s.execute(delete(t.EvalOutputItem).where(t.EvalOutputItem.run_id == run_id))
            s.execute(delete(t.EvalRun).where(t.EvalRun.id == run_id))

    # -- runs: the worker's side ---------------------------------------------------------

    def claim_next(self, worker_id: str, candidates: int = 20) -> EvalRunRecord | None:
        """Compare-and-set a queued run to ``in_progress`` for ``worker_id``: the oldest of a
        tenant with no run in progress, else the oldest. The keys earlier workers minted
        for it are revoked in the same transaction. On PostgreSQL the candidate rows
        other workers are claiming are skipped (``SKIP LOCKED``), on SQLite the
        compare-and-set alone decides."""
        waiting = select(t.EvalRun.id).where(t.EvalRun.status == EvalRunStatus.QUEUED)
        busy = select(t.EvalRun.tenant_id).where(
            t.EvalRun.status == EvalRunStatus.IN_PROGRESS)
        idle = waiting.where(t.EvalRun.tenant_id.not_in(busy))
        oldest = (t.EvalRun.created_at, t.EvalRun.id)
        with self._registry.session() as s:
            postgres = s.get_bind().dialect.name == "postgresql"
            ids: list[str] = []
            for query in (idle, waiting):
                query = query.order_by(*oldest).limit(candidates)
                if postgres:
                    query = query.with_for_update(skip_locked=True)
                ids += [i for i in s.scalars(query) if i not in ids]
            if postgres:
                return self._claim(s, ids, worker_id)
        for run_id in ids:
            with self._registry.session() as s:
                claimed = self._claim(s, [run_id], worker_id)
                if claimed is not None:
                    return claimed
        return None

    def _claim(self, s: Session, ids: list[str], worker_id: str) -> EvalRunRecord | None:
        now = utcnow()
        for run_id in ids:
            if _set_if(s, run_id, {"status": EvalRunStatus.QUEUED},
                       status=EvalRunStatus.IN_PROGRESS, worker_id=worker_id,
                       heartbeat_at=now, attempts=t.EvalRun.attempts + 1,
                       started_at=func.coalesce(t.EvalRun.started_at, now)):
                row = s.get(t.EvalRun, run_id, populate_existing=True)
                assert row is not None
                _revoke_keys(s, row.tenant_id, run_id)  # a dead worker's, resumed here
                return EvalRunRecord.of(row)
        return None

    def heartbeat(self, run_id: str, worker_id: str) -> EvalPulse:
        with self._registry.session() as s:
            if not _set_if(s, run_id, {"status": EvalRunStatus.IN_PROGRESS,
                                       "worker_id": worker_id}, heartbeat_at=utcnow()):
                return EvalPulse(owned=False)
            row = s.get(t.EvalRun, run_id, populate_existing=True)
            return EvalPulse(owned=True, cancel=bool(row and row.cancel_requested))

    def finish(self, run_id: str, worker_id: str, status: EvalRunStatus, *,
               error: dict[str, Any] | None = None) -> bool:
        """End the worker's run (completed, canceled or failed); False if it no longer
        held it."""
        with self._registry.session() as s:
            if not _set_if(s, run_id, {"status": EvalRunStatus.IN_PROGRESS,
                                       "worker_id": worker_id},
                           status=status, error=error, finished_at=utcnow(), worker_id=None):
                return False
            _revoke_run_keys(s, run_id)
            return True

    def release(self, run_id: str, worker_id: str) -> bool:
        """Give the worker's run back to the queue unfinished (its worker is stopping:
        the next one goes on from the items stored, and this attempt does not count
        towards ``max_attempts``); False if it no longer held it."""
        with self._registry.session() as s:
            if not _set_if(s, run_id, {"status": EvalRunStatus.IN_PROGRESS,
                                       "worker_id": worker_id},
                           status=EvalRunStatus.QUEUED, worker_id=None,
                           attempts=t.EvalRun.attempts - 1):
                return False
            _revoke_run_keys(s, run_id)
            return True

    def requeue_stale(self, stale_after: float,
                      max_attempts: int = MAX_ATTEMPTS) -> list[str]:
        """Put runs whose worker stopped beating back in the queue (canceled if their
        owner asked, failed after ``max_attempts`` dead workers), revoking the keys their
        workers minted; returns the ids re-queued."""
        before = utcnow() - timedelta(seconds=stale_after)
        requeued = []
        with self._registry.session() as s:
            stale = list(s.scalars(select(t.EvalRun).where(
                t.EvalRun.status == EvalRunStatus.IN_PROGRESS,
                t.EvalRun.heartbeat_at < before)))
            for run in stale:
                status = (EvalRunStatus.CANCELED if run.cancel_requested
                          else EvalRunStatus.FAILED if run.attempts >= max_attempts
                          else EvalRunStatus.QUEUED)
                error = None if status != EvalRunStatus.FAILED else {
                    "code": "worker_lost",
                    "message": f"the run's worker died {run.attempts} times"}
                if not _set_if(s, run.id, {"status": EvalRunStatus.IN_PROGRESS,
                                           "worker_id": run.worker_id},
                               status=status, worker_id=None, error=error,
                               finished_at=None if status == EvalRunStatus.QUEUED
                               else utcnow()):
                    continue
                _revoke_keys(s, run.tenant_id, run.id)  # its dead worker's
                if status == EvalRunStatus.QUEUED:
                    requeued.append(run.id)
        return requeued

    # -- output items --------------------------------------------------------------------

    def put_item(self, run_id: str, worker_id: str, *, datasource_item_id: int,
                 datasource_item: dict[str, Any], sample: dict[str, Any],
                 results: list[dict[str, Any]], status: str,
                 criteria: Mapping[str, bool] | None = None,
                 usage: Iterable[Mapping[str, Any]] = ()) -> bool:
        """Store one graded item of a run the worker holds and add it to the run's totals
        (``criteria``: each criterion's id -> passed; ``usage``: one entry per model asked,
        OpenAI's ``per_model_usage`` fields). False, changing nothing, if the item was
        stored already or the worker no longer holds the run."""
        if status not in ITEM_STATUSES:
            raise ValueError(f"an output item's status is one of {ITEM_STATUSES}")
        try:
            with self._registry.session() as s:
                # The guarded write first: it takes the run's row (and SQLite's write lock)
                # before the totals are read.
                if not _set_if(s, run_id, {"status": EvalRunStatus.IN_PROGRESS,
                                           "worker_id": worker_id}, heartbeat_at=utcnow()):
                    return False
                row = s.get(t.EvalRun, run_id, populate_existing=True, with_for_update=True)
                assert row is not None
                s.add(t.EvalOutputItem(
                    id=new_id("outputitem"), run_id=run_id, eval_id=row.eval_id,
                    tenant_id=row.tenant_id, datasource_item_id=datasource_item_id,
                    datasource_item=datasource_item, sample=sample, results=results,
                    status=status, created_at=utcnow()))
                s.flush()
                counts = {**empty_counts(), **(row.result_counts or {})}
                counts["total"] += 1
                counts[_COUNT_OF_STATUS[status]] += 1
                row.result_counts = counts
                row.per_testing_criteria_results = _add_criteria(
                    row.per_testing_criteria_results or [], criteria or {})
                row.per_model_usage = _add_usage(row.per_model_usage or [], usage)
        except IntegrityError:
            return False
        return True

    def graded_indexes(self, run_id: str) -> set[int]:
        """The item indexes of the run stored so far (a resumed run skips them)."""
        with self._registry.session() as s:
            return set(s.scalars(select(t.EvalOutputItem.datasource_item_id)
                                 .where(t.EvalOutputItem.run_id == run_id)))

    def list_items(self, tenant_id: str, eval_id: str, run_id: str, *,
                   after: str | None = None, limit: int = 20, order: str = "asc",
                   status: str | None = None) -> tuple[list[EvalOutputItemRecord], bool]:
        """One page of the run's items in the data source's order (only those in
        ``status``: pass or fail)."""
        self.owned_run(tenant_id, eval_id, run_id)
        item = t.EvalOutputItem
        with self._registry.session() as s:
            rows = keyset_page(s, item, item.datasource_item_id, item.run_id, run_id,
                               after=after, order=order, limit=limit,
                               missing=f"No such output item: {after}",
                               where=() if status is None else (item.status == status,))
            return EvalOutputItemRecord.all(rows[:limit]), len(rows) > limit

    def owned_item(self, tenant_id: str, eval_id: str, run_id: str,
                   item_id: str) -> EvalOutputItemRecord:
        with self._registry.session() as s:
            row = s.get(t.EvalOutputItem, item_id)
            if (row is None or row.tenant_id != tenant_id or row.eval_id != eval_id
                    or row.run_id != run_id):
                raise NotFoundError(f"No such output item: {item_id}")
            return EvalOutputItemRecord.of(row)


def _add_criteria(totals: list[dict[str, Any]],
                  criteria: Mapping[str, bool]) -> list[dict[str, Any]]:
    """``per_testing_criteria_results`` with one item's outcome per criterion added."""
    out = [dict(entry) for entry in totals]
    for criterion, passed in criteria.items():
        entry = next((e for e in out if e.get("testing_criteria") == criterion), None)
        if entry is None:
            entry = {"testing_criteria": criterion, "passed": 0, "failed": 0}
            out.append(entry)
        entry["passed" if passed else "failed"] += 1
    return out


def _add_usage(totals: list[dict[str, Any]],
               usage: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """``per_model_usage`` with one item's model calls added, per model name."""
    out = [dict(entry) for entry in totals]
    for call in usage:
        name = str(call.get("model_name") or "unknown")
        entry = next((e for e in out if e.get("model_name") == name), None)
        if entry is None:
            entry = {"model_name": name, **dict.fromkeys(USAGE_FIELDS, 0)}
            out.append(entry)
        for key in USAGE_FIELDS:
            entry[key] = int(entry.get(key, 0)) + int(call.get(key) or 0)
    return out


def _set_if(session: Session, run_id: str, expect: dict[str, Any], **values: Any) -> bool:
    return compare_and_set(session, t.EvalRun, run_id, expect, **values)


def _revoke_keys(session: Session, tenant_id: str, run_id: str) -> None:
    """Revoke the tenant's live keys named for the run (``EvalRows.key_name``), in the
    caller's transaction: a worker that died, or lost its claim, could not revoke its own."""
    revoke_keys_named(session, tenant_id, EvalRows.key_name(run_id))


def _revoke_run_keys(session: Session, run_id: str) -> None:
    row = session.get(t.EvalRun, run_id, populate_existing=True)
    if row is not None:
        _revoke_keys(session, row.tenant_id, run_id)
