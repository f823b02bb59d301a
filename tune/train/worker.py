"""The tune worker: claims queued jobs and runs them in this process.

One job at a time, read once when its attempt begins: the attempt trains the plan the API
stored (``tune.plan.TrainingPlan``) from that record. A heartbeat thread refreshes the job
row every few seconds and reads ``cancel_requested`` and ``pause_requested`` (what changes
meanwhile); the training loop polls the flags it sets, so a cancel stops training within a
step, and a pause at the next step boundary after writing a checkpoint there (resume
continues from it, on any worker). Checkpoints go to the registry every ``checkpoint_every``
steps; if this process is SIGKILLed, its heartbeat goes stale, the next worker re-queues the
job and resumes it from the last checkpoint with ``resume_from_checkpoint``. Any exception
marks the job failed with its reason. The adapter is registered under an id derived from the
job id, so a crash between "adapter stored" and "job succeeded" is finished by the next
attempt instead of training a second adapter.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import tempfile
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from quanta.calculator import calculator_flag
from quanta.data import DatasetError, read_examples
from quanta.data.stats import writes_calculations
from quanta.registry import (
    AdapterRecord,
    CheckpointRecord,
    FileRecord,
    JobRecord,
    NotFoundError,
    Registry,
)
from quanta.types import (
    EventLevel,
    EventType,
    JobStatus,
    MethodType,
    StopReason,
)
from tune.plan import TrainingPlan
from tune.train import queue
from tune.train.distributed.collective import RankInfo
from tune.train.tracking import TrackedRuns, numeric, stopped_outcome, tracked_runs

if TYPE_CHECKING:
    from quanta.precision import Precision

log = logging.getLogger("quanta.tune.worker")
DEFAULT_STALE_AFTER = 60.0
DEFAULT_HEARTBEAT = 2.0
SINGLE_PROCESS = RankInfo()


def work_root(registry: Registry) -> Path:
    """Where jobs' scratch directories live (``<job_id>.<random>``, swept when stale)."""
    root = registry.settings.resolved_home / "work"
    root.mkdir(parents=True, exist_ok=True)
    return root


def adapter_id_for(job_id: str) -> str:
    return "ft-" + job_id.split("-", 1)[-1]


class Heartbeat(threading.Thread):
    """Keeps the claim alive and notices cancellation, a pause request or loss of the job."""

    def __init__(self, registry: Registry, job_id: str, worker_id: str, interval: float):
        super().__init__(daemon=True, name=f"heartbeat-{job_id}")
        self.registry, self.job_id, self.worker_id = registry, job_id, worker_id
        self.interval = interval
        self.cancelled = threading.Event()
        self.paused = threading.Event()
        self.lost = threading.Event()
        self._stop_event = threading.Event()

    def beat(self) -> None:
        try:
            pulse = queue.heartbeat(self.registry, self.job_id, self.worker_id)
        except Exception:  # a busy database must not kill training; try again next beat
            log.exception("heartbeat failed")
            return
        if not pulse.owned:
            self.lost.set()
        if pulse.cancel:
            self.cancelled.set()
        if pulse.pause:
            self.paused.set()
        else:
            self.paused.clear()  # the owner withdrew the pause (resume before it was taken)

    def run(self) -> None:
        while not self._stop_event.wait(self.interval):
            self.beat()

    def stop(self) -> None:
        self._stop_event.set()

    def reason(self) -> StopReason | None:
        if self.lost.is_set():
            return StopReason.LOST
        if self.cancelled.is_set():
            return StopReason.CANCELLED
        if self.paused.is_set():
            return StopReason.PAUSED
        return None

    def ending(self) -> StopReason | None:
        """A reason to drop the job's work: lost or cancelled (a pause waits for a step
        boundary, so after training it no longer applies)."""
        reason = self.reason()
        return None if reason == StopReason.PAUSED else reason


