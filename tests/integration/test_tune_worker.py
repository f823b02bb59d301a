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
from quanta.processes import free_port
from quanta.registry import Registry
from quanta.registry import tables as t
from tests.support.fixtures import arithmetic_chat, seeded_registry, tiny_job
from tune.api.service import TuneService
from tune.train.worker import Worker

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
    # Done: the last three checkpoints are kept, as models of their own.
    checkpoints = service.list_checkpoints("local", job_id)["data"]
    assert sorted(c["step_number"] for c in checkpoints) == [6, 8, 10]
    assert len(registry.list_adapters("local")) == 1
    published = registry.list_adapters("local", checkpoints=True)
    assert sorted(a.name for a in published) == sorted(
        [job["fine_tuned_model"]] + [c["fine_tuned_model_checkpoint"] for c in checkpoints])
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


def _adapter_tensors(registry: Registry, name: str) -> dict:  # type: ignore[type-arg]
    from safetensors.torch import load_file

    row = registry.resolve_adapter("local", name)
    return load_file(registry.materialize(row.sha256) / "adapter_model.safetensors")


def test_paused_then_resumed_job_ends_as_an_uninterrupted_one(
        quanta_home: Path, base_model_dir: Path, tmp_path: Path, mlflow_url: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Pause at a step boundary writes a checkpoint and frees the worker; resume continues
    from it on another worker; same seed and data order give the same adapter. Its MLflow
    run is paused and resumed with it; a tracking server that does not answer costs the
    job a warning, nothing more."""
    import torch
    from mlflow import MlflowClient

    monkeypatch.setenv("QUANTA_TRACKING_MLFLOW_HOSTS", "127.0.0.1")
    registry, service, data = _setup(quanta_home, base_model_dir, tmp_path, 24)
    body_steps, file_id = 8, service.create_file("local", "train.jsonl", "fine-tune",
                                                 data)["id"]

    def job(tracking_uri: str) -> str:
        body = {**tiny_job(file_id, seed=3, max_steps=body_steps, checkpoint_every=100),
                "integrations": [{"type": "mlflow", "mlflow": {
                    "tracking_uri": tracking_uri, "experiment_name": "pause-resume"}}]}
        return service.create_job("local", body)["id"]

    straight = job(f"http://127.0.0.1:{free_port()}")  # nothing listens there
    assert Worker(registry).run_once(straight) == straight
    reference = service.get_job("local", straight)
    assert reference["status"] == "succeeded"
    warnings = [e for e in service.list_events("local", straight, limit=100)["data"]
                if e["level"] == "warn"]
    assert [e["data"] for e in warnings] == [{"integration": "mlflow", "index": 0}]
    assert "Experiment tracking (mlflow) stopped" in warnings[0]["message"]

    paused = job(mlflow_url)
    mlflow = MlflowClient(mlflow_url)
    asked: list[int] = []

    def pause_at_step_two(step: int, total: int, loss: float | None) -> None:
        if step >= 2 and not asked:
            asked.append(step)
            assert service.pause_job("local", paused)["status"] == "running"  # requested

    first = Worker(registry, heartbeat_interval=0.2, progress=pause_at_step_two,
                   worker_id="first")
    assert first.run_once(paused) == paused  # returns: the worker is free
    job_row = service.get_job("local", paused)
    assert job_row["status"] == "paused" and job_row["fine_tuned_model"] is None
    [checkpoint] = service.list_checkpoints("local", paused)["data"]
    assert 2 <= checkpoint["step_number"] < body_steps  # written at the pause
    with pytest.raises(Exception, match="cannot be paused"):
        service.pause_job("local", paused)

    [run] = mlflow.search_runs([mlflow.get_experiment_by_name("pause-resume").experiment_id])
    assert run.info.status == "SCHEDULED"  # MLflow's word for a run waiting to go on

    assert service.resume_job("local", paused)["status"] == "queued"
    assert Worker(registry, worker_id="second").run_once() == paused
    done = service.get_job("local", paused)
    assert done["status"] == "succeeded", done["error"]
    events = service.list_events("local", paused, limit=100)["data"][::-1]  # oldest first
    messages = [e["message"] for e in events]
    at = checkpoint["step_number"]
    assert f"Fine-tuning job paused at step {at}; resuming continues from there" in messages
    resumed = messages.index(f"Resuming from checkpoint at step {at}")
    trained_after = [e["data"]["step"] for e in events[resumed:] if e["type"] == "metrics"
                     and "train_loss" in e["data"]]
    assert trained_after[0] == at + 1 and trained_after[-1] == body_steps  # no step twice

    # The results file: one CSV row per step, each logged once across both workers.
    [results] = done["result_files"]
    row, path = service.file_path("local", results)
    assert row.purpose == "fine-tune-results" and row.tenant_id == "local"
    header, *lines = path.read_text().splitlines()
    assert header.startswith("step,train_loss,")
    assert [int(line.split(",")[0]) for line in lines] == list(range(1, body_steps + 1))
    [run] = mlflow.search_runs([run.info.experiment_id])  # the same run, finished
    assert run.info.status == "FINISHED"
    losses = mlflow.get_metric_history(run.info.run_id, "train_loss")
    assert sorted(m.step for m in losses) == list(range(1, body_steps + 1))

    want = _adapter_tensors(registry, reference["fine_tuned_model"])
    got = _adapter_tensors(registry, done["fine_tuned_model"])
    assert want.keys() == got.keys()
    for name, tensor in want.items():
        torch.testing.assert_close(got[name].float(), tensor.float(), rtol=1e-3, atol=1e-5,
                                   msg=name)
    with pytest.raises(Exception, match="not paused"):
        service.resume_job("local", paused)
    assert registry.verify().ok


def test_checkpoint_models_are_kept_and_start_new_jobs(
        quanta_home: Path, base_model_dir: Path, tmp_path: Path) -> None:
    """A finished job keeps its last three checkpoints as models (adapter files only);
    one of them is the ``model`` of a new job, which trains from it."""
    from tune.train.checkpoints import ADAPTER_FILES

    registry, service, data = _setup(quanta_home, base_model_dir, tmp_path, 8)
    job_id = _job(service, data, max_steps=4, checkpoint_every=1)
    assert Worker(registry).run_once(job_id) == job_id
    job = service.get_job("local", job_id)
    assert job["status"] == "succeeded", job["error"]
    checkpoints = service.list_checkpoints("local", job_id)["data"]
    assert [c["step_number"] for c in checkpoints] == [4, 3, 2]  # newest first; 1 is gone
    names = [c["fine_tuned_model_checkpoint"] for c in checkpoints]
    assert names[0] == f"{job['fine_tuned_model']}:ckpt-step-4"
    for checkpoint, name in zip(checkpoints, names, strict=True):
        assert {"step", "train_loss"} <= set(checkpoint["metrics"])
        row = registry.resolve_adapter("local", name)
        assert row.config["checkpoint"] == {"of": job["fine_tuned_model"],
                                             "step": checkpoint["step_number"]}
        files = {p.name for p in registry.materialize(row.sha256).iterdir()}
        assert files <= set(ADAPTER_FILES) and "adapter_config.json" in files
    events = service.list_events("local", job_id, limit=100)["data"]
    assert any(e["data"].get("checkpoint_models") == names for e in events)

    follow_up = service.create_job("local", tiny_job(
        service.create_file("local", data.name, "fine-tune", data)["id"], max_steps=1,
        checkpoint_every=5) | {"model": names[1]})
    assert follow_up["model"] == names[1]
    assert Worker(registry).run_once(follow_up["id"]) == follow_up["id"]
    done = service.get_job("local", follow_up["id"])
    assert done["status"] == "succeeded", done["error"]
    assert registry.resolve_adapter("local", done["fine_tuned_model"]).config[
        "start_adapter"] == names[1]
    assert registry.verify().ok
