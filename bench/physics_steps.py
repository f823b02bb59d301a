"""Held-out physics accuracy against training steps (and learning rate): how far are issue
14's targets from the default demo's training?

One supervised job, trained as the demo's fast plan trains it (calculation traces, batch 8,
rank 16, its learning-rate multiplier unless ``--lr-multiplier``), on ``--problems``
freshly generated training problems (training families and phrasings only, none of the
held-out pools) or on ``--data`` (the demo's bundled set), for ``--steps`` steps, with a
checkpoint every ``--every``. The checkpoint models the job keeps (the last three, as
OpenAI keeps them) then answer ``--n`` held-out problems per split (by numbers, by
phrasing, by family) with calculator decoding, as ``quanta serve`` answers for an adapter
trained with traces.

    python bench/physics_steps.py --steps 200 --every 50
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import quanta_physics as physics
from demo.accuracy import SPLITS, calculator_accuracy
from demo.steps import LR_MULTIPLIER_FAST
from quanta.config import Settings
from quanta.data import write_jsonl
from quanta.models import DEFAULT_MODEL_ID, model_path
from quanta.registry import Registry

REPO = str(Path(__file__).resolve().parents[1])
if REPO not in sys.path:  # `python bench/x.py` puts bench/ there; tests.support needs the root
    sys.path.insert(0, REPO)

from tests.support.fixtures import bench_model_home, run_job

TENANT = "local"
TRAIN_SEED = 11  # generate_problems seed: not the bundled set's, not the RFT bench's


def train(registry: Registry, args: argparse.Namespace, workdir: Path) -> str:
    if args.data:
        data, rows = args.data, args.data.read_text().splitlines()
    else:
        rows = [physics.problem_to_chat(p)
                for p in physics.generate_problems(args.problems, TRAIN_SEED)]
        data = write_jsonl(rows, workdir / "physics.jsonl")
    job, seconds = run_job(registry, TENANT, data, {
        "model": DEFAULT_MODEL_ID, "suffix": "bench-steps", "seed": 0,
        "method": {"type": "supervised", "supervised": {"hyperparameters": {
            "n_epochs": 1, "batch_size": 8,
            "learning_rate_multiplier": args.lr_multiplier}}},
        "quanta": {"max_steps": args.steps, "checkpoint_every": args.every, "max_length": 256,
                   "eval": {"physics_n": 0, "loss_examples": 0}}})
    print(f"trained {args.steps} steps on {len(rows)} records in {seconds:.0f} s "
          f"({seconds / args.steps:.2f} s per step) -> {job.fine_tuned_model}")
    return job.fine_tuned_model


def checkpoint_models(registry: Registry, model: str) -> list[tuple[int, str]]:
    """(step, name) of the job's checkpoint models, oldest first."""
    rows = [a for a in registry.list_adapters(TENANT, checkpoints=True)
            if a.config.get("checkpoint", {}).get("of") == model]
    return sorted((a.config["checkpoint"]["step"], a.name) for a in rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model-home", type=Path, default=None)
    parser.add_argument("--model", default=None, help="report on this finished job's model")
    parser.add_argument("--problems", type=int, default=2000)
    parser.add_argument("--data", type=Path, default=None,
                        help="train on this chat JSONL (e.g. the demo's bundled set) instead")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--every", type=int, default=50)
    parser.add_argument("--lr-multiplier", type=float, default=LR_MULTIPLIER_FAST)
    parser.add_argument("--n", type=int, default=20, help="held-out problems per split")
    parser.add_argument("--max-tokens", type=int, default=112)
    args = parser.parse_args()

    registry = Registry.open(Settings(home=args.model_home or bench_model_home()))
    model_path(registry)  # imports the base model on the first run
    with tempfile.TemporaryDirectory() as tmp:
        model = args.model or train(registry, args, Path(tmp))
    rows = {step: calculator_accuracy(registry, registry.resolve_adapter(TENANT, name), args.n,
                                      args.max_tokens)
            for step, name in checkpoint_models(registry, model)}
    print(f"\nheld-out accuracy with calculator decoding ({args.n} problems per split)")
    print("step  " + "  ".join(f"{split:>9}" for split in SPLITS))
    for step, accuracy in rows.items():
        print(f"{step:>4}  " + "  ".join(f"{accuracy[s]:>9.1%}" for s in SPLITS))
    print("targets: by phrasing >= 60%, by family >= 40%")
    print(json.dumps({"model": model, "n": args.n, "accuracy_by_step": rows}))


if __name__ == "__main__":
    main()
