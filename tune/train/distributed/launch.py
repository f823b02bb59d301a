"""Run a job's ranks under torchrun: the worker that claimed it supervises, other nodes join.

The worker starts one launcher (``python -m torch.distributed.run``) for its node and
watches it: the job's heartbeat stays with the worker, rank 0 (wherever c10d placed it)
writes to the registry, and torchrun restarts every rank from the last checkpoint when
one dies (``QUANTA_TUNE_MAX_RESTARTS``). A job over several nodes records its c10d
rendezvous endpoint in its events; ``quanta tune node JOB_ID`` on each further node reads
it and starts that node's launcher. Nodes that do not all join within
``QUANTA_TUNE_RENDEZVOUS_TIMEOUT`` fail the job with that reason, never a hang.

A cancelled job stops at the next step on every rank (rank 0 sees the cancel, the ranks
agree through an all-reduce); a launcher still running after a grace period is killed
with its process group, so no rank outlives the job.
"""

from __future__ import annotations

import os
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from quanta.processes import free_port, log_tail, start_process, stop_process
from quanta.types import DistributedStrategy, EventLevel, JobStatus, StopReason

if TYPE_CHECKING:
    from quanta.config import Settings
    from quanta.registry import Registry
    from tune.plan import DistributedOptions
    from tune.train.worker import Heartbeat

WORKER_ID_ENV = "QUANTA_JOB_WORKER_ID"  # the claim rank 0 writes under
WORKDIR_ENV = "QUANTA_JOB_WORKDIR"  # the trainer's output directory, shared by a node's ranks
CANCEL_GRACE = 120.0  # seconds a cancelled job's ranks get to stop at a step boundary
RANK_LOG_LINES = 40


class DistributedError(RuntimeError):
    """A distributed job that cannot run here, or whose ranks failed (the job's error)."""

    code = "distributed_failed"


class MachineMismatch(DistributedError):
    code = "invalid_distributed"


def strategy_for(options: DistributedOptions, *, cuda: bool) -> DistributedStrategy:
    if options.strategy != DistributedStrategy.AUTO:
        return options.strategy
    return DistributedStrategy.FSDP if cuda else DistributedStrategy.DDP


def ddp_args(options: DistributedOptions, *, cuda: bool) -> dict[str, Any]:
    """Trainer arguments for the job's strategy (accelerate does the wrapping)."""
    args: dict[str, Any] = {"ddp_backend": "nccl" if cuda else "gloo",
                            "ddp_find_unused_parameters": False}
    if strategy_for(options, cuda=cuda) == DistributedStrategy.FSDP:
        # LoRA leaves most parameters frozen: FSDP must keep the original parameters to
        # mix frozen and trainable ones in one shard; layers wrap per decoder block.
        args.update(fsdp="full_shard auto_wrap", fsdp_config={"use_orig_params": True})
    return args


def machine_problem(options: DistributedOptions) -> str | None:
    """Why this machine cannot run its share of the job, or None."""
    import torch

    cuda = torch.cuda.is_available()
    per_node = options.processes_per_node
    if cuda:
        gpus = torch.cuda.device_count()
        if per_node > gpus:
            return (f"quanta.distributed.processes_per_node is {per_node} but this worker has "
                    f"{gpus} GPU(s): one process per GPU")
        return None
    if strategy_for(options, cuda=False) == DistributedStrategy.FSDP:
        return ("quanta.distributed.strategy 'fsdp' needs CUDA GPUs; this worker has none: "
                "use 'ddp' (or 'auto') on CPUs")
    cores = len(os.sched_getaffinity(0))
    if per_node > cores:
        return (f"quanta.distributed.processes_per_node is {per_node} but this worker has "
                f"{cores} CPU core(s): at most one process per core")
    return None


def rendezvous_host(settings: Settings) -> str:
    return settings.tune_rendezvous_host or socket.getfqdn()


