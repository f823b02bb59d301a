"""Load a base model for training: LoRA in the compute dtype, or 4-bit NF4 QLoRA (bitsandbytes).

The compute dtype comes from ``quanta.precision`` (bf16 only where the device computes it
natively, else fp32 on CPU); QLoRA's ``bnb_4bit_compute_dtype`` follows the same rule.

Unsloth is used only when it is importable *and* a CUDA device is present (it needs a
GPU and pins older trl/transformers): a guarded import, never a dependency.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:
    from quanta.precision import Precision
    from tune.plan import LoraOptions


def unsloth_available() -> bool:
    return torch.cuda.is_available() and importlib.util.find_spec("unsloth") is not None


def load_tokenizer(base_dir: Path) -> Any:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(base_dir)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_base(base_dir: Path, precision: Precision, *, qlora: bool = False) -> Any:
    """The base causal LM in the compute dtype, or quantized to NF4 for QLoRA.

    QLoRA trap (bitsandbytes on CPU): with avx512_bf16 an eval-mode forward repacks the 4-bit
    weights and training then runs through ``gemv_4bit``, which has no backward. Callers
    must train a freshly loaded 4-bit model before any eval forward on it.
    """
    from transformers import AutoModelForCausalLM

    dtype = precision.torch_dtype
    if not qlora:
        return AutoModelForCausalLM.from_pretrained(base_dir, dtype=dtype)
    from transformers import BitsAndBytesConfig

    bnb = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                             bnb_4bit_compute_dtype=dtype, bnb_4bit_use_double_quant=False)
    device = "cuda:0" if torch.cuda.is_available() else "cpu"
    return AutoModelForCausalLM.from_pretrained(base_dir, quantization_config=bnb,
                                                dtype=dtype, device_map={"": device})


def lora_config(options: LoraOptions) -> Any:
    from peft import LoraConfig

    return LoraConfig(r=options.r, lora_alpha=options.alpha, lora_dropout=options.dropout,
                      target_modules=list(options.target_modules), bias="none",
                      task_type="CAUSAL_LM")


def check_target_modules(model: Any, targets: list[str]) -> None:
    """Fail early, with a readable message, when no module matches the requested targets."""
    names = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
    missing = [t for t in targets if t not in names]
    if missing:
        raise ValueError(f"target_modules {missing} match no layer of this model; "
                         f"choose from e.g. {sorted(n for n in names if n.endswith('proj'))}")


def _architecture_targets(base_dir: Path) -> list[str]:
    from quanta.architectures import lora_targets
    from quanta.base_info import weight_shapes

    config = json.loads((base_dir / "config.json").read_text())
    return lora_targets(config.get("model_type"), weight_shapes(base_dir))


def trainable_model(base_dir: Path, lora: LoraOptions, precision: Precision, *,
                    qlora: bool = False, max_length: int = 512,
                    start_adapter: Path | None = None) -> tuple[Any, Any, str]:
    """(peft model, tokenizer, backend name) ready to train.

    With ``start_adapter`` the adapter's weights (and its LoRA shape, which then wins over
    ``lora``) are loaded trainable, so a job continues a fine-tuned model.
    """
    if not lora.target_modules:  # a caller that did not ask the registry: the weights say
        lora = lora.for_base(_architecture_targets(base_dir))
    if unsloth_available() and start_adapter is None:  # pragma: no cover - GPU only
        from unsloth import FastLanguageModel

        model, tokenizer = FastLanguageModel.from_pretrained(
            str(base_dir), max_seq_length=max_length, load_in_4bit=qlora,
            dtype=precision.torch_dtype)
        model = FastLanguageModel.get_peft_model(
            model, r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout,
            target_modules=list(lora.target_modules), use_gradient_checkpointing=False)
        return model, tokenizer, "unsloth"
    from peft import PeftModel, get_peft_model, prepare_model_for_kbit_training

    tokenizer = load_tokenizer(base_dir)
    model = load_base(base_dir, precision, qlora=qlora)
    if start_adapter is None:
        check_target_modules(model, list(lora.target_modules))
    if qlora:
        # Gradient checkpointing stays off: on CPU it costs ~10% and buys nothing at this size.
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    model.config.use_cache = False
    if start_adapter is not None:
        model = PeftModel.from_pretrained(model, start_adapter, is_trainable=True)
    else:
        model = get_peft_model(model, lora_config(lora))
    model.train()
    return model, tokenizer, "peft-qlora" if qlora else "peft"
