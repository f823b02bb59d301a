"""The tune API's contract without training: OpenAI shapes, auth, tenancy, bad input.

Every rejected request must answer an OpenAI-style error body and leave the registry as it
was (no rows, no blobs, nothing corrupt).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from quanta.config import Settings
from quanta.registry import Registry
from quanta.registry import tables as t
from quanta.tenancy import create_key, create_tenant
from tests.support.fixtures import arithmetic_chat, preference_pairs
from tune.api.app import create_app

MODEL = "smollm2-135m-instruct"


@pytest.fixture
def env(quanta_home: Path, tmp_path: Path) -> dict[str, Any]:
    settings = Settings(home=quanta_home, allow_anonymous=False, max_upload_bytes=4096)
    registry = Registry.open(settings)
    fake_model = tmp_path / "fake-model"  # a registry row is all the API needs
    fake_model.mkdir()
    (fake_model / "config.json").write_text('{"model_type": "llama"}')
    registry.add_base_model(MODEL, fake_model, source="test")
    create_tenant(registry, "other")
    _, key = create_key(registry, "local")
    _, other_key = create_key(registry, "other")
    client = TestClient(create_app(settings, registry))
    return {"registry": registry, "client": client, "key": key, "other": other_key}


def _h(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _jsonl(records: list[Any]) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in records).encode()


def _upload(env: dict[str, Any], data: bytes, key: str | None = None, name: str = "d.jsonl",
            purpose: str = "fine-tune") -> Any:
    return env["client"].post("/v1/files", headers=_h(key or env["key"]),
                               files={"file": (name, data)}, data={"purpose": purpose})


def _counts(registry: Registry) -> dict[str, int]:
    with registry.session() as s:
        return {table.__tablename__: s.scalar(select(func.count()).select_from(table))
                for table in (t.File, t.Job, t.JobEvent, t.Blob, t.Adapter, t.Checkpoint)}


def _assert_error(resp: Any, status: int, param: str | None = None,
                  code: str | None = None) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    error = resp.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == "invalid_request_error" and error["message"]
    if param is not None:
        assert error["param"] == param, error
    if code is not None:
        assert error["code"] == code, error
    return error


def _job_body(file_id: str, **over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"model": MODEL, "training_file": file_id}
    body.update(over)
    return body


def test_files_roundtrip_and_openai_shapes(env: dict[str, Any]) -> None:
    data = _jsonl(arithmetic_chat(3))
    resp = _upload(env, data)
    assert resp.status_code == 200, resp.text
    file = resp.json()
    assert file["object"] == "file" and file["purpose"] == "fine-tune"
    assert file["bytes"] == len(data) and isinstance(file["created_at"], int)
    c = env["client"]
    assert c.get(f"/v1/files/{file['id']}", headers=_h(env["key"])).json() == file
    assert c.get(f"/v1/files/{file['id']}/content", headers=_h(env["key"])).content == data
    listing = c.get("/v1/files", headers=_h(env["key"])).json()
    assert listing["object"] == "list" and [f["id"] for f in listing["data"]] == [file["id"]]
    deleted = c.delete(f"/v1/files/{file['id']}", headers=_h(env["key"])).json()
    assert deleted == {"id": file["id"], "object": "file", "deleted": True}
    _assert_error(c.get(f"/v1/files/{file['id']}", headers=_h(env["key"])), 404)
    assert _counts(env["registry"])["blob"] == 2  # only the fake model's tree remains
    assert env["registry"].verify().ok


@pytest.mark.parametrize(("data", "fragment"), [
    (b'{"messages": [\n', "d.jsonl"),                                     # malformed JSONL
    (b"not json at all\n", "d.jsonl"),
    (_jsonl([{"prompt": "hi", "completion": "there"}]), "unknown format"),  # wrong schema
    (_jsonl([{"messages": [{"role": "user", "content": "hi"}]}]), "assistant"),
    (_jsonl([{"messages": [{"role": "wizard", "content": "hi"}]}]), "role"),
    (b"", "empty"),
])
def test_bad_files_are_rejected_and_nothing_is_written(env: dict[str, Any], data: bytes,
                                                       fragment: str) -> None:
    before = _counts(env["registry"])
    error = _assert_error(_upload(env, data), 400, "file", "invalid_file_format")
    assert fragment in error["message"]
    assert _counts(env["registry"]) == before
    assert env["registry"].verify().ok
    assert not any((env["registry"].settings.resolved_home / "uploads").iterdir())


def test_upload_limits_and_purpose(env: dict[str, Any]) -> None:
    before = _counts(env["registry"])
    big = _jsonl(arithmetic_chat(200))
    assert len(big) > 4096
    _assert_error(_upload(env, big), 413, "file", "file_too_large")
    _assert_error(_upload(env, _jsonl(arithmetic_chat(2)), purpose="assistants"), 400,
                  "purpose")
    resp = env["client"].post("/v1/files", headers=_h(env["key"]), json={"purpose": "x"})
    _assert_error(resp, 400, "file")
    assert _counts(env["registry"]) == before


def test_auth_is_required(env: dict[str, Any]) -> None:
    c = env["client"]
    _assert_error(c.get("/v1/fine_tuning/jobs"), 401, code="invalid_api_key")
    _assert_error(c.get("/v1/files", headers=_h("qk-wrong")), 401, code="invalid_api_key")
    assert c.get("/health").json() == {"status": "ok"}


@pytest.mark.parametrize(("over", "param"), [
    ({"method": {"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": 0}}}},
     "method.supervised.hyperparameters.n_epochs"),
    ({"method": {"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": 1000}}}},
     "method.supervised.hyperparameters.n_epochs"),
    ({"method": {"type": "supervised", "supervised": {"hyperparameters": {
        "learning_rate_multiplier": 0}}}},
     "method.supervised.hyperparameters.learning_rate_multiplier"),
    ({"method": {"type": "supervised", "supervised": {"hyperparameters": {
        "learning_rate_multiplier": -1.5}}}},
     "method.supervised.hyperparameters.learning_rate_multiplier"),
    ({"method": {"type": "supervised", "supervised": {"hyperparameters": {"batch_size": 0}}}},
     "method.supervised.hyperparameters.batch_size"),
    ({"hyperparameters": {"n_epochs": "many"}}, "hyperparameters.n_epochs"),
    ({"method": {"type": "dpo", "dpo": {"hyperparameters": {"beta": 0}}}},
     "method.dpo.hyperparameters.beta"),
    ({"method": {"type": "reinforce"}}, "method.type"),
    ({"quanta": {"lora": {"r": 0}}}, "quanta.lora.r"),
    ({"quanta": {"lora": {"dropout": 1.5}}}, "quanta.lora.dropout"),
    ({"quanta": {"max_steps": 0}}, "quanta.max_steps"),
    ({"suffix": "Bad Suffix!"}, "suffix"),
    ({"surprise": 1}, "surprise"),
    ({"model": "gpt-9"}, "model"),
    # Trackers: an MLflow URI must be a server (never a path on the worker), six is too many.
    ({"integrations": [{"type": "mlflow", "mlflow": {"tracking_uri": "file:///srv/quanta",
                                                     "experiment_name": "e"}}]},
     "integrations.0.mlflow.tracking_uri"),
    ({"integrations": [{"type": "wandb", "wandb": {}}]}, "integrations.0.wandb.project"),
    ({"integrations": [{"type": "comet"}]}, "integrations.0"),
    ({"integrations": [{"type": "wandb", "wandb": {"project": "p"}}] * 6}, "integrations"),
    ({"integrations": [{"type": "mlflow", "mlflow": {
        "tracking_uri": "http://169.254.169.254/latest/meta-data/#", "experiment_name": "e"}}]},
     "integrations.0.mlflow.tracking_uri"),
    # Only the servers and W&B teams the operator allows (QUANTA_TRACKING_*): none here.
    ({"integrations": [{"type": "mlflow", "mlflow": {"tracking_uri": "http://10.0.0.5:5000",
                                                     "experiment_name": "e"}}]},
     "integrations.0.mlflow.tracking_uri"),
    ({"integrations": [{"type": "wandb", "wandb": {"project": "p", "entity": "their-team"}}]},
     "integrations.0.wandb.entity"),
    # Adapters the servers could not load are refused before training.
    ({"quanta": {"lora": {"r": 64}}}, "quanta.lora.r"),
    ({"quanta": {"lora": {"target_modules": ["q_proj", "lm_head"]}}},
     "quanta.lora.target_modules"),
])
def test_bad_job_requests(env: dict[str, Any], over: dict[str, Any], param: str) -> None:
    file_id = _upload(env, _jsonl(arithmetic_chat(2))).json()["id"]
    before = _counts(env["registry"])
    resp = env["client"].post("/v1/fine_tuning/jobs", headers=_h(env["key"]),
                              json=_job_body(file_id, **over))
    error = _assert_error(resp, 400, param)
    if param == "model":
        assert error["code"] == "model_not_available"
    assert _counts(env["registry"]) == before
    assert env["registry"].verify().ok


def test_file_method_mismatch_and_bad_json(env: dict[str, Any]) -> None:
    chat = _upload(env, _jsonl(arithmetic_chat(2))).json()["id"]
    prefs = _upload(env, _jsonl(preference_pairs(2))).json()["id"]
    before = _counts(env["registry"])
    c, h = env["client"], _h(env["key"])
    _assert_error(c.post("/v1/fine_tuning/jobs", headers=h, json=_job_body(
        chat, method={"type": "dpo"})), 400, "training_file", "invalid_file_format")
    _assert_error(c.post("/v1/fine_tuning/jobs", headers=h, json=_job_body(prefs)), 400,
                  "training_file", "invalid_file_format")
    _assert_error(c.post("/v1/fine_tuning/jobs", headers=h, json=_job_body(
        chat, validation_file="file-nope")), 404, "validation_file")
    _assert_error(c.post("/v1/fine_tuning/jobs", headers={**h, "content-type":
                                                          "application/json"},
                         content=b"{nope"), 400, code="invalid_json")
    _assert_error(c.get("/v1/fine_tuning/jobs?limit=0", headers=h), 400, "limit")
    _assert_error(c.get("/v1/fine_tuning/jobs?limit=abc", headers=h), 400, "limit")
    assert _counts(env["registry"]) == before


def test_other_tenants_objects_look_unknown(env: dict[str, Any]) -> None:
    c, mine, theirs = env["client"], _h(env["key"]), _h(env["other"])
    file_id = _upload(env, _jsonl(arithmetic_chat(2))).json()["id"]
    job = c.post("/v1/fine_tuning/jobs", headers=mine, json=_job_body(file_id)).json()
    before = _counts(env["registry"])

    def same_as_unknown(path: str, method: str = "get", **kw: Any) -> None:
        real = getattr(c, method)(path.format(file=file_id, job=job["id"]), headers=theirs, **kw)
        fake = getattr(c, method)(path.format(file="file-000", job="ftjob-000"),
                                  headers=theirs, **kw)
        e1, e2 = _assert_error(real, 404), _assert_error(fake, 404)
        assert (e1["code"], e1["param"], e1["type"]) == (e2["code"], e2["param"], e2["type"])
        assert e1["message"].replace(file_id, "X").replace(job["id"], "X") == \
            e2["message"].replace("file-000", "X").replace("ftjob-000", "X")

    same_as_unknown("/v1/files/{file}")
    same_as_unknown("/v1/files/{file}/content")
    same_as_unknown("/v1/files/{file}", "delete")
    same_as_unknown("/v1/fine_tuning/jobs/{job}")
    same_as_unknown("/v1/fine_tuning/jobs/{job}/cancel", "post")
    same_as_unknown("/v1/fine_tuning/jobs/{job}/events")
    same_as_unknown("/v1/fine_tuning/jobs/{job}/checkpoints")
    real = c.post("/v1/fine_tuning/jobs", headers=theirs, json=_job_body(file_id))
    fake = c.post("/v1/fine_tuning/jobs", headers=theirs, json=_job_body("file-000"))
    assert _assert_error(real, 404, "training_file")["code"] == \
        _assert_error(fake, 404, "training_file")["code"]
    assert c.get("/v1/fine_tuning/jobs", headers=theirs).json()["data"] == []
    assert c.get("/v1/files", headers=theirs).json()["data"] == []
    assert _counts(env["registry"]) == before


def test_jobs_list_pagination_cancel_and_metrics(env: dict[str, Any]) -> None:
    import openai

    c, h = env["client"], _h(env["key"])
    sdk = openai.OpenAI(base_url="http://testserver/v1", api_key=env["key"], http_client=c,
                        max_retries=0)
    file_id = sdk.files.create(file=("d.jsonl", _jsonl(arithmetic_chat(3))),
                               purpose="fine-tune").id
    ids = [sdk.fine_tuning.jobs.create(model=MODEL, training_file=file_id,
                                       metadata={"n": str(i)}).id for i in range(3)]
    page = sdk.fine_tuning.jobs.list(limit=2)
    assert [j.id for j in page.data] == ids[::-1][:2] and page.has_more
    rest = sdk.fine_tuning.jobs.list(limit=2, after=page.data[-1].id)
    assert [j.id for j in rest.data] == [ids[0]] and not rest.has_more
    assert [j.id for j in sdk.fine_tuning.jobs.list(metadata={"n": "1"}).data] == [ids[1]]

    job = sdk.fine_tuning.jobs.retrieve(ids[0])
    assert job.object == "fine_tuning.job" and job.status == "queued"
    assert job.hyperparameters.n_epochs == 3 and job.hyperparameters.batch_size == 3
    assert job.method.type == "supervised" and job.error is None and job.seed is not None
    assert sdk.fine_tuning.jobs.cancel(ids[0]).status == "cancelled"
    with pytest.raises(openai.ConflictError) as exc:
        sdk.fine_tuning.jobs.cancel(ids[0])
    assert exc.value.body["code"] == "job_not_cancellable"
    events = sdk.fine_tuning.jobs.list_events(ids[0])
    assert events.data[0].message == "Fine-tuning job cancelled"
    assert all(e.object == "fine_tuning.job.event" for e in events.data)
    assert sdk.fine_tuning.jobs.checkpoints.list(ids[0]).data == []
    _assert_error(c.delete(f"/v1/files/{file_id}", headers=h), 409, code="file_in_use")
    with pytest.raises(openai.BadRequestError) as bad:
        sdk.fine_tuning.jobs.create(model="nope", training_file=file_id)
    assert bad.value.body["param"] == "model"

    text = c.get("/metrics").text
    assert 'quanta_tune_jobs{status="queued"} 2.0' in text
    assert 'quanta_tune_jobs{status="cancelled"} 1.0' in text
    assert "quanta_tune_jobs_queued 2.0" in text


def test_pause_and_resume_before_a_worker_takes_the_job(env: dict[str, Any]) -> None:
    """A queued job pauses at once and resumes to the queue; wrong transitions are 400s
    with OpenAI bodies, unknown and other tenants' jobs 404s; nothing else changes."""
    import openai
    from openai.types.fine_tuning import FineTuningJob

    c = env["client"]
    sdk = openai.OpenAI(base_url="http://testserver/v1", api_key=env["key"], http_client=c,
                        max_retries=0)
    file_id = sdk.files.create(file=("d.jsonl", _jsonl(arithmetic_chat(3))),
                               purpose="fine-tune").id
    job_id = sdk.fine_tuning.jobs.create(model=MODEL, training_file=file_id).id
    paused = sdk.fine_tuning.jobs.pause(job_id)
    assert paused.id == job_id and paused.status == "paused"
    # The SDK's status Literal predates "paused"; every other field validates.
    FineTuningJob.model_validate({**paused.model_dump(), "status": "queued"})
    assert sdk.fine_tuning.jobs.retrieve(job_id).status == "paused"
    with pytest.raises(openai.BadRequestError) as twice:
        sdk.fine_tuning.jobs.pause(job_id)
    assert twice.value.body["code"] == "job_not_pausable"
    assert twice.value.body["param"] == "fine_tuning_job_id"
    assert sdk.fine_tuning.jobs.resume(job_id).status == "queued"
    with pytest.raises(openai.BadRequestError) as queued:
        sdk.fine_tuning.jobs.resume(job_id)
    assert queued.value.body["code"] == "job_not_paused"
    messages = [e.message for e in sdk.fine_tuning.jobs.list_events(job_id).data]
    assert messages[:2] == ["Fine-tuning job resumed; queued to continue from its last "
                            "checkpoint", "Fine-tuning job paused before training"]

    sdk.fine_tuning.jobs.pause(job_id)
    assert sdk.fine_tuning.jobs.cancel(job_id).status == "cancelled"  # a paused job cancels
    for call in (sdk.fine_tuning.jobs.pause, sdk.fine_tuning.jobs.resume):
        with pytest.raises(openai.BadRequestError, match="cancelled"):
            call(job_id)
    other = openai.OpenAI(base_url="http://testserver/v1", api_key=env["other"],
                          http_client=c, max_retries=0)
    for call, target in ((other.fine_tuning.jobs.pause, job_id),
                         (other.fine_tuning.jobs.resume, job_id),
                         (sdk.fine_tuning.jobs.pause, "ftjob-nope")):
        with pytest.raises(openai.NotFoundError):
            call(target)
    assert env["registry"].verify().ok


