"""Server-sent events as OpenAI-compatible servers stream them: ``data: {...}`` events,
the last one ``data: [DONE]``; read from raw body chunks, and written.

This is the one SSE parser of the serve layers, for every place that sees a stream as
ASGI body chunks or as vLLM's generator of strings rather than as an HTTP client's
response: calculator decoding reading the engine's in-process response
(``serve.calculator.http``), the gRPC surface reading vLLM's serving generators
(``serve.grpc_server``) and the middleware rewriting each event on its way to the client
(``serve.middleware``). Code that reads an ``httpx`` streaming response uses the
maintained ``httpx-sse`` package instead (``tests/support/load.py``); the browser
console has its own (``console/static/api.js``).

The format is the WHATWG one, as far as these streams need it: an event ends at a
blank line (``\\n\\n`` or ``\\r\\n\\r\\n``) and may arrive split across chunks; its data
is the values of its ``data:`` lines (one space after the colon dropped) joined by
newlines; comments and the other fields (``event:``, ``id:``, ``retry:``) are ignored,
and an unterminated event at the end of the stream is not dispatched.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterable, AsyncIterator
from typing import Any

DONE = b"[DONE]"  # OpenAI's end-of-stream sentinel, the data of the last event
_EVENT_END = re.compile(rb"\r?\n\r?\n")


class EventSplitter:
    """Complete events out of a stream of chunks: a partial event waits for its end."""

    def __init__(self) -> None:
        self._pending = b""

    def feed(self, chunk: bytes | str) -> list[bytes]:
        """The events ``chunk`` completes, without their terminating blank line."""
        data = self._pending + (chunk.encode() if isinstance(chunk, str) else chunk)
        *events, self._pending = _EVENT_END.split(data)
        return events

    def rest(self) -> bytes:
        """The bytes after the last complete event (an unterminated event, or ``b""``),
        once the stream has ended; the splitter is empty afterwards."""
        rest, self._pending = self._pending, b""
        return rest


def event_data(event: bytes) -> bytes | None:
    """An event's data (its ``data:`` values joined by newlines); None if it has none."""
    values = [line[5:] for line in event.splitlines() if line.startswith(b"data:")]
    if not values:
        return None
    return b"\n".join(v[1:] if v.startswith(b" ") else v for v in values)


def is_done(event: bytes) -> bool:
    """Whether ``event`` is the ``[DONE]`` sentinel."""
    data = event_data(event)
    return data is not None and data.strip() == DONE


def event_json(event: bytes) -> dict[str, Any] | None:
    """The JSON object an event's data carries; None when its data is not an object
    (no data, ``[DONE]``, other text). Raises ``ValueError`` when the data starts like an
    object but is not valid JSON: each caller decides whether that is an error."""
    data = event_data(event)
    if data is None or not data.lstrip().startswith(b"{"):
        return None
    payload = json.loads(data)  # json.JSONDecodeError and UnicodeDecodeError are ValueErrors
    return payload if isinstance(payload, dict) else None


async def sse_payloads(chunks: AsyncIterable[bytes | str]) -> AsyncIterator[dict[str, Any]]:
    """The JSON objects a stream's events carry, in order, up to ``[DONE]``.

    Events without a JSON object (comments, keep-alives) are skipped; malformed JSON
    raises ``ValueError``, as an engine's stream never carries it.
    """
    events = EventSplitter()
    async for chunk in chunks:
        for event in events.feed(chunk):
            if is_done(event):
                return
            payload = event_json(event)
            if payload is not None:
                yield payload


def with_data(event: bytes, data: bytes) -> bytes:
    """``event`` rewritten to carry ``data`` (one line, e.g. compact JSON): one ``data:``
    line where its first was, its other fields (``event:``, ``id:``) and comments kept,
    and the blank line that ends it."""
    lines, placed = [], False
    for line in event.splitlines():
        if not line.startswith(b"data:"):
            lines += [line] if line else []
        elif not placed:
            lines.append(b"data: " + data)
            placed = True
    if not placed:
        lines.append(b"data: " + data)
    return b"\n".join(lines) + b"\n\n"


def sse_event(payload: Any) -> bytes:
    """One event carrying ``payload``: JSON-encoded, or as it is when already bytes
    (``sse_event(DONE)``)."""
    data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return b"data: " + data + b"\n\n"
