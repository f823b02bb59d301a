"""Open dispatch (``quanta.plugins``): training methods, graders and engines found by name.

A new implementation is one module that registers itself, or another package's entry
point; unknown names still fail with the names that would have worked.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterator
from importlib.metadata import EntryPoint, EntryPoints
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

import quanta.plugins
from quanta.config import Settings
from quanta.plugins import Plugins, UnknownPluginError
from quanta.types import DatasetFormat, MethodType
from serve.engines import SERVING_ENGINES, ServeOptions, get_engine, register_engine
from tune.graders import GRADERS, Grade, build_grader, parse_grader, register_grader
from tune.train.methods import TRAINING_METHODS, get_method, method_formats, register_method

GROUP = "quanta.test_widgets"


@pytest.fixture
def widgets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Plugins[Any]]:
    """A package ``widgets_pkg`` whose module ``alpha.py`` registers itself, plus a
    third-party module ``thirdparty_widget`` offered through the entry point ``beta``."""
    package = tmp_path / "widgets_pkg"
    package.mkdir()
    (package / "__init__.py").write_text(textwrap.dedent(f"""
        from quanta.plugins import Plugins
        WIDGETS = Plugins("widget", __name__, {GROUP!r})
    """))
    (package / "alpha.py").write_text(textwrap.dedent("""
        from widgets_pkg import WIDGETS

        @WIDGETS.register("alpha")
        class Alpha:
            pass
    """))
    (tmp_path / "thirdparty_widget.py").write_text("class Beta:\n    pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    installed = EntryPoints([EntryPoint("beta", "thirdparty_widget:Beta", GROUP)])
    monkeypatch.setattr(quanta.plugins, "entry_points",
                        lambda **select: installed.select(**select))
    import widgets_pkg

    yield widgets_pkg.WIDGETS
    for name in ("widgets_pkg", "widgets_pkg.alpha", "thirdparty_widget"):
        sys.modules.pop(name, None)


def test_a_sibling_module_is_found_without_being_named_anywhere(widgets: Plugins[Any]) -> None:
    assert "widgets_pkg.alpha" not in sys.modules  # nothing is imported before a lookup
    assert widgets.get("alpha").__name__ == "Alpha"
    assert "widgets_pkg.alpha" in sys.modules


def test_an_entry_point_is_listed_unloaded_and_loaded_when_asked_for(
        widgets: Plugins[Any]) -> None:
    assert widgets.names() == ["alpha", "beta"]
    assert "thirdparty_widget" not in sys.modules
    assert widgets.get("beta").__name__ == "Beta"


def test_an_unknown_name_fails_with_the_known_ones(widgets: Plugins[Any]) -> None:
    with pytest.raises(UnknownPluginError, match="unknown widget 'gamma': one of alpha, beta"):
        widgets.get("gamma")
    assert issubclass(UnknownPluginError, ValueError)  # callers catching ValueError still do


def test_two_implementations_under_one_name_are_refused(widgets: Plugins[Any]) -> None:
    first = widgets.get("alpha")
    widgets.register("alpha")(first)  # the same one again (a second import) is harmless
    with pytest.raises(ValueError, match="two widgets named 'alpha'"):
        widgets.register("alpha")(type("Other", (), {}))


def test_a_new_training_method_is_found_by_name() -> None:
    @register_method("distill")
    class DistillMethod:
        type = "distill"
        formats = (DatasetFormat.CHAT,)

    try:
        assert isinstance(get_method("distill"), DistillMethod)
        assert method_formats("distill") == (DatasetFormat.CHAT,)
    finally:
        TRAINING_METHODS.unregister("distill")
    assert type(get_method(MethodType.DPO)).__name__ == "DpoMethod"
    assert method_formats("reinforcement") == (DatasetFormat.REINFORCEMENT,)
    with pytest.raises(ValueError, match="unknown training method 'distill': one of dpo, "
                                         "reinforcement, supervised"):
        get_method("distill")


def test_a_new_grader_is_built_from_its_config(tmp_path: Path) -> None:
    @register_grader("always_one")
    class AlwaysOne:
        def __init__(self, name: str, settings: Settings) -> None:
            self.name, self.type, self.settings = name, "always_one", settings

        @classmethod
        def from_config(cls, config: Any, settings: Settings) -> AlwaysOne:
            return cls(config.name, settings)

        def grade(self, sample: dict[str, Any], item: dict[str, Any]) -> Grade:
            return Grade(score=1.0)

    settings = Settings(home=tmp_path)
    try:
        grader = build_grader(SimpleNamespace(type="always_one", name="one"), settings)
        assert isinstance(grader, AlwaysOne)
        assert grader.settings is settings
    finally:
        GRADERS.unregister("always_one")
    with pytest.raises(ValueError, match="unknown grader type 'always_one'"):
        build_grader(SimpleNamespace(type="always_one", name="one"), settings)


def test_graders_still_get_their_settings_through_multi(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, grader_timeout=3.0, grader_memory_mb=64,
                        grader_model_url="http://judge:9000/v1/", grader_api_key="k")
    multi = build_grader(parse_grader({
        "type": "multi", "name": "m", "calculate_output": "p + s",
        "graders": {
            "p": {"type": "python", "name": "p",
                  "source": "def grade(sample, item):\n    return 1.0\n"},
            "s": {"type": "score_model", "name": "s", "model": "judge",
                  "input": [{"role": "user", "content": "{{sample.output_text}}"}]},
        },
    }), settings)
    python, score_model = multi.graders["p"], multi.graders["s"]
    assert (python.limits.wall_seconds, python.limits.memory_bytes) == (3.0, 64 * 1024 * 1024)
    assert (score_model.base_url, score_model.api_key) == ("http://judge:9000/v1", "k")


def test_a_new_engine_is_found_by_name() -> None:
    import serve.engines

    @register_engine("echo")
    class EchoEngine:
        name = "echo"

        def run(self, options: ServeOptions) -> None:
            raise NotImplementedError

    try:
        assert isinstance(get_engine("echo"), EchoEngine)
        assert {"echo", "vllm", "llama-cpp"} <= set(serve.engines.ENGINES)
    finally:
        SERVING_ENGINES.unregister("echo")
    assert "echo" not in serve.engines.ENGINES
    with pytest.raises(ValueError, match="unknown engine 'tgi': one of llama-cpp, vllm"):
        get_engine("tgi")


def test_lookups_do_not_import_the_runtimes() -> None:
    """Finding every implementation imports modules, never trl, vllm, llama_cpp or torch."""
    script = textwrap.dedent("""
        import sys
        from tune.train.methods import TRAINING_METHODS, get_method
        from tune.graders import GRADERS
        from serve.engines import ENGINES, get_engine
        for name in TRAINING_METHODS.names():
            get_method(name)
        for name in GRADERS.names():
            GRADERS.get(name)
        for name in ENGINES:
            get_engine(name)
        print(sorted(m for m in ("trl", "vllm", "llama_cpp", "torch", "transformers")
                     if m in sys.modules))
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            check=True, cwd=Path(__file__).resolve().parents[2])
    assert result.stdout.strip() == "[]"
