"""Settings for every Quanta service, read once from the environment (prefix ``QUANTA_``)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from quanta.calculator import MAX_CALLS
from quanta.types import ComputeDtype, LoRAOps

# QUANTA_LORA_RESOLVER's value with which vLLM's processes register the registry resolver.
REGISTRY_LORA_RESOLVER = "registry"


class Settings(BaseSettings):
    """Where the registry lives and how services reach it.

    The embedded default keeps everything under ``QUANTA_HOME``: a SQLite database
    and a directory of content-addressed blobs. A multi-node deployment sets
    ``QUANTA_DATABASE_URL`` (PostgreSQL) and ``QUANTA_STORE_URL`` (``s3://bucket/prefix``).
    """

    model_config = SettingsConfigDict(env_prefix="QUANTA_", extra="ignore")

    home: Path = Field(default=Path("./quanta-data"))
    database_url: str | None = None
    store_url: str | None = None
    s3_endpoint_url: str | None = None
    default_tenant: str = "local"
    # Localhost single-user mode: requests without an API key act as the default tenant.
    allow_anonymous: bool = True
    max_upload_bytes: int = 512 * 1024 * 1024  # one request (a file, or an upload's part)
    max_json_bytes: int = 2 * 1024 * 1024  # one JSON request body (then 413)
    max_upload_total_bytes: int = 8 * 1024**3  # a file sent in parts (OpenAI's 8 GB)
    # verify/gc sweep a temporary file or staging directory of this host once its writer
    # has died; another host's, and orphan blobs, once older than this (seconds).
    sweep_grace: float = 3600.0
    # /metrics of tune and serve: when set, scrapers must send "Authorization: Bearer
    # <token>" (Prometheus: authorization.credentials); unset, /metrics is open, as a
    # loopback default. Metrics name tenants and adapters.
    metrics_token: str | None = None
    # serve: per-tenant admission control (0 disables); beyond it requests get 429.
    tenant_max_concurrency: int = 64
    tenant_rate: float = 0.0  # requests per second
    tenant_burst: int = 0  # token-bucket size; 0: ceil(rate)
    # Compute dtype for training, evaluation, exports and serving; "auto": chosen per
    # device by quanta.precision (bf16 only where the hardware computes it natively).
    compute_dtype: ComputeDtype = ComputeDtype.AUTO
    # Machine-wide cache outside any registry: built wheels, llama.cpp's converters, the
    # precision probe (the same QUANTA_CACHE that scripts/setup.sh fills).
    cache: Path = Field(default=Path("~/.cache/quanta"))
    # quantize: the GPTQ environment (gptqmodel pins numpy 2.2.6, so it has its own venv;
    # default: .venv-gptq beside the running interpreter's venv) and llama.cpp's converters
    # (default: extracted from the llama-cpp-python sdist under the cache).
    gptq_venv: Path | None = None
    llama_cpp_sdist: Path | None = None
    llama_cpp_tools: Path | None = None
    # tune: graders. Python graders run under bubblewrap, each run under its own identity
    # with these limits (no network, no registry, no environment); score_model graders ask
    # an OpenAI-compatible endpoint (by default a local `quanta serve`) with this key.
    grader_python: Path | None = None  # default: the system python3 under /usr
    grader_timeout: float = 10.0  # wall-clock seconds per sample
    grader_cpu_seconds: int = 5
    grader_memory_mb: int = 512
    # The API's grader runs (/graders/run, /validate): processes apart from the API, at
    # most this many at once, this many per tenant (then 429), each within a time and
    # memory budget.
    grader_workers: int = 4
    grader_tenant_concurrency: int = 2
    grader_run_seconds: float = 60.0
    grader_run_memory_mb: int = 1024
    grader_model_url: str = "http://127.0.0.1:8000/v1"
    grader_api_key: str | None = None
    # tune: distributed jobs (torchrun). The address other nodes reach this worker's c10d
    # rendezvous on (default: this host's name), how long the nodes may take to join, and
    # how many times a failed rank restarts all ranks from the last checkpoint.
    tune_rendezvous_host: str | None = None
    tune_rendezvous_timeout: float = 600.0
    tune_max_restarts: int = 3
    # `quanta tune worker --dispatch kubernetes`: the namespace its TrainJobs go to.
    tune_namespace: str = "quanta"
    # tune: experiment tracking. The MLflow servers jobs may log to (comma-separated
    # hosts or host:port; none set: mlflow integrations are refused), and the W&B
    # entities they may name (none set: only the worker key's default entity). A job
    # names a URL; the worker would send it requests (and MLflow the worker's
    # MLFLOW_TRACKING_* credentials), so only servers the operator allows are reached.
    tracking_mlflow_hosts: str = ""
    tracking_wandb_entities: str = ""
    # tune: eval runs and batches are answered by `quanta tune runner`, a client of serve:
    # it asks the server its registry records for the model's base, else this URL (serve's
    # OpenAI base, e.g. http://127.0.0.1:8000), with at most this many requests in flight
    # per run or batch. Eval runs' report_url points into the console at console_url.
    serve_url: str | None = None
    eval_concurrency: int = Field(default=8, ge=1, le=64)
    batch_concurrency: int = Field(default=8, ge=1, le=64)
    console_url: str = "http://127.0.0.1:8200/console"
    # serve: calculator decoding evaluates at most this many calculations per request.
    calculator_max_calls: int = MAX_CALLS
    # serve: stored Responses (POST /v1/responses, `store` defaults to true) are kept in
    # the server's memory: per tenant, its own oldest dropped beyond this many or this much
    # JSON (0: none kept); in all, the largest tenant's oldest dropped beyond total_mib.
    responses_store_max: int = Field(default=1000, ge=0)
    responses_store_max_mib: int = Field(default=64, ge=1)
    responses_store_total_mib: int = Field(default=256, ge=1)
    # The largest LoRA rank the servers load (`quanta serve --max-lora-rank` defaults to
    # it); tune refuses a job whose adapter would be larger, before training it.
    serve_max_lora_rank: int = 16
    # serve: set by `quanta serve` for vLLM's processes (its plugins read them there).
    lora_resolver: str | None = None  # "registry": the registry LoRA resolver is active
    lora_ops: LoRAOps = LoRAOps.QUANTA  # serve on CPU: the LoRA ops vLLM's engine runs
    # Pinned adapters per tenant and base model: a server's pins are shared by all tenants.
    max_pins_per_tenant: int = Field(default=2, ge=0)
    serve_base_model: str | None = None  # the registry id of the base model being served
    # serve: where clients reach this server, as it records itself in the registry for the
    # tune API, the console and other bases' servers (default: http://<host>:<port> of
    # `quanta serve`, this machine's name for a wildcard host); set them behind a gateway
    # or a Kubernetes Service. The gRPC address likewise (host:port).
    serve_public_url: str | None = None
    serve_public_grpc: str | None = None
    # Seconds after which a server's registry row that was not refreshed counts as gone (a
    # killed server stops being advertised); each server refreshes it every third of this.
    serve_endpoint_ttl: float = Field(default=90.0, gt=0)

    @property
    def resolved_home(self) -> Path:
        return self.home.expanduser().resolve()

    @property
    def resolved_cache(self) -> Path:
        return self.cache.expanduser()

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.resolved_home / 'registry.db'}"

    @property
    def resolved_store_url(self) -> str:
        return self.store_url or f"file://{self.resolved_home / 'blobs'}"

    def as_env(self) -> dict[str, str]:
        """These settings as ``QUANTA_*`` variables, for a child process that must open
        the same registry with the same limits (a settings object built in code, as tests
        do, is not in the environment the child inherits)."""
        return {f"QUANTA_{name.upper()}": str(value)
                for name, value in self.model_dump(mode="json").items() if value is not None}

    @property
    def cache_dir(self) -> Path:
        """Local directory where artifacts are materialised for engines that need paths."""
        return self.resolved_home / "cache"


@lru_cache
def get_settings() -> Settings:
    return Settings()


def reset_settings() -> None:
    """Forget cached settings (tests change ``QUANTA_*`` variables between cases)."""
    get_settings.cache_clear()
