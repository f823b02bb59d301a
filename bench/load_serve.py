"""Bounded load on ``quanta serve`` over loopback: N concurrent clients for a fixed time.

    python bench/load_serve.py [--clients 64] [--duration 60] [--tenants 8] [--max-tokens 16]
                               [--url http://127.0.0.1:8000 --key-file keys.json] [--fuzz]

Without ``--url`` it builds a registry (SmolLM2, ``--tenants`` tenants with a key and two
small LoRA adapters each), starts ``quanta serve`` and stops it afterwards. Clients are
asyncio tasks sharing one httpx client; each loops, for ``--duration`` seconds, over
chat completions on the base model and its tenant's adapters (clients are spread evenly
over tenants, so the per-tenant concurrency cap is ``clients / tenants``). Prints
requests, errors by kind (any non-200 is an error), throughput, p50/p99 latency and the
peak RSS of the server's process tree (``tests.support.load``). ``--fuzz`` also runs
schemathesis against the same server (``tests.support.fuzz``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPO = str(Path(__file__).resolve().parents[1])
if REPO not in sys.path:  # `python bench/x.py` puts bench/ there; tests.support needs the root
    sys.path.insert(0, REPO)

from tests.support.fixtures import base_model_dir, bench_model_home, tenants_with_adapters
from tests.support.fuzz import UPSTREAM_5XX_OPS, fuzz_serve
from tests.support.load import run_load
from tests.support.servers import start_serve


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
    parser.add_argument("--model-home", type=Path, default=bench_model_home(),
                        help="registry with the base model (imported there on first use)")
    args = parser.parse_args(argv)

    server, home = None, None
    if args.url:
        keys = json.loads(Path(args.key_file).read_text())
        adapters: dict[str, list[str]] = {}
        url, pid = args.url, None
    else:
        base_dir = base_model_dir(args.model_home)
        home = Path(tempfile.mkdtemp(prefix="quanta-load-"))
        tenants = [f"t{i}" for i in range(args.tenants)]
        fixture = tenants_with_adapters(home, base_dir, tenants)
        keys, adapters = fixture.keys, fixture.adapters
        per_tenant = -(-args.clients // args.tenants)
        t0 = time.monotonic()
        server = start_serve(home, "--max-loras", "4", "--max-cpu-loras",
                             str(2 * args.tenants + 2), "--max-model-len", "512",
                             "--tenant-max-concurrency", str(per_tenant))
        print(f"server healthy after {time.monotonic() - t0:.0f}s", flush=True)
        url, pid = server.url, server.proc.pid
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
        if server is not None:
            server.stop()
        if home is not None:
            shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
