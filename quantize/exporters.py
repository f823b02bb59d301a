"""One exporter signature for every format: ``export(registry, model, format) -> ExportRecord``.

``model`` is an adapter (id, ``ft:`` name or alias, owned by the tenant) or a base model
id. Each format is built by its backend module (``merge``, ``gguf``, ``gptq``), measured
by ``quality`` against the unquantized model, and only then registered: a failure or a
non-finite perplexity raises an ``ExportError`` and leaves the registry unchanged.
Intermediate exports already in the registry (the merged model, the f16 GGUF) are
reused rather than rebuilt.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from quanta.data import read_examples
from quanta.domains import get_domain
from quanta.precision import resolve
from quanta.registry import AdapterRecord, CorruptBlobError, ExportRecord, NotFoundError, Registry
from quanta.types import ArtifactKind, ExportFormat
from quantize import gguf, gptq, merge
from quantize.accuracy import export_accuracy, reference_accuracy
from quantize.errors import ExportInputError, UnsupportedFormatError
from quantize.quality import (
    Quality,
    check_gguf,
    gguf_perplexity,
    held_out_text,
    hf_dir_perplexity,
    path_bytes,
)

FORMATS = tuple(ExportFormat)
GGUF_FORMATS = tuple(f for f in ExportFormat if f.is_gguf)


@dataclass
class Target:
    """What is being exported: a base model alone, or an adapter on its base model."""

    base_model_id: str
    adapter: AdapterRecord | None
    tenant_id: str | None

    @property
    def adapter_id(self) -> str | None:
        return self.adapter.id if self.adapter else None

    @property
    def name(self) -> str:
        return self.adapter.name if self.adapter else self.base_model_id


def check_format(format: str) -> ExportFormat:
    try:
        return ExportFormat(format)
    except ValueError:
        raise UnsupportedFormatError(
            f"unsupported export format {format!r}: one of {', '.join(FORMATS)}") from None


def resolve_target(registry: Registry, model: str, tenant_id: str | None = None) -> Target:
    """An adapter the tenant owns (id, ``ft:`` name, alias) or a base model id."""
    tenant_id = tenant_id or registry.settings.default_tenant
    try:
        adapter = registry.resolve_adapter(tenant_id, model)
    except NotFoundError:
        try:
            base = registry.get_base_model(model, tenant_id)
        except NotFoundError:
            raise NotFoundError(f"no adapter or base model named {model!r}") from None
        return Target(base.id, None, base.tenant_id)
    if (adapter.config or {}).get("derived_from"):
        raise ExportInputError(f"{model} was trained from a model another tenant shared with "
                               "you: its weights may be served, not exported")
    return Target(adapter.base_model_id, adapter, adapter.tenant_id)


class _Inputs:
    """Materialises (and caches, per export call) what a backend needs as local paths."""

    def __init__(self, registry: Registry, target: Target, workdir: Path) -> None:
        self.registry, self.target, self.workdir = registry, target, workdir
        self._cache: dict[str, Any] = {}

    def _tree(self, sha256: str, what: str) -> Path:
        try:
            return self.registry.materialize(sha256)
        except (NotFoundError, CorruptBlobError, FileNotFoundError) as exc:
            raise ExportInputError(f"{what} is missing or corrupt in the registry: {exc}") from exc

    def base_dir(self) -> Path:
        if "base" not in self._cache:
            what = f"base model {self.target.base_model_id!r}"
            try:
                row = self.registry.get_base_model(self.target.base_model_id,
                                                   self.target.tenant_id)
            except NotFoundError as exc:
                raise ExportInputError(f"{what} of {self.target.name} is not in the registry"
                                       ) from exc
            self._cache["base"] = self._tree(row.sha256, f"{what} of {self.target.name}")
        return self._cache["base"]

    def adapter_dir(self) -> Path:
        assert self.target.adapter is not None
        return self._tree(self.target.adapter.sha256, f"adapter {self.target.name}")

    def existing(self, format: ExportFormat, base_only: bool = False) -> ExportRecord | None:
        return self.registry.find_export(base_model_id=self.target.base_model_id, format=format,
                                         adapter_id=None if base_only else self.target.adapter_id)

    def merged_dir(self) -> Path:
        """The unquantized model: the base itself, a registered merge, or a fresh merge."""
        if "merged" not in self._cache:
            if self.target.adapter is None:
                path = self.base_dir()
            elif (row := self.existing(ExportFormat.MERGED)) is not None:
                path = self._tree(row.sha256, f"merged export of {self.target.name}")
            else:
                path = merge.merge_adapter(self.base_dir(), self.adapter_dir(),
                                           self.workdir / "merged")
            self._cache["merged"] = path
        return self._cache["merged"]

    def f16_gguf(self) -> tuple[Path, float | None]:
        """The merged model as f16 GGUF (registered one reused) and its perplexity if known."""
        if "f16" not in self._cache:
            row = self.existing(ExportFormat.GGUF_F16)
            if row is not None:
                path = self._blob(row.sha256, f"gguf-f16 export of {self.target.name}")
                check_gguf(path)
                self._cache["f16"] = (path, (row.metrics or {}).get("perplexity"))
            else:
                out = gguf.convert_to_f16(self.merged_dir(),
                                          self.workdir / gguf.file_name(ExportFormat.GGUF_F16))
                self._cache["f16"] = (out, None)
        return self._cache["f16"]

    def _blob(self, sha256: str, what: str) -> Path:
        try:
            return self.registry.blob_path(sha256, ".gguf")
        except (NotFoundError, CorruptBlobError) as exc:
            raise ExportInputError(f"{what} is missing or corrupt in the registry: {exc}") from exc

    def calibration(self) -> tuple[list[dict[str, Any]], str]:
        """The adapter's training examples, else the bundled physics set."""
        adapter = self.target.adapter
        if adapter is not None and adapter.training_file_id:
            try:
                row = self.registry.get_file(adapter.tenant_id, adapter.training_file_id)
                local = self.workdir / "calibration" / Path(row.filename).name
                local.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(self.registry.blob_path(row.sha256), local)
                examples = read_examples(local)
                if examples:
                    return examples, f"training file {row.id}"
            except (NotFoundError, CorruptBlobError, ValueError):
                pass  # fall back below: calibration data only shapes the quantization
        return _bundled_physics_examples(), "bundled physics problems"


