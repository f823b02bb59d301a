"""What the registry records about a base model at import, read off its directory.

Every later step asks the record rather than the weights: the trainer its LoRA targets,
the API its vocabulary and context, the engines its chat template. A base that ships no
chat template is given its architecture's (``quanta.architectures``), written into the
directory, so training and both engines render prompts the same way, and the template's
end-of-turn token joins the model's stop tokens.
"""

from __future__ import annotations

import hashlib
import json
import struct
from collections.abc import Callable, Iterator
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

from quanta.architectures import chat_format_of, lora_targets
from quanta.catalog import License
from quanta.plugins import Plugins

CHAT_TEMPLATE_FILE = "chat_template.jinja"
# Per engine: architecture -> None when it can serve it, else why not.
SERVING_SUPPORT: Plugins[Callable[[str], str | None]] = Plugins(
    "serving check", None, "quanta.serving_support")
MAX_HEADER_BYTES = 100 * 1024 * 1024


class UnservableModelError(ValueError):
    """No serving engine here can serve the architecture (the message says why)."""


def read_safetensors_header(fh: BinaryIO, name: str) -> dict[str, Any]:
    """A safetensors file's tensor table (name -> dtype, shape, offsets), read from its
    header alone: a few kilobytes, no weights."""
    size = struct.unpack("<Q", fh.read(8))[0]
    if size > MAX_HEADER_BYTES:
        raise ValueError(f"{name}: a safetensors header of {size} bytes")
    header = json.loads(fh.read(size))
    header.pop("__metadata__", None)
    return header


def _safetensors_headers(model_dir: Path) -> Iterator[dict[str, Any]]:
    for path in sorted(model_dir.glob("*.safetensors")):
        with path.open("rb") as fh:
            yield read_safetensors_header(fh, path.name)


def _weights(model_dir: Path) -> dict[str, list[int]]:
    """Every tensor's name and shape, from the safetensors headers (no weights read)."""
    return {name: list(meta.get("shape", ())) for header in _safetensors_headers(model_dir)
            for name, meta in header.items()}


def weight_shapes(model_dir: Path) -> dict[str, list[int]]:
    """Every tensor's name and shape in the directory (headers only)."""
    return _weights(model_dir)


def _parameter_count(shapes: dict[str, list[int]]) -> int:
    total = 0
    for shape in shapes.values():
        count = 1
        for dim in shape:
            count *= dim
        total += count
    return total


def shipped_template(model_dir: Path) -> str | None:
    """The chat template a model directory carries (``chat_template.jinja`` or its
    tokenizer config), if any."""
    path = model_dir / CHAT_TEMPLATE_FILE
    if path.is_file():
        return path.read_text()
    config = model_dir / "tokenizer_config.json"
    template = json.loads(config.read_text()).get("chat_template") if config.is_file() else None
    if isinstance(template, list):  # named templates: the default one
        template = next((t.get("template") for t in template if t.get("name") == "default"),
                        None)
    return template if isinstance(template, str) and template else None


def _token_id(model_dir: Path, token: str) -> int | None:
    path = model_dir / "tokenizer.json"
    if not path.is_file():
        return None
    from tokenizers import Tokenizer

    return Tokenizer.from_file(str(path)).token_to_id(token)


def _add_stop_token(model_dir: Path, token_id: int) -> None:
    """Make the template's end-of-turn token an end-of-sequence token for generation."""
    path = model_dir / "generation_config.json"
    config = json.loads(path.read_text()) if path.is_file() else {}
    eos = config.get("eos_token_id")
    ids = [] if eos is None else list(eos) if isinstance(eos, list) else [eos]
    if token_id not in ids:
        config["eos_token_id"] = [*ids, token_id]
        path.write_text(json.dumps(config, indent=2) + "\n")


def ensure_chat_template(model_dir: Path, model_type: str | None) -> dict[str, Any]:
    """The chat template's record; a base without one gets its architecture's default."""
    shipped = shipped_template(model_dir)
    fmt = chat_format_of(shipped, model_type)
    if shipped is None:
        assert fmt is not None  # no template: always a format of the table
        (model_dir / CHAT_TEMPLATE_FILE).write_text(fmt.jinja)
        token_id = _token_id(model_dir, fmt.end_of_turn)
        if token_id is None:
            raise ValueError(f"the {fmt.name} chat template's {fmt.end_of_turn!r} is not a "
                             "token of this model's vocabulary (tokenizer.json)")
        _add_stop_token(model_dir, token_id)
    template = shipped if shipped is not None else fmt.jinja  # type: ignore[union-attr]
    return {"format": fmt.name if fmt else "own", "source": "base" if shipped else "default",
            "end_of_turn": fmt.end_of_turn if fmt else None,
            "sha256": hashlib.sha256(template.encode()).hexdigest()}


def describe_base(model_dir: Path) -> dict[str, Any]:
    """The base's record: architecture, size, vocabulary, context, template, LoRA targets."""
    config = json.loads((model_dir / "config.json").read_text())
    text_config = config.get("text_config") or config
    shapes = _weights(model_dir)
    model_type = config.get("model_type")
    tied = config.get("tie_word_embeddings")
    if tied is None:
        tied = not any(name.endswith("lm_head.weight") for name in shapes)
    return {
        "architecture": (config.get("architectures") or [None])[0],
        "model_type": model_type,
        "parameters": _parameter_count(shapes),
        "vocab_size": text_config.get("vocab_size"),
        "context_length": text_config.get("max_position_embeddings"),
        "max_position_embeddings": text_config.get("max_position_embeddings"),
        "hidden_size": text_config.get("hidden_size"),
        "num_hidden_layers": text_config.get("num_hidden_layers"),
        "tie_word_embeddings": bool(tied),
        "sliding_window": text_config.get("sliding_window"),
        "lora_target_modules": lora_targets(model_type, shapes),
        "chat_template": ensure_chat_template(model_dir, model_type),
    }


def license_record(license: License | None, *, accepted: bool) -> dict[str, Any] | None:
    """The licence as recorded on the base (with when it was accepted, for gated ones)."""
    if license is None:
        return None
    record: dict[str, Any] = {k: v for k, v in asdict(license).items() if k != "terms_file"}
    if license.gated:
        record["accepted_at"] = datetime.now(UTC).isoformat() if accepted else None
    return record


def refuse_unservable(architecture: str | None) -> list[str]:
    """The engines that can serve ``architecture``; UnservableModelError when none can.

    Each engine's check is found by name (entry-point group ``quanta.serving_support``):
    the core knows no engine."""
    if not architecture:
        raise UnservableModelError("the model's config.json names no architecture")
    serving, reasons = [], []
    for name in SERVING_SUPPORT.names():
        reason = SERVING_SUPPORT.get(name)(architecture)
        if reason is None:
            serving.append(name)
        else:
            reasons.append(f"{name}: {reason}")
    if reasons and not serving:
        raise UnservableModelError(f"no serving engine here can serve {architecture} ("
                                   + "; ".join(reasons) + ")")
    return serving
