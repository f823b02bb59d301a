"""Multi-LoRA serving benchmark: what do per-request adapters cost, with Quanta's ops?

Prints, from one run (16 concurrent streamed requests, output tokens/s and time to first
token p50/p99 for each):
  (a) all on the base model                                      (quanta serve)
  (b) spread over 8 adapters, Quanta's LoRA ops                  (quanta serve)
  (c) the same 8 adapters on a bare vLLM server with its own ops (static --lora-modules,
      no Quanta plugin, middleware, resolver or registry)
  (d) 64 adapters round-robin with --max-loras 8 --max-cpu-loras 16: the eviction cliff
      (quanta serve)
  the ratios (b)/(a), (b)/(c), (d)/(a); and p50/p99 time to first token for a cold
  adapter (first request: registry lookup, fetch, engine load) versus a warm one.

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

REPO = str(Path(__file__).resolve().parents[1])
if REPO not in sys.path:  # `python bench/x.py` puts bench/ there; tests.support needs the root
    sys.path.insert(0, REPO)

from tests.support.fixtures import make_adapter
from tests.support.load import CONCURRENCY, measure, one_request, percentile
from tests.support.servers import start_serve

N_ADAPTERS = 8
N_COLD = 8
ROUNDS = 2
N_MANY = 64  # (d): names over the same 16 weight sets (each name is its own engine adapter)


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


def many_names(registry: Registry, warm_set: list[str], cold_set: list[str]) -> list[str]:
    """``N_MANY`` adapter names for (d), registered once (the same files under new names)."""
    existing = {a.alias: a.name for a in registry.list_adapters("bench")}
    sources = [next(a for a in registry.list_adapters("bench") if a.name == name)
               for name in warm_set + cold_set]
    names = []
    for i in range(N_MANY):
        alias = f"many-{i}"
        if alias not in existing:
            src = sources[i % len(sources)]
            directory = registry.materialize(src.sha256)
            existing[alias] = registry.add_adapter("bench", DEFAULT_MODEL_ID, directory,
                                                   suffix=alias, alias=alias).name
        names.append(existing[alias])
    return names


async def ttfts(url: str, headers: dict, models: list[str]) -> list[float]:
    """Sequential single requests (nothing else running): time to first token each."""
    out = []
    async with httpx.AsyncClient(timeout=600) as client:
        for model in models:
            out.append((await one_request(client, url, headers, model, 4))[0])
    return out


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
    many = many_names(registry, warm_set, cold_set)
    headers = {"Authorization": f"Bearer {key}"}
    print(f"setup: {len(warm_set) + len(cold_set)} adapters (r=16, q/k/v/o), {len(many)} "
          f"names for (d), in {time.perf_counter() - t0:.0f}s; {CONCURRENCY} concurrent "
          f"requests x {args.max_tokens} output tokens, {ROUNDS} measured rounds each",
          flush=True)

    started = time.perf_counter()
    server = start_serve(home, "--max-loras", str(N_ADAPTERS), "--max-cpu-loras",
                         str(2 * N_ADAPTERS), "--max-lora-rank", "16", grpc=False,
                         timeout=args.startup_timeout, log_name="quanta-server.log")
    url = server.url
    try:
        print(f"quanta serve healthy after {time.perf_counter() - started:.0f}s", flush=True)
        base = asyncio.run(measure(url, headers, [DEFAULT_MODEL_ID], args.max_tokens, ROUNDS))
        cold = asyncio.run(ttfts(url, headers, cold_set))
        warm = asyncio.run(ttfts(url, headers, cold_set + cold_set))
        mixed = asyncio.run(measure(url, headers, warm_set, args.max_tokens, ROUNDS))
        cliff = asyncio.run(measure(url, headers, many, args.max_tokens, ROUNDS))
    finally:
        server.stop()

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = start_bare(home, base_dir, registry, warm_set, port, home / "bare-server.log")
    try:
        up = wait_healthy(f"{url}/health", proc, args.startup_timeout,
                          home / "bare-server.log")
        print(f"bare vLLM healthy after {up:.0f}s", flush=True)
        bare = asyncio.run(measure(url, {}, warm_set, args.max_tokens, ROUNDS))
    finally:
        stop_process(proc)

    print()
    print(f"{'':44s}{'tokens/s':>10s}{'TTFT p50':>11s}{'TTFT p99':>11s}")
    for label, result in (("(a) base only, quanta serve", base),
                          ("(b) 8 adapters, quanta serve (Quanta ops)", mixed),
                          ("(c) 8 adapters, bare vLLM (its own ops)", bare),
                          (f"(d) {N_MANY} adapters round-robin, 8/16 slots", cliff)):
        print(f"{label:44s}{result.tokens_per_s:10.1f}{result.ttft_ms(50):9.0f}ms"
              f"{result.ttft_ms(99):9.0f}ms")
    print(f"(b)/(a) = {mixed.tokens_per_s / base.tokens_per_s:.2f}   (target >= 0.85)")
    print(f"(b)/(c) = {mixed.tokens_per_s / bare.tokens_per_s:.2f}   (target >= 2.0)")
    print(f"(d)/(a) = {cliff.tokens_per_s / base.tokens_per_s:.2f}   (target >= 0.6, "
          f"TTFT p99 < 2 s)")
    print(f"TTFT cold adapter (n={len(cold)}): p50 {percentile(cold, 50) * 1000:7.1f} ms   "
          f"p99 {percentile(cold, 99) * 1000:7.1f} ms")
    print(f"TTFT warm adapter (n={len(warm)}): p50 {percentile(warm, 50) * 1000:7.1f} ms   "
          f"p99 {percentile(warm, 99) * 1000:7.1f} ms   (mean cold/warm "
          f"{statistics.mean(cold) / statistics.mean(warm):.1f}x)")
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
