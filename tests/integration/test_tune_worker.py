"""The worker against a real registry: SIGKILL mid-job resumes from a checkpoint; cancel stops."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from quanta.data import write_jsonl
from quanta.registry import Registry
from quanta.registry import tables as t
from quanta.testing.fixtures import arithmetic_chat, seeded_registry, tiny_job
from tune.service import TuneService
from tune.worker import Worker

pytestmark = pytest.mark.slow


def _job(service: TuneService, path: Path, max_steps: int, checkpoint_every: int) -> str:
    file_id = service.create_file("local", path.name, "fine-tune", path)["id"]
    return service.create_job("local", tiny_job(file_id, seed=3, max_steps=max_steps,
                                                checkpoint_every=checkpoint_every))["id"]


def _setup(home: Path, base_model_dir: Path, tmp_path: Path,
           examples: int) -> tuple[Registry, TuneService, Path]:
    """A registry with the base model, its tune service, and a small training file."""
    registry = seeded_registry(home, base_model_dir)
    return (registry, TuneService(registry),
            write_jsonl(arithmetic_chat(examples), tmp_path / "train.jsonl"))


def _status(registry, job_id: str) -> t.Job:  # type: ignore[no-untyped-def]
    with registry.session() as s:
        return s.get(t.Job, job_id)


def _wait(predicate, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def _worker_process(home: Path, *args: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "QUANTA_HOME": str(home)}
    return subprocess.Popen([sys.executable, "-m", "quanta.cli", "tune", "worker", "--once",
                             "--heartbeat", "1", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def test_killed_worker_job_resumes_from_checkpoint(quanta_home: Path, base_model_dir: Path,
                                                   tmp_path: Path) -> None:
    registry, service, data = _setup(quanta_home, base_model_dir, tmp_path, 8)
    job_id = _job(service, data, max_steps=10, checkpoint_every=2)

    first = _worker_process(quanta_home)
    try:
        _wait(lambda: service.list_checkpoints("local", job_id)["data"]
              or first.poll() is not None, 240, "the first checkpoint")
        assert first.poll() is None, first.stdout.read().decode()[-3000:]
        os.kill(first.pid, signal.SIGKILL)
        first.wait(timeout=30)
    finally:
        if first.poll() is None:
            first.kill()
    killed = _status(registry, job_id)
    assert killed.status == "running"  # nobody finished it: the heartbeat goes stale
    saved = max(c["step_number"] for c in service.list_checkpoints("local", job_id)["data"])
    assert 2 <= saved < 10

    time.sleep(3.5)  # let the dead worker's heartbeat age past --stale-after
    second = _worker_process(quanta_home, "--stale-after", "3")
    out, _ = second.communicate(timeout=300)
    assert second.returncode == 0, out.decode()[-3000:]

    job = service.get_job("local", job_id)
    assert job["status"] == "succeeded", job["error"]
    with registry.session() as s:
        events = list(s.scalars(select(t.JobEvent).where(t.JobEvent.job_id == job_id)
                                .order_by(t.JobEvent.seq)))
    messages = [e.message for e in events]
    assert any("stopped responding" in m for m in messages)
    resumed = [i for i, e in enumerate(events) if (e.data or {}).get("resumed_from_step")]
    assert len(resumed) == 1
    resumed_step = events[resumed[0]].data["resumed_from_step"]
    assert resumed_step >= saved  # the newest checkpoint, not step 0
    after = [e.data["step"] for e in events[resumed[0]:] if e.type == "metrics"]
    assert after and min(after) == resumed_step + 1 and max(after) == 10
    steps = sorted(c["step_number"] for c in service.list_checkpoints("local", job_id)["data"])
    assert steps == [2, 4, 6, 8, 10]
    assert len(registry.list_adapters("local")) == 1
    assert registry.verify().ok


def test_cancel_stops_a_running_job_within_seconds(quanta_home: Path, base_model_dir: Path,
                                                   tmp_path: Path) -> None:
    registry, service, data = _setup(quanta_home, base_model_dir, tmp_path, 8)
    job_id = _job(service, data, max_steps=200, checkpoint_every=100)
    worker = Worker(registry, heartbeat_interval=0.5)
    thread = threading.Thread(target=worker.run_once, daemon=True)
    thread.start()

    def training() -> bool:
        with registry.session() as s:
            return s.scalar(select(t.JobEvent.id).where(t.JobEvent.job_id == job_id,
                                                        t.JobEvent.type == "metrics")) is not None

    _wait(training, 180, "the first training step")
    started = time.monotonic()
    assert service.cancel_job("local", job_id)["status"] == "running"  # requested
    _wait(lambda: _status(registry, job_id).status == "cancelled", 30, "cancellation")
    assert time.monotonic() - started < 15
    thread.join(timeout=30)
    assert not thread.is_alive()
    job = service.get_job("local", job_id)
    assert job["fine_tuned_model"] is None and job["finished_at"]
    assert registry.list_adapters("local") == []


def test_cancel_queued_job_and_crash_marks_failed(quanta_home: Path, base_model_dir: Path,
                                                  tmp_path: Path) -> None:
    registry, service, data = _setup(quanta_home, base_model_dir, tmp_path, 4)
    queued = _job(service, data, max_steps=2, checkpoint_every=2)
    assert service.cancel_job("local", queued)["status"] == "cancelled"
    assert Worker(registry).run_once() is None  # nothing left to claim

    broken = _job(service, data, max_steps=2, checkpoint_every=2)
    with registry.session() as s:  # a module name no model has: training raises
        job = s.get(t.Job, broken)
        job.method = {**job.method, "quanta": {**job.method["quanta"],
                                               "lora": {**job.method["quanta"]["lora"],
                                                        "target_modules": ["nope_proj"]}}}
    assert Worker(registry).run_once() == broken
    failed = service.get_job("local", broken)
    assert failed["status"] == "failed"
    assert "nope_proj" in failed["error"]["message"] and failed["error"]["code"]
    assert registry.list_adapters("local") == [] and registry.verify().ok
