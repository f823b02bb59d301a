"""The demo's steps. Each step reuses what the registry already holds, so a second run
(or a run after Ctrl-C) picks up where the last one stopped instead of redoing it."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from demo.eta import AFTER_TRAINING_FAST_S, AFTER_TRAINING_S, StepClock, forecast, minutes
from demo.report import DemoResults
from quanta.console import fmt_metric
from quanta.models import DEFAULT_MODEL_ID, ensure_model, import_model
from quanta.precision import Precision
from quanta.processes import ServiceLedger, free_port, quanta_command, service
from quanta.registry import (
    AdapterRecord,
    BaseModelRecord,
    ExportRecord,
    JobRecord,
    NotFoundError,
    Registry,
)
from quanta.types import TERMINAL_STATUSES, EventType, ExportFormat, FilePurpose, JobStatus
from quanta_physics import (
    bundled_physics_path,
    held_out_chat_path,
    held_out_problems,
    problem_prompt,
)

DEMO_SUFFIX = "physics"
QUESTIONS = 3
# Problems per held-out split in the default run's accuracy-by-split step (x 3 splits x
# every row): enough to see the calculator's effect inside the 20-minute budget;
# bench/physics_accuracy.py measures 30 per split.
SPLIT_N = 2
# GPTQ is left to `quanta export --format gptq` (bench/physics_accuracy.py measures it):
# quantizing and scoring it would take the default run past its 20 minutes on 2 cores.
EXPORT_FORMATS = (ExportFormat.GGUF_Q4_K_M, ExportFormat.GGUF_LORA)
BASE_GGUF = ExportFormat.GGUF_Q4_K_M
ETA_AFTER_STEPS = 4  # logged steps past the first (warm-up) before the ETA is told
RUN_KEY = "quanta_demo_run"  # job metadata: the fingerprint of what the job trained


def run_fingerprint(request: dict[str, Any], data_files: tuple[Path, ...]) -> str:
    """A short hash of a job request and its data files' bytes: equal fingerprints train
    the same adapter, so the demo may reuse a finished job only when they match."""
    digest = hashlib.sha256(json.dumps(request, sort_keys=True).encode())
    for path in data_files:
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


# Training steps of the default run. In fp32 on 2 AVX2 cores a step takes ~10 s, and 40
# steps keep the whole run inside its 20 minutes; where the CPU computes bf16 natively
# (or on a GPU) a step takes ~3 s, and 240 steps fit the same budget (~16 min) with room
# for busy cores (README). Held-out accuracy rises with steps (bench/results/physics.md:
# by phrasing 17% at 120 steps, 57% at 240, 60% at 360), so a machine that can afford
# them gets them.
FULL_STEPS = 40
FULL_STEPS_FAST = 240
# The fast plan's 240 steps decay the learning rate to zero; a larger peak rate buys what
# more steps would (bench/results/physics.md, 240 steps on the bundled set, by phrasing:
# x4 30%, x8 40%, x12 53%, x20 63%). The fp32 plan's 40 steps keep x4: there x20 was no
# better than x4 (10% against 7% by numbers, one problem of 30).
LR_MULTIPLIER, LR_MULTIPLIER_FAST = 4.0, 20.0
FAST_PHYSICS_N = 24  # held-out problems the fast plan's job eval and export check answer


def trains_fast(precision: Precision) -> bool:
    """Whether the worker on this machine trains in a native fast dtype (not CPU fp32)."""
    capability = precision.capability
    return capability.device == "cuda" or (precision.is_bf16 and capability.native_bf16)


@dataclass(frozen=True)
class DemoPlan:
    """How big a run is: the default fits in 20 minutes on 2 CPU cores, --quick in a few."""

    name: str
    max_steps: int
    batch_size: int
    learning_rate_multiplier: float
    physics_n: int
    loss_examples: int
    max_new_tokens: int
    answer_tokens: int
    export_accuracy_n: int  # held-out problems each export answers (a prefix of physics_n)
    split_n: int  # problems per held-out split in the accuracy-by-split step
    budget_s: float  # what the README promises for this run on 2 cores
    after_training_s: float  # the ETA's estimate for exports, accuracy and serving

    @classmethod
    def for_run(cls, quick: bool, precision: Precision) -> DemoPlan:
        if quick:
            # A tour of every step, not a measurement: short answers, few problems.
            return cls("quick", max_steps=12, batch_size=8, learning_rate_multiplier=5.0,
                       physics_n=3, loss_examples=8, max_new_tokens=64, answer_tokens=64,
                       export_accuracy_n=1, split_n=1, budget_s=8 * 60,
                       after_training_s=AFTER_TRAINING_S)
        fast = trains_fast(precision)
        # The export check compares each export with its adapter on the same problems: at 8
        # one problem is 12.5 points, too coarse for DEGRADED_POINTS (5); a fast machine
        # has the time for 24 (one problem = 4.2 points).
        physics_n, export_n = (FAST_PHYSICS_N, FAST_PHYSICS_N) if fast else (16, 8)
        return cls("full", max_steps=FULL_STEPS_FAST if fast else FULL_STEPS, batch_size=8,
                   learning_rate_multiplier=LR_MULTIPLIER_FAST if fast else LR_MULTIPLIER,
                   physics_n=physics_n, loss_examples=16,
                   max_new_tokens=112, answer_tokens=112, export_accuracy_n=export_n,
                   split_n=SPLIT_N, budget_s=20 * 60,
                   after_training_s=AFTER_TRAINING_FAST_S if fast else AFTER_TRAINING_S)


class Demo:
    """Runs the story step by step and fills in :class:`DemoResults`."""

    def __init__(self, registry: Registry, plan: DemoPlan, precision: Precision, workdir: Path,
                 console: Console, base: str = DEFAULT_MODEL_ID,
                 accept_license: bool = False) -> None:
        self.registry = registry
        self.base = base  # the base model the physics adapter is trained on
        self.accept_license = accept_license
        self.plan = plan
        self.precision = precision
        self.workdir = workdir
        self.console = console
        self.results = DemoResults(base_model=base, quick=plan.name == "quick")
        self.tenant = registry.settings.default_tenant
        self.adapter: AdapterRecord | None = None
        self.started = time.time()
        # Services a killed earlier run left (its parent died before stopping them).
        self.ledger = ServiceLedger(workdir / "services.json")
        stale = self.ledger.stop_stale()
        if stale:
            console.print(f"stopped {len(stale)} service(s) an earlier, killed run left "
                          f"running (pids {', '.join(map(str, stale))})")
        self._key_id, self.api_key = self._demo_key()

    def _demo_key(self) -> tuple[str, str]:
        """A key of the local tenant for this run's clients (revoked by :meth:`close`)."""
        from quanta.tenancy import create_key

        row, plaintext = create_key(self.registry, self.tenant, "quanta demo")
        return row.id, plaintext

    def close(self) -> None:
        from quanta.tenancy import revoke_key

        revoke_key(self.registry, self._key_id)

    @contextmanager
    def step(self, title: str) -> Iterator[None]:
        self.console.rule(f"[bold]{title}")
        start = time.monotonic()
        yield
        self.results.timings[title] = time.monotonic() - start

    # -- 1. base model --------------------------------------------------------------------

    def import_base_model(self) -> None:
        with self.step("import base model"):
            self.results.precision = self.precision.as_dict()
            self.console.print(f"this machine: {self.precision.describe()}")
            row = self._base_model()
            self.console.print(f"{row.id}: {row.architecture}, {row.bytes / 1e6:.0f} MB in the "
                               f"registry at {self.registry.settings.resolved_home}")

    def _base_model(self) -> BaseModelRecord:
        """The demo's base: in the registry, or imported from its catalog package."""
        try:
            return ensure_model(self.registry, self.base)
        except NotFoundError:
            with self.console.status(f"importing {self.base} (a minute or two)..."):
                return import_model(self.registry, self.base,
                                    accept_license=self.accept_license)

    # -- 2-4. tune, with evaluation before and after ----------------------------------------

    def _latest_job(self, *statuses: JobStatus) -> JobRecord | None:
        """The newest job of this run's kind that trained what this run would train: same
        request and same bundled data (``run_fingerprint``), so a changed plan or dataset
        trains afresh instead of reusing a stale adapter."""
        return self.registry.jobs.latest(self.tenant, statuses,
                                         suffix=f"{DEMO_SUFFIX}-{self.plan.name}",
                                         metadata={RUN_KEY: self._fingerprint})

    @cached_property
    def _fingerprint(self) -> str:
        """Hashed once per run: the bundled files do not change while it runs."""
        return run_fingerprint(self._training_request(),
                               (bundled_physics_path(), held_out_chat_path()))

    def tune(self) -> None:
        with self.step("fine-tune (base eval, training, adapter eval)"):
            job = self._latest_job(JobStatus.SUCCEEDED)
            if job is None:
                self._run_job()
                job = self._latest_job(JobStatus.SUCCEEDED)
                if job is None:
                    raise RuntimeError("the fine-tuning job did not succeed; see its events: "
                                       "quanta tune jobs ls")
            else:
                self.console.print(f"reusing {job.fine_tuned_model} from job {job.id}")
            self.adapter = self.registry.resolve_adapter(self.tenant, job.fine_tuned_model or "")
            self.results.adapter = self.adapter.name
            self.results.loss_curve = self._loss_curve(job.id)
            evaluation = self.adapter.eval or {}
            self.results.eval_before = evaluation.get("before", {})
            self.results.eval_after = evaluation.get("after", {})
            self.results.examples = [
                {"question": b["question"], "expected": b["expected"], "base": b["answer"],
                 "adapter": a["answer"]}
                for b, a in zip(self.results.eval_before.get("samples", []),
                                self.results.eval_after.get("samples", []), strict=False)]
            self._print_eval()

    def _job_request(self) -> dict[str, Any]:
        return {**self._training_request(), "metadata": {RUN_KEY: self._fingerprint}}

    def _training_request(self) -> dict[str, Any]:
        plan = self.plan
        return {
            "model": self.base,
            "suffix": f"{DEMO_SUFFIX}-{plan.name}",
            "seed": 0,
            "method": {"type": "supervised", "supervised": {"hyperparameters": {
                "n_epochs": 1, "batch_size": plan.batch_size,
                "learning_rate_multiplier": plan.learning_rate_multiplier}}},
            "extra_body": {"quanta": {
                "max_steps": plan.max_steps, "checkpoint_every": max(5, plan.max_steps // 4),
                "max_length": 256,
                "eval": {"physics_n": plan.physics_n, "loss_examples": plan.loss_examples,
                         "max_new_tokens": plan.max_new_tokens}}},
        }

    @contextmanager
    def _tune_api(self, worker: list[str]) -> Iterator[str]:
        """The tune API and one worker (``quanta <worker...>``) for this step; the API's URL."""
        port = free_port()
        logs = self.workdir / "logs"
        url = f"http://127.0.0.1:{port}"
        with service(quanta_command("tune", "api", "--port", str(port)), logs / "tune-api.log",
                     health_url=f"{url}/health", timeout=120, ledger=self.ledger), \
             service(quanta_command(*worker, "--poll-interval", "1", "--stale-after", "15"),
                     logs / f"{'-'.join(worker)}.log", ledger=self.ledger):
            yield url

    def _run_job(self) -> None:
        from openai import OpenAI

        with self._tune_api(["tune", "worker"]) as url:
            client = OpenAI(base_url=f"{url}/v1", api_key=self.api_key, max_retries=2)
            unfinished = self._latest_job(JobStatus.VALIDATING_FILES, JobStatus.QUEUED,
                                          JobStatus.RUNNING)
            if unfinished is not None:  # interrupted earlier: the worker resumes it
                self.console.print(f"resuming job {unfinished.id} from its last checkpoint")
                self._follow(client, unfinished.id)
                return
            with open(bundled_physics_path(), "rb") as fh:
                train = client.files.create(file=fh, purpose=FilePurpose.FINE_TUNE)
            with open(held_out_chat_path(), "rb") as fh:
                valid = client.files.create(file=fh, purpose=FilePurpose.FINE_TUNE)
            self.console.print(f"uploaded {train.id} (bundled physics set), {valid.id} "
                               "(held-out problems)")
            job = client.fine_tuning.jobs.create(training_file=train.id,
                                                 validation_file=valid.id,
                                                 **self._job_request())
            self.console.print(f"job {job.id}: {job.status}")
            self._follow(client, job.id)

    def _follow(self, client: Any, job_id: str) -> None:
        """Show the job's progress from its events until it ends, with a measured ETA."""
        seen: set[str] = set()
        clock = StepClock()
        eval_started: float | None = None
        eval_s = 0.0
        told = False
        columns = (TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[loss]}"),
                   TimeElapsedColumn(), TimeRemainingColumn())
        with Progress(*columns, console=self.console) as progress:
            task = progress.add_task("waiting for the worker", total=self.plan.max_steps, loss="")
            while True:
                job = client.fine_tuning.jobs.retrieve(job_id)
                events = client.fine_tuning.jobs.list_events(job_id, limit=100).data
                for event in reversed(events):
                    if event.id in seen:
                        continue
                    seen.add(event.id)
                    data = getattr(event, "data", None) or {}
                    if event.type == EventType.METRICS and "step" in data:
                        loss = data.get("train_loss")
                        progress.update(task, completed=data["step"], description="training",
                                        loss=f"loss {loss:.3f}" if loss is not None else "")
                        clock.record(int(data["step"]), float(event.created_at))
                    else:
                        progress.console.print(f"[dim]{event.message}")
                        if "precision" in data:  # the base model's evaluation starts now
                            eval_started = float(event.created_at)
                        elif "eval_before" in data and eval_started is not None:
                            eval_s = float(event.created_at) - eval_started
                if not told and clock.latest and clock.first and \
                        clock.latest[0] - clock.first[0] >= ETA_AFTER_STEPS:
                    told = self._tell_eta(progress.console, clock, eval_s)
                if job.status in TERMINAL_STATUSES:
                    progress.update(task, description=job.status)
                    if job.status != JobStatus.SUCCEEDED:
                        raise RuntimeError(f"job {job_id} {job.status}: {job.error}")
                    return
                time.sleep(2)

    def _tell_eta(self, console: Console, clock: StepClock, eval_s: float) -> bool:
        """Print when the run will end, measured; warn (and suggest --quick) when far over."""
        plan = self.plan
        eta = forecast(clock, plan.max_steps, time.time() - self.started, eval_s,
                       plan.after_training_s, plan.budget_s)
        if eta is None:
            return False
        self.results.seconds_per_step = eta.seconds_per_step
        console.print(f"measured {eta.seconds_per_step:.2f} s per training step (batch "
                      f"{plan.batch_size}): training ends in ~{minutes(eta.training_left_s)}, "
                      f"the whole demo in ~{minutes(eta.run_total_s)} (budget "
                      f"{minutes(plan.budget_s)})")
        if eta.over_budget:
            hint = ("" if plan.name == "quick" else
                    "; Ctrl-C now and run `make demo DEMO_ARGS=--quick` for a short run "
                    "(this one resumes from its last checkpoint if you start it again)")
            console.print(f"[yellow]this machine runs the {plan.name} demo far over its "
                          f"{minutes(plan.budget_s)} budget[/yellow] (compute dtype "
                          f"{self.results.precision.get('compute_dtype', '?')}, or busy cores)"
                          f"{hint}")
        return True

    def _loss_curve(self, job_id: str) -> list[tuple[int, float]]:
        curve = []
        for event in reversed(self.registry.jobs.events(job_id, type=EventType.METRICS)):
            data = event.data or {}
            if data.get("train_loss") is not None and data.get("step") is not None:
                curve.append((int(data["step"]), float(data["train_loss"])))
        return curve

    def _print_eval(self) -> None:
        before, after = self.results.eval_before, self.results.eval_after
        table = Table("metric", "base", "adapter", title="held-out evaluation")
        for metric in sorted(set(before) | set(after)):
            if isinstance(before.get(metric, after.get(metric)), list | dict):
                continue
            table.add_row(metric, fmt_metric(before.get(metric)), fmt_metric(after.get(metric)))
        self.console.print(table)
        answers = Table("question", "expected", "base", "adapter", title="example answers")
        for example in self.results.examples:
            answers.add_row(example["question"], example["expected"], example["base"],
                            example["adapter"])
        if self.results.examples:
            self.console.print(answers)

    # -- 5. exports -------------------------------------------------------------------------

    def export(self) -> None:
        """The adapter's exports are requested over the tune API and built by a quantize
        worker (as a user's would be); the base model's GGUF, which the llama.cpp engine
        serves the base from, is the operator's export of a shared model, made here."""
        from quantize.exporters import export

        assert self.adapter is not None
        with self.step("export (GGUF q4_k_m + LoRA GGUF)"):
            table = Table("format", "size", "perplexity", "vs unquantized", "accuracy",
                          "adapter's", title="exports")
            # The llama.cpp engine serves the base model from its own GGUF export.
            if self.registry.find_export(base_model_id=self.adapter.base_model_id,
                                         format=BASE_GGUF) is None:
                with self.console.status(f"exporting the base model to {BASE_GGUF}..."):
                    export(self.registry, self.adapter.base_model_id, BASE_GGUF)
            missing = [fmt for fmt in EXPORT_FORMATS if self._adapter_export(fmt) is None]
            if missing:
                with self._tune_api(["exports", "worker"]) as url:
                    for fmt in missing:
                        with self.console.status(f"exporting {fmt} (a quantize worker)..."):
                            self._request_export(url, fmt)
            for fmt in EXPORT_FORMATS:
                row = self._adapter_export(fmt)
                assert row is not None
                metrics = row.metrics or {}
                self.results.exports.append({"format": fmt, "bytes": row.bytes, **metrics})
                mark = " [red](degraded)[/red]" if metrics.get("degraded") else ""
                table.add_row(fmt + mark, f"{row.bytes / 1e6:.1f} MB",
                              fmt_metric(metrics.get("perplexity")),
                              fmt_metric(metrics.get("perplexity_ratio")),
                              fmt_metric(metrics.get("physics_accuracy")),
                              fmt_metric(metrics.get("reference_accuracy")))
            self.console.print(table)

    def _adapter_export(self, fmt: ExportFormat) -> ExportRecord | None:
        assert self.adapter is not None
        return self.registry.find_export(base_model_id=self.adapter.base_model_id,
                                         format=fmt, adapter_id=self.adapter.id)

    def _request_export(self, url: str, fmt: ExportFormat) -> None:
        """``POST .../exports`` and follow the export job until it ends."""
        import httpx

        assert self.adapter is not None
        headers = {"Authorization": f"Bearer {self.api_key}"}
        with httpx.Client(base_url=f"{url}/v1/quanta", headers=headers, timeout=60) as http:
            job = http.post(f"/models/{self.adapter.name}/exports", json={
                "format": str(fmt), "accuracy_n": self.plan.export_accuracy_n}).raise_for_status()
            job_id = job.json()["id"]
            while (job := http.get(f"/export_jobs/{job_id}").raise_for_status().json()
                   )["status"] not in TERMINAL_STATUSES:
                time.sleep(1)
        if job["status"] != JobStatus.SUCCEEDED:
            raise RuntimeError(f"export job {job_id} {job['status']}: {job.get('error')}")

    # -- 6. accuracy by held-out split ---------------------------------------------------

    def accuracy(self) -> None:
        from demo.accuracy import SPLITS, SplitAccuracy, accuracy_by_split

        assert self.adapter is not None
        with self.step("held-out accuracy by split"):
            # Answers depend on the adapter and the plan only: a rerun reuses them.
            cached = (self.workdir / "by-split" / f"{self.adapter.id}-{self.plan.split_n}-"
                      f"{self.plan.max_new_tokens}-{'-'.join(sorted(EXPORT_FORMATS))}.json")
            if cached.is_file():
                result = SplitAccuracy.from_dict(json.loads(cached.read_text()))
                self.console.print(f"reusing the held-out answers of {self.adapter.name}")
            else:
                with self.console.status("answering the held-out splits (base, adapter with "
                                         "and without the calculator, exports)..."):
                    result = accuracy_by_split(self.registry, self.adapter, self.plan.split_n,
                                               self.plan.max_new_tokens, self.workdir,
                                               formats=frozenset(EXPORT_FORMATS))
                cached.parent.mkdir(parents=True, exist_ok=True)
                cached.write_text(json.dumps(result.as_dict()))
            self.results.by_split = result.as_dict()
            table = Table("", *(f"by {split}" for split in SPLITS),
                          title=f"held-out accuracy ({result.n} problems per split)")
            for row in result.correct:
                table.add_row(row, *(f"{result.accuracy(row, s):.0%}" for s in SPLITS))
            self.console.print(table)

    # -- 7. serving -------------------------------------------------------------------------

    def serve(self, engine: str) -> None:
        assert self.adapter is not None
        with self.step(f"serve with {engine} and ask"):
            port = free_port()
            args = quanta_command("serve", "--engine", engine, "--model", self.base,
                                  "--port", str(port), "--grpc-port", "0")
            log = self.workdir / "logs" / f"serve-{engine}.log"
            with service(args, log, health_url=f"http://127.0.0.1:{port}/health", timeout=420,
                         ledger=self.ledger):
                self._ask(engine, f"http://127.0.0.1:{port}/v1")
                self._eval(engine)

    def _eval(self, engine: str) -> None:
        """The base and the adapter through this engine as runs of the demo's one eval
        (vLLM: the adapter itself; llama.cpp: the base's and the adapter's GGUF exports),
        answered by ``quanta tune runner`` as a tenant's runs are."""
        from openai import OpenAI

        from demo.evals import demo_eval, run_models

        assert self.adapter is not None
        n = self.plan.physics_n if engine == "vllm" else self.plan.export_accuracy_n
        with self._tune_api(["tune", "runner"]) as url:
            client = OpenAI(base_url=f"{url}/v1", api_key=self.api_key, max_retries=2,
                            timeout=300)
            self.results.eval_id = demo_eval(client, self.adapter.name)
            with self.console.status(f"eval runs through {engine} ({n} problems each)..."):
                rows = run_models(client, self.results.eval_id, engine,
                                  {"base": self.base, "adapter": self.adapter.name}, n,
                                  self.plan.answer_tokens)
        self.results.eval_runs += rows
        table = Table("run", "status", "passed", "pass rate", "tokens",
                      title=f"eval {self.results.eval_id} through {engine}")
        for row in rows:
            rate = f"{row['passed'] / row['total']:.0%}" if row["total"] else "-"
            table.add_row(f"{row['label']} ({engine})", row["status"],
                          f"{row['passed']}/{row['total']}", rate, str(row["tokens"]))
        self.console.print(table)
        if rows:
            self.console.print(f"in the console: {rows[0]['report_url']}")

    def _ask(self, engine: str, base_url: str) -> None:
        from openai import OpenAI

        assert self.adapter is not None
        client = OpenAI(base_url=base_url, api_key=self.api_key, max_retries=2, timeout=300)
        table = Table("question", "base", "adapter", title=f"answers served by {engine}")
        for problem in held_out_problems(QUESTIONS):
            # Ask as the adapter was trained: the physics system prompt, then the question.
            messages = problem_prompt(problem)
            answers = {}
            for label, model in (("base", self.base), ("adapter", self.adapter.name)):
                reply = client.chat.completions.create(
                    model=model, temperature=0, max_tokens=self.plan.answer_tokens,
                    messages=messages)
                answers[label] = reply.choices[0].message.content or ""
            self.results.served.append({"engine": engine, "question": problem.question,
                                        "expected": f"{problem.value:g} {problem.unit}",
                                        **answers})
            table.add_row(problem.question, answers["base"], answers["adapter"])
        self.console.print(table)

