"""Merge a LoRA adapter into its base model: peft ``merge_and_unload`` -> safetensors.

The merge computes in the dtype ``quanta.precision`` chooses for this device and the
result is saved in the base model's storage dtype (bf16 for the registry's models).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from quantize.errors import ExportInputError

# Tokenizer and template files copied from the base so the merged directory is self-contained.
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                   "chat_template.jinja", "tokenizer.model", "vocab.json", "merges.txt",
                   "generation_config.json")


def merge_adapter(base_dir: Path, adapter_dir: Path, out_dir: Path) -> Path:
    """Write base + adapter merged into ``out_dir`` (safetensors, tokenizer included)."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from quanta.precision import resolve, storage_dtype, torch_dtype

    if not (adapter_dir / "adapter_config.json").is_file():
        raise ExportInputError(f"{adapter_dir} is not a peft adapter (no adapter_config.json)")
    base = AutoModelForCausalLM.from_pretrained(base_dir, dtype=resolve().torch_dtype)
    try:
        model = PeftModel.from_pretrained(base, adapter_dir)
    except (ValueError, RuntimeError, KeyError) as exc:
        raise ExportInputError(f"the adapter does not fit its base model: {exc}") from exc
    merged = model.merge_and_unload().to(torch_dtype(storage_dtype(base_dir)))
    out_dir.mkdir(parents=True, exist_ok=True)
    merged.save_pretrained(out_dir, safe_serialization=True)
    for name in TOKENIZER_FILES:
        if (base_dir / name).is_file():
            shutil.copy2(base_dir / name, out_dir / name)
    return out_dir
