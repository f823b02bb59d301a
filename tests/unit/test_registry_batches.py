"""The batch row API: claims guarded by compare-and-set, answered lines stored once each
with their counts, stale runners let go (and the batch failed after too many)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from quanta.config import Settings
from quanta.registry import NotFoundError, Registry
from quanta.tenancy import create_tenant
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
    answer = {"custom_id": "a", "response": {"status_code": 200}}
    usage = {"input_tokens": 3, "output_tokens": 2, "total_tokens": 5}
    assert rows.put_result(batch_id, 2, "b", True, answer, usage)
    assert not rows.put_result(batch_id, 2, "b", True, answer, usage)  # a second runner's
    assert rows.put_result(batch_id, 1, "a", True, answer, usage, completed=False)
    assert rows.put_result(batch_id, 3, "c", False, {"custom_id": "c", "error": {}})
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
    assert [b.id for b in rows.for_tenant("local")] == [third, second, first]
    assert [b.id for b in rows.for_tenant("local", after=third, limit=1)] == [second]
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
