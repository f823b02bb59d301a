"""OpenAI's Batch API on the tune API, through the official SDK, without vLLM: input
files checked line by line, batches answered by ``BatchWorker`` through a fake serve (a
small FastAPI app that authenticates as serve does and counts what it is asked), cancel,
expiry, a killed runner resumed, and every object validated against OpenAI's schema."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import openai
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.testclient import TestClient

from quanta.config import Settings
from quanta.processes import free_port
from quanta.registry import Registry, utcnow
from quanta.tenancy import AuthError, authenticate, bearer_token, create_key, create_tenant
from tests.support.fixtures import fake_adapter_dir, fake_base_models
from tests.support.openai_schema import OpenAISchemas
from tests.support.servers import serve_api
from tune.api.app import create_app
from tune.batches import runner as runner_module
from tune.batches.runner import BatchWorker

BASE = "smollm2-135m-instruct"
conforms = OpenAISchemas("openai-batch.json").conforms


@dataclass
class FakeServe:
    """What the fake serve saw: each request's custom id (its prompt), the tenants its
    keys acted as, the most requests in flight at once; ``hook(n, prompt)`` runs at the
    n-th request and may answer in its place."""

    asked: Counter[str] = field(default_factory=Counter)
    tenants: set[str] = field(default_factory=set)
    in_flight: int = 0
    most_in_flight: int = 0
    hook: Callable[[int, str], JSONResponse | None] | None = None


def fake_serve_app(registry: Registry, seen: FakeServe) -> FastAPI:
    app = FastAPI()

    async def answer(request: Request, kind: str) -> Any:
        try:
            tenant = authenticate(registry, bearer_token(request.headers.get("authorization")))
        except AuthError:
            return JSONResponse({"error": {"message": "bad key"}}, status_code=401)
        seen.tenants.add(tenant.tenant_id)
        body = await request.json()
        prompt = (body["messages"][-1]["content"] if "messages" in body
                  else body.get("prompt") or body.get("input"))
        seen.asked[prompt] += 1
        seen.in_flight += 1
        seen.most_in_flight = max(seen.most_in_flight, seen.in_flight)
        try:
            await asyncio.sleep(0.02)
            if seen.hook is not None:
                replaced = seen.hook(sum(seen.asked.values()), prompt)
                if replaced is not None:
                    return replaced
        finally:
            seen.in_flight -= 1
        usage = {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}
        if kind == "chat":
            return {"id": f"chatcmpl-{prompt}", "object": "chat.completion", "created": 1,
                    "model": body["model"], "usage": usage,
                    "choices": [{"index": 0, "finish_reason": "stop", "message": {
                        "role": "assistant", "content": f"answer to {prompt}"}}]}
        return {"id": f"cmpl-{prompt}", "object": "text_completion", "created": 1,
                "model": body["model"], "usage": usage,
                "choices": [{"index": 0, "text": f"answer to {prompt}", "finish_reason": "stop",
                             "logprobs": None}]}

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> Any:
        return await answer(request, "chat")

    @app.post("/v1/completions")
    async def completions(request: Request) -> Any:
        return await answer(request, "completion")

    return app


@dataclass
class Env:
    registry: Registry
    sdk: openai.OpenAI
    other: openai.OpenAI
    http: TestClient
    key: str
    serve: FakeServe
    adapter: str
    other_adapter: str
    endpoint_id: str

    def upload(self, lines: list[Any], sdk: openai.OpenAI | None = None) -> str:
        data = "".join(line if isinstance(line, str) else json.dumps(line) + "\n"
                       for line in lines).encode()
        return (sdk or self.sdk).files.create(file=("requests.jsonl", data),
                                              purpose="batch").id

    def batch(self, lines: list[Any], endpoint: str = "/v1/chat/completions",
              **kwargs: Any) -> Any:
        created = self.http.post("/v1/batches", headers=self.auth, json={
            "input_file_id": self.upload(lines), "endpoint": endpoint,
            "completion_window": "24h", **kwargs})
        assert created.status_code == 200, created.text
        return conforms(created.json(), "Batch")

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    def retrieve(self, batch_id: str) -> dict[str, Any]:
        response = self.http.get(f"/v1/batches/{batch_id}", headers=self.auth)
        return conforms(response.json(), "Batch")

    def file_lines(self, file_id: str) -> list[dict[str, Any]]:
        return [json.loads(line) for line in
                self.sdk.files.content(file_id).read().decode().splitlines()]


@pytest.fixture
def env(quanta_home: Path, tmp_path: Path) -> Iterator[Env]:
    settings = Settings(home=quanta_home, allow_anonymous=False, batch_concurrency=2)
    registry = Registry.open(settings)
    fake_base_models(registry, tmp_path / "base", BASE)
    create_tenant(registry, "other")
    adapter = registry.add_adapter("local", BASE, fake_adapter_dir(tmp_path / "a"),
                                   suffix="plain").name
    other_adapter = registry.add_adapter("other", BASE, fake_adapter_dir(tmp_path / "b"),
                                         suffix="theirs").name
    _, key = create_key(registry, "local")
    _, other_key = create_key(registry, "other")
    seen = FakeServe()
    with serve_api(fake_serve_app(registry, seen)) as url:
        endpoint = registry.serve_endpoints.register(base_model_id=BASE, engine="fake",
                                                     url=url)
        http = TestClient(create_app(settings, registry))
        yield Env(registry, _sdk(http, key), _sdk(http, other_key), http, key, seen, adapter,
                  other_adapter, endpoint.id)


def _sdk(http: TestClient, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url="http://testserver/v1", api_key=key, http_client=http,
                         max_retries=0)


def chat_line(custom_id: str, model: str = BASE, **body: Any) -> dict[str, Any]:
    return {"custom_id": custom_id, "method": "POST", "url": "/v1/chat/completions",
            "body": {"model": model, "max_tokens": 4,
                     "messages": [{"role": "user", "content": custom_id}], **body}}


def _refused(call: Callable[[], Any], error: type[openai.APIStatusError]) -> dict[str, Any]:
    with pytest.raises(error) as exc:
        call()
    body = exc.value.response.json()
    conforms(body, "ErrorResponse")
    return body["error"]


# -- input files ------------------------------------------------------------------------

BAD_LINES = [
    ("{not json\n", "not valid JSON"),
    ({"method": "POST", "url": "/v1/chat/completions", "body": {"model": BASE}},
     "custom_id is missing"),
    (chat_line("a"), "custom_id 'a' is already used on line 1"),
    ({**chat_line("b"), "method": "GET"}, "method must be 'POST'"),
    ({**chat_line("b"), "url": "/v1/embeddings"}, "url must be one of"),
    ({**chat_line("b"), "body": ["model", BASE]}, "body must be a JSON object"),
    ({**chat_line("b"), "body": {"messages": []}}, "body.model is missing"),
    (chat_line("b", stream=True), "body.stream: streaming is not supported in batches"),
]


@pytest.mark.parametrize(("line", "problem"), BAD_LINES,
                         ids=[f"{i}-{p.split()[0]}" for i, (_, p) in enumerate(BAD_LINES)])
def test_an_upload_with_a_bad_line_is_refused_naming_it(env: Env, line: Any,
                                                        problem: str) -> None:
    error = _refused(lambda: env.upload([chat_line("a"), line, chat_line("c")]),
                     openai.BadRequestError)
    assert error["param"] == "file" and f"line 2: {problem}" in error["message"], error
    assert env.sdk.files.list().data == []


def test_an_upload_of_too_many_requests_is_refused(env: Env,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("tune.batches.lines.MAX_REQUESTS", 3)
    error = _refused(lambda: env.upload([chat_line(str(i)) for i in range(4)]),
                     openai.BadRequestError)
    assert "line 4: a batch may hold at most 3 requests" in error["message"]
    file = env.sdk.files.retrieve(env.upload([chat_line(str(i)) for i in range(3)]))
    assert file.purpose == "batch"


def test_a_batch_file_may_arrive_in_parts(env: Env) -> None:
    data = json.dumps(chat_line("a")).encode() + b"\n"
    upload = env.sdk.uploads.create(filename="r.jsonl", purpose="batch", bytes=len(data),
                                    mime_type="application/jsonl")
    part = env.sdk.uploads.parts.create(upload.id, data=data)
    done = env.sdk.uploads.complete(upload.id, part_ids=[part.id])
    assert done.file is not None and done.file.purpose == "batch"
    assert env.batch([chat_line("x")])["status"] == "validating"


def test_creating_a_batch_checks_every_line_against_it(env: Env) -> None:
    completions = {"custom_id": "c", "method": "POST", "url": "/v1/completions",
                   "body": {"model": BASE, "prompt": "hi"}}
    for lines, problem in (
            ([chat_line("a"), completions],
             "line 2: url '/v1/completions' is not the batch's endpoint"),
            ([chat_line("a"), chat_line("b", "no-such-model")],
             "line 2: body.model 'no-such-model' does not exist"),
            ([chat_line("a", env.adapter), chat_line("b", env.other_adapter)],
             f"line 2: body.model '{env.other_adapter}' does not exist")):
        file_id = env.upload(lines)
        error = _refused(lambda file_id=file_id: env.sdk.batches.create(
            input_file_id=file_id, endpoint="/v1/chat/completions", completion_window="24h"),
            openai.BadRequestError)
        assert error["param"] == "input_file_id" and problem in error["message"], error
    assert env.sdk.batches.list().data == []


def test_bad_batch_requests_name_the_field(env: Env) -> None:
    file_id = env.upload([chat_line("a")])
    fine_tune = env.sdk.files.create(file=("t.jsonl", json.dumps({"messages": [
        {"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}) + "\n"),
        purpose="fine-tune").id
    good = {"input_file_id": file_id, "endpoint": "/v1/chat/completions",
            "completion_window": "24h"}
    for change, param in (({"endpoint": "/v1/embeddings"}, "endpoint"),
                          ({"completion_window": "1h"}, "completion_window"),
                          ({"metadata": {f"k{i}": "v" for i in range(17)}}, "metadata"),
                          ({"input_file_id": fine_tune}, "input_file_id")):
        error = _refused(lambda change=change: env.sdk.batches.create(**{**good, **change}),
                         openai.BadRequestError)
        assert error["param"] == param, error
    error = _refused(lambda: env.sdk.batches.create(**{**good, "input_file_id": "file-nope"}),
                     openai.NotFoundError)
    assert error["param"] == "input_file_id"
    other_file = env.upload([chat_line("a")], sdk=env.other)
    _refused(lambda: env.sdk.batches.create(**{**good, "input_file_id": other_file}),
             openai.NotFoundError)
    assert env.sdk.batches.list().data == []
    batch = env.sdk.batches.create(**good, metadata={"run": "nightly"})
    assert batch.metadata == {"run": "nightly"} and batch.status == "validating"


def test_output_expires_after_is_refused_as_files_never_expire(env: Env) -> None:
    """Quanta's files are kept until deleted: a batch that asks for expiring output files
    is refused, naming the field, rather than accepted and not honoured."""
    file_id = env.upload([chat_line("a")])
    for expiry in ({"anchor": "created_at", "seconds": 7200},
                   {"anchor": "created_at", "seconds": 60}):
        error = _refused(lambda expiry=expiry: env.sdk.batches.create(
            input_file_id=file_id, endpoint="/v1/chat/completions", completion_window="24h",
            output_expires_after=expiry), openai.BadRequestError)
        assert error["param"] == "output_expires_after", error
        assert "until they are deleted" in error["message"]
    assert env.sdk.batches.list().data == []


def test_another_tenants_batch_is_not_found(env: Env) -> None:
    batch = env.batch([chat_line("a")])
    for call in (lambda: env.other.batches.retrieve(batch["id"]),
                 lambda: env.other.batches.cancel(batch["id"]),
                 lambda: env.sdk.batches.retrieve("batch-nope")):
        assert _refused(call, openai.NotFoundError)["code"] == "not_found"
    assert env.other.batches.list().data == []
    assert env.retrieve(batch["id"])["status"] == "validating"


def test_batches_are_listed_newest_first_in_pages(env: Env) -> None:
    ids = [env.batch([chat_line("a")])["id"] for _ in range(3)]
    first = conforms(env.http.get("/v1/batches?limit=2", headers=env.auth).json(),
                     "ListBatchesResponse")
    assert [b["id"] for b in first["data"]] == ids[:0:-1] and first["has_more"] is True
    rest = conforms(env.http.get(f"/v1/batches?limit=2&after={first['last_id']}",
                                 headers=env.auth).json(), "ListBatchesResponse")
    assert [b["id"] for b in rest["data"]] == ids[:1] and rest["has_more"] is False
    assert [b.id for b in env.sdk.batches.list(limit=1)] == ids[::-1]  # the SDK pages on
    assert _refused(lambda: env.sdk.batches.list(limit=101), openai.BadRequestError)[
        "param"] == "limit"


# -- running batches --------------------------------------------------------------------

def test_a_batch_is_answered_through_serve_into_its_output_file(env: Env) -> None:
    lines = [chat_line(f"q{i}", env.adapter if i % 2 else BASE) for i in range(6)]
    batch = env.batch(lines, metadata={"k": "v"})
    assert batch["request_counts"] == {"total": 6, "completed": 0, "failed": 0}
    assert BatchWorker(env.registry, "runner-1").run_once() == batch["id"]
    assert BatchWorker(env.registry, "runner-1").run_once() is None

    done = env.retrieve(batch["id"])
    assert done["status"] == "completed"
    assert done["request_counts"] == {"total": 6, "completed": 6, "failed": 0}
    assert done["usage"]["input_tokens"] == 30 and done["usage"]["total_tokens"] == 42
    assert done["created_at"] <= done["in_progress_at"] <= done["finalizing_at"] \
        <= done["completed_at"] < done["expires_at"]
    assert "error_file_id" not in done and done["metadata"] == {"k": "v"}
    output = env.file_lines(done["output_file_id"])
    assert [line["custom_id"] for line in output] == [f"q{i}" for i in range(6)]
    for line, request in zip(output, lines, strict=True):
        assert line["id"].startswith("batch_req_") and line["error"] is None
        assert line["response"]["status_code"] == 200
        body = line["response"]["body"]
        assert body["model"] == request["body"]["model"]
        assert body["choices"][0]["message"]["content"] == f"answer to {line['custom_id']}"
    file = OpenAISchemas("openai-fine-tuning.json").conforms(
        env.http.get(f"/v1/files/{done['output_file_id']}", headers=env.auth).json(),
        "OpenAIFile")
    assert file["purpose"] == "batch_output"
    assert file["filename"] == f"{batch['id']}_output.jsonl"

    assert env.serve.asked == Counter({f"q{i}": 1 for i in range(6)})
    assert env.serve.tenants == {"local"} and env.serve.most_in_flight == 2
    minted = [k for k in env.registry.tenants.keys("local") if k.name == f"batch {batch['id']}"]
    assert len(minted) == 1 and minted[0].revoked_at is not None  # revoked when it stopped
    assert env.sdk.batches.retrieve(batch["id"]).output_file_id == done["output_file_id"]


def test_completions_batches_and_error_answers(env: Env) -> None:
    """A /v1/completions batch; serve's error answers go to the error file with their
    status and body (counted failed), as OpenAI's batches write failed requests."""
    def refuse_q1(_n: int, prompt: str) -> JSONResponse | None:
        if prompt == "q1":
            return JSONResponse({"error": {"message": "no", "type": "invalid_request_error",
                                           "param": None, "code": None}}, status_code=400)
        return None

    env.serve.hook = refuse_q1
    lines = [{"custom_id": f"c{i}", "method": "POST", "url": "/v1/completions",
              "body": {"model": BASE, "prompt": f"q{i}", "max_tokens": 3}} for i in range(3)]
    batch = env.batch(lines, endpoint="/v1/completions")
    BatchWorker(env.registry).run_once()
    done = env.retrieve(batch["id"])
    assert done["status"] == "completed"
    assert done["request_counts"] == {"total": 3, "completed": 2, "failed": 1}
    output = env.file_lines(done["output_file_id"])
    assert [(o["custom_id"], o["response"]["status_code"]) for o in output] == [
        ("c0", 200), ("c2", 200)]
    [refused] = env.file_lines(done["error_file_id"])
    assert refused["custom_id"] == "c1" and refused["response"]["status_code"] == 400
    assert refused["response"]["body"]["error"]["message"] == "no"
    assert output[0]["response"]["body"]["choices"][0]["text"] == "answer to q0"


