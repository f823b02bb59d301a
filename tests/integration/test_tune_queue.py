"""The job queue's claim is exclusive: SQLite compare-and-set and PostgreSQL SKIP LOCKED."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from quanta.config import Settings
from quanta.data import write_jsonl
from quanta.registry import Registry
from quanta.registry import tables as t
from tests.support.fixtures import arithmetic_chat
from tune.api.jobs import request_cancel, request_pause, request_resume
from tune.api.service import TuneService
from tune.train import queue


def _registry_with_jobs(settings: Settings, tmp_path: Path, n: int) -> tuple[Registry, list[str]]:
    registry = Registry.open(settings)
    model = tmp_path / "fake-model"
    model.mkdir(exist_ok=True)
    (model / "config.json").write_text("{}")
    registry.add_base_model("smollm2-135m-instruct", model, source="test")
    service = TuneService(registry)
    data = write_jsonl(arithmetic_chat(2), tmp_path / "d.jsonl")
    file_id = service.create_file("local", "d.jsonl", "fine-tune", data)["id"]
    ids = [service.create_job("local", {"model": "smollm2-135m-instruct",
                                        "training_file": file_id})["id"] for _ in range(n)]
    return registry, ids


def _claim_all(registry: Registry, workers: int) -> list[tuple[str, str]]:
    claims: list[tuple[str, str]] = []
    lock = threading.Lock()

    def work(name: str) -> None:
        while (job_id := queue.claim_next(registry, name)) is not None:
            with lock:
                claims.append((name, job_id))

    threads = [threading.Thread(target=work, args=(f"w{i}",)) for i in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return claims


def _check(registry: Registry, ids: list[str], claims: list[tuple[str, str]]) -> None:
    claimed = [job_id for _, job_id in claims]
    assert sorted(claimed) == sorted(ids)  # every job once, none twice
    with registry.session() as s:
        for name, job_id in claims:
            job = s.get(t.Job, job_id)
            assert job.status == "running" and job.worker_id == name and job.heartbeat_at


def test_sqlite_claims_are_exclusive(quanta_home: Path, tmp_path: Path) -> None:
    registry, ids = _registry_with_jobs(Settings(home=quanta_home), tmp_path, 12)
    _check(registry, ids, _claim_all(registry, 4))


def test_pause_is_heard_by_the_worker_and_kept_when_it_dies(quanta_home: Path,
                                                           tmp_path: Path) -> None:
    registry, (job_id,) = _registry_with_jobs(Settings(home=quanta_home), tmp_path, 1)
    assert queue.claim_next(registry, "w") == job_id
    assert request_pause(registry, job_id) is not None
    assert request_pause(registry, job_id) is None  # already pausing
    assert queue.heartbeat(registry, job_id, "w") == queue.Pulse(owned=True, pause=True)
    assert request_resume(registry, job_id) is not None  # withdrawn before it paused
    assert queue.heartbeat(registry, job_id, "w") == queue.Pulse(owned=True)
    request_pause(registry, job_id)
    # The worker dies before its next step: the job is paused, not re-queued.
    assert queue.requeue_stale(registry, stale_after=-1) == []
    job = registry.jobs.get(job_id)
    assert job is not None and job.status == "paused" and not job.pause_requested
    assert job.worker_id is None and job.finished_at is None
    assert not queue.pause(registry, job_id, "w", 3)  # no longer its job
    assert request_resume(registry, job_id) is not None
    assert queue.claim_next(registry, "other") == job_id

    # The trainer stopped for a pause, then the owner resumed (withdrew it) or cancelled.
    request_pause(registry, job_id)
    request_resume(registry, job_id)
    assert queue.pause(registry, job_id, "other", 4)
    assert registry.jobs.get(job_id).status == "queued"
    assert queue.claim_next(registry, "third") == job_id
    request_pause(registry, job_id)
    request_cancel(registry, job_id)
    assert queue.pause(registry, job_id, "third", 6)
    assert registry.jobs.get(job_id).status == "cancelled"


def test_stale_jobs_are_requeued_and_owned_writes_are_guarded(quanta_home: Path,
                                                               tmp_path: Path) -> None:
    registry, (job_id,) = _registry_with_jobs(Settings(home=quanta_home), tmp_path, 1)
    assert queue.claim_next(registry, "dead") == job_id
    assert queue.requeue_stale(registry, stale_after=3600) == []
    assert queue.requeue_stale(registry, stale_after=-1) == [job_id]
    assert queue.heartbeat(registry, job_id, "dead") == queue.Pulse(owned=False)  # lost it
    assert not queue.finish(registry, job_id, "dead", "succeeded")
    assert queue.claim_next(registry, "alive") == job_id
    assert queue.heartbeat(registry, job_id, "alive") == queue.Pulse(owned=True)
    # Dying over and over (say, the OOM killer) fails the job instead of crash-looping.
    assert queue.requeue_stale(registry, stale_after=-1) == [job_id]
    assert queue.claim_next(registry, "third") == job_id
    assert queue.requeue_stale(registry, stale_after=-1) == []
    with registry.session() as s:
        job = s.get(t.Job, job_id)
        assert job.status == "failed" and job.error["code"] == "worker_lost"


@pytest.mark.postgres
def test_postgres_claims_use_skip_locked(postgres_url: str, tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home", database_url=postgres_url)
    registry, ids = _registry_with_jobs(settings, tmp_path, 12)
    assert registry.engine.dialect.name == "postgresql"
    _check(registry, ids, _claim_all(registry, 4))


def test_worker_with_job_id_runs_only_that_job(quanta_home: Path, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """``quanta tune worker --once --job-id`` (one Kubernetes Job per job) claims just that one."""
    from tune.train.worker import Worker

    registry, ids = _registry_with_jobs(Settings(home=quanta_home), tmp_path, 3)
    ran: list[str] = []
    monkeypatch.setattr(Worker, "run_job", lambda self, job_id: ran.append(job_id))
    worker = Worker(registry, worker_id="k8s-job")
    assert worker.run_once(ids[2]) == ids[2]
    assert ran == [ids[2]]
    assert worker.run_once(ids[2]) is None  # already claimed: not run twice
    with registry.session() as s:
        assert [s.get(t.Job, i).status for i in ids] == ["queued", "queued", "running"]


def test_leftovers_of_killed_processes_are_swept(quanta_home: Path, tmp_path: Path) -> None:
    import os

    from quanta.registry.store import sweep_abandoned
    from tune.train.worker import Worker

    registry, ids = _registry_with_jobs(Settings(home=quanta_home), tmp_path, 2)
    assert queue.claim(registry, ids[0], "live-worker")
    work = quanta_home / "work"
    live, dead = work / f"{ids[0]}.abc", work / f"{ids[1]}.def"
    for path in (live, dead):
        path.mkdir(parents=True)
        (path / "scratch.bin").write_bytes(b"x")
    assert Worker(registry).sweep_workdirs() == 1
    assert live.exists() and not dead.exists()  # a running job keeps its scratch space

    uploads = quanta_home / "uploads"
    uploads.mkdir()
    old, fresh = uploads / "old.part", uploads / "fresh.part"
    old.write_bytes(b"x")
    fresh.write_bytes(b"x")
    os.utime(old, (0, 0))
    assert sweep_abandoned(uploads, 3600) == 1  # what the API runs at start
    assert fresh.exists() and not old.exists()
