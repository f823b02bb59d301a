"""Same-origin access to the tune and serve APIs for the browser.

The console's pages call ``/api/tune/v1/...`` and ``/api/serve/v1/...``; this forwards
them to the configured APIs with the caller's ``Authorization`` header and streams the
answer back (server-sent events included). The console holds no key and no path into
the registry: the APIs authenticate and authorize every request as they would the
openai SDK's. Only ``v1/`` paths go through, to the two configured servers only.
"""

from __future__ import annotations

from typing import Any

import httpx
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

FORWARDED_REQUEST_HEADERS = ("authorization", "content-type", "accept")
FORWARDED_RESPONSE_HEADERS = ("content-type", "content-disposition", "retry-after")
# Exports and long generations answer slowly; connecting must not.
TIMEOUT = httpx.Timeout(connect=10.0, read=900.0, write=120.0, pool=10.0)


def error(status: int, message: str, code: str) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": "invalid_request_error",
                                   "param": None, "code": code}}, status_code=status)


class ApiProxy:
    """Forwards ``/api/<name>/<path>`` to ``upstreams[name]/<path>``."""

    def __init__(self, upstreams: dict[str, str]) -> None:
        self.upstreams = {name: url.rstrip("/") for name, url in upstreams.items() if url}
        self.client = httpx.AsyncClient(timeout=TIMEOUT)

    async def forward(self, request: Request) -> Response:
        name, path = request.path_params["api"], request.path_params["path"]
        base = self.upstreams.get(name)
        if base is None:
            return error(404, f"The console is not connected to a {name} API", "not_found")
        if not path.startswith("v1/") or any(p in ("", ".", "..") for p in path.split("/")):
            return error(404, f"Unknown request URL: /{path}", "unknown_url")
        headers = {k: v for k in FORWARDED_REQUEST_HEADERS if (v := request.headers.get(k))}
        upstream = self.client.build_request(
            request.method, f"{base}/{path}", params=request.query_params, headers=headers,
            content=request.stream() if request.method in ("POST", "PUT", "PATCH") else None)
        try:
            answer = await self.client.send(upstream, stream=True)
        except httpx.HTTPError as exc:
            return error(502, f"The {name} API did not answer: {type(exc).__name__}",
                         "upstream_unavailable")
        kept: dict[str, Any] = {k: v for k in FORWARDED_RESPONSE_HEADERS
                                if (v := answer.headers.get(k))}
        return StreamingResponse(answer.aiter_raw(), status_code=answer.status_code,
                                 headers=kept, background=BackgroundTask(answer.aclose))

    async def close(self) -> None:
        await self.client.aclose()