def test_lines_that_cannot_be_asked_go_to_the_error_file(env: Env) -> None:
    batch = env.batch([chat_line("a"), chat_line("b")])
    env.registry.serve_endpoints.unregister(env.endpoint_id)  # the base's server is gone...
    env.registry.serve_endpoints.register(base_model_id=BASE, engine="fake",  # ...or down
                                          url=f"http://127.0.0.1:{free_port()}")
    BatchWorker(env.registry).run_once()
    done = env.retrieve(batch["id"])
    assert done["status"] == "completed"
    assert done["request_counts"] == {"total": 2, "completed": 0, "failed": 2}
    errors = env.file_lines(done["error_file_id"])
    assert [e["custom_id"] for e in errors] == ["a", "b"]
    assert all(e["response"] is None and e["error"]["code"] == "connection_error"
               and e["id"].startswith("batch_req_") for e in errors)
    assert env.file_lines(done["output_file_id"]) == []
    assert not env.serve.asked


def test_cancel_stops_asking_and_keeps_the_answered_lines(env: Env) -> None:
    batch = env.batch([chat_line(f"q{i}") for i in range(6)])

    cancelling = []

    def cancel_at_third(n: int, _prompt: str) -> None:
        if n == 3:
            cancelling.append(conforms(env.http.post(f"/v1/batches/{batch['id']}/cancel",
                                                     headers=env.auth).json(), "Batch"))

    env.serve.hook = cancel_at_third
    BatchWorker(env.registry, concurrency=1).run_once()
    assert cancelling[0]["status"] == "cancelling"  # until the runner stops asking
    done = env.retrieve(batch["id"])
    assert done["status"] == "cancelled" and done["cancelling_at"] <= done["cancelled_at"]
    assert done["request_counts"] == {"total": 6, "completed": 3, "failed": 0}
    assert [o["custom_id"] for o in env.file_lines(done["output_file_id"])] == [
        "q0", "q1", "q2"]
    assert sum(env.serve.asked.values()) == 3
    assert env.sdk.batches.cancel(batch["id"]).status == "cancelled"  # again: as it is


