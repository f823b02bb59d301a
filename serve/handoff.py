"""From the request's resolution to vLLM's resolver: one lookup and one hash per load.

A request's ``model`` is resolved once, in the API-server process, by ``serve.access``
(API key -> tenant; name -> an adapter the tenant owns or that is shared with it, of the
served base, within the rank limit). Its last step is :meth:`AdapterHandoff.prepare`:
the adapter's files are verified (each hashed once, ``AdapterCache.materialize``) and a
ticket is left here under the adapter's unique ``ft:`` name, the name the middleware
rewrites the request to. vLLM's OpenAI layer, in the same process, then calls the
resolver (``serve.lora_resolver``) for a name it has not loaded, and the resolver takes
the ticket (:meth:`~AdapterHandoff.take`): the adapter's record and its verified
directory, with no second registry lookup and no second hash.

Only tickets are loaded. A name without one resolves to nothing (vLLM's 404): every
tenant request passes ``serve.access`` first (HTTP middleware, gRPC servicer), and the
one other caller, the registry's pins (``serve.adapter_sync``), prepares its names with
:meth:`~AdapterHandoff.prepare_named`. Tickets are keyed by globally unique names and
say nothing about tenants: who may use a name is decided per request, before vLLM.

A ticket is verified for one load. Once taken it stays (the adapter is loaded: later
requests for it hash nothing) until ``AdapterSync`` unloads the adapter
(:meth:`~AdapterHandoff.forget`); if vLLM asks for a taken ticket again (the load
failed) the files are verified again for that load. A ticket not taken within
``ttl`` seconds (its request was refused after resolution) is verified again before
it is used. At most ``capacity`` tickets are kept, least recently used dropped first:
a dropped one costs a hash at the adapter's next request (or a 404, were ``capacity``
other adapters admitted between one request's check and vLLM's load), never a wrong load.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from quanta.registry import AdapterRecord
from serve.adapter_cache import AdapterCache, get_adapter_cache

TICKET_TTL_S = 30.0
MAX_TICKETS = 4096
_STRIPES = 64


@dataclass(frozen=True)
class PreparedAdapter:
    """What the resolver hands vLLM: the adapter and its verified local directory."""

    record: AdapterRecord
    path: Path


@dataclass(frozen=True)
class _Ticket:
    record: AdapterRecord
    path: Path
    verified_at: float
    taken: bool = False


class AdapterHandoff:
    """Verified adapters waiting for (or loaded by) vLLM's resolver, by ``ft:`` name."""

    def __init__(self, cache: AdapterCache, *, capacity: int = MAX_TICKETS,
                 ttl: float = TICKET_TTL_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.cache = cache
        self.capacity = capacity
        self.ttl = ttl
        self.clock = clock
        self._tickets: OrderedDict[str, _Ticket] = OrderedDict()
        self._lock = threading.Lock()  # the ticket map
        # One adapter is verified at a time (a burst of first requests hashes once);
        # striped, so the locks are bounded however many adapters there are.
        self._stripes = [threading.Lock() for _ in range(_STRIPES)]

    def prepare(self, adapter: AdapterRecord) -> Path:
        """Verify the adapter's files for its next load, unless a ticket already covers
        it; raises CorruptBlobError (NotFoundError) when they fail. ``serve.access``
        calls this for an adapter it admitted for a request."""
        with self._stripe(adapter.name):
            ticket = self._get(adapter.name)
            if (ticket is not None and ticket.record.sha256 == adapter.sha256
                    and (ticket.taken or self._fresh(ticket))):
                self._put(replace(ticket, record=adapter))
                return ticket.path
            path = self.cache.materialize(adapter, reverify=True)
            self._put(_Ticket(adapter, path, self.clock()))
            return path

    def prepare_named(self, name: str, base_model_id: str | None) -> AdapterRecord | None:
        """``prepare`` an adapter by unique name, for callers with no tenant (the registry's
        pins); None when no adapter of ``base_model_id`` has that name."""
        adapter = self.cache.lookup(name)
        if adapter is None or (base_model_id is not None
                               and adapter.base_model_id != base_model_id):
            return None
        self.prepare(adapter)
        return adapter

    def take(self, name: str) -> PreparedAdapter | None:
        """The prepared adapter for one engine load (None: nothing admitted that name).
        The files are verified again only if this ticket's check does not cover this
        load (taken before, or stale)."""
        with self._stripe(name):
            ticket = self._get(name)
            if ticket is None:
                return None
            if ticket.taken or not self._fresh(ticket):
                path = self.cache.materialize(ticket.record, reverify=True)
                ticket = _Ticket(ticket.record, path, self.clock())
            self._put(replace(ticket, taken=True))
            return PreparedAdapter(ticket.record, ticket.path)

    def forget(self, name: str) -> None:
        """The adapter was unloaded: its next load is verified again."""
        with self._lock:
            self._tickets.pop(name, None)

    def owner(self, name: str) -> str | None:
        """The tenant of an adapter by ``ft:`` name (None: not a registry adapter), from
        its ticket when there is one, else from the registry."""
        ticket = self._get(name)
        if ticket is not None:
            return ticket.record.tenant_id
        return self.cache.registry.adapter_tenant(name)

    # -- helpers ---------------------------------------------------------------------------

    def _stripe(self, name: str) -> threading.Lock:
        return self._stripes[hash(name) % _STRIPES]

    def _fresh(self, ticket: _Ticket) -> bool:
        return self.clock() - ticket.verified_at <= self.ttl

    def _get(self, name: str) -> _Ticket | None:
        with self._lock:
            ticket = self._tickets.get(name)
            if ticket is not None:
                self._tickets.move_to_end(name)
            return ticket

    def _put(self, ticket: _Ticket) -> None:
        with self._lock:
            self._tickets[ticket.record.name] = ticket
            self._tickets.move_to_end(ticket.record.name)
            while len(self._tickets) > self.capacity:
                self._tickets.popitem(last=False)


_lock = threading.Lock()
_handoff: AdapterHandoff | None = None


def get_handoff() -> AdapterHandoff:
    """The process's handoff (the middleware's access checks and vLLM's resolver share
    it: both run in the API-server process), over the process's adapter cache."""
    global _handoff
    cache = get_adapter_cache()
    with _lock:
        if _handoff is None or _handoff.cache is not cache:
            _handoff = AdapterHandoff(cache)
        return _handoff
