"""Experiment tracking: a job's metrics, parameters and evaluation sent to the runs its
``integrations`` name (Weights & Biases as OpenAI has it, MLflow as Quanta adds it).

A tracker is a side channel: a run that cannot be opened or stops answering is reported
in the job's events and dropped, never a reason for the job to fail or wait.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol

from quanta.types import StopReason
from tune.integrations import IntegrationType, refusal, stored_integrations

if TYPE_CHECKING:
    from quanta.config import Settings
    from quanta.registry import JobRecord
    from tune.integrations import Integration
    from tune.plan import TrainingPlan

log = logging.getLogger(__name__)

Warn = Callable[[str, dict[str, Any]], None]
QUEUE_SIZE = 1000  # calls waiting for the tracking thread (a step queues one or two)
CLOSE_TIMEOUT = 60.0  # seconds a finished attempt waits for its runs to close


class RunOutcome(StrEnum):
    """How a job's attempt ended, as the trackers record it."""

    FINISHED = "finished"
    FAILED = "failed"
    CANCELLED = "cancelled"
    PAUSED = "paused"  # the run is reopened when the job resumes


def stopped_outcome(reason: str | None) -> RunOutcome | None:
    """A stopped attempt's runs: cancelled, paused until the job resumes, or (a worker
    that lost the job) left alone: the worker that owns the job now goes on with them."""
    if reason == StopReason.LOST:
        return None
    return RunOutcome.CANCELLED if reason == StopReason.CANCELLED else RunOutcome.PAUSED


class Tracker(Protocol):
    """One open run in one tracking system."""

    def log_metrics(self, metrics: dict[str, float], step: int) -> None: ...

    def log_summary(self, values: dict[str, float | str]) -> None: ...

    def finish(self, outcome: RunOutcome) -> None: ...


def run_params(job: JobRecord, plan: TrainingPlan) -> dict[str, Any]:
    """What the run was configured with: the job's model, files, method and LoRA shape."""
    lora = plan.quanta.lora
    params: dict[str, Any] = {
        "job_id": job.id, "model": job.model, "training_file": job.training_file_id,
        "validation_file": job.validation_file_id, "suffix": job.suffix, "seed": job.seed,
        "method": str(plan.type), **plan.openai_hyperparameters,
        "learning_rate": plan.learning_rate, "lora_r": lora.r, "lora_alpha": lora.alpha,
        "lora_dropout": lora.dropout,
        "lora_target_modules": ",".join(lora.target_modules or ["base"]),
        "qlora": plan.quanta.qlora, "max_steps": plan.quanta.max_steps,
        "max_length": plan.quanta.max_length,
    }
    if plan.start_adapter is not None:
        params["start_adapter"] = plan.start_adapter.name
    return {k: v for k, v in params.items() if v is not None}


def numeric(values: dict[str, Any], prefix: str = "") -> dict[str, float]:
    """The numbers in an evaluation or metrics dict, named with ``prefix``."""
    return {f"{prefix}{k}": float(v) for k, v in values.items()
            if isinstance(v, int | float) and not isinstance(v, bool)}


def _open(integration: Integration, job: JobRecord, params: dict[str, Any],
          settings: Settings) -> Tracker:
    refused = refusal(integration, settings)  # the settings may have changed since
    if refused is not None:
        raise PermissionError(refused[1])
    if integration.type == IntegrationType.WANDB:
        from tune.train.tracking.wandb_run import WandbTracker

        return WandbTracker.open(integration.wandb, job.id, params)
    from tune.train.tracking.mlflow_run import MlflowTracker

    return MlflowTracker.open(integration.mlflow, job.id, params)


