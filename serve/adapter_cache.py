"""Registry adapters as local directories vLLM can load.

The resolver knows only an adapter's name (the middleware has already checked the
tenant and rewritten aliases), so lookups here are by the globally unique ``ft:`` name
or id. Files are materialised once under ``QUANTA_HOME/cache/<sha256>`` (verified on the
way out by the registry) and reused: a hit costs one indexed query.
"""

from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path

from sqlalchemy import select

from quanta.config import get_settings
from quanta.registry import Registry
from quanta.registry import tables as t
from serve import metrics


class AdapterCache:
    """Looks adapters up by unique name and materialises their files."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    def lookup(self, name: str) -> t.Adapter | None:
        with self.registry.session() as s:
            return s.scalar(select(t.Adapter).where((t.Adapter.name == name)
                                                    | (t.Adapter.id == name)))

    def existing(self, names: list[str]) -> set[str]:
        """Which of these ``ft:`` names still exist in the registry (one query)."""
        if not names:
            return set()
        with self.registry.session() as s:
            return set(s.scalars(select(t.Adapter.name).where(t.Adapter.name.in_(names))))

    def materialize(self, adapter: t.Adapter) -> Path:
        """A local peft directory for the adapter; counts cache hits and misses."""
        cached = self.registry.settings.cache_dir / adapter.sha256
        if cached.is_dir():
            metrics.RESOLVER_CACHE_HITS.inc()
            return cached
        metrics.RESOLVER_CACHE_MISSES.inc()
        return self.registry.materialize(adapter.sha256)

    def forget(self, path: Path) -> None:
        """Remove a deleted adapter's materialised files unless another adapter shares them."""
        sha = path.name
        with self.registry.session() as s:
            if s.scalar(select(t.Adapter.id).where(t.Adapter.sha256 == sha)) is not None:
                return
        if path.parent == self.registry.settings.cache_dir:
            shutil.rmtree(path, ignore_errors=True)


_lock = threading.Lock()
_cache: AdapterCache | None = None


def get_adapter_cache() -> AdapterCache:
    """The process-wide cache (the resolver and the launcher share it)."""
    global _cache
    with _lock:
        if _cache is None:
            _cache = AdapterCache(Registry.open(get_settings()))
        return _cache


def served_base_model_id() -> str | None:
    """The registry id of the base model this process serves (set by the launcher)."""
    return os.environ.get("QUANTA_SERVE_BASE_MODEL")