def test_a_batch_no_runner_started_is_cancelled_at_once(env: Env) -> None:
    batch = env.batch([chat_line("a")])
    cancelled = env.sdk.batches.cancel(batch["id"])
    assert cancelled.status == "cancelled"
    conforms(env.retrieve(batch["id"]), "Batch")
    assert BatchWorker(env.registry).run_once() is None  # nothing left to run
    assert env.sdk.batches.cancel(batch["id"]).status == "cancelled"  # again: as it is

    finished = env.batch([chat_line("b")])
    BatchWorker(env.registry).run_once()
    error = _refused(lambda: env.sdk.batches.cancel(finished["id"]), openai.ConflictError)
    assert error["param"] == "batch_id" and "completed" in error["message"]


class Killed(BaseException):
    """The runner's process dies (not an error it could handle)."""


def test_a_killed_runners_batch_is_resumed_without_asking_a_line_twice(
        env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    batch = env.batch([chat_line(f"q{i}") for i in range(6)])
    rows = env.registry.batches
    store = rows.put_result
    stored = []

    def dies_at_the_fourth(*args: Any, **kwargs: Any) -> bool:
        if len(stored) == 3:
            raise Killed
        stored.append(args[2])  # (batch_id, worker_id, line, ...)
        return store(*args, **kwargs)

    monkeypatch.setattr(rows, "put_result", dies_at_the_fourth)
    with pytest.raises(Killed):
        BatchWorker(env.registry, "dead", concurrency=1).run_once()
    monkeypatch.setattr(rows, "put_result", store)
    half = env.retrieve(batch["id"])
    assert half["status"] == "in_progress" and half["request_counts"]["completed"] == 3
    assert rows.answered_lines(batch["id"]) == {1, 2, 3}

    # A live runner's batch is not taken; once its heartbeat is stale, it is.
    assert BatchWorker(env.registry, "next", stale_after=60).run_once() is None
    assert BatchWorker(env.registry, "next", stale_after=0).run_once() == batch["id"]
    done = env.retrieve(batch["id"])
    assert done["status"] == "completed"
    assert done["request_counts"] == {"total": 6, "completed": 6, "failed": 0}
    assert [o["custom_id"] for o in env.file_lines(done["output_file_id"])] == [
        f"q{i}" for i in range(6)]
    # q3 was answered to the dead runner, which died before storing it: asked again.
    assert env.serve.asked == Counter({"q0": 1, "q1": 1, "q2": 1, "q3": 2, "q4": 1, "q5": 1})
    assert all(k.revoked_at for k in env.registry.tenants.keys("local")
               if k.name == f"batch {batch['id']}")


def test_a_batch_past_its_window_expires_with_its_answered_lines(env: Env) -> None:
    batch = env.batch([chat_line(f"q{i}") for i in range(5)])
    late = utcnow() + timedelta(hours=24, seconds=1)

    def clock() -> Any:  # the window ends once serve answered two lines
        return late if sum(env.serve.asked.values()) >= 2 else utcnow()

    BatchWorker(env.registry, concurrency=1, now=clock).run_once()
    done = env.retrieve(batch["id"])
    assert done["status"] == "expired" and "expired_at" in done
    assert done["request_counts"] == {"total": 5, "completed": 2, "failed": 0}
    assert [o["custom_id"] for o in env.file_lines(done["output_file_id"])] == ["q0", "q1"]
    errors = env.file_lines(done["error_file_id"])
    assert [(e["custom_id"], e["error"]["code"]) for e in errors] == [
        ("q2", "batch_expired"), ("q3", "batch_expired"), ("q4", "batch_expired")]

    never = env.batch([chat_line("z")])  # a batch whose window ended before any runner
    BatchWorker(env.registry, now=lambda: late).run_once()
    assert env.retrieve(never["id"])["status"] == "expired"
    assert env.serve.asked["z"] == 0


def test_a_batch_whose_input_file_is_gone_fails(env: Env) -> None:
    """An open batch's input file cannot be deleted over the API (409); one removed
    behind the API's back fails the batch, naming the file."""
    batch = env.batch([chat_line("a")])
    error = _refused(lambda: env.sdk.files.delete(batch["input_file_id"]),
                     openai.ConflictError)
    assert error["code"] == "file_in_use" and batch["id"] in error["message"]
    env.registry.delete("file", batch["input_file_id"], "local")
    BatchWorker(env.registry).run_once()
    failed = env.retrieve(batch["id"])
    assert failed["status"] == "failed" and "failed_at" in failed
    assert failed["errors"]["data"][0]["code"] == "file_not_found"
    assert failed["errors"]["data"][0]["param"] == "input_file_id"
    assert not env.serve.asked


def test_a_runner_that_lost_its_batch_stores_nothing_more(env: Env) -> None:
    """A runner whose claim went stale while it was still asking (another runner took the
    batch over) has its next answer refused, and stops: the counts and files are the new
    runner's alone."""
    batch = env.batch([chat_line(f"q{i}") for i in range(4)])
    rows = env.registry.batches

    def taken_over_at_the_second(n: int, _prompt: str) -> None:
        if n == 2:
            assert rows.requeue_stale(stale_after=-1) == [batch["id"]]
            assert rows.claim_next("thief").worker_id == "thief"

    env.serve.hook = taken_over_at_the_second
    BatchWorker(env.registry, "slow", concurrency=1).run_once()
    held = rows.get(batch["id"])
    assert held.worker_id == "thief" and held.status == "in_progress"
    assert rows.answered_lines(batch["id"]) == {1}  # q1's answer came too late
    assert held.request_counts == {"total": 4, "completed": 1, "failed": 0}
    assert sum(env.serve.asked.values()) == 2  # it stopped asking

    env.serve.hook = None
    assert BatchWorker(env.registry, "next", stale_after=0).run_once() == batch["id"]
    done = env.retrieve(batch["id"])
    assert done["status"] == "completed"
    assert done["request_counts"] == {"total": 4, "completed": 4, "failed": 0}
    assert [o["custom_id"] for o in env.file_lines(done["output_file_id"])] == [
        f"q{i}" for i in range(4)]


def test_the_heartbeat_runs_while_the_input_is_read_and_the_files_written(
        env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    """Reading a large input file or writing large output files may outlast
    ``stale_after``: the claim stays fresh throughout, so no other runner takes it."""
    batch = env.batch([chat_line("a"), chat_line("b")])
    rows = env.registry.batches
    taken: list[list[str]] = []

    def slowly(work: Callable[..., Any]) -> Callable[..., Any]:
        def slow(*args: Any, **kwargs: Any) -> Any:
            result = work(*args, **kwargs)
            time.sleep(1.5)  # longer than stale_after: only heartbeats keep the claim
            taken.append(rows.requeue_stale(stale_after=1.0))
            return result
        return slow

    monkeypatch.setattr(runner_module, "read_requests", slowly(runner_module.read_requests))
    monkeypatch.setattr(env.registry, "add_file", slowly(env.registry.add_file))
    BatchWorker(env.registry, "beating", heartbeat_interval=0.05).run_once()
    assert taken == [[], []]  # after the read, after the output file
    done = env.retrieve(batch["id"])
    assert done["status"] == "completed"
    assert done["request_counts"] == {"total": 2, "completed": 2, "failed": 0}


def test_files_too_large_to_store_fail_the_batch_saying_so(
        env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    """A failure that would repeat on every runner fails the batch at once, naming it,
    instead of three runners dying and a misleading ``worker_lost``."""
    batch = env.batch([chat_line(f"q{i}") for i in range(3)])
    monkeypatch.setattr(env.registry.settings, "max_upload_total_bytes", 100)
    files_before = {f.id for f in env.registry.list_files("local")}
    BatchWorker(env.registry).run_once()
    failed = env.retrieve(batch["id"])
    assert failed["status"] == "failed" and "failed_at" in failed
    error = failed["errors"]["data"][0]
    assert error["code"] == "output_file_too_large" and "at most 100 bytes" in error["message"]
    assert "output_file_id" not in failed
    assert {f.id for f in env.registry.list_files("local")} == files_before  # none left
    assert all(k.revoked_at for k in env.registry.tenants.keys("local")
               if k.name == f"batch {batch['id']}")
