"""Domains by name: what makes an adapter an expert in one field.

A domain is a package of its own, outside the core (``quanta_physics``), with the same
parts: a generator of verifiable problems with a fixed held-out split, an answer checker,
and the datasets it ships. The core imports none of them: each registers itself in the
``quanta.domains`` entry-point group (``physics = "quanta_physics"``, the entry point
naming the package), so a second domain is a sibling package, or another distribution,
and never an edit here. The generic dataset formats stay in ``quanta.data``.
"""

from __future__ import annotations

from types import ModuleType

from quanta.plugins import Plugins

# The domain that tune's after-training evaluation and quantize's export accuracy measure:
# one name for both, since an export is compared with its adapter on the same problems.
DEFAULT_DOMAIN = "physics"

DOMAINS: Plugins[ModuleType] = Plugins("domain", None, "quanta.domains")


def get_domain(name: str = DEFAULT_DOMAIN) -> ModuleType:
    """The domain package registered as ``name``, imported on first use (an
    ``UnknownPluginError``, a ValueError, lists the installed domains)."""
    return DOMAINS.get(name)


def domain_names() -> list[str]:
    """Every installed domain's name, without importing any of them."""
    return DOMAINS.names()
