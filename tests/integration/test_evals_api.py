"""OpenAI's Evals API on the tune API, without vLLM: the routes (TestClient), the eval
worker (``tune.evals.runner``) and a fake serve that answers chat completions the way
Quanta's serve does (as the caller's tenant, checked against the registry).

Every response is checked against OpenAI's published schemas
(``tests/contract/openai-evals.json``); every refused request names its field.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.testclient import TestClient
from openai.types import EvalRetrieveResponse
from openai.types.evals import RunRetrieveResponse
from openai.types.evals.runs import OutputItemRetrieveResponse

from quanta.config import Settings
from quanta.processes import free_port, quanta_command
from quanta.registry import Registry
from quanta.tenancy import AuthError, authenticate, bearer_token, create_key, create_tenant
from tests.support.fixtures import fake_adapter_dir
from tests.support.openai_schema import OpenAISchemas
from tests.support.servers import serve_api
from tune.api.app import create_app
from tune.evals import EvalWorker
from tune.graders.label_model import read_label
from tune.graders.string_check import StringCheckGrader

MODEL = "smollm2-135m-instruct"
OTHER_BASE = "other-base"  # a second base model, served by a server of its own
CONTEXT = 20_000  # characters the fake serve takes in one prompt
SCHEMAS = OpenAISchemas("openai-evals.json")
SDK_TYPES: dict[str, Any] = {"Eval": EvalRetrieveResponse, "EvalRun": RunRetrieveResponse,
                             "EvalRunOutputItem": OutputItemRetrieveResponse}
ITEM_SCHEMA = {"type": "object", "properties": {"question": {"type": "string"},
                                                "answer": {"type": "string"}},
               "required": ["question", "answer"]}
ANSWERS = {"What is 2+2?": "4", "What is 3+3?": "6", "Capital of France?": "Paris",
           "What is 5+5?": "11"}
ITEMS = [{"question": q, "answer": a} for q, a in (
    ("What is 2+2?", "4"), ("What is 3+3?", "6"), ("Capital of France?", "Paris"),
    ("What is 5+5?", "10"), ("Colour of the sky?", "blue"))]


class Killed(BaseException):
    """A worker dying mid-run (not an error it could report: it just stops)."""


# -- a fake serve: chat completions as Quanta's serve answers them ----------------------------

class FakeServe:
    """Answers ``ANSWERS[last user message]`` ("no idea" else) for a model the caller's
    tenant may use (``base``, or an adapter of it); remembers each prompt asked, the
    models asked and the tenant that asked. A prompt longer than CONTEXT characters is
    refused as serve refuses one too long for the model."""

    def __init__(self, registry: Registry, base: str = MODEL) -> None:
        self.registry, self.base = registry, base
        self.models: Counter[str] = Counter()
        self.asked: Counter[str] = Counter()
        self.tenants: set[str] = set()
        self.keys: set[str] = set()
        self.lock = threading.Lock()
        self.app = FastAPI()
        self.app.post("/v1/chat/completions")(self.chat)

    async def chat(self, request: Request) -> JSONResponse:
        try:
            principal = authenticate(self.registry,
                                     bearer_token(request.headers.get("authorization")))
        except AuthError as exc:
            return JSONResponse({"error": {"message": str(exc), "code": "invalid_api_key"}},
                                status_code=401)
        body = await request.json()
        model = body["model"]
        if model != self.base:
            try:
                assert self.registry.usable_adapter(principal.tenant_id,
                                                    model).base_model_id == self.base
            except Exception:
                return JSONResponse({"error": {"message": f"The model {model} does not "
                                               "exist", "code": "model_not_found"}},
                                    status_code=404)
        prompt = body["messages"][-1]["content"]
        if sum(len(m["content"]) for m in body["messages"]) > CONTEXT:
            return JSONResponse({"error": {"message": "the prompt is longer than the "
                                           "model's context", "param": "messages",
                                           "code": "context_length_exceeded"}},
                                status_code=400)
        with self.lock:
            self.models[model] += 1
            self.asked[prompt] += 1
            self.tenants.add(principal.tenant_id)
            self.keys.add(request.headers["authorization"])
        if "Classify" in body["messages"][0]["content"]:  # a label_model grader's prompt
            content = "good" if "4" in prompt or "6" in prompt else "bad"
        elif prompt.startswith("Score:"):  # a score_model grader's
            content = '{"result": 0.9}'
        else:
            content = ANSWERS.get(prompt, "no idea")
        return JSONResponse({
            "id": "chatcmpl-1", "object": "chat.completion", "created": 0, "model": model,
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": content}}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 2, "total_tokens": 12}})


@pytest.fixture
def env(quanta_home: Path, tmp_path: Path) -> Iterator[dict[str, Any]]:
    settings = Settings(home=quanta_home, allow_anonymous=False,
                        console_url="http://console.test/console", eval_concurrency=2)
    registry = Registry.open(settings)
    model_dir = tmp_path / "fake-model"
    model_dir.mkdir()
    (model_dir / "config.json").write_text('{"model_type": "llama"}')
    registry.add_base_model(MODEL, model_dir, source="test")
    create_tenant(registry, "other")
    _, key = create_key(registry, "local")
    _, other_key = create_key(registry, "other")
    mine = registry.add_adapter("local", MODEL, fake_adapter_dir(tmp_path / "a"), suffix="mine")
    theirs = registry.add_adapter("other", MODEL, fake_adapter_dir(tmp_path / "b"),
                                  suffix="theirs")
    serve = FakeServe(registry)
    with serve_api(serve.app) as url:
        endpoint = registry.serve_endpoints.register(base_model_id=MODEL, engine="fake",
                                                     url=url)
        yield {"registry": registry, "client": TestClient(create_app(settings, registry)),
               "key": key, "other": other_key, "serve": serve, "adapter": mine.name,
               "their_adapter": theirs.name, "endpoint": endpoint}


def _h(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _call(env: dict[str, Any], method: str, path: str, body: Any = None,
          key: str | None = None, **params: Any) -> Any:
    return env["client"].request(method, f"/v1{path}", headers=_h(key or env["key"]),
                                 json=body, params=params or None)


def _ok(resp: Any, schema: str, status: int = 200) -> dict[str, Any]:
    """The response's body, after checking it against OpenAI's schema and the SDK's type."""
    assert resp.status_code == status, resp.text
    body = SCHEMAS.conforms(resp.json(), schema)
    sdk_type = SDK_TYPES[schema.removesuffix("List")]
    for each in body["data"] if schema.endswith("List") else [body]:
        sdk_type.model_validate(each)
    return body


