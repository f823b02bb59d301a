"""Compute precision on this machine: is the dtype quanta.precision chooses the faster one?

Prints the detected capability and the chosen compute dtype, then for fp32 and bf16:

  training tokens/s   tune.train.trainer.train as the worker runs it (the trainer bench's setup:
                      bundled physics set, batch 8, max_length 256, LoRA r=16 on every
                      linear projection), stopped after --train-seconds (at least one step)
  eval tokens/s       batched greedy generation as the before/after evaluation runs it
                      (8 held-out problems, --eval-tokens new tokens each)
  vLLM tokens/s       `quanta serve --dtype X` on the base model, 16 concurrent streamed
                      completions x --serve-tokens output tokens

and exits 1 if the chosen dtype is slower than the other on any of them. To see a CPU
without native bf16 on one that has it, force the capability down:

    ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 python bench/precision.py

(vLLM's own kernels are picked from the CPU's flags, not from these variables, so its
numbers under them are an approximation of such a machine.) Run it alone: 2 shared cores.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from quanta.config import Settings, get_settings
from quanta.models import DEFAULT_MODEL_ID, model_path
from quanta.precision import resolve
from quanta.registry import Registry
from quanta.types import ComputeDtype

REPO = str(Path(__file__).resolve().parents[1])
if REPO not in sys.path:  # `python bench/x.py` puts bench/ there; tests.support needs the root
    sys.path.insert(0, REPO)

DTYPES = (ComputeDtype.FLOAT32, ComputeDtype.BFLOAT16)
EVAL_BATCH = 8


def training_tokens_per_s(base_dir: Path, dtype: ComputeDtype, steps: int, batch: int,
                          max_length: int, budget_s: float) -> dict[str, Any]:
    from quanta.data import read_examples
    from quanta_physics import bundled_physics_path
    from tune.plan import JobRequest
    from tune.plan import resolve as resolve_method
    from tune.train.methods.base import TrainHooks
    from tune.train.trainer import train

    examples = read_examples(bundled_physics_path())
    random.Random(0).shuffle(examples)
    examples = (examples * (steps * batch // len(examples) + 1))[:steps * batch]
    request = JobRequest(model=DEFAULT_MODEL_ID, training_file="bench", method={
        "type": "supervised", "supervised": {"hyperparameters": {
            "n_epochs": 1, "batch_size": batch, "learning_rate_multiplier": 1}}},
        quanta={"max_steps": steps, "checkpoint_every": 10**6, "max_length": max_length,
                "compute_dtype": dtype})
    started = time.monotonic()
    hooks = TrainHooks(should_stop=lambda: "budget" if time.monotonic() - started > budget_s
                       else None)
    with tempfile.TemporaryDirectory() as tmp:
        result = train(base_dir, resolve_method(request, len(examples)), examples, None,
                       Path(tmp), seed=0, hooks=hooks)
    out = {"tokens_per_s": result.trained_tokens / max(result.train_runtime, 1e-9),
           "steps": result.steps, "seconds": round(result.train_runtime, 1)}
    del result
    gc.collect()
    return out


def eval_tokens_per_s(base_dir: Path, dtype: ComputeDtype, new_tokens: int) -> dict[str, Any]:
    import torch

    from quanta_physics import held_out_problems, problem_to_chat
    from tune.train.modeling import load_base, load_tokenizer

    tokenizer = load_tokenizer(base_dir)
    tokenizer.padding_side = "left"
    model = load_base(base_dir, resolve(dtype, requested_by="bench")).eval()
    prompts = [tokenizer.apply_chat_template(
        [m for m in problem_to_chat(p)["messages"] if m["role"] != "assistant"],
        tokenize=False, add_generation_prompt=True) for p in held_out_problems(EVAL_BATCH)]
    enc = tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
    with torch.no_grad():
        model.generate(**enc, max_new_tokens=2, do_sample=False,
                       pad_token_id=tokenizer.pad_token_id)  # warm-up
        started = time.perf_counter()
        out = model.generate(**enc, max_new_tokens=new_tokens, min_new_tokens=new_tokens,
                             do_sample=False, pad_token_id=tokenizer.pad_token_id)
        seconds = time.perf_counter() - started
    generated = (out.shape[1] - enc["input_ids"].shape[1]) * out.shape[0]
    del model
    gc.collect()
    return {"tokens_per_s": generated / seconds, "seconds": round(seconds, 1)}


def vllm_tokens_per_s(home: Path, dtype: ComputeDtype, max_tokens: int,
                      startup_timeout: float) -> dict[str, Any]:
    from tests.support.load import throughput
    from tests.support.servers import start_serve

    started = time.perf_counter()
    server = start_serve(home, "--dtype", str(dtype), grpc=False, anonymous=True,
                         timeout=startup_timeout, log_name=f"bench-precision-serve-{dtype}.log")
    try:
        up = time.perf_counter() - started
        tps = asyncio.run(throughput(server.url, {}, [DEFAULT_MODEL_ID], max_tokens))
    finally:
        server.stop()
    return {"tokens_per_s": tps, "startup_s": round(up, 1)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, help="QUANTA_HOME (default: the settings')")
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--train-seconds", type=float, default=60,
                        help="stop each training run after the step that passes this")
    parser.add_argument("--eval-tokens", type=int, default=32)
    parser.add_argument("--serve-tokens", type=int, default=64)
    parser.add_argument("--startup-timeout", type=float, default=1200)
    parser.add_argument("--skip", action="append", default=[],
                        choices=("training", "eval", "vllm"), help="leave a measure out")
    args = parser.parse_args()

    settings = Settings(home=args.home) if args.home else get_settings()
    home = settings.resolved_home
    base_dir = model_path(Registry.open(settings))
    chosen = resolve(settings=settings)
    flags = {"ATEN_CPU_CAPABILITY": os.environ.get("ATEN_CPU_CAPABILITY"),
             "ONEDNN_MAX_CPU_ISA": os.environ.get("ONEDNN_MAX_CPU_ISA")}
    print(f"capability: {chosen.capability.describe()}"
          + "".join(f"  {k}={v}" for k, v in flags.items() if v), flush=True)
    print(f"chosen: {chosen.describe()}", flush=True)

    measures = {
        "training": lambda d: training_tokens_per_s(base_dir, d, args.steps, args.batch_size,
                                                    args.max_length, args.train_seconds),
        "eval": lambda d: eval_tokens_per_s(base_dir, d, args.eval_tokens),
        "vllm": lambda d: vllm_tokens_per_s(home, d, args.serve_tokens, args.startup_timeout),
    }
    results: dict[str, dict[str, dict[str, Any]]] = {}
    for name, measure in measures.items():
        if name in args.skip:
            continue
        results[name] = {}
        for dtype in DTYPES:
            results[name][str(dtype)] = measure(dtype)
            detail = ", ".join(f"{k} {v}" for k, v in results[name][str(dtype)].items()
                               if k != "tokens_per_s")
            print(f"{name:>9} {dtype!s:>9}: {results[name][str(dtype)]['tokens_per_s']:8.1f} "
                  f"tokens/s  ({detail})", flush=True)

    slower = []
    for name, by_dtype in results.items():
        fastest = max(by_dtype, key=lambda d: by_dtype[d]["tokens_per_s"])
        ratio = by_dtype["bfloat16"]["tokens_per_s"] / by_dtype["float32"]["tokens_per_s"]
        verdict = "ok" if fastest == chosen.dtype else f"SLOWER than {fastest}"
        print(f"{name:>9}: bf16/fp32 = {ratio:.2f}; chosen {chosen.dtype}: {verdict}")
        if fastest != chosen.dtype:
            slower.append(name)
    print(json.dumps({"precision": chosen.as_dict(), "forced": flags, "results": results,
                      "chosen_is_fastest": not slower}, default=str))
    return 1 if slower else 0


if __name__ == "__main__":
    sys.exit(main())
