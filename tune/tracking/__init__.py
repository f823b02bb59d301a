"""Experiment tracking: a job's metrics, parameters and evaluation sent to the runs its
``integrations`` name (Weights & Biases as OpenAI has it, MLflow as Quanta adds it).

A tracker is a side channel: a run that cannot be opened or stops answering is reported
in the job's events and dropped, never a reason for the job to fail or wait.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol

from quanta.types import StopReason
from tune.tracking.config import IntegrationType, stored_integrations

if TYPE_CHECKING:
    from quanta.registry import tables as t
    from tune.spec import TrainingPlan
    from tune.tracking.config import Integration

log = logging.getLogger(__name__)

Warn = Callable[[str, dict[str, Any]], None]


class RunOutcome(StrEnum):
    """How a job's attempt ended, as the trackers record it."""

    FINISHED = "finished"
    FAILED = "failed"
    CANCELLED = "cancelled"
    PAUSED = "paused"  # the run is reopened when the job resumes


def stopped_outcome(reason: str | None) -> RunOutcome:
    """A stopped attempt's runs: cancelled, or paused until the job runs again (a paused
    job, or one whose worker was lost and which another worker goes on with)."""
    return RunOutcome.CANCELLED if reason == StopReason.CANCELLED else RunOutcome.PAUSED


class Tracker(Protocol):
    """One open run in one tracking system."""

    def log_metrics(self, metrics: dict[str, float], step: int) -> None: ...

    def log_summary(self, values: dict[str, float | str]) -> None: ...

    def finish(self, outcome: RunOutcome) -> None: ...


def run_params(job: t.Job, plan: TrainingPlan) -> dict[str, Any]:
    """What the run was configured with: the job's model, files, method and LoRA shape."""
    lora = plan.quanta.lora
    params: dict[str, Any] = {
        "job_id": job.id, "model": job.model, "training_file": job.training_file_id,
        "validation_file": job.validation_file_id, "suffix": job.suffix, "seed": job.seed,
        "method": str(plan.type), **plan.openai_hyperparameters,
        "learning_rate": plan.learning_rate, "lora_r": lora.r, "lora_alpha": lora.alpha,
        "lora_dropout": lora.dropout, "lora_target_modules": ",".join(lora.target_modules),
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


def _open(integration: Integration, job: t.Job, params: dict[str, Any]) -> Tracker:
    if integration.type == IntegrationType.WANDB:
        from tune.tracking.wandb_run import WandbTracker

        return WandbTracker.open(integration.wandb, job.id, params)
    from tune.tracking.mlflow_run import MlflowTracker

    return MlflowTracker.open(integration.mlflow, job.id, params)


class TrackedRuns:
    """The job's open runs; each call goes to all of them, and one that fails is dropped
    with a warning in the job's events."""

    def __init__(self, warn: Warn) -> None:
        self._warn = warn
        self._trackers: dict[int, tuple[str, Tracker]] = {}  # by position in the request
        self.outcome = RunOutcome.FINISHED

    @classmethod
    def open(cls, job: t.Job, plan: TrainingPlan, warn: Warn) -> TrackedRuns:
        runs = cls(warn)
        params = run_params(job, plan)
        for index, integration in enumerate(stored_integrations(job.integrations)):
            name = str(integration.type)
            try:
                runs._trackers[index] = (name, _open(integration, job, params))
            except Exception as exc:  # a tracker is never a reason to fail the job
                runs._report(index, name, "open its run", exc)
        return runs

    def __len__(self) -> int:
        return len(self._trackers)

    def _report(self, index: int, name: str, what: str, exc: BaseException) -> None:
        self._trackers.pop(index, None)
        log.warning("%s: could not %s", name, what, exc_info=exc)
        self._warn(f"Experiment tracking ({name}) stopped: could not {what}: "
                   f"{type(exc).__name__}: {exc}"[:500],
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
            self._each("log metrics", lambda tr: tr.log_metrics(values, int(metrics["step"])))

    def log_summary(self, values: dict[str, float | str]) -> None:
        if values:
            self._each("log a summary", lambda tr: tr.log_summary(values))

    def finish(self, outcome: RunOutcome) -> None:
        self._each("close its run", lambda tr: tr.finish(outcome))
        self._trackers.clear()


@contextmanager
def tracked_runs(job: t.Job, plan: TrainingPlan, warn: Warn) -> Iterator[TrackedRuns]:
    """The job's runs for one attempt; closed with ``runs.outcome`` (set it when the
    attempt is cancelled or paused), or as failed when the attempt raises."""
    runs = TrackedRuns.open(job, plan, warn)
    try:
        yield runs
    except BaseException:
        runs.finish(RunOutcome.FAILED)
        raise
    runs.finish(runs.outcome)