def _error(resp: Any, status: int, param: str | None = None) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    body = SCHEMAS.conforms(resp.json(), "ErrorResponse")
    if param is not None:
        assert body["error"]["param"] == param, body
    return body["error"]


def _upload(env: dict[str, Any], lines: list[Any], purpose: str = "evals",
            key: str | None = None) -> Any:
    data = "".join(json.dumps(line) + "\n" for line in lines).encode()
    return env["client"].post("/v1/files", headers=_h(key or env["key"]),
                              files={"file": ("items.jsonl", data)}, data={"purpose": purpose})


def _criteria() -> list[dict[str, Any]]:
    return [{"type": "string_check", "name": "exact", "input": "{{sample.output_text}}",
             "reference": "{{item.answer}}", "operation": "eq"},
            {"type": "text_similarity", "name": "close", "input": "{{sample.output_text}}",
             "reference": "{{item.answer}}", "evaluation_metric": "fuzzy_match",
             "pass_threshold": 0.8}]


def _eval(env: dict[str, Any], criteria: list[dict[str, Any]] | None = None,
          **over: Any) -> dict[str, Any]:
    body = {"name": "arithmetic", "metadata": {"team": "a"},
            "data_source_config": {"type": "custom", "item_schema": ITEM_SCHEMA,
                                   "include_sample_schema": True},
            "testing_criteria": criteria or _criteria(), **over}
    return _ok(_call(env, "POST", "/evals", body), "Eval", 201)


def _completions(source: dict[str, Any], model: str = MODEL) -> dict[str, Any]:
    return {"type": "completions", "model": model, "source": source,
            "input_messages": {"type": "template", "template": [
                {"role": "developer", "content": "Answer briefly."},
                {"role": "user", "content": "{{item.question}}"}]},
            "sampling_params": {"temperature": 0, "max_completion_tokens": 16, "seed": 7}}


def _inline(items: list[dict[str, Any]]) -> dict[str, Any]:
    return {"type": "file_content", "content": [{"item": i} for i in items]}


def _run(env: dict[str, Any], eval_id: str, data_source: dict[str, Any],
         **over: Any) -> dict[str, Any]:
    resp = _call(env, "POST", f"/evals/{eval_id}/runs", {"data_source": data_source, **over})
    return _ok(resp, "EvalRun", 201)


def _items(env: dict[str, Any], eval_id: str, run_id: str, **params: Any) -> dict[str, Any]:
    path = f"/evals/{eval_id}/runs/{run_id}/output_items"
    return _ok(_call(env, "GET", path, **params), "EvalRunOutputItemList")


# -- evals ---------------------------------------------------------------------------------

def test_evals_are_created_listed_paged_ordered_updated_and_deleted(env: dict[str, Any]
                                                                    ) -> None:
    created = [_eval(env, name=f"e{i}") for i in range(3)]
    first = created[0]
    assert first["object"] == "eval" and first["metadata"] == {"team": "a"}
    schema = first["data_source_config"]
    assert schema["type"] == "custom" and schema["schema"]["properties"]["item"] == ITEM_SCHEMA
    assert set(schema["schema"]["required"]) == {"item", "sample"}
    exact, close = first["testing_criteria"]
    assert exact["id"].startswith("exact-") and close["pass_threshold"] == 0.8

    ids = [e["id"] for e in created]
    listed = _ok(_call(env, "GET", "/evals"), "EvalList")
    assert [e["id"] for e in listed["data"]] == ids and not listed["has_more"]
    assert (listed["first_id"], listed["last_id"]) == (ids[0], ids[-1])
    newest = _ok(_call(env, "GET", "/evals", order="desc", limit=2), "EvalList")
    assert [e["id"] for e in newest["data"]] == ids[:0:-1] and newest["has_more"]
    rest = _ok(_call(env, "GET", "/evals", order="desc", limit=2, after=ids[1]), "EvalList")
    assert [e["id"] for e in rest["data"]] == [ids[0]] and not rest["has_more"]

    updated = _ok(_call(env, "POST", f"/evals/{ids[0]}",
                        {"name": "renamed", "metadata": {"v": "2"}}), "Eval")
    assert (updated["name"], updated["metadata"]) == ("renamed", {"v": "2"})
    assert updated["testing_criteria"] == first["testing_criteria"]
    by_update = _ok(_call(env, "GET", "/evals", order_by="updated_at", order="desc"), "EvalList")
    assert by_update["data"][0]["id"] == ids[0]
    assert _ok(_call(env, "GET", f"/evals/{ids[0]}"), "Eval")["name"] == "renamed"

    gone = _call(env, "DELETE", f"/evals/{ids[0]}")
    assert gone.json() == {"object": "eval.deleted", "deleted": True, "eval_id": ids[0]}
    _error(_call(env, "GET", f"/evals/{ids[0]}"), 404, "eval_id")
    _error(_call(env, "GET", "/evals", order="sideways"), 400, "order")
    _error(_call(env, "GET", "/evals", order_by="name"), 400, "order_by")
    _error(_call(env, "GET", "/evals", limit=0), 400, "limit")


@pytest.mark.parametrize(("config", "param"), [
    ({"type": "logs"}, "data_source_config.type"),
    ({"type": "stored_completions", "metadata": {}}, "data_source_config.type"),
    ({"type": "custom"}, "data_source_config.item_schema"),
    ({"type": "custom", "item_schema": {"type": "not-a-type"}}, "data_source_config.item_schema"),
    ({"type": "custom", "item_schema": {}, "include_sample_schema": "yes"},
     "data_source_config.include_sample_schema"),
])
def test_a_bad_data_source_config_is_refused_naming_it(env: dict[str, Any],
                                                       config: dict[str, Any],
                                                       param: str) -> None:
    error = _error(_call(env, "POST", "/evals", {"data_source_config": config,
                                                 "testing_criteria": _criteria()}), 400, param)
    if config["type"] != "custom":
        assert "does not store completions" in error["message"]


