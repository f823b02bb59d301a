"""Held-out accuracy of a GGUF export through llama.cpp, and the degraded mark."""

from __future__ import annotations

from pathlib import Path

import pytest

from quanta.config import Settings
from quanta.models import DEFAULT_MODEL_ID, bundled_gguf_path, import_model
from quanta.registry import Registry
from quanta.tenancy import create_tenant
from quanta.types import ExportFormat
from quantize.accuracy import DEGRADED_POINTS, accuracy_metrics, export_accuracy
from tests.support.fixtures import fake_adapter_dir

pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed")


def test_metrics_mark_an_export_that_loses_more_than_five_points() -> None:
    reference = {"physics_accuracy": 0.6, "physics_n": 20}
    kept = accuracy_metrics(11, 20, True, reference)  # 55%: five points down
    assert kept["accuracy_drop_points"] == pytest.approx(DEGRADED_POINTS)
    assert not kept["degraded"]
    lost = accuracy_metrics(10, 20, True, reference)  # 50%: ten points down
    assert lost["degraded"] and lost["physics_accuracy"] == 0.5


def test_reference_is_the_adapters_score_on_the_same_problems() -> None:
    from types import SimpleNamespace

    from quantize.accuracy import reference_accuracy

    after = {"physics_n": 4, "physics_accuracy": 0.5, "physics_results": [True, True, False,
                                                                           False]}
    adapter = SimpleNamespace(eval={"after": after})
    assert reference_accuracy(adapter)["physics_accuracy"] == 0.5
    prefix = reference_accuracy(adapter, 2)
    assert prefix["physics_n"] == 2 and prefix["physics_accuracy"] == 1.0
    assert reference_accuracy(SimpleNamespace(eval={}), 2) is None


def test_gguf_accuracy_is_measured_as_served(base_model_dir: Path, tmp_path: Path) -> None:
    # The base model writes no calculations and gets these wrong: against an adapter that
    # scored 100%, its GGUF is degraded.
    reference = {"physics_accuracy": 1.0, "physics_n": 2, "physics_calculator": True}
    metrics = export_accuracy(ExportFormat.GGUF_Q4_K_M, bundled_gguf_path(), base_model_dir,
                              reference, tmp_path, max_tokens=48)
    assert metrics["physics_n"] == 2 and metrics["physics_calculator"] is True
    assert metrics["degraded"] and metrics["reference_accuracy"] == 1.0


def test_llama_cpp_serves_a_degraded_export_last(tmp_path: Path, base_model_dir: Path) -> None:
    from serve.engines.llama_cpp import gguf_models

    registry = Registry.open(Settings(home=tmp_path / "home"))
    import_model(registry, base_model_dir, DEFAULT_MODEL_ID)
    gguf = bundled_gguf_path()
    registry.add_export(base_model_id=DEFAULT_MODEL_ID, format="gguf-q4_1", path=gguf)
    create_tenant(registry, "acme")
    adapter = registry.add_adapter("acme", DEFAULT_MODEL_ID,
                                   fake_adapter_dir(tmp_path / "a"), suffix="a")
    other = tmp_path / "other.gguf"
    other.write_bytes(gguf.read_bytes() + b"\0")  # another blob, same model
    degraded = registry.add_export(base_model_id=DEFAULT_MODEL_ID, format="gguf-q4_k_m",
                                   path=gguf, adapter_id=adapter.id, metrics={"degraded": True})
    # The only export: served, degraded or not.
    assert gguf_models(registry, DEFAULT_MODEL_ID, "gguf-q4_1")[1].model_path == \
        registry.blob_path(degraded.sha256, ".gguf")
    fine = registry.add_export(base_model_id=DEFAULT_MODEL_ID, format="gguf-q8_0", path=other,
                               adapter_id=adapter.id, metrics={"degraded": False})
    served = gguf_models(registry, DEFAULT_MODEL_ID, "gguf-q4_1")
    assert [m.alias for m in served] == [DEFAULT_MODEL_ID, adapter.name]
    assert served[1].model_path == registry.blob_path(fine.sha256, ".gguf")
