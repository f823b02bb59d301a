"""Engine error bodies leave serve in OpenAI's shape, whatever shape they came in."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from serve.errors import openai_error, openai_errors


def test_bodies_of_every_shape_become_openai_errors() -> None:
    vllm = json.dumps({"error": {"message": "bad temperature", "type": "BadRequestError",
                                 "param": "temperature", "code": 400}}).encode()
    assert openai_error(400, vllm) == {"error": {
        "message": "bad temperature", "type": "invalid_request_error",
        "param": "temperature", "code": "invalid_request"}}
    assert openai_error(404, b'{"detail": "Not Found"}')["error"] == {
        "message": "Not Found", "type": "invalid_request_error", "param": None,
        "code": "not_found"}
    assert openai_error(404, json.dumps({"error": {"message": "no", "param": "model",
                                                   "code": 404}}).encode())[
        "error"]["code"] == "model_not_found"
    assert openai_error(400, b'{"error": "plain text"}')["error"]["message"] == "plain text"
    assert openai_error(500, b"Internal Server Error")["error"]["type"] == "server_error"
    assert openai_error(502, b"")["error"]["message"] == "HTTP 502"
    ours = {"error": {"message": "m", "type": "invalid_request_error", "param": None,
                      "code": "invalid_api_key"}}
    assert openai_error(401, json.dumps(ours).encode()) == ours  # already OpenAI's: kept


def _through(*messages: dict[str, Any]) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def run() -> None:
        wrapped = openai_errors(send)
        for message in messages:
            await wrapped(message)

    asyncio.run(run())
    return sent


def test_the_send_wrapper_rewrites_whole_error_responses_only() -> None:
    start = {"type": "http.response.start", "status": 400,
             "headers": [(b"content-type", b"application/json"),
                         (b"transfer-encoding", b"chunked"), (b"x-request-id", b"r1")]}
    sent = _through(start, {"type": "http.response.body", "body": b'{"error": {"mess',
                            "more_body": True},
                    {"type": "http.response.body", "body": b'age": "m", "code": 400}}'})
    headers = dict(sent[0]["headers"])
    body = json.loads(sent[1]["body"])
    assert body["error"]["code"] == "invalid_request" and body["error"]["message"] == "m"
    assert headers[b"content-length"] == str(len(sent[1]["body"])).encode()
    assert b"transfer-encoding" not in headers and headers[b"x-request-id"] == b"r1"
    ok = {"type": "http.response.start", "status": 200, "headers": []}
    assert _through(ok, {"type": "http.response.body", "body": b"x"})[1]["body"] == b"x"
    gzipped = {"type": "http.response.start", "status": 500,
               "headers": [(b"content-encoding", b"gzip")]}
    assert _through(gzipped, {"type": "http.response.body", "body": b"\x1f\x8b"})[1][
        "body"] == b"\x1f\x8b"  # passed through, not parsed
