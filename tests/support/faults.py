"""SIGKILL the tune API, the tune worker and ``quanta serve`` at random points; tally.

Each kill is one run, followed by the same checks:

* ``registry.verify()`` is clean (no corrupt or missing blob; killed writers' temp files
  are swept), and no row points at a blob that is not there;
* tune API: every upload and job the API acknowledged (200) before the kill is still
  there, byte for byte; the restarted API lists them;
* worker: every job is queued, running (its dead worker's heartbeat goes stale and the
  next worker resumes it from its last checkpoint), succeeded, cancelled, or failed
  with a reason; after a final unkilled worker every job has succeeded with exactly
  one adapter that materialises with verified hashes;
* serve: every materialised cache directory matches its manifest (no half-written
  adapter is ever visible under its final name); the restarted server serves every
  adapter.

``bench/faults.py`` runs many kills; ``tests/hardening/test_faults.py`` a CI-sized few.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from quanta.config import Settings
from quanta.models import DEFAULT_MODEL_ID
from quanta.processes import free_port, quanta_command, start_process, stop_process, wait_healthy
from quanta.registry import JobRecord, Registry
from quanta.types import TERMINAL_STATUSES, ArtifactKind, FilePurpose, JobStatus
from tests.support.servers import quanta_env, start_serve


@dataclass
class Tally:
    kills: int = 0
    survived: int = 0
    artifacts_lost: int = 0
    half_written: int = 0
    temp_swept: int = 0
    problems: list[str] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)

    def record(self, what: str, problems: list[str], detail: str = "") -> None:
        self.kills += 1
        if problems:
            self.problems += [f"{what}: {p}" for p in problems]
        else:
            self.survived += 1
        line = f"[{self.kills:2d}] {what}: {'OK' if not problems else 'FAIL'} {detail}"
        self.lines.append(line)
        print(line, flush=True)


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL the process and everything in its process group (engine cores included)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)


def check_registry(registry: Registry, tally: Tally | None = None) -> list[str]:
    """verify() clean, and every row's blob (and every manifest entry) present."""
    problems = []
    report = registry.verify()
    if tally is not None:
        tally.temp_swept += report.temp_removed
    if report.corrupt:
        problems.append(f"corrupt blobs {report.corrupt}")
    if report.missing:
        problems.append(f"missing blobs {report.missing}")
    return problems


# -- tune API --------------------------------------------------------------------------------

def _jsonl(n: int, pad: int) -> bytes:
    rows = [{"messages": [{"role": "user", "content": f"What is {i} plus {i}? " + "x" * pad},
                          {"role": "assistant", "content": f"The answer is {2 * i}."}]}
            for i in range(n)]
    return "".join(json.dumps(r) + "\n" for r in rows).encode()


