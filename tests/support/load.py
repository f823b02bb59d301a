"""Load on an OpenAI-compatible server over loopback: throughput, latency, server memory.

``throughput`` is what the serving benchmarks measure (output tokens/s of concurrent
streamed completions, after a warm-up round); ``run_load`` keeps N clients busy for a
fixed time over chosen tenants' models and counts every non-200 as an error. Every
latency percentile here is ``percentile``'s (numpy's default, linear interpolation).
"""

from __future__ import annotations

import asyncio
import collections
import math
import statistics
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import httpx
from httpx_sse import EventSource

from quanta.models import DEFAULT_MODEL_ID

PROMPT = "Explain, step by step, why a heavier object does not fall faster in a vacuum."
CHAT = [{"role": "user", "content": "State Newton's second law."}]
CONCURRENCY = 16


async def one_request(client: httpx.AsyncClient, url: str, headers: dict, model: str,
                      max_tokens: int) -> tuple[float, int]:
    """Stream one completion; returns (time to first token, completion tokens)."""
    body = {"model": model, "prompt": PROMPT, "max_tokens": max_tokens, "temperature": 0,
            "ignore_eos": True, "stream": True, "stream_options": {"include_usage": True}}
    started = time.perf_counter()
    ttft, tokens = None, 0
    async with client.stream("POST", f"{url}/v1/completions", json=body,
                             headers=headers) as response:
        response.raise_for_status()
        async for event in EventSource(response).aiter_sse():
            if not event.data.startswith("{"):
                continue  # [DONE]: read on to the body's end, so the connection is reused
            payload = event.json()
            if ttft is None and any(c.get("text") for c in payload.get("choices") or []):
                ttft = time.perf_counter() - started
            if payload.get("usage"):
                tokens = payload["usage"].get("completion_tokens", tokens)
    return (ttft if ttft is not None else time.perf_counter() - started), tokens


