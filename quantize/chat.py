"""Local inference on GGUF exports with llama-cpp-python, and Ollama Modelfiles.

A model name is an adapter (id, ``ft:`` name, alias) or a base model id, optionally with
``@<format>``. Without a format the smallest fast GGUF is chosen (q4_k_m, q8_0, the LoRA
GGUF over the base f16 GGUF, then f16). The chat template is the one the converter copied
into the GGUF (the base's own, or the default its architecture was given at import), and
its stops come from ``quanta.architectures``. An adapter trained with calculation traces
answers with calculator decoding, as ``quanta serve`` and the export check do
(``quantize.llama_source``): the values after ``>>`` are computed, not the model's guess.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from quanta.architectures import ChatFormat, chat_format_named, chat_format_of
from quanta.base_info import shipped_template
from quanta.calculator import calculator_decode, calculator_flag
from quanta.registry import CorruptBlobError, ExportRecord, NotFoundError, Registry
from quanta.types import ArtifactKind, ExportFormat
from quantize.errors import ExportInputError, UnsupportedFormatError
from quantize.exporters import GGUF_FORMATS, Target, resolve_target
from quantize.gguf import file_name
from quantize.llama_source import chat_prompt, llama_source
from quantize.quality import load_llama

CHAT_PREFERENCE = (ExportFormat.GGUF_Q4_K_M, ExportFormat.GGUF_Q8_0, ExportFormat.GGUF_LORA,
                   ExportFormat.GGUF_F16)


def chat_stops(llm: Any) -> list[str]:
    """The stops of the chat format the GGUF's template writes (``quanta.architectures``)."""
    fmt = chat_format_of((llm.metadata or {}).get("tokenizer.chat_template"))
    return list(fmt.stops) if fmt is not None else []  # else the model's own end tokens


@dataclass
class LocalModel:
    """The GGUF file(s) llama.cpp loads for one model name."""

    name: str
    format: ExportFormat
    model_path: Path
    lora_path: Path | None = None
    calculator: bool = False  # the adapter's record says it was trained with traces


def _blob(registry: Registry, row: ExportRecord) -> Path:
    try:
        return registry.blob_path(row.sha256, ".gguf")
    except (NotFoundError, CorruptBlobError) as exc:
        raise ExportInputError(f"export {row.id} is missing or corrupt: {exc}") from exc


def _gguf_export(registry: Registry, target: Target, name: str, wanted: str) -> ExportRecord:
    """The GGUF export of ``target`` in format ``wanted`` (or the preferred one)."""
    if wanted and wanted not in GGUF_FORMATS:
        raise UnsupportedFormatError(
            f"local chat runs GGUF exports ({', '.join(GGUF_FORMATS)}), not {wanted!r}")
    for format in [ExportFormat(wanted)] if wanted else CHAT_PREFERENCE:
        if format.adapter_only and target.adapter is None:
            continue
        row = registry.find_export(base_model_id=target.base_model_id, format=format,
                                   adapter_id=target.adapter_id)
        if row is not None:
            return row
    hint = wanted or ExportFormat.GGUF_Q4_K_M
    raise NotFoundError(f"{name} has no {hint} export: run `quanta export {name} "
                        f"--format {hint}` first")


def resolve_local_model(registry: Registry, model: str, tenant_id: str | None = None
                        ) -> LocalModel:
    """The GGUF file(s) ``model`` (``name[@format]``) refers to."""
    name, _, wanted = model.partition("@")
    target = resolve_target(registry, name, tenant_id)
    row = _gguf_export(registry, target, name, wanted)
    format = ExportFormat(row.format)
    calculator = calculator_flag(target.adapter.config if target.adapter else None)
    if not format.adapter_only:
        return LocalModel(name, format, _blob(registry, row), calculator=calculator)
    base = _lora_base(registry, row)
    return LocalModel(name, format, _blob(registry, base), _blob(registry, row),
                      calculator=calculator)


