"""GGUF exports: f16 via llama.cpp's converter, q8_0/q4_k_m via ``llama_model_quantize``,
and adapter-only LoRA GGUF via ``convert_lora_to_gguf.py``.

The f16 GGUF is the reference every quantized GGUF is measured against; a LoRA GGUF is
loaded by llama.cpp beside the base model's f16 GGUF (``Llama(model_path, lora_path)``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from quanta.types import ExportFormat
from quantize.errors import ConversionError, ExportInputError
from quantize.llama_cpp_tools import run_converter
from quantize.quality import check_gguf

# Format -> llama.cpp file type constant name (resolved lazily from llama_cpp).
QUANT_TYPES = {ExportFormat.GGUF_Q8_0: "LLAMA_FTYPE_MOSTLY_Q8_0",
               ExportFormat.GGUF_Q4_K_M: "LLAMA_FTYPE_MOSTLY_Q4_K_M"}


def file_name(format: ExportFormat) -> str:
    """The file a GGUF export is written as (``model-q4_k_m.gguf``, ``model-lora.gguf``)."""
    return f"model-{format.value.removeprefix('gguf-')}.gguf"


def convert_to_f16(model_dir: Path, out_file: Path) -> Path:
    """A Hugging Face model directory (merged or base) -> f16 GGUF."""
    if not (model_dir / "config.json").is_file():
        raise ExportInputError(f"{model_dir} is not a model directory (no config.json)")
    run_converter("convert_hf_to_gguf.py",
                  [str(model_dir), "--outfile", str(out_file), "--outtype", "f16"])
    check_gguf(out_file)
    return out_file


def quantize(f16_file: Path, out_file: Path, format: ExportFormat, *,
             threads: int | None = None) -> Path:
    """Quantize an f16 GGUF to q8_0 or q4_k_m in-process (no llama.cpp binaries)."""
    check_gguf(f16_file)
    import llama_cpp

    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = getattr(llama_cpp, QUANT_TYPES[format])
    params.nthread = threads or os.cpu_count() or 1
    from llama_cpp._utils import suppress_stdout_stderr

    # llama.cpp prints one warning per tensor that falls back to another type (a row size
    # that is not a multiple of 256); the summary lands in the export's metrics instead.
    with suppress_stdout_stderr(disable=False):
        code = llama_cpp.llama_model_quantize(str(f16_file).encode(), str(out_file).encode(),
                                              params)
    if code != 0 or not out_file.is_file():
        raise ConversionError(f"llama_model_quantize({format}) failed with code {code} "
                              f"on {f16_file}: is it a valid f16 GGUF?")
    check_gguf(out_file)
    return out_file


def convert_lora(adapter_dir: Path, base_dir: Path, out_file: Path) -> Path:
    """A peft adapter directory -> LoRA GGUF. ``--base`` is always the local base model
    directory, so the converter never looks the base up on the Hugging Face hub."""
    config = adapter_dir / "adapter_config.json"
    if not config.is_file():
        raise ExportInputError(f"{adapter_dir} is not a peft adapter (no adapter_config.json)")
    peft_type = json.loads(config.read_text()).get("peft_type", "LORA")
    if peft_type != "LORA":
        raise ExportInputError(f"only LoRA adapters convert to GGUF, not {peft_type}")
    run_converter("convert_lora_to_gguf.py",
                  [str(adapter_dir), "--base", str(base_dir), "--outfile", str(out_file),
                   "--outtype", "f16"])
    check_gguf(out_file)
    return out_file
