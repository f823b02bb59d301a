"""Hardening of the tune API (in-process, no training): fuzzing, uploads, escapes, keys."""

from __future__ import annotations

import asyncio
import json
import os
import tracemalloc
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from quanta.config import Settings
from quanta.registry import Registry
from quanta.registry import tables as t
from quanta.tenancy import create_key, create_tenant, revoke_key
from tune.api.app import create_app

MiB = 1 << 20


@pytest.fixture
def env(quanta_home: Path, tmp_path: Path) -> dict[str, Any]:
    settings = Settings(home=quanta_home, allow_anonymous=False, max_upload_bytes=4 * MiB)
    registry = Registry.open(settings)
    create_tenant(registry, "acme")
    key_row, key = create_key(registry, "acme")
    app = create_app(settings, registry)
    return {"registry": registry, "app": app, "client": TestClient(app), "key": key,
            "key_id": key_row.id, "home": quanta_home}


def _h(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _record(size: int = 200) -> bytes:
    return (json.dumps({"messages": [{"role": "user", "content": "q" * size},
                                     {"role": "assistant", "content": "a"}]}) + "\n").encode()


def _stored(registry: Registry) -> tuple[int, int, list[str], list[str]]:
    """(file rows, blob rows, blob-store temp files, upload temp files)."""
    with registry.session() as s:
        files = s.scalar(select(func.count()).select_from(t.File))
        blobs = s.scalar(select(func.count()).select_from(t.Blob))
    home = registry.settings.resolved_home
    tmp = [p.name for p in (home / "blobs" / ".tmp").glob("*")]
    uploads = [p.name for p in (home / "uploads").glob("*")] if (home / "uploads").exists() \
        else []
    return files, blobs, tmp, uploads


# -- fuzzing ---------------------------------------------------------------------------------

@pytest.mark.timeout(300)
def test_schemathesis_finds_no_5xx_and_no_schema_violation() -> None:
    from tests.support.fuzz import fuzz_tune

    result = fuzz_tune(max_examples=10, max_time=40)
    print(result.line())
    assert result.requests > 200, result.output[-3000:]
    assert result.server_errors == 0, result.output[-6000:]
    assert result.returncode == 0, result.output[-6000:]


# -- uploads ---------------------------------------------------------------------------------

async def _chunks(total: int, chunk: bytes) -> Any:
    sent = 0
    while sent < total:
        yield chunk
        sent += len(chunk)


def _multipart_stream(total: int, boundary: str = "hardeningboundary") -> tuple[Any, str]:
    """A multipart body with one file part of ``total`` bytes, generated lazily."""
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\n"
            f"fine-tune\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
            f"filename=\"big.jsonl\"\r\nContent-Type: application/octet-stream\r\n\r\n").encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    line = _record(64 * 1024 - 64)

    async def body() -> Any:
        yield head
        async for part in _chunks(total, line):
            yield part
        yield tail

    return body, f"multipart/form-data; boundary={boundary}"


def _upload_peak(app: Any, key: str, total: int) -> tuple[int, int]:
    """POST a streamed upload of ``total`` bytes in-process; returns (status, peak bytes
    traced during the request: client, ASGI glue and server together)."""
    body, content_type = _multipart_stream(total)

    async def post() -> int:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://tune") as client:
            response = await client.post("/v1/files", content=body(), timeout=120,
                                         headers={**_h(key), "content-type": content_type})
            return response.status_code

    tracemalloc.start()
    try:
        status = asyncio.run(post())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return status, peak


def test_oversized_upload_is_413_nothing_stored_memory_flat(env: dict[str, Any]) -> None:
    registry = env["registry"]
    before = _stored(registry)
    # Declared too large: refused before a byte is read.
    declared = env["client"].post("/v1/files", headers=_h(env["key"]),
                                  files={"file": ("d.jsonl", b"x" * (5 * MiB))},
                                  data={"purpose": "fine-tune"})
    assert declared.status_code == 413, declared.text
    assert declared.json()["error"]["code"] == "file_too_large"
    # Streamed without a length (chunked): cut off at the limit while streaming. Memory
    # must not grow with the upload: 8 MiB and 64 MiB bodies peak about the same.
    small_status, small_peak = _upload_peak(env["app"], env["key"], 8 * MiB)
    big_status, big_peak = _upload_peak(env["app"], env["key"], 64 * MiB)
    assert small_status == big_status == 413
    assert big_peak < 4 * MiB, big_peak  # far below the limit, let alone the body
    assert big_peak < small_peak + 1 * MiB, (small_peak, big_peak)
    assert _stored(registry) == before  # no rows, no blobs, no temp files left


