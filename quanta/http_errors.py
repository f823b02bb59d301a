"""The HTTP errors Quanta's APIs answer with, in OpenAI's envelope.

Both APIs answer ``{"error": {"message", "type", "param", "code"}}`` as OpenAI's API does
(:meth:`HTTPError.openai_body`): ``type`` is ``invalid_request_error`` and ``code`` a
string naming the problem (``file_not_found``, ``model_not_found``, ``invalid_api_key``),
what code written against OpenAI's API matches on. serve also rewrites its engine's own
error bodies (vLLM's ``type: "NotFoundError"``, ``code: 404``) into this shape
(``serve.errors.openai_errors``), so a client sees one shape whichever layer refused it.

Each surface maps these to its transport in one place: ``tune.api.errors`` (FastAPI
handlers) and ``serve.errors`` (the middleware's responses, gRPC status codes).
"""

from __future__ import annotations

import math
from typing import Any

OPENAI_ERROR_TYPE = "invalid_request_error"


class HTTPError(Exception):
    """An HTTP status, a message, the offending parameter and a machine-readable code.

    Subclasses set their status and code as class arguments:
    ``class HTTPNotFound(HTTPError, status=404, code="not_found")``.
    """

    status = 500
    code = "internal_error"  # OpenAI-style string code

    def __init_subclass__(cls, *, status: int | None = None, code: str | None = None,
                          **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.status = status or cls.status
        cls.code = code or cls.code

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.param = param
        if code is not None:
            self.code = code

    def openai_body(self) -> dict[str, Any]:
        return {"error": {"message": self.message,
                          "type": OPENAI_ERROR_TYPE if self.status < 500 else "server_error",
                          "param": self.param, "code": self.code}}

    def headers(self) -> list[tuple[bytes, bytes]]:
        """Extra response headers (``Retry-After`` for 429)."""
        return []


class HTTPBadRequest(HTTPError, status=400, code="invalid_request"):
    """A malformed request or an out-of-range parameter."""


class HTTPUnauthorized(HTTPError, status=401, code="invalid_api_key"):
    """No API key, or one that is unknown or revoked."""


class HTTPForbidden(HTTPError, status=403, code="permission_denied"):
    """A route no tenant may use (the engine's operator endpoints)."""


class HTTPNotFound(HTTPError, status=404, code="not_found"):
    """Unknown id, or one another tenant owns (indistinguishable on purpose)."""


class HTTPConflict(HTTPError, status=409, code="conflict"):
    """The change would break a rule (a file still used by a job, a finished job)."""


class HTTPPayloadTooLarge(HTTPError, status=413, code="file_too_large"):
    """An upload over the size limit (refused while it streams in)."""


class HTTPTooManyRequests(HTTPError, status=429, code="rate_limit_exceeded"):
    """Over a rate or concurrency limit; clients retry after ``retry_after`` seconds."""

    def __init__(self, message: str, retry_after: float, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = max(1, math.ceil(retry_after))

    def headers(self) -> list[tuple[bytes, bytes]]:
        return [(b"retry-after", str(self.retry_after).encode())]


class HTTPInsufficientStorage(HTTPError, status=507, code="insufficient_storage"):
    """The disk (or the store) is full: nothing was registered; retry once there is room."""


class HTTPBadGateway(HTTPError, status=502, code="upstream_unavailable"):
    """A server this one forwards to did not answer (the console's proxy)."""


class HTTPInternalServerError(HTTPError, status=500, code="internal_error"):
    """Something on our side failed (a corrupt adapter is refused with this)."""
