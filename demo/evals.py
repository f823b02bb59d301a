"""The demo's before/after and export comparison as one eval on the tune API (OpenAI's
Evals API): one run per model and engine, graded by the ``physics_answer`` criterion, so
the report and the console's Evals page show the same numbers. The runs are answered by
``quanta tune runner`` through the serve the demo has up, as any tenant's would be."""

from __future__ import annotations

import time
import warnings
from typing import Any

from quanta_physics import held_out_problems
from quanta_physics.evals import completions_source, eval_request

# The SDK warns that OpenAI's hosted Evals shut down (2026-11-30): the reason these routes
# exist on Quanta, not something a demo user should read.
warnings.filterwarnings("ignore", message="The Evals API is deprecated",
                        category=DeprecationWarning)

DEMO_KEY = "quanta_demo"  # the eval's metadata key: the adapter it compares
TERMINAL = ("completed", "failed", "canceled")


def demo_eval(client: Any, adapter: str) -> str:
    """The id of the demo's eval for ``adapter``: created once, found again on a rerun."""
    for ev in client.evals.list(limit=100):
        if (ev.metadata or {}).get(DEMO_KEY) == adapter:
            return str(ev.id)
    created = client.evals.create(**eval_request(f"physics held-out: {adapter}",
                                                 {DEMO_KEY: adapter}))
    return str(created.id)


def run_models(client: Any, eval_id: str, engine: str, models: dict[str, str], n: int,
               max_tokens: int, timeout: float = 1800) -> list[dict[str, Any]]:
    """Run the eval over each of ``models`` (label -> model name) on the first ``n``
    held-out problems and wait for the runs; one result row per run."""
    problems = held_out_problems(n)
    started = time.monotonic()
    runs = {label: client.evals.runs.create(
                eval_id, name=f"{label} ({engine})",
                data_source=completions_source(model, problems, max_tokens))
            for label, model in models.items()}
    rows = []
    for label, run in runs.items():
        while run.status not in TERMINAL:
            if time.monotonic() - started > timeout:
                raise TimeoutError(f"eval run {run.id} still {run.status} after {timeout:.0f} s")
            time.sleep(1)
            run = client.evals.runs.retrieve(run.id, eval_id=eval_id)
        counts = run.result_counts
        rows.append({"engine": engine, "label": label, "model": models[label],
                     "run": run.id, "status": run.status, "passed": counts.passed,
                     "total": counts.total, "errored": counts.errored,
                     "tokens": sum(u.total_tokens for u in run.per_model_usage),
                     "report_url": run.report_url,
                     "error": run.error.message if run.error and run.error.message else ""})
    return rows
