"""Where each adapter lives, as the engine reports it: ``quanta_adapter_resident``.

vLLM's LoRA manager runs in its engine process; Quanta's metrics are served by the API
server process. The engine side (``serve.engine_lora``, installed by the plugin) sends a
:class:`Snapshot` of its adapters over a Unix datagram socket whenever the set changes
(a load, an eviction, a slot taken), and :class:`ResidencyBoard` here turns it into the
gauge at once: no polling, and a lost datagram is corrected by the next one, since each
carries the whole state.

Tiers: ``active`` (in one of the engine's ``--max-loras`` slots: batched this step or
ready to be), ``cpu`` (in the engine's memory, ``--max-cpu-loras``), ``disk`` (evicted:
its files stay materialised locally and the next request loads it again).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import socket
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from serve import metrics

SOCKET_ENV = "QUANTA_RESIDENCY_SOCKET"

logger = logging.getLogger(__name__)


class Tier(StrEnum):
    ACTIVE = "active"
    CPU = "cpu"
    DISK = "disk"


@dataclass(frozen=True)
class Snapshot:
    """The engine's adapters by name: in a slot, in memory (slots included), pinned."""

    active: frozenset[str] = field(default_factory=frozenset)
    cpu: frozenset[str] = field(default_factory=frozenset)
    pinned: frozenset[str] = field(default_factory=frozenset)

    def encode(self) -> bytes:
        return json.dumps({"active": sorted(self.active), "cpu": sorted(self.cpu),
                           "pinned": sorted(self.pinned)}).encode()

    @classmethod
    def decode(cls, data: bytes) -> Snapshot:
        raw = json.loads(data)
        return cls(*(frozenset(str(n) for n in raw.get(k, ()))
                     for k in ("active", "cpu", "pinned")))

    def tier(self, name: str) -> Tier:
        return Tier.ACTIVE if name in self.active else Tier.CPU if name in self.cpu else Tier.DISK


class ResidencyBoard:
    """Keeps the residency gauges (and load/eviction counters) in step with snapshots.

    ``tenant_of`` maps an adapter name to its tenant (None: not a registry adapter, e.g.
    vLLM's warm-up dummies, which are not shown). Adapters the server forgot (deleted,
    unloaded) leave the gauges until they are used again.
    """

    def __init__(self, tenant_of: Callable[[str], str | None]) -> None:
        self.tenant_of = tenant_of
        self._tenants: dict[str, str | None] = {}
        self._tiers: dict[str, Tier] = {}
        self._pinned: set[str] = set()
        self._forgotten: set[str] = set()
        self.last = Snapshot()
        self.applied = 0  # snapshots applied so far

    @property
    def reported(self) -> bool:
        """Has the engine sent anything yet?"""
        return self.applied > 0

    def unknown(self, snapshot: Snapshot) -> set[str]:
        """Names whose tenant is still to be looked up (a registry query)."""
        return {n for n in snapshot.cpu | snapshot.active if n not in self._tenants}

    def learn(self, names: set[str]) -> None:
        for name in names:
            self._tenants[name] = self.tenant_of(name)

    def apply(self, snapshot: Snapshot) -> None:
        """Set every known adapter's tier from the engine's latest snapshot."""
        self.last = snapshot
        self.applied += 1
        names = (snapshot.cpu | snapshot.active) - self._forgotten
        for name in names | set(self._tiers):
            tenant = self._tenant(name)
            if tenant is None:
                continue
            tier = snapshot.tier(name)
            before = self._tiers.get(name)
            if tier != before:
                self._count_move(name, before, tier)
                self._tiers[name] = tier
                for each in Tier:
                    metrics.ADAPTER_RESIDENT.labels(tenant=tenant, adapter=name,
                                                    tier=each).set(1 if each == tier else 0)
            pinned = name in snapshot.pinned
            if pinned != (name in self._pinned):
                metrics.ADAPTER_PINNED.labels(tenant=tenant, adapter=name).set(int(pinned))
                (self._pinned.add if pinned else self._pinned.discard)(name)

    def used(self, name: str) -> None:
        """The server resolved this adapter again: report it even if it was forgotten."""
        self._forgotten.discard(name)

    def forget(self, name: str) -> None:
        """The server dropped the adapter (deleted, unloaded): remove its series."""
        self._forgotten.add(name)
        tenant = self._tenants.get(name)
        if self._tiers.pop(name, None) is not None and tenant is not None:
            for each in Tier:
                metrics.ADAPTER_RESIDENT.remove(tenant, name, each)
        if name in self._pinned and tenant is not None:
            self._pinned.discard(name)
            metrics.ADAPTER_PINNED.remove(tenant, name)

    def _tenant(self, name: str) -> str | None:
        if name not in self._tenants:
            self.learn({name})
        return self._tenants[name]

    @staticmethod
    def _count_move(name: str, before: Tier | None, after: Tier) -> None:
        """Evictions and reloads, counted as they happen (first loads are counted where
        the resolver loads them, with their latency)."""
        if after == Tier.DISK and before is not None:
            metrics.ADAPTER_EVICTIONS.labels(adapter=name).inc()
        elif before == Tier.DISK:
            metrics.ADAPTER_LOADS.labels(adapter=name).inc()


class _Receiver(asyncio.DatagramProtocol):
    def __init__(self, queue: asyncio.Queue[Snapshot]) -> None:
        self.queue = queue

    def datagram_received(self, data: bytes, addr: object) -> None:
        try:
            self.queue.put_nowait(Snapshot.decode(data))
        except (ValueError, TypeError, AttributeError):
            logger.warning("ignored a malformed residency report")


async def _apply_in_order(board: ResidencyBoard, queue: asyncio.Queue[Snapshot]) -> None:
    """Apply snapshots as they came; new names' tenants are looked up off the loop."""
    while True:
        snapshot = await queue.get()
        unknown = board.unknown(snapshot)
        if unknown:
            await asyncio.to_thread(board.learn, unknown)
        board.apply(snapshot)


def socket_path() -> Path:
    """A fresh socket path in a private directory (short enough for AF_UNIX's 108 bytes,
    wherever QUANTA_HOME is)."""
    return Path(tempfile.mkdtemp(prefix="quanta-residency-")) / "engine.sock"


@dataclass
class Listener:
    transport: asyncio.DatagramTransport
    task: asyncio.Task[None]
    path: Path

    def close(self) -> None:
        self.transport.close()
        self.task.cancel()
        shutil.rmtree(self.path.parent, ignore_errors=True)


async def listen(board: ResidencyBoard, path: Path) -> Listener:
    """Receive the engine's snapshots on ``path`` (bound before vLLM's engine starts)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    os.chmod(path, 0o600)
    sock.setblocking(False)
    queue: asyncio.Queue[Snapshot] = asyncio.Queue()
    transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
        lambda: _Receiver(queue), sock=sock)
    return Listener(transport, asyncio.create_task(_apply_in_order(board, queue)), path)
