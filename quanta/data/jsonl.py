"""Write JSON Lines: records as one compact UTF-8 object per line, stable across runs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def to_jsonl(records: list[dict[str, Any]]) -> bytes:
    """Records as UTF-8 JSON Lines (byte-identical for the same records)."""
    lines = [json.dumps(r, ensure_ascii=False, separators=(", ", ": ")) for r in records]
    return ("\n".join(lines) + "\n").encode("utf-8")


def write_jsonl(records: list[dict[str, Any]], path: Path | str) -> Path:
    """Write records as JSON Lines to ``path`` (parents created); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(to_jsonl(records))
    return path
