"""Experiment trackers for tests: a real MLflow tracking server on 127.0.0.1, and a
reader for the run file wandb writes in offline mode (its Python SDK no longer reads
them back; the format is LevelDB's log: 32 KiB blocks of checksummed chunks, here of
``wandb_internal_pb2.Record`` messages)."""

from __future__ import annotations

import json
import shutil
import struct
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from quanta.processes import free_port, start_process, stop_process, wait_healthy

_BLOCK = 32 * 1024
_HEADER = 7  # b":W&B", a 2-byte magic, a version byte; a chunk header is 7 bytes too
_FULL, _LAST = 1, 4


@contextmanager
def mlflow_server(root: Path, timeout: float = 120) -> Iterator[str]:
    """``mlflow server`` with a SQLite backend under ``root``; yields its URL."""
    mlflow = shutil.which("mlflow", path=str(Path(sys.executable).parent)) or "mlflow"
    port = free_port()
    log = root / "mlflow.log"
    proc = start_process([mlflow, "server", "--host", "127.0.0.1", "--port", str(port),
                          "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}",
                          "--default-artifact-root", str(root / "artifacts"),
                          "--workers", "1"], log)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(f"{url}/health", proc, timeout, log)
        yield url
    finally:
        stop_process(proc, grace=10)


@dataclass
class OfflineRun:
    """What a wandb offline run recorded."""

    run_id: str = ""
    project: str = ""
    config: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)
    exit_code: int | None = None


def _records(path: Path) -> Iterator[Any]:
    from wandb.proto import wandb_internal_pb2

    raw = path.read_bytes()
    pos, chunks = _HEADER, b""
    while pos + _HEADER <= len(raw):
        left = _BLOCK - pos % _BLOCK
        if left < _HEADER:  # a block's tail too short for a chunk header is padding
            pos += left
            continue
        _crc, length, kind = struct.unpack("<IHB", raw[pos:pos + _HEADER])
        chunks += raw[pos + _HEADER:pos + _HEADER + length]
        pos += _HEADER + length
        if kind in (_FULL, _LAST):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(chunks)
            chunks = b""
            yield record


def _key(item: Any) -> str:
    return item.key or ".".join(item.nested_key)


def read_offline_run(run_dir: Path) -> OfflineRun:
    """The run in ``run_dir`` (``wandb/offline-run-<time>-<id>``)."""
    run = OfflineRun()
    for record in _records(next(run_dir.glob("*.wandb"))):
        kind = record.WhichOneof("record_type")
        if kind == "run":
            run.run_id, run.project = record.run.run_id, record.run.project
            run.config.update({_key(i): json.loads(i.value_json)
                               for i in record.run.config.update})
        elif kind == "config":
            run.config.update({_key(i): json.loads(i.value_json) for i in record.config.update})
        elif kind == "history":
            run.history.append({_key(i): json.loads(i.value_json) for i in record.history.item})
        elif kind == "summary":
            run.summary.update({_key(i): json.loads(i.value_json)
                                for i in record.summary.update})
        elif kind == "exit":
            run.exit_code = record.exit.exit_code
    return run


def offline_runs(wandb_dir: Path, run_id: str) -> list[OfflineRun]:
    """Every offline run recorded under ``wandb_dir`` for ``run_id`` (one per attempt)."""
    runs = sorted((wandb_dir / "wandb").glob(f"offline-run-*-{run_id}"))
    return [read_offline_run(d) for d in runs]
