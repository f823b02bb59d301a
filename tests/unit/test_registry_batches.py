"""The batch row API: claims guarded by compare-and-set (and fair between tenants),
answered lines stored once each with their counts and only by the runner holding the
batch, stale runners let go (and the batch failed after too many), runners' keys
revoked."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from quanta.config import Settings
from quanta.registry import NotFoundError, Registry
from quanta.tenancy import AuthError, authenticate, create_key, create_tenant
from quanta.types import BatchStatus


@pytest.fixture
def registry(tmp_path: Path) -> Registry:
    registry = Registry.open(Settings(home=tmp_path / "home"))
    create_tenant(registry, "other")
    return registry


def _batch(registry: Registry, tenant: str = "local", total: int = 3) -> str:
    return registry.batches.create(tenant_id=tenant, endpoint="/v1/chat/completions",
                                   input_file_id="file-x", completion_window="24h",
                                   window=timedelta(hours=24), total=total).id


def test_one_runner_claims_a_batch_and_only_it_writes(registry: Registry) -> None:
    rows = registry.batches
    batch_id = _batch(registry)
    claimed = rows.claim_next("a")
    assert claimed is not None and claimed.id == batch_id and claimed.attempts == 1
    assert rows.claim_next("b") is None
    assert not rows.heartbeat(batch_id, "b").owned
    assert not rows.advance(batch_id, "b", BatchStatus.IN_PROGRESS)
    assert rows.advance(batch_id, "a", BatchStatus.IN_PROGRESS)
    assert rows.get(batch_id).in_progress_at is not None
    assert not rows.finish(batch_id, "b", BatchStatus.COMPLETED)
    assert rows.finish(batch_id, "a", BatchStatus.COMPLETED, output_file_id="file-o")
    done = rows.get(batch_id)
    assert (done.status, done.worker_id, done.output_file_id) == ("completed", None, "file-o")
    assert rows.claim_next("b") is None  # finished: nothing to claim


def test_each_line_is_stored_and_counted_once(registry: Registry) -> None:
    rows = registry.batches
    batch_id = _batch(registry)
    rows.claim_next("a")
    answer = {"custom_id": "a", "response": {"status_code": 200}}
    usage = {"input_tokens": 3, "output_tokens": 2, "total_tokens": 5}
    assert rows.put_result(batch_id, "a", 2, "b", True, answer, usage)
    assert not rows.put_result(batch_id, "a", 2, "b", True, answer, usage)  # stored already
    assert rows.put_result(batch_id, "a", 1, "a", True, answer, usage, completed=False)
    assert rows.put_result(batch_id, "a", 3, "c", False, {"custom_id": "c", "error": {}})
    batch = rows.get(batch_id)
    assert batch.request_counts == {"total": 3, "completed": 1, "failed": 2}
    assert batch.usage["input_tokens"] == 6 and batch.usage["total_tokens"] == 10
    assert rows.answered_lines(batch_id) == {1, 2, 3}
    assert [r.line for r in rows.results(batch_id)] == [1, 2, 3]
    assert [r.line for r in rows.results(batch_id, ok=False)] == [3]


def test_a_stale_runner_is_let_go_and_the_batch_fails_after_three(registry: Registry) -> None:
    rows = registry.batches
    batch_id = _batch(registry)
    for attempt in range(1, 4):
        assert rows.claim_next(f"runner-{attempt}").attempts == attempt
        assert rows.requeue_stale(stale_after=60) == []  # still beating
        released = rows.requeue_stale(stale_after=-1)
        assert released == ([batch_id] if attempt < 3 else [])
    failed = rows.get(batch_id)
    assert failed.status == "failed" and failed.errors[0]["code"] == "worker_lost"


def test_cancel_and_the_tenants_listing(registry: Registry) -> None:
    rows = registry.batches
    first, second, third = (_batch(registry) for _ in range(3))
    theirs = _batch(registry, "other")
    page, more = rows.for_tenant("local")
    assert [b.id for b in page] == [third, second, first] and not more
    page, more = rows.for_tenant("local", after=third, limit=1)
    assert [b.id for b in page] == [second] and more
    with pytest.raises(NotFoundError):
        rows.for_tenant("local", after=theirs)
    with pytest.raises(NotFoundError):
        rows.request_cancel("local", theirs)

    assert rows.request_cancel("local", first).status == "cancelled"  # never started
    rows.claim_next("a")  # takes the oldest open one: second
    cancelling = rows.request_cancel("local", second)
    assert cancelling.status == "cancelling" and cancelling.cancel_requested
    assert rows.heartbeat(second, "a").cancel
    assert not rows.advance(second, "a", BatchStatus.FINALIZING)  # a cancel came first


def test_only_the_runner_holding_the_batch_stores_lines(registry: Registry) -> None:
    """A runner whose claim went stale and was taken over, or whose batch ended, has its
    answers refused: the counts and the files are the holder's alone."""
    rows = registry.batches
    batch_id = _batch(registry)
    answer = {"custom_id": "a", "response": {"status_code": 200}}
    assert not rows.put_result(batch_id, "a", 1, "a", True, answer)  # not claimed yet
    rows.claim_next("a")
    assert rows.put_result(batch_id, "a", 1, "a", True, answer)
    rows.requeue_stale(stale_after=-1)
    rows.claim_next("b")
    assert not rows.put_result(batch_id, "a", 2, "b", True, answer)  # the stale runner's
    assert rows.put_result(batch_id, "b", 2, "b", True, answer)
    assert rows.finish(batch_id, "b", BatchStatus.COMPLETED)
    assert not rows.put_result(batch_id, "b", 3, "c", True, answer)  # over
    assert rows.answered_lines(batch_id) == {1, 2}
    assert rows.get(batch_id).request_counts == {"total": 3, "completed": 2, "failed": 0}


