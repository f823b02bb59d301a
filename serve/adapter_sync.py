"""Keep vLLM's loaded adapters in step with the registry: deletions and pins.

vLLM's API server remembers every adapter it resolved (``OpenAIServingModels.
lora_requests``) while its engine keeps only the most recently used ones (LRU over
``--max-cpu-loras``) and reloads an evicted one from its path on the next request. A
background task in the API-server process polls the registry every ``interval`` seconds:

* adapters deleted from the registry are forgotten by the API server, removed from
  the engine (``engine_client.remove_lora``, what ``/v1/unload_lora_adapter`` does not
  do) and their materialised files removed. Requests for a deleted adapter are
  refused at once (the middleware's registry lookup fails); memory is released within
  one poll interval (default 2 s) plus the engine round trip (milliseconds).
* adapters pinned in the registry (``quanta adapters pin``) are loaded and pinned with
  vLLM's ``pin_lora`` (looked up by name and verified through ``serve.handoff``, the
  resolver's one source, as no tenant request admitted them); unpinned ones are
  unloaded (vLLM has no unpin) and load again, evictable, on their next request. At
  start the first poll re-pins what the registry holds, so pins survive a restart. At
  most ``max_pins`` are honoured (the engine's CPU cache must keep room for a full
  batch of other adapters).

Loads and evictions themselves are reported by the engine as they happen
(``serve.residency``), not polled.
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import Any

from vllm.lora.request import LoRARequest

from serve import metrics
from serve.adapter_cache import AdapterCache, served_base_model_id
from serve.handoff import AdapterHandoff
from serve.residency import ResidencyBoard

logger = logging.getLogger(__name__)


def instrument_loads(models: Any, board: ResidencyBoard | None = None) -> None:
    """Time first loads: wrap the serving models' ``resolve_lora`` (resolve + engine load)."""
    original = models.resolve_lora

    async def resolve_lora(lora_name: str) -> Any:
        known = lora_name in models.lora_requests
        started = time.perf_counter()
        result = await original(lora_name)
        if not known and isinstance(result, LoRARequest):
            metrics.ADAPTER_LOAD_SECONDS.observe(time.perf_counter() - started)
            metrics.ADAPTER_LOADS.labels(adapter=lora_name).inc()
            if board is not None:
                board.used(lora_name)
        return result

    models.resolve_lora = resolve_lora


class AdapterSync:
    """The background poller; ``unload`` is also what gRPC's UnloadAdapter calls.

    ``pinned``: the registry's pinned adapter names for this server's base (None: no
    pinning, e.g. in tests of deletion alone). ``handoff``: where the resolver takes
    adapters from (pins are prepared there; unloaded adapters are forgotten there).
    """

    def __init__(self, models: Any, engine_client: Any, cache: AdapterCache,
                 interval: float = 2.0, *, board: ResidencyBoard | None = None,
                 pinned: Any = None, max_pins: int = 0,
                 handoff: AdapterHandoff | None = None) -> None:
        self.models = models
        self.engine = engine_client
        self.cache = cache
        self.handoff = handoff
        self.interval = interval
        self.board = board
        self.pinned_in_registry = pinned
        self.max_pins = max_pins
        self.pinned: set[str] = set()
        self._just_pinned: set[str] = set()
        self._refused_pins: set[str] = set()

    async def run(self) -> None:
        while True:
            try:
                await self.sync_once()
            except asyncio.CancelledError:
                raise
            except Exception:  # keep polling: a transient DB error must not stop unloads
                logger.exception("adapter sync failed")
            await asyncio.sleep(self.interval)

    async def sync_once(self) -> None:
        names = [n for n in list(self.models.lora_requests) if n.startswith("ft:")]
        alive = await asyncio.to_thread(self.cache.existing, names)
        for name in names:
            if name not in alive:
                await self.unload(name, reason="deleted")
        if self.pinned_in_registry is not None:
            await self.sync_pins(await asyncio.to_thread(self.pinned_in_registry))

    async def sync_pins(self, wanted: set[str]) -> None:
        """Pin what the registry pins (by name, up to ``max_pins``), unload what it no
        longer pins. A pin the engine reports lost (its adapter reloaded in place, or
        every adapter removed) is applied again."""
        if self.board is not None and self.board.reported:
            self.pinned &= self.board.last.pinned | self._just_pinned
        self._just_pinned = set()
        for name in sorted(self.pinned - wanted):
            self.pinned.discard(name)
            await self.unload(name, reason="unpinned")
        for name in sorted(wanted - self.pinned):
            if len(self.pinned) >= self.max_pins:
                if name not in self._refused_pins:
                    self._refused_pins.add(name)
                    logger.warning("adapter %s is pinned in the registry, but this server "
                                   "keeps at most %d pinned (--max-cpu-loras minus "
                                   "--max-loras); it stays evictable here", name,
                                   self.max_pins)
                continue
            try:
                await self._pin(name)
            except Exception:  # one adapter's failure must not hold the others' pins
                logger.exception("could not pin adapter %s", name)

    async def _pin(self, name: str) -> None:
        if self.handoff is not None and await asyncio.to_thread(
                self.handoff.prepare_named, name, served_base_model_id()) is None:
            logger.warning("pinned adapter %s is not an adapter of this server's base", name)
            return
        request = await self.models.resolve_lora(name)
        if not isinstance(request, LoRARequest):
            logger.warning("pinned adapter %s could not be loaded", name)
            return
        # The API server remembers adapters the engine may have evicted since: load it
        # again (a no-op when it is in memory), then pin it there.
        await self.engine.add_lora(request)
        await self.engine.pin_lora(request.lora_int_id)
        self.pinned.add(name)
        self._just_pinned.add(name)  # the engine's report of it may not have arrived yet
        self._refused_pins.discard(name)
        logger.info("pinned adapter %s", name)

    async def unload(self, name: str, reason: str) -> bool:
        """Forget and remove an adapter from the engine; False if it was not loaded."""
        async with self.models.lora_resolver_lock[name]:
            request: LoRARequest | None = self.models.lora_requests.pop(name, None)
        if self.handoff is not None:
            self.handoff.forget(name)  # its next load is verified again
        if request is None:
            return False
        if self.board is not None:
            self.board.forget(name)
        await self.engine.remove_lora(request.lora_int_id)
        metrics.ADAPTER_UNLOADS.labels(adapter=name, reason=reason).inc()
        self.pinned.discard(name)  # still pinned in the registry: the next sync pins it again
        if reason == "deleted":
            await asyncio.to_thread(self.cache.forget, Path(request.lora_path))
        logger.info("unloaded adapter %s (%s)", name, reason)
        return True