SIMILAR = {"type": "text_similarity", "name": "s", "input": "{{sample.output_text}}",
           "reference": "{{item.answer}}", "evaluation_metric": "bleu"}


@pytest.mark.parametrize(("criterion", "param"), [
    ({"type": "cosine_judge", "name": "x"}, "testing_criteria[0].type"),
    ({**_criteria()[0], "input": "{{answer.text}}"}, "testing_criteria[0].input"),
    ({**_criteria()[0], "operation": "regex"}, "testing_criteria[0].operation"),
    ({**_criteria()[0], "pass_threshold": 0.5}, "testing_criteria[0].pass_threshold"),
    (SIMILAR, "testing_criteria[0].pass_threshold"),
    ({**SIMILAR, "pass_threshold": "high"}, "testing_criteria[0].pass_threshold"),
    ({"type": "python", "name": "p", "source": "def grade(sample):\n    return 1"},
     "testing_criteria[0].source"),
    ({"type": "python", "name": "p", "source": "def grade(sample, item):\n  return ("},
     "testing_criteria[0].source"),
    ({"type": "score_model", "name": "j", "model": MODEL,
      "input": [{"role": "user", "content": "Rate {{answer}}"}]},
     "testing_criteria[0].input[0].content"),
    ({"type": "label_model", "name": "l", "model": MODEL, "labels": ["good", "bad"],
      "passing_labels": ["great"], "input": [{"role": "user", "content": "x"}]},
     "testing_criteria[0]"),
    ({"type": "label_model", "name": "l", "model": "ft:nobody", "labels": ["good"],
      "passing_labels": ["good"], "input": [{"role": "user", "content": "x"}]},
     "testing_criteria[0].model"),
])
def test_a_bad_testing_criterion_is_refused_naming_it(env: dict[str, Any],
                                                      criterion: dict[str, Any],
                                                      param: str) -> None:
    body = {"data_source_config": {"type": "custom", "item_schema": ITEM_SCHEMA},
            "testing_criteria": [criterion]}
    _error(_call(env, "POST", "/evals", body), 400, param)


def test_another_tenants_model_cannot_grade(env: dict[str, Any]) -> None:
    judge = {"type": "score_model", "name": "j", "model": env["their_adapter"],
             "input": [{"role": "user", "content": "{{sample.output_text}}"}]}
    body = {"data_source_config": {"type": "custom", "item_schema": ITEM_SCHEMA},
            "testing_criteria": [_criteria()[0], judge]}
    _error(_call(env, "POST", "/evals", body), 400, "testing_criteria[1].model")


# -- runs: refused -------------------------------------------------------------------------

def test_a_bad_run_data_source_is_refused_naming_it(env: dict[str, Any]) -> None:
    eval_id = _eval(env)["id"]

    def refused(data_source: dict[str, Any], param: str) -> str:
        resp = _call(env, "POST", f"/evals/{eval_id}/runs", {"data_source": data_source})
        return _error(resp, 400, param)["message"]

    refused({"type": "jsonl", "source": {"type": "file_id", "id": "file-nope"}},
            "data_source.source.id")
    tuning = _upload(env, [{"messages": [{"role": "user", "content": "hi"},
                                         {"role": "assistant", "content": "yo"}]}],
                     purpose="fine-tune").json()["id"]
    assert "not 'evals'" in refused({"type": "jsonl", "source": {"type": "file_id",
                                                                 "id": tuning}},
                                    "data_source.source.id")
    theirs = _upload(env, ITEMS, key=env["other"]).json()["id"]
    refused({"type": "jsonl", "source": {"type": "file_id", "id": theirs}},
            "data_source.source.id")
    mismatched = _upload(env, [ITEMS[0], {"question": "no answer"}]).json()["id"]
    message = refused({"type": "jsonl", "source": {"type": "file_id", "id": mismatched}},
                      "data_source.source.id")
    assert "line 2" in message and "'answer' is a required property" in message
    refused({"type": "jsonl", "source": _inline([ITEMS[0], {"question": 3, "answer": "x"}])},
            "data_source.source.content[1].item")
    refused(_completions(_inline(ITEMS), model="no-such-model"), "data_source.model")
    refused(_completions(_inline(ITEMS), model=env["their_adapter"]), "data_source.model")
    refused({**_completions(_inline(ITEMS)), "type": "responses"}, "data_source.type")
    refused({**_completions(_inline(ITEMS)), "sampling_params": {"temperature": 3}},
            "data_source.sampling_params.temperature")
    missing = _completions(_inline(ITEMS))
    missing["input_messages"]["template"][1]["content"] = "{{item.hint}}"
    assert "content[0]" in refused(missing, "data_source.input_messages")
    sampled = _completions(_inline(ITEMS))
    sampled["input_messages"]["template"][1]["content"] = "{{sample.output_text}}"
    refused(sampled, "data_source.input_messages.template[1].content")
    refused({"type": "jsonl", "source": {"type": "stored_completions"}},
            "data_source.source.type")
    assert _call(env, "GET", f"/evals/{eval_id}/runs").json()["data"] == []


def test_an_evals_file_is_checked_when_uploaded(env: dict[str, Any]) -> None:
    ok = _upload(env, [{"item": ITEMS[0], "sample": {"output_text": "4"}}, ITEMS[1]])
    assert ok.status_code == 200 and ok.json()["purpose"] == "evals"
    bad = _upload(env, [ITEMS[0], ["not", "an", "object"], {"item": "text"}])
    assert bad.status_code == 400
    message = bad.json()["error"]["message"]
    assert "items.jsonl:2:" in message and "items.jsonl:3:" in message


# -- runs: graded ----------------------------------------------------------------------------

