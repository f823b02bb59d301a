"""Typed serve errors, and their OpenAI-style bodies and gRPC codes (one place per surface).

Bodies have the shape vLLM's own ``create_error_response`` produces
(``{"error": {"message", "type", "param", "code"}}``) so that a model another tenant owns
is indistinguishable from a model that does not exist.
"""

from __future__ import annotations

from typing import Any

import grpc


class ServeError(Exception):
    """Base class: an HTTP status, an OpenAI error type and the offending parameter."""

    status: int = 500
    type: str = "InternalServerError"
    param: str | None = None

    def body(self) -> dict[str, Any]:
        return error_body(str(self), self.type, self.status, self.param)

    def headers(self) -> list[tuple[bytes, bytes]]:
        """Extra HTTP response headers (``Retry-After`` for 429)."""
        return []


class AuthenticationError(ServeError):
    status, type = 401, "AuthenticationError"


class PermissionDeniedError(ServeError):
    status, type = 403, "PermissionDeniedError"


class ModelNotFoundError(ServeError):
    """Unknown model, or one the caller's tenant does not own (deliberately the same)."""

    status, type, param = 404, "NotFoundError", "model"

    def __init__(self, model: str, served: str) -> None:
        # Same text as vLLM's BaseServing._check_model for an unknown model.
        super().__init__(f"The model `{model}` does not exist. Valid aliases: {served}.")


class WrongBaseModelError(ServeError):
    """The adapter exists but was trained on a base model this server does not serve."""

    status, type, param = 400, "BadRequestError", "model"


class AdapterUnavailableError(ServeError):
    """The tenant owns the adapter but this engine cannot serve it (no suitable export)."""

    status, type, param = 404, "NotFoundError", "model"


class AdapterCorruptError(ServeError):
    """The adapter's stored files fail their sha256 check (or are missing): never served."""

    status, type, param = 500, "InternalServerError", "model"


class BadRequestError(ServeError):
    status, type = 400, "BadRequestError"

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param


def error_body(message: str, type_: str, status: int, param: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": param, "code": status}}


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
