"""A model of another base: a 404 naming the servers of that base the registry knows
(HTTP and gRPC alike), or saying none runs now; tenancy kept (no engine needed)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from quanta.config import Settings
from quanta.registry import Registry
from quanta.tenancy import Principal, create_key, create_tenant
from serve.access import ModelAccess
from serve.errors import ModelNotFoundError, ModelServedElsewhereError
from serve.middleware import TenancyMiddleware
from tests.support.fixtures import fake_adapter_dir, fake_base_models

SMOL, GEMMA = "smollm2-135m-instruct", "gemma3-270m"


@pytest.fixture
def registry(tmp_path: Path, quanta_home: Path) -> Registry:
    registry = Registry.open(Settings(home=quanta_home, allow_anonymous=False))
    fake_base_models(registry, tmp_path / "model", SMOL, GEMMA)
    for tenant in ("acme", "globex"):
        create_tenant(registry, tenant)
    return registry


@pytest.fixture
def access(registry: Registry) -> ModelAccess:
    return ModelAccess(registry, SMOL, SMOL)


def _adapter(registry: Registry, tenant: str, base: str, tmp: Path) -> str:
    return registry.add_adapter(tenant, base, fake_adapter_dir(tmp / f"{tenant}-{base}"),
                                suffix="a").name


def _refusal(access: ModelAccess, tenant: str, model: str) -> Exception:
    with pytest.raises((ModelNotFoundError, ModelServedElsewhereError)) as refused:
        access.resolve(Principal(tenant_id=tenant), model)
    return refused.value


def test_another_base_names_its_servers(access: ModelAccess, registry: Registry) -> None:
    refused = _refusal(access, "acme", GEMMA)
    assert str(refused) == (f"The model `{GEMMA}` is not served anywhere right now; this "
                            f"server serves `{SMOL}`.")
    rows = registry.serve_endpoints
    rows.register(base_model_id=GEMMA, engine="llama-cpp", url="http://node-b:8001")
    rows.register(base_model_id=GEMMA, engine="llama-cpp", url="http://node-b:8001",
                  host="replica", pid=2)  # a replica behind the same URL: named once
    rows.register(base_model_id=GEMMA, engine="vllm", url="https://gemma.example")
    rows.register(base_model_id=SMOL, engine="vllm", url="http://node-a:8000")
    refused = _refusal(access, "acme", GEMMA)
    assert isinstance(refused, ModelServedElsewhereError)
    assert (refused.status, refused.code, refused.param) == (404, "model_not_found", "model")
    assert str(refused) == (f"The model `{GEMMA}` is served by http://node-b:8001, "
                            f"https://gemma.example; this server serves `{SMOL}`.")


def test_an_adapter_of_another_base(access: ModelAccess, registry: Registry,
                                    tmp_path: Path) -> None:
    name = _adapter(registry, "acme", GEMMA, tmp_path)
    assert str(_refusal(access, "acme", name)) == (
        f"The model `{name}` (an adapter of `{GEMMA}`) is not served anywhere right now; "
        f"this server serves `{SMOL}`.")
    endpoint = registry.serve_endpoints.register(base_model_id=GEMMA, engine="vllm",
                                                 url="http://node-b:8001")
    assert str(_refusal(access, "acme", name)) == (
        f"The model `{name}` (an adapter of `{GEMMA}`) is served by http://node-b:8001; "
        f"this server serves `{SMOL}`.")
    # GET /v1/models/{model} says the same.
    with pytest.raises(ModelServedElsewhereError, match="node-b"):
        access.card(Principal(tenant_id="acme"), name)
    # A server that stopped (or was killed: no heartbeat within the ttl) is not named.
    registry.serve_endpoints.unregister(endpoint.id)
    assert "not served anywhere" in str(_refusal(access, "acme", name))


def test_tenancy_is_kept(access: ModelAccess, registry: Registry, tmp_path: Path) -> None:
    """Another tenant's adapter, or private base, stays "does not exist": where it is
    served is never revealed."""
    registry.serve_endpoints.register(base_model_id=GEMMA, engine="vllm",
                                      url="http://node-b:8001")
    registry.add_base_model("acme-private", fake_adapter_dir(tmp_path / "private"),
                            source="test", tenant_id="acme")
    registry.serve_endpoints.register(base_model_id="acme-private", engine="vllm",
                                      url="http://node-c:8002")
    theirs = _adapter(registry, "acme", GEMMA, tmp_path)
    for model in (theirs, "acme-private", "ft:nothing"):
        refused = _refusal(access, "globex", model)
        assert type(refused) is ModelNotFoundError
        assert str(refused) == f"The model `{model}` does not exist. Valid aliases: {SMOL}."
    assert "node-c" in str(_refusal(access, "acme", "acme-private"))  # the owner is told


def test_http_and_grpc_answer_alike(access: ModelAccess, registry: Registry) -> None:
    registry.serve_endpoints.register(base_model_id=GEMMA, engine="llama-cpp",
                                      url="http://node-b:8001")
    key = {"Authorization": f"Bearer {create_key(registry, 'acme')[1]}"}
    seen: list[Any] = []

    async def engine(request):  # type: ignore[no-untyped-def]
        seen.append(request)
        return JSONResponse({})

    app = Starlette(routes=[Route("/v1/chat/completions", engine, methods=["POST"])])
    client = TestClient(TenancyMiddleware(app, access=access))
    response = client.post("/v1/chat/completions", headers=key,
                           json={"model": GEMMA, "messages": []})
    assert response.status_code == 404 and not seen
    assert response.json() == {"error": {
        "message": f"The model `{GEMMA}` is served by http://node-b:8001; this server "
                   f"serves `{SMOL}`.",
        "type": "invalid_request_error", "param": "model", "code": "model_not_found"}}

    pytest.importorskip("vllm")
    import grpc

    from serve.grpc_gen import inference_pb2 as pb
    from serve.grpc_server import InferenceServicer

    class Context:
        code: grpc.StatusCode | None = None
        details = ""

        def invocation_metadata(self) -> tuple[tuple[str, str], ...]:
            return (("authorization", key["Authorization"]),)

        async def abort(self, code: grpc.StatusCode, details: str, **_: Any) -> None:
            self.code, self.details = code, details
            raise RuntimeError("aborted")

    context = Context()
    servicer = InferenceServicer(SimpleNamespace(), access, sync=None)  # type: ignore[arg-type]
    with pytest.raises(RuntimeError, match="aborted"):
        asyncio.run(servicer.Generate(pb.GenerateRequest(model=GEMMA, prompt="hi"), context))
    assert context.code == grpc.StatusCode.NOT_FOUND
    assert context.details == response.json()["error"]["message"]
