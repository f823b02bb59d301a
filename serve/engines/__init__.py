"""Serving backends behind one interface (``serve.engines.base.Engine``).

Each engine module registers its class (``@register_engine``), so a new engine is one
sibling module; another package adds one through the ``quanta.engines`` entry-point
group (``quanta.plugins``). Engine modules import their runtime (vllm, llama_cpp) only
when serving, so finding an engine by name stays cheap.
"""

from __future__ import annotations

from collections.abc import Callable

from quanta.plugins import Plugins
from serve.engines.base import Engine, ServeOptions

SERVING_ENGINES: Plugins[Callable[[], Engine]] = Plugins("engine", __name__, "quanta.engines")
register_engine = SERVING_ENGINES.register


def get_engine(name: str) -> Engine:
    """The engine called ``name`` (ValueError naming the known ones otherwise)."""
    return SERVING_ENGINES.get(name)()


def engine_names() -> tuple[str, ...]:
    """Every engine ``--engine`` accepts, in-tree and installed."""
    return tuple(SERVING_ENGINES.names())


def __getattr__(name: str) -> tuple[str, ...]:
    """``ENGINES`` (the engine names), found when first read rather than at import."""
    if name == "ENGINES":
        return engine_names()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["ENGINES", "SERVING_ENGINES", "Engine", "ServeOptions", "engine_names",
           "get_engine", "register_engine"]
