"""Reinforcement fine-tuning on physics: does RFT raise held-out accuracy over its SFT start?

One run, one registry (default: the benchmarks' model home; ``--model-home`` points at
another, e.g. a demo's ``quanta-data``):

1. the SFT start: ``--adapter`` (the demo's adapter), else a supervised job trained as the
   default demo trains it (bundled physics set, its batch and learning rate) for
   ``--sft-steps`` steps;
2. an RFT job through the tune service and a worker, continuing that adapter, on
   ``--problems`` generated problems of the training split (the held-out split is never
   seen; with ``--hard``, only those the start answers wrong), graded by ``physics_answer``
   (``--reward answer``) or by a ``multi`` grader that adds partial credit for the work's
   similarity to the worked answer (``answer+work``);
3. prints held-out physics accuracy (``--eval-n`` problems, greedy) of the SFT adapter (the
   RFT job's "before") and of SFT + RFT ("after"), the same on the held-out ``--splits``
   (unseen phrasings and families, where an adapter that knows its formulas still has
   headroom), the mean reward of every step, and the seconds a rollout batch
   (``batch_size`` prompts x ``num_generations`` samples) takes with transformers' generate,
   as the worker runs it, vs an offline vLLM engine with the adapter, on the same prompts.

    python bench/rft_physics.py --rft-steps 20
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import quanta_physics as physics
from demo.accuracy import SPLITS, calculator_accuracy, calculator_solved
from quanta.config import Settings
from quanta.data import write_jsonl
from quanta.models import DEFAULT_MODEL_ID
from quanta.registry import Registry
from quanta.types import EventType

REPO = str(Path(__file__).resolve().parents[1])
if REPO not in sys.path:  # `python bench/x.py` puts bench/ there; tests.support needs the root
    sys.path.insert(0, REPO)

from tests.support.fixtures import offline_llm, run_job

TENANT = "local"
RFT_SEED = 7  # generate_problems seed for the RFT prompts (training split, not the demo's)


def sft_adapter(registry: Registry, steps: int, eval_n: int, workdir: Path) -> str:
    """The default demo's SFT recipe, ``steps`` long, for when no ``--adapter`` is given."""
    from demo.steps import DemoPlan
    from quanta.data import read_examples
    from quanta.precision import resolve

    plan = DemoPlan.for_run(quick=False, precision=resolve())
    data = write_jsonl(read_examples(physics.bundled_physics_path()), workdir / "sft.jsonl")
    job, seconds = run_job(registry, TENANT, data, {
        "model": DEFAULT_MODEL_ID, "suffix": "bench-sft", "seed": 0,
        "method": {"type": "supervised", "supervised": {"hyperparameters": {
            "n_epochs": 1, "batch_size": plan.batch_size,
            "learning_rate_multiplier": plan.learning_rate_multiplier}}},
        "quanta": {"max_steps": steps, "checkpoint_every": max(5, steps // 4), "max_length": 256,
                   "eval": {"physics_n": eval_n, "loss_examples": 0}}})
    print(f"SFT start: {steps} steps in {seconds:.0f} s -> {job.fine_tuned_model}")
    return job.fine_tuned_model


ANSWER_GRADER = {"type": "physics_answer", "name": "answer", "rel_tol": 0.02}
# Partial credit: a group whose answers are all wrong still ranks the ones closer to the
# worked answer (formula and calculation) higher, so GRPO has an advantage to follow.
GRADERS = {
    "answer": ANSWER_GRADER,
    "answer+work": {"type": "multi", "name": "answer+work",
                    "graders": {"answer": ANSWER_GRADER,
                                "work": {"type": "text_similarity", "name": "work",
                                         "input": "{{sample.output_text}}",
                                         "reference": "{{item.solution}}",
                                         "evaluation_metric": "rouge_l"}},
                    "calculate_output": "0.8 * answer + 0.2 * work"},
}


def missed(registry: Registry, adapter: str, problems: list[physics.PhysicsProblem],
           max_tokens: int) -> list[physics.PhysicsProblem]:
    """The training problems the SFT start answers wrong greedily: prompts whose sampled
    groups mix right and wrong answers, where GRPO's advantage is not zero."""
    solved = calculator_solved(registry, registry.resolve_adapter(TENANT, adapter), problems,
                               max_tokens)
    hard = [p for p, ok in zip(problems, solved, strict=True) if not ok]
    print(f"RFT prompts: {len(hard)} of {len(problems)} training problems the start misses")
    return hard


def rft(registry: Registry, adapter: str, args: argparse.Namespace, workdir: Path
        ) -> tuple[Any, float]:
    problems = physics.generate_problems(args.problems, RFT_SEED)
    if args.hard:
        problems = missed(registry, adapter, problems, args.completion_tokens)
    data = write_jsonl([physics.problem_to_rft(p) for p in problems], workdir / "rft.jsonl")
    return run_job(registry, TENANT, data, {
        "model": adapter, "suffix": "bench-rft", "seed": 0,
        "method": {"type": "reinforcement", "reinforcement": {
            "grader": GRADERS[args.reward],
            "hyperparameters": {"n_epochs": 1, "batch_size": args.batch_size,
                                "learning_rate_multiplier": args.lr_multiplier}}},
        "quanta": {"max_steps": args.rft_steps, "checkpoint_every": max(5, args.rft_steps),
                   "max_length": 256,
                   "eval": {"physics_n": args.eval_n, "loss_examples": 0,
                            "max_new_tokens": args.completion_tokens},
                   "reinforcement": {"num_generations": args.generations,
                                     "max_completion_length": args.completion_tokens,
                                     "temperature": args.temperature, "beta": 0.04}}})


def rewards(registry: Registry, job_id: str) -> list[tuple[int, float, float]]:
    """(step, mean reward, seconds since the previous logged step) per logged step."""
    events = sorted((e for e in registry.jobs.events(job_id, type=EventType.METRICS)
                     if "train_reward_mean" in (e.data or {})), key=lambda e: e.data["step"])
    out, last = [], None
    for event in events:
        stamp = event.created_at.timestamp()
        out.append((event.data["step"], event.data["train_reward_mean"],
                    stamp - last if last is not None else float("nan")))
        last = stamp
    return out


def _prompts(tokenizer: Any, n: int) -> list[str]:
    problems = physics.generate_problems(n, RFT_SEED)
    return [tokenizer.apply_chat_template(physics.problem_to_rft(p)["messages"], tokenize=False,
                                          add_generation_prompt=True) for p in problems]


def rollout_transformers(base_dir: Path, adapter_dir: Path, args: argparse.Namespace,
                         repeats: int = 3) -> float:
    """Seconds for one rollout batch with transformers' sampling generate (the worker's)."""
    import torch
    from peft import PeftModel

    from quanta.precision import resolve
    from tune.train.modeling import load_base, load_tokenizer

    tokenizer = load_tokenizer(base_dir)
    tokenizer.padding_side = "left"
    model = PeftModel.from_pretrained(load_base(base_dir, resolve("auto")), adapter_dir).eval()
    enc = tokenizer(_prompts(tokenizer, args.batch_size), return_tensors="pt", padding=True,
                    add_special_tokens=False)
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        with torch.no_grad():
            model.generate(**enc, do_sample=True, temperature=1.0,
                           num_return_sequences=args.generations,
                           max_new_tokens=args.completion_tokens, min_new_tokens=args.
                           completion_tokens, pad_token_id=tokenizer.pad_token_id)
        times.append(time.perf_counter() - started)
    return min(times)


def rollout_vllm(base_dir: Path, adapter_dir: Path, args: argparse.Namespace,
                 repeats: int = 3) -> float | str:
    """The same batch with an offline vLLM engine and the adapter (start-up not counted)."""
    import os

    os.environ.update({"VLLM_CPU_KVCACHE_SPACE": "2", "VLLM_NO_USAGE_STATS": "1",
                       "VLLM_CACHE_ROOT": str(Path(tempfile.gettempdir()) / "quanta-vllm")})
    try:
        from vllm import SamplingParams
        from vllm.lora.request import LoRARequest
    except ImportError as exc:
        return f"vLLM not importable: {exc}"
    from quanta.precision import resolve
    from tune.train.modeling import load_tokenizer

    # On CPU gpu_memory_utilization is the share of RAM vLLM reserves; this process
    # already holds the trainer's models, so ask for little.
    params = SamplingParams(n=args.generations, temperature=1.0,
                            max_tokens=args.completion_tokens,
                            min_tokens=args.completion_tokens)
    prompts = _prompts(load_tokenizer(base_dir), args.batch_size)
    lora = LoRARequest("sft", 1, str(adapter_dir))
    times = []
    with offline_llm(model=str(base_dir), enable_lora=True, max_lora_rank=64,
                     max_model_len=512, dtype=str(resolve("auto").dtype), seed=0,
                     gpu_memory_utilization=0.25) as llm:
        llm.generate(prompts, params, lora_request=lora, use_tqdm=False)  # warm-up
        for _ in range(repeats):
            started = time.perf_counter()
            llm.generate(prompts, params, lora_request=lora, use_tqdm=False)
            times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model-home", type=Path, default=None)
    parser.add_argument("--adapter", default=None, help="the SFT start (default: train one)")
    parser.add_argument("--sft-steps", type=int, default=100)
    parser.add_argument("--rft-steps", type=int, default=20)
    parser.add_argument("--problems", type=int, default=200)
    parser.add_argument("--hard", action="store_true",
                        help="train only on the --problems the SFT start answers wrong")
    parser.add_argument("--batch-size", type=int, default=4, help="prompts per RFT step")
    parser.add_argument("--generations", type=int, default=4)
    parser.add_argument("--completion-tokens", type=int, default=112)
    parser.add_argument("--temperature", type=float, default=0.7)
    parser.add_argument("--lr-multiplier", type=float, default=1.0)
    parser.add_argument("--reward", choices=sorted(GRADERS), default="answer",
                        help="the grader: the final answer only, or with partial credit for "
                             "the work's similarity to the worked answer")
    parser.add_argument("--eval-n", type=int, default=30)
    parser.add_argument("--splits", nargs="*", choices=SPLITS, default=["phrasing", "family"],
                        help="held-out splits besides the job's own (by numbers) on which both "
                             "adapters answer --eval-n problems with the calculator")
    parser.add_argument("--skip-vllm", action="store_true")
    parser.add_argument("--rft-job", default=None,
                        help="report on this finished RFT job instead of training one")
    args = parser.parse_args()

    from quanta.models import model_path
    from tests.support.fixtures import bench_model_home

    home = args.model_home or bench_model_home()
    registry = Registry.open(Settings(home=home))
    base_dir = model_path(registry)
    if args.rft_job:
        job, seconds = registry.jobs.get(args.rft_job), float("nan")
        assert job is not None and job.status == "succeeded", args.rft_job
        adapter = job.method["start_adapter"]["name"]
    else:
        with tempfile.TemporaryDirectory() as tmp:
            workdir = Path(tmp)
            adapter = args.adapter or sft_adapter(registry, args.sft_steps, args.eval_n,
                                                  workdir)
            job, seconds = rft(registry, adapter, args, workdir)
    row = registry.resolve_adapter(TENANT, job.fine_tuned_model)
    before, after = row.eval["before"], row.eval["after"]
    steps = rewards(registry, job.id)
    start = registry.resolve_adapter(TENANT, adapter)
    by_split = {name: calculator_accuracy(registry, model, args.eval_n,
                                          args.completion_tokens, tuple(args.splits))
                for name, model in (("SFT", start), ("SFT+RFT", row))} if args.splits else {}
    adapter_dir = registry.materialize(start.sha256)
    transformers_s = rollout_transformers(base_dir, adapter_dir, args)
    vllm_s = "skipped" if args.skip_vllm else rollout_vllm(base_dir, adapter_dir, args)

    calculator = bool(row.config.get("calculator"))
    print(f"\nRFT ({args.reward} reward): {args.rft_steps} steps of {args.batch_size} prompts "
          f"x {args.generations} completions ({args.completion_tokens} tokens max), "
          f"{seconds:.0f} s with eval; rollouts and evaluation "
          f"{'with' if calculator else 'without'} calculator decoding")
    print("step  mean reward  s/step")
    for step, reward, step_s in steps:
        print(f"{step:>4}  {reward:>11.3f}  {step_s:>6.1f}")
    acc_before = before.get("physics_accuracy", float("nan"))
    acc_after = after.get("physics_accuracy", float("nan"))
    print(f"\nheld-out physics accuracy ({before.get('physics_n')} problems): "
          f"SFT {acc_before:.1%} ({before.get('physics_correct')}) -> SFT+RFT {acc_after:.1%} "
          f"({after.get('physics_correct')}): {100 * (acc_after - acc_before):+.1f} points")
    for split in args.splits:
        sft, both = by_split["SFT"][split], by_split["SFT+RFT"][split]
        print(f"held-out by {split} ({args.eval_n} problems, calculator): SFT {sft:.1%} -> "
              f"SFT+RFT {both:.1%}: {100 * (both - sft):+.1f} points")
    rollout = f"{vllm_s:.2f} s" if isinstance(vllm_s, float) else vllm_s
    ratio = (f" (vLLM speed-up: {transformers_s / vllm_s:.2f}x)" if isinstance(vllm_s, float)
             else "")
    print(f"rollout batch ({args.batch_size} x {args.generations} x {args.completion_tokens} "
          f"tokens): transformers {transformers_s:.2f} s, vLLM {rollout}{ratio}")
    print(json.dumps({"sft": adapter, "rft": job.fine_tuned_model,
                      "accuracy_sft": acc_before, "accuracy_rft": acc_after,
                      "accuracy_by_split": by_split,
                      "mean_reward_per_step": [r for _, r, _ in steps],
                      "rollout_transformers_s": transformers_s, "rollout_vllm": vllm_s}))


if __name__ == "__main__":
    main()
