"""The tune API's errors: OpenAI-shaped bodies (``quanta.http_errors``), mapped in one place.

Every error a client sees is ``{"error": {"message", "type": "invalid_request_error",
"param", "code"}}``, as OpenAI's fine-tuning API answers; ``install_handlers`` maps the
errors raised anywhere below the routes (ours, the registry's, FastAPI's) to it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

from pydantic import BaseModel

from quanta.http_errors import (
    HTTPBadRequest,
    HTTPConflict,
    HTTPError,
    HTTPInsufficientStorage,
    HTTPNotFound,
    HTTPPayloadTooLarge,
    HTTPTooManyRequests,
    HTTPUnauthorized,
)

M = TypeVar("M", bound=BaseModel)

__all__ = ["HTTPBadRequest", "HTTPConflict", "HTTPError", "HTTPNotFound",
           "HTTPPayloadTooLarge", "HTTPTooManyRequests", "HTTPUnauthorized", "install_handlers",
           "invalid_request", "parse_body"]


def _path_in(body: Any, loc: Sequence[Any]) -> list[str]:
    """The parts of a pydantic error location that are keys or indexes of ``body``: the
    rest are pydantic's own (a union member's type name, a tagged union's tag). A missing
    field, the last part, names itself."""
    path: list[str] = []
    node = body
    for index, part in enumerate(loc):
        if isinstance(node, dict):
            if part in node:
                path.append(str(part))
                node = node[part]
            elif index == len(loc) - 1 and "[" not in str(part):
                path.append(str(part))
        elif isinstance(node, list):
            if isinstance(part, int) and 0 <= part < len(node):
                path.append(str(part))
                node = node[part]
        else:
            break  # a value: what follows names the types it could have been
    return path


def invalid_request(errors: Sequence[Any], status: int = 400,
                    body: Any = None) -> HTTPBadRequest:
    """One error from pydantic/FastAPI validation errors, or a ``tune.plan.PlanError``'s
    (same shape): the first one names the param (as a path into ``body`` when given)."""
    first = errors[0] if errors else {}
    if isinstance(body, dict):  # the error that reaches deepest into the body says most
        first = max(errors, key=lambda e: len(_path_in(body, e.get("loc", ()))),
                    default=first)
        loc = _path_in(body, first.get("loc", ()))
    else:
        loc = [str(p) for p in first.get("loc", ()) if p not in ("body", "query", "path")]
        loc = [p for p in loc if p not in {"int", "float", "str", "literal['auto']"}
               and not p.startswith(("function-", "constrained-"))]
        # A tagged union's tag comes before its fields; in OpenAI's shapes the block is
        # named after the tag ({"type": "wandb", "wandb": {...}}): the tag reads twice.
        loc = [p for i, p in enumerate(loc) if i + 1 == len(loc) or loc[i + 1] != p]
    param = ".".join(loc) or None
    msg = str(first.get("msg", "invalid request")).removeprefix("Value error, ")
    message = f"{param}: {msg}" if param else msg
    if len(errors) > 1:
        message += f" (and {len(errors) - 1} more problem(s))"
    err = HTTPBadRequest(message, param=param, code="invalid_value" if param else None)
    err.status = status
    return err


def parse_body(model: type[M], body: Any) -> M:
    """A request body as ``model``, validated as strictly as OpenAI's API reads JSON: a
    boolean is not an integer, a string not a number (``tune.plan.strict``)."""
    from pydantic import ValidationError

    from tune.plan import strict

    try:
        return strict(model, body)
    except ValidationError as exc:
        raise invalid_request(exc.errors(), body=body) from None


def install_handlers(app: Any) -> None:
    """Map every error the API can raise to an OpenAI-style body, in this one place."""
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse
    from sqlalchemy.exc import OperationalError
    from starlette.exceptions import HTTPException

    from quanta.registry import errors as registry_errors
    from quanta.registry import is_disk_full
    from quanta.tenancy import AuthError

    def respond(err: HTTPError) -> JSONResponse:
        return JSONResponse(err.openai_body(), status_code=err.status,
                            headers={k.decode(): v.decode() for k, v in err.headers()})

    @app.exception_handler(HTTPError)
    async def _ours(_request: Any, exc: HTTPError) -> JSONResponse:
        return respond(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Any, exc: RequestValidationError) -> JSONResponse:
        return respond(invalid_request(exc.errors()))  # OpenAI answers 400, never 422

    @app.exception_handler(AuthError)
    async def _auth(_request: Any, exc: AuthError) -> JSONResponse:
        return respond(HTTPUnauthorized(str(exc)))

    @app.exception_handler(registry_errors.NotFoundError)
    async def _not_found(_request: Any, exc: Exception) -> JSONResponse:
        return respond(HTTPNotFound(str(exc)))

    @app.exception_handler(registry_errors.ConflictError)
    async def _conflict(_request: Any, exc: Exception) -> JSONResponse:
        return respond(HTTPConflict(str(exc)))

    @app.exception_handler(OSError)
    @app.exception_handler(OperationalError)  # SQLite's own "database or disk is full"
    async def _disk_full(_request: Any, exc: Exception) -> JSONResponse:
        if not is_disk_full(exc):
            raise exc  # a real server error: Starlette answers 500
        return respond(HTTPInsufficientStorage(
            "The server's disk is full: nothing was stored. Retry later."))

    @app.exception_handler(HTTPException)
    async def _starlette(_request: Any, exc: HTTPException) -> JSONResponse:
        err = HTTPError(str(exc.detail), code="not_found" if exc.status_code == 404
                        else "invalid_request")
        err.status = exc.status_code
        return respond(err)
