"""OpenAI's Responses API through the tenancy middleware, over a fake engine that answers
as vLLM 0.32's Responses route does (its nulls included): the published shape, usage in
the metrics, stored Responses per tenant, ``previous_response_id``, the store's bounds,
and echoed completion logprobs."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from prometheus_client import REGISTRY
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, StreamingResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from quanta.config import Settings
from quanta.registry import Registry
from quanta.tenancy import create_key, create_tenant
from serve.access import ModelAccess
from serve.limits import TenantLimiter, TenantLimits
from serve.middleware import TenancyMiddleware
from serve.openai_shapes import conform
from serve.responses import ResponseStore, StoredResponses, input_items
from tests.support.fixtures import fake_adapter_dir, fake_base_models
from tests.support.openai_schema import OpenAISchemas

BASE = "tiny-base"
spec = OpenAISchemas("openai-serve.json")
USAGE = {"input_tokens": 7, "input_tokens_details": {"cached_tokens": 0,
                                                    "cache_write_tokens": 0},
         "output_tokens": 3, "output_tokens_details": {"reasoning_tokens": 0},
         "total_tokens": 10}


def _vllm_response(body: dict, number: int, status: str, usage: dict | None) -> dict:
    """A Response as vLLM 0.32 serialises it: its text says how many input items it got."""
    items = body["input"] if isinstance(body["input"], list) else [body["input"]]
    part = {"annotations": [], "text": f"{len(items)} items", "type": "output_text",
            "logprobs": None}
    output = [] if status == "in_progress" else [
        {"id": f"msg_{number}", "content": [part], "role": "assistant", "status": "completed",
         "type": "message", "phase": None}]
    return {"id": f"resp_{number}", "created_at": 1, "incomplete_details": None,
            "instructions": body.get("instructions"), "metadata": None,
            "model": body["model"], "object": "response", "output": output,
            "parallel_tool_calls": True, "temperature": 1.0, "tool_choice": "none",
            "tools": [], "top_p": 1.0, "background": False, "max_output_tokens": 16,
            "max_tool_calls": None, "previous_response_id": body.get("previous_response_id"),
            "prompt": None, "reasoning": None, "service_tier": "auto", "status": status,
            "text": None, "top_logprobs": None, "truncation": "disabled", "usage": usage,
            "user": None, "kv_transfer_params": None, "input_messages": None}


def _engine(seen: list[dict]) -> Starlette:
    async def responses(request: Request):
        body = await request.json()
        seen.append(body)
        number = len(seen)
        if not body.get("stream"):
            return JSONResponse(_vllm_response(body, number, "completed", USAGE))
        final = _vllm_response(body, number, "completed", USAGE)
        part = final["output"][0]["content"][0]
        events = [
            ("response.created", {"response": _vllm_response(body, number, "in_progress",
                                                              None)}),
            ("response.output_item.added", {"item": {**final["output"][0], "content": [],
                                                     "status": "in_progress"},
                                            "output_index": 0}),
            ("response.content_part.added", {"part": {**part, "text": "", "logprobs": []},
                                             "item_id": f"msg_{number}", "output_index": 0,
                                             "content_index": 0}),
            ("response.output_text.delta", {"delta": part["text"], "logprobs": [],
                                            "item_id": f"msg_{number}", "output_index": 0,
                                            "content_index": 0}),
            ("response.content_part.done", {"part": part, "item_id": f"msg_{number}",
                                            "output_index": 0, "content_index": 0}),
            ("response.completed", {"response": final})]
        if body.get("fail_midstream"):
            events[3:] = [("error", {"error": {"message": "boom", "type": "BadRequestError",
                                               "param": None, "code": 400}})]

        async def stream():
            for sequence, (kind, data) in enumerate(events):
                data = {**data, "sequence_number": sequence}
                if kind != "error":
                    data["type"] = kind
                yield f"event: {kind}\ndata: {json.dumps(data)}\n\n"

        return StreamingResponse(stream(), media_type="text/event-stream")

    async def completions(request: Request):
        body = await request.json()
        seen.append(body)
        return JSONResponse({"id": "cmpl-1", "object": "text_completion", "created": 1,
                             "model": body["model"], "system_fingerprint": None,
                             "choices": [{"index": 0, "text": "Hello there,",
                                          "finish_reason": "length",
                                          "logprobs": {"text_offset": [0, 5, 11],
                                                       "token_logprobs": [None, -9.8, -1.8],
                                                       "tokens": ["Hello", " there", ","],
                                                       "top_logprobs": [None, {" there": -9.8},
                                                                        {",": -1.8}]}}]})

    return Starlette(routes=[Route("/v1/responses", responses, methods=["POST"]),
                             Route("/v1/completions", completions, methods=["POST"])])


@pytest.fixture
def served(tmp_path: Path, quanta_home: Path):
    def make(store: ResponseStore | None = None, limits: TenantLimits | None = None):
        registry = Registry.open(Settings(home=quanta_home, allow_anonymous=False))
        fake_base_models(registry, tmp_path / "model", BASE)
        keys, names = {}, {}
        for tenant in ("acme", "globex"):
            create_tenant(registry, tenant)
            keys[tenant] = {"Authorization": f"Bearer {create_key(registry, tenant)[1]}"}
            names[tenant] = registry.add_adapter(tenant, BASE, fake_adapter_dir(
                tmp_path / tenant), suffix="a").name
        seen: list[dict] = []
        app = TenancyMiddleware(_engine(seen), access=ModelAccess(registry, BASE, BASE),
                                limiter=TenantLimiter(limits or TenantLimits()),
                                responses=StoredResponses(store or ResponseStore()))
        return TestClient(app), keys, names, seen
    return make


def _tokens(tenant: str, model: str, kind: str) -> float:
    labels = {"tenant": tenant, "model": model, "kind": kind}
    return REGISTRY.get_sample_value("quanta_tokens_total", labels) or 0.0


def _events(text: str) -> list[dict]:
    return [json.loads(line[6:]) for line in text.splitlines() if line.startswith("data: ")]


def test_a_response_in_openais_shape_with_usage_counted(served) -> None:
    client, keys, names, seen = served()
    before = _tokens("acme", names["acme"], "prompt"), _tokens("acme", names["acme"],
                                                               "completion")
    response = client.post("/v1/responses", headers=keys["acme"],
                           json={"model": names["acme"], "input": "hi"})
    assert response.status_code == 200, response.text
    body = spec.conforms(response.json(), "Response")
    assert body["error"] is None and "user" not in body and "text" not in body
    assert body["output"][0]["content"][0]["logprobs"] == []
    assert seen[-1]["model"] == names["acme"]
    assert _tokens("acme", names["acme"], "prompt") == before[0] + 7
    assert _tokens("acme", names["acme"], "completion") == before[1] + 3


def test_a_stream_in_openais_shape_stored_and_counted(served) -> None:
    client, keys, _, _ = served()
    before = _tokens("acme", BASE, "prompt")
    response = client.post("/v1/responses", headers=keys["acme"],
                           json={"model": BASE, "input": "hi", "stream": True})
    assert response.headers["content-type"].startswith("text/event-stream")
    assert "event: response.created" in response.text  # the event lines are kept
    events = _events(response.text)
    for event in events:
        spec.conforms(event, "ResponseStreamEvent")
    assert [e["type"] for e in events][-1] == "response.completed"
    assert _tokens("acme", BASE, "prompt") == before + 7
    stored = client.get(f"/v1/responses/{events[-1]['response']['id']}", headers=keys["acme"])
    assert stored.json() == events[-1]["response"]


def test_an_engine_error_midstream_is_openais_error_event(served) -> None:
    client, keys, _, _ = served()
    response = client.post("/v1/responses", headers=keys["acme"],
                           json={"model": BASE, "input": "hi", "stream": True,
                                 "fail_midstream": True})
    last = _events(response.text)[-1]
    assert spec.conforms(last, "ResponseStreamEvent") == {
        "type": "error", "code": "server_error", "message": "boom", "param": None,
        "sequence_number": 3}


def test_stored_responses_belong_to_their_tenant(served) -> None:
    client, keys, _, _ = served()
    made = client.post("/v1/responses", headers=keys["acme"],
                       json={"model": BASE, "input": [{"role": "user", "content": "hi"}]})
    response_id = made.json()["id"]
    assert client.get(f"/v1/responses/{response_id}", headers=keys["acme"]).json() == \
        made.json()
    items = client.get(f"/v1/responses/{response_id}/input_items", headers=keys["acme"])
    assert spec.conforms(items.json(), "ResponseItemList")["data"][0]["content"] == \
        [{"type": "input_text", "text": "hi"}]
    routes = [("GET", "/v1/responses/{}"), ("DELETE", "/v1/responses/{}"),
              ("GET", "/v1/responses/{}/input_items"), ("POST", "/v1/responses/{}/cancel")]
    for method, route in routes:
        foreign = client.request(method, route.format(response_id), headers=keys["globex"])
        unknown = client.request(method, route.format("resp_nothing"), headers=keys["globex"])
        assert foreign.status_code == unknown.status_code == 404
        assert foreign.json() == json.loads(unknown.text.replace("resp_nothing", response_id))
        assert spec.conforms(foreign.json(), "ErrorResponse")
    cancel = client.post(f"/v1/responses/{response_id}/cancel", headers=keys["acme"])
    assert cancel.status_code == 400 and "synchronous" in cancel.json()["error"]["message"]
    deleted = client.delete(f"/v1/responses/{response_id}", headers=keys["acme"])
    assert deleted.json() == {"id": response_id, "object": "response", "deleted": True}
    assert client.get(f"/v1/responses/{response_id}", headers=keys["acme"]).status_code == 404


def test_previous_response_id_is_the_conversation_so_far(served) -> None:
    client, keys, _, seen = served()
    first = client.post("/v1/responses", headers=keys["acme"],
                        json={"model": BASE, "input": "one", "instructions": "Be brief"}).json()
    second = client.post("/v1/responses", headers=keys["acme"],
                         json={"model": BASE, "input": "two",
                               "previous_response_id": first["id"]}).json()
    # The engine got the conversation (first input, its answer, the new input) and no id;
    # instructions are not carried over, as OpenAI documents.
    assert "previous_response_id" not in seen[-1]
    assert [(i.get("role"), i["content"]) for i in seen[-1]["input"]] == [
        ("user", [{"type": "input_text", "text": "one"}]),
        ("assistant", first["output"][0]["content"]), ("user", "two")]
    assert second["previous_response_id"] == first["id"]
    assert second["output"][0]["content"][0]["text"] == "3 items"
    third = client.post("/v1/responses", headers=keys["acme"],
                        json={"model": BASE, "input": "three", "stream": True,
                              "previous_response_id": second["id"]})
    assert len(seen[-1]["input"]) == 5
    assert _events(third.text)[-1]["response"]["previous_response_id"] == second["id"]
    foreign = client.post("/v1/responses", headers=keys["globex"],
                          json={"model": BASE, "input": "x", "previous_response_id": first["id"]})
    unknown = client.post("/v1/responses", headers=keys["globex"],
                          json={"model": BASE, "input": "x", "previous_response_id": "resp_0"})
    assert foreign.status_code == unknown.status_code == 404
    assert foreign.json() == json.loads(unknown.text.replace("resp_0", first["id"]))
    assert foreign.json()["error"]["param"] == "previous_response_id"
    assert len(seen) == 3  # neither reached the engine


def test_what_is_not_stored_or_not_offered(served) -> None:
    client, keys, names, seen = served()
    unstored = client.post("/v1/responses", headers=keys["acme"],
                           json={"model": BASE, "input": "hi", "store": False}).json()
    assert client.get(f"/v1/responses/{unstored['id']}", headers=keys["acme"]).status_code \
        == 404
    background = client.post("/v1/responses", headers=keys["acme"],
                             json={"model": BASE, "input": "hi", "background": True})
    assert background.status_code == 400 and background.json()["error"]["param"] == \
        "background"
    foreign_model = client.post("/v1/responses", headers=keys["globex"],
                                json={"model": names["acme"], "input": "hi"})
    assert foreign_model.status_code == 404 and foreign_model.json()["error"]["code"] == \
        "model_not_found"
    assert client.post("/v1/responses/input_tokens", headers=keys["acme"],
                       json={"model": BASE, "input": "hi"}).status_code == 404
    wrong = client.put(f"/v1/responses/{unstored['id']}", headers=keys["acme"], json={})
    assert wrong.status_code == 405 and wrong.headers["allow"] == "GET, DELETE"
    assert spec.conforms(wrong.json(), "ErrorResponse")
    assert len(seen) == 1


def test_a_response_counts_as_one_sequence_in_the_limits(served) -> None:
    client, keys, _, _ = served(limits=TenantLimits(rate=0.001, burst=2))
    ask = {"model": BASE, "input": "hi"}
    assert client.post("/v1/responses", headers=keys["acme"], json=ask).status_code == 200
    assert client.post("/v1/responses", headers=keys["acme"], json=ask).status_code == 200
    refused = client.post("/v1/responses", headers=keys["acme"], json=ask)
    assert refused.status_code == 429 and "retry-after" in refused.headers


def test_input_items_pages(served) -> None:
    client, keys, _, _ = served()
    messages = [{"role": "user", "content": f"m{i}"} for i in range(5)]
    made = client.post("/v1/responses", headers=keys["acme"],
                       json={"model": BASE, "input": messages}).json()
    url = f"/v1/responses/{made['id']}/input_items"

    def texts(page: dict) -> list[str]:
        return [item["content"][0]["text"] for item in page["data"]]

    first = client.get(url, params={"limit": 2}, headers=keys["acme"]).json()
    assert texts(first) == ["m4", "m3"] and first["has_more"]
    rest = client.get(url, params={"limit": 5, "after": first["last_id"]},
                      headers=keys["acme"]).json()
    assert texts(rest) == ["m2", "m1", "m0"] and not rest["has_more"]
    ascending = client.get(url, params={"order": "asc"}, headers=keys["acme"]).json()
    assert texts(ascending) == [f"m{i}" for i in range(5)]
    bad = client.get(url, params={"limit": 101}, headers=keys["acme"])
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "limit"


def test_the_store_is_bounded_oldest_first() -> None:
    store = ResponseStore(max_responses=2, max_bytes=10_000)
    for number in range(3):
        assert store.put("acme", {"id": f"r{number}", "output": []}, input_items("hi"))
    assert len(store) == 2 and store.get("acme", "r0") is None
    assert store.get("acme", "r2") is not None and store.get("globex", "r2") is None
    assert not store.put("acme", {"id": "huge", "output": ["x" * 20_000]}, [])
    small = ResponseStore(max_responses=100, max_bytes=600)
    for number in range(5):
        small.put("acme", {"id": f"r{number}", "output": ["x" * 150]}, [])
    assert len(small) == 3  # by bytes: each entry is about 180
    # The conversation of a Response whose predecessor was dropped begins at it.
    chained = ResponseStore(max_responses=2)
    chained.put("acme", {"id": "a", "output": []}, input_items("1"))
    chained.put("acme", {"id": "b", "output": []}, input_items("2"), "a")
    chained.put("acme", {"id": "c", "output": []}, input_items("3"), "b")
    assert [i["content"] for i in chained.history("acme", "c")] == [
        [{"type": "input_text", "text": "2"}], [{"type": "input_text", "text": "3"}]]
    assert chained.history("globex", "c") is None


def test_one_tenant_filling_its_budget_leaves_the_others_stored() -> None:
    """Each tenant has its own count and byte budget, and drops its own oldest: however
    many Responses acme stores, globex's stay retrievable."""
    store = ResponseStore(max_responses=3, max_bytes=1_000)
    store.put("globex", {"id": "g0", "output": []}, input_items("keep me"))
    for number in range(50):  # far past acme's budget, by count...
        assert store.put("acme", {"id": f"a{number}", "output": []}, input_items("hi"))
    for number in range(50, 60):  # ...and by bytes
        assert store.put("acme", {"id": f"a{number}", "output": ["x" * 300]}, [])
    assert store.get("globex", "g0") is not None
    assert store.history("globex", "g0") is not None
    assert [n for n in range(60) if store.get("acme", f"a{n}")] == [57, 58, 59]
    assert len(store) == 4

    # Beyond the total, the tenant holding the most loses its oldest, not the others.
    shared = ResponseStore(max_responses=100, max_bytes=2_000, max_total_bytes=2_500)
    for number in range(3):
        assert shared.put("globex", {"id": f"g{number}", "output": ["x" * 150]}, [])
    for number in range(20):
        shared.put("acme", {"id": f"a{number}", "output": ["x" * 150]}, [])
    assert all(shared.get("globex", f"g{n}") for n in range(3))
    assert shared.get("acme", "a19") is not None and shared.get("acme", "a0") is None
    # An id another tenant holds is never taken over.
    assert not shared.put("acme", {"id": "g0", "output": []}, [])
    assert shared.get("globex", "g0") is not None and shared.get("acme", "g0") is None


