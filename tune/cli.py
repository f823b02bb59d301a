"""``quanta tune ...``: train locally in one command, run the API or a worker, manage jobs.

The one place both sides of tune meet in code: ``api``, ``jobs ...`` call the API side
(``tune.api``), ``worker`` and ``node`` the worker side (``tune.train``), and ``run``
creates a job as the API does and trains it as a worker does.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from quanta.console import UsageError, console, fmt_metric, open_registry
from quanta.http_errors import HTTPError
from quanta.types import ComputeDtype, FilePurpose, JobStatus, MethodType

tune_app = typer.Typer(help="Fine-tune LoRA adapters (OpenAI-compatible API and worker).",
                       no_args_is_help=True)
jobs_app = typer.Typer(help="Fine-tuning jobs.", no_args_is_help=True)


class Dispatch(StrEnum):
    LOCAL = "local"
    KUBERNETES = "kubernetes"

tune_app.add_typer(jobs_app, name="jobs")


def register(app: typer.Typer) -> None:
    app.add_typer(tune_app, name="tune")


def _tenant(registry: Any, tenant: str | None) -> str:
    return tenant or registry.settings.default_tenant


def _raise_user_error(exc: Exception) -> None:

    if isinstance(exc, HTTPError):
        where = f" ({exc.param})" if exc.param else ""
        raise UsageError(f"{exc.message}{where}") from None
    raise exc


@tune_app.command("run")
def run(
    file: Annotated[Path, typer.Argument(help="Training data (chat, preference or RFT JSONL)")],
    model: Annotated[str | None, typer.Option(
        help="Base model id (default: SmolLM2), or an ft: adapter to continue")] = None,
    validation_file: Annotated[Path | None, typer.Option(help="Held-out data")] = None,
    method: Annotated[MethodType, typer.Option(help="The training method")
                      ] = MethodType.SUPERVISED,
    grader: Annotated[Path | None, typer.Option(
        help="reinforcement: the grader, a JSON file in OpenAI's shape")] = None,
    suffix: Annotated[str | None, typer.Option(help="Name part of the adapter")] = None,
    epochs: Annotated[int | None, typer.Option(help="n_epochs (default auto)")] = None,
    batch_size: Annotated[int | None, typer.Option(help="batch_size (default auto)")] = None,
    lr_multiplier: Annotated[float | None, typer.Option(help="learning_rate_multiplier")] = None,
    max_steps: Annotated[int | None, typer.Option(help="Stop after this many steps")] = None,
    qlora: Annotated[bool, typer.Option(help="Train on a 4-bit NF4 base (QLoRA)")] = False,
    lora_r: Annotated[int, typer.Option(help="LoRA rank")] = 16,
    lora_alpha: Annotated[float, typer.Option(help="LoRA alpha")] = 32,
    max_length: Annotated[int, typer.Option(help="Truncate examples to this many tokens")] = 512,
    checkpoint_every: Annotated[int, typer.Option(help="Checkpoint every N steps")] = 50,
    eval_n: Annotated[int, typer.Option(help="Physics problems to evaluate")] = 10,
    compute_dtype: Annotated[ComputeDtype, typer.Option(
        help="auto: bf16 only where the CPU/GPU computes it natively, else fp32 on CPU")
                             ] = ComputeDtype.AUTO,
    seed: Annotated[int, typer.Option()] = 0,
    tenant: Annotated[str | None, typer.Option()] = None,
) -> None:
    """Train an adapter locally, through the same job queue and worker as the API."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    from quanta.models import DEFAULT_MODEL_ID, ensure_model
    from tune.api.service import TuneService
    from tune.train import queue
    from tune.train.worker import Worker

    if not file.is_file():
        raise UsageError(f"no such file: {file}")

    registry = open_registry()
    tenant_id = _tenant(registry, tenant)
    service = TuneService(registry)
    model = model or DEFAULT_MODEL_ID
    if model == DEFAULT_MODEL_ID:
        with console.status("importing the base model..."):
            ensure_model(registry)
    hp: dict[str, Any] = {}
    for key, value in (("n_epochs", epochs), ("batch_size", batch_size),
                       ("learning_rate_multiplier", lr_multiplier)):
        if value is not None:
            hp[key] = value
    block: dict[str, Any] = {"hyperparameters": hp}
    if method is MethodType.REINFORCEMENT:
        block["grader"] = _read_grader(grader)
    elif grader is not None:
        raise UsageError("--grader goes with --method reinforcement")
    body = {
        "model": model, "suffix": suffix, "seed": seed,
        "method": {"type": str(method), str(method): block},
        "quanta": {"lora": {"r": lora_r, "alpha": lora_alpha}, "qlora": qlora,
                   "max_steps": max_steps, "checkpoint_every": checkpoint_every,
                   "max_length": max_length, "compute_dtype": compute_dtype,
                   "eval": {"physics_n": eval_n}},
    }
    try:
        body["training_file"] = _upload(service, tenant_id, file)
        if validation_file is not None:
            body["validation_file"] = _upload(service, tenant_id, validation_file)
        job = service.create_job(tenant_id, body)
    except Exception as exc:
        _raise_user_error(exc)
    console.print(f"job [bold]{job['id']}[/bold] created")

    progress = Progress(TextColumn("[bold]training"), BarColumn(), MofNCompleteColumn(),
                        TextColumn("loss {task.fields[loss]}"), TimeRemainingColumn(),
                        console=console)
    task = progress.add_task("train", total=None, loss="-")

    def on_progress(step: int, total: int, loss: float | None) -> None:
        progress.update(task, completed=step, total=total,
                        loss=f"{loss:.4f}" if loss is not None else "-")

    worker = Worker(registry, progress=on_progress)
    if not queue.claim(registry, job["id"], worker.worker_id):
        raise UsageError(f"job {job['id']} was claimed by another worker")
    with progress:
        worker.run_job(job["id"])
    _print_result(registry, service, tenant_id, job["id"])