# --- reinforcement fine-tuning: jobs and graders ----------------------------------------

RFT_ROWS = [{"messages": [{"role": "user", "content": f"How far in {n} s at 2 m/s?"}],
             "answer": f"{2 * n} m"} for n in range(1, 4)]
PHYSICS_GRADER = {"type": "physics_answer", "name": "physics"}


def _rft(grader: Any = PHYSICS_GRADER, **hyper: Any) -> dict[str, Any]:
    return {"type": "reinforcement",
            "reinforcement": {"grader": grader, "hyperparameters": hyper}}


def _check(operation: str = "eq", **over: Any) -> dict[str, Any]:
    return {"type": "string_check", "name": "s", "input": "{{sample.output_text}}",
            "reference": "{{item.answer}}", "operation": operation, **over}


@pytest.mark.parametrize(("method", "param"), [
    ({"type": "reinforcement"}, "method.reinforcement"),
    ({"type": "supervised", "reinforcement": {"grader": PHYSICS_GRADER}}, "method"),
    ({"type": "reinforcement", "reinforcement": {}}, "method.reinforcement.grader"),
    (_rft({"type": "label_model", "name": "x"}), "method.reinforcement.grader"),
    (_rft(_check("contains")), "method.reinforcement.grader.operation"),
    (_rft(_check(extra=1)), "method.reinforcement.grader.extra"),
    (_rft({**_check(), "reference": "{{env.SECRET}}"}), "method.reinforcement"),
    (_rft({"type": "python", "name": "p", "source": "import os"}),
     "method.reinforcement.grader.source"),
    (_rft({"type": "multi", "name": "m", "graders": {"a": _check()},
           "calculate_output": "a + b"}), "method.reinforcement.grader.multi"),
    (_rft({"type": "text_similarity", "name": "t", "input": "a", "reference": "b",
           "evaluation_metric": "cosine"}),
     "method.reinforcement.grader.evaluation_metric"),
    (_rft(compute_multiplier=20), "method.reinforcement.hyperparameters.compute_multiplier"),
    (_rft(reasoning_effort="extreme"), "method.reinforcement.hyperparameters.reasoning_effort"),
    (_rft(eval_samples=0), "method.reinforcement.hyperparameters.eval_samples"),
    (_rft({"type": "score_model", "name": "judge", "model": "someone-elses-model",
           "input": [{"role": "user", "content": "{{sample.output_text}}"}]}),
     "method.reinforcement.grader"),
])
def test_bad_reinforcement_jobs(env: dict[str, Any], method: dict[str, Any],
                                param: str) -> None:
    file_id = _upload(env, _jsonl(RFT_ROWS)).json()["id"]
    before = _counts(env["registry"])
    resp = env["client"].post("/v1/fine_tuning/jobs", headers=_h(env["key"]),
                              json=_job_body(file_id, method=method))
    _assert_error(resp, 400, param)
    assert _counts(env["registry"]) == before