def _lora_base(registry: Registry, lora: ExportRecord) -> ExportRecord:
    base_id = (lora.metrics or {}).get("base_export_id")
    try:
        if base_id:
            return registry.get_row(ArtifactKind.EXPORT, base_id)
    except NotFoundError:
        pass
    base = registry.find_export(base_model_id=lora.base_model_id, format=ExportFormat.GGUF_F16)
    if base is None:
        raise NotFoundError(f"the base GGUF for LoRA export {lora.id} is gone: run `quanta "
                            f"export {lora.base_model_id} --format gguf-f16`")
    return base


def load(local: LocalModel, n_ctx: int = 2048) -> Any:
    return load_llama(local.model_path, lora_path=local.lora_path, n_ctx=n_ctx)


def stream_chat(llm: Any, messages: list[dict[str, str]], *, max_tokens: int = 256,
                temperature: float = 0.0, seed: int = 0, calculator: bool = False
                ) -> Iterator[str]:
    """Text pieces of the assistant's reply as they are decoded (with ``calculator``,
    computed values included)."""
    if not calculator:
        for chunk in llm.create_chat_completion(messages=messages, max_tokens=max_tokens,
                                                temperature=temperature, seed=seed,
                                                stream=True, stop=chat_stops(llm)):
            piece = chunk["choices"][0]["delta"].get("content")
            if piece:
                yield piece
        return
    prompt, stops = chat_prompt(llm, messages)
    deltas = calculator_decode(prompt, llama_source(llm, temperature=temperature, seed=seed),
                               max_tokens=max_tokens, stop=[*stops, *chat_stops(llm)])
    loop = asyncio.new_event_loop()
    try:
        while True:
            try:
                delta = loop.run_until_complete(anext(deltas))
            except StopAsyncIteration:
                return
            if delta.text:
                yield delta.text
    finally:
        loop.run_until_complete(deltas.aclose())
        loop.close()


def _base_chat_format(registry: Registry, base_model_id: str) -> ChatFormat | None:
    """The chat format recorded on the base (read off its template for a base recorded
    before formats were)."""
    base = registry.get_base_model(base_model_id)
    recorded = (base.info.get("chat_template") or {}).get("format")
    if recorded:
        return chat_format_named(recorded)
    return chat_format_of(shipped_template(registry.materialize(base.sha256)))


def write_ollama(registry: Registry, row: ExportRecord, out_dir: Path) -> Path:
    """Copy the export's GGUF(s) into ``out_dir`` beside a Modelfile; returns the Modelfile.

    ``ollama create NAME -f out_dir/Modelfile`` then imports it (FROM the model GGUF,
    ADAPTER the LoRA GGUF for gguf-lora exports)."""
    if row.format not in GGUF_FORMATS:
        raise UnsupportedFormatError(f"Ollama needs a GGUF export, not {row.format}")
    out_dir.mkdir(parents=True, exist_ok=True)
    lines: list[str] = []
    if ExportFormat(row.format).adapter_only:
        base = _lora_base(registry, row)
        shutil.copyfile(_blob(registry, base), out_dir / "base-f16.gguf")
        shutil.copyfile(_blob(registry, row), out_dir / "adapter-lora.gguf")
        lines += ["FROM ./base-f16.gguf", "ADAPTER ./adapter-lora.gguf"]
    else:
        filename = file_name(ExportFormat(row.format))
        shutil.copyfile(_blob(registry, row), out_dir / filename)
        lines.append(f"FROM ./{filename}")
    chat_format = _base_chat_format(registry, row.base_model_id)
    if chat_format is not None:  # else Ollama reads the template the GGUF carries
        lines += [f'TEMPLATE """{chat_format.ollama}"""',
                  *(f'PARAMETER stop "{stop}"' for stop in chat_format.stops)]
    lines.append("PARAMETER temperature 0.2")
    modelfile = out_dir / "Modelfile"
    modelfile.write_text("\n".join(lines) + "\n")
    return modelfile
