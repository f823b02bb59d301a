"""The HTTP errors Quanta's APIs answer with, and the two shapes their bodies take.

Both APIs answer errors in OpenAI's envelope, ``{"error": {"message", "type", "param",
"code"}}``, filled in two ways on purpose:

* **tune** (``/v1/files``, ``/v1/fine_tuning/...``) answers as OpenAI's API does
  (:meth:`HTTPError.openai_body`): ``type`` is ``invalid_request_error`` and ``code`` a
  string naming the problem (``file_not_found``, ``invalid_file_format``), what code
  written against OpenAI's fine-tuning API matches on.
* **serve** sits in front of vLLM's OpenAI server and answers as vLLM does
  (:meth:`HTTPError.vllm_body`, vLLM's ``create_error_response``): ``type`` is the error
  class name (``NotFoundError``) and ``code`` the HTTP status as a number, so that a
  model another tenant owns is indistinguishable from one vLLM has never heard of.

Each surface maps these to its transport in one place: ``tune.errors`` (FastAPI
handlers) and ``serve.errors`` (the middleware's responses, gRPC status codes).
"""

from __future__ import annotations

import math
from typing import Any

OPENAI_ERROR_TYPE = "invalid_request_error"


class HTTPError(Exception):
    """An HTTP status, a message, the offending parameter and a machine-readable code.

    Subclasses set their status and codes as class arguments:
    ``class HTTPNotFound(HTTPError, status=404, code="not_found", vllm_type=...)``.
    """

    status = 500
    code = "internal_error"  # OpenAI-style string code (tune's bodies)
    vllm_type = "InternalServerError"  # vLLM's error type (serve's bodies)

    def __init_subclass__(cls, *, status: int | None = None, code: str | None = None,
                          vllm_type: str | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.status = status or cls.status
        cls.code = code or cls.code
        cls.vllm_type = vllm_type or cls.vllm_type

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.param = param
        if code is not None:
            self.code = code

    def openai_body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": OPENAI_ERROR_TYPE,
                          "param": self.param, "code": self.code}}

    def vllm_body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.vllm_type,
                          "param": self.param, "code": self.status}}

    def headers(self) -> list[tuple[bytes, bytes]]:
        """Extra response headers (``Retry-After`` for 429)."""
        return []


class HTTPBadRequest(HTTPError, status=400, code="invalid_request",
                     vllm_type="BadRequestError"):
    """A malformed request or an out-of-range parameter."""


class HTTPUnauthorized(HTTPError, status=401, code="invalid_api_key",
                       vllm_type="AuthenticationError"):
    """No API key, or one that is unknown or revoked."""


class HTTPForbidden(HTTPError, status=403, code="permission_denied",
                    vllm_type="PermissionDeniedError"):
    """A route no tenant may use (the engine's operator endpoints)."""


class HTTPNotFound(HTTPError, status=404, code="not_found", vllm_type="NotFoundError"):
    """Unknown id, or one another tenant owns (indistinguishable on purpose)."""


class HTTPConflict(HTTPError, status=409, code="conflict", vllm_type="ConflictError"):
    """The change would break a rule (a file still used by a job, a finished job)."""


class HTTPPayloadTooLarge(HTTPError, status=413, code="file_too_large",
                          vllm_type="PayloadTooLargeError"):
    """An upload over the size limit (refused while it streams in)."""


class HTTPTooManyRequests(HTTPError, status=429, code="rate_limit_exceeded",
                          vllm_type="rate_limit_exceeded"):
    """Over a rate or concurrency limit; clients retry after ``retry_after`` seconds."""

    def __init__(self, message: str, retry_after: float, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = max(1, math.ceil(retry_after))

    def headers(self) -> list[tuple[bytes, bytes]]:
        return [(b"retry-after", str(self.retry_after).encode())]


class HTTPInsufficientStorage(HTTPError, status=507, code="insufficient_storage",
                              vllm_type="InsufficientStorageError"):
    """The disk (or the store) is full: nothing was registered; retry once there is room."""


class HTTPInternalServerError(HTTPError, status=500, code="internal_error",
                              vllm_type="InternalServerError"):
    """Something on our side failed (a corrupt adapter is refused with this)."""