def test_reinforcement_job_shapes_and_file_formats(env: dict[str, Any]) -> None:
    c, h = env["client"], _h(env["key"])
    rft = _upload(env, _jsonl(RFT_ROWS)).json()["id"]
    chat = _upload(env, _jsonl(arithmetic_chat(2))).json()["id"]
    _assert_error(c.post("/v1/fine_tuning/jobs", headers=h, json=_job_body(
        chat, method=_rft())), 400, "training_file", "invalid_file_format")
    _assert_error(c.post("/v1/fine_tuning/jobs", headers=h, json=_job_body(rft)), 400,
                  "training_file", "invalid_file_format")
    job = c.post("/v1/fine_tuning/jobs", headers=h, json=_job_body(
        rft, method=_rft(batch_size=2, reasoning_effort="high"))).json()
    block = job["method"]["reinforcement"]
    assert block["grader"]["type"] == "physics_answer"
    assert block["hyperparameters"] == {
        "n_epochs": 3, "batch_size": 2, "learning_rate_multiplier": 1.0,
        "reasoning_effort": "high", "compute_multiplier": 1.0, "eval_interval": 50,
        "eval_samples": 8}
    events = c.get(f"/v1/fine_tuning/jobs/{job['id']}/events", headers=h).json()["data"]
    assert any("4 completions per prompt" in e["message"] and "256 tokens" in e["message"]
               for e in events)


