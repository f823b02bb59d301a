"""Registry adapters as local directories vLLM can load.

Files are materialised once under ``QUANTA_HOME/cache/<sha256>`` (verified on the way
out by the registry) and reused. ``materialize(..., reverify=True)`` re-hashes a cached
copy against the manifest, so a bit flipped in the cache or in the store is refused,
never served; ``serve.handoff`` asks for that once per engine load of an adapter (the
middleware's resolution verifies, the resolver hands that copy to vLLM). Lookups by the
globally unique ``ft:`` name or id (``Registry.find_adapter``) are for callers behind
another check: the registry's pins (``serve.adapter_sync``), never a tenant's request.
"""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

from quanta.config import get_settings
from quanta.registry import AdapterRecord, Registry, sha256_file
from serve import metrics
from serve.registry import get_registry


class AdapterCache:
    """Looks adapters up by unique name and materialises their files."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self._verified: set[str] = set()
        self._lock = threading.Lock()
        self._sha_locks: dict[str, threading.Lock] = {}

    def lookup(self, name: str) -> AdapterRecord | None:
        return self.registry.find_adapter(name)

    def existing(self, names: list[str]) -> set[str]:
        """Which of these ``ft:`` names still exist in the registry (one query)."""
        return self.registry.existing_adapter_names(names)

    def materialize(self, adapter: AdapterRecord, reverify: bool = False) -> Path:
        """A verified local peft directory for the adapter; counts cache hits and misses.

        Raises CorruptBlobError when neither the cached copy nor the store holds the
        content the adapter's sha256 names. ``reverify``: re-hash even if this process
        checked the copy before (``serve.handoff`` does, once per engine load).
        """
        sha = adapter.sha256
        with self._lock:
            sha_lock = self._sha_locks.setdefault(sha, threading.Lock())
        with sha_lock:  # one materialisation per adapter at a time; the others reuse it
            return self._materialize(sha, reverify)

    def _materialize(self, sha: str, reverify: bool) -> Path:
        cached = self.registry.settings.cache_dir / sha
        if cached.is_dir():
            if (sha in self._verified and not reverify) or self._cached_ok(sha, cached):
                with self._lock:
                    self._verified.add(sha)
                metrics.RESOLVER_CACHE_HITS.inc()
                return cached
            shutil.rmtree(cached, ignore_errors=True)  # corrupt copy: fetch it again
        metrics.RESOLVER_CACHE_MISSES.inc()
        path = self.registry.materialize(sha)  # verifies every file on the way out
        with self._lock:
            self._verified.add(sha)
        return path

    def _cached_ok(self, sha: str, cached: Path) -> bool:
        """Do the cached files match the manifest (names and hashes)?"""
        files = self.registry.read_manifest(sha)  # CorruptBlobError if the manifest rotted
        present = {p.relative_to(cached).as_posix() for p in cached.rglob("*") if p.is_file()}
        if present != set(files):
            return False
        try:
            return all(sha256_file(cached / rel) == info["sha256"] for rel, info in files.items())
        except OSError:
            return False

    def forget(self, path: Path) -> None:
        """Remove a deleted adapter's materialised files unless another adapter shares them."""
        sha = path.name
        if self.registry.adapter_uses_tree(sha):
            return
        if path.parent == self.registry.settings.cache_dir:
            shutil.rmtree(path, ignore_errors=True)
            with self._lock:
                self._verified.discard(sha)


_lock = threading.Lock()
_cache: AdapterCache | None = None


def get_adapter_cache() -> AdapterCache:
    """The process-wide cache, over the process's registry (``serve.registry``)."""
    global _cache
    registry = get_registry()
    with _lock:
        if _cache is None or _cache.registry is not registry:
            _cache = AdapterCache(registry)
        return _cache


def served_base_model_id() -> str | None:
    """The registry id of the base model this process serves (set by the launcher)."""
    return get_settings().serve_base_model
