"""The tune service's typed errors and their one mapping to OpenAI-style HTTP error bodies.

Every error a client sees has the shape OpenAI's API uses:
``{"error": {"message", "type": "invalid_request_error", "param", "code"}}``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class TuneError(Exception):
    """Base class: an HTTP status, an OpenAI error ``code`` and the offending ``param``."""

    status = 400
    code = "invalid_request"
    type = "invalid_request_error"

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.param = param
        if code is not None:
            self.code = code

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param,
                          "code": self.code}}


class InvalidRequestError(TuneError):
    """A bad parameter or file (400)."""

    @classmethod
    def from_validation(cls, errors: Sequence[Any], status: int = 400) -> InvalidRequestError:
        """Build one error from pydantic/FastAPI validation errors (first one names the param)."""
        first = errors[0] if errors else {}
        loc = [str(p) for p in first.get("loc", ()) if p not in ("body", "query", "path")]
        loc = [p for p in loc if p not in {"int", "float", "str", "literal['auto']"}
               and not p.startswith(("function-", "constrained-"))]
        param = ".".join(loc) or None
        msg = str(first.get("msg", "invalid request")).removeprefix("Value error, ")
        message = f"{param}: {msg}" if param else msg
        if len(errors) > 1:
            message += f" (and {len(errors) - 1} more problem(s))"
        err = cls(message, param=param, code="invalid_value" if param else "invalid_request")
        err.status = status
        return err


class AuthenticationError(TuneError):
    status = 401
    code = "invalid_api_key"


class NotFoundError(TuneError):
    """Unknown id, or an id another tenant owns (indistinguishable on purpose)."""

    status = 404
    code = "not_found"


class ConflictError(TuneError):
    status = 409
    code = "conflict"


class PayloadTooLargeError(TuneError):
    status = 413
    code = "file_too_large"


class UnprocessableError(TuneError):
    status = 422
    code = "unprocessable"


def install_handlers(app: Any) -> None:
    """Map every error the API can raise to an OpenAI-style body, in this one place."""
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse
    from starlette.exceptions import HTTPException

    from quanta.registry import errors as registry_errors
    from quanta.tenancy import AuthError

    def respond(err: TuneError) -> JSONResponse:
        return JSONResponse(err.body(), status_code=err.status)

    @app.exception_handler(TuneError)
    async def _tune(_request: Any, exc: TuneError) -> JSONResponse:
        return respond(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Any, exc: RequestValidationError) -> JSONResponse:
        return respond(InvalidRequestError.from_validation(exc.errors(), status=422))

    @app.exception_handler(AuthError)
    async def _auth(_request: Any, exc: AuthError) -> JSONResponse:
        return respond(AuthenticationError(str(exc)))

    @app.exception_handler(registry_errors.NotFoundError)
    async def _not_found(_request: Any, exc: Exception) -> JSONResponse:
        return respond(NotFoundError(str(exc)))

    @app.exception_handler(registry_errors.ConflictError)
    async def _conflict(_request: Any, exc: Exception) -> JSONResponse:
        return respond(ConflictError(str(exc)))

    @app.exception_handler(HTTPException)
    async def _http(_request: Any, exc: HTTPException) -> JSONResponse:
        err = TuneError(str(exc.detail), code="not_found" if exc.status_code == 404 else None)
        err.status = exc.status_code
        return respond(err)