def _read_grader(path: Path | None) -> Any:
    if path is None:
        raise UsageError("--method reinforcement needs --grader FILE (a grader as JSON)")
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot read the grader {path}: {exc}") from None


def _upload(service: Any, tenant_id: str, path: Path) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / path.name
        shutil.copyfile(path, copy)
        return service.create_file(tenant_id, path.name, FilePurpose.FINE_TUNE, copy)["id"]


def _print_result(registry: Any, service: Any, tenant_id: str, job_id: str) -> None:
    from rich.table import Table


    job = service.get_job(tenant_id, job_id)
    if job["status"] != JobStatus.SUCCEEDED:
        reason = (job.get("error") or {}).get("message", job["status"])
        raise UsageError(f"job {job_id} {job['status']}: {reason}")
    adapter = registry.resolve_adapter(tenant_id, job["fine_tuned_model"])
    before, after = adapter.eval.get("before", {}), adapter.eval.get("after", {})
    table = Table("metric", "before", "after", title="evaluation")
    for metric in sorted(set(before) | set(after)):
        table.add_row(metric, fmt_metric(before.get(metric)), fmt_metric(after.get(metric)))
    console.print(table)
    console.print(f"adapter [bold green]{adapter.name}[/bold green] "
                  f"({job['trained_tokens']} trained tokens)")


@tune_app.command("api")
def api(host: Annotated[str, typer.Option()] = "127.0.0.1",
        port: Annotated[int, typer.Option()] = 8100) -> None:
    """Serve the OpenAI-compatible fine-tuning API."""
    import uvicorn

    from quanta.config import get_settings
    from quanta.tenancy import check_bind
    from tune.api.app import create_app

    check_bind(get_settings(), host)
    uvicorn.run(create_app(), host=host, port=port)


@tune_app.command("worker")
def worker(
    once: Annotated[bool, typer.Option(help="Run at most one job, then exit")] = False,
    poll_interval: Annotated[float, typer.Option(help="Seconds between queue polls")] = 2.0,
    stale_after: Annotated[float, typer.Option(help="Re-queue running jobs whose heartbeat "
                                                    "is older than this (seconds)")] = 60.0,
    heartbeat: Annotated[float, typer.Option(help="Heartbeat interval (seconds)")] = 2.0,
    job_id: Annotated[str | None, typer.Option(help="With --once: run only this job (one "
                                                    "Kubernetes Job per fine-tuning job)")
                      ] = None,
    dispatch: Annotated[Dispatch, typer.Option(
        help="local: train here; kubernetes: submit each job as a Kubeflow TrainJob to "
             "QUANTA_TUNE_NAMESPACE and follow it")] = Dispatch.LOCAL,
    gpu: Annotated[bool, typer.Option(help="With --dispatch kubernetes: one GPU per "
                                          "process")] = False,
) -> None:
    """Claim queued jobs from the registry database and train them (or dispatch them)."""
    import logging

    from tune.train.worker import Worker

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if dispatch == Dispatch.KUBERNETES:
        from tune.train.distributed.kubernetes import KubernetesDispatcher, custom_objects_api

        registry = open_registry()
        dispatcher = KubernetesDispatcher(registry, custom_objects_api(),
                                          namespace=registry.settings.tune_namespace, gpu=gpu,
                                          stale_after=stale_after)
        console.print(f"dispatcher {dispatcher.worker_id}: TrainJobs in "
                      f"{dispatcher.namespace}, polling every {poll_interval:g}s")
        with contextlib.suppress(KeyboardInterrupt):
            dispatcher.run_forever(poll_interval)
        return
    w = Worker(open_registry(), stale_after=stale_after, heartbeat_interval=heartbeat)
    console.print(f"worker {w.worker_id} polling every {poll_interval:g}s")
    _report_sandbox()
    if job_id and not once:
        raise UsageError("--job-id needs --once")
    if once:
        w.sweep_workdirs()
        ran = w.run_once(job_id)
        console.print(f"ran {ran}" if ran else f"no queued job {job_id or ''}".rstrip())
        return
    with contextlib.suppress(KeyboardInterrupt):
        w.run_forever(poll_interval)


