"""The two things tune needs from quanta.data: validate uploaded bytes, read stored files.

Imported through one module so the rest of tune does not care whether ``quanta.data``
re-exports them yet (its package ``__init__`` is written in parallel).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

try:
    from quanta.data import DatasetError, read_examples, validate_bytes
except ImportError:  # pragma: no cover - before quanta/data/__init__.py lands
    from quanta.data.errors import DatasetError
    from quanta.data.validate import read_examples, validate_bytes

__all__ = ["DatasetError", "read_examples", "read_file", "validate_bytes"]

# Which dataset formats each training method accepts (camel and alpaca normalise to chat).
METHOD_FORMATS = {"supervised": ("chat", "camel", "alpaca"), "dpo": ("preference",)}


def read_file(path: Path, format: str | None) -> list[dict[str, Any]]:
    return read_examples(path, format)
