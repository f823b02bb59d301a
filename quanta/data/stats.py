"""Summary numbers for a dataset, so a user sees what they are about to train on."""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path
from typing import Any

from quanta.calculator import has_traces
from quanta.data.validate import validate_file

CHARS_PER_TOKEN = 4


def example_messages(example: dict[str, Any]) -> list[dict[str, Any]]:
    """All messages of a normalised example (a preference example's prompt, chosen, rejected)."""
    if "messages" in example:
        return list(example["messages"])
    return [*example["prompt"], *example["chosen"], *example["rejected"]]


def writes_calculations(example: dict[str, Any]) -> bool:
    """Whether an example's answers write calculation traces (``quanta.calculator``)."""
    return any(m["role"] == "assistant" and has_traces(m["content"] or "")
               for m in example_messages(example))


def dataset_stats(path: Path | str, format: str | None = None) -> dict[str, Any]:
    """Records, format, topic and role counts, mean/max characters and approximate tokens.

    Tokens are estimated as characters / 4 (no tokenizer needed). Raises
    ``DatasetError`` when the file does not validate.
    """
    report = validate_file(path, format)
    report.raise_for_errors()
    roles: Counter[str] = Counter()
    lengths: list[int] = []
    for example in report.examples:
        messages = example_messages(example)
        roles.update(m["role"] for m in messages)
        lengths.append(sum(len(m["content"]) for m in messages))
    mean_chars = sum(lengths) / len(lengths) if lengths else 0.0
    max_chars = max(lengths, default=0)
    stats: dict[str, Any] = {
        "path": str(path),
        "format": report.format,
        "records": len(report.examples),
        "roles": {role: roles[role] for role in ("system", "user", "assistant") if roles[role]},
        "mean_chars": round(mean_chars, 1),
        "max_chars": max_chars,
        "mean_tokens": round(mean_chars / CHARS_PER_TOKEN, 1),
        "max_tokens": math.ceil(max_chars / CHARS_PER_TOKEN),
    }
    calculating = sum(writes_calculations(e) for e in report.examples)
    if calculating:
        stats["with_calculations"] = calculating
    if report.topics:
        stats["topics"] = report.topics
    return stats
