"""OpenAI's Batch API: create, list, retrieve and cancel batches of requests that a batch
runner (``tune.batches``) answers through Quanta's serve.

A batch's input file is checked twice: when it is uploaded (purpose ``batch``, the check
registered below) and again when a batch is created from it, against that batch: every
line's ``url`` must be the batch's endpoint and every ``model`` one the tenant may use (a
base model or a fine-tuned model of its own or shared with it). Any problem is a 400
naming its line and nothing is created, where OpenAI would accept the batch and fail it
later: a Quanta batch that exists can run. Another tenant's batch answers the same 404 as
an id that never existed. ``output_expires_after`` is refused: Quanta's files never
expire (they are kept until deleted), so a batch cannot promise output files that do.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from quanta.registry import BatchRecord, Registry
from quanta.registry import NotFoundError as RegistryNotFound
from quanta.types import BatchStatus, FilePurpose
from tune.api import objects
from tune.api.errors import HTTPBadRequest, HTTPConflict, HTTPNotFound, parse_body
from tune.api.files import UploadReport, upload_check
from tune.api.models import usable_model
from tune.batches.lines import ENDPOINTS, RequestLine, read_requests

COMPLETION_WINDOWS = {"24h": timedelta(hours=24)}  # OpenAI's only window
SHOWN_ERRORS = 5  # problems a 400 lists; the count of the rest follows
# A batch object's optional fields: left out while unset (OpenAI's schema types them as
# strings and integers, never null).
_OPTIONAL_FIELDS = ("output_file_id", "error_file_id", "in_progress_at", "expires_at",
                    "finalizing_at", "completed_at", "failed_at", "expired_at",
                    "cancelling_at", "cancelled_at")


@upload_check(FilePurpose.BATCH, "batch")
def _batch_requests(path: Path, filename: str) -> UploadReport:
    report = read_requests(path)
    return UploadReport("jsonl", len(report.requests), report.errors)


class CreateBatch(BaseModel):
    """``POST /v1/batches`` (OpenAI's ``CreateBatchRequest``)."""

    model_config = ConfigDict(extra="forbid")

    input_file_id: str = Field(min_length=1, max_length=64)
    endpoint: str
    completion_window: str
    metadata: dict[str, str] | None = None
    output_expires_after: Any = None  # refused (``create_batch``): files never expire here

    @field_validator("metadata")
    @classmethod
    def _metadata(cls, v: dict[str, str] | None) -> dict[str, str] | None:
        if v is not None and (len(v) > 16 or any(len(k) > 64 or len(s) > 512
                                                 for k, s in v.items())):
            raise ValueError("at most 16 pairs, keys <= 64 and values <= 512 characters")
        return v


def batch_object(row: BatchRecord) -> dict[str, Any]:
    """OpenAI's ``batch`` object."""
    body: dict[str, Any] = {
        "id": row.id, "object": "batch", "endpoint": row.endpoint,
        "input_file_id": row.input_file_id, "completion_window": row.completion_window,
        "status": row.status, "created_at": objects.unix(row.created_at),
        "request_counts": {key: int((row.request_counts or {}).get(key, 0))
                           for key in ("total", "completed", "failed")},
        "metadata": row.meta,
    }
    for name in _OPTIONAL_FIELDS:
        value = getattr(row, name)
        if value is not None:
            body[name] = objects.unix(value) if name.endswith("_at") else value
    if row.errors:
        body["errors"] = {"object": "list", "data": row.errors}
    if row.usage:
        body["usage"] = row.usage
    return body


class BatchesService:
    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self.rows = registry.batches

    def create_batch(self, tenant_id: str, body: Any) -> dict[str, Any]:
        request = parse_body(CreateBatch, body)
        if request.endpoint not in ENDPOINTS:
            raise HTTPBadRequest(f"endpoint: Quanta's batches answer {', '.join(ENDPOINTS)}, "
                                 f"not {request.endpoint!r}", param="endpoint",
                                 code="invalid_value")
        window = COMPLETION_WINDOWS.get(request.completion_window)
        if window is None:
            raise HTTPBadRequest(f"completion_window: only '24h' is supported, not "
                                 f"{request.completion_window!r}", param="completion_window",
                                 code="invalid_value")
        if request.output_expires_after is not None:
            raise HTTPBadRequest("output_expires_after: Quanta keeps files until they are "
                                 "deleted (DELETE /v1/files/{file_id}); a batch's output "
                                 "and error files cannot expire. Send the batch without "
                                 "output_expires_after", param="output_expires_after",
                                 code="unsupported_parameter")
        requests = self._requests(tenant_id, request.input_file_id, request.endpoint)
        row = self.rows.create(tenant_id=tenant_id, endpoint=request.endpoint,
                               input_file_id=request.input_file_id,
                               completion_window=request.completion_window, window=window,
                               total=len(requests), metadata=request.metadata)
        return batch_object(row)

    def _requests(self, tenant_id: str, file_id: str, endpoint: str) -> list[RequestLine]:
        """The input file's requests, each checked against the batch (400 naming the
        lines that fail)."""
        try:
            file = self.registry.get_file(tenant_id, file_id)
        except RegistryNotFound:
            raise HTTPNotFound(f"No such File object: {file_id}", param="input_file_id",
                               code="file_not_found") from None
        if file.purpose != FilePurpose.BATCH:
            raise HTTPBadRequest(f"File {file_id} has purpose {file.purpose!r}, not 'batch'",
                                 param="input_file_id", code="invalid_file_purpose")
        report = read_requests(self.registry.blob_path(file.sha256), endpoint)
        errors = report.errors or self._model_errors(tenant_id, report.requests)
        if errors:
            shown = "; ".join(errors[:SHOWN_ERRORS])
            more = (f" (and {len(errors) - SHOWN_ERRORS} more)"
                    if len(errors) > SHOWN_ERRORS else "")
            raise HTTPBadRequest(f"input_file_id: the file {file_id} cannot be run as this "
                                 f"batch: {shown}{more}", param="input_file_id",
                                 code="invalid_input_file")
        return report.requests

    def _model_errors(self, tenant_id: str, requests: list[RequestLine]) -> list[str]:
        """One problem per model the tenant may not use, naming its first line."""
        usable: dict[str, bool] = {}
        errors = []
        for request in requests:
            if request.model in usable:
                continue
            try:
                usable_model(self.registry, tenant_id, request.model)
                usable[request.model] = True
            except RegistryNotFound:
                usable[request.model] = False
                errors.append(f"line {request.line}: body.model {request.model!r} does not "
                              "exist or you do not have access to it")
        return errors

    def _batch(self, tenant_id: str, batch_id: str) -> BatchRecord:
        try:
            return self.rows.owned(tenant_id, batch_id)
        except RegistryNotFound:
            raise HTTPNotFound(f"No such batch: {batch_id}", param="batch_id",
                               code="not_found") from None

    def get_batch(self, tenant_id: str, batch_id: str) -> dict[str, Any]:
        return batch_object(self._batch(tenant_id, batch_id))

    def list_batches(self, tenant_id: str, after: str | None = None,
                     limit: int | None = None) -> dict[str, Any]:
        """The tenant's batches, newest first, ``limit`` (1 to 100, default 20) after the
        batch ``after``."""
        limit = objects.page_limit(limit, 20)
        try:
            rows, more = self.rows.for_tenant(tenant_id, after=after, limit=limit)
        except RegistryNotFound:
            raise HTTPNotFound(f"No such batch: {after}", param="after") from None
        return objects.page([batch_object(r) for r in rows], more)

    def cancel_batch(self, tenant_id: str, batch_id: str) -> dict[str, Any]:
        """A batch no runner started is cancelled at once; a running one is
        ``cancelling`` until its runner stops and writes the lines already answered."""
        batch = self._batch(tenant_id, batch_id)
        if batch.status in (BatchStatus.CANCELLING, BatchStatus.CANCELLED):
            return batch_object(batch)
        if BatchStatus(batch.status).is_terminal or batch.status == BatchStatus.FINALIZING:
            raise HTTPConflict(f"Batch {batch_id} is {batch.status}; it cannot be cancelled",
                               param="batch_id", code="batch_not_cancellable")
        cancelled = self.rows.request_cancel(tenant_id, batch_id)
        if cancelled.status not in (BatchStatus.CANCELLING, BatchStatus.CANCELLED):
            raise HTTPConflict(f"Batch {batch_id} is {cancelled.status}; it cannot be "
                               "cancelled", param="batch_id", code="batch_not_cancellable")
        return batch_object(cancelled)