def _start_api(home: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    proc = start_process(quanta_command("tune", "api", "--host", "127.0.0.1", "--port",
                                        str(port)), home / "api.log", quanta_env(home))
    url = f"http://127.0.0.1:{port}"
    wait_healthy(f"{url}/health", proc, 120, home / "api.log")
    return proc, url


def api_setup(home: Path) -> tuple[Registry, str]:
    from quanta.tenancy import create_key, create_tenant

    registry = Registry.open(Settings(home=home, allow_anonymous=False,
                                      max_upload_bytes=8 << 20))
    model = home.parent / f"{home.name}-fake-model"
    model.mkdir(exist_ok=True)
    (model / "config.json").write_text('{"model_type": "llama"}')
    registry.add_base_model(DEFAULT_MODEL_ID, model, source="faults")
    create_tenant(registry, "faults")
    return registry, create_key(registry, "faults")[1]


def run_api_kills(n: int, rng: random.Random, tally: Tally, home: Path) -> None:
    """Kill ``quanta tune api`` at a random moment while uploads and job creations run."""
    registry, key = api_setup(home)
    headers = {"Authorization": f"Bearer {key}"}
    acknowledged: dict[str, str] = {}  # file id -> sha256 of what we sent
    jobs: set[str] = set()
    for _ in range(n):
        proc, url = _start_api(home)
        stop = threading.Event()
        lock = threading.Lock()

        def client(seed: int, url: str = url, stop: threading.Event = stop,
                   lock: threading.Lock = lock) -> None:
            local = random.Random(seed)
            with httpx.Client(timeout=30) as http:
                while not stop.is_set():
                    data = _jsonl(local.randint(2, 40), local.choice([10, 1000, 50_000]))
                    try:
                        r = http.post(f"{url}/v1/files", headers=headers,
                                      files={"file": ("d.jsonl", data)},
                                      data={"purpose": FilePurpose.FINE_TUNE})
                        if r.status_code == 200:
                            with lock:
                                acknowledged[r.json()["id"]] = hashlib.sha256(data).hexdigest()
                            j = http.post(f"{url}/v1/fine_tuning/jobs", headers=headers,
                                          json={"model": DEFAULT_MODEL_ID,
                                                "training_file": r.json()["id"]})
                            if j.status_code == 200:
                                with lock:
                                    jobs.add(j.json()["id"])
                    except httpx.HTTPError:
                        return  # the server is gone

        threads = [threading.Thread(target=client, args=(rng.random(),), daemon=True)
                   for _ in range(4)]
        for thread in threads:
            thread.start()
        delay = rng.uniform(0.2, 3.0)
        time.sleep(delay)
        _kill_group(proc)
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
        problems = check_registry(registry, tally)
        rows = {f.id: f for f in registry.list_rows(ArtifactKind.FILE)}
        job_rows = {j.id: j for j in registry.list_rows(ArtifactKind.JOB)}
        lost = [fid for fid in acknowledged if fid not in rows]
        lost += [jid for jid in jobs if jid not in job_rows]
        for fid, sha in acknowledged.items():
            if fid in rows and rows[fid].sha256 != sha:
                problems.append(f"file {fid} content changed")
                tally.half_written += 1
        bad_jobs = [j.id for j in job_rows.values()
                    if j.status not in (JobStatus.QUEUED, JobStatus.CANCELLED)]
        if lost:
            problems.append(f"acknowledged but lost: {lost}")
            tally.artifacts_lost += len(lost)
        if bad_jobs:
            problems.append(f"jobs in odd states: {bad_jobs}")
        leftovers = list((home / "uploads").glob("*")) if (home / "uploads").exists() else []
        # The restarted API must list everything acknowledged.
        proc, url = _start_api(home)
        try:
            listed = set()
            after = None
            while True:
                page = httpx.get(f"{url}/v1/files", headers=headers, timeout=30,
                                 params={"limit": 100, **({"after": after} if after else {})})
                page.raise_for_status()
                listed |= {f["id"] for f in page.json()["data"]}
                if not page.json()["has_more"]:
                    break
                after = page.json()["last_id"]
            if set(acknowledged) - listed:
                problems.append("restarted API does not list every acknowledged file")
        finally:
            stop_process(proc, grace=10)
        tally.record("tune-api", problems,
                     f"killed after {delay:.2f}s; {len(acknowledged)} files, {len(jobs)} jobs "
                     f"acknowledged so far; upload temp files left: {len(leftovers)}")
        for leftover in leftovers:  # not artifacts: scratch space of the killed API
            leftover.unlink(missing_ok=True)


# -- worker ----------------------------------------------------------------------------------

def worker_setup(home: Path, base_model_dir: Path, n_jobs: int, max_steps: int = 6,
                 checkpoint_every: int = 2) -> tuple[Registry, list[str]]:
    from quanta.data import write_jsonl
    from tests.support.fixtures import arithmetic_chat, seeded_registry, tiny_job
    from tune.api.service import TuneService

    registry = seeded_registry(home, base_model_dir)
    service = TuneService(registry)
    data = write_jsonl(arithmetic_chat(8), home.parent / f"{home.name}-train.jsonl")
    file_id = service.create_file("local", data.name, FilePurpose.FINE_TUNE, data)["id"]
    jobs = [service.create_job("local", tiny_job(file_id, seed=i, max_steps=max_steps,
                                                 checkpoint_every=checkpoint_every))["id"]
            for i in range(n_jobs)]
    return registry, jobs


def _start_worker(home: Path) -> subprocess.Popen[bytes]:
    return start_process(quanta_command("tune", "worker", "--heartbeat", "0.5", "--stale-after",
                                        "2", "--poll-interval", "0.5"),
                         home / "worker.log", quanta_env(home))


def _jobs(registry: Registry, ids: list[str]) -> dict[str, JobRecord]:
    return registry.jobs.by_ids(ids)


def _job_problems(registry: Registry, ids: list[str]) -> list[str]:
    problems = []
    for job in _jobs(registry, ids).values():
        if job.status == JobStatus.FAILED and not (job.error or {}).get("message"):
            problems.append(f"job {job.id} failed without a reason")
        if job.status not in set(JobStatus) - {JobStatus.VALIDATING_FILES}:
            problems.append(f"job {job.id} in status {job.status}")
    return problems


def run_worker_kills(n: int, rng: random.Random, tally: Tally, home: Path,
                     base_model_dir: Path, jobs_per_kill: float = 0.5,
                     finish_timeout: float = 900,
                     window: tuple[float, float] = (2.0, 15.0), max_steps: int = 12) -> None:
    """Kill the worker at random moments (loading, training, checkpointing, storing)."""
    registry, ids = worker_setup(home, base_model_dir, max(1, round(n * jobs_per_kill)),
                                 max_steps=max_steps)
    for _ in range(n):
        if all(j.status in TERMINAL_STATUSES for j in _jobs(registry, ids).values()):
            break  # everything finished before we ran out of kills
        proc = _start_worker(home)
        delay = rng.uniform(*window)
        deadline = time.monotonic() + delay
        while time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.1)
        states = {j.status for j in _jobs(registry, ids).values()}
        _kill_group(proc)
        problems = check_registry(registry, tally) + _job_problems(registry, ids)
        ckpts = registry.jobs.count_checkpoints(ids)
        scratch = list((home / "work").glob("*")) if (home / "work").exists() else []
        tally.record("tune-worker", problems, f"killed after {delay:.1f}s "
                     f"(job states then: {sorted(states)}; checkpoints so far {ckpts}; "
                     f"scratch dirs left in work/: {len(scratch)})")
    # A worker that is left alone finishes every job, resuming from checkpoints.
    proc = _start_worker(home)
    try:
        deadline = time.monotonic() + finish_timeout
        while time.monotonic() < deadline:
            if all(j.status in TERMINAL_STATUSES for j in _jobs(registry, ids).values()):
                break
            time.sleep(1)
    finally:
        stop_process(proc, grace=10)
    problems = check_registry(registry, tally) + _job_problems(registry, ids)
    jobs = _jobs(registry, ids)
    for job in jobs.values():
        if job.status == JobStatus.FAILED and (job.error or {}).get("message"):
            continue  # an accepted ending: e.g. tune gives up after repeated worker deaths
        if job.status != JobStatus.SUCCEEDED:
            problems.append(f"job {job.id} ended {job.status}: {job.error}")
            continue
        adapters = [a for a in registry.list_adapters("local") if a.job_id == job.id]
        if len(adapters) != 1:
            problems.append(f"job {job.id} has {len(adapters)} adapters")
            tally.artifacts_lost += len(adapters) == 0
            continue
        registry.materialize(adapters[0].sha256)  # raises if any file is corrupt
    resumed = 0
    for event in registry.jobs.events(ids[0], job_ids=ids):
        resumed += bool((event.data or {}).get("resumed_from_step"))
    reasons = sorted({(j.error or {}).get("code", "?") for j in jobs.values()
                      if j.status == JobStatus.FAILED})
    print(f"      worker: {len(jobs)} jobs -> {sorted(j.status for j in jobs.values())} "
          f"(failure codes: {reasons or 'none'}); {resumed} resumptions from a checkpoint; "
          f"the killed workers left {len(list((home / 'work').glob('*')))} scratch dirs "
          "in work/", flush=True)
    if problems:
        tally.problems += [f"tune-worker final: {p}" for p in problems]


