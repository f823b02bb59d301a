"""Calculator decoding on the OpenAI HTTP routes, in front of either engine's own app.

``TenancyMiddleware`` hands a chat, completion or Responses request here when the model is an
adapter trained with calculation traces (its registry config says ``calculator``) or
the request asks for it with Quanta's extension field ``"quanta": {"calculator": true}``
(``false`` turns it off for such an adapter). The request becomes a series of streamed
``/v1/completions`` calls to the engine's own app (chat messages rendered with the
model's chat template), and the answer goes back in the route's own OpenAI shape,
streamed or whole. A Responses request is served as the chat it amounts to and answered
as a Response (``serve.calculator.responses``). Requests it cannot serve faithfully
(several choices, logprobs, tools, echo) are refused with a 400 naming the field, never
answered half right.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from quanta.calculator import (
    MAX_CALLS,
    Delta,
    EngineError,
    calculator_decode,
    completion_deltas,
)
from serve.access import ResolvedModel
from serve.asgi import ASGIApp, Message, Receive, Scope, Send, replay
from serve.asgi import with_body as scope_with_body
from serve.calculator.prompts import ChatPrompts
from serve.calculator.responses import ResponseWriter, chat_request
from serve.errors import HTTPBadRequest
from serve.sse import DONE, sse_event, sse_payloads

EXTENSION = "quanta"
CHAT_PATH = "/v1/chat/completions"
COMPLETIONS_PATH = "/v1/completions"
RESPONSES_PATH = "/v1/responses"
PATHS = frozenset({CHAT_PATH, COMPLETIONS_PATH, RESPONSES_PATH})
# Sampling fields passed to every segment as the client sent them.
SAMPLING = ("temperature", "top_p", "top_k", "min_p", "seed", "presence_penalty",
            "frequency_penalty", "repetition_penalty", "logit_bias", "user")
# Fields whose meaning calculator decoding cannot keep: refused when they ask for more.
_UNSUPPORTED = {"n": 1, "best_of": 1, "logprobs": None, "top_logprobs": None, "echo": False,
                "tools": None, "functions": None, "suffix": None, "prompt_logprobs": None,
                "response_format": None}


def extension_choice(body: dict[str, Any]) -> bool | None:
    """Pop Quanta's extension field; its ``calculator`` switch (None when not given)."""
    extension = body.pop(EXTENSION, None)
    if extension is None:
        return None
    if not isinstance(extension, dict) or set(extension) - {"calculator"}:
        raise HTTPBadRequest("'quanta' takes one field, 'calculator' (true or false)",
                             param=EXTENSION)
    choice = extension.get("calculator")
    if choice is not None and not isinstance(choice, bool):
        raise HTTPBadRequest("'quanta.calculator' must be true or false",
                             param="quanta.calculator")
    return choice


def wants_calculator(path: str, body: dict[str, Any], resolved: ResolvedModel) -> bool:
    """Whether this request is decoded with the calculator (pops the extension field)."""
    choice = extension_choice(body)
    if path not in PATHS:
        return False
    return resolved.calculator if choice is None else choice


def _check_supported(body: dict[str, Any]) -> None:
    for name, default in _UNSUPPORTED.items():
        value = body.get(name)
        if value is None or value == default or value is False or value == []:
            continue
        raise HTTPBadRequest(
            f"'{name}' is not supported with calculator decoding; send "
            "\"quanta\": {\"calculator\": false} to generate without it", param=name)


def _text_content(message: Any, index: int) -> dict[str, str]:
    """A chat message with plain-text content (text parts joined), or a 400."""
    if not isinstance(message, dict) or not isinstance(message.get("role"), str):
        raise HTTPBadRequest(f"messages[{index}] must be an object with a role",
                             param=f"messages[{index}]")
    content = message.get("content")
    if isinstance(content, list):
        parts = [p.get("text") for p in content if isinstance(p, dict)]
        if any(not isinstance(p, str) for p in parts) or len(parts) != len(content):
            raise HTTPBadRequest("calculator decoding reads text content parts only",
                                 param=f"messages[{index}].content")
        content = "".join(parts)
    if content is None:
        content = ""
    if not isinstance(content, str):
        raise HTTPBadRequest(f"messages[{index}].content must be a string",
                             param=f"messages[{index}].content")
    return {"role": message["role"], "content": content}


@dataclass(frozen=True)
class CalculatorPlan:
    """One checked request: the prompt, limits and sampling every segment uses."""

    chat: bool
    model: str
    prompt: str
    stop: list[str]
    max_tokens: int | None
    sampling: dict[str, Any]
    stream: bool
    include_usage: bool
    # A Responses request served as chat: the request, to answer with a Response.
    responses: dict[str, Any] | None = None


