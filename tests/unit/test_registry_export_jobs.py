"""Export jobs: queued exports claimed, heart-beaten, re-queued and finished by workers
with the same compare-and-set guards as fine-tuning jobs."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from quanta.config import Settings
from quanta.registry import NotFoundError, Registry
from quanta.types import JobStatus


@pytest.fixture
def registry(tmp_path: Path) -> Registry:
    return Registry.open(Settings(home=tmp_path / "home"))


def _job(registry: Registry, tenant: str = "local"):
    registry.tenants.ensure(tenant)
    return registry.export_jobs.create(tenant_id=tenant, model="ft:x", format="gguf-q8_0")


def test_one_claim_per_job_and_only_the_holder_writes(registry: Registry) -> None:
    job = _job(registry)
    assert job.status == JobStatus.QUEUED and job.attempts == 0
    claimed = registry.export_jobs.claim_next("w1")
    assert claimed is not None and claimed.id == job.id
    assert (claimed.status, claimed.worker_id, claimed.attempts) == (JobStatus.RUNNING, "w1", 1)
    assert registry.export_jobs.claim_next("w2") is None  # nothing queued is left
    assert registry.export_jobs.heartbeat(job.id, "w2").owned is False
    assert registry.export_jobs.heartbeat(job.id, "w1").owned is True
    assert not registry.export_jobs.finish(job.id, "w2", JobStatus.SUCCEEDED, export_id="e",
                                           message="not mine")
    assert registry.export_jobs.finish(job.id, "w1", JobStatus.SUCCEEDED, export_id="e",
                                       message="done")
    done = registry.export_jobs.get(job.id)
    assert (done.status, done.export_id, done.worker_id) == (JobStatus.SUCCEEDED, "e", None)
    assert [e["message"] for e in done.events][-1] == "done"


def test_a_stale_job_is_requeued_then_fails_after_max_attempts(registry: Registry) -> None:
    job = _job(registry)
    for attempt in (1, 2):
        assert registry.export_jobs.claim_next(f"w{attempt}").attempts == attempt
        time.sleep(0.05)
        assert registry.export_jobs.requeue_stale(0.01, max_attempts=2) == (
            [job.id] if attempt == 1 else [])
    failed = registry.export_jobs.get(job.id)
    assert failed.status == JobStatus.FAILED and failed.error["code"] == "worker_lost"
    # the worker that lost it can no longer write it
    assert not registry.export_jobs.finish(job.id, "w2", JobStatus.SUCCEEDED, export_id="e",
                                           message="late")


def test_cancel_queued_at_once_running_at_the_next_heartbeat(registry: Registry) -> None:
    queued = _job(registry)
    assert registry.export_jobs.request_cancel("local", queued.id).status == JobStatus.CANCELLED
    running = _job(registry)
    registry.export_jobs.claim_next("w1")
    after = registry.export_jobs.request_cancel("local", running.id)
    assert after.status == JobStatus.RUNNING and after.cancel_requested
    assert registry.export_jobs.heartbeat(running.id, "w1").cancel is True


def test_jobs_stay_with_their_tenant(registry: Registry) -> None:
    job = _job(registry, "acme")
    assert registry.export_jobs.owned("acme", job.id).id == job.id
    assert [j.id for j in registry.export_jobs.for_tenant("acme")] == [job.id]
    assert registry.export_jobs.for_tenant("other") == []
    with pytest.raises(NotFoundError):
        registry.export_jobs.owned("other", job.id)
    with pytest.raises(NotFoundError):
        registry.export_jobs.request_cancel("other", job.id)
    assert registry.export_jobs.get(job.id).status == JobStatus.QUEUED