# -- serve -----------------------------------------------------------------------------------

def cache_problems(registry: Registry) -> list[str]:
    """Every cache directory named by a sha256 must hold exactly its manifest's files."""
    from quanta.registry.store import sha256_file

    problems = []
    cache = registry.settings.cache_dir
    if not cache.exists():
        return problems
    for directory in cache.iterdir():
        if not directory.is_dir() or len(directory.name) != 64:
            continue  # temp names (".<sha>.<pid>.tmp") are never served
        try:
            files = registry.read_manifest(directory.name)
        except Exception as exc:
            problems.append(f"cache {directory.name[:12]}: {exc}")
            continue
        present = {p.relative_to(directory).as_posix() for p in directory.rglob("*")
                   if p.is_file()}
        if present != set(files) or any(
                sha256_file(directory / rel) != info["sha256"] for rel, info in files.items()):
            problems.append(f"cache {directory.name[:12]} is half-written")
    return problems


def run_serve_kills(n: int, rng: random.Random, tally: Tally, home: Path,
                    base_model_dir: Path) -> None:
    """Kill ``quanta serve`` during start-up or while it loads adapters; restart at the end."""
    from tests.support.fixtures import tenants_with_adapters

    fixture = tenants_with_adapters(home, base_model_dir, ["s0", "s1"], per_tenant=3)
    registry = fixture.registry
    models = [(tenant, name) for tenant, names in fixture.adapters.items() for name in names]
    extra = ["--max-loras", "2", "--max-cpu-loras", "3", "--max-model-len", "256"]
    for i in range(n):
        during_startup = i % 2 == 0
        port, grpc_port = free_port(), free_port()
        proc = start_process(quanta_command("serve", "--port", str(port), "--grpc-port",
                                            str(grpc_port), *extra),
                             home / f"serve-{i}.log", quanta_env(home))
        url = f"http://127.0.0.1:{port}"
        if during_startup:
            delay = rng.uniform(3.0, 40.0)
            time.sleep(delay)
            detail = f"killed {delay:.1f}s into start-up"
        else:
            wait_healthy(f"{url}/health", proc, 600, home / f"serve-{i}.log")
            # Drop the adapters' materialised copies so the loads below write them again.
            for _, name in models:
                sha = registry.resolve_adapter(name.split(":")[2], name).sha256
                shutil.rmtree(registry.settings.cache_dir / sha, ignore_errors=True)
            stop = threading.Event()

            def load(stop: threading.Event = stop, url: str = url) -> None:
                for tenant, name in models:
                    if stop.is_set():
                        return
                    try:
                        httpx.post(f"{url}/v1/chat/completions",
                                   headers={"Authorization": f"Bearer {fixture.keys[tenant]}"},
                                   json={"model": name, "max_tokens": 2, "messages": [
                                       {"role": "user", "content": "hi"}]}, timeout=60)
                    except httpx.HTTPError:
                        return

            thread = threading.Thread(target=load, daemon=True)
            thread.start()
            delay = rng.uniform(0.2, 4.0)
            time.sleep(delay)
            detail = f"killed {delay:.1f}s into adapter loads"
        _kill_group(proc)
        if not during_startup:
            stop.set()
            thread.join(timeout=60)
        problems = check_registry(registry, tally) + cache_problems(registry)
        tally.half_written += sum("half-written" in p for p in problems)
        tally.record("serve", problems, detail)
    # The restarted server serves every adapter.
    server = start_serve(home, *extra)
    url = server.url
    try:
        for tenant, name in models:
            r = httpx.post(f"{url}/v1/chat/completions",
                           headers={"Authorization": f"Bearer {fixture.keys[tenant]}"},
                           json={"model": name, "max_tokens": 2,
                                 "messages": [{"role": "user", "content": "hi"}]}, timeout=120)
            if r.status_code != 200:
                tally.problems.append(f"serve final: {name} -> {r.status_code} {r.text[:200]}")
                tally.artifacts_lost += 1
    finally:
        server.stop()
    print(f"      serve: restarted server served {len(models)} adapters", flush=True)