class Worker:
    """Claims and runs jobs; ``progress(step, total, loss)`` lets the CLI draw a bar."""

    def __init__(self, registry: Registry, *, worker_id: str | None = None,
                 stale_after: float = DEFAULT_STALE_AFTER,
                 heartbeat_interval: float = DEFAULT_HEARTBEAT,
                 progress: Callable[[int, int, float | None], None] | None = None) -> None:
        self.registry = registry
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}"
        self.stale_after = stale_after
        self.heartbeat_interval = heartbeat_interval
        self.progress = progress

    # -- loop ------------------------------------------------------------------------------

    def run_once(self, job_id: str | None = None) -> str | None:
        """Re-queue stale jobs, then claim and run one job; returns its id (None if idle).

        With ``job_id`` (a Kubernetes Job per fine-tuning job) only that job is claimed.
        """
        queue.requeue_stale(self.registry, self.stale_after)
        if job_id is None:
            job_id = queue.claim_next(self.registry, self.worker_id)
        elif not queue.claim(self.registry, job_id, self.worker_id):
            return None
        if job_id is not None:
            self.run_job(job_id)
        return job_id

    def run_forever(self, poll_interval: float = 2.0,
                    should_exit: Callable[[], bool] = lambda: False) -> None:
        self.sweep_workdirs()
        while not should_exit():
            if self.run_once() is None:
                time.sleep(poll_interval)

    # -- one job ---------------------------------------------------------------------------

    def run_job(self, job_id: str) -> None:
        """Run a job this worker has claimed. The job is read here, once: everything after
        works from this record and its plan; what changes meanwhile (cancel and pause
        requests, the claim itself) reaches the attempt through the heartbeat."""
        beat = Heartbeat(self.registry, job_id, self.worker_id, self.heartbeat_interval)
        beat.start()
        workdir = Path(tempfile.mkdtemp(prefix=f"{job_id}.",
                                        dir=self._work_root()))
        try:
            job = self.registry.jobs.get(job_id)
            assert job is not None
            plan = TrainingPlan.from_stored(job.method)  # typed again: what the API accepted
            distributed = plan.quanta.distributed
            if distributed.world_size > 1:
                from tune.train.distributed.launch import supervise

                supervise(self.registry, job_id, distributed, beat, workdir, self.worker_id)
                if beat.reason() == StopReason.CANCELLED:
                    self._stop(job_id, StopReason.CANCELLED)
            else:
                self._train_job(job, plan, beat, workdir)
        except Exception as exc:  # the job fails with its reason; the worker lives on
            self._fail(job_id, exc)
        finally:
            beat.stop()
            shutil.rmtree(workdir, ignore_errors=True)

    def run_rank(self, job_id: str, rank: RankInfo, workdir: Path) -> int:
        """One rank of a distributed job (``tune.train.distributed.rank``); its exit code.

        Every rank first reads the job: one that is no longer running under this claim
        (finished, failed by rank 0 on a previous attempt, cancelled) makes them all exit
        cleanly, so torchrun's restart of a job that failed for good ends at once. A job
        still queued (a TrainJob applied by hand) is claimed by rank 0 first.
        """
        from tune.train.distributed.collective import barrier

        if rank.is_main:
            queue.claim(self.registry, job_id, self.worker_id)  # no-op unless queued
        barrier()
        job = self.registry.jobs.get(job_id)
        if job is None or job.status != JobStatus.RUNNING or job.worker_id != self.worker_id:
            log.info("job %s is %s; nothing to train", job_id, job and job.status)
            return 0
        beat = (Heartbeat(self.registry, job_id, self.worker_id, self.heartbeat_interval)
                if rank.is_main else None)
        if beat is not None:
            beat.start()
        try:
            self._train_job(job, TrainingPlan.from_stored(job.method), beat, workdir, rank)
        except Exception as exc:
            # A broken peer surfaces here as a gloo/NCCL error: torchrun restarts every rank
            # from the checkpoint. Only a bad training file, or the last attempt, fails the job.
            if rank.is_main and (isinstance(exc, DatasetError) or rank.last_attempt):
                self._fail(job_id, exc)
            raise
        finally:
            if beat is not None:
                beat.stop()
        return 0

    def _fail(self, job_id: str, exc: Exception) -> None:
        log.error("job %s failed:\n%s", job_id, traceback.format_exc())
        code = getattr(exc, "code", None)
        if not isinstance(code, str):
            code = "invalid_training_file" if isinstance(exc, DatasetError) else "training_failed"
        message = f"{type(exc).__name__}: {exc}"[:1000]
        queue.finish(self.registry, job_id, self.worker_id, JobStatus.FAILED,
                     error={"code": code, "message": message, "param": None})

    def _work_root(self) -> Path:
        return work_root(self.registry)

    def sweep_workdirs(self) -> int:
        """Remove scratch directories that killed workers left behind; returns how many.

        A directory is named ``<job_id>.<random>``; it is kept while its job is running
        (a live worker, possibly another one, may be using it).
        """
        removed = 0
        running = self.registry.jobs.ids_in(JobStatus.RUNNING)
        for workdir in self._work_root().iterdir():
            if workdir.name.split(".", 1)[0] not in running:
                shutil.rmtree(workdir, ignore_errors=True)
                removed += 1
        return removed

    def _train_job(self, job: JobRecord, plan: TrainingPlan, beat: Heartbeat | None,
                   workdir: Path, rank: RankInfo = SINGLE_PROCESS) -> None:
        """Train one job (as read when the attempt began); under torchrun every rank runs
        this, rank 0 (``beat`` set) alone evaluates and writes to the registry."""
        from tune.train.trainer import train

        registry, job_id = self.registry, job.id
        # Finish an attempt that stored its adapter but died before marking the job done.
        try:
            adapter = registry.resolve_adapter(job.tenant_id, adapter_id_for(job_id))
            if rank.is_main:
                self._succeed(job, adapter, job.trained_tokens)
            return
        except NotFoundError:
            pass

        inputs = self._inputs(job, plan)
        if beat is None or not rank.is_main:  # a rank other than 0: train, nothing else
            train(inputs.base_dir, inputs.plan, inputs.train_examples, inputs.valid_examples,
                  workdir, seed=job.seed, resume_from=inputs.resume_dir,
                  precision=inputs.precision, start_adapter=inputs.start_adapter,
                  calculator=inputs.calculator)
            return

        registry.jobs.add_event(job_id, f"Training with {inputs.precision.describe()}",
                                data={"precision": inputs.precision.as_dict()})
        if inputs.calculator and inputs.plan.type == MethodType.REINFORCEMENT:
            registry.jobs.add_event(
                job_id, "Sampling rollouts with calculator decoding (the adapter writes "
                "calculation traces); inserted values are not trained on",
                data={"calculator": True})

        def on_warning(message: str, data: dict[str, Any]) -> None:
            registry.jobs.add_event(job_id, message, level=EventLevel.WARN, data=data)

        with tracked_runs(job, inputs.plan, on_warning, registry.settings) as runs:
            self._train_main(inputs, runs, beat, rank, workdir, on_warning)

    def _inputs(self, job: JobRecord, plan: TrainingPlan) -> JobInputs:
        """Everything an attempt trains from: the job's files, base model, the adapter it
        continues, its grader and latest checkpoint."""
        from quanta.models import base_lora_targets, model_path
        from quanta.precision import resolve

        registry = self.registry
        train_examples = _read(registry, registry.get_file(job.tenant_id, job.training_file_id))
        valid_examples = (_read(registry, registry.get_file(job.tenant_id,
                                                            job.validation_file_id))
                          if job.validation_file_id else None)
        start_row = (registry.usable_adapter(job.tenant_id, plan.start_adapter.id)
                     if plan.start_adapter else None)
        # An adapter that writes calculation traces is evaluated (and served) with the
        # calculator: one trained on such data, or continuing one that was.
        start_calculator = start_row is not None and calculator_flag(start_row.config)
        grader = None
        if plan.grader is not None:
            from tune.graders import build_grader

            grader = build_grader(plan.grader)
        checkpoint = registry.jobs.latest_checkpoint(job.id)
        base_dir = model_path(registry, job.model)  # imports the bundled default if need be
        plan = plan.for_base(base_lora_targets(registry, job.model))
        return JobInputs(
            job=job, plan=plan, base_dir=base_dir,
            train_examples=train_examples, valid_examples=valid_examples,
            precision=resolve(plan.quanta.compute_dtype, requested_by="the job"),
            start_row=start_row,
            start_adapter=registry.materialize(start_row.sha256) if start_row else None,
            start_calculator=start_calculator,
            calculator=start_calculator or any(writes_calculations(e) for e in train_examples),
            grader=grader, checkpoint=checkpoint,
            resume_dir=registry.materialize(checkpoint.sha256) if checkpoint else None)

    def _train_main(self, inputs: JobInputs, runs: TrackedRuns, beat: Heartbeat,
                    rank: RankInfo, workdir: Path,
                    on_warning: Callable[[str, dict[str, Any]], None]) -> None:
        """Rank 0's part of a job: evaluate, train, evaluate, store; what it measures also
        goes to the job's experiment-tracking runs."""
        from tune.train import evaluation
        from tune.train.methods.base import TrainHooks
        from tune.train.trainer import train

        job, plan, checkpoint = inputs.job, inputs.plan, inputs.checkpoint
        base_dir, valid_examples = inputs.base_dir, inputs.valid_examples
        precision, grader, calculator = inputs.precision, inputs.grader, inputs.calculator
        registry, jobs, job_id, options = self.registry, self.registry.jobs, job.id, plan.quanta
        before = self._eval_before(job_id, base_dir, valid_examples, plan, precision, grader,
                                   inputs.start_adapter, inputs.start_calculator)
        runs.log_summary(numeric(before, "eval_before/"))
        # Under torchrun the other ranks are already waiting in the trainer: they stop with
        # rank 0 at the first step instead.
        if beat.reason() and not rank.distributed:
            self._stop(job_id, beat.reason(), checkpoint.step if checkpoint else None, runs)
            return
        if checkpoint is not None:
            jobs.add_event(job_id, f"Resuming from checkpoint at step {checkpoint.step}",
                           data={"resumed_from_step": checkpoint.step})

        def on_checkpoint(step: int, path: Path, metrics: dict[str, Any]) -> None:
            if queue.store_checkpoint(registry, job_id, self.worker_id, step, path,
                                      metrics) is None:
                beat.lost.set()

        def on_metrics(metrics: dict[str, Any]) -> None:
            parts = [f"Step {metrics['step']}"]
            if "train_loss" in metrics:
                parts.append(f"training loss={metrics['train_loss']:.3f}")
            if "valid_loss" in metrics:
                parts.append(f"validation loss={metrics['valid_loss']:.3f}")
            jobs.add_event(job_id, ", ".join(parts), type=EventType.METRICS, data=metrics)
            runs.log_metrics(metrics)

        hooks = TrainHooks(on_metrics=on_metrics, on_checkpoint=on_checkpoint,
                           should_stop=beat.reason, on_warning=on_warning,
                           on_progress=self.progress or (lambda step, total, loss: None))
        result = train(base_dir, plan, inputs.train_examples, valid_examples, workdir,
                       seed=job.seed, resume_from=inputs.resume_dir, hooks=hooks,
                       precision=precision, start_adapter=inputs.start_adapter,
                       calculator=calculator)
        if result.stopped or beat.ending():
            self._stop(job_id, result.stopped or beat.ending(), result.steps, runs)
            return

        jobs.add_event(job_id, "Evaluating the tuned adapter" + (
            " with calculator decoding (its training data writes calculations)"
            if calculator else ""), data={"calculator": calculator})
        after = evaluation.evaluate(result.model, result.tokenizer, valid_examples,
                                    options.eval, options.max_length, grader,
                                    plan.max_completion_length, calculator=calculator)
        runs.log_summary(numeric(after, "eval_after/"))
        if beat.ending():
            self._stop(job_id, beat.ending(), runs=runs)
            return
        config = {
            "method": str(plan.type),
            "lora": options.lora.model_dump(),
            "qlora": options.qlora,
            "hyperparameters": plan.openai_hyperparameters,
            "max_steps": options.max_steps,
            "max_length": options.max_length,
            "steps": result.steps,
            "train_seconds": round(result.train_runtime, 1),  # this attempt's training time
            "backend": result.backend,
            "compute_dtype": str(precision.dtype),
            "seed": job.seed,
            "calculator": calculator,
        }
        origin = derived_from(inputs.start_row, job.tenant_id)
        if origin is not None:  # trained from a model shared with this tenant
            config["derived_from"] = origin
        if plan.grader is not None:
            config["grader"] = {"type": str(plan.grader.type), "name": plan.grader.name}
        if plan.start_adapter is not None:  # the shape is the continued adapter's
            config["start_adapter"] = plan.start_adapter.name
            config["lora"] = _lora_shape(result.adapter_dir)
        if valid_examples and "heldout_loss" in after:
            final = {"step": result.steps, "full_valid_loss": after["heldout_loss"],
                     "full_valid_mean_token_accuracy": after["heldout_token_accuracy"]}
            jobs.add_event(job_id, f"Step {result.steps}: full validation loss="
                           f"{final['full_valid_loss']:.3f}", type=EventType.METRICS, data=final)
            runs.log_metrics(final)
        adapter = registry.add_adapter(
            job.tenant_id, job.model, result.adapter_dir, suffix=job.suffix, job_id=job_id,
            training_file_id=job.training_file_id, config=config,
            eval={"before": before, "after": after}, adapter_id=adapter_id_for(job_id))
        runs.log_summary({"fine_tuned_model": adapter.name})
        self._succeed(job, adapter, result.trained_tokens)

    def _succeed(self, job: JobRecord, adapter: AdapterRecord, trained_tokens: int | None) -> None:
        """Mark the job succeeded, after what goes with it: its last checkpoints published
        as models and its results file. The adapter is stored, so neither may fail the job:
        a problem with them is a warning in its events. Both are idempotent, so a worker
        killed half-way leaves the next attempt to finish them."""
        from tune.train.checkpoints import publish_checkpoints
        from tune.train.results import store_results

        # Fresh state, not the record the attempt began with: the claim may have been lost
        # while training (the heartbeat's compare-and-set says whether it still holds).
        if not queue.heartbeat(self.registry, job.id, self.worker_id).owned:
            return  # another worker owns it now and finishes it
        published = self._best_effort(job.id, "publish its checkpoints",
                                      lambda: publish_checkpoints(self.registry, job, adapter))
        if published:
            self.registry.jobs.add_event(job.id, f"Checkpoint models kept: {', '.join(published)}",
                                         data={"checkpoint_models": published})
        results = self._best_effort(job.id, "write its results file",
                                    lambda: store_results(self.registry, job.id, job.tenant_id))
        queue.finish(self.registry, job.id, self.worker_id, JobStatus.SUCCEEDED,
                     fine_tuned_model=adapter.name, trained_tokens=trained_tokens,
                     result_files=[results] if results else [],
                     message=f"The job has successfully completed: {adapter.name}")

    def _best_effort(self, job_id: str, what: str, step: Callable[[], Any]) -> Any:
        """``step()``, or None with a warning in the job's events if it fails."""
        try:
            return step()
        except Exception as exc:
            log.exception("job %s: could not %s", job_id, what)
            self.registry.jobs.add_event(job_id, f"Could not {what}: {exc}"[:1000],
                                         level=EventLevel.WARN)
            return None

    def _eval_before(self, job_id: str, base_dir: Path, valid_examples: Any,
                     plan: TrainingPlan, precision: Any, grader: Any,
                     start_adapter: Path | None, calculator: bool = False) -> dict[str, Any]:
        """The starting model's scores, computed once per job (a resumed attempt reuses
        them)."""
        from tune.train import evaluation

        for data in self.registry.jobs.event_data(job_id):
            if "eval_before" in data:
                return data["eval_before"]
        start = plan.start_adapter
        self.registry.jobs.add_event(
            job_id, f"Evaluating {start.name}" if start else "Evaluating the base model")
        before = evaluation.evaluate_base(base_dir, valid_examples, plan.quanta.eval, precision,
                                          plan.quanta.max_length, grader,
                                          plan.max_completion_length, start_adapter,
                                          calculator=calculator)
        self.registry.jobs.add_event(
            job_id, f"{start.name} evaluated" if start else "Base model evaluated",
            data={"eval_before": before})
        return before

    def _stop(self, job_id: str, reason: str | None, step: int | None = None,
              runs: TrackedRuns | None = None) -> None:
        """End an attempt stopped for ``reason``; its tracking ``runs`` close as it ended."""
        if runs is not None:
            runs.outcome = stopped_outcome(reason)
        if reason == StopReason.CANCELLED:
            queue.finish(self.registry, job_id, self.worker_id, JobStatus.CANCELLED)
        elif reason == StopReason.PAUSED:
            queue.pause(self.registry, job_id, self.worker_id, step)
        # "lost": another worker owns the job now; leave it alone.