def test_a_claim_prefers_a_tenant_with_no_batch_in_progress(registry: Registry) -> None:
    rows = registry.batches
    first, second = _batch(registry), _batch(registry)
    theirs = _batch(registry, "other")  # the newest, but its tenant has none running
    assert rows.claim_next("a").id == first
    assert rows.claim_next("b").id == theirs
    assert rows.claim_next("c").id == second  # every tenant busy: the oldest
    assert rows.claim_next("d") is None
    assert rows.finish(theirs, "b", BatchStatus.COMPLETED)
    later = _batch(registry)
    newest = _batch(registry, "other")
    assert rows.claim_next("b").id == newest  # "local" still has two in progress
    assert rows.claim_next("e").id == later


def _runner_key(registry: Registry, batch_id: str, tenant: str = "local") -> str:
    """A key as a runner mints it for the batch (its plaintext)."""
    return create_key(registry, tenant, name=registry.batches.key_name(batch_id))[1]


def _live(registry: Registry, key: str) -> bool:
    try:
        authenticate(registry, key)
    except AuthError:
        return False
    return True


def test_runners_keys_are_revoked_when_claimed_again_or_ended(registry: Registry) -> None:
    rows = registry.batches
    batch_id = _batch(registry)
    unrelated = create_key(registry, "local", name="ci")[1]
    rows.claim_next("a")
    dead = _runner_key(registry, batch_id)
    rows.requeue_stale(stale_after=-1)
    assert not _live(registry, dead)  # let go: the stale runner's key is done
    leaked = _runner_key(registry, batch_id)  # minted by a runner that is not holding it
    rows.claim_next("b")
    assert not _live(registry, leaked)  # revoked before the next runner mints its own
    mine = _runner_key(registry, batch_id)
    assert rows.finish(batch_id, "b", BatchStatus.FAILED, errors=[])
    assert not _live(registry, mine)

    # The batch failed after its last runner died: that runner's key too.
    lost = _batch(registry)
    for attempt in range(3):
        rows.claim_next(f"r{attempt}")
        last = _runner_key(registry, lost)
        rows.requeue_stale(stale_after=-1)
    assert rows.get(lost).status == "failed" and not _live(registry, last)

    # Cancelled before any runner: nothing can use a key named for it either.
    cancelled = _batch(registry)
    early = _runner_key(registry, cancelled)
    assert rows.request_cancel("local", cancelled).status == "cancelled"
    assert not _live(registry, early)
    assert _live(registry, unrelated)


@pytest.mark.postgres
def test_claims_and_lines_on_postgresql(postgres_url: str, tmp_path: Path) -> None:
    """PostgreSQL's claim (SKIP LOCKED, tenants with none in progress first) hands each
    batch to one runner, and only that runner stores its lines."""
    registry = Registry.open(Settings(home=tmp_path / "home", database_url=postgres_url))
    create_tenant(registry, "other")
    batches = [_batch(registry), _batch(registry), _batch(registry, "other")]
    first = registry.batches.claim_next("w0")
    assert first is not None and first.id == batches[0]
    second = registry.batches.claim_next("w1")
    assert second is not None and second.id == batches[2]  # the tenant with none running
    third = registry.batches.claim_next("w2")
    assert third is not None and third.id == batches[1]
    assert registry.batches.claim_next("w3") is None
    answer = {"custom_id": "a", "response": {"status_code": 200, "body": {}}}
    assert registry.batches.put_result(batches[0], "w0", 1, "a", True, answer)
    assert not registry.batches.put_result(batches[0], "w1", 2, "b", True, answer)
    assert registry.batches.get(batches[0]).request_counts["completed"] == 1
