"""The trainer on the real SmolLM2: QLoRA gradients flow, DPO trains, padding-free is exact."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from sqlalchemy import select

from quanta.data import write_jsonl
from quanta.registry import tables as t
from tests.support.fixtures import arithmetic_chat, preference_pairs, seeded_registry
from tune.api.service import TuneService
from tune.train.worker import Worker

pytestmark = pytest.mark.slow


def _run(registry, path: Path, method: dict, quanta: dict) -> tuple[dict, list[dict]]:  # type: ignore[no-untyped-def,type-arg]
    service = TuneService(registry)
    file_id = service.create_file("local", path.name, "fine-tune", path)["id"]
    job_id = service.create_job("local", {"model": "smollm2-135m-instruct",
                                          "training_file": file_id, "seed": 1,
                                          "method": method, "quanta": quanta})["id"]
    assert Worker(registry).run_once() == job_id
    with registry.session() as s:
        metrics = [e.data for e in s.scalars(select(t.JobEvent).where(
            t.JobEvent.job_id == job_id, t.JobEvent.type == "metrics").order_by(t.JobEvent.seq))]
    return service.get_job("local", job_id), metrics


def test_qlora_on_cpu_gradients_flow_after_a_base_eval(quanta_home: Path, base_model_dir: Path,
                                                      tmp_path: Path) -> None:
    """The worker evaluates the base first (generate), then trains 4-bit: grads must not vanish."""
    registry = seeded_registry(quanta_home, base_model_dir)
    data = write_jsonl(arithmetic_chat(4), tmp_path / "train.jsonl")
    job, metrics = _run(registry, data, {"type": "supervised", "supervised": {
        "hyperparameters": {"batch_size": 4, "learning_rate_multiplier": 5}}},
        {"qlora": True, "max_steps": 2, "checkpoint_every": 2, "max_length": 128,
         "lora": {"r": 4, "alpha": 8},
         "eval": {"physics_n": 1, "max_new_tokens": 8, "loss_examples": 2}})
    assert job["status"] == "succeeded", job["error"]
    assert metrics[0]["grad_norm"] > 1e-2  # the CPU gemv_4bit trap drops this to ~1e-6
    adapter = registry.resolve_adapter("local", job["fine_tuned_model"])
    assert adapter.config["qlora"] is True and adapter.config["backend"] == "peft-qlora"
    assert "before" in adapter.eval and "after" in adapter.eval
    from safetensors.torch import load_file

    weights = load_file(registry.materialize(adapter.sha256) / "adapter_model.safetensors")
    lora_b = [w for name, w in weights.items() if "lora_B" in name]
    assert lora_b and all(w.abs().max() > 0 for w in lora_b)  # B starts at zero


def test_dpo_trains_on_openai_preference_format(quanta_home: Path, base_model_dir: Path,
                                                tmp_path: Path) -> None:
    registry = seeded_registry(quanta_home, base_model_dir)
    data = write_jsonl(preference_pairs(4), tmp_path / "prefs.jsonl")
    job, metrics = _run(registry, data, {"type": "dpo", "dpo": {"hyperparameters": {
        "batch_size": 2, "learning_rate_multiplier": 5, "beta": 0.2}}},
        {"max_steps": 2, "checkpoint_every": 2, "max_length": 128, "lora": {"r": 4, "alpha": 8},
         "eval": {"physics_n": 0, "loss_examples": 0}})
    assert job["status"] == "succeeded", job["error"]
    assert job["method"] == {"type": "dpo", "dpo": {"hyperparameters": {
        "n_epochs": 3, "batch_size": 2, "learning_rate_multiplier": 5.0, "beta": 0.2}}}
    assert [m["step"] for m in metrics if "train_loss" in m] == [1, 2]


def test_padding_free_batches_give_the_padded_loss(base_model_dir: Path) -> None:
    """Concatenated sequences must not attend across examples, with either attention path."""
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

    from tune.train.attention import packed_attention
    from tune.train.dataset import tokenize_examples
    from tune.train.methods.sft import labelled_loss

    tokenizer = AutoTokenizer.from_pretrained(base_model_dir)
    model = AutoModelForCausalLM.from_pretrained(base_model_dir, dtype=torch.float32).eval()
    examples = arithmetic_chat(3)
    examples[1]["messages"][2]["content"] = "A much longer answer, to make the lengths differ: 2."
    rows = tokenize_examples(tokenizer, examples, 128)

    def batch(padding_free: bool) -> dict:  # type: ignore[type-arg]
        collate = DataCollatorForLanguageModeling(pad_token_id=tokenizer.pad_token_id,
                                                  padding_free=padding_free)
        return collate([dict(r) for r in rows])

    with torch.no_grad():
        padded = batch(False)
        reference = float(model(**{k: padded[k] for k in ("input_ids", "labels",
                                                           "attention_mask")},
                                use_cache=False).loss)
        packed = batch(True)
        block_mask = float(model(**{k: packed[k] for k in ("input_ids", "labels",
                                                            "position_ids")},
                                 use_cache=False).loss)
        lean_padded = float(labelled_loss(model, padded)[0])
        with packed_attention(model):
            per_sequence = float(labelled_loss(model, packed)[0])
        assert model.config._attn_implementation != "quanta_varlen_sdpa"
    for value in (block_mask, lean_padded, per_sequence):
        assert value == pytest.approx(reference, rel=1e-4)


AVX2_TRAINING = """
import json, math, sys
from pathlib import Path