def _bundled_physics_examples(n: int = gptq.DEFAULT_SAMPLES) -> list[dict[str, Any]]:
    return read_examples(get_domain().bundled_physics_path())[:n]


# -- one builder per format: (inputs, output dir) -> (artifact path, quality, extra metrics) --

Built = tuple[Path, Quality, dict[str, Any]]


def _build_merged(inputs: _Inputs, out: Path) -> Built:
    if inputs.target.adapter is None:
        path = inputs.base_dir()
    else:
        path = merge.merge_adapter(inputs.base_dir(), inputs.adapter_dir(), out / "merged")
        inputs._cache["merged"] = path
    dtype = resolve().dtype
    ppl = hf_dir_perplexity(path, dtype=dtype)
    return path, Quality(ppl, ppl, path_bytes(path), "transformers", f"itself ({dtype})"), {
        "compute_dtype": str(dtype)}


def _build_gguf_f16(inputs: _Inputs, out: Path) -> Built:
    path = gguf.convert_to_f16(inputs.merged_dir(), out / gguf.file_name(ExportFormat.GGUF_F16))
    ppl = gguf_perplexity(path)
    return path, Quality(ppl, ppl, path_bytes(path), "llama.cpp", "itself (f16 GGUF)"), {}


def _build_quantized(format: ExportFormat) -> Callable[[_Inputs, Path], Built]:
    def build(inputs: _Inputs, out: Path) -> Built:
        f16, reference = inputs.f16_gguf()
        path = gguf.quantize(f16, out / gguf.file_name(format), format)
        reference = reference or gguf_perplexity(f16)
        quality = Quality(gguf_perplexity(path), reference, path_bytes(path), "llama.cpp",
                          "f16 GGUF of the same model")
        return path, quality, {}
    return build


