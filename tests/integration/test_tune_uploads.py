"""OpenAI's Uploads API through the official SDK: parts, resume after a dropped part,
completion into a validated file, cancel and expiry dropping the parts."""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import openai
import pytest
from fastapi.testclient import TestClient
from openai.types import FileObject, Upload
from openai.types.uploads import UploadPart
from sqlalchemy import func, select

from quanta.config import Settings
from quanta.registry import Registry
from quanta.registry import tables as t
from quanta.registry import utcnow as now
from quanta.tenancy import create_key, create_tenant
from tests.support.fixtures import arithmetic_chat

DATA = "".join(json.dumps(r) + "\n" for r in arithmetic_chat(40)).encode()


@pytest.fixture
def env(quanta_home: Path) -> dict[str, Any]:
    # One request may carry 1 KiB: the training file must come in parts.
    settings = Settings(home=quanta_home, allow_anonymous=False, max_upload_bytes=1024)
    registry = Registry.open(settings)
    create_tenant(registry, "other")
    _, key = create_key(registry, "local")
    _, other = create_key(registry, "other")
    from tune.api.app import create_app

    http = TestClient(create_app(settings, registry))
    sdk = openai.OpenAI(base_url="http://testserver/v1", api_key=key, http_client=http,
                        max_retries=0)
    other_sdk = openai.OpenAI(base_url="http://testserver/v1", api_key=other,
                              http_client=http, max_retries=0)
    return {"registry": registry, "http": http, "sdk": sdk, "other": other_sdk, "key": key}


def _parts(registry: Registry) -> int:
    with registry.session() as s:
        return s.scalar(select(func.count()).select_from(t.UploadPart))


def _blobs(registry: Registry) -> int:
    with registry.session() as s:
        return s.scalar(select(func.count()).select_from(t.Blob))


def test_a_file_bigger_than_one_request_arrives_in_parts(env: dict[str, Any]) -> None:
    sdk, registry = env["sdk"], env["registry"]
    assert len(DATA) > 1024
    with pytest.raises(openai.APIStatusError) as whole:  # too big for /v1/files
        sdk.files.create(file=("big.jsonl", DATA), purpose="fine-tune")
    assert whole.value.status_code == 413

    upload = sdk.uploads.create(filename="big.jsonl", purpose="fine-tune", bytes=len(DATA),
                                mime_type="application/jsonl")
    Upload.model_validate(upload.model_dump())
    assert upload.status == "pending" and upload.file is None
    chunks = [DATA[i:i + 1000] for i in range(0, len(DATA), 1000)]
    parts = [sdk.uploads.parts.create(upload.id, data=chunk) for chunk in chunks]
    for part in parts:
        UploadPart.model_validate(part.model_dump())
        assert part.upload_id == upload.id
    # Parts are joined in the order named, whatever order they arrived in.
    done = sdk.uploads.complete(upload.id, part_ids=[p.id for p in parts],
                                md5=hashlib.md5(DATA).hexdigest())
    assert done.status == "completed" and done.file is not None
    FileObject.model_validate(done.file.model_dump())
    assert sdk.files.content(done.file.id).read() == DATA
    assert done.file.bytes == len(DATA) and _parts(registry) == 0
    with pytest.raises(openai.BadRequestError) as again:
        sdk.uploads.complete(upload.id, part_ids=[p.id for p in parts])
    assert again.value.body["code"] == "upload_not_pending"
    assert registry.verify().ok


def test_the_sdk_chunked_helper(env: dict[str, Any], tmp_path: Path) -> None:
    path = tmp_path / "train.jsonl"
    path.write_bytes(DATA)
    done = env["sdk"].uploads.upload_file_chunked(file=path, mime_type="application/jsonl",
                                                  purpose="fine-tune", part_size=900)
    assert done.status == "completed"
    assert env["sdk"].files.content(done.file.id).read() == DATA


def test_a_dropped_part_is_sent_again(env: dict[str, Any]) -> None:
    sdk, http = env["sdk"], env["http"]
    upload = sdk.uploads.create(filename="d.jsonl", purpose="fine-tune", bytes=len(DATA),
                                mime_type="application/jsonl")
    first = sdk.uploads.parts.create(upload.id, data=DATA[:1000])
    # The connection drops mid-part: the body ends before its closing boundary.
    body = (b"--b\r\nContent-Disposition: form-data; name=\"data\"; filename=\"p\"\r\n\r\n"
            + DATA[1000:1500])
    cut = http.post(f"/v1/uploads/{upload.id}/parts", content=body, headers={
        "Authorization": f"Bearer {env['key']}",
        "Content-Type": "multipart/form-data; boundary=b"})
    assert cut.status_code == 400 and cut.json()["error"]["code"] == "invalid_multipart"
    assert _parts(env["registry"]) == 1  # the part before it is kept, the cut one is not
    rest = [sdk.uploads.parts.create(upload.id, data=DATA[i:i + 1000])
            for i in range(1000, len(DATA), 1000)]
    done = sdk.uploads.complete(upload.id, part_ids=[first.id] + [p.id for p in rest])
    assert sdk.files.content(done.file.id).read() == DATA