# -- exports ---------------------------------------------------------------------------------

def run_export_kills(n: int, rng: random.Random, tally: Tally, home: Path,
                     base_model_dir: Path, window: tuple[float, float] = (1.0, 15.0)) -> None:
    """Kill ``quanta export`` (base model -> f16 GGUF) while it converts and measures; no
    staging directory may outlive the next verify, and no half export may be registered."""
    from quanta.registry.registry import STAGING_DIR
    from quanta.types import ExportFormat
    from tests.support.fixtures import seeded_registry

    registry = seeded_registry(home, base_model_dir)
    staging = home / STAGING_DIR
    argv = quanta_command("export", "smollm2-135m-instruct", "--format",
                          str(ExportFormat.GGUF_F16))
    for i in range(n):
        proc = start_process(argv, home / f"export-{i}.log", quanta_env(home))
        delay = rng.uniform(*window)
        deadline = time.monotonic() + delay
        while time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.1)
        finished = proc.poll() is not None
        _kill_group(proc)
        left = sorted(p.name for p in staging.iterdir()) if staging.is_dir() else []
        problems = check_registry(registry, tally)  # verify sweeps a dead writer's staging
        remaining = sorted(p.name for p in staging.iterdir()) if staging.is_dir() else []
        if remaining:
            problems.append(f"staging left after verify: {remaining}")
        exports = registry.list_exports()
        if any(e.format != ExportFormat.GGUF_F16 for e in exports) or len(exports) > 1:
            problems.append(f"unexpected exports {[e.format for e in exports]}")
        for export in exports:
            registry.blob_path(export.sha256)  # raises if the registered file is broken
        tally.record("export", problems, f"killed after {delay:.1f}s"
                     f"{' (it had finished)' if finished else ''}; staging dirs it left: "
                     f"{len(left)}")
    # An export left alone finishes.
    proc = start_process(argv, home / "export-final.log", quanta_env(home))
    if proc.wait(timeout=900) != 0 or not registry.list_exports():
        tally.problems.append(f"export final: exit {proc.returncode}")


