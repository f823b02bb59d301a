"""The tenancy middleware in front of a fake OpenAI server (no engine needed)."""

from __future__ import annotations

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
from serve.middleware import TenancyMiddleware
from tests.support.fixtures import fake_adapter_dir, fake_base_models

BASE = "tiny-base"


def _engine_app(seen: list[dict], loaded: list[str]) -> Starlette:
    """Stands in for vLLM: echoes the model, reports usage, streams SSE with a usage chunk."""

    async def chat(request: Request):
        body = await request.json()
        seen.append(body)
        usage = {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}
        if not body.get("stream"):
            # vLLM's nulls where OpenAI's schema has none, and chat logprobs sans refusal.
            message = {"role": "assistant", "content": "ok", "refusal": None,
                       "annotations": None, "function_call": None, "tool_calls": None}
            return JSONResponse({"model": body.get("model"), "system_fingerprint": None,
                                 "choices": [{"text": "ok", "message": message,
                                              "logprobs": {"content": []}}],
                                 "usage": {**usage, "prompt_tokens_details": None}})

        async def events():
            for text in ("o", "k"):
                chunk = {"model": body["model"], "choices": [{"text": text}]}
                yield f"data: {json.dumps(chunk)}\n\n"
                if body.get("fail_midstream"):  # as vLLM streams an error
                    error = {"object": "error", "message": "boom", "type": "BadRequestError",
                             "param": None, "code": 400}
                    yield f"data: {json.dumps({'error': error})}\n\n"
                    return
            if (body.get("stream_options") or {}).get("include_usage"):
                yield f"data: {json.dumps({'choices': [], 'usage': usage})}\n\n"
            yield "data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")

    async def models(request: Request):
        return JSONResponse({"object": "list", "data": [
            {"id": BASE, "object": "model", "root": "/srv/models/base", "owned_by": "vllm"},
            *({"id": name, "object": "model", "root": "/srv/cache/x", "owned_by": "vllm"}
              for name in loaded),
        ]})

    async def health(request: Request):
        return JSONResponse({})

    return Starlette(routes=[Route("/v1/chat/completions", chat, methods=["POST"]),
                             Route("/v1/completions", chat, methods=["POST"]),
                             Route("/v1/models", models), Route("/health", health),
                             Route("/v1/load_lora_adapter", chat, methods=["POST"])])


@pytest.fixture
def setup(tmp_path: Path, quanta_home: Path):
    registry = Registry.open(Settings(home=quanta_home, allow_anonymous=False))
    fake_base_models(registry, tmp_path / "model", BASE, "other")
    adapter_dir = fake_adapter_dir(tmp_path / "adapter")
    keys, names = {}, {}
    for tenant in ("acme", "globex"):
        create_tenant(registry, tenant)
        keys[tenant] = {"Authorization": f"Bearer {create_key(registry, tenant)[1]}"}
        names[tenant] = registry.add_adapter(tenant, BASE, adapter_dir, suffix="a",
                                             alias="mine").name
    names["other"] = registry.add_adapter("acme", "other", adapter_dir, suffix="o").name
    seen: list[dict] = []
    loaded = [names["acme"], names["globex"]]  # the engine has both tenants' adapters
    app = TenancyMiddleware(_engine_app(seen, loaded), access=ModelAccess(registry, BASE, BASE))
    return TestClient(app), keys, names, seen


def _metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_auth_required_and_public_paths(setup) -> None:
    client, keys, _, _ = setup
    assert client.get("/health").status_code == 200
    for headers in ({}, {"Authorization": "Bearer qk-nope"}, {"Authorization": "Basic x"}):
        response = client.post("/v1/chat/completions", json={"model": BASE}, headers=headers)
        assert response.status_code == 401
        assert set(response.json()["error"]) == {"message", "type", "param", "code"}
    assert client.post("/v1/load_lora_adapter", json={}, headers=keys["acme"]).status_code == 403
    form = client.post("/v1/completions", data={"model": "x"}, headers=keys["acme"])
    assert form.status_code == 400


def test_alias_rewritten_to_unique_name(setup) -> None:
    client, keys, names, seen = setup
    response = client.post("/v1/chat/completions", json={"model": "mine"}, headers=keys["acme"])
    assert response.status_code == 200
    assert seen[-1]["model"] == names["acme"]
    response = client.post("/v1/chat/completions", json={"model": "mine"},
                           headers=keys["globex"])
    assert seen[-1]["model"] == names["globex"]
    assert client.post("/v1/chat/completions", json={}, headers=keys["acme"]).status_code == 200


