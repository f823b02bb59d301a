"""The engine interface: what ``quanta serve`` needs from a serving backend.

Each engine runs an OpenAI-compatible HTTP server in the foreground with Quanta's
middleware (auth, tenancy, metrics) in front; vLLM also serves gRPC. Options are
one dataclass so the CLI, tests and the benchmark build them the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from quanta.models import DEFAULT_MODEL_ID
from quanta.types import ComputeDtype, ExportFormat


@dataclass
class ServeOptions:
    """Options for ``quanta serve``; engines ignore what does not apply to them."""

    model: str = DEFAULT_MODEL_ID
    host: str = "127.0.0.1"
    port: int = 8000
    grpc_port: int | None = 50051  # None: no gRPC server
    max_loras: int = 8
    max_cpu_loras: int | None = None  # None: twice max_loras (room for pins, see cpu_loras)
    max_lora_rank: int = 16
    max_model_len: int = 2048
    kv_cache_gib: float = 1.0
    gguf_format: str = ExportFormat.GGUF_Q4_K_M  # the base model's GGUF export to serve
    # vLLM's compute dtype; "auto": quanta.precision's rule (bf16 only where native).
    dtype: ComputeDtype = ComputeDtype.AUTO
    sync_interval: float = 2.0
    # Per-tenant limits (serve.limits); None: the QUANTA_TENANT_* settings.
    tenant_max_concurrency: int | None = None
    tenant_rate: float | None = None
    tenant_burst: int | None = None
    # Where clients reach this server, as it records itself in the registry (None: the
    # QUANTA_SERVE_PUBLIC_URL / _GRPC settings, else the host and ports above).
    public_url: str | None = None
    public_grpc: str | None = None
    extra_args: list[str] = field(default_factory=list)  # passed to the engine verbatim

    @property
    def cpu_loras(self) -> int:
        """Adapters the engine keeps in memory (``--max-cpu-loras``)."""
        return self.max_cpu_loras if self.max_cpu_loras is not None else 2 * self.max_loras

    @property
    def max_pins(self) -> int:
        """Pinned adapters this server honours: a full batch of unpinned ones must still
        fit in memory beside them, or the engine would evict one the batch uses."""
        return max(0, self.cpu_loras - self.max_loras)


class Engine(Protocol):
    name: str

    def run(self, options: ServeOptions) -> None:
        """Serve until interrupted (SIGINT/SIGTERM)."""
        ...