# -- a full disk -----------------------------------------------------------------------------

def run_disk_full(tally: Tally, root: Path, size_mb: int = 64) -> bool:
    """On a small tmpfs home: an upload and a model import that do not fit get a clear
    error (507; exit 1 with a message) and leave the registry as it was. Returns False
    (nothing run) where this machine does not let us mount a tmpfs."""
    from fastapi.testclient import TestClient

    from quanta.tenancy import create_key, create_tenant
    from tune.api.app import create_app

    home = root / "tmpfs-home"
    home.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_mb}m", "tmpfs",
                              str(home)], capture_output=True)
    if mounted.returncode != 0:
        print(f"      disk full: skipped (cannot mount a tmpfs: "
              f"{mounted.stderr.decode().strip()[:120]})", flush=True)
        return False
    try:
        registry = Registry.open(Settings(home=home, allow_anonymous=False))
        create_tenant(registry, "full")
        key = create_key(registry, "full")[1]
        client = TestClient(create_app(registry.settings, registry))
        data = _jsonl(2000, 50_000)  # ~100 MB: more than the disk holds
        r = client.post("/v1/files", headers={"Authorization": f"Bearer {key}"},
                        files={"file": ("big.jsonl", data)}, data={"purpose": "fine-tune"})
        problems = [] if r.status_code == 507 else [f"upload -> {r.status_code} {r.text[:200]}"]
        problems += check_registry(registry, tally)
        if registry.list_files("full"):
            problems.append("a file row for an upload that did not fit")
        tally.record("disk full: upload", problems, f"answer {r.status_code}")
        imported = subprocess.run(quanta_command("models", "import"), capture_output=True,
                                  text=True, env=quanta_env(home), timeout=600)
        problems = [] if imported.returncode == 1 and "disk is full" in imported.stderr and \
            "Traceback" not in imported.stderr else \
            [f"models import -> exit {imported.returncode}: {imported.stderr[-300:]}"]
        problems += check_registry(registry, tally)
        if registry.list_base_models():
            problems.append("a base model row for an import that did not fit")
        tally.record("disk full: models import", problems, f"exit {imported.returncode}")
    finally:
        subprocess.run(["umount", "-l", str(home)], capture_output=True)
    return True
