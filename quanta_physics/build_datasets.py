"""Regenerate the shipped physics datasets.

    python -m quanta_physics.build_datasets [--check]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from quanta_physics.datasets import DATA_DIR, render_bundled


def main(argv: list[str] | None = None) -> int:
    """Write the bundled files (or, with ``--check``, fail if the shipped ones differ)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=DATA_DIR, help="output directory")
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    args = parser.parse_args(argv)
    stale = []
    for name, data in render_bundled().items():
        target = args.out / name
        if args.check:
            if not target.is_file() or target.read_bytes() != data:
                stale.append(name)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        records = data.count(b"\n")
        print(f"wrote {target} ({records} records, {len(data)} bytes)")
    if stale:
        print(f"out of date: {', '.join(stale)}; run "
              "python -m quanta_physics.build_datasets", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
