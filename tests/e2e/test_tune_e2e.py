"""End to end: the openai SDK against the live tune API, a worker trains SmolLM2 for real."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from quanta.config import Settings
from quanta.data import write_jsonl
from quanta.tenancy import create_key
from tests.support.fixtures import arithmetic_chat, seeded_registry
from tests.support.servers import serve_api
from tests.support.trackers import offline_runs
from tune.api.app import create_app
from tune.train.worker import Worker

pytestmark = pytest.mark.slow


def test_openai_sdk_fine_tune_end_to_end(quanta_home: Path, base_model_dir: Path,
                                          tmp_path: Path, mlflow_url: str,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """... with the job's metrics, parameters and evaluation sent to a real MLflow server
    and to wandb (offline: its run file is read back)."""
    import openai
    from mlflow import MlflowClient

    monkeypatch.setenv("QUANTA_TRACKING_MLFLOW_HOSTS", "127.0.0.1")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    integrations = [{"type": "wandb", "wandb": {"project": "quanta-e2e", "tags": ["arith"]}},
                    {"type": "mlflow", "mlflow": {"tracking_uri": mlflow_url,
                                                  "experiment_name": "quanta-e2e"}}]

    registry = seeded_registry(quanta_home, base_model_dir)
    _, key = create_key(registry, "local")
    data = write_jsonl(arithmetic_chat(8) * 2, tmp_path / "train.jsonl")
    valid = write_jsonl(arithmetic_chat(4), tmp_path / "valid.jsonl")

    with serve_api(create_app(Settings(home=quanta_home), registry)) as url:
        client = openai.OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0)
        train_file = client.files.create(file=data.open("rb"), purpose="fine-tune")
        valid_file = client.files.create(file=valid.open("rb"), purpose="fine-tune")
        assert train_file.object == "file" and train_file.bytes == data.stat().st_size
        assert client.files.content(train_file.id).read() == data.read_bytes()

        job = client.fine_tuning.jobs.create(
            model="smollm2-135m-instruct", training_file=train_file.id,
            validation_file=valid_file.id, suffix="arith", seed=7, integrations=integrations,
            method={"type": "supervised", "supervised": {"hyperparameters": {
                "n_epochs": 1, "batch_size": 4, "learning_rate_multiplier": 10}}},
            extra_body={"quanta": {"max_steps": 6, "checkpoint_every": 3, "max_length": 128,
                                   "lora": {"r": 8, "alpha": 16},
                                   "eval": {"physics_n": 2, "max_new_tokens": 24,
                                            "loss_examples": 4}}},
        )
        assert job.status == "queued" and job.hyperparameters.batch_size == 4
        assert [i.type for i in job.integrations] == ["wandb", "mlflow"]
        assert job.integrations[0].wandb.project == "quanta-e2e"
        assert [j.id for j in client.fine_tuning.jobs.list(limit=5).data] == [job.id]

        # The worker claims the job from the registry database and trains it.
        assert Worker(registry).run_once() == job.id

        done = client.fine_tuning.jobs.retrieve(job.id)
        assert done.status == "succeeded", done.error
        assert done.fine_tuned_model.startswith("ft:smollm2-135m-instruct:local:arith:")
        assert done.trained_tokens and done.trained_tokens > 0 and done.finished_at

        events = list(client.fine_tuning.jobs.list_events(job.id, limit=100))
        metrics = sorted((e.data for e in events if e.type == "metrics"
                          and "train_loss" in e.data), key=lambda d: d["step"])
        assert [m["step"] for m in metrics] == [1, 2, 3, 4, 5, 6]
        assert metrics[-1]["train_loss"] < metrics[0]["train_loss"] * 0.7
        assert any("valid_loss" in (e.data or {}) for e in events)

        checkpoints = client.fine_tuning.jobs.checkpoints.list(job.id).data
        assert sorted(c.step_number for c in checkpoints) == [3, 6]
        assert all(c.fine_tuned_model_checkpoint.endswith(f"ckpt-step-{c.step_number}")
                   for c in checkpoints)

        page = client.fine_tuning.jobs.list_events(job.id, limit=2)
        assert len(page.data) == 2 and page.has_more

        text = httpx.get(f"{url}/metrics").text
        assert 'quanta_tune_jobs{status="succeeded"} 1.0' in text
        assert "quanta_tune_jobs_queued 0.0" in text

    adapter = registry.resolve_adapter("local", done.fine_tuned_model)
    assert adapter.job_id == job.id and adapter.training_file_id == train_file.id
    assert adapter.config["lora"]["r"] == 8 and adapter.config["steps"] == 6
    before, after = adapter.eval["before"], adapter.eval["after"]
    assert {"heldout_loss", "physics_accuracy"} <= set(before) & set(after)
    assert after["heldout_loss"] < before["heldout_loss"]
    # Sample answers are kept for side-by-side reports, with what was expected.
    assert [s["question"] for s in before["samples"]] == [s["question"] for s in after["samples"]]
    assert len(after["samples"]) == 2 and all(s["expected"] for s in after["samples"])
    adapter_dir = registry.materialize(adapter.sha256)
    assert (adapter_dir / "adapter_model.safetensors").is_file()
    assert registry.verify().ok

    # MLflow: one run for the job, its step metrics, parameters, evaluation and model.
    mlflow = MlflowClient(mlflow_url)
    experiment = mlflow.get_experiment_by_name("quanta-e2e")
    [run] = mlflow.search_runs([experiment.experiment_id])
    assert run.info.status == "FINISHED" and run.info.run_name == job.id
    assert run.data.tags["quanta.job_id"] == job.id
    assert run.data.tags["quanta.fine_tuned_model"] == done.fine_tuned_model
    assert run.data.params["lora_r"] == "8" and run.data.params["batch_size"] == "4"
    losses = mlflow.get_metric_history(run.info.run_id, "train_loss")
    assert sorted(m.step for m in losses) == [1, 2, 3, 4, 5, 6]
    assert [m.value for m in sorted(losses, key=lambda m: m.step)] == \
        pytest.approx([m["train_loss"] for m in metrics])
    assert run.data.metrics["eval_after/heldout_loss"] == pytest.approx(after["heldout_loss"])
    assert run.data.metrics["eval_before/heldout_loss"] == pytest.approx(before["heldout_loss"])
    assert "full_valid_loss" in run.data.metrics

    # wandb: the run is the job (id and name), with the same steps and summary.
    [wandb_run] = offline_runs(tmp_path, job.id)
    assert wandb_run.project == "quanta-e2e" and wandb_run.exit_code == 0
    assert wandb_run.config["lora_r"] == 8 and wandb_run.config["seed"] == 7
    logged = [h for h in wandb_run.history if "train_loss" in h]
    assert [h["_step"] for h in logged] == [1, 2, 3, 4, 5, 6]
    assert wandb_run.summary["fine_tuned_model"] == done.fine_tuned_model
    assert wandb_run.summary["eval_after/heldout_loss"] == pytest.approx(after["heldout_loss"])
