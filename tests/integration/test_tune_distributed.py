"""One job across processes and nodes: torchrun with gloo on this CPU, a real registry.

The loss curve of a 2-process job and of a 2-node job (two launchers rendezvousing on
127.0.0.1) must match a 1-process run with the same global batch and seed; a SIGKILLed
rank restarts every rank from the last checkpoint; cancel leaves no rank behind.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from quanta.data import write_jsonl
from quanta.registry import Registry
from tests.support.fixtures import arithmetic_chat, seeded_registry, tiny_job
from tune.api.service import TuneService
from tune.train.worker import Worker

pytestmark = pytest.mark.slow

STEPS = 4
# Two processes sum the same examples' gradients in two halves: in float32 the losses agree
# to rounding (bench/train_distributed.py measured <= 5e-7 over 12 steps); stated
# tolerance 1e-4 absolute. (In bf16 the different partial sums drift by up to ~7e-3.)
LOSS_TOLERANCE = 1e-4


def _wait(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.3)


def _create(service: TuneService, data: Path, *, max_steps: int = STEPS,
            checkpoint_every: int = STEPS, **distributed: Any) -> str:
    file_id = service.create_file("local", data.name, "fine-tune", data)["id"]
    body = tiny_job(file_id, seed=5, max_steps=max_steps, checkpoint_every=checkpoint_every,
                    compute_dtype="float32", distributed=distributed)
    return service.create_job("local", body)["id"]


def _losses(service: TuneService, job_id: str) -> dict[int, float]:
    events = service.list_events("local", job_id, limit=100)["data"]
    return {e["data"]["step"]: e["data"]["train_loss"] for e in events
            if e["type"] == "metrics" and "train_loss" in e["data"]}


def _messages(service: TuneService, job_id: str) -> list[str]:
    return [e["message"] for e in service.list_events("local", job_id, limit=100)["data"]]


def _launcher_pid(service: TuneService, job_id: str) -> int | None:
    for event in service.list_events("local", job_id, limit=100)["data"]:
        if "distributed" in (event.get("data") or {}):
            return int(event["data"]["distributed"]["pid"])
    return None


def _ranks(launcher_pid: int) -> list[psutil.Process]:
    """The rank processes torchrun started (python -m tune.train.distributed.rank ...)."""
    try:
        children = psutil.Process(launcher_pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []
    return [p for p in children if "tune.train.distributed.rank" in " ".join(p.cmdline())]


def _run_in_thread(registry: Registry) -> threading.Thread:
    worker = Worker(registry, heartbeat_interval=0.5)
    thread = threading.Thread(target=worker.run_once, daemon=True)
    thread.start()
    return thread


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory, base_model_dir: Path) -> Path:
    return tmp_path_factory.mktemp("distributed")


@pytest.fixture(scope="module")
def setup(home: Path, base_model_dir: Path) -> Iterator[tuple[Registry, TuneService, Path]]:
    from quanta.config import get_settings

    with pytest.MonkeyPatch.context() as env:
        env.setenv("QUANTA_HOME", str(home))  # the ranks open the same registry
        env.setenv("QUANTA_TUNE_RENDEZVOUS_HOST", "127.0.0.1")
        env.setenv("QUANTA_TUNE_RENDEZVOUS_TIMEOUT", "120")
        get_settings.cache_clear()
        registry = seeded_registry(home, base_model_dir)
        data = write_jsonl(arithmetic_chat(16), home / "train.jsonl")
        yield registry, TuneService(registry), data
    get_settings.cache_clear()


@pytest.fixture(scope="module")
def single_process_losses(setup: tuple[Registry, TuneService, Path]) -> dict[int, float]:
    registry, service, data = setup
    job_id = _create(service, data)
    Worker(registry).run_once(job_id)
    assert service.get_job("local", job_id)["status"] == "succeeded"
    losses = _losses(service, job_id)
    assert sorted(losses) == list(range(1, STEPS + 1))
    return losses


def _assert_same_curve(ours: dict[int, float], reference: dict[int, float]) -> None:
    assert sorted(ours) == sorted(reference)
    for step, loss in reference.items():
        assert abs(ours[step] - loss) <= LOSS_TOLERANCE, (step, ours[step], loss)


def test_two_processes_match_one(setup: tuple[Registry, TuneService, Path],
                                 single_process_losses: dict[int, float]) -> None:
    registry, service, data = setup
    job_id = _create(service, data, processes_per_node=2)
    Worker(registry).run_once(job_id)
    job = service.get_job("local", job_id)
    assert job["status"] == "succeeded", job["error"]
    _assert_same_curve(_losses(service, job_id), single_process_losses)
    assert any("Training on 2 processes (1 node(s) x 2)" in m for m in _messages(service, job_id))
    assert job["fine_tuned_model"] and registry.verify().ok


def test_two_nodes_rendezvous_on_localhost(setup: tuple[Registry, TuneService, Path],
                                           single_process_losses: dict[int, float],
                                           home: Path) -> None:
    registry, service, data = setup
    job_id = _create(service, data, nodes=2, processes_per_node=1)
    thread = _run_in_thread(registry)
    node = subprocess.run([sys.executable, "-m", "quanta.cli", "tune", "node", job_id,
                           "--wait", "120"], env=os.environ.copy(), capture_output=True,
                          text=True, timeout=600)
    thread.join(timeout=300)
    job = service.get_job("local", job_id)
    assert job["status"] == "succeeded", (job["error"], node.stdout[-2000:], node.stderr[-2000:])
    assert node.returncode == 0, node.stderr[-2000:]
    _assert_same_curve(_losses(service, job_id), single_process_losses)
    assert any("Waiting for 1 more node(s) at 127.0.0.1:" in m
               for m in _messages(service, job_id))


def test_killed_rank_restarts_every_rank_from_the_checkpoint(
        setup: tuple[Registry, TuneService, Path]) -> None:
    registry, service, data = setup
    job_id = _create(service, data, max_steps=8, checkpoint_every=2, processes_per_node=2)
    thread = _run_in_thread(registry)
    _wait(lambda: service.list_checkpoints("local", job_id)["data"], 300, "a checkpoint")
    launcher = _launcher_pid(service, job_id)
    assert launcher is not None
    victim = max(_ranks(launcher), key=lambda p: p.pid)
    os.kill(victim.pid, signal.SIGKILL)
    thread.join(timeout=600)
    job = service.get_job("local", job_id)
    assert job["status"] == "succeeded", job["error"]
    messages = _messages(service, job_id)
    assert any("torchrun restarted every rank" in m for m in messages), messages
    assert any(m.startswith("Resuming from checkpoint at step") for m in messages)
    assert max(_losses(service, job_id)) == 8
    assert registry.verify().ok


def test_a_rank_failing_for_good_puts_every_ranks_log_in_the_events(
        setup: tuple[Registry, TuneService, Path]) -> None:
    registry, service, data = setup
    job_id = _create(service, data, max_steps=500, checkpoint_every=500, processes_per_node=2)
    no_restarts = Registry.open(registry.settings.model_copy(update={"tune_max_restarts": 0}))
    thread = threading.Thread(target=Worker(no_restarts).run_once, daemon=True)
    thread.start()
    _wait(lambda: _losses(service, job_id), 300, "the first training step")
    launcher = _launcher_pid(service, job_id)
    assert launcher is not None
    os.kill(max(_ranks(launcher), key=lambda p: p.pid).pid, signal.SIGKILL)
    thread.join(timeout=200)
    job = service.get_job("local", job_id)
    assert job["status"] == "failed"
    logs = [e for e in service.list_events("local", job_id, limit=100)["data"]
            if (e.get("data") or {}).get("rank_logs")]
    assert len(logs) == 1 and logs[0]["level"] == "error"
    assert "local rank 0 (attempt 0)" in logs[0]["message"]
    assert "local rank 1 (attempt 0)" in logs[0]["message"]
    assert "launcher:" in logs[0]["message"]


def test_cancel_stops_every_rank(setup: tuple[Registry, TuneService, Path]) -> None:
    registry, service, data = setup
    job_id = _create(service, data, max_steps=500, checkpoint_every=500, processes_per_node=2)
    thread = _run_in_thread(registry)
    _wait(lambda: _losses(service, job_id), 300, "the first training step")
    launcher = _launcher_pid(service, job_id)
    assert launcher is not None
    pids = [launcher, *(p.pid for p in _ranks(launcher))]
    assert len(pids) == 3
    service.cancel_job("local", job_id)
    thread.join(timeout=200)
    assert not thread.is_alive()
    assert service.get_job("local", job_id)["status"] == "cancelled"
    alive = [pid for pid in pids if psutil.pid_exists(pid)
             and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE]
    assert alive == [], "orphan processes left"
    assert max(_losses(service, job_id)) < 500


def test_nodes_that_never_join_fail_the_job_instead_of_hanging(
        setup: tuple[Registry, TuneService, Path], home: Path) -> None:
    registry, service, data = setup
    job_id = _create(service, data, nodes=2, processes_per_node=1)
    impatient = Registry.open(registry.settings.model_copy(
        update={"tune_rendezvous_timeout": 5.0}))
    started = time.monotonic()
    Worker(impatient).run_once(job_id)
    job = service.get_job("local", job_id)
    assert job["status"] == "failed"
    assert "did not all join within 5 s" in job["error"]["message"]
    assert f"quanta tune node {job_id}" in job["error"]["message"]
    assert time.monotonic() - started < 120


def test_more_processes_than_cores_fails_with_its_reason(
        setup: tuple[Registry, TuneService, Path]) -> None:
    registry, service, data = setup
    cores = len(os.sched_getaffinity(0))
    job_id = _create(service, data, processes_per_node=2 * cores)
    Worker(registry).run_once(job_id)
    job = service.get_job("local", job_id)
    assert job["status"] == "failed"
    assert job["error"]["code"] == "invalid_distributed"
    assert f"{cores} CPU core(s)" in job["error"]["message"]
