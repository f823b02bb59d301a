"""tests.support.load: the one percentile convention of the benchmarks and load tests."""

from __future__ import annotations

import asyncio
import json
import math

import httpx
import numpy as np
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import StreamingResponse
from starlette.routing import Route

from tests.support.load import LoadResult, Throughput, one_request, percentile

SAMPLES = [[5.0], [3.0, 1.0], [0.4, 0.1, 0.9, 0.2, 0.3], [float(v) for v in range(17, 0, -2)]]


@pytest.mark.parametrize("values", SAMPLES)
@pytest.mark.parametrize("q", [0, 1, 25, 50, 90, 99, 100])
def test_percentile_is_numpys_linear(values: list[float], q: float) -> None:
    assert percentile(values, q) == pytest.approx(float(np.percentile(values, q)))


def test_percentile_of_nothing_is_nan() -> None:
    assert math.isnan(percentile([], 50))


def test_load_result_and_throughput_use_it() -> None:
    latencies = [0.4, 0.1, 0.9, 0.2, 0.3]
    result = LoadResult(clients=1, duration=1.0, latencies=latencies)
    summary = result.summary()
    assert summary["latency_p50_s"] == 0.3
    assert summary["latency_p99_s"] == round(percentile(latencies, 99), 3)
    assert Throughput(1.0, latencies).ttft_ms(50) == pytest.approx(300)
    assert math.isnan(LoadResult(clients=1, duration=1.0).latency_s(50))


def test_one_request_reads_the_stream_with_httpx_sse() -> None:
    async def completions(request: Request) -> StreamingResponse:
        async def events():
            yield 'data: {"choices": [{"text": ""}]}\n\n'
            yield 'data: {"choices": [{"text": "hi"}]}\n\ndata: {"choi'  # split event
            yield 'ces": [], "usage": {"completion_tokens": 2}}\n\n'
            yield "data: [DONE]\n\n"

        assert json.loads(await request.body())["stream"] is True
        return StreamingResponse(events(), media_type="text/event-stream")

    app = Starlette(routes=[Route("/v1/completions", completions, methods=["POST"])])

    async def run() -> tuple[float, int]:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app)) as client:
            return await one_request(client, "http://test", {}, "m", 2)

    ttft, tokens = asyncio.run(run())
    assert tokens == 2 and ttft >= 0
