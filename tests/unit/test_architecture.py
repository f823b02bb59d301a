"""The folders are the architecture: what may import what (DESIGN.md's layout).

Services meet in the registry's public API (``quanta.registry``), never its modules; the
shared core imports no service and no domain (it finds domains by name: ``quanta.domains``);
one service does not import another's internals; tune's two processes (``tune/api``,
``tune/train``) meet only in the registry and in the modules both import (the training
plan, the integrations' schema, the graders).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ("tune", "serve", "quantize", "demo", "console", "bench")
REGISTRY_INTERNALS = ("tables", "store", "jobs", "ids", "housekeeping", "db", "layout",
                      "registry", "uploads", "tenants", "permissions", "cache")
def _imports(path: Path) -> Iterator[str]:
    """Every module ``path`` imports, at any depth (lazy imports count too)."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            yield node.module
            yield from (f"{node.module}.{alias.name}" for alias in node.names)


def _sources(*folders: str) -> Iterator[tuple[str, str]]:
    for folder in folders:
        root = ROOT / folder
        for path in [root] if root.is_file() else sorted(root.rglob("*.py")):
            if "grpc_gen" not in path.parts:
                rel = path.relative_to(ROOT).as_posix()
                yield from ((rel, module) for module in _imports(path))


def _violations(pairs: Iterator[tuple[str, str]], forbidden: tuple[str, ...]) -> list[str]:
    found = set()
    for rel, module in pairs:
        top = next((f for f in forbidden if module == f or module.startswith(f + ".")), None)
        if top is not None:
            found.add(f"{rel} imports {module}")
    return sorted(found)


def test_services_use_only_the_registrys_public_api() -> None:
    internals = tuple(f"quanta.registry.{name}" for name in REGISTRY_INTERNALS)
    assert _violations(_sources(*SERVICES), internals) == []


def test_the_core_imports_no_service_and_no_domain() -> None:
    assert _violations(_sources("quanta"), ("tune", "serve", "quantize", "demo",
                                            "console", "tests", "quanta_physics")) == []


@pytest.mark.parametrize(("service", "others"), [
    ("tune", ("serve", "quantize", "demo", "console")),
    ("serve", ("tune", "quantize", "demo", "console")),
    ("quantize", ("tune", "serve", "demo", "console")),
    ("console", ("tune", "serve", "quantize", "demo")),
])
def test_services_do_not_import_each_other(service: str, others: tuple[str, ...]) -> None:
    assert _violations(_sources(service), others) == []


TUNE_SHARED = ("tune/plan.py", "tune/integrations.py", "tune/graders")


@pytest.mark.parametrize(("side", "others"), [
    (("tune/api",), ("tune.train",)),
    (("tune/train",), ("tune.api",)),
    (TUNE_SHARED, ("tune.api", "tune.train", "tune.cli")),
    # the eval worker runs outside the API: it meets the API in the registry and tune.evals
    (("tune/evals", "tune/serve_client.py"), ("tune.api", "tune.train", "tune.cli")),
])
def test_tune_api_and_worker_meet_only_through_the_plan_and_the_registry(
        side: tuple[str, ...], others: tuple[str, ...]) -> None:
    assert all((ROOT / path).exists() for path in side)
    assert _violations(_sources(*side), others) == []


def test_the_check_sees_a_leak(tmp_path: Path) -> None:
    """The walk finds imports inside functions, the kind a leak usually hides in."""
    leaky = tmp_path / "leaky.py"
    leaky.write_text("def f():\n    from quanta.registry.tables import Job\n")
    pairs = (("tune/leaky.py", module) for module in _imports(leaky))
    assert _violations(pairs, ("quanta.registry.tables",)) == [
        "tune/leaky.py imports quanta.registry.tables",
        "tune/leaky.py imports quanta.registry.tables.Job"]
