"""Bounded load on ``quanta serve`` over loopback: N concurrent clients for a fixed time.

    python bench/load_serve.py [--clients 64] [--duration 60] [--tenants 8] [--max-tokens 16]
                               [--url http://127.0.0.1:8000 --key-file keys.json] [--fuzz]

Without ``--url`` it builds a registry (SmolLM2, ``--tenants`` tenants with a key and two
small LoRA adapters each), starts ``quanta serve`` and stops it afterwards. Clients are
asyncio tasks sharing one httpx client; each loops, for ``--duration`` seconds, over
chat completions on the base model and its tenant's adapters (clients are spread evenly
over tenants, so the per-tenant concurrency cap is ``clients / tenants``). Prints
requests, errors by kind (any non-200 is an error), throughput, p50/p99 latency and the
peak RSS of the server's process tree (psutil, sampled every 0.25 s). ``--fuzz`` also
runs schemathesis against the same server (bench/fuzz_apis.py).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from quanta.config import Settings
from quanta.models import DEFAULT_MODEL_ID
from quanta.registry import Registry
from quanta.tenancy import create_key, create_tenant
from serve.testing import free_port, start_process, stop_process, wait_healthy

CHAT = [{"role": "user", "content": "State Newton's second law."}]


# -- setup -----------------------------------------------------------------------------------

def adapter_variant(src: Path, dest: Path, seed: int) -> Path:
    """A copy of a peft adapter with its LoRA B matrices rescaled by a seeded factor.

    Gives many distinct adapters (different greedy outputs, different sha256) from one
    ``make_adapter`` call, in milliseconds instead of a model load each.
    """
    import torch
    from safetensors.torch import load_file, save_file

    dest.mkdir(parents=True, exist_ok=True)
    shutil.copy(src / "adapter_config.json", dest / "adapter_config.json")
    tensors = load_file(src / "adapter_model.safetensors")
    gen = torch.Generator().manual_seed(seed)
    for name, tensor in tensors.items():
        if "lora_B" in name:
            tensors[name] = tensor * (0.5 + torch.rand(1, generator=gen).item() * 1.5)
    save_file(tensors, dest / "adapter_model.safetensors")
    return dest


@dataclass
class Fixture:
    home: Path
    registry: Registry
    keys: dict[str, str]  # tenant -> key
    key_ids: dict[str, str]
    adapters: dict[str, list[str]]  # tenant -> ft: names
    template: Path  # a real peft adapter directory to derive more from


def prepare(home: Path, base_model_dir: Path, tenants: list[str], per_tenant: int = 2,
            allow_anonymous: bool = False) -> Fixture:
    """A registry at ``home``: the base model, tenants with one key and ``per_tenant``
    adapters each (distinct contents)."""
    from quanta.models import import_model
    from serve.testing import make_adapter

    registry = Registry.open(Settings(home=home, allow_anonymous=allow_anonymous))
    import_model(registry, base_model_dir, DEFAULT_MODEL_ID)
    template = make_adapter(base_model_dir, home / "adapters" / "template", seed=7)
    keys, key_ids, adapters = {}, {}, {}
    seed = 0
    for tenant in tenants:
        create_tenant(registry, tenant)
        row, keys[tenant] = create_key(registry, tenant)
        key_ids[tenant] = row.id
        adapters[tenant] = []
        for i in range(per_tenant):
            seed += 1
            directory = adapter_variant(template, home / "adapters" / f"{tenant}-{i}", seed)
            adapters[tenant].append(registry.add_adapter(tenant, DEFAULT_MODEL_ID, directory,
                                                         suffix=f"a{i}").name)
    return Fixture(home, registry, keys, key_ids, adapters, template)


def start_server(home: Path, *, extra: list[str] | None = None, timeout: float = 600):
    """``quanta serve`` on free loopback ports; returns (process, url, grpc target, log)."""
    port, grpc_port = free_port(), free_port()
    env = {**os.environ, "QUANTA_HOME": str(home), "QUANTA_ALLOW_ANONYMOUS": "false",
           "OMP_WAIT_POLICY": "PASSIVE"}
    env.pop("QUANTA_DATABASE_URL", None)
    env.pop("QUANTA_STORE_URL", None)
    log = home / f"server-{port}.log"
    proc = start_process([sys.executable, "-m", "quanta.cli", "serve", "--host", "127.0.0.1",
                          "--port", str(port), "--grpc-port", str(grpc_port),
                          *(extra or [])], env, log)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, proc, timeout, log)
    except BaseException:
        stop_process(proc)
        raise
    return proc, url, f"127.0.0.1:{grpc_port}", log


# -- memory ----------------------------------------------------------------------------------

class PeakRSS(threading.Thread):
    """Samples the RSS of a process and all its descendants; ``peak`` in bytes."""

    def __init__(self, pid: int, interval: float = 0.25) -> None:
        super().__init__(daemon=True)
        self.pid, self.interval = pid, interval
        self.peak = 0
        self._stop_event = threading.Event()

    def sample(self) -> int:
        import psutil

        try:
            root = psutil.Process(self.pid)
            procs = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return 0
        total = 0
        for proc in procs:
            try:
                total += proc.memory_info().rss
            except psutil.NoSuchProcess:
                continue
        return total

    def run(self) -> None:
        while not self._stop_event.is_set():
            self.peak = max(self.peak, self.sample())
            self._stop_event.wait(self.interval)

    def stop(self) -> int:
        self._stop_event.set()
        self.join(timeout=5)
        return self.peak


# -- load ------------------------------------------------------------------------------------

@dataclass
class LoadResult:
    clients: int
    duration: float
    latencies: list[float] = field(default_factory=list)
    errors: collections.Counter = field(default_factory=collections.Counter)
    completion_tokens: int = 0
    peak_rss: int = 0
    idle_rss: int = 0

    @property
    def requests(self) -> int:
        return len(self.latencies) + sum(self.errors.values())

    def percentile(self, q: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    def summary(self) -> dict:
        return {
            "clients": self.clients, "duration_s": round(self.duration, 1),
            "requests": self.requests, "ok": len(self.latencies),
            "errors": dict(self.errors), "5xx": sum(n for k, n in self.errors.items()
                                                    if str(k).startswith("5")),
            "throughput_rps": round(len(self.latencies) / self.duration, 2),
            "output_tokens_per_s": round(self.completion_tokens / self.duration, 1),
            "latency_p50_s": round(self.percentile(0.50), 3),
            "latency_p99_s": round(self.percentile(0.99), 3),
            "latency_mean_s": round(statistics.fmean(self.latencies), 3)
            if self.latencies else None,
            "server_rss_idle_mib": round(self.idle_rss / 2**20),
            "server_rss_peak_mib": round(self.peak_rss / 2**20),
        }


async def run_load(url: str, keys: dict[str, str], adapters: dict[str, list[str]], *,
                   clients: int, duration: float, max_tokens: int = 16,
                   server_pid: int | None = None, request_timeout: float = 300) -> LoadResult:
    """``clients`` concurrent loops for ``duration`` seconds; client i acts as tenant
    ``i % len(keys)`` and cycles over the base model and that tenant's adapters."""
    assert url.startswith("http://127.0.0.1"), "loopback only"
    tenants = sorted(keys)
    result = LoadResult(clients, duration)
    sampler = PeakRSS(server_pid) if server_pid else None
    if sampler:
        result.idle_rss = sampler.sample()
        sampler.start()
    limits = httpx.Limits(max_connections=clients + 8, max_keepalive_connections=clients + 8)
    deadline = time.monotonic() + duration

    async def client_loop(i: int, http: httpx.AsyncClient) -> None:
        tenant = tenants[i % len(tenants)]
        models = [DEFAULT_MODEL_ID, *adapters.get(tenant, [])]
        headers = {"Authorization": f"Bearer {keys[tenant]}"}
        n = i
        while time.monotonic() < deadline:
            model = models[n % len(models)]
            n += 1
            body = {"model": model, "messages": CHAT, "max_tokens": max_tokens,
                    "temperature": 0, "ignore_eos": True}
            started = time.perf_counter()
            try:
                response = await http.post(f"{url}/v1/chat/completions", json=body,
                                           headers=headers)
            except httpx.HTTPError as exc:
                result.errors[type(exc).__name__] += 1
                continue
            if response.status_code == 200:
                result.latencies.append(time.perf_counter() - started)
                usage = response.json().get("usage") or {}
                result.completion_tokens += int(usage.get("completion_tokens") or 0)
            else:
                result.errors[str(response.status_code)] += 1

    started = time.monotonic()
    async with httpx.AsyncClient(limits=limits, timeout=request_timeout) as http:
        await asyncio.gather(*(client_loop(i, http) for i in range(clients)))
    result.duration = time.monotonic() - started
    if sampler:
        result.peak_rss = sampler.stop()
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--duration", type=float, default=60)
    parser.add_argument("--tenants", type=int, default=8)
    parser.add_argument("--max-tokens", type=int, default=16)
    parser.add_argument("--url")
    parser.add_argument("--key-file", help="JSON {tenant: key} for --url")
    parser.add_argument("--fuzz", action="store_true", help="also fuzz serve (schemathesis)")
    parser.add_argument("--fuzz-examples", type=int, default=10)
    parser.add_argument("--fuzz-time", type=float, default=240)
    args = parser.parse_args(argv)

    proc, home = None, None
    if args.url:
        keys = json.loads(Path(args.key_file).read_text())
        adapters: dict[str, list[str]] = {}
        url, pid = args.url, None
    else:
        from quanta.models import ensure_model, model_path

        model_home = Path(os.environ.get("QUANTA_BENCH_MODEL_HOME",
                                          Path.home() / ".cache" / "quanta" / "bench-model"))
        model_registry = Registry.open(Settings(home=model_home))
        ensure_model(model_registry)
        base_dir = model_path(model_registry)
        home = Path(tempfile.mkdtemp(prefix="quanta-load-"))
        tenants = [f"t{i}" for i in range(args.tenants)]
        fixture = prepare(home, base_dir, tenants)
        keys, adapters = fixture.keys, fixture.adapters
        per_tenant = -(-args.clients // args.tenants)
        t0 = time.monotonic()
        proc, url, _, _ = start_server(home, extra=[
            "--max-loras", "4", "--max-cpu-loras", str(2 * args.tenants + 2),
            "--max-model-len", "512", "--tenant-max-concurrency", str(per_tenant)])
        print(f"server healthy after {time.monotonic() - t0:.0f}s", flush=True)
        pid = proc.pid
    try:
        # Warm-up: load every adapter once so the timed window measures steady state.
        asyncio.run(run_load(url, keys, adapters, clients=3 * len(keys), duration=5,
                             max_tokens=2))
        result = asyncio.run(run_load(url, keys, adapters, clients=args.clients,
                                      duration=args.duration, max_tokens=args.max_tokens,
                                      server_pid=pid))
        print(json.dumps({"load": result.summary()}), flush=True)
        code = 0 if not result.errors else 1
        if args.fuzz:
            sys.path.insert(0, str(Path(__file__).parent))
            from fuzz_apis import UPSTREAM_5XX_OPS, fuzz_serve

            fuzz = fuzz_serve(url, keys[sorted(keys)[0]], args.fuzz_examples, args.fuzz_time)
            print(fuzz.line(), flush=True)
            ours = sum(n for op, n in fuzz.server_error_ops.items()
                       if op not in UPSTREAM_5XX_OPS)
            print(f"serve 5xx outside the known upstream vLLM operations: {ours}", flush=True)
            code = code or (1 if ours else 0)
            health = httpx.get(f"{url}/health", timeout=10).status_code
            print(f"serve /health after fuzzing: {health}", flush=True)
        return code
    finally:
        if proc is not None:
            stop_process(proc)
        if home is not None:
            shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
