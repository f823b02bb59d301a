"""The two things tune needs from quanta.data: validate uploaded files, read stored ones."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from quanta.data import DatasetError, read_examples, validate_upload

__all__ = ["DatasetError", "read_examples", "read_file", "validate_upload"]


def read_file(path: Path, format: str | None) -> list[dict[str, Any]]:
    return read_examples(path, format)
