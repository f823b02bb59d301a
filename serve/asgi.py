"""The few ASGI pieces Quanta's serve layers share: types, a body replay, JSON replies.
Server-sent events, read and written, are ``serve.sse``'s."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def replay(body: bytes, receive: Receive) -> Receive:
    """A receive channel that yields ``body`` once, then the real channel (disconnects)."""
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed


def with_body(scope: Scope, body: bytes, path: str | None = None) -> Scope:
    """A copy of a request scope for a new JSON body (and optionally another path)."""
    scope = dict(scope)
    if path is not None:
        scope["path"], scope["raw_path"] = path, path.encode()
    scope["headers"] = [(k, v) for k, v in scope["headers"]
                        if k not in (b"content-length", b"content-type")]
    scope["headers"] += [(b"content-length", str(len(body)).encode()),
                         (b"content-type", b"application/json")]
    return scope


async def send_json(send: Send, status: int, payload: Any,
                    headers: list[tuple[bytes, bytes]] | None = None) -> None:
    body = json.dumps(payload).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()), *(headers or [])]})
    await send({"type": "http.response.body", "body": body})

