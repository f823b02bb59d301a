"""The serve process's one ``Registry``: every serve module gets it here.

A ``Registry`` holds a database engine (its connection pool) and a store client, and
opening one migrates the schema and backfills rows, so a process opens it once: the
engines, the adapter cache, the resolver's handoff, access checks and residency all use
the object :func:`get_registry` returns. (Under vLLM that is the API-server process;
vLLM's engine process opens none: it reads adapter files from the paths it is given.)

The registry is keyed by where it points (database and store URLs): settings re-read
with the same place (``quanta serve`` sets ``QUANTA_HOME`` to the resolved home, then
re-reads) keep it; a process pointed elsewhere (a test with a new ``QUANTA_HOME``) gets
one for that place instead of a stale one.
"""

from __future__ import annotations

import threading

from quanta.config import Settings, get_settings
from quanta.registry import Registry

_lock = threading.Lock()
_registry: Registry | None = None


def _place(settings: Settings) -> tuple[str, str]:
    return settings.resolved_database_url, settings.resolved_store_url


def get_registry() -> Registry:
    """This process's registry, opened from the settings on first use."""
    global _registry
    with _lock:
        if _registry is None or _place(_registry.settings) != _place(get_settings()):
            _registry = Registry.open(get_settings())
        return _registry


def use_registry(registry: Registry | None) -> None:
    """Make ``registry`` this process's registry (tests, or a caller that opened it);
    None: open one from the settings on next use."""
    global _registry
    with _lock:
        _registry = registry
