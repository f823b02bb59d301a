"""A server's own row in the registry: registered while it serves, refreshed, removed at a
clean shutdown, and a registry that fails never stops the server."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from quanta.config import Settings
from quanta.registry import Registry
from serve.endpoint import EndpointAddress, EndpointAnnouncer, endpoint_address
from serve.engines.base import ServeOptions


@pytest.fixture
def registry(tmp_path: Path) -> Registry:
    return Registry.open(Settings(home=tmp_path / "home"))


def _announcer(registry: Registry, interval: float | None = None) -> EndpointAnnouncer:
    return EndpointAnnouncer(registry, base_model_id="smol", engine="vllm", interval=interval,
                             address=EndpointAddress("http://node:8000", "node:50051"))


def test_addresses_default_to_the_bind_address_unless_set() -> None:
    settings = Settings()
    local = endpoint_address(ServeOptions(host="127.0.0.1", port=8123, grpc_port=50123),
                             settings, grpc=True)
    assert local == EndpointAddress("http://127.0.0.1:8123", "127.0.0.1:50123")
    wildcard = endpoint_address(ServeOptions(host="0.0.0.0", port=8000), settings,
                                grpc=False)  # llama.cpp: no gRPC
    assert wildcard == EndpointAddress(f"http://{socket.gethostname()}:8000", None)
    assert endpoint_address(ServeOptions(host="::1", grpc_port=None), settings,
                            grpc=True) == EndpointAddress("http://[::1]:8000", None)
    gateway = Settings(serve_public_url="https://llm.example/smol/",
                       serve_public_grpc="grpc.example:443")
    assert endpoint_address(ServeOptions(host="0.0.0.0"), gateway, grpc=True) == \
        EndpointAddress("https://llm.example/smol", "grpc.example:443")
    chosen = ServeOptions(public_url="http://svc:8000", public_grpc="svc:50051")
    assert endpoint_address(chosen, gateway, grpc=True) == \
        EndpointAddress("http://svc:8000", "svc:50051")


def test_registered_while_serving_refreshed_then_removed(registry: Registry) -> None:
    async def serving() -> None:
        announcer = _announcer(registry, interval=0.02)
        await announcer.start()
        [row] = registry.serve_endpoints.for_base("smol")
        assert (row.url, row.grpc, row.engine) == ("http://node:8000", "node:50051", "vllm")
        await asyncio.sleep(0.2)
        [beat] = registry.serve_endpoints.for_base("smol")
        assert beat.id == row.id and beat.last_seen > row.last_seen
        await announcer.stop()
        assert registry.serve_endpoints.live() == []

    asyncio.run(serving())


def test_a_failing_registry_never_stops_the_server(registry: Registry, monkeypatch,
                                                   caplog) -> None:
    rows = registry.serve_endpoints

    def down(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise OSError("database unreachable")

    async def serving() -> None:
        register = rows.register
        monkeypatch.setattr(rows, "register", down)
        announcer = _announcer(registry, interval=0.02)
        await announcer.start()  # logged, not raised
        assert rows.live() == []
        monkeypatch.setattr(rows, "register", register)
        await asyncio.sleep(0.2)  # the next beat registers
        assert len(rows.live()) == 1
        monkeypatch.setattr(rows, "heartbeat", down)
        monkeypatch.setattr(rows, "unregister", down)
        await asyncio.sleep(0.1)
        await announcer.stop()

    asyncio.run(serving())
    assert "could not record this server" in caplog.text
    assert "could not remove this server's registry row" in caplog.text


def test_lifespan_announces_the_app(registry: Registry) -> None:
    """llama.cpp's app runs under ``uvicorn.run``: its lifespan registers and removes."""
    announcer = _announcer(registry)
    with TestClient(announcer.lifespan(Starlette())):
        assert [e.url for e in registry.serve_endpoints.for_base("smol")] == ["http://node:8000"]
    assert registry.serve_endpoints.for_base("smol") == []