def test_bad_rft_file_names_line_and_field(env: dict[str, Any]) -> None:
    rows = [*RFT_ROWS, {"messages": [{"role": "robot", "content": "q"}], "answer": "1 m"}]
    error = _assert_error(_upload(env, _jsonl(rows)), 400, "file", "invalid_file_format")
    assert "d.jsonl:4: field 'messages[0].role'" in error["message"]


def test_graders_validate_and_run(env: dict[str, Any]) -> None:
    c, h = env["client"], _h(env["key"])
    check = _check()
    assert c.post("/v1/fine_tuning/alpha/graders/validate", headers=h,
                  json={"grader": check}).json() == {"grader": check}
    result = c.post("/v1/fine_tuning/alpha/graders/run", headers=h, json={
        "grader": check, "model_sample": "4 m", "item": {"answer": "4 m"}}).json()
    assert result["reward"] == 1.0 and result["sub_rewards"] == {}
    metadata = result["metadata"]
    assert metadata["name"] == "s" and metadata["type"] == "string_check"
    assert set(metadata) == {"name", "type", "errors", "execution_time", "scores",
                             "token_usage", "sampled_model_name"}
    assert len(metadata["errors"]) == 14 and not any(metadata["errors"].values())
    _assert_error(c.post("/v1/fine_tuning/alpha/graders/run", headers=h,
                         json={"grader": check}), 400, "model_sample")
    _assert_error(c.post("/v1/fine_tuning/alpha/graders/validate", headers=h,
                         json={"grader": _check("is")}), 400,
                  "grader.operation")
    _assert_error(c.post("/v1/fine_tuning/alpha/graders/validate", headers=h,
                         json={"grader": {**check, "input": "{{os.environ}}"}}), 400, "grader")
    _assert_error(c.post("/v1/fine_tuning/alpha/graders/validate", json={"grader": check}),
                  401)


