"""gRPC surface (``quanta.v1.Inference``) over the engine vLLM's HTTP app already holds.

Thin by design: each call authenticates (metadata ``authorization: Bearer <key>``),
applies the same tenant rules as HTTP (``serve.access``), builds vLLM's own
``CompletionRequest``/``ChatCompletionRequest`` and hands it to vLLM's serving objects
on ``app.state`` (so sampling validation, chat templates, LoRA resolution and batching
are vLLM's; there is no second copy of the model). vLLM's error responses and
exceptions map to gRPC status codes in ``_abort``/``serve.errors.grpc_code``.
Health (``grpc.health.v1``) and reflection are the standard services.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from quanta.tenancy import Principal
from serve import metrics
from serve.access import ModelAccess, ResolvedModel
from serve.adapter_sync import AdapterSync
from serve.calculator import CalculatorRoute, Delta, calculator_decode, completion_deltas
from serve.errors import HTTPError, grpc_code
from serve.grpc_gen import inference_pb2 as pb
from serve.grpc_gen import inference_pb2_grpc as pb_grpc
from serve.limits import TenantLimiter, TenantLimits
from serve.sse import sse_payloads

logger = logging.getLogger(__name__)
SERVICE_NAME = pb.DESCRIPTOR.services_by_name["Inference"].full_name


class _Failed(Exception):
    """A call failed with an HTTP-style status (mapped to a gRPC code once, in _abort)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status

    @classmethod
    def from_event(cls, payload: Mapping[str, Any]) -> _Failed:
        """The failure an engine's streamed error event reports."""
        error = payload["error"]
        return cls(int(error.get("code") or 500), error.get("message", ""))


@dataclass
class _Call:
    """A generation in flight: who asked, for which model, the usage it reported."""

    principal: Principal
    resolved: ResolvedModel
    usage: dict[str, Any] = field(default_factory=dict)
    id: str = field(default_factory=lambda: f"cmpl-{uuid.uuid4().hex}")