def test_a_completions_run_over_a_base_and_a_fine_tuned_model(env: dict[str, Any]) -> None:
    registry, serve = env["registry"], env["serve"]
    label = {"type": "label_model", "name": "judge", "model": MODEL,
             "labels": ["good", "bad"], "passing_labels": ["good"],
             "input": [{"role": "user", "content": "Is {{sample.output_text}} right?"}]}
    ev = _eval(env, criteria=[*_criteria(), label])
    file_id = _upload(env, ITEMS).json()["id"]
    base = _run(env, ev["id"], _completions({"type": "file_id", "id": file_id}), name="base",
                metadata={"k": "v"})
    tuned = _run(env, ev["id"], _completions(_inline(ITEMS[:2]), model=env["adapter"]))
    assert base["status"] == "queued" and base["model"] == MODEL and base["name"] == "base"
    assert base["report_url"] == (f"http://console.test/console/#/evals/{ev['id']}"
                                  f"/runs/{base['id']}")
    worker = EvalWorker(registry, "w1")
    assert worker.run_once() == base["id"] and worker.run_once() == tuned["id"]
    assert worker.run_once() is None

    done = _ok(_call(env, "GET", f"/evals/{ev['id']}/runs/{base['id']}"), "EvalRun")
    assert done["status"] == "completed" and done["error"] == {"code": "", "message": ""}
    # 2+2 and 3+3 right (the judge says good); Paris right but judged bad; 5+5 and the
    # sky wrong.
    assert done["result_counts"] == {"total": 5, "passed": 2, "failed": 3, "errored": 0}
    exact, close, judge = (c["id"] for c in ev["testing_criteria"])
    per = {r["testing_criteria"]: (r["passed"], r["failed"])
           for r in done["per_testing_criteria_results"]}
    assert per == {exact: (3, 2), close: (3, 2), judge: (2, 3)}
    usage = {u["model_name"]: u for u in done["per_model_usage"]}
    assert usage[MODEL]["invocation_count"] == 10  # 5 samples + 5 judgements
    assert usage[MODEL]["total_tokens"] == 120

    page = _items(env, ev["id"], base["id"], limit=2)
    assert [i["datasource_item_id"] for i in page["data"]] == [0, 1] and page["has_more"]
    rest = _items(env, ev["id"], base["id"], after=page["last_id"])
    assert [i["datasource_item_id"] for i in rest["data"]] == [2, 3, 4]
    first = page["data"][0]
    assert first["status"] == "pass" and first["datasource_item"] == ITEMS[0]
    sample = first["sample"]
    assert sample["input"] == [{"role": "system", "content": "Answer briefly."},
                               {"role": "user", "content": "What is 2+2?"}]
    assert sample["output"] == [{"role": "assistant", "content": "4"}]
    assert (sample["temperature"], sample["max_completion_tokens"], sample["seed"]) == (0, 16, 7)
    results = {r["name"]: r for r in first["results"]}
    assert results[exact]["passed"] and results[exact]["score"] == 1.0
    assert results[judge]["metadata"]["label"] == "good"
    failing = _items(env, ev["id"], base["id"], status="fail", order="desc")
    assert [i["datasource_item_id"] for i in failing["data"]] == [4, 3, 2]
    one = _ok(_call(env, "GET", f"/evals/{ev['id']}/runs/{base['id']}/output_items/"
                    f"{first['id']}"), "EvalRunOutputItem")
    assert one == first

    on_adapter = _ok(_call(env, "GET", f"/evals/{ev['id']}/runs/{tuned['id']}"), "EvalRun")
    assert on_adapter["status"] == "completed" and on_adapter["model"] == env["adapter"]
    assert on_adapter["result_counts"]["total"] == 2
    # serve was asked as the eval's tenant, with keys minted for each run and revoked since
    assert serve.tenants == {"local"}
    run_keys = [k for k in registry.tenants.keys("local") if k.name and k.name.startswith(
        "eval run ")]
    assert len(run_keys) == 2 and all(k.revoked_at is not None for k in run_keys)

    runs = _ok(_call(env, "GET", f"/evals/{ev['id']}/runs", order="desc"), "EvalRunList")
    assert [r["id"] for r in runs["data"]] == [tuned["id"], base["id"]]
    completed = _ok(_call(env, "GET", f"/evals/{ev['id']}/runs", status="completed"),
                    "EvalRunList")
    assert len(completed["data"]) == 2
    assert _call(env, "GET", f"/evals/{ev['id']}/runs", status="queued").json()["data"] == []


def test_a_jsonl_run_grades_the_samples_it_was_given(env: dict[str, Any]) -> None:
    ev = _eval(env)
    content = {"type": "file_content", "content": [
        {"item": ITEMS[0], "sample": {"output_text": "4"}},
        {"item": ITEMS[1], "sample": {"output_text": "seven"}},
        {"item": ITEMS[2]}]}  # no sample: its graders cannot read one
    run = _run(env, ev["id"], {"type": "jsonl", "source": content})
    assert run["model"] == "" and run["data_source"]["source"] == content
    EvalWorker(env["registry"]).run_once()
    done = _ok(_call(env, "GET", f"/evals/{ev['id']}/runs/{run['id']}"), "EvalRun")
    assert done["result_counts"] == {"total": 3, "passed": 1, "failed": 1, "errored": 1}
    items = _items(env, ev["id"], run["id"])["data"]
    assert [i["status"] for i in items] == ["pass", "fail", "error"]
    assert items[0]["sample"]["output"] == [{"role": "assistant", "content": "4"}]
    errors = items[2]["results"][0]["metadata"]["errors"]
    assert errors["invalid_variable_error"] is True
    assert env["serve"].asked == Counter()  # nothing sampled


