"""End to end: the openai SDK runs reinforcement fine-tuning against the live tune API.

Graders are tried first (validate, run), then two jobs train for real: one with a
``multi`` grader (Quanta's ``physics_answer`` plus a sandboxed python grader), and one
with a ``physics_answer`` grader that continues the first job's adapter.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import quanta_physics as physics
from quanta.config import Settings
from quanta.data import write_jsonl
from quanta.tenancy import create_key
from tests.support.fixtures import seeded_registry
from tests.support.servers import serve_api
from tune.api.app import create_app
from tune.train.worker import Worker

pytestmark = pytest.mark.slow

PHYSICS = {"type": "physics_answer", "name": "physics", "input": "{{sample.output_text}}",
           "reference": "{{item.answer}}", "rel_tol": 0.05}
# Raises (so the sample scores 0 and the job reports it) unless the answer has its last line.
FORMAT = {"type": "python", "name": "format",
          "source": "def grade(sample, item):\n"
                    "    if 'Final answer:' not in sample['output_text']:\n"
                    "        raise ValueError('no final answer line')\n"
                    "    return 1.0\n"}
MULTI = {"type": "multi", "name": "physics_and_format",
         "graders": {"physics": PHYSICS, "format": FORMAT},
         "calculate_output": "0.8 * physics + 0.2 * format"}


def _quanta(steps: int, r: int = 4) -> dict[str, Any]:
    return {"max_steps": steps, "checkpoint_every": 1, "max_length": 256,
            "lora": {"r": r, "alpha": 2 * r, "target_modules": ["q_proj", "v_proj"]},
            "eval": {"physics_n": 0, "loss_examples": 0, "grader_n": 2},
            "reinforcement": {"num_generations": 2, "max_completion_length": 24}}


def _hyper(**extra: Any) -> dict[str, Any]:
    return {"batch_size": 2, "n_epochs": 1, "learning_rate_multiplier": 5, **extra}


def test_openai_sdk_reinforcement_fine_tuning(quanta_home: Path, base_model_dir: Path,
                                              tmp_path: Path) -> None:
    import openai
    from openai.types.fine_tuning import FineTuningJob, FineTuningJobEvent
    from openai.types.fine_tuning.alpha import GraderRunResponse

    registry = seeded_registry(quanta_home, base_model_dir)
    _, key = create_key(registry, "local")
    rows = [physics.problem_to_rft(p) for p in physics.generate_problems(8, seed=5)]
    held_out = [physics.problem_to_rft(p) for p in physics.held_out_problems(2)]
    train = write_jsonl(rows, tmp_path / "rft.jsonl")
    valid = write_jsonl(held_out, tmp_path / "rft-valid.jsonl")

    with serve_api(create_app(Settings(home=quanta_home), registry)) as url:
        client = openai.OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0, timeout=600)
        graders = client.fine_tuning.alpha.graders

        # Try the grader before paying for a job.
        assert graders.validate(grader=MULTI).grader is not None  # type: ignore[arg-type]
        run = graders.run(grader=MULTI, model_sample=f"Final answer: {rows[0]['answer']}",
                          item=rows[0])  # type: ignore[arg-type]
        assert isinstance(run, GraderRunResponse)
        assert run.reward == pytest.approx(1.0)
        assert run.sub_rewards == {"physics": 1.0, "format": 1.0}
        crashed = graders.run(grader=MULTI, model_sample="42", item=rows[0])  # type: ignore
        assert crashed.reward == 0.0 and crashed.metadata.errors.python_grader_runtime_error
        assert "no final answer line" in crashed.metadata.errors.python_grader_runtime_error_details
        with pytest.raises(openai.BadRequestError) as bad:
            graders.validate(grader={**MULTI, "calculate_output": "physics + nope"})  # type: ignore
        assert "nope" in str(bad.value)

        train_file = client.files.create(file=train.open("rb"), purpose="fine-tune")
        valid_file = client.files.create(file=valid.open("rb"), purpose="fine-tune")
        job = client.fine_tuning.jobs.create(
            model="smollm2-135m-instruct", training_file=train_file.id,
            validation_file=valid_file.id, suffix="rft", seed=11,
            method={"type": "reinforcement", "reinforcement": {
                "grader": MULTI, "hyperparameters": _hyper(
                    eval_interval=2, eval_samples=1, reasoning_effort="low")}},  # type: ignore
            extra_body={"quanta": _quanta(2)})
        assert isinstance(job, FineTuningJob) and job.status == "queued"
        assert job.method.type == "reinforcement"
        assert job.method.reinforcement.hyperparameters.compute_multiplier == 1.0
        assert Worker(registry).run_once() == job.id

        done = client.fine_tuning.jobs.retrieve(job.id)
        assert done.status == "succeeded", done.error
        events = list(client.fine_tuning.jobs.list_events(job.id, limit=100))
        assert all(isinstance(e, FineTuningJobEvent) for e in events)
        steps = [e.data for e in events if e.type == "metrics" and "train_reward_mean" in e.data]
        assert {d["step"] for d in steps} == {1, 2}
        for data in steps:
            assert {"train_reward_std", "train_kl", "train_completion_length"} <= set(data)
            assert 0.0 <= data["train_reward_mean"] <= 1.0
        assert any("valid_reward_mean" in e.data for e in events if e.type == "metrics")
        warnings = [e for e in events if e.level == "warn"]  # the python grader raised
        assert warnings and "python_grader_runtime_error" in warnings[0].message
        assert "no final answer line" in warnings[0].message
        messages = [e.message for e in events]
        assert any("2 completions per prompt" in m and "reasoning_effort 'low'" in m
                   for m in messages)
        adapter = registry.resolve_adapter("local", done.fine_tuned_model)
        assert adapter.config["method"] == "reinforcement"
        assert adapter.config["grader"] == {"type": "multi", "name": "physics_and_format"}
        for phase in ("before", "after"):
            assert adapter.eval[phase]["grader_n"] == 2
            assert 0.0 <= adapter.eval[phase]["grader_score"] <= 1.0

        # A second job continues the first adapter, graded by physics_answer alone.
        follow = client.fine_tuning.jobs.create(
            model=done.fine_tuned_model, training_file=train_file.id, suffix="rft2", seed=12,
            method={"type": "reinforcement", "reinforcement": {
                "grader": PHYSICS, "hyperparameters": _hyper()}},  # type: ignore
            extra_body={"quanta": _quanta(1, r=8)})  # the continued adapter's r=4 wins
        assert follow.model == done.fine_tuned_model
        assert Worker(registry).run_once() == follow.id
        second = client.fine_tuning.jobs.retrieve(follow.id)
        assert second.status == "succeeded", second.error
        continued = registry.resolve_adapter("local", second.fine_tuned_model)
        assert continued.config["start_adapter"] == done.fine_tuned_model
        assert continued.config["lora"]["r"] == 4
        assert continued.sha256 != adapter.sha256