def _assert_served_by(registry: Registry, c: TestClient, mine: dict[str, str],
                      adapter: str) -> None:
    """Every model view says which servers serve the model's base (one per base): live
    ones only, replicas behind one URL once; OpenAI's model object stays valid."""
    from tests.support.openai_schema import OpenAISchemas

    def served(path: str) -> list[list[Any]]:
        body = c.get(path, headers=mine).json()
        entries = body["served_by"] if "served_by" in body else next(
            m["served_by"] for m in body["data"] if m["id"] in (MODEL, adapter))
        return [[e["url"], e["engine"], e["grpc"]] for e in entries]

    paths = ("/v1/models", f"/v1/models/{MODEL}", f"/v1/models/{adapter}",
             f"/v1/quanta/models/{MODEL}", f"/v1/quanta/models/{adapter}")
    assert all(served(path) == [] for path in paths)
    rows = registry.serve_endpoints
    first = rows.register(base_model_id=MODEL, engine="vllm", url="http://node-a:8000",
                          grpc="node-a:50051")
    rows.register(base_model_id=MODEL, engine="vllm", url="http://node-a:8000",
                  grpc="node-a:50051", host="replica", pid=1)
    other = rows.register(base_model_id="gemma3-270m", engine="llama-cpp",
                          url="http://node-b:8001")
    for path in paths:
        assert served(path) == [["http://node-a:8000", "vllm", "node-a:50051"]], path
    listed = c.get("/v1/models", headers=mine).json()
    OpenAISchemas("openai-serve.json").conforms(listed, "ListModelsResponse")
    assert isinstance(listed["data"][0]["served_by"][0]["last_seen"], int)
    base = c.get(f"/v1/quanta/models/{MODEL}", headers=mine).json()
    assert (base["object"], base["base_model"]) == ("quanta.model", None)
    for row in rows.live():
        rows.unregister(row.id)
    assert all(served(path) == [] for path in paths)
    assert first.id != other.id