def test_quantas_own_criteria_and_a_score_model_grade_too(env: dict[str, Any]) -> None:
    """physics_answer and multi are Quanta's (OpenAI's eval schema does not list them: the
    eval echoes them as they are); the run and its items keep OpenAI's shapes."""
    physics = {"type": "physics_answer", "name": "speed"}
    mentions = {"type": "string_check", "name": "says", "input": "{{sample.output_text}}",
                "reference": "final answer", "operation": "ilike"}
    both = {"type": "multi", "name": "both", "graders": {"p": physics, "s": mentions},
            "calculate_output": "(p + s) / 2", "pass_threshold": 0.75}
    judge = {"type": "score_model", "name": "judge", "model": env["adapter"],
             "input": [{"role": "user", "content": "Score: {{sample.output_text}}"}]}
    body = {"data_source_config": {"type": "custom", "item_schema": {"type": "object"}},
            "testing_criteria": [physics, both, judge]}
    resp = _call(env, "POST", "/evals", body)
    assert resp.status_code == 201, resp.text
    ev = resp.json()
    assert [c["type"] for c in ev["testing_criteria"]] == [
        "physics_answer", "multi", "score_model"]
    assert ev["testing_criteria"][2]["pass_threshold"] == 0.5  # the middle of its range
    content = [{"item": {"answer": "14.4 m/s"},
                "sample": {"output_text": "Final answer: 51.84 km/h"}},
               {"item": {"answer": "3 m"}, "sample": {"output_text": "Final answer: 3 s"}}]
    run = _run(env, ev["id"], {"type": "jsonl", "source": {"type": "file_content",
                                                           "content": content}})
    EvalWorker(env["registry"]).run_once()
    done = _ok(_call(env, "GET", f"/evals/{ev['id']}/runs/{run['id']}"), "EvalRun")
    assert done["result_counts"] == {"total": 2, "passed": 1, "failed": 1, "errored": 0}
    speed, multi, score = (c["id"] for c in ev["testing_criteria"])
    per = {r["testing_criteria"]: (r["passed"], r["failed"])
           for r in done["per_testing_criteria_results"]}
    assert per == {speed: (1, 1), multi: (1, 1), score: (2, 0)}
    assert done["per_model_usage"] == [{"model_name": env["adapter"], "invocation_count": 2,
                                        "prompt_tokens": 20, "completion_tokens": 4,
                                        "total_tokens": 24, "cached_tokens": 0}]
    second = {r["name"]: r for r in _items(env, ev["id"], run["id"])["data"][1]["results"]}
    assert second[multi]["score"] == 0.5 and not second[multi]["passed"]
    assert second[multi]["metadata"]["sub_rewards"] == {"p": 0.0, "s": 1.0}
    assert second[score]["score"] == 0.9 and second[score]["passed"]


@pytest.mark.skipif(shutil.which("bwrap") is None, reason="the grader sandbox needs bwrap")
def test_a_python_criterion_runs_in_the_sandbox(env: dict[str, Any]) -> None:
    from tune.graders.sandbox import probe_sandbox

    problem = probe_sandbox()
    if problem is not None:
        pytest.skip(f"the grader sandbox does not work here: {problem}")
    python = {"type": "python", "name": "len", "pass_threshold": 1.0,
              "source": "def grade(sample, item):\n"
                        "    return float(sample['output_text'] == item['answer'])\n"}
    ev = _eval(env, criteria=[python])
    assert ev["testing_criteria"][0]["pass_threshold"] == 1.0
    run = _run(env, ev["id"], _completions(_inline(ITEMS[:2] + ITEMS[3:4])))
    EvalWorker(env["registry"]).run_once()
    done = _ok(_call(env, "GET", f"/evals/{ev['id']}/runs/{run['id']}"), "EvalRun")
    assert done["result_counts"] == {"total": 3, "passed": 2, "failed": 1, "errored": 0}


def test_a_run_with_no_server_fails_saying_so(env: dict[str, Any]) -> None:
    registry = env["registry"]
    registry.serve_endpoints.unregister(env["endpoint"].id)
    ev = _eval(env)
    run = _run(env, ev["id"], _completions(_inline(ITEMS)))
    EvalWorker(registry).run_once()
    failed = _ok(_call(env, "GET", f"/evals/{ev['id']}/runs/{run['id']}"), "EvalRun")
    assert failed["status"] == "failed" and failed["error"]["code"] == "serve_unavailable"
    assert "QUANTA_SERVE_URL" in failed["error"]["message"]
    assert not any(k.revoked_at is None and (k.name or "").startswith("eval run")
                   for k in registry.tenants.keys("local"))


