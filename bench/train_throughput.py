"""Training throughput: Quanta's trainer vs a plain transformers Trainer + peft baseline.

Same machine, same base model (SmolLM2-135M-Instruct from the registry), same examples
(the bundled physics SFT set, one epoch of ``steps * batch`` examples, identical token ids
and assistant-only labels), same LoRA (r=16 on every linear projection), same batch size
and learning rate. The baseline is what a plain script does: ``from_pretrained`` with the
default dtype, ``get_peft_model``, ``Trainer`` with default arguments, and batches padded
to their longest example (no packing). Quanta's trainer is ``tune.train.trainer.train`` as the
worker runs it (trl SFTTrainer, fused LM head on labelled positions only, padding-free
batches, bf16 autocast, gradient checkpointing off).

Tokens/s = real (non-pad) tokens trained / ``train_runtime``. Run it under the heavy lock:

    flock /tmp/quanta-heavy.lock python bench/train_throughput.py
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tune.plan import TrainingPlan


def _examples(n: int, seed: int) -> list[dict[str, Any]]:
    from quanta.data import read_examples
    from quanta_physics import bundled_physics_path

    examples = read_examples(bundled_physics_path())
    random.Random(seed).shuffle(examples)
    return (examples * (n // len(examples) + 1))[:n]


def _plan(batch: int, steps: int, max_length: int, **quanta: Any) -> TrainingPlan:
    from tune.plan import JobRequest, resolve

    request = JobRequest(model="m", training_file="f", method={
        "type": "supervised", "supervised": {"hyperparameters": {
            "n_epochs": 1, "batch_size": batch, "learning_rate_multiplier": 1}}},
        quanta={"max_steps": steps, "checkpoint_every": 10**6, "max_length": max_length,
                **quanta})
    return resolve(request, steps * batch)


def run_quanta(base_dir: Path, examples: list[dict[str, Any]], batch: int, steps: int,
               max_length: int, **quanta: Any) -> dict[str, Any]:
    from tune.train.trainer import train

    with tempfile.TemporaryDirectory() as tmp:
        result = train(base_dir, _plan(batch, steps, max_length, **quanta), examples, None,
                       Path(tmp), seed=0)
    losses = [m["train_loss"] for m in result.history if "train_loss" in m]
    out = {"runtime_s": result.train_runtime, "steps": result.steps,
           "first_loss": losses[0], "last_loss": losses[-1]}
    del result
    gc.collect()
    return out


def run_baseline(base_dir: Path, examples: list[dict[str, Any]], batch: int, steps: int,
                 max_length: int) -> dict[str, Any]:
    import torch
    from datasets import Dataset
    from peft import get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer, Trainer, TrainingArguments

    from tune.plan import LoraOptions
    from tune.train.dataset import tokenize_examples
    from tune.train.modeling import lora_config

    tokenizer = AutoTokenizer.from_pretrained(base_dir)
    rows = tokenize_examples(tokenizer, examples, max_length)
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(base_dir),
                           lora_config(LoraOptions()))
    pad = tokenizer.pad_token_id

    def collate(batch_rows: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        width = max(len(r["input_ids"]) for r in batch_rows)
        return {
            "input_ids": torch.tensor([r["input_ids"] + [pad] * (width - len(r["input_ids"]))
                                       for r in batch_rows]),
            "attention_mask": torch.tensor([[1] * len(r["input_ids"])
                                            + [0] * (width - len(r["input_ids"]))
                                            for r in batch_rows]),
            "labels": torch.tensor([r["labels"] + [-100] * (width - len(r["labels"]))
                                    for r in batch_rows]),
        }

    with tempfile.TemporaryDirectory() as tmp:
        args = TrainingArguments(output_dir=tmp, per_device_train_batch_size=batch,
                                 max_steps=steps,
                                 learning_rate=_plan(batch, steps, max_length).learning_rate,
                                 logging_steps=1, save_strategy="no", report_to=[], seed=0,
                                 use_cpu=not torch.cuda.is_available(), disable_tqdm=True)
        trainer = Trainer(model=model, args=args, train_dataset=Dataset.from_list(rows),
                          data_collator=collate)
        output = trainer.train()
        losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    out = {"runtime_s": float(output.metrics["train_runtime"]), "steps": steps,
           "first_loss": losses[0], "last_loss": losses[-1],
           "dtype": str(next(model.base_model.model.parameters()).dtype)}
    del trainer, model
    gc.collect()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=2,
                        help="alternate baseline and Quanta runs this many times each")
    parser.add_argument("--variants", action="store_true",
                        help="also time Quanta with padded and length-grouped batches")
    ns = parser.parse_args()

    import torch

    from quanta.models import model_path
    from quanta.registry import Registry
    from tune.train.dataset import count_tokens, tokenize_examples
    from tune.train.modeling import load_tokenizer

    base_dir = model_path(Registry.open())
    examples = _examples(ns.steps * ns.batch_size, seed=0)
    rows = tokenize_examples(load_tokenizer(base_dir), examples, ns.max_length)
    tokens = count_tokens(rows)
    padded = sum(max(len(r["input_ids"]) for r in rows[i:i + ns.batch_size]) * len(
        rows[i:i + ns.batch_size]) for i in range(0, len(rows), ns.batch_size))
    print(f"data: {len(rows)} examples, {tokens} tokens (mean {tokens / len(rows):.0f}, "
          f"padded batches would hold {padded}), batch {ns.batch_size}, {ns.steps} steps, "
          f"torch threads {torch.get_num_threads()}", flush=True)

    results: dict[str, dict[str, Any]] = {}
    all_runs: dict[str, list[float]] = {}
    # Alternate the two so a neighbour's load burst (2 shared cores) hits both alike.
    runs: list[tuple[str, Any]] = [
        ("baseline", lambda: run_baseline(base_dir, examples, ns.batch_size, ns.steps,
                                          ns.max_length)),
        ("quanta", lambda: run_quanta(base_dir, examples, ns.batch_size, ns.steps,
                                      ns.max_length)),
    ] * max(1, ns.repeats)
    if ns.variants:
        runs += [
            ("quanta-padded", lambda: run_quanta(base_dir, examples, ns.batch_size, ns.steps,
                                                 ns.max_length, padding_free=False)),
            ("quanta-grouped", lambda: run_quanta(base_dir, examples, ns.batch_size, ns.steps,
                                                  ns.max_length, padding_free=False,
                                                  group_by_length=True)),
        ]
    for name, run in runs:
        started = time.perf_counter()
        result = run()
        result["tokens_per_s"] = tokens / result["runtime_s"]
        result["wall_s"] = time.perf_counter() - started
        all_runs.setdefault(name, []).append(round(result["tokens_per_s"], 1))
        if name not in results or result["tokens_per_s"] > results[name]["tokens_per_s"]:
            results[name] = result  # the least disturbed run of each
        print(f"{name:>15}: {result['tokens_per_s']:7.1f} tokens/s  "
              f"({result['runtime_s']:.1f} s train, loss {result['first_loss']:.3f} -> "
              f"{result['last_loss']:.3f})", flush=True)
    ratio = results["quanta"]["tokens_per_s"] / results["baseline"]["tokens_per_s"]
    print(f"best of {ns.repeats}: baseline {results['baseline']['tokens_per_s']:.1f} tokens/s, "
          f"quanta {results['quanta']['tokens_per_s']:.1f} tokens/s")
    print(f"ratio quanta/baseline: {ratio:.2f}x (target >= 1.5x)")
    print(json.dumps({"tokens": tokens, "ratio": round(ratio, 3), "runs": all_runs, **results},
                     default=str))


if __name__ == "__main__":
    main()