class InferenceServicer(pb_grpc.InferenceServicer):
    def __init__(self, state: Any, access: ModelAccess, sync: AdapterSync,
                 limiter: TenantLimiter | None = None,
                 calculator: CalculatorRoute | None = None) -> None:
        self.state = state
        self.access = access
        self.sync = sync
        self.limiter = limiter or TenantLimiter(TenantLimits())
        self.calculator = calculator

    # -- calls -----------------------------------------------------------------------------

    async def Generate(self, request: pb.GenerateRequest,
                       context: grpc.aio.ServicerContext) -> pb.GenerateResponse:
        async with self._serving(request.model, context) as call:
            if self._calculator(request, call.resolved):
                text, finish = "", ""
                async for delta in self._calculate(request, call):
                    text += delta.text
                    finish = delta.finish_reason or finish
                return pb.GenerateResponse(id=call.id, model=call.resolved.engine_name,
                                           text=text, finish_reason=finish,
                                           usage=pb.Usage(**_usage_fields(call.usage)))
            result = await self._run(request, call.resolved, stream=False)
            choice = result.choices[0]
            text = choice.message.content if hasattr(choice, "message") else choice.text
            call.usage = result.usage.model_dump() if result.usage else {}
        return pb.GenerateResponse(id=result.id, model=result.model, text=text or "",
                                   finish_reason=choice.finish_reason or "",
                                   usage=pb.Usage(**_usage_fields(call.usage)))

    async def GenerateStream(self, request: pb.GenerateRequest,
                             context: grpc.aio.ServicerContext) -> AsyncIterator[pb.GenerateChunk]:
        async with self._serving(request.model, context) as call:
            if self._calculator(request, call.resolved):
                async for delta in self._calculate(request, call):
                    chunk = pb.GenerateChunk(id=call.id, model=call.resolved.engine_name,
                                             text=delta.text,
                                             finish_reason=delta.finish_reason or "")
                    if delta.is_end:
                        chunk.usage.CopyFrom(pb.Usage(**_usage_fields(call.usage)))
                    yield chunk
                return
            events = await self._run(request, call.resolved, stream=True)
            async for payload in sse_payloads(events):
                if "error" in payload:
                    raise _Failed.from_event(payload)
                call.usage = payload.get("usage") or call.usage
                chunk = pb.GenerateChunk(id=payload.get("id", ""), model=payload.get("model", ""))
                for choice in payload.get("choices") or []:
                    delta = choice.get("delta") or {}
                    chunk.text += delta.get("content") or choice.get("text") or ""
                    chunk.finish_reason = choice.get("finish_reason") or chunk.finish_reason
                if payload.get("usage") and not payload.get("choices"):
                    chunk.usage.CopyFrom(pb.Usage(**_usage_fields(call.usage)))
                yield chunk

    async def ListModels(self, request: pb.ListModelsRequest,
                         context: grpc.aio.ServicerContext) -> pb.ListModelsResponse:
        principal = await self._authenticate(context)
        loaded = set(self.state.openai_serving_models.lora_requests)
        models = [pb.Model(id=self.access.served_name, owned_by="system", loaded=True)]
        for adapter in await asyncio.to_thread(self.access.adapters, principal):
            models.append(pb.Model(id=adapter.name, owned_by=adapter.tenant_id,
                                   parent=self.access.served_name,
                                   loaded=adapter.name in loaded))
        return pb.ListModelsResponse(models=models)

    async def LoadAdapter(self, request: pb.AdapterRequest,
                          context: grpc.aio.ServicerContext) -> pb.AdapterResponse:
        principal, resolved = await self._admit(request.model, context)
        if resolved.is_base:
            return pb.AdapterResponse(model=resolved.engine_name, loaded=True)
        result = await self.state.openai_serving_models.resolve_lora(resolved.engine_name)
        error = getattr(result, "error", None)
        if error is not None:
            await self._abort(context, principal, resolved, error.code, error.message)
        return pb.AdapterResponse(model=resolved.engine_name, loaded=True)

    async def UnloadAdapter(self, request: pb.AdapterRequest,
                            context: grpc.aio.ServicerContext) -> pb.AdapterResponse:
        principal, resolved = await self._admit(request.model, context)
        # Only the owner unloads: a tenant it was shared with must not evict it.
        if not resolved.is_base and resolved.adapter.tenant_id == principal.tenant_id:
            await self.sync.unload(resolved.engine_name, reason="request")
        return pb.AdapterResponse(model=resolved.engine_name, loaded=resolved.is_base)

    # -- calculator decoding ---------------------------------------------------------------

    def _calculator(self, request: pb.GenerateRequest, resolved: ResolvedModel) -> bool:
        chosen = request.HasField("calculator")
        wanted = request.calculator if chosen else resolved.calculator
        if wanted and self.calculator is None:
            raise _Failed(400, "this server has no calculator decoding")
        return wanted

    async def _calculate(self, request: pb.GenerateRequest, call: _Call
                         ) -> AsyncIterator[Delta]:
        """The request through calculator decoding, each segment a vLLM completion."""
        assert self.calculator is not None
        if request.messages:
            messages = [{"role": m.role, "content": m.content} for m in request.messages]
            prompt = await asyncio.to_thread(self.calculator.prompts.render, messages)
        else:
            prompt = request.prompt
        sampling = {name: getattr(request, name) for name in ("temperature", "top_p", "seed")
                    if request.HasField(name)}
        max_tokens = request.max_tokens if request.HasField("max_tokens") else None

        async def segment(text: str, limit: int | None, stop: Sequence[str]
                          ) -> AsyncIterator[Delta]:
            fields = {"model": call.resolved.engine_name, "max_tokens": limit,
                      "stop": list(stop), **sampling}
            events = await self._run_completion(text, fields)
            async for delta in completion_deltas(sse_payloads(events), _Failed.from_event):
                yield delta

        async for delta in calculator_decode(prompt, segment, max_tokens=max_tokens,
                                             stop=list(request.stop),
                                             max_calls=self.calculator.max_calls):
            if delta.is_end:
                call.usage = {"prompt_tokens": delta.prompt_tokens or 0,
                              "completion_tokens": delta.completion_tokens or 0,
                              "total_tokens": (delta.prompt_tokens or 0)
                              + (delta.completion_tokens or 0)}
            yield delta

    async def _run_completion(self, prompt: str, fields: dict[str, Any]) -> Any:
        """One streamed vLLM completion of a raw prompt (a calculator segment)."""
        from vllm.entrypoints.openai.completion.protocol import CompletionRequest

        handler = self.state.openai_serving_completion
        return await _vllm_result(lambda: handler.create_completion(
            CompletionRequest(prompt=prompt, stream=True,
                              stream_options={"include_usage": True}, **fields), None))

    # -- helpers ---------------------------------------------------------------------------

    @asynccontextmanager
    async def _serving(self, model: str, context: grpc.aio.ServicerContext
                       ) -> AsyncIterator[_Call]:
        """One generation: admitted (tenant, model, limits), vLLM's failures aborted with
        their gRPC code, the tenant's slot released, and the request and usage counted."""
        principal, resolved = await self._admit(model, context)
        await self._acquire(principal, context)
        call = _Call(principal, resolved)
        try:
            yield call
        except _Failed as exc:
            await self._abort(context, principal, resolved, exc.status, str(exc))
        finally:
            self.limiter.release(principal.tenant_id)
        metrics.record_request(principal.tenant_id, resolved.engine_name, 200)
        metrics.record_usage(principal.tenant_id, resolved.engine_name, call.usage)

    async def _refuse(self, context: grpc.aio.ServicerContext, tenant: str,
                      exc: HTTPError) -> None:
        """Abort the call with the error's gRPC code (``retry-after`` metadata for 429)."""
        metrics.record_request(tenant, "unknown", exc.status)
        metadata = tuple((k.decode(), v.decode()) for k, v in exc.headers())
        await context.abort(grpc_code(exc.status), str(exc), trailing_metadata=metadata)

    async def _authenticate(self, context: grpc.aio.ServicerContext) -> Principal:
        metadata = dict(context.invocation_metadata() or ())
        try:
            return await asyncio.to_thread(self.access.authenticate,
                                         metadata.get("authorization"))
        except HTTPError as exc:
            await self._refuse(context, "-", exc)
            raise  # unreachable: abort raises

    async def _admit(self, model: str,
                     context: grpc.aio.ServicerContext) -> tuple[Principal, ResolvedModel]:
        principal = await self._authenticate(context)
        try:
            resolved = await asyncio.to_thread(self.access.resolve, principal, model or None)
            return principal, resolved
        except HTTPError as exc:
            await self._refuse(context, principal.tenant_id, exc)
            raise

    async def _acquire(self, principal: Principal, context: grpc.aio.ServicerContext) -> None:
        """Per-tenant admission (RESOURCE_EXHAUSTED + ``retry-after`` metadata when over)."""
        try:
            self.limiter.acquire(principal.tenant_id)
        except HTTPError as exc:
            await self._refuse(context, principal.tenant_id, exc)
            raise

    async def _abort(self, context: grpc.aio.ServicerContext, principal: Principal,
                     resolved: ResolvedModel, status: int, message: str) -> None:
        metrics.record_request(principal.tenant_id, resolved.engine_name, status)
        await context.abort(grpc_code(status), message)

    async def _run(self, request: pb.GenerateRequest, resolved: ResolvedModel,
                   stream: bool) -> Any:
        """Build vLLM's request and call its serving object; raise _Failed on errors."""

        fields: dict[str, Any] = {"model": resolved.engine_name, "stream": stream}
        for name in ("max_tokens", "temperature", "top_p", "seed"):
            if request.HasField(name):
                fields[name] = getattr(request, name)
        if request.stop:
            fields["stop"] = list(request.stop)
        if stream:
            fields["stream_options"] = {"include_usage": True}
        if request.messages:
            from vllm.entrypoints.openai.chat_completion.protocol import ChatCompletionRequest

            chat = self.state.openai_serving_chat
            messages = [{"role": m.role, "content": m.content} for m in request.messages]
            return await _vllm_result(lambda: chat.create_chat_completion(
                ChatCompletionRequest(messages=messages, **fields), None))
        from vllm.entrypoints.openai.completion.protocol import CompletionRequest

        completion = self.state.openai_serving_completion
        return await _vllm_result(lambda: completion.create_completion(
            CompletionRequest(prompt=request.prompt, **fields), None))


