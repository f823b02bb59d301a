"""What every ``quanta`` command shares: the terminal, user errors, and how values print.

The core CLI (``quanta.cli``) and each service's commands (``tune.cli``, ``quantize.cli``,
``serve.cli``, ``demo.cli``) import these; none imports another's CLI module.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime
from typing import Any

from rich.console import Console

from quanta.registry import Registry

console = Console()
err_console = Console(stderr=True)


class UsageError(Exception):
    """A user mistake the CLI reports with exit code 2."""


def open_registry() -> Registry:
    return Registry.open()


def fmt_time(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value else "-"


def fmt_bytes(size: int | None) -> str:
    if size is None:
        return "-"
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024  # type: ignore[assignment]
    return str(size)


def fmt_metric(value: Any) -> str:
    """A metric in a table cell: floats to 4 significant digits, missing ones as ``-``."""
    return f"{value:.4g}" if isinstance(value, float) else str(value if value is not None else "-")


def print_json(value: Any) -> None:
    console.print_json(json.dumps(value, default=str))


def row_dict(record: Any) -> dict[str, Any]:
    """A registry record's fields as a dict (for ``show`` commands)."""
    return {f.name: getattr(record, f.name) for f in dataclasses.fields(record)}
