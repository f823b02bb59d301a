"""The laptop engine: llama-cpp-python's own OpenAI server over the registry's GGUF exports.

``quanta serve --engine llama-cpp`` serves the base model's GGUF export
(``--gguf-format``, e.g. ``gguf-q4_k_m``) and, beside it, every adapter of that base
that has a LoRA GGUF export (an export row with ``adapter_id`` set and format
``gguf-lora``), each under its ``ft:`` name (an export marked degraded only when the
adapter has no other). An adapter export in another
GGUF format is taken to be a merged model and served as its own model file. The model
list is fixed at start (llama.cpp has no runtime LoRA loading in its server), and
llama-cpp-python swaps the loaded model when a request names another one.

The same tenancy middleware and ``quanta_*`` metrics wrap the app (``/metrics``);
there is no gRPC on this engine. llama-cpp-python falls back to the default model for
an unknown name, so the middleware only admits names in the configured list. The server
records itself in the registry's serve endpoints for the app's lifespan
(``serve.endpoint``).
"""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from quanta.precision import detect
from quanta.registry import NotFoundError, Registry
from quanta.types import ComputeDtype, ExportFormat, is_gguf_format
from serve.endpoint import EndpointAnnouncer, endpoint_address
from serve.engines import register_engine
from serve.engines.base import ServeOptions
from serve.registry import get_registry

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class GGUFModel:
    """One entry of llama-cpp-python's multi-model config."""

    alias: str
    model_path: Path
    lora_path: Path | None = None


def gguf_models(registry: Registry, base_model_id: str, gguf_format: str) -> list[GGUFModel]:
    """The base GGUF first, then one entry per adapter with a GGUF export."""
    base = registry.find_export(base_model_id=base_model_id, format=gguf_format)
    if base is None:
        raise NotFoundError(
            f"no {gguf_format} export of {base_model_id} in the registry: export it first "
            "(quanta's quantize service), or pick another --gguf-format")
    base_path = registry.blob_path(base.sha256, ".gguf")
    models = [GGUFModel(base_model_id, base_path)]
    adapters = {a.id: a for a in registry.adapters_of_base(base_model_id)}
    # An export marked degraded (it lost held-out accuracy against its adapter,
    # quantize.accuracy) is served only when the adapter has no other GGUF export.
    exports = sorted(registry.list_exports(),
                     key=lambda e: bool((e.metrics or {}).get("degraded")))
    for export in exports:
        adapter = adapters.get(export.adapter_id or "")
        if adapter is None or not is_gguf_format(export.format):
            continue
        if any(m.alias == adapter.name for m in models):
            continue
        path = registry.blob_path(export.sha256, ".gguf")
        if export.format == ExportFormat.GGUF_LORA:
            models.append(GGUFModel(adapter.name, base_path, lora_path=path))
        else:
            models.append(GGUFModel(adapter.name, path))
    return models


def build_app(registry: Registry, options: ServeOptions, base_model_id: str):
    """llama-cpp-python's FastAPI app with Quanta's middleware, /health and /metrics."""
    from llama_cpp.server.app import create_app
    from llama_cpp.server.settings import ModelSettings, ServerSettings
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
    from starlette.responses import Response

    from serve.access import ModelAccess
    from serve.calculator import CalculatorRoute, ChatPrompts
    from serve.limits import TenantLimiter, limits_for
    from serve.middleware import TenancyMiddleware

    models = gguf_models(registry, base_model_id, options.gguf_format)
    threads = max(1, (os.cpu_count() or 2))
    settings = [ModelSettings(model=str(m.model_path), model_alias=m.alias,
                              lora_path=str(m.lora_path) if m.lora_path else None,
                              n_ctx=options.max_model_len, n_threads=threads,
                              n_threads_batch=threads, verbose=False)
                for m in models]
    app = create_app(server_settings=ServerSettings(host=options.host, port=options.port),
                     model_settings=settings)
    names = {m.alias for m in models}
    access = ModelAccess(registry, base_model_id, base_model_id, available=lambda: names)
    limiter = TenantLimiter(limits_for(options, registry.settings))
    calculator = CalculatorRoute(
        ChatPrompts(registry.materialize(registry.get_base_model(base_model_id).sha256)),
        registry.settings.calculator_max_calls)
    app.add_middleware(TenancyMiddleware, access=access, check_sampling=True, limiter=limiter,
                       calculator=calculator)

    @app.get("/health")
    def health() -> Response:
        return Response(status_code=200)

    @app.get("/metrics")
    def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return app


@register_engine("llama-cpp")
class LlamaCppEngine:
    name = "llama-cpp"

    def run(self, options: ServeOptions) -> None:
        import uvicorn

        if options.dtype is not ComputeDtype.AUTO:
            raise ValueError("--dtype applies to the vllm engine: llama.cpp computes in the "
                             "GGUF export's own types (choose them with --gguf-format)")
        capability = detect().describe()
        print(f"quanta serve: llama.cpp for {options.model} ({options.gguf_format}, computed "
              f"in the GGUF's own types; {capability})", file=sys.stderr, flush=True)
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # ~10x faster on busy cores
        registry = get_registry()
        registry.get_base_model(options.model)
        app = build_app(registry, options, options.model)
        if options.grpc_port is not None:
            logger.info("gRPC is served by the vllm engine only; ignoring --grpc-port")
        announcer = EndpointAnnouncer(registry, base_model_id=options.model, engine=self.name,
                                      address=endpoint_address(options, registry.settings,
                                                               grpc=False))
        uvicorn.run(announcer.lifespan(app), host=options.host, port=options.port,
                    log_level="info")
