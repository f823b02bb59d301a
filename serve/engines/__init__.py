"""Serving backends behind one interface (``serve.engines.base.Engine``)."""

from __future__ import annotations

from serve.engines.base import Engine, ServeOptions

ENGINES = ("vllm", "llama-cpp")


def get_engine(name: str) -> Engine:
    """The engine called ``name``; imported lazily (each pulls a heavy runtime)."""
    if name == "vllm":
        from serve.engines.vllm import VLLMEngine

        return VLLMEngine()
    if name == "llama-cpp":
        from serve.engines.llama_cpp import LlamaCppEngine

        return LlamaCppEngine()
    raise ValueError(f"unknown engine {name!r}: one of {', '.join(ENGINES)}")


__all__ = ["ENGINES", "Engine", "ServeOptions", "get_engine"]
