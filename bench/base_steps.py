"""Training step time per base model, in one run on this machine: the demo's step (batch
8, up to 256 tokens, the base's LoRA targets at r=16, the compute dtype the worker picks)
on the same bundled physics examples, through the trainer the worker runs.

    python bench/base_steps.py --model-home quanta-data --base smollm2-135m-instruct \\
        --base gemma3-270m

Bases are measured one after another, never side by side; the CPU flags are printed with
the figures, since step times differ about 2x between machines with the same flags.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

REPO = str(Path(__file__).resolve().parents[1])
if REPO not in sys.path:  # `python bench/x.py` puts bench/ there; the root holds `bench`
    sys.path.insert(0, REPO)

from bench.physics_accuracy import cpu_flags
from quanta.config import Settings
from quanta.registry import Registry


def step_seconds(registry: Registry, base: str, steps: int, batch_size: int) -> float:
    """Seconds per optimizer step of ``steps`` steps on ``base`` (after one warm-up step)."""
    from quanta.data import read_examples
    from quanta.models import base_lora_targets, model_path
    from quanta_physics import bundled_physics_path
    from tune.plan import JobRequest, resolve
    from tune.train.trainer import train

    examples = read_examples(bundled_physics_path())[:steps * batch_size]
    plan = resolve(JobRequest.model_validate({
        "model": base, "training_file": "bench",
        "method": {"type": "supervised", "supervised": {"hyperparameters": {
            "n_epochs": 1, "batch_size": batch_size}}},
        "quanta": {"max_steps": steps, "max_length": 256, "lora": {"r": 16, "alpha": 32},
                   "eval": {"physics_n": 0, "loss_examples": 0}}}), len(examples))
    plan = plan.for_base(base_lora_targets(registry, base))
    base_dir = model_path(registry, base)
    with tempfile.TemporaryDirectory() as tmp:
        train(base_dir, plan.model_copy(update={"quanta": plan.quanta.model_copy(
            update={"max_steps": 1})}), examples[:batch_size], None, Path(tmp) / "warm", seed=0)
        result = train(base_dir, plan, examples, None, Path(tmp) / "run", seed=0)
    return result.train_runtime / max(result.steps, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model-home", type=Path, required=True)
    parser.add_argument("--base", action="append", required=True)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=8)
    args = parser.parse_args()
    registry = Registry.open(Settings(home=args.model_home))
    figures = {base: step_seconds(registry, base, args.steps, args.batch_size)
               for base in args.base}
    print(f"\ntraining step time by base ({args.steps} steps of batch {args.batch_size}, "
          f"CPU: {cpu_flags()})")
    for base, seconds in figures.items():
        print(f"{base:<28} {seconds:6.2f} s/step")
    print(json.dumps({"cpu": cpu_flags(), "seconds_per_step": figures}))


if __name__ == "__main__":
    main()
