"""Quanta's Prometheus metrics, served by vLLM's own ``/metrics`` beside ``vllm:*``.

vLLM mounts ``/metrics`` on prometheus_client's default registry (or, when
``PROMETHEUS_MULTIPROC_DIR`` is set, on a multiprocess collector reading every
process's files). These metrics are plain prometheus_client counters and histograms
created in the API-server process, so they appear in both modes; vLLM's engine core
process records nothing Quanta needs. The llama.cpp engine mounts the same registry.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

REQUESTS = Counter("quanta_requests", "Requests by tenant, model and HTTP status",
                   ["tenant", "model", "status"])
TOKENS = Counter("quanta_tokens", "Tokens by tenant, model and kind (prompt or completion)",
                 ["tenant", "model", "kind"])
ADAPTER_LOADS = Counter("quanta_adapter_loads", "Adapters loaded into the engine "
                        "(first use, or again after an eviction)", ["adapter"])
ADAPTER_EVICTIONS = Counter("quanta_adapter_evictions", "Adapters evicted by the engine's LRU",
                            ["adapter"])
ADAPTER_UNLOADS = Counter("quanta_adapter_unloads", "Adapters unloaded because they were "
                          "deleted from the registry (or unloaded over gRPC)",
                          ["adapter", "reason"])
ADAPTER_RESIDENT = Gauge(
    "quanta_adapter_resident",
    "1 for the tier an adapter is in (active: in an engine slot; cpu: in the engine's "
    "memory; disk: evicted, files materialised locally), 0 for the others; set as the "
    "engine loads and evicts", ["tenant", "adapter", "tier"])
ADAPTER_PINNED = Gauge("quanta_adapter_pinned", "1 while the engine keeps the adapter pinned "
                       "in memory (quanta adapters pin)", ["tenant", "adapter"])
ADAPTER_LOAD_SECONDS = Histogram(
    "quanta_adapter_load_seconds",
    "Time from an adapter's first request to its being loaded (resolve + fetch + engine load)",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
RESOLVER_CACHE_HITS = Counter("quanta_resolver_cache_hits",
                              "Adapter loads whose files were already materialised")
RESOLVER_CACHE_MISSES = Counter("quanta_resolver_cache_misses",
                                "Adapter loads that fetched the files from the registry")


def record_request(tenant: str, model: str, status: int) -> None:
    REQUESTS.labels(tenant=tenant, model=model, status=str(status)).inc()


# The ``usage`` keys each kind is read from: completions' and Responses' names.
_USAGE_KEYS = {"prompt": ("prompt_tokens", "input_tokens"),
               "completion": ("completion_tokens", "output_tokens")}


def record_usage(tenant: str, model: str, usage: dict | None) -> None:
    """Count tokens from an OpenAI ``usage`` object, a completion's (``prompt_tokens``,
    ``completion_tokens``) or a Response's (``input_tokens``, ``output_tokens``); absent
    or partial: counts what is there."""
    if not usage:
        return
    for kind, keys in _USAGE_KEYS.items():
        value = next((usage[k] for k in keys if k in usage), None)
        if isinstance(value, int) and value > 0:
            TOKENS.labels(tenant=tenant, model=model, kind=kind).inc(value)
