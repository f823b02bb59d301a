"""Serve endpoints: each ``quanta serve`` records which base it serves and where; readers
see only servers that refreshed their row within the ttl."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import pytest

from quanta.config import Settings
from quanta.registry import Registry, ServeEndpointRecord


@pytest.fixture
def registry(tmp_path: Path) -> Registry:
    return Registry.open(Settings(home=tmp_path / "home", serve_endpoint_ttl=60))


def test_register_heartbeat_unregister(registry: Registry) -> None:
    rows = registry.serve_endpoints
    endpoint = rows.register(base_model_id="smol", engine="vllm",
                             url="http://node-a:8000/", grpc="node-a:50051")
    assert type(endpoint) is ServeEndpointRecord and endpoint.id.startswith("serve-")
    assert (endpoint.url, endpoint.grpc, endpoint.engine) == ("http://node-a:8000",
                                                            "node-a:50051", "vllm")
    assert (endpoint.host, endpoint.pid) == (socket.gethostname(), os.getpid())
    assert [e.id for e in rows.for_base("smol")] == [endpoint.id]
    time.sleep(0.01)
    beat = rows.heartbeat(endpoint)
    assert beat.id == endpoint.id and beat.last_seen > endpoint.last_seen
    assert beat.started_at == endpoint.started_at
    assert rows.unregister(endpoint.id) is True
    assert rows.for_base("smol") == [] and rows.live() == []
    assert rows.unregister(endpoint.id) is False


def test_stale_rows_are_gone_for_readers_then_swept(registry: Registry) -> None:
    rows = registry.serve_endpoints
    killed = rows.register(base_model_id="smol", engine="vllm", url="http://a:8000")
    time.sleep(0.05)
    assert [e.id for e in rows.live(ttl=60)] == [killed.id]
    assert rows.live(ttl=0.01) == []  # not refreshed within the ttl: not advertised
    # A registration sweeps rows older than the ttl (a killed server cannot delete its own).
    fresh = Registry.open(Settings(home=registry.settings.home, serve_endpoint_ttl=0.01))
    other = fresh.serve_endpoints.register(base_model_id="gemma", engine="llama-cpp",
                                           url="http://b:8001")
    assert [e.id for e in registry.serve_endpoints.live()] == [other.id]
    # A server that stalled past the ttl and was swept is advertised again at its next beat.
    back = registry.serve_endpoints.heartbeat(killed)
    assert back.id == killed.id and back.url == killed.url
    assert {e.id for e in registry.serve_endpoints.live()} == {killed.id, other.id}


def test_two_bases_side_by_side(registry: Registry) -> None:
    rows = registry.serve_endpoints
    smol = rows.register(base_model_id="smol", engine="vllm", url="http://node:8000",
                         grpc="node:50051")
    gemma = rows.register(base_model_id="gemma", engine="llama-cpp", url="http://node:8001")
    replica = rows.register(base_model_id="smol", engine="vllm", url="http://node:8000",
                            grpc="node:50051", host="other-node", pid=7)
    assert [e.id for e in rows.for_base("gemma")] == [gemma.id]
    assert {e.id for e in rows.for_base("smol")} == {smol.id, replica.id}
    assert [e.base_model_id for e in rows.live()] == ["gemma", "smol", "smol"]
    assert rows.for_base("nothing") == []
    rows.unregister(smol.id)
    assert [e.id for e in rows.for_base("smol")] == [replica.id]


def test_only_http_urls(registry: Registry) -> None:
    with pytest.raises(ValueError, match="http"):
        registry.serve_endpoints.register(base_model_id="smol", engine="vllm",
                                          url="javascript:alert(1)")
