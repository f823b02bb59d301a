"""Registry resolver, adapter cache and sync, against a real registry and a fake engine."""

from __future__ import annotations

import asyncio
import functools
from collections import defaultdict
from pathlib import Path
from unittest import mock

import pytest
from prometheus_client import REGISTRY

pytest.importorskip("vllm")

from vllm.lora.request import LoRARequest
from vllm.lora.resolver import LoRAResolverRegistry

from quanta.registry import ConflictError, NotFoundError, Registry
from serve import lora_resolver
from serve.adapter_cache import AdapterCache
from serve.adapter_sync import AdapterSync, instrument_loads
from serve.engine_lora import _pin_in_memory
from serve.handoff import AdapterHandoff
from serve.residency import (
    ResidencyBoard,
    Snapshot,
    Tier,
    listen,
    socket_path,
)
from tests.support.fixtures import fake_adapter_dir, fake_base_models

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
        self.pinned: list[int] = []

    async def add_lora(self, request: LoRARequest) -> bool:
        self.loaded.add(request.lora_int_id)
        return True

    async def pin_lora(self, lora_id: int) -> bool:
        if lora_id not in self.loaded:  # as vLLM: "Pinning failed. LoRA ... not registered"
            raise ValueError(f"Pinning failed. LoRA {lora_id} is not registered.")
        self.pinned.append(lora_id)
        return True

    async def remove_lora(self, lora_id: int) -> bool:
        self.removed.append(lora_id)
        self.loaded.discard(lora_id)
        return True


def _value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_register_is_gated(monkeypatch: pytest.MonkeyPatch, quanta_env) -> None:  # type: ignore[no-untyped-def]
    from serve import engine_lora, lora_ops

    installed = []
    monkeypatch.setattr(engine_lora, "install", lambda: installed.append("engine_lora"))
    monkeypatch.setattr(lora_ops, "install", lambda: installed.append("lora_ops"))
    LoRAResolverRegistry.resolvers.pop(lora_resolver.RESOLVER_NAME, None)
    monkeypatch.delenv("QUANTA_LORA_RESOLVER", raising=False)
    quanta_env()
    lora_resolver.register()
    assert lora_resolver.RESOLVER_NAME not in LoRAResolverRegistry.get_supported_resolvers()
    quanta_env(QUANTA_LORA_RESOLVER="registry")
    assert installed == []  # a plain `vllm serve`: vLLM's managers and ops untouched
    lora_resolver.register()
    lora_resolver.register()  # idempotent
    assert lora_resolver.RESOLVER_NAME in LoRAResolverRegistry.get_supported_resolvers()
    assert set(installed) == {"engine_lora", "lora_ops"}
    LoRAResolverRegistry.resolvers.pop(lora_resolver.RESOLVER_NAME, None)


def test_resolver_loads_what_was_prepared(adapters) -> None:  # type: ignore[no-untyped-def]
    """The resolver loads the verified copy the request's resolution left in the handoff
    (``serve.handoff``), by unique name; it looks nothing up itself."""
    registry, mine, other = adapters
    handoff = AdapterHandoff(AdapterCache(registry))
    resolver = lora_resolver.RegistryLoRAResolver()
    misses = _value("quanta_resolver_cache_misses_total")
    hits = _value("quanta_resolver_cache_hits_total")

    def resolve(name: str) -> LoRARequest | None:
        with mock.patch("serve.handoff.get_handoff", lambda: handoff):
            return asyncio.run(resolver.resolve_lora("/models/base", name))

    assert resolve(mine.name) is None  # nothing prepared it: not loaded
    handoff.prepare(mine)
    request = resolve(mine.name)
    assert request is not None and request.lora_name == mine.name
    assert (Path(request.lora_path) / "adapter_config.json").read_text() == '{"r": 8}'
    assert _value("quanta_resolver_cache_misses_total") == misses + 1
    handoff.prepare(mine)  # loaded: the ticket covers it
    assert _value("quanta_resolver_cache_hits_total") == hits
    assert resolve(mine.id) is None  # ids and aliases: the middleware rewrites them
    assert resolve("al") is None
    assert resolve(other.name) is None  # another base's: access refuses it, never prepared


def test_sync_unloads_deleted(adapters) -> None:
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
        await sync.sync_once()
        assert engine.removed == []
        registry.delete("adapter", mine.id)
        await sync.sync_once()
        assert mine.name not in models.lora_requests
        assert engine.removed == [request.lora_int_id]
        assert not path.exists()

    asyncio.run(scenario())
    assert _value("quanta_adapter_loads_total", adapter=mine.name) == loads + 1
    assert _value("quanta_adapter_unloads_total", adapter=mine.name, reason="deleted") == 1
    assert _value("quanta_adapter_load_seconds_count") >= 1


