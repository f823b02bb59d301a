"""Distributed training: tokens/s of one job on 1 process and on N processes of this machine.

The same supervised job (bundled physics set, same seed, same global batch) runs through the
tune service and a worker twice: once in one process, once under torchrun with
``quanta.distributed.processes_per_node = N`` (gloo on CPU, NCCL on GPU). Tokens/s is the
trained tokens (every rank's) over the time between the first and the last logged step,
so model loading and torchrun's start are left out; both are printed too. The losses of
the two runs are printed side by side (same data order, same global batch).

    python bench/train_distributed.py --steps 12 --processes 2

On 2 CPU cores expect little speed-up: each process gets one core, and gradients are
all-reduced every step. On a GPU machine run it with ``--processes <GPUs>``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from quanta.config import Settings
from quanta.data import write_jsonl
from quanta.models import DEFAULT_MODEL_ID
from quanta.registry import Registry
from quanta.types import EventType
from tune.api.service import TuneService
from tune.train.worker import Worker

REPO = str(Path(__file__).resolve().parents[1])
if REPO not in sys.path:  # `python bench/x.py` puts bench/ there; tests.support needs the root
    sys.path.insert(0, REPO)

TENANT = "local"


def _examples(n: int) -> list[dict[str, Any]]:
    from quanta.data import read_examples
    from quanta_physics import bundled_physics_path

    examples = read_examples(bundled_physics_path())
    return (examples * (n // len(examples) + 1))[:n]


def run(service: TuneService, registry: Registry, file_id: str, args: argparse.Namespace,
        processes: int) -> dict[str, Any]:
    body = {"model": DEFAULT_MODEL_ID, "training_file": file_id, "seed": 11,
            "method": {"type": "supervised", "supervised": {"hyperparameters": {
                "batch_size": args.batch_size, "learning_rate_multiplier": 1}}},
            "quanta": {"max_steps": args.steps, "checkpoint_every": 10**6,
                       "max_length": 256, "eval": {"physics_n": 0, "loss_examples": 0},
                       "compute_dtype": args.compute_dtype,
                       "distributed": {"processes_per_node": processes}}}
    job = service.create_job(TENANT, body)
    started = time.monotonic()
    Worker(registry).run_once(job["id"])
    wall = time.monotonic() - started
    done = registry.jobs.get(job["id"])
    assert done is not None and done.status == "succeeded", done and done.error
    steps = [e for e in reversed(registry.jobs.events(job["id"], type=EventType.METRICS))
             if "train_loss" in (e.data or {}) and "trained_tokens" in e.data]
    first, last = steps[0], steps[-1]
    seconds = (last.created_at - first.created_at).total_seconds()
    tokens = last.data["trained_tokens"] - first.data["trained_tokens"]
    return {"processes": processes, "wall_s": wall, "train_s": seconds, "tokens": tokens,
            "tokens_per_s": tokens / seconds if seconds > 0 else float("nan"),
            "losses": {e.data["step"]: e.data["train_loss"] for e in steps}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--batch-size", type=int, default=8, help="the global batch")
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--compute-dtype", default="auto",
                        help="auto (quanta.precision's choice), float32, bfloat16")
    args = parser.parse_args()

    from tests.support.fixtures import base_model_dir, bench_model_home, seeded_registry

    base = base_model_dir(bench_model_home())
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        os.environ["QUANTA_HOME"] = str(home)  # the ranks open the same registry
        registry = seeded_registry(home, base, settings=Settings(home=home))
        service = TuneService(registry)
        data = write_jsonl(_examples(args.steps * args.batch_size), home / "train.jsonl")
        file_id = service.create_file(TENANT, data.name, "fine-tune", data)["id"]
        one = run(service, registry, file_id, args, 1)
        many = run(service, registry, file_id, args, args.processes)

    import torch

    device = (f"CUDA {torch.cuda.get_device_name()}" if torch.cuda.is_available()
              else f"CPU, {len(os.sched_getaffinity(0))} cores")
    from quanta.precision import resolve

    dtype = resolve(args.compute_dtype, requested_by="the benchmark").dtype
    print(f"\n{args.steps} steps, global batch {args.batch_size}, {device}, computing in "
          f"{dtype}")
    print("processes  tokens/s  train s  wall s (with model load, torchrun start)")
    for row in (one, many):
        print(f"{row['processes']:>9}  {row['tokens_per_s']:>8.1f}  {row['train_s']:>7.1f}  "
              f"{row['wall_s']:>6.1f}")
    print(f"scaling {args.processes}/1: {many['tokens_per_s'] / one['tokens_per_s']:.2f}x")
    print("step  loss (1 process)  loss (N processes)  |diff|")
    for step, loss in sorted(one["losses"].items()):
        other = many["losses"].get(step, float("nan"))
        print(f"{step:>4}  {loss:>16.4f}  {other:>18.4f}  {abs(other - loss):.2e}")


if __name__ == "__main__":
    main()
