"""End to end: ``quanta serve --engine llama-cpp`` over GGUF exports in the registry.

The base GGUF is the bundled SmolLM2 Q4_1 file (registered as a ``gguf-q4_1`` export);
the adapter is converted to a LoRA GGUF with llama.cpp's converter (skipped when the
converter is not on this machine). Same middleware, so the same auth/tenancy rules.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from quanta.config import Settings
from quanta.models import DEFAULT_MODEL_ID, bundled_gguf_path, import_model
from quanta.registry import Registry
from quanta.tenancy import create_key, create_tenant
from quantize.errors import ToolMissingError
from tests.support.fixtures import make_adapter
from tests.support.servers import start_base_serve
from tune.plan import checkpoint_name
from tune.train.checkpoints import checkpoint_config

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]
pytest.importorskip("llama_cpp.server.app", reason="llama-cpp-python[server] not installed")

BASE = DEFAULT_MODEL_ID
CHAT = [{"role": "user", "content": "Explain Newton's second law in one sentence."}]


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory: pytest.TempPathFactory,
                 base_model_dir: Path) -> Iterator[dict]:
    from quantize.gguf import convert_lora
    from quantize.llama_cpp_tools import ensure_tools

    try:
        ensure_tools()
    except ToolMissingError as exc:
        pytest.skip(f"llama.cpp's convert_lora_to_gguf.py is not available: {exc}")
    home = tmp_path_factory.mktemp("llama-home")
    registry = Registry.open(Settings(home=home, allow_anonymous=False))
    import_model(registry, base_model_dir, BASE)
    registry.add_export(base_model_id=BASE, format="gguf-q4_1", path=bundled_gguf_path())
    keys = {}
    for tenant in ("acme", "globex"):
        create_tenant(registry, tenant)
        keys[tenant] = create_key(registry, tenant)[1]
    adapter_dir = make_adapter(base_model_dir, home / "adapter", seed=1)
    adapter = registry.add_adapter("acme", BASE, adapter_dir, suffix="phys", alias="physics")
    lora = convert_lora(adapter_dir, base_model_dir, home / "adapter.gguf")
    registry.add_export(base_model_id=BASE, format="gguf-lora", path=lora,
                        adapter_id=adapter.id, tenant_id="acme")
    no_export = registry.add_adapter("acme", BASE, adapter_dir, suffix="noexport")
    # A job's checkpoint model (what tune publishes), exported as a LoRA GGUF of its own.
    checkpoint = registry.add_adapter("acme", BASE, adapter_dir, suffix="phys",
                                      name=checkpoint_name(adapter.name, 2),
                                      config=checkpoint_config(adapter.config, adapter, 2),
                                      adapter_id=f"{adapter.id}-s2")
    registry.add_export(base_model_id=BASE, format="gguf-lora", path=lora,
                        adapter_id=checkpoint.id, tenant_id="acme")

    # Recorded in the registry once its app started (its ASGI lifespan), no gRPC.
    server = start_base_serve(home, BASE, "--engine", "llama-cpp", "--gguf-format",
                              "gguf-q4_1", grpc=False, timeout=120, log_name="server.log")
    assert server.endpoint is not None
    assert (server.endpoint.engine, server.endpoint.grpc) == ("llama-cpp", None)
    try:
        yield {"url": server.url, "keys": keys, "adapter": adapter.name,
               "no_export": no_export.name, "checkpoint": checkpoint.name}
    finally:
        server.stop(grace=10)
    # uvicorn re-raises SIGTERM once it returns: the row goes in the lifespan's shutdown.
    assert registry.serve_endpoints.for_base(BASE) == []


def _client(server: dict, tenant: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server['url']}/v1", api_key=server["keys"][tenant],
                         max_retries=0, timeout=120)


def _chat(client: openai.OpenAI, model: str) -> str:
    reply = client.chat.completions.create(model=model, messages=CHAT, max_tokens=16,
                                           temperature=0)
    return reply.choices[0].message.content


def test_base_and_lora_gguf(llama_server: dict) -> None:
    acme = _client(llama_server, "acme")
    base, adapted = _chat(acme, BASE), _chat(acme, "physics")
    assert base and adapted and base != adapted
    stream = acme.chat.completions.create(model="physics", messages=CHAT, max_tokens=16,
                                          temperature=0, stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == adapted
    ids = {m.id for m in acme.models.list()}
    assert ids == {BASE, llama_server["adapter"], llama_server["checkpoint"]}
    # The checkpoint model is served under its ckpt-step name (same weights here).
    assert _chat(acme, llama_server["checkpoint"]) == adapted


def test_tenancy_and_errors(llama_server: dict) -> None:
    globex = _client(llama_server, "globex")
    with pytest.raises(openai.NotFoundError):
        _chat(globex, llama_server["adapter"])
    assert {m.id for m in globex.models.list()} == {BASE}
    with pytest.raises(openai.NotFoundError):
        _chat(globex, llama_server["checkpoint"])
    acme = _client(llama_server, "acme")
    with pytest.raises(openai.NotFoundError, match="no export"):
        _chat(acme, llama_server["no_export"])
    for bad in ({"temperature": -1}, {"max_tokens": -5}):
        with pytest.raises(openai.BadRequestError):
            acme.chat.completions.create(model=BASE, messages=CHAT, **bad)
    response = httpx.post(f"{llama_server['url']}/v1/chat/completions",
                          json={"model": BASE, "messages": CHAT})
    assert response.status_code == 401
    metrics = httpx.get(f"{llama_server['url']}/metrics").text
    assert f'quanta_requests_total{{model="{llama_server["adapter"]}",status="200",' \
           f'tenant="acme"}}' in metrics


CALC_PROMPT = "Q: 3*7\nA: <<3*7>>21\nQ: 12+30\nA: <<12+30>>42\nQ: 123*457\nA: <<123*457"


def test_calculator_decoding(llama_server: dict) -> None:
    acme = _client(llama_server, "acme")
    ask = {"model": BASE, "prompt": CALC_PROMPT, "max_tokens": 16, "temperature": 0,
           "stop": ["\nQ:"]}
    plain = acme.completions.create(**ask)
    assert ">>56211" not in plain.choices[0].text
    calc = acme.completions.create(**ask, extra_body={"quanta": {"calculator": True}})
    assert calc.choices[0].text.startswith(">>56211"), calc.choices[0].text
    assert calc.usage.completion_tokens >= 4
    stream = acme.completions.create(**ask, extra_body={"quanta": {"calculator": True}},
                                     stream=True)
    assert "".join(c.choices[0].text for c in stream if c.choices) == calc.choices[0].text
    messages = [{"role": "user", "content": "Copy exactly: 123*457 = <<123*457>>"}]
    chat = acme.chat.completions.create(model=BASE, messages=messages, max_tokens=40,
                                        temperature=0,
                                        extra_body={"quanta": {"calculator": True}})
    assert chat.object == "chat.completion" and chat.usage.completion_tokens > 0
