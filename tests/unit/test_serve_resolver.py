"""Registry resolver, adapter cache and sync, against a real registry and a fake engine."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

pytest.importorskip("vllm")

from vllm.lora.request import LoRARequest
from vllm.lora.resolver import LoRAResolverRegistry

from quanta.registry import Registry
from quanta.testing.fixtures import fake_adapter_dir, fake_base_models
from serve import lora_resolver
from serve.adapter_cache import AdapterCache
from serve.adapter_sync import AdapterSync, instrument_loads

BASE = "tiny-base"


@pytest.fixture
def adapters(registry: Registry, tmp_path: Path):
    fake_base_models(registry, tmp_path / "model", BASE, "other")
    directory = fake_adapter_dir(tmp_path / "adapter", '{"r": 8}')
    (directory / "adapter_model.safetensors").write_bytes(b"weights")
    mine = registry.add_adapter("local", BASE, directory, suffix="a", alias="al")
    (directory / "adapter_config.json").write_text('{"r": 4}')  # other content, other files
    other = registry.add_adapter("local", "other", directory, suffix="b")
    return registry, mine, other


class FakeModels:
    def __init__(self) -> None:
        self.lora_requests: dict[str, LoRARequest] = {}
        self.lora_resolver_lock = defaultdict(asyncio.Lock)

    async def resolve_lora(self, name: str) -> LoRARequest:
        request = LoRARequest(lora_name=name, lora_int_id=len(self.lora_requests) + 1,
                              lora_path="/x")
        self.lora_requests[name] = request
        return request


class FakeEngine:
    def __init__(self) -> None:
        self.loaded: set[int] = set()
        self.removed: list[int] = []

    async def list_loras(self) -> set[int]:
        return set(self.loaded)

    async def remove_lora(self, lora_id: int) -> bool:
        self.removed.append(lora_id)
        self.loaded.discard(lora_id)
        return True


def _value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_register_is_gated(monkeypatch: pytest.MonkeyPatch, quanta_env) -> None:  # type: ignore[no-untyped-def]
    LoRAResolverRegistry.resolvers.pop(lora_resolver.RESOLVER_NAME, None)
    monkeypatch.delenv("QUANTA_LORA_RESOLVER", raising=False)
    quanta_env()
    lora_resolver.register()
    assert lora_resolver.RESOLVER_NAME not in LoRAResolverRegistry.get_supported_resolvers()
    quanta_env(QUANTA_LORA_RESOLVER="registry")
    lora_resolver.register()
    lora_resolver.register()  # idempotent
    assert lora_resolver.RESOLVER_NAME in LoRAResolverRegistry.get_supported_resolvers()
    LoRAResolverRegistry.resolvers.pop(lora_resolver.RESOLVER_NAME, None)


def test_resolver_materialises_by_unique_name(adapters, monkeypatch, quanta_env) -> None:  # type: ignore[no-untyped-def]
    registry, mine, other = adapters
    cache = AdapterCache(registry)
    monkeypatch.setattr("serve.adapter_cache.get_adapter_cache", lambda: cache)
    quanta_env(QUANTA_SERVE_BASE_MODEL=BASE)
    resolver = lora_resolver.RegistryLoRAResolver()
    misses = _value("quanta_resolver_cache_misses_total")
    hits = _value("quanta_resolver_cache_hits_total")
    for name in (mine.name, mine.id):
        request = asyncio.run(resolver.resolve_lora("/models/base", name))
        assert request is not None and request.lora_name == name
        assert (Path(request.lora_path) / "adapter_config.json").read_text() == '{"r": 8}'
    assert _value("quanta_resolver_cache_misses_total") == misses + 1
    assert _value("quanta_resolver_cache_hits_total") == hits + 1
    assert asyncio.run(resolver.resolve_lora("/m", "al")) is None  # aliases: middleware's job
    assert asyncio.run(resolver.resolve_lora("/m", other.name)) is None  # other base
    assert asyncio.run(resolver.resolve_lora("/m", "ft:nothing")) is None


def test_sync_unloads_deleted_and_counts_evictions(adapters) -> None:
    registry, mine, _ = adapters
    cache = AdapterCache(registry)
    models, engine = FakeModels(), FakeEngine()
    instrument_loads(models)
    sync = AdapterSync(models, engine, cache, interval=0.01)
    loads = _value("quanta_adapter_loads_total", adapter=mine.name)

    async def scenario() -> None:
        request = await models.resolve_lora(mine.name)
        path = cache.materialize(mine)
        request.lora_path = str(path)
        engine.loaded = {request.lora_int_id}
        await sync.sync_once()
        engine.loaded = set()  # the engine's LRU dropped it
        await sync.sync_once()
        engine.loaded = {request.lora_int_id}  # and reloaded it on the next request
        await sync.sync_once()
        registry.delete("adapter", mine.id)
        await sync.sync_once()
        assert mine.name not in models.lora_requests
        assert engine.removed == [request.lora_int_id]
        assert not path.exists()

    asyncio.run(scenario())
    assert _value("quanta_adapter_loads_total", adapter=mine.name) == loads + 2
    assert _value("quanta_adapter_evictions_total", adapter=mine.name) >= 1
    assert _value("quanta_adapter_unloads_total", adapter=mine.name, reason="deleted") == 1
    assert _value("quanta_adapter_load_seconds_count") >= 1
