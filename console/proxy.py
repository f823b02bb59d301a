"""Same-origin access to the tune and serve APIs for the browser.

The console's pages call ``/api/tune/v1/...`` and ``/api/serve/v1/...``; this forwards
them to the configured APIs with the caller's ``Authorization`` header and streams the
answer back (server-sent events included). The console holds no key and no path into
the registry: the APIs authenticate and authorize every request as they would the
openai SDK's. Only ``v1/`` paths go through, to the two configured servers only.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

import httpx
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from quanta.http_errors import HTTPBadGateway, HTTPError, HTTPNotFound

FORWARDED_REQUEST_HEADERS = ("authorization", "content-type", "accept")
FORWARDED_RESPONSE_HEADERS = ("content-type", "content-disposition", "retry-after")
# Exports and long generations answer slowly; connecting must not.
TIMEOUT = httpx.Timeout(connect=10.0, read=900.0, write=120.0, pool=10.0)


def error(err: HTTPError) -> JSONResponse:
    """``err`` as a response, in the body shape both APIs answer with."""
    return JSONResponse(err.openai_body(), status_code=err.status)


def forwarded_path(raw_path: bytes, name: str) -> str | None:
    """The still-encoded path after ``/api/<name>/``, if it is a ``v1/`` path whose every
    segment is a plain name (no empty, ``.``, ``..``, encoded ``/`` or double encoding)."""
    prefix = f"/api/{name}/".encode()
    if not raw_path.startswith(prefix):
        return None
    try:
        path = raw_path[len(prefix):].decode("ascii")
    except UnicodeDecodeError:
        return None
    segments = path.split("/")
    if segments[0] != "v1":
        return None
    for segment in segments:
        plain = unquote(segment)
        if plain in ("", ".", "..") or any(c in plain for c in "/\\%"):
            return None
    return path


class ApiProxy:
    """Forwards ``/api/<name>/<path>`` to ``upstreams[name]/<path>``."""

    def __init__(self, upstreams: dict[str, str]) -> None:
        self.upstreams = {name: url.rstrip("/") for name, url in upstreams.items() if url}
        self.client = httpx.AsyncClient(timeout=TIMEOUT)

    async def forward(self, request: Request) -> Response:
        name = request.path_params["api"]
        base = self.upstreams.get(name)
        if base is None:
            return error(HTTPNotFound(f"The console is not connected to a {name} API"))
        path = forwarded_path(request.scope.get("raw_path") or b"", name)
        if path is None:
            return error(HTTPNotFound(f"Unknown request URL: {request.url.path}",
                                      code="unknown_url"))
        query = request.url.query
        headers = {k: v for k in FORWARDED_REQUEST_HEADERS if (v := request.headers.get(k))}
        headers["accept-encoding"] = "identity"  # bodies are passed through as they come
        upstream = self.client.build_request(
            request.method, f"{base}/{path}" + (f"?{query}" if query else ""), headers=headers,
            content=request.stream() if request.method in ("POST", "PUT", "PATCH") else None)
        try:
            answer = await self.client.send(upstream, stream=True)
        except httpx.HTTPError as exc:
            return error(HTTPBadGateway(f"The {name} API did not answer: "
                                        f"{type(exc).__name__}"))
        kept: dict[str, Any] = {k: v for k in FORWARDED_RESPONSE_HEADERS
                                if (v := answer.headers.get(k))}
        return StreamingResponse(answer.aiter_raw(), status_code=answer.status_code,
                                 headers=kept, background=BackgroundTask(answer.aclose))

    async def close(self) -> None:
        await self.client.aclose()