async def _vllm_result(call: Callable[[], Awaitable[Any]]) -> Any:
    """Build and await one of vLLM's serving calls; its errors, raised (validation, typed
    engine errors, mapped as vLLM's HTTP layer maps them) or returned, become _Failed."""
    from pydantic import ValidationError
    from vllm.entrypoints.serve.exception_handling.error_response import (
        create_error_response,
    )

    try:
        result = await call()
    except ValidationError as exc:
        raise _Failed(400, _validation_message(exc)) from None
    except Exception as exc:
        error = create_error_response(exc).error
        raise _Failed(error.code, error.message) from None
    error = getattr(result, "error", None)
    if error is not None:
        raise _Failed(error.code, error.message)
    return result


def _validation_message(exc: Any) -> str:
    errors = exc.errors()
    if not errors:
        return str(exc)
    first = errors[0]
    where = ".".join(str(p) for p in first.get("loc", ()))
    return f"{where}: {first.get('msg')}" if where else str(first.get("msg"))


def _usage_fields(usage: dict) -> dict[str, int]:
    return {k: int(usage.get(k) or 0)
            for k in ("prompt_tokens", "completion_tokens", "total_tokens")}


async def start_grpc_server(state: Any, access: ModelAccess, sync: AdapterSync, host: str,
                            port: int, limiter: TenantLimiter | None = None,
                            calculator: CalculatorRoute | None = None) -> grpc.aio.Server:
    """Start the gRPC server (Inference, health, reflection) on the running event loop."""
    server = grpc.aio.server()
    pb_grpc.add_InferenceServicer_to_server(
        InferenceServicer(state, access, sync, limiter, calculator), server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        (SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME), server)
    bound = server.add_insecure_port(f"{host}:{port}")
    if bound == 0:
        raise OSError(f"cannot bind gRPC port {host}:{port}")
    await server.start()
    for name in ("", SERVICE_NAME):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    logger.info("gRPC serving %s on %s:%s", SERVICE_NAME, host, bound)
    return server
