"""The two things tune needs from quanta.data: validate uploaded files, read stored ones."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from quanta.data import DatasetError, read_examples, validate_upload

__all__ = ["DatasetError", "read_examples", "read_file", "validate_upload"]

# Which dataset formats each training method accepts (camel and alpaca normalise to chat).
METHOD_FORMATS = {"supervised": ("chat", "camel", "alpaca"), "dpo": ("preference",)}


def read_file(path: Path, format: str | None) -> list[dict[str, Any]]:
    return read_examples(path, format)
