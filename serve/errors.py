"""Serve's errors, in vLLM's body shape, and their gRPC codes (one place per surface).

Bodies are ``quanta.http_errors``' vLLM shape (``HTTPError.vllm_body``: the error class
name as ``type``, the status as ``code``), what vLLM's own ``create_error_response``
produces, so that a model another tenant owns is indistinguishable from a model that
does not exist.
"""

from __future__ import annotations

import grpc

from quanta.http_errors import (
    HTTPBadRequest,
    HTTPError,
    HTTPForbidden,
    HTTPInternalServerError,
    HTTPNotFound,
    HTTPTooManyRequests,
    HTTPUnauthorized,
)

__all__ = ["AdapterCorruptError", "AdapterTooLargeError", "AdapterUnavailableError",
           "HTTPBadRequest", "HTTPError", "HTTPForbidden", "HTTPTooManyRequests",
           "HTTPUnauthorized", "ModelNotFoundError", "WrongBaseModelError", "grpc_code"]


class ModelNotFoundError(HTTPNotFound):
    """Unknown model, or one the caller's tenant does not own (deliberately the same)."""

    def __init__(self, model: str, served: str) -> None:
        # Same text as vLLM's BaseServing._check_model for an unknown model.
        super().__init__(f"The model `{model}` does not exist. Valid aliases: {served}.",
                         param="model")


class WrongBaseModelError(HTTPBadRequest):
    """The adapter exists but was trained on a base model this server does not serve."""

    def __init__(self, message: str) -> None:
        super().__init__(message, param="model")


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
