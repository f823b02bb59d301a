"""Base-model import: the bundled SmolLM2 becomes a model transformers loads and that answers."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from quanta.models import DEFAULT_MODEL_ID, ModelImportError, import_model
from quanta.registry import ConflictError, Registry

pytestmark = pytest.mark.slow


def test_imported_smollm2_loads_and_answers(base_model_dir: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    config = json.loads((base_model_dir / "config.json").read_text())
    assert config["architectures"] == ["LlamaForCausalLM"]
    assert "quantization_config" not in config
    tokenizer = AutoTokenizer.from_pretrained(base_model_dir)
    # fp32: the same numbers on every CPU (bf16 kernels differ between AVX2 and AVX-512)
    model = AutoModelForCausalLM.from_pretrained(base_model_dir, dtype=torch.float32)
    assert tokenizer.chat_template, "the chat template must survive the import"
    messages = [{"role": "user", "content": "What is the SI unit of force? Answer in one word."}]
    inputs = tokenizer.apply_chat_template(messages, add_generation_prompt=True,
                                           return_tensors="pt", return_dict=True)
    with torch.no_grad():
        out = model.generate(**inputs, max_new_tokens=12, do_sample=False)
    answer = tokenizer.decode(out[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True)
    assert "newton" in answer.lower(), answer


def test_import_of_a_local_hf_directory(model_registry: Registry, base_model_dir: Path,
                                        tmp_path: Path) -> None:
    copy = tmp_path / "my-model"
    shutil.copytree(base_model_dir, copy)
    (copy / "README.md").write_text("ignored")
    row = import_model(model_registry, copy, "my-model")
    assert row.architecture == "LlamaForCausalLM"
    # Same weights, same bytes: the blobs are shared with the default model.
    default = model_registry.get_base_model(DEFAULT_MODEL_ID)
    assert row.bytes == default.bytes
    assert "README.md" not in model_registry.read_manifest(row.sha256)
    with pytest.raises(ConflictError):
        import_model(model_registry, copy, "my-model")
    model_registry.delete("base_model", "my-model")
    assert model_registry.verify().ok


@pytest.mark.parametrize("case", ["missing", "no-config", "not-gguf", "corrupt-gguf"])
def test_bad_sources_are_refused(case: str, registry: Registry, tmp_path: Path) -> None:
    source = tmp_path / case
    if case == "no-config":
        source.mkdir()
        (source / "model.safetensors").write_bytes(b"")
    elif case == "not-gguf":
        source = tmp_path / "weights.bin"
        source.write_bytes(b"abc")
    elif case == "corrupt-gguf":
        source = tmp_path / "broken.gguf"
        source.write_bytes(b"GGUF" + b"\x00" * 64)
    with pytest.raises(ModelImportError):
        import_model(registry, source, "bad")
    assert registry.list_base_models() == []
