"""Held-out physics accuracy of the demo's adapter: base, adapter, adapter with calculator
decoding, and every export, on the three held-out splits.

One run over one registry (``--model-home``: a demo's data directory, e.g.
``quanta-data``; ``--adapter``: default the newest adapter there trained with calculation
traces), ``--n`` problems per split (by numbers, by phrasing, by family), each row as it is
served (``demo.accuracy``). Targets (issue 14): adapter with calculator >= 60% by phrasing
and >= 40% by family, base <= 10%, every export within 5 points of its adapter.

    python bench/physics_accuracy.py --model-home quanta-data
    python bench/physics_accuracy.py --model-home quanta-data \
        --base smollm2-135m-instruct --base gemma3-270m

With ``--base`` (repeated), the newest calculator adapter of each base (each from its own
``quanta demo --base NAME`` run) is measured on the same problems, and the bases are
printed side by side with their training step time and this machine's CPU flags.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from demo.accuracy import BASE, CALCULATOR, SPLITS, accuracy_by_split
from quanta.config import Settings
from quanta.registry import Registry

REPO = str(Path(__file__).resolve().parents[1])
if REPO not in sys.path:  # `python bench/x.py` puts bench/ there; tests.support needs the root
    sys.path.insert(0, REPO)

from tests.support.fixtures import calculating_adapter


def cpu_flags() -> str:
    """The CPU flags the figures depend on (bf16 natively or not)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "unknown"
    return " ".join(flag for flag in ("avx2", "avx512f", "avx512_bf16", "amx_bf16")
                    if f" {flag}" in text) or "none of avx2/avx512"


def base_adapter(registry: Registry, tenant: str, base: str) -> Any:
    """The newest calculator adapter trained on ``base``."""
    from quanta.calculator import calculator_flag

    trained = [a for a in registry.list_adapters(tenant)
               if a.base_model_id == base and calculator_flag(a.config)]
    if not trained:
        raise SystemExit(f"no calculator adapter of {base}: run `quanta demo --base {base}`")
    return max(trained, key=lambda a: a.created_at)


def step_seconds(adapter: Any) -> float | None:
    config = adapter.config or {}
    if config.get("train_seconds") and config.get("steps"):
        return config["train_seconds"] / config["steps"]
    return None


def compare_bases(registry: Registry, tenant: str, bases: list[str], n: int,
                  max_tokens: int) -> None:
    """Each base's adapter on the same held-out problems, side by side."""
    results = {}
    for base in bases:
        adapter = base_adapter(registry, tenant, base)
        with tempfile.TemporaryDirectory() as tmp:
            results[base] = (adapter, accuracy_by_split(registry, adapter, n, max_tokens,
                                                        Path(tmp), formats=frozenset()))
    print(f"\nheld-out physics accuracy by base ({n} problems per split; CPU: {cpu_flags()})")
    width = max(len(b) for b in bases) + len(CALCULATOR) + 3
    print(f"{'':<{width}}  " + "  ".join(f"{split:>9}" for split in SPLITS)
          + "  s/step")
    for base, (adapter, result) in results.items():
        seconds = step_seconds(adapter)
        for row in (BASE, CALCULATOR):
            print(f"{base + ' ' + row:<{width}}  " + "  ".join(
                f"{result.accuracy(row, s):>9.1%}" for s in SPLITS)
                + (f"  {seconds:6.2f}" if row == CALCULATOR and seconds else ""))
    print(json.dumps({base: {"adapter": adapter.name, "seconds_per_step": step_seconds(adapter),
                             **result.as_dict()} for base, (adapter, result) in results.items()}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model-home", type=Path, required=True)
    parser.add_argument("--adapter", default=None)
    parser.add_argument("--tenant", default=None)
    parser.add_argument("--base", action="append", default=[],
                        help="compare the newest calculator adapter of each base named")
    parser.add_argument("--n", type=int, default=30, help="problems per split")
    parser.add_argument("--max-tokens", type=int, default=160)
    args = parser.parse_args()

    registry = Registry.open(Settings(home=args.model_home))
    tenant = args.tenant or registry.settings.default_tenant
    if args.base:
        compare_bases(registry, tenant, args.base, args.n, args.max_tokens)
        return
    adapter = calculating_adapter(registry, tenant, args.adapter)
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        result = accuracy_by_split(registry, adapter, args.n, args.max_tokens, Path(tmp))
    elapsed = time.monotonic() - started

    print(f"\nheld-out physics accuracy of {adapter.name} ({args.n} problems per split, "
          f"{elapsed:.0f} s)")
    width = max(len(row) for row in result.correct)
    print(f"{'':<{width}}  " + "  ".join(f"{split:>9}" for split in SPLITS))
    for row in result.correct:
        print(f"{row:<{width}}  " + "  ".join(f"{result.accuracy(row, s):>9.1%}"
                                              for s in SPLITS))
    print(f"\ntargets: adapter with calculator by phrasing "
          f"{result.accuracy(CALCULATOR, 'phrasing'):.1%} (>= 60%), by family "
          f"{result.accuracy(CALCULATOR, 'family'):.1%} (>= 40%); base by numbers "
          f"{result.accuracy(BASE, 'numbers'):.1%} (<= 10%)")
    for row in result.correct:
        if row.startswith(("gguf", "gptq")):
            drop = max(100 * (result.accuracy(CALCULATOR, s) - result.accuracy(row, s))
                       for s in SPLITS)
            print(f"{row}: largest drop against the adapter {drop:+.1f} points (<= 5)")
    print(json.dumps({"adapter": adapter.name, **result.as_dict()}))


if __name__ == "__main__":
    main()