def test_a_server_that_does_not_answer_fails_the_run(env: dict[str, Any],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    registry = env["registry"]
    registry.serve_endpoints.unregister(env["endpoint"].id)
    registry.serve_endpoints.register(base_model_id=MODEL, engine="fake",
                                      url=f"http://127.0.0.1:{free_port()}")
    monkeypatch.setattr("tune.evals.sampling.time.sleep", lambda seconds: None)
    ev = _eval(env)
    run = _run(env, ev["id"], _completions(_inline(ITEMS)))
    EvalWorker(registry).run_once()
    failed = _ok(_call(env, "GET", f"/evals/{ev['id']}/runs/{run['id']}"), "EvalRun")
    assert failed["status"] == "failed" and failed["error"]["code"] == "serve_unavailable"
    assert "did not answer" in failed["error"]["message"]
    assert failed["result_counts"]["total"] == 0


def test_a_killed_workers_run_is_resumed_grading_each_item_once(
        env: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    registry, serve = env["registry"], env["serve"]
    ev = _eval(env, criteria=[_criteria()[0]])
    run = _run(env, ev["id"], _completions(_inline(ITEMS)))
    graded: Counter[str] = Counter()
    compare = StringCheckGrader.compare

    def counting(self: StringCheckGrader, given: str, reference: str) -> float:
        graded[reference] += 1
        return compare(self, given, reference)

    monkeypatch.setattr(StringCheckGrader, "compare", counting)
    put_item, stored = registry.evals.put_item, []

    def dies_after_two(*args: Any, **kwargs: Any) -> bool:
        done = put_item(*args, **kwargs)
        stored.append(kwargs["datasource_item_id"])
        if len(stored) == 2:
            raise Killed
        return done

    monkeypatch.setattr(registry.evals, "put_item", dies_after_two)
    with pytest.raises(Killed):
        EvalWorker(registry, "doomed", concurrency=1).run_once()
    monkeypatch.setattr(registry.evals, "put_item", put_item)
    halfway = registry.evals.get_run(run["id"])
    assert halfway.status == "in_progress" and halfway.result_counts["total"] == 2

    assert EvalWorker(registry, "next").run_once() is None  # not stale yet: not taken
    assert registry.evals.requeue_stale(stale_after=0) == [run["id"]]
    assert EvalWorker(registry, "next").run_once() == run["id"]
    done = _ok(_call(env, "GET", f"/evals/{ev['id']}/runs/{run['id']}"), "EvalRun")
    assert done["status"] == "completed"
    assert done["result_counts"] == {"total": 5, "passed": 3, "failed": 2, "errored": 0}
    assert set(serve.asked.values()) == {1} and len(serve.asked) == 5
    assert graded == Counter({item["answer"]: 1 for item in ITEMS})
    assert [i["datasource_item_id"] for i in _items(env, ev["id"], run["id"])["data"]] == [
        0, 1, 2, 3, 4]


def test_cancel_stops_a_run_keeping_its_items(env: dict[str, Any],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    registry = env["registry"]
    ev = _eval(env)
    queued = _run(env, ev["id"], _completions(_inline(ITEMS)))
    canceled = _ok(_call(env, "POST", f"/evals/{ev['id']}/runs/{queued['id']}/cancel"),
                   "EvalRun")
    assert canceled["status"] == "canceled"
    run = _run(env, ev["id"], _completions(_inline(ITEMS)))
    put_item = registry.evals.put_item

    def cancel_after_first(*args: Any, **kwargs: Any) -> bool:
        done = put_item(*args, **kwargs)
        _ok(_call(env, "POST", f"/evals/{ev['id']}/runs/{run['id']}"), "EvalRun")
        return done

    monkeypatch.setattr(registry.evals, "put_item", cancel_after_first)
    assert EvalWorker(registry, concurrency=1).run_once() == run["id"]
    stopped = _ok(_call(env, "GET", f"/evals/{ev['id']}/runs/{run['id']}"), "EvalRun")
    assert stopped["status"] == "canceled" and stopped["result_counts"]["total"] == 1
    assert len(_items(env, ev["id"], run["id"])["data"]) == 1
    again = _ok(_call(env, "POST", f"/evals/{ev['id']}/runs/{run['id']}/cancel"), "EvalRun")
    assert again["status"] == "canceled"  # a finished run is answered as it is


def test_another_tenants_evals_runs_and_items_are_404s(env: dict[str, Any]) -> None:
    ev = _eval(env)
    run = _run(env, ev["id"], {"type": "jsonl", "source": {"type": "file_content", "content": [
        {"item": ITEMS[0], "sample": {"output_text": "4"}}]}})
    EvalWorker(env["registry"]).run_once()
    item = _items(env, ev["id"], run["id"])["data"][0]
    other = env["other"]
    base, run_path = f"/evals/{ev['id']}", f"/evals/{ev['id']}/runs/{run['id']}"
    for method, path in [("GET", base), ("POST", base), ("DELETE", base),
                         ("GET", f"{base}/runs"), ("POST", f"{base}/runs"),
                         ("GET", run_path), ("POST", run_path), ("POST", f"{run_path}/cancel"),
                         ("DELETE", run_path), ("GET", f"{run_path}/output_items"),
                         ("GET", f"{run_path}/output_items/{item['id']}")]:
        body = {"data_source": run["data_source"]} if path.endswith("/runs") else {}
        resp = _call(env, method, path, body if method == "POST" else None, key=other)
        _error(resp, 404)
    assert _ok(_call(env, "GET", "/evals", key=other), "EvalList")["data"] == []
    # an id of this tenant's under another eval of its own is no better
    second = _eval(env)
    _error(_call(env, "GET", f"/evals/{second['id']}/runs/{run['id']}"), 404, "run_id")
    assert _ok(_call(env, "GET", run_path), "EvalRun")["status"] == "completed"

    gone = _call(env, "DELETE", run_path).json()
    assert gone == {"object": "eval.run.deleted", "deleted": True, "run_id": run["id"]}
    _error(_call(env, "GET", f"{run_path}/output_items/{item['id']}"), 404)


def test_deleting_an_eval_deletes_its_runs_and_items(env: dict[str, Any]) -> None:
    registry = env["registry"]
    ev = _eval(env)
    run = _run(env, ev["id"], {"type": "jsonl", "source": {"type": "file_content", "content": [
        {"item": ITEMS[0], "sample": {"output_text": "4"}}]}})
    EvalWorker(registry).run_once()
    assert registry.evals.graded_indexes(run["id"]) == {0}
    _call(env, "DELETE", f"/evals/{ev['id']}")
    assert registry.evals.get_run(run["id"]) is None
    assert registry.evals.graded_indexes(run["id"]) == set()


@pytest.mark.parametrize(("reply", "label"), [
    ("good", "good"), ("Good.", "good"), ('{"label": "bad"}', "bad"), ('"bad"', "bad"),
    ("I'd say it is bad, not good", "bad"), ("goodness", None), ("", None),
])
def test_a_label_models_reply_is_read_as_one_label(reply: str, label: str | None) -> None:
    assert read_label(reply, ["good", "bad"]) == label


# -- an item schema is a tenant's program: what Quanta will run of it ------------------------

def _deep(levels: int) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string"}
    for _ in range(levels):
        schema = {"properties": {"a": schema}}
    return schema


@pytest.mark.parametrize(("schema", "param", "says"), [
    ({"$ref": "http://169.254.169.254/latest/meta-data"}, ".$ref", "fetches no other"),
    ({"properties": {"q": {"$ref": "other.json#/q"}}}, ".properties.q.$ref",
     "fetches no other"),
    ({"$ref": "#"}, "", "applies itself to the same value again"),
    ({"anyOf": [{"type": "object"}, {"allOf": [{"$ref": "#"}]}]}, "", "again"),
    ({"$ref": "#/nope"}, ".$ref", "points at nothing"),
    ({"$dynamicRef": "#nowhere"}, ".$dynamicRef", "points at nothing"),
    ({"enum": [7], "$ref": "#/enum/0"}, ".$ref", "not a schema"),
    ({"properties": {"question": {"type": "string", "pattern": "^(a+)+$"}}},
     ".properties.question.pattern", "regular expressions"),
    ({"patternProperties": {"^q": {}}}, ".patternProperties", "regular expressions"),
    ({"properties": {"q": {"format": "regex"}}}, ".properties.q.format",
     "regular expressions"),
    ({"x-hidden": {"pattern": "^(a+)+$"}, "$ref": "#/x-hidden"}, ".$ref->#/x-hidden.pattern",
     "regular expressions"),
    ({"properties": {"q": {"$id": "https://example.com/q"}}}, ".properties.q.$id",
     "one document"),
    ({"$schema": "http://json-schema.org/draft-04/schema#"}, ".$schema", "2020-12"),
    ({"$defs": {**{f"d{i}": {"allOf": [{"$ref": f"#/$defs/d{i + 1}"}] * 2}
                   for i in range(16)}, "d16": {}},
      "$ref": "#/$defs/d0"}, ".$defs.d", "more than 1000 subschemas"),
    (_deep(40), "", "levels deep"),
    ({"enum": ["x" * 1000] * 80}, "", "KiB"),
])
def test_an_item_schema_quanta_would_not_run_is_refused_naming_it(
        env: dict[str, Any], schema: dict[str, Any], param: str, says: str) -> None:
    body = {"data_source_config": {"type": "custom", "item_schema": schema},
            "testing_criteria": _criteria()}
    error = _error(_call(env, "POST", "/evals", body), 400)
    assert error["param"].startswith(f"data_source_config.item_schema{param}"), error
    assert says in error["message"], error


def test_an_item_schema_with_local_references_is_taken(env: dict[str, Any]) -> None:
    schema = {"$schema": "https://json-schema.org/draft/2020-12/schema",
              "$id": "https://example.com/item.json", "type": "object",
              "properties": {"question": {"$ref": "#/$defs/text"},
                             "answer": {"$ref": "#text"},
                             "tree": {"$ref": "#/$defs/tree"}},
              "required": ["question", "answer"],
              "$defs": {"text": {"$anchor": "text", "type": "string", "maxLength": 100},
                        "tree": {"type": "array", "items": {"$ref": "#/$defs/tree"}}}}
    ev = _eval(env, data_source_config={"type": "custom", "item_schema": schema})
    run = _run(env, ev["id"], {"type": "jsonl", "source": _inline(
        [{**ITEMS[0], "tree": [[], [[]]]}])})
    assert run["status"] == "queued"
    resp = _call(env, "POST", f"/evals/{ev['id']}/runs", {"data_source": {
        "type": "jsonl", "source": _inline([ITEMS[0], {**ITEMS[1], "tree": [["leaf"]]}])}})
    assert "is not of type 'array'" in _error(
        resp, 400, "data_source.source.content[1].item")["message"]


def test_a_stored_item_schema_is_checked_again_when_a_run_is_created(
        env: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """Evals stored before Quanta refused such schemas, and schemas that only misbehave on
    some items: a 400 naming what is wrong, never a 500, a hang or a fetch."""
    registry = env["registry"]
    fetched: list[str] = []
    schemas = FastAPI()

    @schemas.get("/{name}")
    def schema(name: str) -> dict[str, Any]:
        fetched.append(name)
        return {"type": "object"}

    def stored(item_schema: dict[str, Any]) -> str:
        config = {"type": "custom", "schema": {"type": "object",
                                               "properties": {"item": item_schema}}}
        return registry.evals.create(tenant_id="local", name="old", data_source_config=config,
                                     testing_criteria=_eval(env)["testing_criteria"]).id

    def refused(eval_id: str, items: list[dict[str, Any]]) -> dict[str, Any]:
        source = {"type": "jsonl", "source": _inline(items)}
        return _error(_call(env, "POST", f"/evals/{eval_id}/runs", {"data_source": source}),
                      400)

    with serve_api(schemas) as url:
        remote = refused(stored({"$ref": f"{url}/item.json"}), ITEMS[:1])
    assert "fetches no other schema" in remote["message"] and fetched == []
    assert "again" in refused(stored({"$ref": "#"}), ITEMS[:1])["message"]
    slow = refused(stored({"properties": {"question": {"pattern": "^(a+)+$"}}}),
                   [{"question": "a" * 40 + "!", "answer": "x"}])
    assert slow["param"] == "data_source_config.item_schema.properties.question.pattern"

    # a recursive schema is fine, until an item nests deeper than jsonschema can recurse
    tree = _eval(env, data_source_config={"type": "custom", "item_schema": {
        "$defs": {"t": {"type": "array", "items": {"$ref": "#/$defs/t"}}},
        "properties": {"question": {"$ref": "#/$defs/t"}}}})["id"]
    nested: list[Any] = []
    for _ in range(600):
        nested = [nested]
    deep = refused(tree, [{"question": [[], [[]]]}, {"question": nested}])
    assert deep["message"].startswith("data_source.source.content[1]: the eval's")
    assert "nests 602 levels deep, too deep" in deep["message"]
    nested = []
    for _ in range(60):
        nested = [nested]
    assert _run(env, tree, {"type": "jsonl", "source": _inline([{"question": nested}])})

    # $refs that share their targets apply 2**depth subschemas to a nested item: the
    # budget of steps stops it
    monkeypatch.setattr("tune.evals.item_schemas.BUDGET", 20_000)
    doubling = _eval(env, data_source_config={"type": "custom", "item_schema": {
        "$defs": {"a": {"allOf": [{"items": {"$ref": "#/$defs/a"}}] * 2}},
        "properties": {"question": {"$ref": "#/$defs/a"}}}})["id"]
    nested = []
    for _ in range(30):
        nested = [nested]
    costly = refused(doubling, [{"question": [[]]}, {"question": nested}])
    assert "content[1]" in costly["message"] and "more than 20000 steps" in costly["message"]


# -- criteria over several bases; sizes; thresholds -----------------------------------------

def test_a_multi_criterions_model_graders_ask_their_own_models_servers(
        env: dict[str, Any], tmp_path: Path) -> None:
    registry = env["registry"]
    other_dir = tmp_path / "other-model"
    other_dir.mkdir()
    (other_dir / "config.json").write_text('{"model_type": "llama"}')
    registry.add_base_model(OTHER_BASE, other_dir, source="test")
    other = FakeServe(registry, base=OTHER_BASE)
    judge = [{"role": "user", "content": "Score: {{sample.output_text}}"}]
    both = {"type": "multi", "name": "judges", "calculate_output": "(here + there) / 2",
            "graders": {"here": {"type": "score_model", "name": "here", "model": MODEL,
                                 "input": judge},
                        "there": {"type": "score_model", "name": "there",
                                  "model": OTHER_BASE, "input": judge}}}
    resp = _call(env, "POST", "/evals", {"testing_criteria": [both], "data_source_config": {
        "type": "custom", "item_schema": ITEM_SCHEMA}})  # multi is Quanta's: no OpenAI shape
    assert resp.status_code == 201, resp.text
    ev = resp.json()
    run = _run(env, ev["id"], {"type": "jsonl", "source": {"type": "file_content", "content": [
        {"item": item, "sample": {"output_text": item["answer"]}} for item in ITEMS[:2]]}})
    with serve_api(other.app) as url:
        registry.serve_endpoints.register(base_model_id=OTHER_BASE, engine="fake", url=url)
        EvalWorker(registry).run_once()
    done = _ok(_call(env, "GET", f"/evals/{ev['id']}/runs/{run['id']}"), "EvalRun")
    assert done["result_counts"] == {"total": 2, "passed": 2, "failed": 0, "errored": 0}
    assert env["serve"].models == Counter({MODEL: 2})
    assert other.models == Counter({OTHER_BASE: 2})
    result = _items(env, ev["id"], run["id"])["data"][0]["results"][0]
    assert result["metadata"]["sub_rewards"] == {"here": 0.9, "there": 0.9}


def test_input_messages_are_bounded_and_a_refused_prompt_is_stored_cut_short(
        env: dict[str, Any]) -> None:
    ev = _eval(env)
    long = {"question": "x" * 100_000, "answer": "x"}
    file_id = _upload(env, [ITEMS[0], long]).json()["id"]
    thrice = _completions({"type": "file_id", "id": file_id})
    thrice["input_messages"]["template"] = [
        {"role": "user", "content": "{{item.question}}"}] * 3  # each under render's bound
    resp = _call(env, "POST", f"/evals/{ev['id']}/runs", {"data_source": thrice})
    message = _error(resp, 400, "data_source.input_messages")["message"]
    assert "line 2" in message and "256 KiB" in message

    too_long = {"question": "y" * (CONTEXT + 10_000), "answer": "y"}
    run = _run(env, ev["id"], _completions(_inline([ITEMS[0], too_long])))
    EvalWorker(env["registry"]).run_once()
    refused = _items(env, ev["id"], run["id"])["data"][1]
    assert refused["status"] == "error"
    assert refused["sample"]["error"]["code"] == "context_length_exceeded"
    kept = refused["sample"]["input"]
    assert kept[0] == {"role": "system", "content": "Answer briefly."}
    assert 0 < sum(len(m["content"]) for m in kept) <= 8192
    assert refused["datasource_item"] == too_long  # the item itself is kept whole


@pytest.mark.parametrize("threshold", ["NaN", "Infinity", "-Infinity", "1e400", "1" + "0" * 400])
def test_a_pass_threshold_must_be_a_finite_number(env: dict[str, Any], threshold: str) -> None:
    criterion = json.dumps({**SIMILAR, "pass_threshold": 0.5}).replace("0.5", threshold)
    body = ('{"data_source_config": {"type": "custom", "item_schema": {}}, '
            f'"testing_criteria": [{criterion}]}}')
    resp = env["client"].post("/v1/evals", content=body, headers={
        **_h(env["key"]), "Content-Type": "application/json"})
    assert "finite" in _error(resp, 400, "testing_criteria[0].pass_threshold")["message"]


# -- runners stop cleanly ---------------------------------------------------------------------

def test_a_stopping_worker_gives_its_run_back_and_the_next_goes_on(
        env: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    registry, serve = env["registry"], env["serve"]
    ev = _eval(env, criteria=[_criteria()[0]])
    run = _run(env, ev["id"], _completions(_inline(ITEMS)))
    stopping = EvalWorker(registry, "stopping", concurrency=1)
    put_item = registry.evals.put_item

    def stop_after_first(*args: Any, **kwargs: Any) -> bool:
        stopping.stop.set()  # SIGTERM arrives while the first item is stored
        return put_item(*args, **kwargs)

    monkeypatch.setattr(registry.evals, "put_item", stop_after_first)
    assert stopping.run_once() == run["id"]
    monkeypatch.setattr(registry.evals, "put_item", put_item)
    back = registry.evals.get_run(run["id"])
    assert (back.status, back.worker_id, back.attempts) == ("queued", None, 0)
    assert back.result_counts["total"] == 1
    assert all(k.revoked_at is not None for k in registry.tenants.keys("local")
               if k.name == registry.evals.key_name(run["id"]))
    assert EvalWorker(registry, "next").run_once() == run["id"]
    done = _ok(_call(env, "GET", f"/evals/{ev['id']}/runs/{run['id']}"), "EvalRun")
    assert done["status"] == "completed" and done["result_counts"]["total"] == 5
    assert set(serve.asked.values()) == {1} and len(serve.asked) == 5


def test_the_runner_command_stops_on_sigterm(quanta_home: Path) -> None:
    """A container's stop (SIGTERM) ends the runner's loops, as Ctrl-C does: exit 0."""
    proc = subprocess.Popen(
        quanta_command("tune", "runner", "--lanes", "3", "--poll-interval", "0.2"),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "QUANTA_HOME": str(quanta_home), "COLUMNS": "200"})
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if "lane(s)" in line:
                break
        else:
            pytest.fail(f"the runner exited first ({proc.wait()})")
        assert "3 lane(s)" in line
        time.sleep(0.5)  # its loops polling
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