def test_sync_pins_what_the_registry_pins(adapters, tmp_path: Path) -> None:
    registry, mine, _ = adapters
    directory = fake_adapter_dir(tmp_path / "second", '{"r": 2}')
    second = registry.add_adapter("local", BASE, directory, suffix="c")
    models, engine = FakeModels(), FakeEngine()
    sync = AdapterSync(models, engine, AdapterCache(registry), max_pins=1,
                       pinned=functools.partial(registry.pinned_adapter_names, BASE))

    async def scenario() -> None:
        await sync.sync_once()
        assert engine.pinned == [] and not models.lora_requests
        registry.set_pinned("local", "al", True)  # by alias, as the owner names it
        registry.set_pinned("local", second.name, True)
        third = registry.add_adapter("local", BASE, directory, suffix="d")
        with pytest.raises(ConflictError, match="QUANTA_MAX_PINS_PER_TENANT"):
            registry.set_pinned("local", third.name, True)  # two per tenant and base
        registry.set_pinned("local", second.name, True)  # pinning again is no new pin
        await sync.sync_once()
        # One pin fits this server (max_pins): the first by name; the other stays evictable.
        first, other = sorted([mine.name, second.name])
        assert sync.pinned == {first}
        assert engine.pinned == [models.lora_requests[first].lora_int_id]
        await sync.sync_once()  # nothing new: pinned once
        assert len(engine.pinned) == 1
        registry.set_pinned("local", first, False)
        await sync.sync_once()
        assert engine.removed  # vLLM cannot unpin: unloaded, evictable when used again
        assert sync.pinned == {other}
        await sync.unload(other, reason="grpc")  # dropped by hand: pinned again next sync
        engine.loaded.clear()  # and evicted meanwhile: loaded again before it is pinned
        await sync.sync_once()
        assert sync.pinned == {other}
        assert engine.pinned[-1] == models.lora_requests[other].lora_int_id

    asyncio.run(scenario())
    with pytest.raises(NotFoundError):
        registry.set_pinned("globex", mine.name, True)  # the owner's alone


def test_residency_board_follows_snapshots() -> None:
    owners = {"ft:a": "acme", "ft:b": "acme", "ft:c": "globex"}
    board = ResidencyBoard(owners.get)

    def tier(name: str) -> str:
        values = {t: _value("quanta_adapter_resident", tenant=owners[name], adapter=name,
                            tier=t) for t in Tier}
        assert sorted(values.values()) == [0, 0, 1], values
        return next(t for t, v in values.items() if v == 1)

    evictions = _value("quanta_adapter_evictions_total", adapter="ft:a")
    loads = _value("quanta_adapter_loads_total", adapter="ft:a")
    board.apply(Snapshot(active=frozenset({"ft:a"}), cpu=frozenset({"ft:a", "ft:b", "warmup"})))
    assert (tier("ft:a"), tier("ft:b")) == ("active", "cpu")
    assert not [m for m in REGISTRY.collect() if m.name == "quanta_adapter_resident"
                for sample in m.samples if sample.labels["adapter"] == "warmup"]  # not shown
    board.apply(Snapshot(active=frozenset({"ft:c"}), cpu=frozenset({"ft:b", "ft:c"}),
                         pinned=frozenset({"ft:b"})))
    assert (tier("ft:a"), tier("ft:b"), tier("ft:c")) == ("disk", "cpu", "active")
    assert _value("quanta_adapter_pinned", tenant="acme", adapter="ft:b") == 1
    assert _value("quanta_adapter_evictions_total", adapter="ft:a") == evictions + 1
    board.apply(Snapshot(cpu=frozenset({"ft:a", "ft:b"})))  # evicted, then used again
    assert tier("ft:a") == "cpu"
    assert _value("quanta_adapter_loads_total", adapter="ft:a") == loads + 1
    assert _value("quanta_adapter_pinned", tenant="acme", adapter="ft:b") == 0
    board.forget("ft:a")  # deleted: its series go, and late snapshots do not bring them back
    board.apply(Snapshot(cpu=frozenset({"ft:a"})))
    assert REGISTRY.get_sample_value("quanta_adapter_resident",
                                     {"tenant": "acme", "adapter": "ft:a", "tier": "cpu"}) is None
    board.used("ft:a")
    board.apply(Snapshot(cpu=frozenset({"ft:a"})))
    assert tier("ft:a") == "cpu"


def test_engine_reports_reach_the_board(tmp_path: Path) -> None:
    """The engine-side reporter (a fake manager over vLLM's own LRU cache) and the API
    server's listener, through a real Unix datagram socket; pins are in memory only."""
    from vllm.lora.model_manager import LRUCacheLoRAModelManager
    from vllm.utils.cache import LRUCache

    from serve.engine_lora import ResidencyReporter

    class Manager:  # the attributes of LRUCacheLoRAModelManager the reporter reads
        def __init__(self) -> None:
            self._registered_adapters: LRUCache[int, object] = LRUCache(4)
            self._active_adapters: LRUCache[int, object] = LRUCache(2)
            self.lora_index_to_id: list[int | None] = [None, None]

        _pin_lora_in_cpu_cache = LRUCacheLoRAModelManager._pin_lora_in_cpu_cache

    class Worker:
        _adapter_manager = Manager()

    owners = {"ft:x": "acme", "ft:y": "acme"}
    board = ResidencyBoard(owners.get)
    path = socket_path()

    async def scenario() -> None:
        listener = await listen(board, path)
        try:
            reporter = ResidencyReporter(str(path))
            worker = Worker()
            manager = worker._adapter_manager
            for lora_id, name in ((1, "ft:x"), (2, "ft:y")):
                reporter.saw(LoRARequest(lora_name=name, lora_int_id=lora_id, lora_path="/"))
                manager._registered_adapters[lora_id] = object()
            manager.lora_index_to_id[0] = 2
            _pin_in_memory(manager, 1)
            reporter.report(worker)
            reporter.report(worker)  # unchanged: nothing sent
            for _ in range(200):
                if board.applied:
                    break
                await asyncio.sleep(0.01)
            assert board.last == Snapshot(active=frozenset({"ft:y"}),
                                          cpu=frozenset({"ft:x", "ft:y"}),
                                          pinned=frozenset({"ft:x"}))
            await asyncio.sleep(0.1)
            assert board.applied == 1
            manager.lora_index_to_id[0] = None  # a slot freed: a change, sent
            reporter.report(worker)
            for _ in range(200):
                if board.applied == 2:
                    break
                await asyncio.sleep(0.01)
            assert board.last.active == frozenset()
            assert manager._active_adapters.pinned_items == set()  # no batch slot pinned
        finally:
            listener.close()

    asyncio.run(scenario())
    assert not path.parent.exists()