class TrackedRuns:
    """The job's open runs, driven from a thread of their own.

    The trainer only queues calls (each goes to every run), so a tracking server that is
    slow or hangs never holds up a step, a pause or a cancel. A run whose call fails is
    dropped with a warning in the job's events (the exception's class only: its text
    may quote whatever the server answered); if the queue fills up, tracking stops with
    a warning; closing waits ``close_timeout`` seconds at most, then lets the thread go.
    """

    def __init__(self, warn: Warn, close_timeout: float = CLOSE_TIMEOUT) -> None:
        self._warn = warn
        self._trackers: dict[int, tuple[str, Tracker]] = {}  # by position in the request
        self._calls: queue.Queue[Callable[[], None] | None] = queue.Queue(QUEUE_SIZE)
        self._thread = threading.Thread(target=self._drain, name="quanta-tracking",
                                         daemon=True)
        self._close_timeout = close_timeout
        self._stalled = False
        self.outcome: RunOutcome | None = RunOutcome.FINISHED

    @classmethod
    def open(cls, job: JobRecord, plan: TrainingPlan, warn: Warn, settings: Settings,
             close_timeout: float = CLOSE_TIMEOUT) -> TrackedRuns:
        runs = cls(warn, close_timeout)
        integrations = stored_integrations(job.integrations)
        if integrations:
            runs._thread.start()
            runs._submit(lambda: runs._open_all(integrations, job, plan, settings))
        return runs

    def _open_all(self, integrations: list[Integration], job: JobRecord, plan: TrainingPlan,
                  settings: Settings) -> None:
        params = run_params(job, plan)
        for index, integration in enumerate(integrations):
            name = str(integration.type)
            try:
                self._trackers[index] = (name, _open(integration, job, params, settings))
            except Exception as exc:  # a tracker is never a reason to fail the job
                self._report(index, name, "open its run", exc)

    def _drain(self) -> None:
        while (call := self._calls.get()) is not None:
            call()

    def _submit(self, call: Callable[[], None]) -> None:
        if not self._thread.is_alive() or self._stalled:
            return
        try:
            self._calls.put_nowait(call)
        except queue.Full:
            self._stalled = True
            self._warn("Experiment tracking stopped: its servers fell too far behind "
                       "the training", {"integration": "all"})

    def _report(self, index: int, name: str, what: str, exc: BaseException) -> None:
        self._trackers.pop(index, None)
        log.warning("%s: could not %s", name, what, exc_info=exc)
        reason = str(exc) if isinstance(exc, PermissionError) else type(exc).__name__
        self._warn(f"Experiment tracking ({name}) stopped: could not {what} ({reason})",
                   {"integration": name, "index": index})

    def _each(self, what: str, call: Callable[[Tracker], None]) -> None:
        for index, (name, tracker) in list(self._trackers.items()):
            try:
                call(tracker)
            except Exception as exc:
                self._report(index, name, what, exc)

    def log_metrics(self, metrics: dict[str, Any]) -> None:
        values = numeric({k: v for k, v in metrics.items() if k != "step"})
        if values:
            step = int(metrics["step"])
            self._submit(lambda: self._each("log metrics",
                                            lambda tr: tr.log_metrics(values, step)))

    def log_summary(self, values: dict[str, float | str]) -> None:
        if values:
            self._submit(lambda: self._each("log a summary", lambda tr: tr.log_summary(values)))

    def close(self, outcome: RunOutcome | None) -> None:
        """Close the runs as ``outcome``; None lets them go without closing them (another
        worker owns the job now and goes on with its runs)."""
        if not self._thread.is_alive():
            return
        if outcome is not None:
            self._submit(lambda: self._each("close its run", lambda tr: tr.finish(outcome)))
        deadline = time.monotonic() + self._close_timeout
        with suppress(queue.Full):
            self._calls.put(None, timeout=self._close_timeout)
        self._thread.join(max(0.0, deadline - time.monotonic()))
        if self._thread.is_alive():
            self._warn("Experiment tracking did not finish in time; its runs were left "
                       "as they were", {"integration": "all"})


@contextmanager
def tracked_runs(job: JobRecord, plan: TrainingPlan, warn: Warn,
                 settings: Settings) -> Iterator[TrackedRuns]:
    """The job's runs for one attempt; closed with ``runs.outcome`` (set it when the
    attempt is cancelled, paused or lost), or as failed when the attempt raises."""
    runs = TrackedRuns.open(job, plan, warn, settings)
    try:
        yield runs
    except BaseException:
        runs.close(RunOutcome.FAILED)
        raise
    runs.close(runs.outcome)