def test_foreign_adapter_looks_like_unknown(setup) -> None:
    client, keys, names, seen = setup
    foreign = client.post("/v1/chat/completions", json={"model": names["acme"]},
                          headers=keys["globex"])
    unknown = client.post("/v1/chat/completions", json={"model": "ft:nothing"},
                          headers=keys["globex"])
    assert foreign.status_code == unknown.status_code == 404
    body_f, body_u = foreign.json()["error"], unknown.json()["error"]
    assert body_f["message"].replace(names["acme"], "X") == \
        body_u["message"].replace("ft:nothing", "X")
    assert body_f["code"] == body_u["code"] == "model_not_found" and body_f["param"] == "model"
    assert not seen  # the engine never saw either request


def test_a_shared_adapter_serves_the_other_tenant_until_revoked(setup) -> None:
    """Sharing (tune's checkpoint permissions) is read on every request: a grant serves
    globex at once, under the adapter's own unique name; a revoke refuses the next one."""
    client, keys, names, seen = setup
    registry = client.app.access.registry
    adapter = registry.resolve_adapter("acme", names["acme"])
    [grant] = registry.permissions.grant(adapter.id, ["globex"])
    ask = {"model": names["acme"]}
    assert client.post("/v1/chat/completions", json=ask, headers=keys["globex"]).status_code \
        == 200
    assert seen[-1]["model"] == names["acme"]
    ids = {m["id"] for m in client.get("/v1/models", headers=keys["globex"]).json()["data"]}
    assert names["acme"] in ids
    # Its alias stays the owner's: "mine" is still globex's own adapter.
    client.post("/v1/chat/completions", json={"model": "mine"}, headers=keys["globex"])
    assert seen[-1]["model"] == names["globex"]
    assert registry.permissions.revoke(adapter.id, grant.id)
    refused = client.post("/v1/chat/completions", json=ask, headers=keys["globex"])
    assert refused.status_code == 404


def test_an_adapter_above_the_served_rank_is_refused_clearly(setup, tmp_path: Path) -> None:
    client, keys, _, seen = setup
    registry = client.app.access.registry
    big = registry.add_adapter("acme", BASE, fake_adapter_dir(tmp_path / "big"), suffix="big",
                               config={"lora": {"r": 64}}).name
    client.app.access.max_lora_rank = 16
    response = client.post("/v1/chat/completions", json={"model": big}, headers=keys["acme"])
    assert response.status_code == 400 and "rank 64" in response.json()["error"]["message"]
    assert response.json()["error"]["param"] == "model" and not seen


def test_model_cards_and_engine_errors_in_openai_shape(setup, monkeypatch) -> None:
    """GET /v1/models/{model}; an unknown route's and a failing lookup's errors are OpenAI
    bodies, never FastAPI's or a stack trace."""
    client, keys, names, _ = setup
    card = client.get(f"/v1/models/{names['acme']}", headers=keys["acme"]).json()
    assert card == {"id": names["acme"], "object": "model", "owned_by": "acme",
                    "created": card["created"]}
    assert client.get(f"/v1/models/{BASE}", headers=keys["acme"]).json()["id"] == BASE
    for path in (f"/v1/models/{names['acme']}", "/v1/models/", "/v1/nothing-here"):
        response = client.get(path, headers=keys["globex"])
        assert response.status_code == 404
        assert set(response.json()["error"]) == {"message", "type", "param", "code"}

    def broken(*args):  # type: ignore[no-untyped-def]
        raise RuntimeError("database is locked")

    monkeypatch.setattr(client.app.access.registry, "usable_adapter", broken)
    failed = client.post("/v1/chat/completions", json={"model": names["acme"]},
                         headers=keys["acme"])
    assert failed.status_code == 500
    assert failed.json()["error"]["type"] == "server_error"
    assert "locked" not in failed.text  # no internals to the client


def test_adapter_for_other_base_is_404_saying_where(setup) -> None:
    """One server serves one base: an adapter of another is a 404 naming that base (and
    its servers, ``tests/unit/test_serve_elsewhere.py``), never sent to the engine."""
    client, keys, names, seen = setup
    response = client.post("/v1/chat/completions", json={"model": names["other"]},
                           headers=keys["acme"])
    assert response.status_code == 404 and not seen
    error = response.json()["error"]
    assert (error["code"], error["param"]) == ("model_not_found", "model")
    assert "an adapter of `other`" in error["message"]


def test_models_filtered_per_tenant(setup) -> None:
    client, keys, names, _ = setup
    ids = {m["id"] for m in client.get("/v1/models", headers=keys["globex"]).json()["data"]}
    assert ids == {BASE, names["globex"]}
    cards = client.get("/v1/models", headers=keys["acme"]).json()["data"]
    assert {c["id"] for c in cards} == {BASE, names["acme"]}
    assert all(not c["root"].startswith("/") for c in cards)