def launcher_argv(job_id: str, options: DistributedOptions, settings: Settings, *,
                  log_dir: Path, endpoint: str | None, is_host: bool) -> list[str]:
    """torchrun's command line for one node of the job."""
    argv = [sys.executable, "-m", "torch.distributed.run",
            f"--nproc-per-node={options.processes_per_node}",
            f"--max-restarts={settings.tune_max_restarts}", "--monitor-interval=1",
            f"--log-dir={log_dir}", "--redirects=3"]
    if options.nodes == 1:
        argv.append("--standalone")  # c10d on a free local port
    else:
        assert endpoint is not None
        argv += [f"--nnodes={options.nodes}", "--rdzv-backend=c10d",
                 f"--rdzv-endpoint={endpoint}", f"--rdzv-id={job_id}",
                 f"--rdzv-conf=is_host={str(is_host).lower()},"
                 f"join_timeout={settings.tune_rendezvous_timeout:g}"]
    return [*argv, "-m", "tune.train.distributed.rank", job_id]


def rank_env(worker_id: str, workdir: Path, options: DistributedOptions) -> dict[str, str]:
    """The ranks' environment: the claim to write under, the shared output directory, and
    the node's cores split between its processes."""
    cores = len(os.sched_getaffinity(0))
    threads = max(1, cores // options.processes_per_node)
    return {**os.environ, WORKER_ID_ENV: worker_id, WORKDIR_ENV: str(workdir),
            "OMP_NUM_THREADS": str(threads)}


@dataclass(frozen=True)
class RankLog:
    attempt: int
    local_rank: int
    path: Path  # the rank's stderr


def rank_logs(log_dir: Path) -> list[RankLog]:
    """Every rank's stderr torchrun wrote: ``<run>/attempt_<n>/<local_rank>/stderr.log``."""
    logs = []
    for path in log_dir.glob("*/attempt_*/*/stderr.log"):
        attempt = int(path.parent.parent.name.removeprefix("attempt_"))
        logs.append(RankLog(attempt, int(path.parent.name), path))
    return sorted(logs, key=lambda r: (r.attempt, r.local_rank))


def failure_report(log_dir: Path, launcher_log: Path) -> str:
    """The launcher's last lines and each rank's (last attempt), for the job's error."""
    logs = rank_logs(log_dir)
    last = max((r.attempt for r in logs), default=0)
    parts = [f"launcher:\n{log_tail(launcher_log, 15)}"]
    parts += [f"local rank {r.local_rank} (attempt {r.attempt}):\n"
              f"{log_tail(r.path, RANK_LOG_LINES)}" for r in logs if r.attempt == last]
    return "\n\n".join(parts)


def _timed_out(launcher_log: Path) -> bool:
    return "RendezvousTimeoutError" in log_tail(launcher_log, 200)


class Launcher:
    """One node's torchrun, started and followed until it exits or the job ends."""

    def __init__(self, registry: Registry, job_id: str, options: DistributedOptions,
                 workdir: Path, worker_id: str, endpoint: str | None, is_host: bool) -> None:
        self.registry, self.job_id, self.options = registry, job_id, options
        self.workdir, self.log_dir = workdir, workdir / "ranks"
        self.launcher_log = workdir / "launcher.log"
        argv = launcher_argv(job_id, options, registry.settings, log_dir=self.log_dir,
                             endpoint=endpoint, is_host=is_host)
        self.proc = start_process(argv, self.launcher_log,
                                  env=rank_env(worker_id, workdir, options))
        self.attempts_seen = 0

    def follow(self, beat: Heartbeat | None = None) -> int:
        """Wait for the launcher; report restarts as events; kill it if a cancelled job
        has not stopped within the grace period. Returns its exit code."""
        cancel_deadline: float | None = None
        try:
            while self.proc.poll() is None:
                time.sleep(1.0)
                self._report_restarts()
                # A pause is rank 0's to take at a step boundary: only a cancel or a lost
                # claim starts the grace period.
                if beat is not None and beat.ending() and cancel_deadline is None:
                    cancel_deadline = time.monotonic() + CANCEL_GRACE
                if cancel_deadline is not None and time.monotonic() > cancel_deadline:
                    break
        finally:
            stop_process(self.proc, grace=10)  # every rank is in the launcher's group
        return self.proc.returncode

    def _report_restarts(self) -> None:
        attempts = {r.attempt for r in rank_logs(self.log_dir)}
        latest = max(attempts, default=0)
        if latest > self.attempts_seen:
            self.attempts_seen = latest
            self.registry.jobs.add_event(
                self.job_id, f"A rank failed: torchrun restarted every rank from the last "
                f"checkpoint (restart {latest} of {self.registry.settings.tune_max_restarts})",
                level=EventLevel.WARN, data={"restart": latest})

    def failure(self) -> DistributedError:
        if _timed_out(self.launcher_log):
            return DistributedError(
                f"the job's {self.options.nodes} nodes did not all join within "
                f"{self.registry.settings.tune_rendezvous_timeout:g} s: run "
                f"`quanta tune node {self.job_id}` on each further node")
        report = failure_report(self.log_dir, self.launcher_log)
        return DistributedError(f"the job's ranks failed (torchrun exited with "
                                f"{self.proc.returncode}); last lines:\n{report[-800:]}")

    def attach_logs(self) -> None:
        """Every rank's last lines as a job event: the failing rank may not be rank 0."""
        report = failure_report(self.log_dir, self.launcher_log)
        self.registry.jobs.add_event(self.job_id, f"Ranks' logs:\n{report}"[:20000],
                                     level=EventLevel.ERROR, data={"rank_logs": True})


def supervise(registry: Registry, job_id: str, options: DistributedOptions, beat: Heartbeat,
              workdir: Path, worker_id: str) -> None:
    """Run this node's share of a claimed job and see it end: the job is terminal when this
    returns, or the claim was lost, or DistributedError says why it failed."""
    problem = machine_problem(options)
    if problem:
        raise MachineMismatch(problem)
    endpoint = None
    if options.nodes > 1:
        endpoint = f"{rendezvous_host(registry.settings)}:{free_port()}"
        registry.jobs.add_event(
            job_id, f"Waiting for {options.nodes - 1} more node(s) at {endpoint}: run "
            f"`quanta tune node {job_id}` on each", data={"rendezvous": {
                "endpoint": endpoint, "nodes": options.nodes}})
    launcher = Launcher(registry, job_id, options, workdir, worker_id, endpoint, is_host=True)
    registry.jobs.add_event(
        job_id, f"Training on {options.world_size} processes ({options.nodes} node(s) x "
        f"{options.processes_per_node}) under torchrun", data={"distributed": {
            **options.model_dump(mode="json"), "pid": launcher.proc.pid}})
    code = launcher.follow(beat)
    job = registry.jobs.get(job_id)
    assert job is not None
    ours = job.worker_id == worker_id
    if code != 0 and ours and beat.reason() != StopReason.CANCELLED:
        launcher.attach_logs()  # also when rank 0 already failed the job: its peers' view
    if job.status != JobStatus.RUNNING or not ours:
        return  # rank 0 finished it (succeeded, failed or cancelled), or it changed hands
    if beat.ending():
        return  # the worker marks a cancel; a lost claim belongs to someone else now
    if code == 0:
        raise DistributedError("the ranks exited without finishing the job")
    raise launcher.failure()


def rendezvous_of(registry: Registry, job_id: str) -> str | None:
    """The endpoint the job's first node recorded (its latest, after a restart)."""
    endpoint = None
    for data in registry.jobs.event_data(job_id):
        endpoint = (data.get("rendezvous") or {}).get("endpoint", endpoint)
    return endpoint


def join(registry: Registry, job_id: str, options: DistributedOptions, workdir: Path,
         endpoint: str | None = None, wait: float = 0.0) -> int:
    """``quanta tune node``: start this node's launcher for a running multi-node job."""
    deadline = time.monotonic() + wait
    while True:
        job = registry.jobs.get(job_id)
        found = endpoint or rendezvous_of(registry, job_id)
        if job is not None and job.status == JobStatus.RUNNING and found:
            break
        if time.monotonic() >= deadline:
            raise DistributedError(f"job {job_id} is not a running multi-node job with a "
                                   "rendezvous endpoint yet")
        time.sleep(1.0)
    problem = machine_problem(options)
    if problem:
        raise MachineMismatch(problem)
    assert job.worker_id is not None
    launcher = Launcher(registry, job_id, options, workdir, job.worker_id, found,
                        is_host=False)
    return launcher.follow()
