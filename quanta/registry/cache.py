"""Materialised copies of trees under ``QUANTA_HOME/cache``, trusted only while unchanged.

Engines need local paths, so trees are copied out of the store once and reused. A copy
is hashed when it is built; what was hashed (each file's size and modification time)
is recorded beside it, under ``cache/.verified/<sha256>.json``. Reusing a copy
compares those stats, which costs one ``stat`` per file: any write to a file changes
its mtime and voids the record, and the copy is hashed again before use. ``verify``
re-hashes every copy regardless (a write that restores the mtime is not a mistake).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from quanta.registry.store import owner_tag, sha256_file

RECORDS = ".verified"
CACHED_BLOBS = "blobs"  # single-file copies, for stores that are not local


class VerifiedCopies:
    def __init__(self, cache_dir: Path) -> None:
        self.records = cache_dir / RECORDS

    def _record_path(self, name: str) -> Path:
        return self.records / f"{name}.json"

    @staticmethod
    def _stats(directory: Path, files: dict[str, Any]) -> dict[str, list[int]] | None:
        """Size and mtime of every file the manifest names; None if the set differs."""
        present = {p.relative_to(directory).as_posix() for p in directory.rglob("*")
                   if p.is_file()}
        if present != set(files):
            return None
        stats = {}
        for rel in files:
            st = (directory / rel).stat()
            stats[rel] = [st.st_size, st.st_mtime_ns]
        return stats

    def trusted(self, directory: Path, files: dict[str, Any]) -> bool:
        """Unchanged since it was last hashed?"""
        try:
            recorded = json.loads(self._record_path(directory.name).read_text())
            return recorded == self._stats(directory, files)
        except (OSError, ValueError):
            return False

    def rehash(self, directory: Path, files: dict[str, Any]) -> bool | None:
        """Hash every file against the manifest; record the copy if it matches. None: a
        file vanished while hashing (the copy is being replaced), so no verdict."""
        try:
            if self._stats(directory, files) is None or any(
                    sha256_file(directory / rel) != info["sha256"] for rel, info in files.items()):
                self.forget(directory.name)
                return False
        except OSError:
            return None
        self.record(directory, files)
        return True

    def record(self, directory: Path, files: dict[str, Any], as_name: str | None = None) -> None:
        """Remember a copy just hashed (``as_name``: its final name, if built elsewhere)."""
        stats = self._stats(directory, files)
        if stats is None:
            return
        self.records.mkdir(parents=True, exist_ok=True)
        target = self._record_path(as_name or directory.name)
        tmp = target.with_name(f".{owner_tag()}{target.name}")
        tmp.write_text(json.dumps(stats))
        os.replace(tmp, target)

    def forget(self, name: str) -> None:
        self._record_path(name).unlink(missing_ok=True)