def test_models_routes_are_one_tenants_view(env: dict[str, Any], tmp_path: Path) -> None:
    """OpenAI's /v1/models (list, retrieve, delete a fine-tuned model) and the console's
    /v1/quanta extensions: the caller's models only; another tenant's answer 404."""
    from tests.support.fixtures import fake_adapter_dir

    registry, c = env["registry"], env["client"]
    mine, theirs = _h(env["key"]), _h(env["other"])
    adapter = registry.add_adapter("local", MODEL, fake_adapter_dir(tmp_path / "a"),
                                   suffix="phys", eval={"after": {"heldout_loss": 0.5}})
    listed = c.get("/v1/models", headers=mine).json()
    assert {m["id"] for m in listed["data"]} == {MODEL, adapter.name}
    assert {m["id"] for m in c.get("/v1/models", headers=theirs).json()["data"]} == {MODEL}
    assert c.get(f"/v1/models/{adapter.name}", headers=mine).json()["owned_by"] == "local"
    details = c.get(f"/v1/quanta/models/{adapter.name}", headers=mine).json()
    assert details["base_model"] == MODEL and details["eval"]["after"]["heldout_loss"] == 0.5
    assert details["exports"] == []
    for path in (f"/v1/models/{adapter.name}", f"/v1/quanta/models/{adapter.name}"):
        _assert_error(c.get(path, headers=theirs), 404, "model", "model_not_found")
    _assert_served_by(registry, c, mine, adapter.name)
    _assert_error(c.post(f"/v1/quanta/models/{adapter.name}/exports", headers=mine,
                         json={"format": "zip"}), 400, "format")
    _assert_error(c.post(f"/v1/quanta/models/{adapter.name}/exports", headers=mine,
                         json={"format": "gguf-lora", "accuracy_n": 0}), 400, "accuracy_n")
    _assert_error(c.get("/v1/quanta/exports/exp-nope/content", headers=mine), 404,
                  "export_id")
    # Exports are queued work: the API records an export job, a quantize worker runs it.
    job = c.post(f"/v1/quanta/models/{adapter.name}/exports", headers=mine,
                 json={"format": "gguf-lora", "accuracy_n": 2}).json()
    assert (job["object"], job["status"], job["model"], job["format"], job["export"]) == (
        "quanta.export_job", "queued", adapter.name, "gguf-lora", None)
    assert c.get(f"/v1/quanta/export_jobs/{job['id']}", headers=mine).json()["id"] == job["id"]
    assert [j["id"] for j in c.get("/v1/quanta/export_jobs", headers=mine).json()["data"]] == [
        job["id"]]
    assert c.get("/v1/quanta/export_jobs", headers=theirs).json()["data"] == []
    for response in (c.get(f"/v1/quanta/export_jobs/{job['id']}", headers=theirs),
                     c.post(f"/v1/quanta/export_jobs/{job['id']}/cancel", headers=theirs)):
        _assert_error(response, 404, "export_job_id")
    _assert_error(c.post(f"/v1/quanta/models/{adapter.name}/exports", headers=theirs,
                         json={"format": "gguf-lora"}), 404, "model", "model_not_found")
    cancelled = c.post(f"/v1/quanta/export_jobs/{job['id']}/cancel", headers=mine).json()
    assert cancelled["status"] == "cancelled"
    for _ in range(4):  # at most four queued or running per tenant
        assert c.post(f"/v1/quanta/models/{adapter.name}/exports", headers=mine,
                      json={"format": "gguf-lora"}).status_code == 200
    _assert_error(c.post(f"/v1/quanta/models/{adapter.name}/exports", headers=mine,
                         json={"format": "gguf-lora"}), 429, None, "export_busy")
    for queued in c.get("/v1/quanta/export_jobs", headers=mine).json()["data"]:
        c.post(f"/v1/quanta/export_jobs/{queued['id']}/cancel", headers=mine)
    # Pins: the owner's alone; every quanta serve of the base applies them.
    assert c.post(f"/v1/quanta/models/{adapter.name}/pin", headers=mine).json()["pinned"]
    assert registry.pinned_adapter_names(MODEL) == {adapter.name}
    assert c.get(f"/v1/quanta/models/{adapter.name}", headers=mine).json()["pinned"] is True
    _assert_error(c.post(f"/v1/quanta/models/{adapter.name}/pin", headers=theirs), 404,
                  "model", "model_not_found")
    _assert_error(c.delete(f"/v1/quanta/models/{adapter.name}/pin", headers=theirs), 404,
                  "model")
    assert c.delete(f"/v1/quanta/models/{adapter.name}/pin",
                    headers=mine).json()["pinned"] is False
    assert registry.pinned_adapter_names(MODEL) == set()
    health = c.get("/v1/quanta/registry/health", headers=mine).json()
    assert health["verify"] is None  # shown from the last verify, never run per request
    assert health["storage_bytes"]["models"] == adapter.bytes
    registry.verify()
    assert c.get("/v1/quanta/registry/health", headers=mine).json()["verify"]["ok"] is True
    assert c.get("/v1/quanta/registry/health", headers=theirs).json()[
        "storage_bytes"]["total"] == 0

    _assert_error(c.delete(f"/v1/models/{adapter.name}", headers=theirs), 404, "model")
    _assert_error(c.delete(f"/v1/models/{MODEL}", headers=mine), 404, "model")
    deleted = c.delete(f"/v1/models/{adapter.name}", headers=mine).json()
    assert deleted == {"id": adapter.name, "object": "model", "deleted": True}
    assert {m["id"] for m in c.get("/v1/models", headers=mine).json()["data"]} == {MODEL}
    assert registry.verify().ok
