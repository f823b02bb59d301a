"""Domains by name (``quanta.domains``): each a package outside the core, found through the
``quanta.domains`` entry-point group, so a second domain needs no edit of the core."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
from importlib.metadata import EntryPoint, EntryPoints, entry_points
from pathlib import Path

import pytest

import quanta.plugins
import quanta_physics
from quanta.domains import DEFAULT_DOMAIN, DOMAINS, domain_names, get_domain
from quanta.plugins import UnknownPluginError

GROUP = "quanta.domains"


def test_physics_is_found_through_its_entry_point() -> None:
    assert [entry.value for entry in entry_points(group=GROUP, name="physics")] == [
        "quanta_physics"]  # pyproject.toml's, as the editable install registered it
    assert get_domain("physics") is quanta_physics
    assert get_domain() is get_domain(DEFAULT_DOMAIN) is quanta_physics
    assert "physics" in domain_names()


def test_an_unknown_domain_fails_with_the_known_ones() -> None:
    with pytest.raises(UnknownPluginError,
                       match=r"unknown domain 'astrology': one of (.*, )?physics\b"):
        get_domain("astrology")
    assert issubclass(UnknownPluginError, ValueError)


@pytest.fixture
def chemistry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A second domain, ``quanta_chemistry``, installed beside physics: a package of its own
    and one entry point, nothing in ``quanta/``."""
    package = tmp_path / "quanta_chemistry"
    package.mkdir()
    (package / "__init__.py").write_text(textwrap.dedent("""
        def held_out_problems(n):
            return [f"balance equation {i}" for i in range(n)]
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    installed = EntryPoints([*entry_points(group=GROUP),
                             EntryPoint("chemistry", "quanta_chemistry", GROUP)])
    monkeypatch.setattr(quanta.plugins, "entry_points",
                        lambda **select: installed.select(**select))
    yield "chemistry"
    DOMAINS.unregister("chemistry")
    sys.modules.pop("quanta_chemistry", None)


def test_a_second_domain_is_found_without_editing_the_core(chemistry: str) -> None:
    assert {"chemistry", "physics"} <= set(domain_names())
    assert "quanta_chemistry" not in sys.modules  # listed, not imported
    domain = get_domain(chemistry)
    assert domain.__name__ == "quanta_chemistry"
    assert domain.held_out_problems(2) == ["balance equation 0", "balance equation 1"]
    assert get_domain("physics") is quanta_physics
