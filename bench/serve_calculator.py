"""What calculator decoding costs a served request: time to first token and tokens/s,
with and without, through a real ``quanta serve``.

Starts ``quanta serve`` (``--engine vllm`` or ``llama-cpp``) over ``--model-home`` (a
demo's data directory) and asks the adapter (default: the newest one trained with
calculation traces) ``--n`` held-out physics problems, one at a time, streamed, greedy,
once with calculator decoding (the adapter's default) and once with
``"quanta": {"calculator": false}``. Prints TTFT p50 and output tokens/s for each, and the
calculations per answer.

    python bench/serve_calculator.py --model-home quanta-data --engine vllm
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from quanta.config import Settings
from quanta.registry import Registry
from quanta_physics import held_out_problems, problem_prompt

REPO = str(Path(__file__).resolve().parents[1])
if REPO not in sys.path:  # `python bench/x.py` puts bench/ there; tests.support needs the root
    sys.path.insert(0, REPO)


def ask(client: Any, model: str, messages: list[dict], calculator: bool, max_tokens: int
        ) -> tuple[float, float, int, str]:
    """TTFT (s), total (s), completion tokens and text of one streamed chat completion."""
    started = time.perf_counter()
    first = None
    text, tokens = "", 0
    stream = client.chat.completions.create(
        model=model, messages=messages, temperature=0, max_tokens=max_tokens, stream=True,
        stream_options={"include_usage": True},
        extra_body={"quanta": {"calculator": calculator}})
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            first = first or time.perf_counter()
            text += chunk.choices[0].delta.content
        if chunk.usage:
            tokens = chunk.usage.completion_tokens
    end = time.perf_counter()
    return (first or end) - started, end - started, tokens, text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model-home", type=Path, required=True)
    parser.add_argument("--engine", default="vllm", choices=["vllm", "llama-cpp"])
    parser.add_argument("--adapter", default=None)
    parser.add_argument("--n", type=int, default=12)
    parser.add_argument("--max-tokens", type=int, default=128)
    args = parser.parse_args()

    from openai import OpenAI

    from quanta.calculator import calculations
    from quanta.tenancy import create_key
    from tests.support.fixtures import calculating_adapter
    from tests.support.servers import start_serve

    registry = Registry.open(Settings(home=args.model_home))
    tenant = registry.settings.default_tenant
    adapter = calculating_adapter(registry, tenant, args.adapter)
    key = create_key(registry, tenant)[1]
    extra = ["--engine", args.engine] + (["--gguf-format", "gguf-q4_k_m"]
                                         if args.engine == "llama-cpp" else [])
    server = start_serve(args.model_home, *extra, grpc=False, log_name="bench-calculator.log")
    results: dict[str, Any] = {}
    try:
        client = OpenAI(base_url=f"{server.url}/v1", api_key=key, max_retries=0, timeout=300)
        problems = held_out_problems(args.n)
        chats = [problem_prompt(p) for p in problems]
        ask(client, adapter.name, chats[0], True, 8)  # load the adapter, warm the engine
        for calculator in (False, True):
            runs = [ask(client, adapter.name, chat, calculator, args.max_tokens)
                    for chat in chats]
            label = "calculator" if calculator else "plain"
            results[label] = {
                "ttft_p50_s": statistics.median(r[0] for r in runs),
                "tokens_per_s": sum(r[2] for r in runs) / sum(r[1] for r in runs),
                "calculations_per_answer": statistics.mean(len(calculations(r[3]))
                                                           for r in runs)}
    finally:
        server.stop()
    print(f"\n{adapter.name} on {args.engine}, {args.n} held-out problems, one at a time")
    for label, r in results.items():
        print(f"{label:>10}: TTFT p50 {r['ttft_p50_s'] * 1000:.0f} ms, "
              f"{r['tokens_per_s']:.1f} output tokens/s, "
              f"{r['calculations_per_answer']:.1f} calculations per answer")
    plain, calc = results["plain"], results["calculator"]
    print(f"calculator / plain: TTFT {calc['ttft_p50_s'] / plain['ttft_p50_s']:.2f}x, "
          f"tokens/s {calc['tokens_per_s'] / plain['tokens_per_s']:.2f}x")
    print(json.dumps({"adapter": adapter.name, "engine": args.engine, **results}))


if __name__ == "__main__":
    main()