class CalculatorRoute:
    """Serves one chat or completion request with calculator decoding."""

    def __init__(self, prompts: ChatPrompts, max_calls: int = MAX_CALLS) -> None:
        self.prompts = prompts
        self.max_calls = max_calls

    async def plan(self, path: str, body: dict[str, Any]) -> CalculatorPlan:
        """Check and prepare a request (HTTPBadRequest naming the field it cannot serve)."""
        if path == RESPONSES_PATH:
            return replace(await self.plan(CHAT_PATH, chat_request(body)), responses=body)
        _check_supported(body)
        chat = path == CHAT_PATH
        stop = body.get("stop") or []
        stop = [stop] if isinstance(stop, str) else stop
        if not isinstance(stop, list) or not all(isinstance(s, str) for s in stop):
            raise HTTPBadRequest("'stop' must be a string or a list of strings", param="stop")
        max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
        if not chat and "max_tokens" not in body:
            max_tokens = 16  # OpenAI's completions default, as the engines apply it
        if max_tokens is not None and (isinstance(max_tokens, bool)
                                       or not isinstance(max_tokens, int) or max_tokens < 1):
            raise HTTPBadRequest("'max_tokens' must be a positive integer", param="max_tokens")
        options = body.get("stream_options")
        return CalculatorPlan(
            chat=chat, model=str(body.get("model") or ""), prompt=await self._prompt(body, chat),
            stop=stop, max_tokens=max_tokens,
            sampling={k: body[k] for k in SAMPLING if body.get(k) is not None},
            stream=body.get("stream") is True,
            include_usage=isinstance(options, dict) and bool(options.get("include_usage")))

    async def serve(self, plan: CalculatorPlan, app: ASGIApp, scope: Scope, receive: Receive,
                    send: Send) -> None:
        """Answer the planned request through the engine's app."""
        if plan.responses is not None:
            send = ResponseWriter(send, plan.responses).send
        source = _EngineSource(app, scope, receive, plan.model, plan.sampling, self.prompts)
        deltas = calculator_decode(plan.prompt, source, max_tokens=plan.max_tokens,
                                   stop=plan.stop, max_calls=self.max_calls)
        shape = _Shape(plan.chat, plan.model)
        try:
            if plan.stream:
                await _stream(deltas, shape, send, plan.include_usage)
            else:
                await _whole(deltas, shape, send)
        except EngineError as exc:
            await send({"type": "http.response.start", "status": exc.status,
                        "headers": exc.headers})
            await send({"type": "http.response.body", "body": exc.body})

    async def _prompt(self, body: dict[str, Any], chat: bool) -> str:
        if not chat:
            prompt = body.get("prompt")
            if not isinstance(prompt, str):
                raise HTTPBadRequest("calculator decoding takes one text prompt",
                                     param="prompt")
            return prompt
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise HTTPBadRequest("'messages' must be a non-empty list", param="messages")
        plain = [_text_content(m, i) for i, m in enumerate(messages)]
        return await asyncio.to_thread(self.prompts.render, plain)


class _EngineSource:
    """Segments generated by the engine's own ``/v1/completions`` route, in-process."""

    def __init__(self, app: ASGIApp, scope: Scope, receive: Receive, model: Any,
                 sampling: dict[str, Any], prompts: ChatPrompts) -> None:
        self.app, self.scope, self.receive = app, scope, receive
        self.model, self.sampling, self.prompts = model, sampling, prompts

    async def __call__(self, prompt: str, max_tokens: int | None,
                       stop: Sequence[str]) -> AsyncIterator[Delta]:
        request = {"model": self.model or None, "prompt": prompt, "max_tokens": max_tokens,
                   "stop": list(stop), "stream": True,
                   "stream_options": {"include_usage": True}, **self.sampling}
        raw = json.dumps(request).encode()
        scope = scope_with_body(self.scope, raw, COMPLETIONS_PATH)
        text = ""
        body = _response_body(self.app, scope, replay(raw, self.receive))
        async for delta in completion_deltas(sse_payloads(body), _engine_failure):
            if delta.is_end and delta.completion_tokens is None:
                # llama-cpp-python's streams carry no usage: count it here
                delta = replace(delta, prompt_tokens=await asyncio.to_thread(
                    self.prompts.count, prompt), completion_tokens=await asyncio.to_thread(
                    self.prompts.count, text))
            text += delta.text
            yield delta


def _engine_failure(payload: Mapping[str, Any]) -> EngineError:
    return EngineError(500, json.dumps(payload).encode(), [(b"content-type", b"application/json")])


