"""This server's row in the registry's serve endpoints: how the tune API, the console and
the servers of other bases learn where this base is served.

One ``quanta serve`` process serves one base model. It registers (base, engine, the URL
clients use, its gRPC address) when it starts serving, refreshes the row every third of
``QUANTA_SERVE_ENDPOINT_TTL`` (readers take a row not refreshed within it as gone, so a
killed server stops being advertised) and deletes it at a clean shutdown. The registry
is a side channel here: a failed write is logged and tried again at the next beat,
never a reason for the server to stop serving.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

from quanta.config import Settings
from quanta.registry import Registry, ServeEndpointRecord
from serve.asgi import ASGIApp, Message, Receive, Scope, Send

if TYPE_CHECKING:
    from serve.engines.base import ServeOptions

logger = logging.getLogger(__name__)
MAX_ADDRESS = 255  # what the registry's column holds

WILDCARD_HOSTS = frozenset({"", "0.0.0.0", "::", "[::]"})


@dataclass(frozen=True)
class EndpointAddress:
    """Where clients reach a server: its HTTP base URL and gRPC ``host:port`` (or None)."""

    url: str
    grpc: str | None = None


def endpoint_address(options: ServeOptions, settings: Settings, *,
                     grpc: bool) -> EndpointAddress:
    """The address this server advertises: ``--public-url``/``--public-grpc`` (or their
    settings) when it sits behind a gateway or Service, else its own bind address (this
    machine's name for a wildcard bind, which no client can dial). ``grpc``: whether
    this engine serves gRPC at all."""
    host = options.host
    if host in WILDCARD_HOSTS:
        host = socket.gethostname()
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"  # an IPv6 literal
    url = options.public_url or settings.serve_public_url or f"http://{host}:{options.port}"
    grpc_address = None
    if grpc and options.grpc_port is not None:
        grpc_address = (options.public_grpc or settings.serve_public_grpc
                        or f"{host}:{options.grpc_port}")
    check_address(url, grpc_address)
    return EndpointAddress(url.rstrip("/"), grpc_address)


def check_address(url: str, grpc: str | None) -> None:
    """Refuse, at startup, an address the registry would refuse at every heartbeat."""
    if not url.startswith(("http://", "https://")) or len(url) > MAX_ADDRESS:
        raise ValueError(f"--public-url must be http(s)://... in at most {MAX_ADDRESS} "
                         f"characters, not {url!r}")
    if grpc is not None and (len(grpc) > MAX_ADDRESS or "://" in grpc):
        raise ValueError(f"--public-grpc must be host:port in at most {MAX_ADDRESS} "
                         f"characters, not {grpc!r}")


class EndpointAnnouncer:
    """Registers this server, keeps its row fresh, removes it at shutdown; never raises."""

    def __init__(self, registry: Registry, *, base_model_id: str, engine: str,
                 address: EndpointAddress, interval: float | None = None) -> None:
        """``interval``: seconds between heartbeats (default a third of the ttl)."""
        self.registry = registry
        self.base_model_id = base_model_id
        self.engine = engine
        self.address = address
        self.interval = interval or registry.settings.serve_endpoint_ttl / 3
        self.endpoint: ServeEndpointRecord | None = None
        self._task: asyncio.Task[None] | None = None
        # A beat runs in a worker thread that cancelling the task does not stop: the lock
        # lets stop() wait for it, and once stopping no beat writes the row back.
        self._lock = threading.Lock()
        self._stopping = False

    async def start(self) -> None:
        """Register (a failure is retried by the heartbeat) and start beating."""
        await asyncio.to_thread(self._beat)
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="quanta-serve-endpoint")

    async def stop(self) -> None:
        """Stop beating and delete this server's row (a clean shutdown)."""
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await asyncio.to_thread(self._unregister)

    def _unregister(self) -> None:
        with self._lock:  # after any beat still running in its thread
            endpoint, self.endpoint = self.endpoint, None
            if endpoint is None:
                return
            try:
                self.registry.serve_endpoints.unregister(endpoint.id)
            except Exception:  # shutting down: the ttl retires the row instead
                logger.warning("could not remove this server's registry row %s; it expires "
                               "after %.0f s", endpoint.id,
                               self.registry.settings.serve_endpoint_ttl, exc_info=True)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            await asyncio.to_thread(self._beat)

    def _beat(self) -> None:
        """Register, or refresh the row; log (never raise) a registry failure."""
        with self._lock:
            if not self._stopping:
                self._write()

    def _write(self) -> None:
        rows = self.registry.serve_endpoints
        try:
            if self.endpoint is None:
                self.endpoint = rows.register(base_model_id=self.base_model_id,
                                              engine=self.engine, url=self.address.url,
                                              grpc=self.address.grpc)
                logger.info("registered as a server of %s at %s", self.base_model_id,
                            self.address.url)
            else:
                self.endpoint = rows.heartbeat(self.endpoint)
        except Exception:  # the registry is a side channel: keep serving
            logger.warning("could not record this server in the registry; trying again in "
                           "%.0f s", self.interval, exc_info=True)

    def lifespan(self, app: ASGIApp) -> ASGIApp:
        """``app`` announced for its ASGI lifespan: registered once its startup completes,
        removed when its shutdown completes. For engines run by ``uvicorn.run``, which
        re-raises SIGTERM once it returns: code after it would never run."""

        async def announced(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "lifespan":
                await app(scope, receive, send)
                return

            async def sending(message: Message) -> None:
                if message["type"] == "lifespan.startup.complete":
                    await self.start()
                elif message["type"] == "lifespan.shutdown.complete":
                    await self.stop()
                await send(message)

            await app(scope, receive, sending)

        return announced