def test_bad_uploads_get_openai_errors_and_keep_nothing(env: dict[str, Any]) -> None:
    sdk, registry = env["sdk"], env["registry"]
    blobs = _blobs(registry)

    def refused(call: Any, status: type[Exception], param: str | None = None) -> None:
        with pytest.raises(status) as exc:
            call()
        if param is not None:
            assert exc.value.body["param"] == param, exc.value.body

    refused(lambda: sdk.uploads.create(filename="x", purpose="vision", bytes=5,
                                       mime_type="text/plain"), openai.BadRequestError,
            "purpose")
    refused(lambda: sdk.uploads.create(filename="x", purpose="fine-tune", bytes=0,
                                       mime_type="text/plain"), openai.BadRequestError, "bytes")
    refused(lambda: sdk.uploads.create(filename="x", purpose="fine-tune", bytes=9 * 1024**3,
                                       mime_type="text/plain"), openai.BadRequestError, "bytes")
    refused(lambda: sdk.uploads.parts.create("upload_nope", data=b"x"), openai.NotFoundError)

    upload = sdk.uploads.create(filename="d.jsonl", purpose="fine-tune", bytes=len(DATA),
                                mime_type="application/jsonl")
    refused(lambda: env["other"].uploads.parts.create(upload.id, data=b"x"),
            openai.NotFoundError)
    refused(lambda: env["other"].uploads.cancel(upload.id), openai.NotFoundError)
    half = sdk.uploads.parts.create(upload.id, data=DATA[:1000])
    refused(lambda: sdk.uploads.complete(upload.id, part_ids=[half.id]),
            openai.BadRequestError, "part_ids")  # fewer bytes than declared
    refused(lambda: sdk.uploads.complete(upload.id, part_ids=[half.id, half.id]),
            openai.BadRequestError, "part_ids")
    refused(lambda: sdk.uploads.complete(upload.id, part_ids=["part_nope"]),
            openai.BadRequestError, "part_ids")
    more = sdk.uploads.parts.create(upload.id, data=DATA[1000:])
    refused(lambda: sdk.uploads.parts.create(upload.id, data=b"x"), openai.BadRequestError,
            "data")  # past the declared size
    refused(lambda: sdk.uploads.complete(upload.id, part_ids=[half.id, more.id], md5="0" * 32),
            openai.BadRequestError, "md5")

    cancelled = sdk.uploads.cancel(upload.id)
    assert cancelled.status == "cancelled" and _parts(registry) == 0
    refused(lambda: sdk.uploads.parts.create(upload.id, data=b"x"), openai.BadRequestError,
            "upload_id")

    # A file that is not valid training data is refused at completion, as /v1/files would.
    bad = sdk.uploads.create(filename="b.jsonl", purpose="fine-tune", bytes=8,
                             mime_type="application/jsonl")
    part = sdk.uploads.parts.create(bad.id, data=b"not json")
    refused(lambda: sdk.uploads.complete(bad.id, part_ids=[part.id]),
            openai.BadRequestError, "file")
    assert sdk.uploads.cancel(bad.id).status == "cancelled"
    assert sdk.files.list().data == []
    assert _blobs(registry) == blobs and registry.verify().ok


def test_expired_uploads_drop_their_parts(env: dict[str, Any]) -> None:
    sdk, registry = env["sdk"], env["registry"]
    upload = sdk.uploads.create(filename="d.jsonl", purpose="fine-tune", bytes=len(DATA),
                                mime_type="application/jsonl",
                                expires_after={"anchor": "created_at", "seconds": 3600})
    assert upload.expires_at - upload.created_at == 3600
    part = sdk.uploads.parts.create(upload.id, data=DATA[:1000])
    with registry.session() as s:  # an hour later
        s.get(t.Upload, upload.id).expires_at = now() - timedelta(seconds=1)
    with pytest.raises(openai.BadRequestError) as late:
        sdk.uploads.complete(upload.id, part_ids=[part.id])
    assert "expired" in late.value.body["message"] and _parts(registry) == 0
    assert registry.verify().ok