async def _response_body(app: ASGIApp, scope: Scope, receive: Receive
                         ) -> AsyncIterator[bytes]:
    """Call the app and yield its 200 response body as it streams; EngineError otherwise."""
    queue: asyncio.Queue[Message | None] = asyncio.Queue()

    async def capture(message: Message) -> None:
        await queue.put(message)

    async def run() -> None:
        try:
            await app(scope, receive, capture)
        finally:
            await queue.put(None)

    task = asyncio.create_task(run())
    try:
        start = await queue.get()
        if start is None:
            await task  # raises the app's exception, if any
            raise EngineError(500, b'{"error": {"message": "the engine gave no answer"}}')
        status = start["status"]
        error_body = b""
        while (message := await queue.get()) is not None:
            if message["type"] != "http.response.body":
                continue
            if status == 200:
                yield message.get("body", b"")
            else:
                error_body += message.get("body", b"")
            if not message.get("more_body"):
                break
        if status != 200:
            headers = [(k, v) for k, v in start.get("headers", [])
                       if k.lower() == b"content-type"]
            raise EngineError(status, error_body, headers)
    finally:
        if not task.done():
            task.cancel()
        await asyncio.gather(task, return_exceptions=True)


class _Shape:
    """The OpenAI objects of one route: chat completion(s) or text completion(s)."""

    def __init__(self, chat: bool, model: str) -> None:
        self.chat, self.model = chat, model
        self.id = f"{'chatcmpl' if chat else 'cmpl'}-{uuid.uuid4().hex}"
        self.created = int(time.time())

    def _object(self, kind: str, choices: list[dict], usage: dict | None = None) -> dict:
        body: dict[str, Any] = {"id": self.id, "object": kind, "created": self.created,
                                "model": self.model, "choices": choices}
        if usage is not None:
            body["usage"] = usage
        return body

    def whole(self, text: str, finish: str | None, usage: dict) -> dict:
        if self.chat:
            message = {"role": "assistant", "content": text, "refusal": None,
                       "tool_calls": []}
            return self._object("chat.completion", [{"index": 0, "message": message,
                                                     "logprobs": None,
                                                     "finish_reason": finish}], usage)
        return self._object("text_completion", [{"index": 0, "text": text, "logprobs": None,
                                                 "finish_reason": finish}], usage)

    def chunk(self, text: str | None, finish: str | None = None, first: bool = False
              ) -> dict:
        if self.chat:
            delta: dict[str, Any] = {"role": "assistant", "content": ""} if first else {}
            if text:
                delta["content"] = text
            choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
            return self._object("chat.completion.chunk", [choice])
        return self._object("text_completion", [{"index": 0, "text": text or "",
                                                 "logprobs": None, "finish_reason": finish}])

    def usage_chunk(self, usage: dict) -> dict:
        kind = "chat.completion.chunk" if self.chat else "text_completion"
        return self._object(kind, [], usage)


def _usage(end: Delta) -> dict[str, int]:
    prompt, completion = end.prompt_tokens or 0, end.completion_tokens or 0
    return {"prompt_tokens": prompt, "completion_tokens": completion,
            "total_tokens": prompt + completion}


async def _whole(deltas: AsyncIterator[Delta], shape: _Shape, send: Send) -> None:
    text, end = "", Delta(finish_reason="stop")
    async for delta in deltas:
        text += delta.text
        if delta.is_end:
            end = delta
    body = json.dumps(shape.whole(text, end.finish_reason, _usage(end))).encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


async def _stream(deltas: AsyncIterator[Delta], shape: _Shape, send: Send,
                  include_usage: bool) -> None:
    """Server-sent events; headers go out with the first piece, so an engine error on the
    first segment is still answered with the engine's own status."""
    started = False

    async def event(payload: Any) -> None:
        nonlocal started
        if not started:
            started = True
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", b"text/event-stream; charset=utf-8"),
                                    (b"cache-control", b"no-cache")]})
            if shape.chat:
                await send({"type": "http.response.body", "more_body": True,
                            "body": sse_event(shape.chunk(None, first=True))})
        await send({"type": "http.response.body", "body": sse_event(payload),
                    "more_body": True})

    try:
        async for delta in deltas:
            if delta.text:
                await event(shape.chunk(delta.text))
            if delta.is_end:
                await event(shape.chunk(None, delta.finish_reason))
                if include_usage:
                    await event(shape.usage_chunk(_usage(delta)))
    except EngineError as exc:
        if not started:
            raise
        try:
            error = json.loads(exc.body)
        except ValueError:
            error = {"error": {"message": exc.body.decode(errors="replace"), "code": exc.status}}
        await event(error)
    await send({"type": "http.response.body", "body": sse_event(DONE),
                "more_body": False})
