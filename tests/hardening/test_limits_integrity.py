"""Fast hardening checks (no engine): per-tenant limits, corrupt blobs, registry escapes."""

from __future__ import annotations

import asyncio
import io
import json
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from quanta.config import Settings
from quanta.registry import CorruptBlobError, NotFoundError, Registry
from quanta.registry import tables as t
from quanta.registry.layout import MANIFEST_KIND
from quanta.tenancy import create_key, create_tenant, revoke_key
from serve.access import ModelAccess
from serve.adapter_cache import AdapterCache
from serve.errors import AdapterCorruptError
from serve.limits import RateLimitedError, TenantLimiter, TenantLimits
from serve.middleware import TenancyMiddleware

BASE = "tiny-base"


# -- limiter ---------------------------------------------------------------------------------

class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_token_bucket_refuses_with_retry_after_and_refills() -> None:
    clock = Clock()
    limiter = TenantLimiter(TenantLimits(rate=2, burst=3), clock=clock)
    for _ in range(3):
        limiter.acquire("a")
        limiter.release("a")
    with pytest.raises(RateLimitedError) as refused:
        limiter.acquire("a")
    assert refused.value.status == 429 and refused.value.retry_after == 1
    assert refused.value.openai_body()["error"]["code"] == "rate_limit_exceeded"
    assert (b"retry-after", b"1") in refused.value.headers()
    limiter.acquire("b")  # other tenants have their own bucket
    clock.now = 0.5  # one token back at 2/s
    limiter.acquire("a")
    with pytest.raises(RateLimitedError):
        limiter.acquire("a")


def test_concurrency_cap_is_per_tenant_and_released() -> None:
    limiter = TenantLimiter(TenantLimits(max_concurrency=2))
    limiter.acquire("a")
    limiter.acquire("a")
    with pytest.raises(RateLimitedError):
        limiter.acquire("a")
    limiter.acquire("b")
    limiter.release("a")
    limiter.acquire("a")
    assert limiter.in_flight("a") == 2 and limiter.in_flight("b") == 1
    unlimited = TenantLimiter(TenantLimits())
    for _ in range(1000):
        unlimited.acquire("a")


def _registry_with_tenants(home: Path, tmp: Path) -> tuple[Registry, dict[str, str]]:
    registry = Registry.open(Settings(home=home, allow_anonymous=False))
    model = tmp / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    registry.add_base_model(BASE, model, source="test")
    keys = {}
    for tenant in ("acme", "globex"):
        create_tenant(registry, tenant)
        keys[tenant] = create_key(registry, tenant)[1]
    return registry, keys


def _slow_engine(gate: asyncio.Event) -> Starlette:
    async def chat(request: Request) -> JSONResponse:
        await request.body()
        await gate.wait()
        return JSONResponse({"choices": [], "usage": None})

    return Starlette(routes=[Route("/v1/chat/completions", chat, methods=["POST"])])


def test_middleware_returns_429_instead_of_queueing(tmp_path: Path, quanta_home: Path) -> None:
    """Over the cap a tenant gets 429 + Retry-After at once; others are unaffected."""
    import httpx

    registry, keys = _registry_with_tenants(quanta_home, tmp_path)

    async def scenario() -> None:
        gate = asyncio.Event()
        app = TenancyMiddleware(_slow_engine(gate), access=ModelAccess(registry, BASE, BASE),
                                limiter=TenantLimiter(TenantLimits(max_concurrency=3)))
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            def post(tenant: str):  # type: ignore[no-untyped-def]
                return client.post("/v1/chat/completions", json={"model": BASE},
                                   headers={"Authorization": f"Bearer {keys[tenant]}"})

            held = [asyncio.create_task(post("acme")) for _ in range(3)]
            await asyncio.sleep(0.2)
            refused = await asyncio.wait_for(post("acme"), 5)
            assert refused.status_code == 429
            assert refused.headers["retry-after"] == "1"
            error = refused.json()["error"]
            assert error["code"] == "rate_limit_exceeded" and error["message"]
            other = asyncio.create_task(post("globex"))
            await asyncio.sleep(0.2)
            assert not other.done()  # admitted (waiting on the engine), not refused
            gate.set()
            assert [r.status_code for r in await asyncio.gather(*held, other)] == [200] * 4
            assert (await post("acme")).status_code == 200  # slots were released

    asyncio.run(scenario())


