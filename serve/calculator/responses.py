"""Calculator decoding on ``POST /v1/responses``: the request is served as the chat
completion it amounts to, and the answer is turned back into a Response.

A Responses request with text messages is a chat: ``instructions`` are its system
message, ``input`` its messages (a string is one user message; the conversation of a
``previous_response_id`` is already there, see ``serve.responses``), and
``max_output_tokens`` its ``max_tokens``. ``chat_request`` builds that chat request, so
calculator decoding (``serve.calculator.http``) serves it exactly as it serves chat
completions; ``ResponseWriter`` stands between it and the client and rewrites the chat
completion into a Response, or the streamed chunks into the Responses stream events
(``response.created`` ... ``response.output_text.delta`` ... ``response.completed``), with
the inserted values as text like any other. What it cannot keep (tools, logprobs,
structured output, other item types) is refused with a 400 naming the field.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from serve.asgi import Message, Send
from serve.errors import HTTPBadRequest
from serve.sse import EventSplitter, event_json, is_done

# Sampling fields a Responses request shares with chat completions, passed as they came.
SHARED = ("temperature", "top_p", "top_k", "min_p", "seed", "presence_penalty",
          "frequency_penalty", "repetition_penalty", "logit_bias", "user", "stop")
TEXT_PARTS = ("input_text", "output_text", "text")
ROLES = ("user", "assistant", "system", "developer")


def chat_request(body: dict[str, Any]) -> dict[str, Any]:
    """The chat completions request a Responses request amounts to (HTTPBadRequest naming
    the Responses field calculator decoding cannot serve)."""
    if body.get("tools"):
        _refuse("tools")
    include = body.get("include") if isinstance(body.get("include"), list) else []
    if body.get("top_logprobs"):  # an integer from 0 to 20 (serve.openai_shapes)
        _refuse("top_logprobs")
    if "message.output_text.logprobs" in include:
        _refuse("include")
    text = body.get("text")
    if isinstance(text, dict) and isinstance(text.get("format"), dict) and \
            text["format"].get("type", "text") != "text":
        _refuse("text.format")
    messages: list[dict[str, str]] = []
    instructions = body.get("instructions")
    if isinstance(instructions, str) and instructions:
        messages.append({"role": "system", "content": instructions})
    elif instructions is not None and not isinstance(instructions, str):
        raise HTTPBadRequest("calculator decoding takes 'instructions' as a string",
                             param="instructions")
    value = body.get("input")
    if isinstance(value, str):
        value = [{"role": "user", "content": value}]
    if not isinstance(value, list) or not value:
        raise HTTPBadRequest("'input' must be a string or a non-empty list of messages",
                             param="input")
    messages += [_message(item, i) for i, item in enumerate(value)]
    chat: dict[str, Any] = {"model": body.get("model"), "messages": messages,
                            "stream": body.get("stream") is True}
    limit = body.get("max_output_tokens")
    if limit is not None:
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise HTTPBadRequest("'max_output_tokens' must be a positive integer",
                                 param="max_output_tokens")
        chat["max_tokens"] = limit
    chat.update({k: body[k] for k in SHARED if body.get(k) is not None})
    if chat["stream"]:
        chat["stream_options"] = {"include_usage": True}
    return chat


def _refuse(name: str) -> None:
    raise HTTPBadRequest(f"'{name}' is not supported with calculator decoding; send "
                         "\"quanta\": {\"calculator\": false} to generate without it",
                         param=name)


def _message(item: Any, index: int) -> dict[str, str]:
    """An input item as a plain-text chat message, or a 400 naming it."""
    where = f"input[{index}]"
    if not isinstance(item, dict) or item.get("type", "message") != "message" or \
            item.get("role") not in ROLES:
        raise HTTPBadRequest("calculator decoding reads messages (user, assistant, system, "
                             "developer) only", param=where)
    content = item.get("content")
    if isinstance(content, list):
        parts = [p.get("text") for p in content
                 if isinstance(p, dict) and p.get("type") in TEXT_PARTS]
        if len(parts) != len(content) or not all(isinstance(p, str) for p in parts):
            raise HTTPBadRequest("calculator decoding reads text content parts only",
                                 param=f"{where}.content")
        content = "".join(parts)
    if not isinstance(content, str):
        raise HTTPBadRequest(f"{where}.content must be text", param=f"{where}.content")
    return {"role": item["role"], "content": content}


class ResponseWriter:
    """An ASGI ``send`` that takes calculator decoding's chat completion (a JSON body, or
    chunks as server-sent events) and sends the Response (or its stream events) instead.
    Error responses pass as they are; an error in the middle of a stream becomes OpenAI's
    ``error`` event followed by ``response.failed``."""

    def __init__(self, send: Send, request: dict[str, Any]) -> None:
        self._send = send
        self.request = request
        self.id = f"resp_{uuid.uuid4().hex}"
        self.item_id = f"msg_{uuid.uuid4().hex}"
        self.created = int(time.time())
        self.passthrough = False
        self._whole: Message | None = None
        self._parts: list[bytes] = []
        self._events = EventSplitter()
        self._sequence = 0
        self._text = ""
        self._finish: str | None = None
        self._usage: dict[str, Any] | None = None
        self._opened = False
        self._closed = False

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = dict(message.get("headers") or [])
            streaming = b"text/event-stream" in headers.get(b"content-type", b"")
            self.passthrough = message["status"] != 200
            if not self.passthrough and not streaming:
                self._whole = message
                return
            await self._send(message)
            return
        if message["type"] != "http.response.body" or self.passthrough:
            await self._send(message)
            return
        more = bool(message.get("more_body"))
        if self._whole is not None:
            self._parts.append(message.get("body", b""))
            if not more:
                await self._send_whole()
            return
        out = b"".join([self._on_event(e) for e in self._events.feed(message.get("body", b""))])
        await self._send({"type": "http.response.body", "body": out, "more_body": more})

    async def _send_whole(self) -> None:
        chat = json.loads(b"".join(self._parts))
        choice = (chat.get("choices") or [{}])[0]
        self._text = (choice.get("message") or {}).get("content") or ""
        self._finish = choice.get("finish_reason")
        self._usage = chat.get("usage")
        body = json.dumps(self._response(self._status(), [self._item(self._status())],
                                         self._usage)).encode()
        start, self._whole = self._whole, None
        assert start is not None
        headers = [(k, v) for k, v in start.get("headers") or []
                   if k.lower() != b"content-length"]
        await self._send({**start, "headers": [*headers,
                                               (b"content-length", str(len(body)).encode())]})
        await self._send({"type": "http.response.body", "body": body})

    def _on_event(self, event: bytes) -> bytes:
        """The Responses events one chat chunk (or ``[DONE]``) stands for."""
        if self._closed:
            return b""
        if is_done(event):
            return self._close()
        chunk = event_json(event)
        if chunk is None:
            return b""
        out = b"" if self._opened else self._open()
        if isinstance(chunk.get("error"), dict):
            self._closed = True
            error = chunk["error"]
            message = str(error.get("message") or "calculator decoding failed")
            failed = self._response("failed", [self._item("incomplete")], self._usage)
            failed["error"] = {"code": "server_error", "message": message}
            param = error.get("param")
            return out + self._event("error", code="server_error", message=message,
                                     param=param if isinstance(param, str) else None) + \
                self._event("response.failed", response=failed)
        if isinstance(chunk.get("usage"), dict):
            self._usage = chunk["usage"]
        for choice in chunk.get("choices") or []:
            delta = (choice.get("delta") or {}).get("content")
            if delta:
                self._text += delta
                out += self._event("response.output_text.delta", item_id=self.item_id,
                                   output_index=0, content_index=0, delta=delta, logprobs=[])
            if choice.get("finish_reason"):
                self._finish = choice["finish_reason"]
        return out

    def _open(self) -> bytes:
        self._opened = True
        started = self._response("in_progress", [], None)
        return (self._event("response.created", response=started)
                + self._event("response.in_progress", response=started)
                + self._event("response.output_item.added", output_index=0,
                              item={**self._item("in_progress"), "content": []})
                + self._event("response.content_part.added", item_id=self.item_id,
                              output_index=0, content_index=0, part=_text_part("")))

    def _close(self) -> bytes:
        self._closed = True
        out = b"" if self._opened else self._open()
        item = self._item(self._status())
        return (out
                + self._event("response.output_text.done", item_id=self.item_id,
                              output_index=0, content_index=0, text=self._text, logprobs=[])
                + self._event("response.content_part.done", item_id=self.item_id,
                              output_index=0, content_index=0, part=_text_part(self._text))
                + self._event("response.output_item.done", output_index=0, item=item)
                + self._event("response.completed",
                              response=self._response(self._status(), [item], self._usage)))

    def _event(self, kind: str, **fields: Any) -> bytes:
        payload = {"type": kind, "sequence_number": self._sequence, **fields}
        self._sequence += 1
        return f"event: {kind}\ndata: {json.dumps(payload)}\n\n".encode()

    def _status(self) -> str:
        """The Response's status, and its message's: cut short by ``max_output_tokens``,
        or complete."""
        return "incomplete" if self._finish == "length" else "completed"

    def _item(self, status: str) -> dict[str, Any]:
        return {"type": "message", "id": self.item_id, "role": "assistant", "status": status,
                "content": [_text_part(self._text)]}

    def _response(self, status: str, output: list[dict[str, Any]],
                  usage: dict[str, Any] | None) -> dict[str, Any]:
        """A Response with the request's settings, as vLLM's Responses route reports them
        (sampling values the request left to the engine's defaults are ``null``)."""
        request = self.request
        response: dict[str, Any] = {
            "id": self.id, "object": "response", "created_at": self.created,
            "status": status, "error": None,
            "incomplete_details": {"reason": "max_output_tokens"}
            if status == "incomplete" else None,
            "instructions": request.get("instructions"),
            "max_output_tokens": request.get("max_output_tokens"),
            "metadata": request.get("metadata"), "model": request.get("model"),
            "output": output, "parallel_tool_calls": request.get("parallel_tool_calls", True),
            "previous_response_id": None, "reasoning": None, "service_tier": "auto",
            "temperature": request.get("temperature"), "top_p": request.get("top_p"),
            "tool_choice": "none", "tools": [], "background": False,
            "text": {"format": {"type": "text"}},
            "truncation": request.get("truncation") or "disabled"}
        if isinstance(request.get("user"), str):
            response["user"] = request["user"]
        if usage is not None:
            response["usage"] = response_usage(usage)
        return response


def _text_part(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def response_usage(usage: dict[str, Any]) -> dict[str, Any]:
    """A chat completion's ``usage`` as a Response's (inserted values are not generated,
    so not counted, as in chat completions)."""
    prompt = int(usage.get("prompt_tokens") or 0)
    completion = int(usage.get("completion_tokens") or 0)
    return {"input_tokens": prompt,
            "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
            "output_tokens": completion, "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": prompt + completion}
