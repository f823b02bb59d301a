"""SIGKILL the tune API, the tune worker and the serve process at random points; tally.

    python bench/faults.py [--api-kills 12] [--worker-kills 8] [--serve-kills 4]
                           [--export-kills 4] [--no-disk-full] [--seed 0]

Each kill is one run followed by the registry, job and cache checks described in
``tests.support.faults`` (the CI-sized version is tests/hardening/test_faults.py). The
disk-full runs (an upload and a model import on a 64 MB tmpfs home) need a machine that
lets this process mount one; they are skipped elsewhere.
Prints one line per run and the tallies (kills, survived, artifacts lost, half-written).
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = str(Path(__file__).resolve().parents[1])
if REPO not in sys.path:  # `python bench/x.py` puts bench/ there; tests.support needs the root
    sys.path.insert(0, REPO)

from tests.support.faults import (
    Tally,
    run_api_kills,
    run_disk_full,
    run_export_kills,
    run_serve_kills,
    run_worker_kills,
)
from tests.support.fixtures import base_model_dir, bench_model_home


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--api-kills", type=int, default=12)
    parser.add_argument("--worker-kills", type=int, default=8)
    parser.add_argument("--serve-kills", type=int, default=4)
    parser.add_argument("--export-kills", type=int, default=4)
    parser.add_argument("--no-disk-full", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--model-home", type=Path, default=bench_model_home(),
                        help="registry with the base model (imported there on first use)")
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    tally = Tally()

    root = Path(tempfile.mkdtemp(prefix="quanta-faults-"))
    started = time.monotonic()
    try:
        phases: list[tuple[str, int, Callable[[], None]]] = [
            ("tune API", args.api_kills,
             lambda: run_api_kills(args.api_kills, rng, tally, root / "api")),
            ("tune worker", args.worker_kills,
             lambda: run_worker_kills(args.worker_kills, rng, tally, root / "worker",
                                      base_model_dir(args.model_home))),
            ("export", args.export_kills,
             lambda: run_export_kills(args.export_kills, rng, tally, root / "export",
                                      base_model_dir(args.model_home))),
            ("disk full", 0 if args.no_disk_full else 1,
             lambda: run_disk_full(tally, root / "disk-full")),
            ("serve", args.serve_kills,
             lambda: run_serve_kills(args.serve_kills, rng, tally, root / "serve",
                                     base_model_dir(args.model_home))),
        ]
        for _, count, phase in phases:
            if count:
                phase()
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(json.dumps({"faults": {
        "kills": tally.kills, "survived": tally.survived,
        "artifacts_lost": tally.artifacts_lost, "half_written": tally.half_written,
        "killed_writers_temp_files_swept": tally.temp_swept,
        "problems": tally.problems, "seconds": round(time.monotonic() - started)}}))
    return 0 if not tally.problems else 1


if __name__ == "__main__":
    sys.exit(main())
