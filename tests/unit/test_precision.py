"""The precision rule: bf16 only where the hardware computes it natively, else fp32 on CPU."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from quanta import precision
from quanta.config import Settings
from quanta.precision import Capability, choose, resolve, storage_dtype
from quanta.types import ComputeDtype

AVX2 = Capability("cpu", "AVX2", native_bf16=False)
AVX512_BF16 = Capability("cpu", "AVX512", native_bf16=True, bf16_speedup=2.7)
AVX512_EMULATED = Capability("cpu", "AVX512", native_bf16=True, bf16_speedup=0.8)
# The capability forced down the way CI does it: oneDNN and ATen both limited to AVX2.
FORCED_AVX2 = {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2"}


@pytest.mark.parametrize(("capability", "expected"), [
    (AVX2, ComputeDtype.FLOAT32),
    (AVX512_BF16, ComputeDtype.BFLOAT16),
    (AVX512_EMULATED, ComputeDtype.FLOAT32),  # oneDNN has bf16, but it measured slower
    (Capability("cuda", "H200", native_bf16=True), ComputeDtype.BFLOAT16),
    (Capability("cuda", "T4", native_bf16=False), ComputeDtype.FLOAT16),
])
def test_the_rule(capability: Capability, expected: ComputeDtype) -> None:
    assert choose(capability) is expected


def test_overrides_beat_the_rule(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(precision, "detect", lambda device=None: AVX2)
    auto = resolve(settings=Settings())
    assert (auto.dtype, auto.chosen_by) == (ComputeDtype.FLOAT32, "auto")
    assert "float32" in auto.describe() and "AVX2 without native bf16" in auto.describe()
    configured = resolve(settings=Settings(compute_dtype="bfloat16"))
    assert (configured.dtype, configured.chosen_by) == (ComputeDtype.BFLOAT16,
                                                        "QUANTA_COMPUTE_DTYPE")
    # A job's block (or serve's --dtype) beats the setting; "auto" there defers to it.
    job = resolve("float32", requested_by="job", settings=Settings(compute_dtype="bfloat16"))
    assert (job.dtype, job.chosen_by) == (ComputeDtype.FLOAT32, "job")
    deferred = resolve("auto", requested_by="job", settings=Settings(compute_dtype="bfloat16"))
    assert deferred.dtype is ComputeDtype.BFLOAT16
    assert job.as_dict()["compute_dtype"] == "float32"
    assert job.as_dict()["native_bf16"] is False


def test_an_unknown_dtype_is_refused() -> None:
    with pytest.raises(ValueError):
        resolve("float8")


def test_the_probe_runs_once_per_machine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                         ) -> None:
    calls = []
    monkeypatch.setattr(precision, "measure_bf16_speedup", lambda: calls.append(1) or 2.5)
    settings = Settings(cache=tmp_path)
    assert precision.cached_bf16_speedup(settings) == 2.5
    assert precision.cached_bf16_speedup(settings) == 2.5
    assert len(calls) == 1
    cache = json.loads((tmp_path / precision.CACHE_FILE).read_text())
    assert cache == {precision.machine_fingerprint(): 2.5}
    # Forcing the ISA down changes the fingerprint: a cached result never leaks across.
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    assert precision.machine_fingerprint() not in cache


def test_storage_dtype_is_read_from_the_config(tmp_path: Path) -> None:
    assert storage_dtype(tmp_path) is ComputeDtype.BFLOAT16  # no config: the registry default
    (tmp_path / "config.json").write_text(json.dumps({"torch_dtype": "float16"}))
    assert storage_dtype(tmp_path) is ComputeDtype.FLOAT16


def test_a_cpu_forced_down_to_avx2_gets_fp32(tmp_path: Path) -> None:
    """The real probe, with torch and oneDNN limited to AVX2 (as on AMD EPYC without bf16)."""
    code = ("import json; from quanta.precision import resolve; p = resolve(); "
            "print(json.dumps(p.as_dict()))")
    env = {**os.environ, **FORCED_AVX2, "QUANTA_CACHE": str(tmp_path),
           "QUANTA_COMPUTE_DTYPE": "auto"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True, timeout=120).stdout
    chosen = json.loads(out.strip().splitlines()[-1])
    assert chosen["capability"] in ("AVX2", "DEFAULT")  # DEFAULT: a CPU without AVX2 at all
    assert chosen["native_bf16"] is False
    assert chosen["compute_dtype"] == "float32"
    assert not (tmp_path / precision.CACHE_FILE).exists()  # no benchmark where oneDNN says no
