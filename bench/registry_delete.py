"""What a DELETE costs as the store grows: reference tracking lives in the database.

    python bench/registry_delete.py [--sizes-mb 0 100 700] [--small-files 1000] [--repeat 5]

For each store size, fills a fresh registry with that many MB of random 8 MB files plus
``--small-files`` small ones (so the blob table is not trivially empty), then times
deleting a 90-byte file (median of ``--repeat``) and one ``collect_garbage`` and
``verify`` pass. A DELETE that re-read every blob (the registry before revision 0002)
grows with the store: 2.4 s at 718 MB on this box. Prints one JSON line per size.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

from quanta.config import Settings
from quanta.registry import Registry
from quanta.types import ArtifactKind, FilePurpose

CHUNK = 8 * 1024 * 1024
TENANT = "bench"


def fill(registry: Registry, megabytes: int, small_files: int) -> None:
    for i in range(megabytes * 1024 * 1024 // CHUNK):
        registry.add_file(TENANT, f"big-{i}.bin", FilePurpose.FINE_TUNE,
                          io.BytesIO(os.urandom(CHUNK)))
    for i in range(small_files):
        registry.add_file(TENANT, f"small-{i}.jsonl", FilePurpose.FINE_TUNE,
                          io.BytesIO(os.urandom(64)))


def time_deletes(registry: Registry, repeat: int) -> float:
    seconds = []
    for i in range(repeat):
        row = registry.add_file(TENANT, f"victim-{i}.jsonl", FilePurpose.FINE_TUNE,
                                io.BytesIO(os.urandom(90)))
        started = time.perf_counter()
        registry.delete(ArtifactKind.FILE, row.id, TENANT)
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes-mb", type=int, nargs="+", default=[0, 100, 700])
    parser.add_argument("--small-files", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    for megabytes in args.sizes_mb:
        with tempfile.TemporaryDirectory(prefix="quanta-delete-") as home:
            registry = Registry.open(Settings(home=Path(home)))
            registry.tenants.ensure(TENANT)
            fill(registry, megabytes, args.small_files)
            delete_s = time_deletes(registry, args.repeat)
            started = time.perf_counter()
            registry.collect_garbage()
            gc_s = time.perf_counter() - started
            started = time.perf_counter()
            report = registry.verify()
            verify_s = time.perf_counter() - started
            print(json.dumps({"store_mb": megabytes, "blobs": report.checked,
                              "delete_ms": round(delete_s * 1000, 1),
                              "gc_ms": round(gc_s * 1000, 1),
                              "verify_s": round(verify_s, 2), "verify_ok": report.ok}),
                  flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
