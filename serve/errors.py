"""Serve's errors in OpenAI's body shape, and their gRPC codes (one place per surface).

Every error a client gets from ``quanta serve``'s HTTP side is OpenAI's envelope as its
API answers it (``quanta.http_errors``' ``openai_body``: ``type`` ``invalid_request_error``
or ``server_error``, a string ``code``): Quanta's own refusals, and the engine's, which
``openai_errors`` rewrites on the way out (vLLM answers ``type: "NotFoundError"``,
``code: 404``; FastAPI ``{"detail": "Not Found"}``). A model another tenant owns stays
indistinguishable from one that does not exist: both are ``model_not_found``.
"""

from __future__ import annotations

import json
from typing import Any

import grpc

from quanta.http_errors import (
    OPENAI_ERROR_TYPE,
    HTTPBadRequest,
    HTTPError,
    HTTPForbidden,
    HTTPInternalServerError,
    HTTPNotFound,
    HTTPTooManyRequests,
    HTTPUnauthorized,
)

__all__ = ["OPENAI_CODES", "AdapterCorruptError", "AdapterTooLargeError", "AdapterUnavailableError",
           "HTTPBadRequest", "HTTPError", "HTTPForbidden", "HTTPInternalServerError",
           "HTTPNotFound", "HTTPTooManyRequests",
           "HTTPUnauthorized", "ModelNotFoundError", "ModelServedElsewhereError", "grpc_code",
           "openai_error", "openai_errors"]


class ModelNotFoundError(HTTPNotFound):
    """Unknown model, or one the caller's tenant does not own (deliberately the same)."""

    def __init__(self, model: str, served: str) -> None:
        # Same text as vLLM's BaseServing._check_model for an unknown model.
        super().__init__(f"The model `{model}` does not exist. Valid aliases: {served}.",
                         param="model", code="model_not_found")


class ModelServedElsewhereError(HTTPNotFound):
    """The caller may use the model, but it is another base (or an adapter of one) than the
    one this server serves: the message says which servers serve it, or that none does
    now. Same status and code as ``ModelNotFoundError``: clients handle both alike."""

    def __init__(self, message: str) -> None:
        super().__init__(message, param="model", code="model_not_found")


class AdapterTooLargeError(HTTPBadRequest):
    """The adapter's LoRA rank is above what this server loads (``--max-lora-rank``)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, param="model")


class AdapterUnavailableError(HTTPNotFound):
    """The tenant owns the adapter but this engine cannot serve it (no suitable export)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, param="model")


class AdapterCorruptError(HTTPInternalServerError):
    """The adapter's stored files fail their sha256 check (or are missing): never served."""

    def __init__(self, message: str) -> None:
        super().__init__(message, param="model")


GRPC_CODES: dict[int, grpc.StatusCode] = {
    400: grpc.StatusCode.INVALID_ARGUMENT,
    401: grpc.StatusCode.UNAUTHENTICATED,
    403: grpc.StatusCode.PERMISSION_DENIED,
    404: grpc.StatusCode.NOT_FOUND,
    408: grpc.StatusCode.DEADLINE_EXCEEDED,
    429: grpc.StatusCode.RESOURCE_EXHAUSTED,
    501: grpc.StatusCode.UNIMPLEMENTED,
    503: grpc.StatusCode.UNAVAILABLE,
}


def grpc_code(status: int) -> grpc.StatusCode:
    """The gRPC status for an HTTP status (500 and anything unknown: INTERNAL)."""
    return GRPC_CODES.get(status, grpc.StatusCode.INTERNAL)


# OpenAI's string codes for what an engine answers with a bare status.
OPENAI_CODES = {400: "invalid_request", 401: "invalid_api_key", 403: "permission_denied",
                404: "not_found", 405: "method_not_allowed", 413: "request_too_large",
                422: "invalid_request", 429: "rate_limit_exceeded"}


def openai_error(status: int, body: bytes) -> dict[str, Any]:
    """An error response body, whatever shape the engine gave it, as OpenAI's."""
    try:
        payload = json.loads(body) if body else {}
    except (ValueError, UnicodeDecodeError):
        payload = {"detail": body.decode("utf-8", "replace")}
    error = payload.get("error") if isinstance(payload, dict) else None
    if isinstance(error, str):
        error = {"message": error}
    if not isinstance(error, dict):
        detail = payload.get("detail") if isinstance(payload, dict) else payload
        error = {"message": detail if isinstance(detail, str | None) else json.dumps(detail)}
    param = error.get("param") if isinstance(error.get("param"), str) else None
    code = error.get("code")
    if not isinstance(code, str) or code.isdigit():
        code = ("model_not_found" if status == 404 and param == "model"
                else OPENAI_CODES.get(status, "internal_error"))
    return {"error": {
        "message": str(error.get("message") or f"HTTP {status}"),
        "type": OPENAI_ERROR_TYPE if status < 500 else "server_error",
        "param": param, "code": code}}


def openai_errors(send: Any) -> Any:
    """Wrap an ASGI ``send``: error responses (status >= 400, not streamed as events) go
    out with OpenAI's body; everything else passes untouched."""
    held: dict[str, Any] = {}

    async def wrapped(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            headers = {k.lower(): v for k, v in message.get("headers") or []}
            streamed = headers.get(b"content-type", b"").startswith(b"text/event-stream")
            encoded = headers.get(b"content-encoding", b"identity") != b"identity"
            if message["status"] >= 400 and not streamed and not encoded:
                held.update(start=message, body=b"")
                return
        elif message["type"] == "http.response.body" and "start" in held:
            held["body"] += message.get("body", b"")
            if message.get("more_body"):
                return
            start = held.pop("start")
            body = json.dumps(openai_error(start["status"], held.pop("body"))).encode()
            kept = [(k, v) for k, v in start.get("headers") or []
                    if k.lower() not in (b"content-length", b"content-type",
                                         b"transfer-encoding")]
            await send({**start, "headers": [(b"content-type", b"application/json"),
                                             (b"content-length", str(len(body)).encode()),
                                             *kept]})
            await send({"type": "http.response.body", "body": body})
            return
        await send(message)

    return wrapped
