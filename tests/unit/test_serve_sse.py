"""serve.sse: events split across chunks, the [DONE] sentinel, only JSON objects."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterable

import pytest

from serve.sse import (
    DONE,
    EventSplitter,
    event_data,
    event_json,
    is_done,
    sse_event,
    sse_payloads,
    with_data,
)


def _payloads(chunks: Iterable[bytes | str]) -> list[dict]:
    async def stream() -> AsyncIterator[bytes | str]:
        for chunk in chunks:
            yield chunk

    async def collect() -> list[dict]:
        return [payload async for payload in sse_payloads(stream())]

    return asyncio.run(collect())


def test_events_split_anywhere_come_out_whole() -> None:
    body = b"".join(sse_event({"n": i}) for i in range(3)) + sse_event(DONE)
    for size in (1, 2, 5, len(body)):
        chunks = [body[i:i + size] for i in range(0, len(body), size)]
        assert _payloads(chunks) == [{"n": 0}, {"n": 1}, {"n": 2}]


def test_stops_at_done_and_skips_what_is_not_a_json_object() -> None:
    chunks = [": keep-alive\n\n", "data: [1, 2]\n\n", "data: not json\n\n",
              'data: {"a": 1}\n\n', "data: [DONE]\n\n", 'data: {"after": true}\n\n']
    assert _payloads(chunks) == [{"a": 1}]


def test_malformed_json_object_raises() -> None:
    with pytest.raises(ValueError):
        _payloads(['data: {"a": \n\n'])


def test_crlf_multiline_data_and_other_fields() -> None:
    event = b'event: delta\r\nid: 7\r\ndata: {"a":\r\ndata:1}'
    splitter = EventSplitter()
    assert splitter.feed(event + b"\r\n\r") == []
    assert splitter.feed(b"\ndata: [DONE]\r\n\r\n") == [event, b"data: [DONE]"]
    assert event_data(event) == b'{"a":\n1}'
    assert event_json(event) == {"a": 1}
    assert is_done(b"data: [DONE]") and not is_done(event)
    assert event_data(b": a comment") is None


def test_rest_is_the_unterminated_tail() -> None:
    splitter = EventSplitter()
    assert splitter.feed(b'data: {"a": 1}\n\ndata: {"b"') == [b'data: {"a": 1}']
    assert splitter.rest() == b'data: {"b"'
    assert splitter.rest() == b""


def test_with_data_keeps_the_other_fields() -> None:
    event = b"event: response.created\ndata: {\ndata: }"
    rewritten = with_data(event, json.dumps({"b": 2}).encode())
    assert rewritten == b'event: response.created\ndata: {"b": 2}\n\n'
    assert with_data(b"data: {}", b"{}") == sse_event({})
