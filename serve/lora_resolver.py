"""vLLM LoRA resolver plugin: adapter names resolve to verified registry files on first request.

vLLM calls ``resolve_lora`` when a request names a model that is neither the base nor
an adapter it has loaded (and ``VLLM_ALLOW_RUNTIME_LORA_UPDATING`` is on); it then loads
the returned path into the engine, and its LRU (``--max-loras`` in the batch,
``--max-cpu-loras`` in memory) evicts. vLLM's OpenAI layer calls it in the API-server
process, after Quanta's middleware (or gRPC servicer) has resolved the request's model
for its tenant and verified the adapter's files: the resolver takes that result from
``serve.handoff`` and looks nothing up again. A name nothing admitted resolves to None
(vLLM's 404), so the resolver never loads an adapter no tenant check let through.

``register`` is the ``vllm.general_plugins`` entry point. vLLM runs general plugins in
every process of every vLLM started from this environment, so it registers the
resolver only when ``quanta serve`` asked for it (``QUANTA_LORA_RESOLVER=registry``):
a plain ``vllm serve`` (e.g. the bare baseline in ``bench/serve_multilora.py``) is
left alone, and nothing heavy is imported here.
"""

from __future__ import annotations

import asyncio
import logging

from vllm.lora.request import LoRARequest
from vllm.lora.resolver import LoRAResolver, LoRAResolverRegistry

from quanta.config import REGISTRY_LORA_RESOLVER, get_settings
from quanta.types import LoRAOps

RESOLVER_NAME = "quanta-registry"

logger = logging.getLogger(__name__)


class RegistryLoRAResolver(LoRAResolver):
    """Resolve admitted ``ft:`` names to their verified registry directories."""

    async def resolve_lora(self, base_model_name: str, lora_name: str) -> LoRARequest | None:
        from quanta.registry import CorruptBlobError, NotFoundError
        from serve.handoff import get_handoff

        handoff = await asyncio.to_thread(get_handoff)
        try:
            prepared = await asyncio.to_thread(handoff.take, lora_name)
        except (CorruptBlobError, NotFoundError) as exc:
            # Only when the files are verified here (a reload, or a stale ticket): a copy
            # that rotted since: refuse to load rather than serve wrong weights.
            logger.error("adapter %s failed its integrity check: %s", lora_name, exc)
            return None
        if prepared is None:
            logger.warning("adapter %s was not admitted by a tenant check; not loaded",
                           lora_name)
            return None
        # vLLM overwrites lora_int_id with its own counter.
        return LoRARequest(lora_name=lora_name, lora_int_id=1, lora_path=str(prepared.path))


def register() -> None:
    """Entry point (``vllm.general_plugins``): register the registry resolver and Quanta's
    LoRA manager changes (``serve.engine_lora``) once per process."""
    if get_settings().lora_resolver != REGISTRY_LORA_RESOLVER:
        return
    if RESOLVER_NAME not in LoRAResolverRegistry.get_supported_resolvers():
        LoRAResolverRegistry.register_resolver(RESOLVER_NAME, RegistryLoRAResolver())
    from serve import engine_lora

    engine_lora.install()  # residency reports and in-memory pins, in the engine's process
    if get_settings().lora_ops is LoRAOps.QUANTA:
        from serve import lora_ops

        lora_ops.install()  # on CPU: grouped LoRA ops instead of vLLM's per-token ones
