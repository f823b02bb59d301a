"""Experiment tracking never holds a job up: calls go through the tracking thread, a
failing run is dropped with a warning, a run that hangs is let go when the job closes."""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace
from typing import Any

import pytest

from quanta.config import Settings
from tune.integrations import refusal, stored_integrations
from tune.plan import parse_request, resolve
from tune.train import tracking
from tune.train.tracking import RunOutcome, TrackedRuns, stopped_outcome

WANDB = {"type": "wandb", "wandb": {"project": "p"}}
MLFLOW = {"type": "mlflow", "mlflow": {"tracking_uri": "http://mlflow.internal:5000",
                                       "experiment_name": "e"}}


class Recorder:
    def __init__(self, hang: threading.Event | None = None, fail_on: str | None = None):
        self.calls: list[tuple[str, Any]] = []
        self.hang, self.fail_on = hang, fail_on

    def _call(self, name: str, arg: Any) -> None:
        if self.hang is not None:
            self.hang.wait(30)
        if name == self.fail_on:
            raise ConnectionError("the server said: <secret body>")
        self.calls.append((name, arg))

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        self._call("metrics", (step, metrics))

    def log_summary(self, values: dict[str, Any]) -> None:
        self._call("summary", values)

    def finish(self, outcome: RunOutcome) -> None:
        self._call("finish", outcome)


def _job(*integrations: dict[str, Any]) -> tuple[Any, Any]:
    request = parse_request({"model": "m", "training_file": "file-1",
                             "integrations": list(integrations)})
    plan = resolve(request, 10, None)
    job = SimpleNamespace(id="ftjob-1", model="m", training_file_id="file-1",
                          validation_file_id=None, suffix=None, seed=1,
                          integrations=[i.model_dump(mode="json")
                                        for i in request.integrations or []])
    return job, plan


def _open(monkeypatch: pytest.MonkeyPatch, trackers: list[Recorder], *integrations: Any,
          close_timeout: float = 5.0) -> tuple[TrackedRuns, list[tuple[str, dict]]]:
    made = iter(trackers)
    monkeypatch.setattr(tracking, "_open", lambda *args: next(made))
    warnings: list[tuple[str, dict]] = []
    job, plan = _job(*integrations)
    runs = TrackedRuns.open(job, plan, lambda m, d: warnings.append((m, d)), Settings(),
                            close_timeout)
    return runs, warnings


def test_calls_reach_every_run_in_order(monkeypatch: pytest.MonkeyPatch) -> None:
    first, second = Recorder(), Recorder()
    runs, warnings = _open(monkeypatch, [first, second], WANDB, WANDB)
    runs.log_metrics({"step": 1, "train_loss": 2.0, "total_steps": 3})
    runs.log_summary({"fine_tuned_model": "ft:x"})
    runs.close(RunOutcome.FINISHED)
    for recorder in (first, second):
        assert recorder.calls == [("metrics", (1, {"train_loss": 2.0, "total_steps": 3.0})),
                                  ("summary", {"fine_tuned_model": "ft:x"}),
                                  ("finish", RunOutcome.FINISHED)]
    assert not warnings


def test_a_failing_run_is_dropped_without_quoting_the_server(
        monkeypatch: pytest.MonkeyPatch) -> None:
    failing, fine = Recorder(fail_on="metrics"), Recorder()
    runs, warnings = _open(monkeypatch, [failing, fine], WANDB, WANDB)
    runs.log_metrics({"step": 1, "train_loss": 2.0})
    runs.log_metrics({"step": 2, "train_loss": 1.0})
    runs.close(RunOutcome.FINISHED)
    assert failing.calls == [] and len(fine.calls) == 3
    [(message, data)] = warnings
    assert "ConnectionError" in message and "secret" not in message
    assert data == {"integration": "wandb", "index": 0}


def test_a_hanging_server_never_holds_up_training(monkeypatch: pytest.MonkeyPatch) -> None:
    hang = threading.Event()
    runs, warnings = _open(monkeypatch, [Recorder(hang=hang)], WANDB, close_timeout=0.5)
    started = time.monotonic()
    for step in range(1, 50):
        runs.log_metrics({"step": step, "train_loss": 1.0})
    runs.close(RunOutcome.FINISHED)
    assert time.monotonic() - started < 3  # 49 steps and the close, not 49 hangs
    assert any("did not finish in time" in m for m, _ in warnings)
    hang.set()


def test_a_lost_job_leaves_its_runs_to_the_new_owner(monkeypatch: pytest.MonkeyPatch) -> None:
    recorder = Recorder()
    runs, _ = _open(monkeypatch, [recorder], WANDB)
    runs.close(stopped_outcome("lost"))
    assert recorder.calls == []  # not closed: the worker that owns the job goes on with it
    assert stopped_outcome("paused") == RunOutcome.PAUSED
    assert stopped_outcome("cancelled") == RunOutcome.CANCELLED


def test_only_the_operators_servers_and_teams() -> None:
    [mlflow] = stored_integrations([MLFLOW])
    assert refusal(mlflow, Settings()) == (
        "mlflow.tracking_uri", "MLflow server mlflow.internal:5000 is not one this "
        "installation logs to (QUANTA_TRACKING_MLFLOW_HOSTS)")
    assert refusal(mlflow, Settings(tracking_mlflow_hosts="mlflow.internal")) is None
    assert refusal(mlflow, Settings(tracking_mlflow_hosts="other, mlflow.internal:5000")) is None
    [team] = stored_integrations([{"type": "wandb", "wandb": {"project": "p", "entity": "Lab"}}])
    assert refusal(team, Settings())[0] == "wandb.entity"
    assert refusal(team, Settings(tracking_wandb_entities="lab")) is None
