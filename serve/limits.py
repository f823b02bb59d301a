"""Per-tenant admission control: a concurrency cap and a token bucket, refusing with 429.

Without it one tenant's burst queues inside the engine without bound and every other
tenant's latency grows with it. Here each tenant may hold at most ``max_concurrency``
requests in flight and start at most ``rate`` requests per second (bursts up to
``burst``); anything beyond is refused at once with 429 and a ``Retry-After`` header
(OpenAI's shape: ``{"error": {"code": "rate_limit_exceeded", ...}}``), so clients back
off instead of piling up. HTTP (the middleware) and gRPC (RESOURCE_EXHAUSTED) share one
limiter. Limits are per server process: with N replicas a tenant gets N times the rate.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from serve.errors import HTTPBadRequest, HTTPTooManyRequests

if TYPE_CHECKING:
    from quanta.config import Settings
    from serve.engines.base import ServeOptions


@dataclass(frozen=True)
class TenantLimits:
    """``0`` disables a limit. ``burst`` defaults to ``max(1, ceil(rate))``."""

    max_concurrency: int = 0
    rate: float = 0.0
    burst: int = 0

    @property
    def enabled(self) -> bool:
        return self.max_concurrency > 0 or self.rate > 0

    @property
    def bucket_size(self) -> float:
        return float(self.burst) if self.burst > 0 else max(1.0, math.ceil(self.rate))


class RateLimitedError(HTTPTooManyRequests):
    """The tenant is over its concurrency cap or request rate (HTTP 429)."""


class _Bucket:
    __slots__ = ("in_flight", "stamp", "tokens")

    def __init__(self, tokens: float, stamp: float) -> None:
        self.tokens = tokens
        self.stamp = stamp
        self.in_flight = 0


class TenantLimiter:
    """Thread-safe (gRPC and HTTP handlers share it); O(1) per request."""

    def __init__(self, limits: TenantLimits,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.limits = limits
        self._clock = clock
        self._lock = threading.Lock()
        self._buckets: dict[str, _Bucket] = {}

    def acquire(self, tenant: str, sequences: int = 1) -> None:
        """Admit a request generating ``sequences`` sequences (OpenAI's ``n``) for
        ``tenant``, or raise RateLimitedError; pair with ``release(tenant, sequences)``.

        Both limits count sequences, not requests: one request with ``n=200`` is 200
        sequences in the engine. One that could never fit is a 400, not a 429.
        """
        if not self.limits.enabled:
            return
        limits = self.limits
        cap = limits.max_concurrency if limits.max_concurrency > 0 else None
        ceilings = [c for c in (cap, limits.bucket_size if limits.rate > 0 else None)
                    if c is not None]
        if sequences > min(ceilings):
            raise HTTPBadRequest(f"A request for {sequences} sequences can never be admitted: "
                                 f"tenant {tenant!r} may run at most {min(ceilings):g} at once",
                                 param="n")
        with self._lock:
            now = self._clock()
            bucket = self._buckets.get(tenant)
            if bucket is None:
                bucket = self._buckets[tenant] = _Bucket(limits.bucket_size, now)
            if cap is not None and bucket.in_flight + sequences > cap:
                raise RateLimitedError(
                    f"Rate limit reached for tenant {tenant!r}: at most {cap} sequences "
                    "in flight. Retry after the Retry-After delay.", retry_after=1)
            if limits.rate > 0:
                bucket.tokens = min(limits.bucket_size,
                                    bucket.tokens + (now - bucket.stamp) * limits.rate)
                bucket.stamp = now
                if bucket.tokens < sequences:
                    raise RateLimitedError(
                        f"Rate limit reached for tenant {tenant!r}: {limits.rate:g} "
                        "sequences per second. Retry after the Retry-After delay.",
                        retry_after=(sequences - bucket.tokens) / limits.rate)
                bucket.tokens -= sequences
            bucket.in_flight += sequences

    def release(self, tenant: str, sequences: int = 1) -> None:
        if not self.limits.enabled:
            return
        with self._lock:
            bucket = self._buckets.get(tenant)
            if bucket is not None:
                bucket.in_flight = max(0, bucket.in_flight - sequences)

    def in_flight(self, tenant: str) -> int:
        with self._lock:
            bucket = self._buckets.get(tenant)
            return bucket.in_flight if bucket else 0


def limits_for(options: ServeOptions, settings: Settings) -> TenantLimits:
    """CLI options where given, else the ``QUANTA_TENANT_*`` settings."""

    def pick(option: float | None, setting: float) -> float:
        return setting if option is None else option

    return TenantLimits(
        max_concurrency=int(pick(options.tenant_max_concurrency,
                                 settings.tenant_max_concurrency)),
        rate=float(pick(options.tenant_rate, settings.tenant_rate)),
        burst=int(pick(options.tenant_burst, settings.tenant_burst)))