def _report_sandbox() -> bool:
    """Say at start, not at the first reinforcement job, when python graders cannot run
    here (the operator's fix: docs/sandbox.md). True when they can."""
    from quanta.config import get_settings
    from tune.graders.sandbox import probe_sandbox

    problem = probe_sandbox(get_settings().grader_python)
    if problem:
        console.print(f"[yellow]sandbox_unavailable: python graders cannot run here "
                      f"({problem}); they will score 0 with python_grader_server_error. "
                      "See docs/sandbox.md.[/yellow]")
    else:
        console.print("python graders: sandbox ok")
    return problem is None


@tune_app.command("runner")
def runner(
    once: Annotated[bool, typer.Option(help="Answer what is queued now (eval runs, then "
                                            "batches), then exit")] = False,
    poll_interval: Annotated[float, typer.Option(help="Seconds between queue polls")] = 2.0,
    stale_after: Annotated[float, typer.Option(help="Take over runs and batches whose "
                                                    "runner's heartbeat is older than this "
                                                    "(seconds)")] = 60.0,
    lanes: Annotated[int, typer.Option(min=1, help="Eval runs, and batches, answered at "
                                                   "once: each lane is a loop of its own, "
                                                   "so one long run or batch does not hold "
                                                   "up every other tenant's")] = 2,
) -> None:
    """Answer eval runs and batches (the tune API's /v1/evals/.../runs and /v1/batches) as a
    client of serve: ``--lanes`` loops for each, so a long eval run never holds up a
    batch, nor one tenant's long run another tenant's. SIGTERM (a container's stop) and
    Ctrl-C end the loops: an eval run in progress goes back to its queue at its next
    beat, a batch is taken over once its heartbeat is stale."""
    import logging
    import os
    import signal
    import socket
    import threading
    import time

    from tune.batches.runner import BatchWorker
    from tune.evals.runner import EvalWorker

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    registry = open_registry()
    base = f"{socket.gethostname()}:{os.getpid()}"
    evals = [EvalWorker(registry, f"{base}:evals:{lane}", stale_after=stale_after)
             for lane in range(lanes)]
    batches = [BatchWorker(registry, f"{base}:batch:{lane}", stale_after=stale_after)
               for lane in range(lanes)]
    _report_sandbox()
    if once:
        ran = [*iter(evals[0].run_once, None), *iter(batches[0].run_once, None)]
        console.print(f"ran {', '.join(ran)}" if ran else "nothing queued")
        return
    console.print(f"runner {base}: {lanes} lane(s) of eval runs and of batches, polling "
                  f"every {poll_interval:g}s")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
    loops = [threading.Thread(target=worker.run_forever, args=(poll_interval, stop),
                              name=worker.worker_id, daemon=True)
             for worker in [*evals, *batches]]
    for loop in loops:
        loop.start()
    try:
        while not stop.is_set() and all(loop.is_alive() for loop in loops):
            stop.wait(1.0)
    except KeyboardInterrupt:
        stop.set()
    stopped = stop.is_set()  # asked to (SIGTERM, Ctrl-C), not a loop that died
    stop.set()
    deadline = time.monotonic() + 25  # within Kubernetes' 30 s grace before SIGKILL
    for loop in loops:
        loop.join(timeout=max(0.0, deadline - time.monotonic()))
    if not stopped:  # a loop died: exit non-zero so the container restarts
        raise typer.Exit(1)


@tune_app.command("sandbox")
def sandbox() -> None:
    """Check that python graders can run on this host (exit 1 when they cannot)."""
    if not _report_sandbox():
        raise typer.Exit(1)