@dataclass(frozen=True)
class Throughput:
    tokens_per_s: float
    ttfts: list[float]  # seconds, every measured request

    def ttft_ms(self, q: float) -> float:
        """The q-th percentile time to first token, in milliseconds."""
        return percentile(self.ttfts, q) * 1000


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (``q`` from 0 to 100) of ``values``; NaN if there are none.

    The one convention of Quanta's benchmarks and tests: linear interpolation between the
    closest ranks, numpy's default (``numpy.percentile(values, q)``, Hyndman and Fan's
    type 7, ``statistics.quantiles(method="inclusive")``): the value at fractional index
    ``q / 100 * (n - 1)`` of the sorted values, so p0 is the minimum, p100 the maximum
    and p50 the median.
    """
    ordered = sorted(values)
    if not ordered:
        return math.nan
    position = min(max(q, 0.0), 100.0) / 100 * (len(ordered) - 1)
    below = math.floor(position)
    above = min(below + 1, len(ordered) - 1)
    return ordered[below] + (ordered[above] - ordered[below]) * (position - below)


async def measure(url: str, headers: dict, models: list[str], max_tokens: int,
               rounds: int = 2) -> Throughput:
    """``CONCURRENCY`` concurrent requests per round, round-robin over ``models`` across
    rounds (with more models than requests, each round names the next ones)."""
    async with httpx.AsyncClient(timeout=600) as client:
        # Warm-up round: loads the first adapters, fills caches; not counted.
        await asyncio.gather(*(one_request(client, url, headers, models[i % len(models)], 8)
                               for i in range(CONCURRENCY)))
        total_tokens, total_time, ttfts = 0, 0.0, []
        for r in range(rounds):
            started = time.perf_counter()
            results = await asyncio.gather(*(
                one_request(client, url, headers,
                            models[(r * CONCURRENCY + i) % len(models)], max_tokens)
                for i in range(CONCURRENCY)))
            total_time += time.perf_counter() - started
            total_tokens += sum(tokens for _, tokens in results)
            ttfts += [ttft for ttft, _ in results]
    return Throughput(total_tokens / total_time, ttfts)


async def throughput(url: str, headers: dict, models: list[str], max_tokens: int,
                     rounds: int = 2) -> float:
    """Output tokens/s for ``CONCURRENCY`` concurrent requests cycling over ``models``."""
    return (await measure(url, headers, models, max_tokens, rounds)).tokens_per_s


class PeakRSS(threading.Thread):
    """Samples the RSS of a process and all its descendants; ``peak`` in bytes."""

    def __init__(self, pid: int, interval: float = 0.25) -> None:
        super().__init__(daemon=True)
        self.pid, self.interval = pid, interval
        self.peak = 0
        self._stop_event = threading.Event()

    def sample(self) -> int:
        import psutil

        try:
            root = psutil.Process(self.pid)
            procs = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return 0
        total = 0
        for proc in procs:
            try:
                total += proc.memory_info().rss
            except psutil.NoSuchProcess:
                continue
        return total

    def run(self) -> None:
        while not self._stop_event.is_set():
            self.peak = max(self.peak, self.sample())
            self._stop_event.wait(self.interval)

    def stop(self) -> int:
        self._stop_event.set()
        self.join(timeout=5)
        return self.peak


@dataclass
class LoadResult:
    clients: int
    duration: float
    latencies: list[float] = field(default_factory=list)
    errors: collections.Counter = field(default_factory=collections.Counter)
    completion_tokens: int = 0
    peak_rss: int = 0
    idle_rss: int = 0

    @property
    def requests(self) -> int:
        return len(self.latencies) + sum(self.errors.values())

    def latency_s(self, q: float) -> float:
        """The q-th percentile (0 to 100) latency of the successful requests, in seconds."""
        return percentile(self.latencies, q)

    def summary(self) -> dict:
        return {
            "clients": self.clients, "duration_s": round(self.duration, 1),
            "requests": self.requests, "ok": len(self.latencies),
            "errors": dict(self.errors), "5xx": sum(n for k, n in self.errors.items()
                                                    if str(k).startswith("5")),
            "throughput_rps": round(len(self.latencies) / self.duration, 2),
            "output_tokens_per_s": round(self.completion_tokens / self.duration, 1),
            "latency_p50_s": round(self.latency_s(50), 3),
            "latency_p99_s": round(self.latency_s(99), 3),
            "latency_mean_s": round(statistics.fmean(self.latencies), 3)
            if self.latencies else None,
            "server_rss_idle_mib": round(self.idle_rss / 2**20),
            "server_rss_peak_mib": round(self.peak_rss / 2**20),
        }


async def run_load(url: str, keys: dict[str, str], adapters: dict[str, list[str]], *,
                   clients: int, duration: float, max_tokens: int = 16,
                   server_pid: int | None = None, request_timeout: float = 300) -> LoadResult:
    """``clients`` concurrent loops for ``duration`` seconds; client i acts as tenant
    ``i % len(keys)`` and cycles over the base model and that tenant's adapters."""
    assert url.startswith("http://127.0.0.1"), "loopback only"
    tenants = sorted(keys)
    result = LoadResult(clients, duration)
    sampler = PeakRSS(server_pid) if server_pid else None
    if sampler:
        result.idle_rss = sampler.sample()
        sampler.start()
    limits = httpx.Limits(max_connections=clients + 8, max_keepalive_connections=clients + 8)
    deadline = time.monotonic() + duration

    async def client_loop(i: int, http: httpx.AsyncClient) -> None:
        tenant = tenants[i % len(tenants)]
        models = [DEFAULT_MODEL_ID, *adapters.get(tenant, [])]
        headers = {"Authorization": f"Bearer {keys[tenant]}"}
        n = i
        while time.monotonic() < deadline:
            model = models[n % len(models)]
            n += 1
            body = {"model": model, "messages": CHAT, "max_tokens": max_tokens,
                    "temperature": 0, "ignore_eos": True}
            started = time.perf_counter()
            try:
                response = await http.post(f"{url}/v1/chat/completions", json=body,
                                           headers=headers)
            except httpx.HTTPError as exc:
                result.errors[type(exc).__name__] += 1
                continue
            if response.status_code == 200:
                result.latencies.append(time.perf_counter() - started)
                usage = response.json().get("usage") or {}
                result.completion_tokens += int(usage.get("completion_tokens") or 0)
            else:
                result.errors[str(response.status_code)] += 1

    started = time.monotonic()
    async with httpx.AsyncClient(limits=limits, timeout=request_timeout) as http:
        await asyncio.gather(*(client_loop(i, http) for i in range(clients)))
    result.duration = time.monotonic() - started
    if sampler:
        result.peak_rss = sampler.stop()
    return result