def _build_gguf_lora(inputs: _Inputs, out: Path) -> Built:
    base_export = inputs.existing(ExportFormat.GGUF_F16, base_only=True)
    if base_export is None:  # llama.cpp applies the LoRA GGUF on top of the base f16 GGUF
        base_export = export(inputs.registry, inputs.target.base_model_id,
                             ExportFormat.GGUF_F16)
    base_gguf = inputs._blob(base_export.sha256,
                             f"gguf-f16 export of {inputs.target.base_model_id}")
    path = gguf.convert_lora(inputs.adapter_dir(), inputs.base_dir(), out / "adapter-lora.gguf")
    merged_f16, reference = inputs.f16_gguf()
    reference = reference or gguf_perplexity(merged_f16)
    quality = Quality(gguf_perplexity(base_gguf, lora_path=path), reference, path_bytes(path),
                      "llama.cpp", "merged f16 GGUF (base + adapter)")
    return path, quality, {"base_export_id": base_export.id}


def _build_gptq(inputs: _Inputs, out: Path) -> Built:
    examples, source = inputs.calibration()
    dtype = resolve().dtype
    result = gptq.quantize_gptq(inputs.merged_dir(), out / "gptq", examples, held_out_text(),
                                inputs.workdir, dtype=dtype)
    quality = Quality(float(result.get("perplexity", float("nan"))),
                      float(result.get("reference_perplexity", float("nan"))),
                      path_bytes(out / "gptq"), "gptqmodel", f"merged model ({dtype}, "
                      "transformers)")
    qc = result.get("quantization_config", {})
    extra = {"calibration": source, "calibration_samples": result.get("calibration_samples"),
             "compute_dtype": str(dtype),
             "quantize_seconds": result.get("quantize_seconds"),
             **{k: qc.get(k) for k in ("bits", "group_size", "sym", "desc_act",
                                       "checkpoint_format", "quant_method")}}
    return out / "gptq", quality, extra


BUILDERS: dict[ExportFormat, Callable[[_Inputs, Path], Built]] = {
    ExportFormat.MERGED: _build_merged,
    ExportFormat.GGUF_F16: _build_gguf_f16,
    ExportFormat.GGUF_Q8_0: _build_quantized(ExportFormat.GGUF_Q8_0),
    ExportFormat.GGUF_Q4_K_M: _build_quantized(ExportFormat.GGUF_Q4_K_M),
    ExportFormat.GGUF_LORA: _build_gguf_lora,
    ExportFormat.GPTQ: _build_gptq,
}


def _accuracy(inputs: _Inputs, format: ExportFormat, path: Path, extra: dict[str, Any],
              n: int | None) -> dict[str, Any]:
    """Held-out physics accuracy against the adapter's (``quantize.accuracy``), for an
    adapter that has one: GGUF exports through llama.cpp, GPTQ through gptqmodel (the
    merged export is the adapter itself, in the storage dtype)."""
    reference = reference_accuracy(inputs.target.adapter, n)
    if reference is None or format == ExportFormat.MERGED:
        return {}
    base_gguf = None
    if format == ExportFormat.GGUF_LORA:
        base_export = inputs.registry.get_row(ArtifactKind.EXPORT, extra["base_export_id"])
        base_gguf = inputs._blob(base_export.sha256, "the base model's f16 GGUF")
    return export_accuracy(format, path, inputs.base_dir(), reference, inputs.workdir,
                           base_gguf=base_gguf)


def export(registry: Registry, model: str, format: ExportFormat | str, *,
           tenant_id: str | None = None, accuracy_n: int | None = None) -> ExportRecord:
    """Build, measure and register one export of ``model`` (adapter or base model id).
    ``accuracy_n``: held-out problems the accuracy is measured on (default: all the
    adapter's evaluation used; fewer is faster, compared on the same problems)."""
    format = check_format(format)
    target = resolve_target(registry, model, tenant_id)
    if format.adapter_only and target.adapter is None:
        raise UnsupportedFormatError(f"{format} exports an adapter; {model!r} is a base model")
    with registry.staging("export") as workdir:
        inputs = _Inputs(registry, target, workdir)
        inputs.base_dir()  # fail early, with a clear message, if the base model is gone
        out = workdir / "out"
        out.mkdir()
        path, quality, extra = BUILDERS[format](inputs, out)
        quality.check()
        accuracy = _accuracy(inputs, format, path, extra, accuracy_n)
        metrics = {**quality.as_metrics(), **extra, **accuracy, "format": format,
                   "source": target.name}
        return registry.add_export(base_model_id=target.base_model_id, format=format,
                                   path=path, adapter_id=target.adapter_id,
                                   tenant_id=target.tenant_id, metrics=metrics)

