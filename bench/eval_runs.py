"""Eval runs through serve: items per second of a completions run answered with the
runner's concurrency, against the same items asked one at a time, in one run.

    python bench/eval_runs.py --model-home /tmp/bench-home [--n 200] [--max-tokens 64]

The eval is the physics one the demo runs (``quanta_physics.evals``: held-out problems,
the ``physics_answer`` criterion); both runs go through the tune API's Evals routes and an
eval runner (``tune.evals.EvalWorker``) asking a real ``quanta serve`` (vLLM) as a client.
Prefix caching is off so the second run gains nothing from the first's prompts. The CPU
flags are printed with the figures.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path
from typing import Any

REPO = str(Path(__file__).resolve().parents[1])
if REPO not in sys.path:  # `python bench/x.py` puts bench/ there; the root holds `bench`
    sys.path.insert(0, REPO)

from bench.physics_accuracy import cpu_flags
from quanta.config import Settings
from quanta.registry import Registry


def timed_run(client: Any, registry: Registry, eval_id: str, name: str,
              source: dict[str, Any], concurrency: int) -> tuple[float, Any]:
    """Create a run, let a runner of ``concurrency`` answer it; (seconds, the run)."""
    from tune.evals import EvalWorker

    run = client.evals.runs.create(eval_id, name=name, data_source=source)
    started = time.monotonic()
    EvalWorker(registry, f"bench-{concurrency}", concurrency=concurrency).run_once()
    seconds = time.monotonic() - started
    return seconds, client.evals.runs.retrieve(run.id, eval_id=eval_id)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model-home", type=Path, required=True)
    parser.add_argument("--model", default=None, help="base or ft: model (default: the base)")
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--concurrency", type=int, default=None,
                        help="the runner's (default: QUANTA_EVAL_CONCURRENCY)")
    args = parser.parse_args()
    # OpenAI's SDK warns that its hosted Evals shut down: the reason this API exists here.
    warnings.filterwarnings("ignore", message="The Evals API is deprecated",
                            category=DeprecationWarning)

    import openai

    from quanta.models import DEFAULT_MODEL_ID, ensure_model
    from quanta.tenancy import create_key, revoke_key
    from quanta_physics import held_out_problems
    from quanta_physics.evals import completions_source, eval_request
    from tests.support.servers import serve_api, start_base_serve
    from tune.api.app import create_app

    settings = Settings(home=args.model_home)
    registry = Registry.open(settings)
    ensure_model(registry)  # the bundled SmolLM2, imported once into this home
    concurrency = args.concurrency or settings.eval_concurrency
    model = args.model or DEFAULT_MODEL_ID
    key_row, key = create_key(registry, settings.default_tenant, "bench eval_runs")
    server = start_base_serve(args.model_home, DEFAULT_MODEL_ID, "--no-enable-prefix-caching",
                              grpc=False, log_name="bench-eval-runs.log")
    try:
        with serve_api(create_app(settings, registry)) as tune_url:
            client = openai.OpenAI(base_url=f"{tune_url}/v1", api_key=key, max_retries=0)
            ev = client.evals.create(**eval_request("bench: held-out physics"))
            problems = held_out_problems(args.n)
            source = completions_source(model, problems, args.max_tokens)
            warm = completions_source(model, problems[:2], args.max_tokens)
            timed_run(client, registry, ev.id, "warm-up", warm, 2)
            results = {label: timed_run(client, registry, ev.id, label, source, c)
                       for label, c in ((f"concurrency {concurrency}", concurrency),
                                        ("one at a time", 1))}
            client.evals.delete(ev.id)
    finally:
        server.stop()
        revoke_key(registry, key_row.id)

    print(f"\n{model}: a {args.n}-item completions eval run through serve (vLLM, "
          f"max {args.max_tokens} tokens), CPU flags: {cpu_flags()}")
    print(f"{'runner':<18}{'status':>11}{'seconds':>9}{'items/s':>9}{'passed':>8}"
          f"{'tokens':>8}")
    rates = {}
    for label, (seconds, run) in results.items():
        rates[label] = run.result_counts.total / seconds
        tokens = sum(u.total_tokens for u in run.per_model_usage)
        print(f"{label:<18}{run.status:>11}{seconds:>9.1f}{rates[label]:>9.2f}"
              f"{run.result_counts.passed:>8}{tokens:>8}")
    concurrent, single = rates.values()
    print(f"ratio (concurrency {concurrency} / one at a time): {concurrent / single:.2f}x")


if __name__ == "__main__":
    main()