@tune_app.command("node")
def node(
    job_id: str,
    rendezvous: Annotated[str | None, typer.Option(
        help="HOST:PORT of the job's c10d rendezvous (default: what its first node "
             "recorded in the job's events)")] = None,
    wait: Annotated[float, typer.Option(help="Seconds to wait for the job to start and "
                                             "record its rendezvous")] = 120.0,
) -> None:
    """Run this machine's share of a running multi-node job (one torchrun launcher)."""
    import logging
    import tempfile

    from tune.plan import TrainingPlan
    from tune.train.distributed.launch import DistributedError, join
    from tune.train.worker import work_root

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    registry = open_registry()
    job = registry.jobs.get(job_id)
    if job is None:
        raise UsageError(f"no fine-tuning job {job_id}")
    options = TrainingPlan.from_stored(job.method).quanta.distributed
    if options.nodes < 2:
        raise UsageError(f"job {job_id} runs on one node (quanta.distributed.nodes is 1)")
    workdir = Path(tempfile.mkdtemp(prefix=f"{job_id}.", dir=work_root(registry)))
    try:
        code = join(registry, job_id, options, workdir, rendezvous, wait=wait)
    except DistributedError as exc:
        raise UsageError(str(exc)) from None
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    console.print(f"{job_id}: this node's launcher exited with {code}")
    raise typer.Exit(0 if code == 0 else 1)


@jobs_app.command("ls")
def jobs_ls(tenant: Annotated[str | None, typer.Option()] = None,
            limit: Annotated[int, typer.Option()] = 20) -> None:
    """List fine-tuning jobs, newest first."""
    from rich.table import Table

    from tune.api.service import TuneService

    registry = open_registry()
    page = TuneService(registry).list_jobs(_tenant(registry, tenant), limit=limit)
    table = Table("id", "model", "status", "fine_tuned_model", "trained_tokens")
    table.columns[0].no_wrap = True
    table.columns[3].overflow = "fold"
    for job in page["data"]:
        table.add_row(job["id"], job["model"], job["status"], job["fine_tuned_model"] or "-",
                      str(job["trained_tokens"] or "-"))
    console.print(table)


def _on_job(operation: str, job_id: str, tenant: str | None, **kwargs: Any) -> Any:
    """Call ``TuneService.<operation>(tenant, job_id, ...)``; API errors exit with code 2."""
    from tune.api.service import TuneService

    registry = open_registry()
    try:
        return getattr(TuneService(registry), operation)(_tenant(registry, tenant), job_id,
                                                         **kwargs)
    except Exception as exc:
        _raise_user_error(exc)


@jobs_app.command("show")
def jobs_show(job_id: str, tenant: Annotated[str | None, typer.Option()] = None) -> None:
    """Show one job as JSON."""
    console.print_json(json.dumps(_on_job("get_job", job_id, tenant)))


@jobs_app.command("manifest")
def jobs_manifest(
    job_id: str,
    tenant: Annotated[str | None, typer.Option()] = None,
    namespace: Annotated[str | None, typer.Option(
        help="default: QUANTA_TUNE_NAMESPACE")] = None,
    gpu: Annotated[bool, typer.Option(help="One GPU per process")] = False,
    image: Annotated[str | None, typer.Option(
        help="The pods' image (default: the runtime's)")] = None,
) -> None:
    """Print the Kubeflow Trainer TrainJob that runs a job (what --dispatch kubernetes
    submits), for kubectl apply or review."""
    import yaml

    from tune.plan import TrainingPlan
    from tune.train.distributed.kubernetes import dispatcher_id, render_trainjob

    registry = open_registry()
    _on_job("get_job", job_id, tenant)  # the tenant's job, or exit 2
    job = registry.jobs.get(job_id)
    assert job is not None
    namespace = namespace or registry.settings.tune_namespace
    body = render_trainjob(job_id, TrainingPlan.from_stored(job.method).quanta.distributed,
                           namespace=namespace, worker_id=dispatcher_id(namespace), gpu=gpu,
                           image=image, max_restarts=registry.settings.tune_max_restarts)
    typer.echo(yaml.safe_dump(body, sort_keys=False), nl=False)


@jobs_app.command("cancel")
def jobs_cancel(job_id: str, tenant: Annotated[str | None, typer.Option()] = None) -> None:
    """Cancel a queued or running job."""
    console.print(f"{job_id}: {_on_job('cancel_job', job_id, tenant)['status']}")


@jobs_app.command("events")
def jobs_events(job_id: str, tenant: Annotated[str | None, typer.Option()] = None,
                limit: Annotated[int, typer.Option()] = 50) -> None:
    """A job's events, oldest first."""
    from datetime import UTC, datetime

    page = _on_job("list_events", job_id, tenant, limit=limit)
    for event in reversed(page["data"]):
        when = datetime.fromtimestamp(event["created_at"], UTC).strftime("%H:%M:%S")
        console.print(f"{when} [{event['level']}] {event['message']}", highlight=False)
