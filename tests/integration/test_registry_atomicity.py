"""A writer killed with SIGKILL mid-write leaves no half artifact and no dangling row."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from quanta.config import Settings
from quanta.registry import Registry
from quanta.registry import tables as t

SLOW_UPLOAD = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from quanta.config import Settings
    from quanta.registry import Registry

    class EndlessSlowUpload:
        reads = 0
        def read(self, size=-1):
            self.reads += 1
            if self.reads == 3:
                Path(sys.argv[2]).write_text("writing")
            time.sleep(0.02)
            return b"x" * 65536

    registry = Registry.open(Settings(home=Path(sys.argv[1])))
    registry.add_file("local", "big.jsonl", "fine-tune", EndlessSlowUpload())
""")

SLOW_TREE = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from quanta.config import Settings
    from quanta.registry import Registry
    from quanta.registry.store import LocalBlobStore

    original_stage = LocalBlobStore.stage  # every blob write of a tree goes through it
    calls = 0
    def slow_stage(self, *args, **kwargs):
        global calls
        result = original_stage(self, *args, **kwargs)
        calls += 1
        if calls == 2:
            Path(sys.argv[2]).write_text("writing")
        time.sleep(0.5)
        return result
    LocalBlobStore.stage = slow_stage

    src = Path(sys.argv[3])
    registry = Registry.open(Settings(home=Path(sys.argv[1])))
    registry.add_base_model("half", src, source="test")
""")


def run_and_kill(script: str, *args: str, marker: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-c", script, *args])
    deadline = time.monotonic() + 60
    while not marker.exists():
        assert proc.poll() is None, "writer exited before it was killed"
        assert time.monotonic() < deadline, "writer never started writing"
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL


def rows(registry: Registry, table: type[t.Base]) -> int:
    with registry.session() as s:
        return s.scalar(select(func.count()).select_from(table)) or 0


@pytest.mark.parametrize("scenario", ["upload", "tree"])
def test_killed_writer_leaves_registry_clean(scenario: str, tmp_path: Path) -> None:
    home = tmp_path / "home"
    registry = Registry.open(Settings(home=home))
    marker = tmp_path / "marker"
    if scenario == "upload":
        run_and_kill(SLOW_UPLOAD, str(home), str(marker), marker=marker)
    else:
        src = tmp_path / "model"
        src.mkdir()
        for i in range(6):
            (src / f"part{i}.bin").write_bytes(os.urandom(4096))
        run_and_kill(SLOW_TREE, str(home), str(marker), str(src), marker=marker)

    assert rows(registry, t.File) == 0
    assert rows(registry, t.BaseModelRow) == 0
    assert rows(registry, t.Blob) == 0  # the transaction died with the writer
    report = registry.verify()
    assert report.ok, report
    if scenario == "upload":
        assert report.temp_removed >= 1  # the half-written temp file, cleaned up
        assert list(registry.store.list()) == []
    # Whatever complete blobs the tree writer stored are orphans: harmless, collectable.
    assert all(registry.store.hash_of(sha) == sha for sha in report.orphans)
    # The registry still works after the crash.
    registry.add_base_model("after", tmp_path / "model" if scenario == "tree" else _tiny(tmp_path),
                            source="test")
    assert registry.verify().ok


def _tiny(tmp_path: Path) -> Path:
    path = tmp_path / "tiny"
    path.mkdir()
    (path / "config.json").write_text("{}")
    return path