def test_revoked_key_stops_at_once(tmp_path: Path, quanta_home: Path) -> None:
    from starlette.testclient import TestClient

    registry, _ = _registry_with_tenants(quanta_home, tmp_path)
    row, key = create_key(registry, "acme")
    app = TenancyMiddleware(_slow_engine(asyncio.Event()), access=ModelAccess(registry, BASE,
                                                                               BASE))
    client = TestClient(app)
    headers = {"Authorization": f"Bearer {key}"}
    assert client.get("/v1/anything", headers=headers).status_code == 404  # admitted
    revoke_key(registry, row.id)
    assert client.get("/v1/anything", headers=headers).status_code == 401


# -- corrupt blobs -----------------------------------------------------------------------------

def _flip_bit(path: Path, offset: int = 0) -> None:
    path.chmod(0o644)
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


@pytest.fixture
def adapter_registry(tmp_path: Path, quanta_home: Path):
    registry, keys = _registry_with_tenants(quanta_home, tmp_path)
    directory = tmp_path / "adapter"
    directory.mkdir()
    (directory / "adapter_config.json").write_text('{"r": 8}')
    (directory / "adapter_model.safetensors").write_bytes(b"weights" * 1000)
    adapter = registry.add_adapter("acme", BASE, directory, suffix="a")
    return registry, keys, adapter


def _weights_blob(registry: Registry, adapter: t.Adapter) -> Path:
    files = registry.read_manifest(adapter.sha256)
    return registry.store.path(files["adapter_model.safetensors"]["sha256"])


def test_bit_flip_in_store_is_refused_before_materialising(adapter_registry) -> None:
    registry, _, adapter = adapter_registry
    _flip_bit(_weights_blob(registry, adapter), 3)
    cache = AdapterCache(registry)
    with pytest.raises(CorruptBlobError):
        cache.materialize(adapter)
    assert not (registry.settings.cache_dir / adapter.sha256).exists()  # nothing half-made
    assert registry.verify().corrupt


def test_bit_flip_in_cache_is_detected_and_refetched(adapter_registry) -> None:
    registry, _, adapter = adapter_registry
    cache = AdapterCache(registry)
    path = cache.materialize(adapter)
    _flip_bit(path / "adapter_model.safetensors", 5)
    # The resolver re-verifies before the engine reads the files: the copy is replaced.
    again = cache.materialize(adapter, reverify=True)
    assert (again / "adapter_model.safetensors").read_bytes() == b"weights" * 1000
    # Both copies rotten: refused.
    _flip_bit(again / "adapter_model.safetensors", 5)
    _flip_bit(_weights_blob(registry, adapter), 5)
    with pytest.raises(CorruptBlobError):
        cache.materialize(adapter, reverify=True)


def test_corrupt_adapter_is_refused_over_http(adapter_registry) -> None:
    from starlette.testclient import TestClient

    registry, keys, adapter = adapter_registry
    _flip_bit(_weights_blob(registry, adapter), 0)
    seen: list[str] = []

    async def chat(request: Request) -> JSONResponse:
        seen.append((await request.json())["model"])
        return JSONResponse({"choices": []})

    engine = Starlette(routes=[Route("/v1/chat/completions", chat, methods=["POST"])])
    access = ModelAccess(registry, BASE, BASE, verify=AdapterCache(registry).materialize)
    client = TestClient(TenancyMiddleware(engine, access=access))
    response = client.post("/v1/chat/completions", json={"model": adapter.name},
                           headers={"Authorization": f"Bearer {keys['acme']}"})
    assert response.status_code == 500
    assert "integrity" in response.json()["error"]["message"]
    assert seen == []  # the engine never saw it
    with pytest.raises(AdapterCorruptError):
        access.resolve(access.authenticate(f"Bearer {keys['acme']}"), adapter.name)


# -- registry escapes ------------------------------------------------------------------------

