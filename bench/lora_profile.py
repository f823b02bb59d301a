"""Where a multi-LoRA engine step spends its time on CPU: torch.profiler over vLLM.

Runs vLLM's engine in this process (``VLLM_ENABLE_V1_MULTIPROCESSING=0``, so the
profiler sees the model runner) on SmolLM2 with 8 rank-16 adapters (q/k/v/o, the
serving bench's), and profiles two phases separately for vLLM's own CPU LoRA ops and
for Quanta's (``serve.lora_ops``):

  prefill: 16 prompts, one output token each (mostly prompt processing)
  decode:  16 sequences, 8 adapters mixed, 64 output tokens each (mostly decode steps)

For each it prints the share of time inside the LoRA layers (``add_lora_linear`` and
``add_lora_logits``, marked with ``record_function``) and the top operators by self CPU
time, then tokens/s of the decode phase without the profiler.

Usage (alone, under the heavy lock; ~5 minutes on 2 cores):
  flock /tmp/quanta-heavy.lock python bench/lora_profile.py [--home DIR] [--ops vllm quanta]
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = str(Path(__file__).resolve().parents[1])
if REPO not in sys.path:  # `python bench/x.py` puts bench/ there; tests.support needs the root
    sys.path.insert(0, REPO)

os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("VLLM_NO_USAGE_STATS", "1")

N_ADAPTERS = 8
N_SEQS = 16
PROMPT = "Explain, step by step, why a heavier object does not fall faster in a vacuum."
LORA_MARKS = ("add_lora_linear", "add_lora_logits")


def mark(method: Callable[..., Any], label: str) -> Callable[..., Any]:
    import torch

    @functools.wraps(method)
    def marked(*args: Any, **kwargs: Any) -> Any:
        with torch.profiler.record_function(label):
            return method(*args, **kwargs)

    return marked


def mark_lora_methods(wrapper_cls: type) -> None:
    for name in LORA_MARKS:
        setattr(wrapper_cls, name, mark(getattr(wrapper_cls, name), f"lora::{name}"))


def adapters(home: Path) -> list[Any]:
    """The serving bench's adapters (made once under ``home``) as LoRA requests."""
    from vllm.lora.request import LoRARequest

    from quanta.config import Settings
    from quanta.models import ensure_model, model_path
    from quanta.registry import Registry
    from tests.support.fixtures import make_adapter

    registry = Registry.open(Settings(home=home))
    ensure_model(registry)
    base_dir = model_path(registry)
    requests = []
    for i in range(N_ADAPTERS):
        out = home / "profile-adapters" / f"a{i}"
        if not (out / "adapter_config.json").exists():
            make_adapter(base_dir, out, seed=100 + i, r=16,
                         target_modules=("q_proj", "k_proj", "v_proj", "o_proj"))
        requests.append(LoRARequest(f"a{i}", i + 1, str(out)))
    return [base_dir, *requests]


def profile(llm: Any, loras: list[Any], max_tokens: int) -> tuple[float, str]:
    """(share of CPU time in the LoRA layers, the top-operator table) for one generate."""
    import torch
    from vllm import SamplingParams

    params = SamplingParams(max_tokens=max_tokens, temperature=0, ignore_eos=True)
    prompts = [f"{PROMPT} ({i})" for i in range(N_SEQS)]
    requests = [loras[i % len(loras)] for i in range(N_SEQS)]
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        llm.generate(prompts, params, lora_request=requests, use_tqdm=False)
    events = prof.key_averages()
    lora = sum(e.cpu_time_total for e in events if e.key.startswith("lora::"))
    forward = sum(e.self_cpu_time_total for e in events)
    table = events.table(sort_by="self_cpu_time_total", row_limit=12, max_name_column_width=40)
    return lora / max(forward, 1), table


def decode_rate(llm: Any, loras: list[Any], max_tokens: int) -> float:
    from vllm import SamplingParams

    params = SamplingParams(max_tokens=max_tokens, temperature=0, ignore_eos=True)
    prompts = [f"{PROMPT} ({i})" for i in range(N_SEQS)]
    requests = [loras[i % len(loras)] for i in range(N_SEQS)]
    started = time.perf_counter()
    outputs = llm.generate(prompts, params, lora_request=requests, use_tqdm=False)
    tokens = sum(len(o.outputs[0].token_ids) for o in outputs)
    return tokens / (time.perf_counter() - started)


def run(ops: str, base_dir: Path, loras: list[Any], max_tokens: int) -> dict[str, Any]:
    from vllm.lora.punica_wrapper.punica_cpu import PunicaWrapperCPU

    from quanta.precision import resolve
    from tests.support.fixtures import offline_llm

    if ops == "quanta":
        from serve import lora_ops

        lora_ops.install()
        mark_lora_methods(lora_ops.GroupedPunicaWrapperCPU)
    else:
        mark_lora_methods(PunicaWrapperCPU)
    with offline_llm(model=str(base_dir), enable_lora=True, max_loras=N_ADAPTERS,
                     max_lora_rank=16, max_model_len=512,
                     dtype=str(resolve("auto").dtype)) as llm:
        llm.generate([PROMPT], lora_request=loras[0], use_tqdm=False)  # warm-up
        prefill_share, prefill_table = profile(llm, loras, 1)
        decode_share, decode_table = profile(llm, loras, max_tokens)
        rate = decode_rate(llm, loras, max_tokens)
        rate_base = decode_rate(llm, [None], max_tokens)
    return {"ops": ops, "prefill_share": prefill_share, "decode_share": decode_share,
            "prefill_table": prefill_table, "decode_table": decode_table,
            "tokens_per_s": rate, "base_tokens_per_s": rate_base}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, help="QUANTA_HOME (default: a temp dir)")
    parser.add_argument("--ops", choices=("vllm", "quanta"), required=True,
                        help="one per process: vLLM builds its wrapper once")
    parser.add_argument("--max-tokens", type=int, default=64)
    args = parser.parse_args()
    home = args.home or Path(tempfile.mkdtemp(prefix="quanta-profile-"))
    base_dir, *loras = adapters(home)
    result = run(args.ops, base_dir, loras, args.max_tokens)
    print(f"\n=== {result['ops']} ops: prefill ({N_SEQS} prompts, 1 token) ===")
    print(f"time in LoRA layers: {result['prefill_share']:.0%} of CPU time")
    print(result["prefill_table"])
    print(f"=== {result['ops']} ops: decode ({N_SEQS} sequences over {N_ADAPTERS} adapters, "
          f"{args.max_tokens} tokens) ===")
    print(f"time in LoRA layers: {result['decode_share']:.0%} of CPU time")
    print(result["decode_table"])
    print(f"{result['ops']} ops: {result['tokens_per_s']:.1f} output tokens/s with "
          f"{N_ADAPTERS} adapters mixed, {result['base_tokens_per_s']:.1f} on the base "
          f"(ratio {result['tokens_per_s'] / result['base_tokens_per_s']:.2f}), "
          f"{N_SEQS} sequences, no profiler")


if __name__ == "__main__":
    main()
