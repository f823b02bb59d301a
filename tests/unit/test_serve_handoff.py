"""serve resolves once: a request's model is looked up and its adapter's files hashed by
the middleware's resolution alone, which vLLM's resolver loads (``serve.handoff``); one
``Registry`` per process (``serve.registry``).

The engine side is vLLM's own ``OpenAIServingModels`` (its ``resolve_lora``: lock,
loaded table, resolvers, ``engine_client.add_lora``) behind the model check vLLM's
serving classes run, over a fake engine client: no model is loaded.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

pytest.importorskip("vllm")

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.testclient import TestClient
from vllm.entrypoints.openai.models.protocol import BaseModelPath
from vllm.entrypoints.openai.models.serving import OpenAIServingModels
from vllm.lora.request import LoRARequest

from quanta.config import Settings
from quanta.registry import AdapterRecord, CorruptBlobError, Registry
from quanta.tenancy import create_key, create_tenant
from serve import adapter_cache, handoff, lora_resolver
from serve import registry as serve_registry
from serve.access import ModelAccess
from serve.adapter_cache import AdapterCache, get_adapter_cache
from serve.adapter_sync import AdapterSync
from serve.handoff import AdapterHandoff, get_handoff
from serve.middleware import TenancyMiddleware
from serve.registry import get_registry
from tests.support.fixtures import fake_adapter_dir, fake_base_models

BASE = "tiny-base"
ROOT = Path(__file__).resolve().parents[2]
FILES = 2  # each test adapter: adapter_config.json and adapter_model.safetensors
CHAT = "/v1/chat/completions"


class FakeEngineClient:
    """What ``OpenAIServingModels`` reads of vLLM's engine client, recording loads."""

    model_config = SimpleNamespace(model="/models/base")
    renderer = input_processor = None

    def __init__(self) -> None:
        self.added: list[LoRARequest] = []
        self.removed: list[int] = []

    async def add_lora(self, request: LoRARequest) -> bool:
        self.added.append(request)
        return True

    async def remove_lora(self, lora_id: int) -> bool:
        self.removed.append(lora_id)
        return True

    async def pin_lora(self, lora_id: int) -> bool:
        return True


def serving_models(engine: FakeEngineClient) -> OpenAIServingModels:
    """vLLM's serving models with Quanta's resolver as its one resolver."""
    models = OpenAIServingModels(engine, [BaseModelPath(name=BASE, model_path="/models/base")])
    models.lora_resolvers = [lora_resolver.RegistryLoRAResolver()]
    return models


