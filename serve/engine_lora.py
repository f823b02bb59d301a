"""Inside vLLM's engine process: report adapter residency, pin adapters in memory only.

Installed by the plugin (``serve.lora_resolver.register``) under ``quanta serve``, in the
process that owns vLLM's LoRA manager (the engine core). Two changes to
``LRUCacheWorkerLoRAManager`` / ``LRUCacheLoRAModelManager``, both small enough to propose
upstream as they are:

* after every call that can change which adapters are loaded (a step's
  ``set_active_adapters``, ``add_adapter``, ``remove_adapter``, ``pin_adapter``), a
  :class:`~serve.residency.Snapshot` goes to the API server when it differs from the
  last one sent (a few set comparisons per step; a datagram only on change);
* ``pin_adapter`` pins the CPU cache only. vLLM's also pins a batch slot, but its
  scheduler still admits ``--max-loras`` distinct adapters per batch: with a slot pinned
  by an adapter outside the batch, activating the last one would evict an adapter the
  same batch uses. Pinned in memory, an adapter is never evicted nor reloaded from disk;
  taking a slot is a copy of its weights.
"""

from __future__ import annotations

import functools
import logging
import os
import socket
from collections.abc import Callable
from typing import Any

from serve.residency import SOCKET_ENV, Snapshot

logger = logging.getLogger(__name__)

SEND_TIMEOUT_S = 0.2
REPORTING_METHODS = ("set_active_adapters", "add_adapter", "remove_adapter",
                     "remove_all_adapters", "pin_adapter")


class ResidencyReporter:
    """Sends the worker manager's adapter snapshot to the API server when it changes."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        # A full queue waits a moment rather than dropping a change (the API server
        # drains it from its event loop); a server that is gone costs this once a change.
        self.sock.settimeout(SEND_TIMEOUT_S)
        self.names: dict[int, str] = {}
        self.last: Snapshot | None = None

    def saw(self, lora_request: Any) -> None:
        if lora_request is not None:
            self.names[lora_request.lora_int_id] = lora_request.lora_name

    def report(self, worker_manager: Any) -> None:
        manager = getattr(worker_manager, "_adapter_manager", None)
        if manager is None:
            return
        snapshot = self.snapshot(manager)
        if snapshot == self.last:
            return
        try:
            self.sock.sendto(snapshot.encode(), self.path)
        except OSError:  # not listening yet, or still full: the next change sends it all
            return
        self.last = snapshot

    def snapshot(self, manager: Any) -> Snapshot:
        def named(ids: Any) -> frozenset[str]:
            return frozenset(self.names[i] for i in ids if i in self.names)

        registered = manager._registered_adapters
        return Snapshot(active=named(i for i in manager.lora_index_to_id if i is not None),
                        cpu=named(registered.cache), pinned=named(registered.pinned_items))


def _reporting(method: Callable[..., Any], reporter: ResidencyReporter) -> Callable[..., Any]:
    @functools.wraps(method)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        if method.__name__ == "add_adapter" and args:
            reporter.saw(args[0])
        elif method.__name__ == "set_active_adapters" and args:
            for request in args[0]:
                reporter.saw(request)
        try:
            return method(self, *args, **kwargs)
        finally:
            reporter.report(self)

    return wrapper


def _pin_in_memory(self: Any, lora_id: int) -> bool:
    self._pin_lora_in_cpu_cache(lora_id)
    return True


def install() -> None:
    """Patch vLLM's LRU LoRA managers in this process (idempotent)."""
    from vllm.lora.model_manager import LRUCacheLoRAModelManager
    from vllm.lora.worker_manager import LRUCacheWorkerLoRAManager

    if getattr(LRUCacheWorkerLoRAManager, "_quanta_installed", False):
        return
    LRUCacheLoRAModelManager.pin_adapter = _pin_in_memory  # type: ignore[method-assign]
    path = os.environ.get(SOCKET_ENV)
    if path:
        reporter = ResidencyReporter(path)
        for name in REPORTING_METHODS:
            original = getattr(LRUCacheWorkerLoRAManager, name)
            setattr(LRUCacheWorkerLoRAManager, name, _reporting(original, reporter))
    LRUCacheWorkerLoRAManager._quanta_installed = True  # type: ignore[attr-defined]