@dataclass
class JobInputs:
    """What one attempt at a job trains from (read once, on every rank)."""

    job: JobRecord
    plan: TrainingPlan
    base_dir: Path
    train_examples: list[dict[str, Any]]
    valid_examples: list[dict[str, Any]] | None
    precision: Precision
    start_row: AdapterRecord | None  # the adapter the job continues, if any
    start_adapter: Path | None  # its weights
    start_calculator: bool  # it writes calculation traces
    calculator: bool  # the trained adapter will
    grader: Any
    checkpoint: CheckpointRecord | None  # the latest, which the attempt resumes from
    resume_dir: Path | None


def derived_from(start: AdapterRecord | None, tenant_id: str) -> dict[str, str] | None:
    """Where a continued adapter's weights come from, when another tenant owns them: the
    shared model (or what it was itself trained from). Its grant keeps the result usable
    (``Registry.usable_adapter``); it cannot be shared on or exported."""
    if start is None:
        return None
    inherited = (start.config or {}).get("derived_from")
    if isinstance(inherited, dict):
        return inherited
    if start.tenant_id != tenant_id:
        return {"adapter": start.id, "owner": start.tenant_id}
    return None


def _lora_shape(adapter_dir: Path) -> dict[str, Any]:
    """r, alpha, dropout and targets of a saved peft adapter (LoraOptions' names)."""
    import json

    saved = json.loads((adapter_dir / "adapter_config.json").read_text())
    return {"r": saved["r"], "alpha": saved["lora_alpha"], "dropout": saved["lora_dropout"],
            "target_modules": sorted(saved["target_modules"])}


def _read(registry: Registry, file_row: FileRecord) -> list[dict[str, Any]]:
    path = registry.blob_path(file_row.sha256, suffix=".jsonl")
    return read_examples(path, file_row.format)