def vllm_app(models: OpenAIServingModels) -> Starlette:
    """vLLM's chat route as far as adapters go (``OpenAIServing._check_model``, 0.32): a
    name neither the base nor loaded is handed to ``resolve_lora``; failing that, 404."""

    async def chat(request: Request) -> JSONResponse:
        model = (await request.json()).get("model")
        if model and not models.is_base_model(model) and model not in models.lora_requests:
            result = await models.resolve_lora(model)
            if not isinstance(result, LoRARequest):
                return JSONResponse({"object": "error", "type": "NotFoundError",
                                     "message": f"The model `{model}` does not exist.",
                                     "param": "model", "code": 404}, status_code=404)
        return JSONResponse({"model": model, "choices": [], "usage": {
            "prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}})

    return Starlette(routes=[Route(CHAT, chat, methods=["POST"])])


@dataclass
class Served:
    """One API-server process in miniature."""

    registry: Registry
    client: TestClient
    keys: dict[str, dict[str, str]]
    adapter: AdapterRecord
    engine: FakeEngineClient
    models: OpenAIServingModels
    access: ModelAccess
    sync: AdapterSync

    def chat(self, tenant: str, model: str) -> Any:
        return self.client.post(CHAT, json={"model": model}, headers=self.keys[tenant])


def _adapter_dir(directory: Path, config: str) -> Path:
    directory = fake_adapter_dir(directory, config)
    (directory / "adapter_model.safetensors").write_bytes(b"weights" * 100)
    return directory


@pytest.fixture
def process(quanta_home: Path, monkeypatch: pytest.MonkeyPatch) -> Registry:
    """This process's one registry, with the process-wide cache and handoff built over it
    (each restored after the test)."""
    registry = Registry.open(Settings(home=quanta_home, allow_anonymous=False))
    monkeypatch.setattr(serve_registry, "_registry", registry)
    monkeypatch.setattr(adapter_cache, "_cache", None)
    monkeypatch.setattr(handoff, "_handoff", None)
    return registry


@pytest.fixture
def served(process: Registry, tmp_path: Path) -> Served:
    registry = process
    fake_base_models(registry, tmp_path / "model", BASE, "other")
    keys = {}
    for tenant in ("acme", "globex"):
        create_tenant(registry, tenant)
        keys[tenant] = {"Authorization": f"Bearer {create_key(registry, tenant)[1]}"}
    adapter = registry.add_adapter("acme", BASE, _adapter_dir(tmp_path / "a", '{"r": 8}'),
                                   suffix="a", alias="mine")
    engine = FakeEngineClient()
    models = serving_models(engine)
    shared = get_handoff()  # as serve.engines.vllm builds them
    access = ModelAccess(get_registry(), BASE, BASE, verify=shared.prepare)
    sync = AdapterSync(models, engine, shared.cache, handoff=shared)
    client = TestClient(TenancyMiddleware(vllm_app(models), access=access))
    return Served(registry, client, keys, adapter, engine, models, access, sync)


def count_calls(monkeypatch: pytest.MonkeyPatch, registry: Registry) -> Counter[str]:
    """``lookups``: the registry's adapter resolutions (a tenant's name; a unique name).
    ``hashed_files``: adapter files hashed, in the cache (re-verified) or on their way
    out of the store (a fetch hashes what it copies)."""
    counts: Counter[str] = Counter()

    def spy(target: Any, attr: str, key: str) -> None:
        original = getattr(target, attr)

        def counted(*args: Any, **kwargs: Any) -> Any:
            counts[key] += 1
            return original(*args, **kwargs)

        monkeypatch.setattr(target, attr, counted)

    spy(registry, "usable_adapter", "lookups")
    spy(registry, "find_adapter", "lookups")
    spy(adapter_cache, "sha256_file", "hashed_files")
    spy(registry.store, "fetch", "hashed_files")
    return counts


# -- one resolution, one hash ---------------------------------------------------------------

def test_a_new_adapter_is_resolved_once_and_hashed_once(served: Served, monkeypatch) -> None:
    counts = count_calls(monkeypatch, served.registry)
    adapter = served.adapter
    response = served.chat("acme", "mine")  # by alias: rewritten to the unique name
    assert response.status_code == 200 and response.json()["model"] == adapter.name
    assert counts == {"lookups": 1, "hashed_files": FILES}
    [load] = served.engine.added
    assert load.lora_name == adapter.name
    assert Path(load.lora_path) == served.registry.settings.cache_dir / adapter.sha256
    assert (Path(load.lora_path) / "adapter_config.json").read_text() == '{"r": 8}'

    # Loaded: each request is still checked for its tenant (one lookup), nothing hashed.
    counts.clear()
    for _ in range(3):
        assert served.chat("acme", adapter.name).status_code == 200
    assert counts == {"lookups": 3}
    assert len(served.engine.added) == 1

    # Unloaded (gRPC's UnloadAdapter; a delete or an unpin likewise): the next load
    # verifies the cached copy once more, still one lookup.
    assert asyncio.run(served.sync.unload(adapter.name, reason="request"))
    counts.clear()
    assert served.chat("acme", adapter.name).status_code == 200
    assert counts == {"lookups": 1, "hashed_files": FILES}
    assert len(served.engine.added) == 2


def test_a_burst_of_first_requests_hashes_once(served: Served, monkeypatch) -> None:
    """Concurrent first requests for one adapter (vLLM loads it once, under its lock)."""
    counts = count_calls(monkeypatch, served.registry)

    async def burst() -> list[int]:
        import httpx

        transport = httpx.ASGITransport(app=served.client.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            responses = await asyncio.gather(*(
                client.post(CHAT, json={"model": "mine"}, headers=served.keys["acme"])
                for _ in range(8)))
        return [r.status_code for r in responses]

    assert asyncio.run(burst()) == [200] * 8
    assert counts == {"lookups": 8, "hashed_files": FILES}
    assert len(served.engine.added) == 1


# -- tenant isolation -----------------------------------------------------------------------

def test_another_tenants_adapter_still_404s(served: Served, tmp_path: Path) -> None:
    adapter = served.adapter
    refused = served.chat("globex", adapter.name)
    assert refused.status_code == 404
    assert refused.json()["error"]["code"] == "model_not_found"
    assert served.engine.added == []  # never reached vLLM, nothing prepared for it
    # The resolver loads only what a tenant check admitted, whatever exists.
    resolver = lora_resolver.RegistryLoRAResolver()
    assert asyncio.run(resolver.resolve_lora(BASE, adapter.name)) is None
    theirs = served.registry.add_adapter("globex", BASE, _adapter_dir(tmp_path / "g", "{}"),
                                         suffix="g")
    assert asyncio.run(resolver.resolve_lora(BASE, theirs.name)) is None
    assert served.engine.added == []

    # Loaded for its owner, it is still another tenant's "does not exist"...
    assert served.chat("acme", adapter.name).status_code == 200
    assert served.chat("globex", adapter.name).status_code == 404
    assert served.chat("globex", "mine").status_code == 404  # aliases are per tenant
    # ... until shared with it: then the loaded adapter serves it, no second load.
    served.registry.permissions.grant(adapter.id, ["globex"])
    assert served.chat("globex", adapter.name).status_code == 200
    assert len(served.engine.added) == 1


def test_a_corrupt_adapter_is_refused_before_vllm(served: Served) -> None:
    registry, adapter = served.registry, served.adapter
    files = registry.read_manifest(adapter.sha256)
    blob = registry.store.path(files["adapter_model.safetensors"]["sha256"])
    blob.chmod(0o644)
    data = bytearray(blob.read_bytes())
    data[0] ^= 1
    blob.write_bytes(bytes(data))
    response = served.chat("acme", adapter.name)
    assert response.status_code == 500 and "integrity" in response.json()["error"]["message"]
    assert served.engine.added == []
    assert asyncio.run(lora_resolver.RegistryLoRAResolver().resolve_lora(
        BASE, adapter.name)) is None  # no ticket was left for it


# -- the paths without a tenant request: pins, gRPC -----------------------------------------

def test_pins_are_prepared_by_name(served: Served, monkeypatch, quanta_env, tmp_path) -> None:
    """The registry's pins reach the resolver without a request: the sync looks each up
    by unique name (once) and verifies it (once); another base's adapter is not loaded."""
    quanta_env(QUANTA_SERVE_BASE_MODEL=BASE)
    other = served.registry.add_adapter("acme", "other", _adapter_dir(tmp_path / "o", "{}"),
                                        suffix="o")
    sync = served.sync
    sync.pinned_in_registry = lambda: {served.adapter.name, other.name}
    sync.max_pins = 2
    counts = count_calls(monkeypatch, served.registry)
    asyncio.run(sync.sync_once())
    # (The sync adds it to the engine again after vLLM's resolve: a no-op when loaded.)
    assert {r.lora_name for r in served.engine.added} == {served.adapter.name}
    assert sync.pinned == {served.adapter.name}
    assert counts == {"lookups": 2, "hashed_files": FILES}  # other: looked up, refused
    counts.clear()
    assert served.chat("acme", served.adapter.name).status_code == 200  # loaded: no hash
    assert counts == {"lookups": 1}


def test_grpc_load_adapter_resolves_once(served: Served, monkeypatch) -> None:
    import grpc

    from serve.grpc_gen import inference_pb2 as pb
    from serve.grpc_server import InferenceServicer

    class Aborted(Exception):
        pass

    class Context:
        def __init__(self, tenant: str) -> None:
            self.metadata = (("authorization", served.keys[tenant]["Authorization"]),)
            self.code: grpc.StatusCode | None = None

        def invocation_metadata(self) -> tuple[tuple[str, str], ...]:
            return self.metadata

        async def abort(self, code: grpc.StatusCode, message: str, **_: Any) -> None:
            self.code = code
            raise Aborted(message)

    servicer = InferenceServicer(SimpleNamespace(openai_serving_models=served.models),
                                 served.access, served.sync)
    request = pb.AdapterRequest(model=served.adapter.name)
    foreign = Context("globex")
    with pytest.raises(Aborted):
        asyncio.run(servicer.LoadAdapter(request, foreign))
    assert foreign.code == grpc.StatusCode.NOT_FOUND and served.engine.added == []
    counts = count_calls(monkeypatch, served.registry)
    response = asyncio.run(servicer.LoadAdapter(pb.AdapterRequest(model="mine"),
                                                Context("acme")))
    assert response.loaded and response.model == served.adapter.name
    assert counts == {"lookups": 1, "hashed_files": FILES}
    assert len(served.engine.added) == 1


# -- the handoff's tickets ------------------------------------------------------------------

def test_tickets_cover_one_load(process: Registry, tmp_path: Path, monkeypatch) -> None:
    registry = process
    fake_base_models(registry, tmp_path / "model", BASE)
    adapters = [registry.add_adapter("local", BASE, _adapter_dir(tmp_path / n, f'"{n}"'),
                                     suffix=n) for n in ("a", "b", "c")]
    a = adapters[0]
    now = [0.0]
    tickets = AdapterHandoff(AdapterCache(registry), capacity=2, ttl=30, clock=lambda: now[0])
    counts = count_calls(monkeypatch, registry)
    path = tickets.prepare(a)
    assert tickets.prepare(a) == path  # a fresh ticket: not hashed again
    assert counts["hashed_files"] == FILES
    now[0] = 31  # never taken (its request was refused later): verified again when used
    tickets.prepare(a)
    assert counts["hashed_files"] == 2 * FILES
    taken = tickets.take(a.name)
    assert taken is not None and taken.path == path and taken.record.id == a.id
    assert counts["hashed_files"] == 2 * FILES  # the resolver hashes nothing
    now[0] = 1000
    tickets.prepare(a)  # loaded: requests for it hash nothing, however long after
    assert counts["hashed_files"] == 2 * FILES
    assert tickets.take(a.name) is not None  # asked again (the load failed): a new check
    assert counts["hashed_files"] == 3 * FILES
    assert tickets.owner(a.name) == "local" and counts["lookups"] == 0
    tickets.forget(a.name)  # unloaded
    assert tickets.take(a.name) is None
    for adapter in adapters:
        tickets.prepare(adapter)
    assert tickets.take(a.name) is None  # the least recently used beyond capacity
    assert tickets.owner(a.name) == "local" and counts["lookups"] == 1  # from the registry
    assert tickets.owner("ft:none") is None


def test_a_failed_check_leaves_no_ticket(process: Registry, tmp_path: Path) -> None:
    registry = process
    fake_base_models(registry, tmp_path / "model", BASE)
    adapter = registry.add_adapter("local", BASE, _adapter_dir(tmp_path / "a", "{}"), suffix="a")
    files = registry.read_manifest(adapter.sha256)
    blob = registry.store.path(files["adapter_model.safetensors"]["sha256"])
    blob.chmod(0o644)
    blob.write_bytes(b"rotten")
    tickets = AdapterHandoff(AdapterCache(registry))
    with pytest.raises(CorruptBlobError):
        tickets.prepare(adapter)
    assert tickets.take(adapter.name) is None


# -- one Registry per process ---------------------------------------------------------------

def test_one_registry_per_process(quanta_home: Path, quanta_env, monkeypatch,
                                  tmp_path: Path) -> None:
    opened: list[Registry] = []
    open_registry = Registry.open.__func__  # type: ignore[attr-defined]

    def counted(cls: type[Registry], settings: Settings | None = None) -> Registry:
        opened.append(open_registry(cls, settings))
        return opened[-1]

    monkeypatch.setattr(Registry, "open", classmethod(counted))
    monkeypatch.setattr(serve_registry, "_registry", None)
    monkeypatch.setattr(adapter_cache, "_cache", None)
    monkeypatch.setattr(handoff, "_handoff", None)
    registry = get_registry()
    assert get_registry() is registry
    assert get_adapter_cache().registry is registry
    assert get_handoff().cache.registry is registry
    # What `quanta serve` does before vLLM starts: QUANTA_* set (the same home), re-read.
    quanta_env(QUANTA_HOME=str(registry.settings.resolved_home),
               QUANTA_SERVE_BASE_MODEL=BASE, QUANTA_LORA_RESOLVER="registry")
    assert get_registry() is registry
    resolver = lora_resolver.RegistryLoRAResolver()
    assert asyncio.run(resolver.resolve_lora(BASE, "ft:nothing")) is None
    assert get_handoff().cache.registry is registry
    assert len(opened) == 1
    # A process pointed at another registry gets that one, never a stale one.
    quanta_env(QUANTA_HOME=str(tmp_path / "elsewhere"))
    assert get_registry() is not registry and get_handoff().cache.registry is get_registry()
    assert len(opened) == 2


def test_serve_modules_open_no_registry_of_their_own() -> None:
    opening = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "serve").rglob("*.py")
                     if "Registry.open(" in p.read_text())
    assert opening == ["serve/registry.py"]