def test_accepted_upload_is_not_read_into_memory(env: dict[str, Any]) -> None:
    status, peak = _upload_peak(env["app"], env["key"], 3 * MiB)
    assert status == 200
    assert peak < 1 * MiB, peak


def test_malformed_multipart_is_4xx_and_stores_nothing(env: dict[str, Any]) -> None:
    client, h = env["client"], _h(env["key"])
    before = _stored(env["registry"])
    cases = [
        client.post("/v1/files", headers=h, content=b"not multipart"),
        client.post("/v1/files", headers={**h, "content-type": "multipart/form-data"},
                    content=b"--x\r\n"),
        client.post("/v1/files", headers=h, files=[("file", ("a.jsonl", _record())),
                                                   ("file", ("b.jsonl", _record()))],
                    data={"purpose": "fine-tune"}),
        client.post("/v1/files", headers=h, files={"file": ("a.jsonl", _record())},
                    data={"purpose": "x" * 10_000}),
        client.post("/v1/files", headers=h, files={"file": ("a.jsonl", b"\xff\xfe{{{")},
                    data={"purpose": "fine-tune"}),
        client.post("/v1/files", headers=h, data={"purpose": "fine-tune"}),
    ]
    for response in cases:
        assert 400 <= response.status_code < 500, response.text
        assert set(response.json()["error"]) == {"message", "type", "param", "code"}
    assert _stored(env["registry"]) == before


# -- path traversal --------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["../../etc/passwd", "/etc/passwd", "..\\..\\win.ini",
                                  "a/../../b.jsonl", "x\"; filename=evil.sh",
                                  "..",
                                  "ok\r\nX-Injected: 1"])
def test_file_names_never_become_paths(env: dict[str, Any], tmp_path: Path,
                                       name: str) -> None:
    client, h, home = env["client"], _h(env["key"]), env["home"]
    outside_before = set(os.listdir(home.parent))
    response = client.post("/v1/files", headers=h, files={"file": (name, _record())},
                           data={"purpose": "fine-tune"})
    assert response.status_code in (200, 400), response.text
    if response.status_code == 200:
        stored = response.json()["filename"]
        assert "/" not in stored and stored not in ("..", ".")
        content = client.get(f"/v1/files/{response.json()['id']}/content", headers=h)
        assert content.status_code == 200 and content.content == _record()
        assert "x-injected" not in content.headers
        assert "\n" not in content.headers.get("content-disposition", "")
    assert set(os.listdir(home.parent)) == outside_before  # nothing written beside home
    assert not Path("/etc/passwd.jsonl").exists()


@pytest.mark.parametrize("ident", ["..%2F..%2Fetc%2Fpasswd", "..%2F..", "%2e%2e",
                                   "file-..", "..;", "%00", "a" * 5000])
def test_ids_cannot_escape(env: dict[str, Any], ident: str) -> None:
    client, h = env["client"], _h(env["key"])
    for path in (f"/v1/files/{ident}", f"/v1/files/{ident}/content",
                 f"/v1/fine_tuning/jobs/{ident}", f"/v1/fine_tuning/jobs/{ident}/events",
                 f"/v1/fine_tuning/jobs/{ident}/checkpoints"):
        response = client.get(path, headers=h)
        assert response.status_code in (400, 404), (path, response.status_code)
        assert response.json()["error"]
    assert client.delete(f"/v1/files/{ident}", headers=h).status_code in (400, 404)
    assert client.post(f"/v1/fine_tuning/jobs/{ident}/cancel",
                       headers=h).status_code in (400, 404)


# -- keys ------------------------------------------------------------------------------------

def test_revoked_key_stops_working_at_once(env: dict[str, Any]) -> None:
    client, h = env["client"], _h(env["key"])
    assert client.get("/v1/files", headers=h).status_code == 200
    revoke_key(env["registry"], env["key_id"])
    response = client.get("/v1/files", headers=h)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_api_key"
    assert client.post("/v1/files", headers=h, files={"file": ("a.jsonl", _record())},
                       data={"purpose": "fine-tune"}).status_code == 401


def test_keys_are_stored_hashed(env: dict[str, Any]) -> None:
    with env["registry"].session() as s:
        rows = list(s.scalars(select(t.ApiKey)))
    assert rows and all(env["key"] not in (r.key_hash, r.prefix) for r in rows)
    assert all(len(r.key_hash) == 64 for r in rows)
