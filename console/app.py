"""The console's ASGI app: its static pages, plotly.js from the installed ``plotly``
package, and the API proxy (``console.proxy``).

Every response carries a Content-Security-Policy that allows scripts from this origin
only (no inline script, no ``eval``): text from datasets and model answers is put into
pages as text by the scripts, and even markup that slipped through could not run.
Requests that change state are refused when another site sends them (``Origin``);
the API key itself travels only in the ``Authorization`` header, which a forged
cross-site request cannot set.
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from starlette.applications import Starlette
from starlette.responses import FileResponse, JSONResponse, RedirectResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from console.proxy import ApiProxy, error
from quanta.http_errors import HTTPForbidden

STATIC = Path(__file__).with_name("static")
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Plotly adds its own <style> elements: styles may be inline, scripts never.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
       "img-src 'self' data: blob:; connect-src 'self'; font-src 'self' data:; "
       "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'")
SECURITY_HEADERS = [(b"content-security-policy", CSP.encode()),
                    (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"no-referrer"),
                    (b"x-frame-options", b"DENY"),
                    (b"cache-control", b"no-store")]


def plotly_js() -> Path:
    """plotly.js as the ``plotly`` Python package ships it (no CDN)."""
    import plotly

    return Path(plotly.__file__).parent / "package_data" / "plotly.min.js"


class Guard:
    """Security headers on every response; a state-changing request whose ``Origin`` is
    another site is refused before it reaches a route."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1")
                   for k, v in scope["headers"]}
        origin = headers.get("origin")
        if scope["method"] not in SAFE_METHODS and origin is not None and \
                urlsplit(origin).netloc != headers.get("host"):
            response = error(HTTPForbidden("Cross-site requests are refused",
                                           code="cross_site_request"))
            await response(scope, receive, self._secure(send))
            return
        await self.app(scope, receive, self._secure(send))

    @staticmethod
    def _secure(send: Send) -> Send:
        async def wrapped(message: Message) -> None:
            if message["type"] == "http.response.start":
                kept = [(k, v) for k, v in message.get("headers", [])
                        if k.lower() != b"cache-control"]
                message = {**message, "headers": [*kept, *SECURITY_HEADERS]}
            await send(message)

        return wrapped


def create_app(tune_url: str, serve_url: str | None = None) -> ASGIApp:
    """The console over the tune API at ``tune_url`` (and ``serve_url`` for the
    playground)."""
    proxy = ApiProxy({"tune": tune_url, "serve": serve_url or ""})

    @asynccontextmanager
    async def lifespan(app: Any):  # type: ignore[no-untyped-def]
        yield
        await proxy.close()

    async def index(request: Any) -> FileResponse:
        return FileResponse(STATIC / "index.html")

    async def plotly(request: Any) -> FileResponse:
        return FileResponse(plotly_js(), media_type="text/javascript")

    async def config(request: Any) -> JSONResponse:
        return JSONResponse({"serve": bool(serve_url)})

    app = Starlette(lifespan=lifespan, routes=[
        Route("/", lambda request: RedirectResponse("/console/")),
        Route("/console/", index),
        Route("/console/config.json", config),
        Route("/console/vendor/plotly.min.js", plotly),
        Mount("/console/static", StaticFiles(directory=STATIC)),
        Route("/api/{api:str}/{path:path}", proxy.forward,
              methods=["GET", "POST", "DELETE", "PUT", "PATCH"]),
    ])
    return Guard(app)
