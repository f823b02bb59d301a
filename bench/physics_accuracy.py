"""Held-out physics accuracy of the demo's adapter: base, adapter, adapter with calculator
decoding, and every export, on the three held-out splits.

One run over one registry (``--model-home``: a demo's data directory, e.g.
``quanta-data``; ``--adapter``: default the newest adapter there trained with calculation
traces), ``--n`` problems per split (by numbers, by phrasing, by family), each row as it is
served (``demo.accuracy``). Targets (issue 14): adapter with calculator >= 60% by phrasing
and >= 40% by family, base <= 10%, every export within 5 points of its adapter.

    python bench/physics_accuracy.py --model-home quanta-data
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from demo.accuracy import BASE, CALCULATOR, SPLITS, accuracy_by_split
from quanta.config import Settings
from quanta.registry import Registry

REPO = str(Path(__file__).resolve().parents[1])
if REPO not in sys.path:  # `python bench/x.py` puts bench/ there; tests.support needs the root
    sys.path.insert(0, REPO)

from tests.support.fixtures import calculating_adapter


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model-home", type=Path, required=True)
    parser.add_argument("--adapter", default=None)
    parser.add_argument("--tenant", default=None)
    parser.add_argument("--n", type=int, default=30, help="problems per split")
    parser.add_argument("--max-tokens", type=int, default=160)
    args = parser.parse_args()

    registry = Registry.open(Settings(home=args.model_home))
    adapter = calculating_adapter(registry, args.tenant or registry.settings.default_tenant,
                                  args.adapter)
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
