"""Exporters: merged safetensors, GGUF (f16, q8_0, q4_k_m, LoRA) and GPTQ, each measured.

``quantize.export(registry, model, format)`` is the one entry point; backends live in
``merge``, ``gguf`` and ``gptq``. Attributes are resolved lazily because
``quantize.gptq_worker`` runs in the GPTQ venv, which has no registry dependencies.
"""

from __future__ import annotations

from typing import Any

__all__ = ["FORMATS", "export", "resolve_target"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from quantize import exporters

        return getattr(exporters, name)
    raise AttributeError(f"module 'quantize' has no attribute {name!r}")
