"""Multi-LoRA serving benchmark: what do per-request adapters and Quanta's layer cost?

Prints, from one run:
  (a) output tokens/s, 16 concurrent requests, all on the base model   (quanta serve)
  (b) the same, spread over 8 adapters                                 (quanta serve)
  (c) (b) against a bare vLLM server with the adapters as static --lora-modules
      (no Quanta middleware, resolver or registry)
  ratios (b)/(a) and (b)/(c), and p50/p99 time to first token for a cold adapter
  (first request: registry lookup, fetch, engine load) versus a warm one.

Usage (it starts and stops both servers; run it alone, under the heavy lock):
  flock /tmp/quanta-heavy.lock python bench/serve_multilora.py [--home DIR] [--max-tokens 64]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

from quanta.config import Settings
from quanta.models import DEFAULT_MODEL_ID, ensure_model, model_path
from quanta.processes import free_port, start_process, stop_process, wait_healthy
from quanta.registry import ConflictError, Registry
from quanta.tenancy import create_key, create_tenant
from quanta.testing.fixtures import make_adapter
from quanta.testing.load import CONCURRENCY, one_request, throughput
from quanta.testing.servers import start_serve

N_ADAPTERS = 8
N_COLD = 8


def prepare(home: Path) -> tuple[Registry, Path, str, list[str], list[str]]:
    """Registry with the base model, one tenant + key, 8 warm-set and 8 cold-set adapters."""
    registry = Registry.open(Settings(home=home))
    ensure_model(registry)
    base_dir = model_path(registry)
    with contextlib.suppress(ConflictError):  # already there from an earlier run
        create_tenant(registry, "bench")
    _, key = create_key(registry, "bench")
    existing = {a.alias: a.name for a in registry.list_adapters("bench")}
    names: dict[str, str] = {}
    for i in range(N_ADAPTERS + N_COLD):
        alias = f"bench-{i}"
        if alias not in existing:
            directory = make_adapter(base_dir, home / "adapters" / alias, seed=100 + i, r=16,
                                     target_modules=("q_proj", "k_proj", "v_proj", "o_proj"))
            existing[alias] = registry.add_adapter("bench", DEFAULT_MODEL_ID, directory,
                                                   suffix=alias, alias=alias).name
        names[alias] = existing[alias]
    ordered = [names[f"bench-{i}"] for i in range(N_ADAPTERS + N_COLD)]
    return registry, base_dir, key, ordered[:N_ADAPTERS], ordered[N_ADAPTERS:]


async def ttfts(url: str, headers: dict, models: list[str]) -> list[float]:
    """Sequential single requests (nothing else running): time to first token each."""
    out = []
    async with httpx.AsyncClient(timeout=600) as client:
        for model in models:
            out.append((await one_request(client, url, headers, model, 4))[0])
    return out


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    k = max(0, min(len(values) - 1, round(q / 100 * (len(values) - 1))))
    return values[k]


def start_bare(home: Path, base_dir: Path, registry: Registry, adapters: list[str], port: int,
               log: Path):
    modules = []
    for name in adapters:
        row = next(a for a in registry.list_adapters("bench") if a.name == name)
        modules.append(f"{name}={registry.materialize(row.sha256)}")
    env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": "1",
           "VLLM_CACHE_ROOT": str(home / "vllm-cache"), "OMP_WAIT_POLICY": "PASSIVE",
           "HF_HUB_OFFLINE": "1", "VLLM_NO_USAGE_STATS": "1"}
    env.pop("QUANTA_LORA_RESOLVER", None)  # plain vLLM: Quanta's resolver stays unregistered
    argv = [sys.executable, "-m", "vllm.entrypoints.openai.api_server",
            "--model", str(base_dir), "--served-model-name", DEFAULT_MODEL_ID,
            "--host", "127.0.0.1", "--port", str(port),
            "--enable-lora", "--max-loras", str(N_ADAPTERS), "--max-lora-rank", "16",
            "--max-model-len", "2048", "--disable-uvicorn-access-log",
            "--lora-modules", *modules]
    return start_process(argv, log, env)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, help="QUANTA_HOME to use (default: a temp dir)")
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--startup-timeout", type=float, default=900)
    args = parser.parse_args()
    tmp = None if args.home else tempfile.TemporaryDirectory(prefix="quanta-bench-")
    home = args.home or Path(tmp.name)  # type: ignore[union-attr]
    t0 = time.perf_counter()
    registry, base_dir, key, warm_set, cold_set = prepare(home)
    headers = {"Authorization": f"Bearer {key}"}
    print(f"setup: {len(warm_set) + len(cold_set)} adapters (r=16, q/k/v/o) in "
          f"{time.perf_counter() - t0:.0f}s; {CONCURRENCY} concurrent requests x "
          f"{args.max_tokens} output tokens, 2 measured rounds each", flush=True)

    started = time.perf_counter()
    server = start_serve(home, "--max-loras", str(N_ADAPTERS), "--max-cpu-loras",
                         str(N_ADAPTERS + N_COLD), "--max-lora-rank", "16", grpc=False,
                         timeout=args.startup_timeout, log_name="quanta-server.log")
    url = server.url
    try:
        print(f"quanta serve healthy after {time.perf_counter() - started:.0f}s", flush=True)
        base_tps = asyncio.run(throughput(url, headers, [DEFAULT_MODEL_ID], args.max_tokens))
        cold = asyncio.run(ttfts(url, headers, cold_set))
        warm = asyncio.run(ttfts(url, headers, cold_set + cold_set))
        lora_tps = asyncio.run(throughput(url, headers, warm_set, args.max_tokens))
    finally:
        server.stop()

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = start_bare(home, base_dir, registry, warm_set, port, home / "bare-server.log")
    try:
        up = wait_healthy(f"{url}/health", proc, args.startup_timeout,
                          home / "bare-server.log")
        print(f"bare vLLM healthy after {up:.0f}s", flush=True)
        bare_tps = asyncio.run(throughput(url, {}, warm_set, args.max_tokens))
    finally:
        stop_process(proc)

    print()
    print(f"(a) base only, quanta serve:          {base_tps:8.1f} output tokens/s")
    print(f"(b) 8 adapters, quanta serve:         {lora_tps:8.1f} output tokens/s")
    print(f"(c) 8 adapters, bare vLLM (static):   {bare_tps:8.1f} output tokens/s")
    print(f"(b)/(a) = {lora_tps / base_tps:.2f}   (cost of the LoRA path)")
    print(f"(b)/(c) = {lora_tps / bare_tps:.2f}   (cost of Quanta's middleware + resolver)")
    print(f"TTFT cold adapter (n={len(cold)}): p50 {pct(cold, 50) * 1000:7.1f} ms   "
          f"p99 {pct(cold, 99) * 1000:7.1f} ms")
    print(f"TTFT warm adapter (n={len(warm)}): p50 {pct(warm, 50) * 1000:7.1f} ms   "
          f"p99 {pct(warm, 99) * 1000:7.1f} ms   (mean cold/warm "
          f"{statistics.mean(cold) / statistics.mean(warm):.1f}x)")
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
