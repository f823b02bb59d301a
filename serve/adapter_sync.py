"""Keep vLLM's loaded adapters in step with the registry, and count loads and evictions.

vLLM's API server remembers every adapter it resolved (``OpenAIServingModels.
lora_requests``) while its engine keeps only the most recently used ones (LRU over
``--max-cpu-loras``) and reloads an evicted one from its path on the next request. A
background task in the API-server process polls every ``interval`` seconds:

* adapters deleted from the registry are forgotten by the API server, removed from
  the engine (``engine_client.remove_lora``, what ``/v1/unload_lora_adapter`` does not
  do) and their materialised files removed. Requests for a deleted adapter are
  refused at once (the middleware's registry lookup fails); memory is released within
  one poll interval (default 2 s) plus the engine round trip (milliseconds).
* the engine's adapter set (``engine_client.list_loras``) is compared with the last
  poll: an id that disappeared was evicted, one that came back was reloaded.
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import Any

from vllm.lora.request import LoRARequest

from serve import metrics
from serve.adapter_cache import AdapterCache

logger = logging.getLogger(__name__)


def instrument_loads(models: Any) -> None:
    """Time first loads: wrap the serving models' ``resolve_lora`` (resolve + engine load)."""
    original = models.resolve_lora

    async def resolve_lora(lora_name: str) -> Any:
        known = lora_name in models.lora_requests
        started = time.perf_counter()
        result = await original(lora_name)
        if not known and isinstance(result, LoRARequest):
            metrics.ADAPTER_LOAD_SECONDS.observe(time.perf_counter() - started)
            metrics.ADAPTER_LOADS.labels(adapter=lora_name).inc()
        return result

    models.resolve_lora = resolve_lora


class AdapterSync:
    """The background poller; ``unload`` is also what gRPC's UnloadAdapter calls."""

    def __init__(self, models: Any, engine_client: Any, cache: AdapterCache,
                 interval: float = 2.0) -> None:
        self.models = models
        self.engine = engine_client
        self.cache = cache
        self.interval = interval
        self._last_loaded: set[int] = set()
        self._evicted: set[int] = set()

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
        await self._watch_evictions()

    async def unload(self, name: str, reason: str) -> bool:
        """Forget and remove an adapter from the engine; False if it was not loaded."""
        async with self.models.lora_resolver_lock[name]:
            request: LoRARequest | None = self.models.lora_requests.pop(name, None)
        if request is None:
            return False
        await self.engine.remove_lora(request.lora_int_id)
        self._last_loaded.discard(request.lora_int_id)
        self._evicted.discard(request.lora_int_id)
        metrics.ADAPTER_UNLOADS.labels(adapter=name, reason=reason).inc()
        if reason == "deleted":
            await asyncio.to_thread(self.cache.forget, Path(request.lora_path))
        logger.info("unloaded adapter %s (%s)", name, reason)
        return True

    async def _watch_evictions(self) -> None:
        loaded = set(await self.engine.list_loras())
        names = {r.lora_int_id: r.lora_name for r in list(self.models.lora_requests.values())}
        for lora_id in self._last_loaded - loaded:
            if lora_id in names:
                metrics.ADAPTER_EVICTIONS.labels(adapter=names[lora_id]).inc()
                self._evicted.add(lora_id)
        for lora_id in loaded - self._last_loaded:
            if lora_id in self._evicted and lora_id in names:
                metrics.ADAPTER_LOADS.labels(adapter=names[lora_id]).inc()
                self._evicted.discard(lora_id)
        self._last_loaded = loaded
