"""OpenAI's Uploads API: a training file (or a batch's requests) bigger than one request,
sent in parts.

``POST /v1/uploads`` declares the file (name, purpose, size, MIME type); each
``/parts`` request streams one part (the ``data`` field, at most ``MAX_PART_BYTES``)
into the blob store at once, so a dropped connection costs that part only: send it
again. ``/complete`` joins the parts in the order given, checks the size (and the MD5
when sent), validates the file as ``/v1/files`` does and registers it; ``/cancel``, or
the upload's expiry (an hour by default, OpenAI's), drops the parts. Expired uploads
are swept whenever uploads are used.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from quanta.registry import (
    ConflictError,
    FileRecord,
    NotFoundError,
    Registry,
    UploadPartRecord,
    UploadRecord,
    utcnow,
)
from quanta.types import ArtifactKind, FilePurpose, UploadStatus
from tune.api import objects
from tune.api.errors import HTTPBadRequest, HTTPNotFound, parse_body
from tune.api.files import FilesService, safe_filename
from tune.api.multipart import Form

MAX_PART_BYTES = 64 * 1024 * 1024  # OpenAI's limit per part
DEFAULT_EXPIRY = timedelta(hours=1)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ExpiresAfter(_Strict):
    anchor: Literal["created_at"]
    seconds: int = Field(ge=3600, le=2_592_000)


class CreateUpload(_Strict):
    filename: str = Field(min_length=1, max_length=255)
    purpose: Literal["fine-tune", "batch"]  # OpenAI's upload purposes Quanta reads
    bytes: int = Field(ge=1)
    mime_type: str = Field(min_length=1, max_length=255)
    expires_after: ExpiresAfter | None = None


class CompleteUpload(_Strict):
    part_ids: list[str] = Field(min_length=1)
    md5: str | None = None


def upload_object(row: UploadRecord, file: FileRecord | None = None) -> dict[str, Any]:
    body = {"id": row.id, "object": "upload", "bytes": row.bytes,
            "created_at": objects.unix(row.created_at), "filename": row.filename,
            "purpose": row.purpose, "status": row.status,
            "expires_at": objects.unix(row.expires_at)}
    if file is not None:  # OpenAI's schema types `file` as a File object: left out until then
        body["file"] = objects.file_object(file)
    return body


def part_object(row: UploadPartRecord) -> dict[str, Any]:
    return {"id": row.id, "object": "upload.part", "created_at": objects.unix(row.created_at),
            "upload_id": row.upload_id}


def _parse(model: type[_Strict], body: Any) -> Any:
    return parse_body(model, body)


class UploadService:
    def __init__(self, registry: Registry, files: FilesService) -> None:
        self.registry, self.files = registry, files
        self.rows = registry.uploads

    def _pending(self, tenant_id: str, upload_id: str) -> UploadRecord:
        self.rows.expire(utcnow())
        try:
            row = self.rows.owned(tenant_id, upload_id)
        except NotFoundError:
            raise HTTPNotFound(f"No such Upload object: {upload_id}", param="upload_id") from None
        if row.status != UploadStatus.PENDING:
            raise HTTPBadRequest(f"Upload {upload_id} is {row.status}, not pending",
                                 param="upload_id", code="upload_not_pending")
        return row

    def create(self, tenant_id: str, body: Any) -> dict[str, Any]:
        request = _parse(CreateUpload, body)
        most = self.registry.settings.max_upload_total_bytes
        if request.bytes > most:
            raise HTTPBadRequest(f"bytes: at most {most} bytes can be uploaded in parts",
                                 param="bytes", code="invalid_value")
        self.rows.expire(utcnow())
        created = utcnow()
        expiry = (timedelta(seconds=request.expires_after.seconds) if request.expires_after
                  else DEFAULT_EXPIRY)
        row = self.rows.create(tenant_id, safe_filename(request.filename),
                               FilePurpose(request.purpose), request.bytes,
                               request.mime_type, created, created + expiry)
        return upload_object(row)

    def add_part(self, tenant_id: str, upload_id: str, form: Form) -> dict[str, Any]:
        row = self._pending(tenant_id, upload_id)
        if form.path is None:
            raise HTTPBadRequest("Missing the part's 'data' field", param="data")
        received = sum(p.bytes for p in self.rows.parts(upload_id))
        if received + form.size > row.bytes:
            raise HTTPBadRequest(f"This part would make the upload {received + form.size} "
                                 f"bytes; it was created for {row.bytes}", param="data",
                                 code="upload_too_large")
        try:
            part = self.rows.add_part(upload_id, form.path, utcnow())
        except ConflictError:
            raise HTTPBadRequest(f"Upload {upload_id} is no longer pending",
                                 param="upload_id", code="upload_not_pending") from None
        return part_object(part)

    def complete(self, tenant_id: str, upload_id: str, body: Any) -> dict[str, Any]:
        request = _parse(CompleteUpload, body)
        row = self._pending(tenant_id, upload_id)
        parts = {p.id: p for p in self.rows.parts(upload_id)}
        unknown = [p for p in request.part_ids if p not in parts]
        if unknown or len(set(request.part_ids)) != len(request.part_ids):
            raise HTTPBadRequest(f"part_ids must name this upload's parts, each once "
                                 f"(unknown: {', '.join(unknown) or 'none'})",
                                 param="part_ids", code="invalid_value")
        ordered = [parts[p] for p in request.part_ids]
        size = sum(p.bytes for p in ordered)
        if size != row.bytes:
            raise HTTPBadRequest(f"The parts hold {size} bytes; the upload was created for "
                                 f"{row.bytes}", param="part_ids", code="upload_size_mismatch")
        with self.rows.assembled(ordered) as path:
            if request.md5 is not None and _md5(path) != request.md5.lower():
                raise HTTPBadRequest("md5 does not match the parts' bytes", param="md5",
                                     code="checksum_mismatch")
            file = self.files.create_file(tenant_id, row.filename, row.purpose, path,
                                          limit=self.registry.settings.max_upload_total_bytes)
        if not self.rows.close(upload_id, UploadStatus.COMPLETED, file["id"]):
            self.registry.delete(ArtifactKind.FILE, file["id"], tenant_id)  # lost a race
            raise HTTPBadRequest(f"Upload {upload_id} was closed meanwhile",
                                 param="upload_id", code="upload_not_pending")
        return upload_object(self.rows.owned(tenant_id, upload_id),
                             self.registry.get_file(tenant_id, file["id"]))

    def cancel(self, tenant_id: str, upload_id: str) -> dict[str, Any]:
        self._pending(tenant_id, upload_id)
        if not self.rows.close(upload_id, UploadStatus.CANCELLED):
            raise HTTPBadRequest(f"Upload {upload_id} was closed meanwhile",
                                 param="upload_id", code="upload_not_pending")
        return upload_object(self.rows.owned(tenant_id, upload_id))


def _md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
