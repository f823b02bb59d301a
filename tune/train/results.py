"""A finished job's results file: OpenAI's ``fine-tune-results`` CSV of step metrics.

One row per logged step (the newest value wins when a resumed attempt logged a step
again), one column per metric the job reported, in the order first seen: ``step``, then
OpenAI's names (``train_loss``, ``train_mean_token_accuracy``, ``valid_loss``, ...) and
Quanta's (``train_reward_mean`` for reinforcement, ...). Listed in the job's
``result_files``; downloadable through ``/v1/files/{id}/content``.
"""

from __future__ import annotations

import csv
import io
import tempfile
from pathlib import Path
from typing import Any

from quanta.registry import Registry
from quanta.types import EventType, FilePurpose


def step_rows(events: list[dict[str, Any]]) -> tuple[list[str], list[dict[str, Any]]]:
    """The CSV's columns and rows, from metrics events' data (oldest first)."""
    by_step: dict[int, dict[str, Any]] = {}
    columns = ["step"]
    for data in events:
        step = data.get("step")
        if not isinstance(step, int):
            continue
        row = by_step.setdefault(step, {"step": step})
        for name, value in data.items():
            if name == "step" or not isinstance(value, int | float) or isinstance(value, bool):
                continue
            row[name] = value
            if name not in columns:
                columns.append(name)
    return columns, [by_step[step] for step in sorted(by_step)]


def results_csv(events: list[dict[str, Any]]) -> str:
    columns, rows = step_rows(events)
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, restval="", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def store_results(registry: Registry, job_id: str, tenant_id: str) -> str:
    """Write the job's results file into the registry, or find the one an earlier attempt
    wrote before it died; returns its file id."""
    filename = f"{job_id}-step_metrics.csv"
    for row in registry.list_files(tenant_id):
        if row.filename == filename and row.purpose == FilePurpose.FINE_TUNE_RESULTS:
            return row.id
    events = [e.data for e in reversed(registry.jobs.events(job_id, type=EventType.METRICS))
              if e.data]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "step_metrics.csv"
        path.write_text(results_csv(events))
        row = registry.add_file(tenant_id, filename,
                                FilePurpose.FINE_TUNE_RESULTS, path, format="csv",
                                records=len(step_rows(events)[1]))
    return row.id
