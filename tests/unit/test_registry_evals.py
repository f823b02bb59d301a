"""Eval runs as queued work: claimed, heart-beaten, re-queued and finished by workers with
compare-and-set guards; each graded item stored once, its run's totals with it."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from quanta.config import Settings
from quanta.registry import EvalRunRecord, NotFoundError, Registry
from quanta.tenancy import create_key
from quanta.types import EvalRunStatus


@pytest.fixture
def registry(tmp_path: Path) -> Registry:
    return Registry.open(Settings(home=tmp_path / "home"))


def _run(registry: Registry, tenant: str = "local") -> EvalRunRecord:
    registry.tenants.ensure(tenant)
    ev = registry.evals.create(tenant_id=tenant, name="e", data_source_config={},
                               testing_criteria=[{"id": "c1"}, {"id": "c2"}])
    return registry.evals.create_run(tenant_id=tenant, eval_id=ev.id, name="r", model="m",
                                     data_source={}, criteria_ids=["c1", "c2"])


def _put(registry: Registry, run: EvalRunRecord, worker: str, index: int, status: str = "pass",
         passed: bool = True) -> bool:
    return registry.evals.put_item(
        run.id, worker, datasource_item_id=index, datasource_item={"i": index}, sample={},
        results=[], status=status, criteria={"c1": passed, "c2": True},
        usage=[{"model_name": "m", "invocation_count": 1, "prompt_tokens": 3,
                "completion_tokens": 2, "total_tokens": 5, "cached_tokens": 0}])


def test_one_claim_per_run_and_only_the_holder_writes(registry: Registry) -> None:
    run = _run(registry)
    assert run.status == EvalRunStatus.QUEUED and run.result_counts["total"] == 0
    claimed = registry.evals.claim_next("w1")
    assert claimed is not None and (claimed.id, claimed.worker_id) == (run.id, "w1")
    assert claimed.status == EvalRunStatus.IN_PROGRESS and claimed.started_at is not None
    assert registry.evals.claim_next("w2") is None
    assert not registry.evals.heartbeat(run.id, "w2").owned
    assert not _put(registry, run, "w2", 0)  # not the holder: nothing stored
    assert _put(registry, run, "w1", 0) and _put(registry, run, "w1", 1, "fail", passed=False)
    assert not _put(registry, run, "w1", 1)  # stored once, whoever asks again
    assert registry.evals.graded_indexes(run.id) == {0, 1}
    now = registry.evals.get_run(run.id)
    assert now.result_counts == {"total": 2, "passed": 1, "failed": 1, "errored": 0}
    assert now.per_testing_criteria_results == [
        {"testing_criteria": "c1", "passed": 1, "failed": 1},
        {"testing_criteria": "c2", "passed": 2, "failed": 0}]
    assert now.per_model_usage == [{"model_name": "m", "invocation_count": 2,
                                    "prompt_tokens": 6, "completion_tokens": 4,
                                    "total_tokens": 10, "cached_tokens": 0}]
    assert not registry.evals.finish(run.id, "w2", EvalRunStatus.COMPLETED)
    assert registry.evals.finish(run.id, "w1", EvalRunStatus.COMPLETED)
    done = registry.evals.get_run(run.id)
    assert (done.status, done.worker_id) == (EvalRunStatus.COMPLETED, None)
    assert not _put(registry, run, "w1", 2)  # a finished run takes no more items


def test_a_stale_run_is_requeued_keeping_its_items_then_fails(registry: Registry) -> None:
    run = _run(registry)
    registry.evals.claim_next("w1")
    assert _put(registry, run, "w1", 0)
    time.sleep(0.05)
    assert registry.evals.requeue_stale(0.01, max_attempts=2) == [run.id]
    assert not _put(registry, run, "w1", 1)  # the dead worker's writes no longer land
    again = registry.evals.claim_next("w2")
    assert again.attempts == 2 and again.result_counts["total"] == 1
    assert registry.evals.graded_indexes(run.id) == {0}
    time.sleep(0.05)
    assert registry.evals.requeue_stale(0.01, max_attempts=2) == []
    failed = registry.evals.get_run(run.id)
    assert failed.status == EvalRunStatus.FAILED and failed.error["code"] == "worker_lost"


def test_cancel_queued_at_once_in_progress_at_the_next_heartbeat(registry: Registry) -> None:
    queued = _run(registry)
    assert registry.evals.request_cancel("local", queued.eval_id, queued.id).status == (
        EvalRunStatus.CANCELED)
    running = _run(registry)
    registry.evals.claim_next("w1")
    asked = registry.evals.request_cancel("local", running.eval_id, running.id)
    assert asked.status == EvalRunStatus.IN_PROGRESS and asked.cancel_requested
    assert registry.evals.heartbeat(running.id, "w1").cancel
    time.sleep(0.05)  # a worker that died after the request: its run ends canceled
    registry.evals.requeue_stale(0.01)
    assert registry.evals.get_run(running.id).status == EvalRunStatus.CANCELED


def test_lists_page_both_ways_and_filter(registry: Registry) -> None:
    first = _run(registry)
    second = registry.evals.create_run(tenant_id="local", eval_id=first.eval_id, name="r2",
                                       model=None, data_source={}, criteria_ids=[])
    runs, more = registry.evals.list_runs("local", first.eval_id, limit=1)
    assert [r.id for r in runs] == [first.id] and more
    runs, more = registry.evals.list_runs("local", first.eval_id, after=first.id)
    assert [r.id for r in runs] == [second.id] and not more
    runs, _ = registry.evals.list_runs("local", first.eval_id, order="desc")
    assert [r.id for r in runs] == [second.id, first.id]
    registry.evals.claim_next("w1")
    for index, status in enumerate(["pass", "fail", "pass", "error"]):
        _put(registry, first, "w1", index, status)
    items, more = registry.evals.list_items("local", first.eval_id, first.id, status="pass")
    assert [i.datasource_item_id for i in items] == [0, 2] and not more
    items, more = registry.evals.list_items("local", first.eval_id, first.id, order="desc",
                                            limit=2)
    assert [i.datasource_item_id for i in items] == [3, 2] and more
    items, _ = registry.evals.list_items("local", first.eval_id, first.id, order="desc",
                                         after=items[-1].id)
    assert [i.datasource_item_id for i in items] == [1, 0]
    with pytest.raises(NotFoundError):
        registry.evals.list_runs("other", first.eval_id)
    with pytest.raises(NotFoundError):
        registry.evals.owned_item("other", first.eval_id, first.id, items[0].id)


@pytest.mark.postgres
def test_claims_and_items_on_postgresql(postgres_url: str, tmp_path: Path) -> None:
    registry = Registry.open(Settings(home=tmp_path / "home", database_url=postgres_url))
    runs = [_run(registry) for _ in range(3)]
    claimed = [registry.evals.claim_next(f"w{i}") for i in range(4)]
    assert sorted(c.id for c in claimed[:3]) == sorted(r.id for r in runs)
    assert claimed[3] is None
    assert _put(registry, runs[0], claimed[[c.id for c in claimed[:3]].index(runs[0].id)]
                .worker_id, 0)
    holder = registry.evals.get_run(runs[0].id).worker_id
    assert not _put(registry, runs[0], holder, 0)
    assert registry.evals.get_run(runs[0].id).result_counts["total"] == 1


def _key(registry: Registry, run: EvalRunRecord) -> str:
    """A key minted for the run, as its worker mints one (and a killed one leaves live)."""
    row, _ = create_key(registry, run.tenant_id, name=registry.evals.key_name(run.id))
    return row.id


def _live(registry: Registry, key_id: str) -> bool:
    keys = registry.tenants.keys(None)
    return next(k for k in keys if k.id == key_id).revoked_at is None


def test_keys_a_dead_worker_minted_are_revoked_when_its_run_is_claimed_or_ends(
        registry: Registry) -> None:
    run = _run(registry)
    unrelated = create_key(registry, "local", name="eval run of someone else")[0].id
    registry.evals.claim_next("w1")
    dead = _key(registry, run)  # w1 dies: its key stays live...
    time.sleep(0.05)
    assert registry.evals.requeue_stale(0.01, max_attempts=3) == [run.id]
    assert not _live(registry, dead)  # ...until its run goes back to the queue
    leftover = _key(registry, run)
    assert registry.evals.claim_next("w2").id == run.id
    assert not _live(registry, leftover)  # a resume revokes what was left before minting
    lost = _key(registry, run)
    time.sleep(0.05)
    registry.evals.requeue_stale(0.01, max_attempts=2)  # worker_lost: failed
    assert registry.evals.get_run(run.id).status == EvalRunStatus.FAILED
    assert not _live(registry, lost)

    queued = _run(registry)
    stray = _key(registry, queued)
    registry.evals.request_cancel("local", queued.eval_id, queued.id)  # no worker holds it
    assert not _live(registry, stray)

    finished = _run(registry)
    assert registry.evals.claim_next("w3").id == finished.id
    held = _key(registry, finished)
    assert registry.evals.finish(finished.id, "w3", EvalRunStatus.COMPLETED)
    assert not _live(registry, held)

    deleted = _run(registry)
    orphan = _key(registry, deleted)
    registry.evals.delete_run("local", deleted.eval_id, deleted.id)
    assert not _live(registry, orphan)
    assert _live(registry, unrelated)


def test_a_stopping_worker_gives_its_run_back(registry: Registry) -> None:
    run = _run(registry)
    registry.evals.claim_next("w1")
    key = _key(registry, run)
    assert not registry.evals.release(run.id, "w2")  # not the holder
    assert registry.evals.release(run.id, "w1")
    back = registry.evals.get_run(run.id)
    assert (back.status, back.worker_id, back.attempts) == (EvalRunStatus.QUEUED, None, 0)
    assert not _live(registry, key)
    assert registry.evals.claim_next("w2").attempts == 1


def test_a_claim_prefers_a_tenant_with_no_run_in_progress(registry: Registry) -> None:
    long, second = _run(registry, "acme"), _run(registry, "acme")
    theirs = _run(registry, "globex")  # queued after both of acme's
    assert registry.evals.claim_next("lane1").id == long.id
    assert registry.evals.claim_next("lane2").id == theirs.id  # not acme's second
    assert registry.evals.claim_next("lane3").id == second.id  # else the oldest
    assert registry.evals.claim_next("lane4") is None