def test_stream_usage_counted_and_hidden(setup) -> None:
    client, keys, names, seen = setup
    before = _metric("quanta_tokens_total", tenant="acme", model=names["acme"],
                     kind="completion")
    with client.stream("POST", "/v1/completions", headers=keys["acme"],
                       json={"model": "mine", "stream": True}) as response:
        text = "".join(response.iter_text())
    assert seen[-1]["stream_options"] == {"include_usage": True}
    assert '"usage"' not in text and "[DONE]" in text and text.count("data: ") == 3
    after = _metric("quanta_tokens_total", tenant="acme", model=names["acme"],
                    kind="completion")
    assert after - before == 2
    with client.stream("POST", "/v1/completions", headers=keys["acme"],
                       json={"model": "mine", "stream": True,
                             "stream_options": {"include_usage": True}}) as response:
        assert '"usage"' in "".join(response.iter_text())
    requests = _metric("quanta_requests_total", tenant="acme", model=names["acme"],
                       status="200")
    assert requests >= 2


def test_content_types_are_parsed_not_grepped(setup) -> None:
    """A multipart body whose boundary says "json" must not pass as JSON (it would skip
    the model check)."""
    client, keys, names, seen = setup
    body = (b'--json\r\nContent-Disposition: form-data; name="model"\r\n\r\n'
            + names["acme"].encode() + b"\r\n--json--\r\n")
    response = client.post("/v1/completions", content=body, headers={
        **keys["globex"], "content-type": "multipart/form-data; boundary=json"})
    assert response.status_code == 400 and not seen
    ok = client.post("/v1/chat/completions", json={"model": BASE},
                     headers={**keys["acme"], "content-type": "application/json; charset=utf-8"})
    assert ok.status_code == 200


def test_two_authorization_headers_are_refused(setup) -> None:
    client, keys, _, seen = setup
    headers = [("authorization", keys["acme"]["Authorization"]),
               ("authorization", keys["globex"]["Authorization"])]
    response = client.post("/v1/chat/completions", json={"model": BASE}, headers=headers)
    assert response.status_code == 400 and not seen


def test_sequences_count_against_the_limits(quanta_home: Path, tmp_path: Path) -> None:
    """``n`` is what the engine runs: n=200 against a cap of 8 is refused, not admitted."""
    from serve.limits import TenantLimiter, TenantLimits

    registry = Registry.open(Settings(home=quanta_home))
    fake_base_models(registry, tmp_path / "model", BASE)
    seen: list[dict] = []
    app = TenancyMiddleware(_engine_app(seen, []), access=ModelAccess(registry, BASE, BASE),
                            limiter=TenantLimiter(TenantLimits(max_concurrency=8)))
    client = TestClient(app)
    refused = client.post("/v1/completions", json={"model": BASE, "n": 200})
    assert refused.status_code == 400 and refused.json()["error"]["param"] == "n"
    assert client.post("/v1/completions", json={"model": BASE, "n": 8}).status_code == 200
    assert len(seen) == 1


def test_metrics_token(quanta_home: Path, tmp_path: Path) -> None:
    registry = Registry.open(Settings(home=quanta_home, metrics_token="t0ken"))
    app = TenancyMiddleware(_engine_app([], []), access=ModelAccess(registry, BASE, BASE))
    client = TestClient(app)
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer t0ken"}).status_code != 401


def test_responses_and_stream_errors_in_openais_shape(setup) -> None:
    """vLLM's nulls are left out, chat logprobs get ``refusal``, a streamed error event
    carries OpenAI's error body, and what OpenAI refuses is refused before the engine."""
    client, keys, _, seen = setup
    ask = {"model": BASE, "messages": [{"role": "user", "content": "hi"}]}
    reply = client.post("/v1/chat/completions", json=ask, headers=keys["acme"])
    body = reply.json()
    assert reply.headers["content-length"] == str(len(reply.content))
    assert "system_fingerprint" not in body
    assert body["choices"][0]["message"] == {"role": "assistant", "content": "ok",
                                             "refusal": None}
    assert body["choices"][0]["logprobs"] == {"content": [], "refusal": None}
    assert body["usage"] == {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}

    stream = client.post("/v1/chat/completions", headers=keys["acme"],
                         json={**ask, "stream": True, "fail_midstream": True})
    events = [json.loads(line[6:]) for line in stream.text.splitlines()
              if line.startswith("data: {")]
    assert events[-1] == {"error": {"message": "boom", "type": "invalid_request_error",
                                    "param": None, "code": "invalid_request"}}

    sent = len(seen)
    for path, extra, param in [
            ("/v1/chat/completions", {"messages": [{"role": "wizard", "content": "x"}]},
             "messages[0].role"),
            ("/v1/chat/completions", {"messages": ["not a message"]}, "messages[0].role"),
            ("/v1/chat/completions", {"top_logprobs": 21}, "top_logprobs"),
            ("/v1/completions", {"prompt": "x", "logprobs": 10}, "logprobs"),
            ("/v1/completions", {"prompt": "x", "logprobs": True}, "logprobs")]:
        refused = client.post(path, json={**ask, **extra}, headers=keys["acme"])
        assert refused.status_code == 400 and refused.json()["error"]["param"] == param
    assert len(seen) == sent  # none reached the engine