def test_manifest_paths_cannot_escape_the_cache(registry: Registry, tmp_path: Path) -> None:
    from quanta.registry.layout import record_tree

    with registry.session() as s:
        payload, _ = registry.put_blob(s, io.BytesIO(b"pwned"))
        files = {"../../escaped.txt": {"sha256": payload, "bytes": 5}}
        manifest = json.dumps({"kind": MANIFEST_KIND, "files": files}).encode()
        sha, _ = registry.put_blob(s, io.BytesIO(manifest))
    with pytest.raises(NotFoundError, match="not a tree"):  # it only looks like one
        registry.materialize(sha)
    with registry.session() as s:  # recorded as a tree anyway (a tampered database)
        record_tree(s, sha, files)
    with pytest.raises(CorruptBlobError, match="escapes"):
        registry.materialize(sha)
    assert not list(registry.settings.resolved_home.parent.rglob("escaped.txt"))


@pytest.mark.parametrize("sha", ["../../etc/passwd", "..%2F..", "..", ".", "a" * 63 + "/",
                                 "../" + "a" * 61, "A" * 64])
def test_blob_names_must_be_hex_digests(registry: Registry, sha: str) -> None:
    with pytest.raises(NotFoundError):
        registry.blob_path(sha)
    with pytest.raises(NotFoundError):
        registry.materialize(sha)


@pytest.mark.parametrize("name", ["../evil", "a/b", "..", "", "UPPER", "a" * 65, "x\x00y",
                                  "ok\n"])
def test_tenant_ids_are_slugs(registry: Registry, name: str) -> None:
    with pytest.raises(ValueError):
        create_tenant(registry, name)


@pytest.mark.parametrize("name", ["../../etc/passwd", "ft:tiny-base:acme:a:/../../x",
                                  "acme/../globex", "%2e%2e%2f", "/etc/passwd"])
def test_adapter_names_with_slashes_resolve_to_nothing(adapter_registry, name: str) -> None:
    registry, keys, _ = adapter_registry
    access = ModelAccess(registry, BASE, BASE)
    principal = access.authenticate(f"Bearer {keys['acme']}")
    from serve.errors import ModelNotFoundError

    with pytest.raises(ModelNotFoundError):
        access.resolve(principal, name)
    assert AdapterCache(registry).lookup(name) is None


def test_cli_options_override_settings() -> None:
    from serve.engines.base import ServeOptions
    from serve.limits import limits_for

    settings = Settings(tenant_max_concurrency=3, tenant_rate=0.0)
    assert limits_for(ServeOptions(), settings) == TenantLimits(3, 0.0, 0)
    assert limits_for(ServeOptions(tenant_rate=5, tenant_burst=10, tenant_max_concurrency=0),
                      settings) == TenantLimits(0, 5.0, 10)
    assert Settings().tenant_max_concurrency == 64  # bounded by default


@pytest.mark.parametrize("path", ["/inference/v1/abort_requests", "/abort_requests", "/pause",
                                  "/update_weights", "/v1/load_lora_adapter", "/adapters",
                                  "/adapters/ft:x"])
def test_operator_endpoints_are_refused(tmp_path: Path, quanta_home: Path, path: str) -> None:
    from starlette.testclient import TestClient

    registry, keys = _registry_with_tenants(quanta_home, tmp_path)
    app = TenancyMiddleware(_slow_engine(asyncio.Event()),
                            access=ModelAccess(registry, BASE, BASE))
    response = TestClient(app).post(path, json={"request_ids": ["chatcmpl-x"]},
                                    headers={"Authorization": f"Bearer {keys['acme']}"})
    assert response.status_code == 403


def test_sagemaker_adapter_header_cannot_swap_the_model(adapter_registry) -> None:
    """vLLM's /invocations copies this header into the body's model after the middleware."""
    from starlette.testclient import TestClient

    registry, keys, adapter = adapter_registry  # acme's adapter
    seen: list[dict] = []

    async def invocations(request: Request) -> JSONResponse:
        seen.append(await request.json())
        return JSONResponse({})

    engine = Starlette(routes=[Route("/invocations", invocations, methods=["POST"])])
    client = TestClient(TenancyMiddleware(engine, access=ModelAccess(registry, BASE, BASE)))
    for header in ("X-Amzn-SageMaker-Adapter-Identifier", "X-Amzn-SageMaker-Adapter-Alias"):
        response = client.post("/invocations", json={"model": BASE, "prompt": "hi"},
                               headers={"Authorization": f"Bearer {keys['globex']}",
                                        header: adapter.name})
        assert response.status_code == 400, response.text
    assert seen == []