from quanta.precision import resolve as resolve_precision
from tune.plan import JobRequest, resolve
from tests.support.fixtures import arithmetic_chat
from tune.train.trainer import train

request = JobRequest(model="m", training_file="f", seed=0, method={
    "type": "supervised", "supervised": {"hyperparameters": {"batch_size": 4}}},
    quanta={"max_steps": 2, "checkpoint_every": 100, "max_length": 128,
            "lora": {"r": 4, "alpha": 8}})
result = train(Path(sys.argv[1]), resolve(request, 4), arithmetic_chat(4), None,
               Path(sys.argv[2]), seed=0)
base = {str(p.dtype) for n, p in result.model.named_parameters() if "lora_" not in n}
losses = [m["train_loss"] for m in result.history if "train_loss" in m]
print(json.dumps({"precision": resolve_precision().as_dict(), "base_dtypes": sorted(base),
                  "steps": result.steps, "finite": all(math.isfinite(x) for x in losses)}))
"""


def test_training_on_a_cpu_without_native_bf16_computes_in_fp32(base_model_dir: Path,
                                                                tmp_path: Path) -> None:
    """The CPU forced down to AVX2 (no avx512_bf16/AMX): the trainer must load fp32 weights
    (bf16 would run in torch's reference GEMM, ~25x slower) and still train."""
    import json
    import os
    import subprocess
    import sys

    script = tmp_path / "train_avx2.py"
    script.write_text(AVX2_TRAINING)
    repo = Path(__file__).resolve().parents[2]  # the script imports tests.support
    env = {**os.environ, "ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2",
           "QUANTA_COMPUTE_DTYPE": "auto", "QUANTA_CACHE": str(tmp_path / "cache"),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(repo),
                                                       os.environ.get("PYTHONPATH")]))}
    proc = subprocess.run([sys.executable, str(script), str(base_model_dir),
                           str(tmp_path / "work")], env=env, capture_output=True, text=True,
                          timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["precision"]["compute_dtype"] == "float32"
    assert result["precision"]["native_bf16"] is False
    assert result["base_dtypes"] == ["torch.float32"]
    assert result["steps"] == 2 and result["finite"]


def _rft_plan(*, max_steps: int, checkpoint_every: int, completion_tokens: int,
              problems: int) -> tuple[Any, list[dict]]:  # type: ignore[type-arg]
    """A tiny GRPO plan (physics_answer grader, rank-4 LoRA, 2 samples per prompt) and
    ``problems`` training-split physics prompts."""
    import quanta_physics as physics
    from tune.graders import parse_grader
    from tune.plan import QuantaOptions, ResolvedHyperparameters, TrainingPlan

    plan = TrainingPlan(
        type="reinforcement",
        hyperparameters=ResolvedHyperparameters(
            n_epochs=1, batch_size=2, learning_rate_multiplier=20, compute_multiplier=1.0,
            eval_interval=100, eval_samples=1, reasoning_effort="default"),
        grader=parse_grader({"type": "physics_answer", "name": "physics"}),
        quanta=QuantaOptions(max_steps=max_steps, checkpoint_every=checkpoint_every,
                             max_length=256,
                             lora={"r": 4, "alpha": 8, "target_modules": ["q_proj", "v_proj"]},
                             reinforcement={"num_generations": 2,
                                            "max_completion_length": completion_tokens}))
    rows = [physics.problem_to_rft(p) for p in physics.generate_problems(problems, seed=3)]
    return plan, [{"messages": r["messages"], "item": r} for r in rows]


def test_reinforcement_stops_on_cancel_and_resumes_from_its_checkpoint(
        base_model_dir: Path, tmp_path: Path) -> None:
    """GRPO training honours the cancel poll and resumes from a checkpoint the worker kept."""
    import shutil

    from tune.train.methods.base import TrainHooks
    from tune.train.trainer import train

    plan, examples = _rft_plan(max_steps=2, checkpoint_every=1, completion_tokens=12,
                               problems=4)
    saved: dict[int, Path] = {}

    def keep(step: int, path: Path, metrics: dict) -> None:  # type: ignore[type-arg]
        saved[step] = Path(shutil.copytree(path, tmp_path / f"ckpt-{step}"))

    hooks = TrainHooks(on_checkpoint=keep, should_stop=lambda: "cancelled" if saved else None)
    first = train(base_model_dir, plan, examples, None, tmp_path / "a", seed=1, hooks=hooks)
    assert first.stopped == "cancelled" and first.adapter_dir is None
    assert set(saved) == {1}  # the stop came before a second checkpoint
    second = train(base_model_dir, plan, examples, None, tmp_path / "b", seed=1,
                   resume_from=saved[1])
    assert second.stopped is None and second.steps == 2 and second.adapter_dir is not None
    assert [m["step"] for m in second.history if "train_reward_mean" in m] == [2]


def test_reinforcement_samples_rollouts_with_the_calculator(
        base_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A model that writes calculation traces trains on rollouts from CalculatorRollout:
    trl takes its ids and mask, and the step trains."""
    from tune.train.methods import rft
    from tune.train.trainer import train

    seen: list[dict] = []  # type: ignore[type-arg]
    original = rft.CalculatorRollout.__call__

    def spy(self, prompts, trainer):  # type: ignore[no-untyped-def]
        out = original(self, prompts, trainer)
        seen.append({"prompts": len(prompts), **out})
        return out

    monkeypatch.setattr(rft.CalculatorRollout, "__call__", spy)
    plan, examples = _rft_plan(max_steps=1, checkpoint_every=5, completion_tokens=16,
                               problems=2)
    result = train(base_model_dir, plan, examples, None, tmp_path, seed=1, calculator=True)
    assert result.steps == 1 and result.adapter_dir is not None
    [rollout] = seen  # one step: 2 prompts x 2 generations, each prompt repeated by trl
    assert rollout["prompts"] == 4 and len(rollout["completion_ids"]) == 4
    for ids, mask in zip(rollout["completion_ids"], rollout["env_mask"], strict=True):
        assert 0 < len(ids) <= 16 and len(mask) == len(ids)
    assert any("train_reward_mean" in m for m in result.history)
