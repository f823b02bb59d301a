"""``quanta serve``: start an inference server over the registry's models and adapters."""

from __future__ import annotations

from typing import Annotated

import typer

from quanta.catalog import DEFAULT_MODEL_ID
from quanta.types import ComputeDtype, ExportFormat


def register(app: typer.Typer) -> None:
    """Mount ``quanta serve`` on the main CLI."""
    app.command("serve", context_settings={"allow_extra_args": True,
                                           "ignore_unknown_options": True})(serve)


def serve(
    ctx: typer.Context,
    engine: Annotated[str, typer.Option(help="vllm (GPU or CPU build) or llama-cpp "
                                             "(GGUF exports, for laptops)")] = "vllm",
    model: Annotated[str, typer.Option(help="Registry id of the base model, also the "
                                            "served model name")] = DEFAULT_MODEL_ID,
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="HTTP port (OpenAI API, /metrics)")] = 8000,
    grpc_port: Annotated[int, typer.Option(help="gRPC port; 0 disables gRPC")] = 50051,
    max_loras: Annotated[int, typer.Option(help="Adapters active in one batch")] = 8,
    max_cpu_loras: Annotated[int | None, typer.Option(
        help="Adapters kept in memory (LRU), pinned ones included; default twice max-loras")
    ] = None,
    max_lora_rank: Annotated[int | None, typer.Option(
        help="Largest LoRA rank loaded (default QUANTA_SERVE_MAX_LORA_RANK or 16)")] = None,
    max_model_len: Annotated[int, typer.Option(help="Context length served")] = 2048,
    kv_cache_gib: Annotated[float, typer.Option(help="KV cache size (CPU)")] = 1.0,
    gguf_format: Annotated[str, typer.Option(help="llama-cpp: which GGUF export of the base "
                                                  "model to serve")] = ExportFormat.GGUF_Q4_K_M,
    dtype: Annotated[ComputeDtype, typer.Option(
        help="vllm: compute dtype; auto = bf16 only where the CPU/GPU computes it natively, "
             "else fp32 on CPU (default QUANTA_COMPUTE_DTYPE or auto)")] = ComputeDtype.AUTO,
    tenant_max_concurrency: Annotated[int | None, typer.Option(
        help="Requests one tenant may have in flight; more get 429 (0: unlimited; default "
             "QUANTA_TENANT_MAX_CONCURRENCY or 64)")] = None,
    tenant_rate: Annotated[float | None, typer.Option(
        help="Requests per second per tenant (token bucket); more get 429 with "
             "Retry-After (0: unlimited, the default)")] = None,
    tenant_burst: Annotated[int | None, typer.Option(
        help="Token-bucket size for --tenant-rate (default: ceil(rate))")] = None,
    public_url: Annotated[str | None, typer.Option(
        help="The URL clients reach this server at, recorded in the registry for the tune "
             "API, the console and other bases' servers (default QUANTA_SERVE_PUBLIC_URL, "
             "else http://<host>:<port>): set it behind a gateway or Service")] = None,
    public_grpc: Annotated[str | None, typer.Option(
        help="The gRPC host:port clients use, likewise (default QUANTA_SERVE_PUBLIC_GRPC, "
             "else <host>:<grpc-port>)")] = None,
) -> None:
    """Serve the base model and every tenant's adapters (OpenAI HTTP, gRPC, /metrics).

    Extra arguments after the options are passed to the engine verbatim.
    """
    from quanta.config import get_settings
    from quanta.tenancy import check_bind
    from serve.engines import ServeOptions, get_engine

    check_bind(get_settings(), host)

    options = ServeOptions(model=model, host=host, port=port,
                           grpc_port=grpc_port or None, max_loras=max_loras,
                           max_cpu_loras=max_cpu_loras,
                           max_lora_rank=max_lora_rank or get_settings().serve_max_lora_rank,
                           max_model_len=max_model_len, kv_cache_gib=kv_cache_gib,
                           gguf_format=gguf_format, dtype=dtype,
                           tenant_max_concurrency=tenant_max_concurrency,
                           tenant_rate=tenant_rate, tenant_burst=tenant_burst,
                           public_url=public_url, public_grpc=public_grpc,
                           extra_args=list(ctx.args))
    get_engine(engine).run(options)
