"""ASGI middleware: API keys, tenant ownership of models, and per-tenant metrics.

It sits in front of the engine's own OpenAI server (vLLM's or llama-cpp-python's), so
the engine never sees a request it should not serve:

* the ``Authorization: Bearer`` key is mapped to a tenant (anonymous requests act as the
  default tenant when settings allow it); failures are 401;
* a JSON body's ``model`` must be the served base or an adapter the tenant owns (by
  ``ft:`` name, id or alias); the body is rewritten to the globally unique ``ft:`` name
  the resolver and engine know. Another base, or an adapter of one, is a 404 naming
  where it is served (``serve.access``); anything else is vLLM's own 404 body, so
  another tenant's adapter looks exactly like a model that does not exist;
* ``GET /v1/models`` is filtered to what the tenant may use, plus its registry
  adapters that are not loaded yet;
* the engine's raw adapter load/unload endpoints (which take server paths), non-JSON
  POST bodies and websockets are refused;
* each tenant's requests in flight and request rate are capped (``serve.limits``):
  beyond them the answer is 429 with ``Retry-After`` at once, never an unbounded queue;
* ``quanta_requests_total`` and ``quanta_tokens_total`` are counted from the response
  (for streams, ``stream_options.include_usage`` is requested and the extra usage chunk
  is dropped again when the client had not asked for it; a Responses stream carries its
  usage in ``response.completed``);
* OpenAI's Responses API: the engine generates, stored Responses are kept and answered
  here, per tenant (``serve.responses``).

It is pure ASGI (not ``BaseHTTPMiddleware``) so streamed responses pass through
chunk by chunk.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

from quanta.tenancy import Principal
from serve import metrics
from serve.access import ModelAccess, ResolvedModel
from serve.asgi import ASGIApp, Message, Receive, Scope, Send, replay, send_json, with_body
from serve.calculator import CalculatorRoute, wants_calculator
from serve.errors import (
    HTTPBadRequest,
    HTTPError,
    HTTPForbidden,
    HTTPInternalServerError,
    openai_error,
    openai_errors,
)
from serve.limits import TenantLimiter, TenantLimits
from serve.openai_shapes import check_request, conform
from serve.responses import (
    RESPONSES_PATH,
    RESPONSES_PREFIX,
    TERMINAL_EVENTS,
    ResponsesCall,
    ResponseStore,
    StoredResponses,
    error_event,
)
from serve.sse import EventSplitter, event_json, with_data

log = logging.getLogger(__name__)

PUBLIC_PATHS = frozenset({"/health", "/ping", "/version", "/metrics", "/load", "/docs",
                          "/openapi.json", "/redoc"})
# Operator endpoints of vLLM: never for tenants. Some exist only in vLLM's dev/RL modes;
# they are listed anyway so that turning such a mode on cannot expose them. Aborting
# requests by id would let one tenant cancel another's generations.
ENGINE_ADMIN_PATHS = frozenset({"/v1/load_lora_adapter", "/v1/unload_lora_adapter",
                                "/is_sleeping", "/sleep", "/wake_up", "/reset_prefix_cache",
                                "/collective_rpc", "/scale_elastic_ep", "/is_scaling_elastic_ep",
                                "/inference/v1/abort_requests", "/abort_requests",
                                "/pause", "/resume", "/is_paused", "/start_profile",
                                "/stop_profile", "/reset_mm_cache", "/reset_encoder_cache",
                                "/release_kv_cache_memory", "/server_info", "/weight_info",
                                "/get_world_size", "/update_weights", "/start_weight_update",
                                "/finish_weight_update", "/start_draft_weight_update",
                                "/update_weight_version", "/init_weight_transfer_engine",
                                "/shutdown_weight_transfer_engine", "/weight_checker",
                                "/fault_tolerance/status", "/kv_event_sources"})
# vLLM's SageMaker routes: ``POST /adapters`` registers an adapter from a path (like
# /v1/load_lora_adapter), and these headers rewrite the body's model after middleware.
SAGEMAKER_ADAPTER_HEADERS = ("x-amzn-sagemaker-adapter",)
# Routes whose answers carry ``usage``, counted in quanta_tokens_total: completions
# (``prompt_tokens``/``completion_tokens``; streamed, in the last chunk, which
# ``stream_options.include_usage`` asks for) and Responses (``input_tokens``/
# ``output_tokens``; streamed, in the ``response.completed`` event, always there).
USAGE_PATHS = frozenset({"/v1/chat/completions", "/v1/completions", RESPONSES_PATH})
STREAM_OPTIONS_PATHS = USAGE_PATHS - {RESPONSES_PATH}
MAX_BODY_BYTES = 32 * 1024 * 1024

_configured: ModelAccess | None = None
_configured_limiter: TenantLimiter | None = None
_configured_calculator: CalculatorRoute | None = None


def configure(access: ModelAccess, limiter: TenantLimiter | None = None,
              calculator: CalculatorRoute | None = None) -> None:
    """Set the access rules (per-tenant limits, calculator decoding) for middleware that
    vLLM instantiates itself (``--middleware``)."""
    global _configured, _configured_limiter, _configured_calculator
    _configured = access
    _configured_limiter = limiter
    _configured_calculator = calculator


class TenancyMiddleware:
    """Wraps an OpenAI-compatible ASGI app; see the module docstring."""

    def __init__(self, app: ASGIApp, access: ModelAccess | None = None,
                 check_sampling: bool = False, limiter: TenantLimiter | None = None,
                 calculator: CalculatorRoute | None = None,
                 responses: StoredResponses | None = None) -> None:
        """``check_sampling``: reject out-of-range sampling parameters here, for engines
        that accept them silently (llama-cpp-python); vLLM validates them itself.
        ``limiter``: per-tenant admission control (default: the configured one, else none).
        ``calculator``: calculator decoding for adapters trained with calculation traces
        (default: the configured one; without one, the ``quanta`` field is refused).
        ``responses``: the stored Responses (default: a store bounded by the settings)."""
        if access is None and _configured is None:
            raise RuntimeError("serve.middleware.configure(access) was not called")
        self.app = app
        self.check_sampling = check_sampling
        self.access: ModelAccess = access or _configured  # type: ignore[assignment]
        self.limiter: TenantLimiter = (limiter or _configured_limiter
                                       or TenantLimiter(TenantLimits()))
        self.calculator = calculator or _configured_calculator
        self.responses = responses or StoredResponses(
            ResponseStore.for_settings(self.access.registry.settings))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] == "websocket":
            # Realtime endpoints would bypass the model checks below: not offered.
            await send({"type": "websocket.close", "code": 1008})
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # The engine's error bodies too go out in OpenAI's shape.
        send = responder = _Responder(openai_errors(send))
        tenant = "-"
        slot = _Slot(self.limiter)
        try:
            headers = _headers(scope)
            if path in PUBLIC_PATHS or path.startswith("/metrics"):
                if path.startswith("/metrics"):
                    self.access.check_metrics_token(headers.get("authorization"))
                await self.app(scope, receive, send)
                return
            principal = await asyncio.to_thread(self.access.authenticate,
                                                headers.get("authorization"))
            tenant = principal.tenant_id
            if path in ENGINE_ADMIN_PATHS or path == "/adapters" or \
                    path.startswith("/adapters/"):
                raise HTTPForbidden(
                    f"{path} is not available: adapters are loaded from the registry "
                    "on first use")
            if any(name.startswith(SAGEMAKER_ADAPTER_HEADERS) for name in headers):
                # vLLM's SageMaker layer would put this header's adapter into the body
                # after the ownership check below: refuse rather than be bypassed.
                raise HTTPBadRequest("SageMaker adapter headers are not supported: name the "
                                      "model in the request body", param="model")
            if path.startswith(RESPONSES_PREFIX):  # stored Responses: answered here
                slot.take(tenant, 1)
                status = await self.responses.serve(tenant, scope, send)
                metrics.record_request(tenant, "responses", status)
                return
            if scope["method"] == "POST":
                if not is_json(headers.get("content-type", "application/json")):
                    # Form uploads (audio) name models too; only JSON bodies are checked.
                    raise HTTPBadRequest("Content-Type must be application/json")
                await self._model_request(principal, scope, receive, send, slot)
                return
            slot.take(tenant, 1)
            if path == "/v1/models" and scope["method"] == "GET":
                await self._list_models(principal, scope, receive, send)
                return
            if path.startswith("/v1/models/") and scope["method"] in ("GET", "HEAD"):
                await self._model_card(principal, path.removeprefix("/v1/models/"), send)
                return
            await self.app(scope, receive, send)
        except HTTPError as exc:
            await send_json(send, exc.status, exc.openai_body(), exc.headers())
            metrics.record_request(tenant, "unknown", exc.status)
        except Exception:
            if responder.started:
                raise  # mid-response: the connection is all that is left to close
            log.exception("request failed: %s %s", scope.get("method"), path)
            await send_json(send, 500, HTTPInternalServerError(
                "The server failed to handle the request").openai_body())
            metrics.record_request(tenant, "unknown", 500)
        finally:
            slot.release()

    async def _model_request(self, principal: Principal, scope: Scope, receive: Receive,
                             send: Send, slot: _Slot) -> None:
        raw = await _read_body(receive)
        try:
            body = json.loads(raw) if raw else None
        except (ValueError, UnicodeDecodeError, RecursionError):
            body = None  # let the engine produce its own validation error
        slot.take(principal.tenant_id, sequences(body))
        if not isinstance(body, dict):
            await self.app(scope, replay(raw, receive), send)
            return
        model = body.get("model")
        if model is not None and not isinstance(model, str):
            raise HTTPBadRequest("'model' must be a string")
        resolved: ResolvedModel = await asyncio.to_thread(self.access.resolve, principal, model)
        check_request(scope["path"], body)
        if self.check_sampling:
            check_sampling(body)
        if model is not None:
            body["model"] = resolved.engine_name
        call = (self.responses.prepare(principal.tenant_id, body)
                if scope["path"] == RESPONSES_PATH else None)
        calculator = wants_calculator(scope["path"], body, resolved)
        drop_usage_chunk = False
        if scope["path"] in STREAM_OPTIONS_PATHS and body.get("stream") is True:
            options = body.get("stream_options")
            if not isinstance(options, dict) or not options.get("include_usage"):
                drop_usage_chunk = True
                body["stream_options"] = {**(options if isinstance(options, dict) else {}),
                                          "include_usage": True}
        plan = None
        if calculator:
            if self.calculator is None:
                raise HTTPBadRequest("this server has no calculator decoding",
                                     param="quanta.calculator")
            plan = await self.calculator.plan(scope["path"], body)
        raw = json.dumps(body).encode()
        scope = with_body(scope, raw)
        recorder = _ResponseRecorder(send, principal.tenant_id, resolved.engine_name,
                                     drop_usage_chunk, call)
        try:
            if plan is not None:
                await self.calculator.serve(plan, self.app, scope, receive, recorder.send)
            else:
                await self.app(scope, replay(raw, receive), recorder.send)
        finally:
            recorder.finish()

    async def _model_card(self, principal: Principal, model: str, send: Send) -> None:
        """``GET /v1/models/{model}`` (OpenAI's retrieve): the base model or an adapter the
        caller may use; 404 otherwise, as for a model that does not exist."""
        adapter = await asyncio.to_thread(self.access.card, principal, model)
        card = ({"id": self.access.served_name, "object": "model", "created": 0,
                 "owned_by": "quanta"} if adapter is None else
                {"id": adapter.name, "object": "model",
                 "created": int(adapter.created_at.timestamp()), "owned_by": adapter.tenant_id})
        await send_json(send, 200, card)
        metrics.record_request(principal.tenant_id, "models", 200)

    async def _list_models(self, principal: Principal, scope: Scope, receive: Receive,
                           send: Send) -> None:
        captured: list[Message] = []

        async def capture(message: Message) -> None:
            captured.append(message)

        await self.app(scope, receive, capture)
        start = next((m for m in captured if m["type"] == "http.response.start"), None)
        body = b"".join(m.get("body", b"") for m in captured if m["type"] == "http.response.body")
        if start is None or start["status"] != 200:
            for message in captured:
                await send(message)
            return
        listing = json.loads(body)
        adapters = await asyncio.to_thread(self.access.adapters, principal)
        allowed = {self.access.served_name} | {a.name for a in adapters}
        cards = []
        for card in listing.get("data", []):
            if card.get("id") not in allowed:
                continue
            card["root"] = card["id"]  # never show server filesystem paths
            if card["id"] != self.access.served_name:
                card["owned_by"] = principal.tenant_id
            cards.append(card)
        shown = {c["id"] for c in cards}
        for adapter in adapters:
            if adapter.name not in shown:
                cards.append({"id": adapter.name, "object": "model",
                              "created": int(adapter.created_at.timestamp()),
                              "owned_by": adapter.tenant_id, "root": adapter.name,
                              "parent": self.access.served_name, "permission": []})
        listing["data"] = cards
        await send_json(send, 200, listing)
        metrics.record_request(principal.tenant_id, "models", 200)


class _Responder:
    """An ASGI ``send`` that remembers whether the response has started (an error then
    can no longer be answered with a body of its own)."""

    def __init__(self, send: Send) -> None:
        self.send, self.started = send, False

    async def __call__(self, message: Message) -> None:
        self.started = self.started or message["type"] == "http.response.start"
        await self.send(message)


class _ResponseRecorder:
    """Forwards the response in OpenAI's shape (``serve.openai_shapes``: a JSON body is
    held until complete, streamed events are rewritten one by one, error events too)
    while noting its status and token usage for the metrics. For ``POST /v1/responses``
    (``call``), the final Response is also stored for its tenant (``serve.responses``)."""

    def __init__(self, send: Send, tenant: str, model: str, drop_usage_chunk: bool,
                 call: ResponsesCall | None = None) -> None:
        self._send = send
        self.tenant, self.model = tenant, model
        self.drop_usage_chunk = drop_usage_chunk
        self.status = 500
        self.streaming = False
        self._start: Message | None = None  # a 200 JSON response's, until its body is whole
        self._json_parts: list[bytes] = []
        self._events = EventSplitter()
        self.usage: dict | None = None
        self.call = call
        self._sequence = -1  # the last Responses stream event's sequence_number
        self.started = time.perf_counter()

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
            content_type = dict(message.get("headers", [])).get(b"content-type", b"")
            self.streaming = b"text/event-stream" in content_type
            if self.status == 200 and not self.streaming and b"json" in content_type:
                self._start = message
                return
        elif message["type"] == "http.response.body":
            if self.streaming:
                message = {**message, "body": self._filter_events(message.get("body", b""),
                                                                  message.get("more_body"))}
            elif self._start is not None:
                self._json_parts.append(message.get("body", b""))
                if message.get("more_body"):
                    return
                await self._send_json()
                return
        await self._send(message)

    async def _send_json(self) -> None:
        body = b"".join(self._json_parts)
        try:
            payload = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            payload = None
        if isinstance(payload, dict):
            self.usage = payload.get("usage") if isinstance(payload.get("usage"), dict) else None
            if "choices" in payload or payload.get("object") == "response":
                payload = conform(payload)
                if self.call is not None and payload.get("object") == "response":
                    self.call.finish(self.call.shape(payload))
                body = json.dumps(payload).encode()
        start, self._start = self._start, None
        assert start is not None
        headers = [(k, v) for k, v in start.get("headers") or [] if k.lower() != b"content-length"]
        await self._send({**start, "headers": [*headers,
                                               (b"content-length", str(len(body)).encode())]})
        await self._send({"type": "http.response.body", "body": body})

    def _filter_events(self, chunk: bytes, more: bool | None) -> bytes:
        """Each complete SSE event in OpenAI's shape, noting usage; the usage-only event
        is dropped if the client did not ask for it. A partial event waits for the next
        chunk; what is left unterminated at the end goes out as it came."""
        out = [self._rewrite_event(event) for event in self._events.feed(chunk)]
        if not more:
            out.append(self._events.rest())
        return b"".join(out)

    def _rewrite_event(self, event: bytes) -> bytes:
        """One event as the client gets it (``b""``: dropped): its JSON object conformed,
        its other fields kept; events that carry none (``[DONE]``, comments, malformed
        data) pass as they came."""
        try:
            payload = event_json(event)
        except ValueError:
            payload = None
        if payload is None:
            return event + b"\n\n"
        if self.call is not None:
            return with_data(event, json.dumps(self._response_event(payload)).encode())
        usage = payload.get("usage")
        if usage:
            self.usage = usage
        if usage and not payload.get("choices") and self.drop_usage_chunk:
            return b""
        return with_data(event, json.dumps(_conform_event(payload)).encode())

    def _response_event(self, payload: dict[str, Any]) -> dict[str, Any]:
        """A Responses stream event as the client gets it; the final one's usage noted
        and its Response stored. An engine error (``{"error": ...}``) becomes OpenAI's
        ``error`` event."""
        assert self.call is not None
        if isinstance(payload.get("error"), dict):
            return error_event(payload, self._sequence + 1)
        if isinstance(payload.get("sequence_number"), int):
            self._sequence = payload["sequence_number"]
        payload = self.call.event(conform(payload))
        response = payload.get("response")
        if payload.get("type") in TERMINAL_EVENTS and isinstance(response, dict) and \
                isinstance(response.get("usage"), dict):
            self.usage = response["usage"]
        return payload

    def finish(self) -> None:
        metrics.record_request(self.tenant, self.model, self.status)
        if self.status == 200:
            metrics.record_usage(self.tenant, self.model, self.usage)


def _conform_event(payload: dict[str, Any]) -> dict[str, Any]:
    """A streamed chunk as OpenAI's, or an error event with OpenAI's error body (vLLM
    streams ``{"error": {"type": "BadRequestError", "code": 400, ...}}``)."""
    error = payload.get("error")
    if isinstance(error, dict):
        code = error.get("code")
        status = code if isinstance(code, int) and 400 <= code < 600 else 500
        return openai_error(status, json.dumps(payload).encode())
    return conform(payload)


def check_sampling(body: dict[str, Any]) -> None:
    """The range checks vLLM applies, for engines that do not (raises HTTPBadRequest)."""
    limits = {"temperature": (0.0, None), "top_p": (0.0, 1.0), "max_tokens": (1, None),
              "max_completion_tokens": (1, None), "n": (1, None)}
    for name, (low, high) in limits.items():
        value = body.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise HTTPBadRequest(f"{name} must be a number, got {value!r}", param=name)
        if value < low or (high is not None and value > high):
            bound = f"at least {low}" if high is None else f"between {low} and {high}"
            raise HTTPBadRequest(f"{name} must be {bound}, got {value}", param=name)


def _headers(scope: Scope) -> dict[str, str]:
    """Request headers by lower-case name; a second ``Authorization`` is refused (which
    one counts would differ between this check and the engine)."""
    headers: dict[str, str] = {}
    for key, value in scope["headers"]:
        name = key.decode("latin-1").lower()
        if name == "authorization" and name in headers:
            raise HTTPBadRequest("Send one Authorization header, not several")
        headers[name] = value.decode("latin-1")
    return headers


def is_json(content_type: str) -> bool:
    """``application/json`` (parameters allowed) or a ``+json`` type, parsed, not grepped."""
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (media.startswith("application/")
                                           and media.endswith("+json"))


def sequences(body: Any) -> int:
    """How many sequences a request makes the engine generate (OpenAI's ``n``; ``best_of``
    for completions), what the per-tenant limits count. Malformed values count as one:
    the engine refuses them itself."""
    if not isinstance(body, dict):
        return 1
    counts = [v for v in (body.get("n"), body.get("best_of"))
              if isinstance(v, int) and not isinstance(v, bool) and v > 1]
    return max(counts, default=1)


class _Slot:
    """The sequences one request holds in the tenant's limits, released exactly once."""

    def __init__(self, limiter: TenantLimiter) -> None:
        self.limiter = limiter
        self.tenant: str | None = None
        self.sequences = 0

    def take(self, tenant: str, sequences: int) -> None:
        self.limiter.acquire(tenant, sequences)
        self.tenant, self.sequences = tenant, sequences

    def release(self) -> None:
        if self.tenant is not None:
            self.limiter.release(self.tenant, self.sequences)
            self.tenant = None


async def _read_body(receive: Receive) -> bytes:
    parts, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        part = message.get("body", b"")
        size += len(part)
        if size > MAX_BODY_BYTES:
            raise HTTPBadRequest(f"request body larger than {MAX_BODY_BYTES} bytes")
        parts.append(part)
        if not message.get("more_body"):
            break
    return b"".join(parts)