def test_a_client_cannot_choose_a_responses_id(served) -> None:
    """vLLM makes its ``request_id`` field the Response's id: refused, naming it, so ids
    stay the engine's own (a client cannot pick, or collide with, another's)."""
    client, keys, _, seen = served()
    chosen = client.post("/v1/responses", headers=keys["acme"],
                         json={"model": BASE, "input": "hi", "request_id": "resp_mine"})
    assert chosen.status_code == 400 and chosen.json()["error"]["param"] == "request_id"
    assert spec.conforms(chosen.json(), "ErrorResponse")
    assert seen == []  # never reached the engine
    made = client.post("/v1/responses", headers=keys["acme"],
                       json={"model": BASE, "input": "hi", "request_id": None})
    assert made.status_code == 200 and "request_id" not in seen[-1]


def test_a_query_string_that_is_not_utf8_is_a_400(served) -> None:
    """HTTP clients percent-encode, so the raw bytes go to the ASGI app directly."""
    client, keys, _, _ = served()
    made = client.post("/v1/responses", headers=keys["acme"],
                       json={"model": BASE, "input": "hi"}).json()
    sent: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": "GET", "scheme": "http",
             "path": f"/v1/responses/{made['id']}/input_items", "raw_path": b"",
             "query_string": b"after=\xff\xfe", "client": ("127.0.0.1", 1),
             "server": ("testserver", 80),
             "headers": [(b"authorization", keys["acme"]["Authorization"].encode())]}
    asyncio.run(client.app(scope, receive, send))
    assert sent[0]["status"] == 400
    body = json.loads(b"".join(m.get("body", b"") for m in sent[1:]))
    assert spec.conforms(body, "ErrorResponse")


def test_echoed_completion_logprobs_in_the_published_shape(served) -> None:
    """The prompt's first token has no conditional probability: 0.0 and {} (not null),
    which leave the prompt's summed log-probability as it was."""
    client, keys, _, _ = served()
    body = client.post("/v1/completions", headers=keys["acme"],
                       json={"model": BASE, "prompt": "Hello there", "echo": True,
                             "logprobs": 1, "max_tokens": 1}).json()
    logprobs = spec.conforms(body, "CreateCompletionResponse")["choices"][0]["logprobs"]
    assert logprobs["token_logprobs"] == [0.0, -9.8, -1.8]
    assert logprobs["top_logprobs"] == [{}, {" there": -9.8}, {",": -1.8}]
    chunk = {"object": "text_completion", "choices": [{"index": 0, "text": "Hi",
                                                        "logprobs": {"token_logprobs": [None],
                                                                     "top_logprobs": [None]}}]}
    assert conform(chunk)["choices"][0]["logprobs"] == {"token_logprobs": [0.0],
                                                        "top_logprobs": [{}]}
