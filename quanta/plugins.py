"""Open dispatch: implementations of one interface found by name (training methods, graders,
serving engines), as peft's dispatchers and vLLM's plugins are.

An in-tree implementation registers itself with a decorator in its own module; the
package's modules are imported on the first lookup, so adding one is adding one module.
Another distribution adds its own through an entry-point group (the entry point's name
is the key, the object it names the implementation), loaded only when that name is
asked for. A lookup imports modules, not runtimes: implementation modules keep their
heavy imports (trl, vllm, llama_cpp, torch) inside the functions that use them.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Generic, TypeVar

T = TypeVar("T")


class UnknownPluginError(ValueError):
    """No implementation answers to that name (a ValueError, as the closed dispatch raised)."""


class Plugins(Generic[T]):
    """The implementations of one interface by name.

    ``kind`` names them in errors ("unknown engine 'tgi': one of ..."); ``package`` is the
    package whose modules register themselves; ``group`` is the entry-point group other
    distributions use. An in-tree name wins over an entry point of the same name.
    ``package`` None: entry points only, for implementations that are always a package of
    their own (domains).
    """

    def __init__(self, kind: str, package: str | None, group: str) -> None:
        self.kind, self.package, self.group = kind, package, group
        self._table: dict[str, T] = {}
        self._discovered = False

    def register(self, name: str) -> Callable[[T], T]:
        """A decorator filing its target under ``name`` (a StrEnum member counts as its value)."""
        key = str(name)

        def add(implementation: T) -> T:
            known = self._table.get(key)
            if known is not None and known is not implementation:
                raise ValueError(f"two {self.kind}s named {key!r}: {known!r} and "
                                 f"{implementation!r}")
            self._table[key] = implementation
            return implementation

        return add

    def unregister(self, name: str) -> None:
        """Forget ``name`` (for tests and for code that registered it only for a while)."""
        self._table.pop(str(name), None)

    def get(self, name: str) -> T:
        """The implementation called ``name`` (UnknownPluginError lists the known names)."""
        key = str(name)
        if key not in self._table:
            self._discover()
        if key not in self._table:
            for entry in entry_points(group=self.group, name=key):
                self._table[key] = entry.load()
                break
        try:
            return self._table[key]
        except KeyError:
            raise UnknownPluginError(f"unknown {self.kind} {key!r}: one of "
                                     f"{', '.join(self.names())}") from None

    def names(self) -> list[str]:
        """Every name a lookup can find, in-tree and installed, without loading entry points."""
        self._discover()
        return sorted({*self._table, *(entry.name for entry in entry_points(group=self.group))})

    def _discover(self) -> None:
        """Import the package's modules once, so each registers what it defines."""
        if self._discovered or self.package is None:
            return
        package = importlib.import_module(self.package)
        for module in pkgutil.iter_modules(package.__path__, f"{self.package}."):
            importlib.import_module(module.name)
        self._discovered = True
