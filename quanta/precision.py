"""Compute precision, chosen by the hardware: one rule for training, evaluation, exports, serving.

Weights are stored as the registry holds them (bf16 safetensors); the dtype they are
*computed* in depends on the device. On a CPU without native bf16 (no avx512_bf16 or
AMX, so oneDNN has no bf16 kernel) torch runs a bf16 matmul in its reference GEMM:
512x576 @ 576x1536 takes ~875 ms there against ~25 ms in fp32 (MKL sgemm). Assuming bf16
made CPU training 25x slower on such machines; this module measures instead.

The rule (:func:`choose`):

* CUDA: bf16 where the GPU supports it, else fp16.
* CPU: bf16 only where oneDNN computes it natively *and* a one-off matmul benchmark
  (cached per machine under ``QUANTA_CACHE``) shows it clearly faster than fp32; else fp32.

Overrides, strongest first: a job's ``quanta.compute_dtype`` or ``quanta serve --dtype``,
then ``QUANTA_COMPUTE_DTYPE``. :meth:`Precision.describe` says what was chosen and why;
the worker puts it in the job's events, the demo and ``quanta serve`` print it.

torch is imported lazily: this module is also imported by the GPTQ environment's worker
and by code paths that never touch a model.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import statistics
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from quanta.config import Settings, get_settings
from quanta.types import ComputeDtype

# bf16 must beat fp32 by this factor on the probe matmul to be chosen on a CPU: where the
# two are close, fp32's extra precision wins.
BF16_MIN_SPEEDUP = 1.1
PROBE_SHAPE = (512, 576, 1536)  # a SmolLM2 MLP projection over a 512-token batch
PROBE_REPEATS = 5
CACHE_FILE = "precision.json"
DEFAULT_STORAGE_DTYPE = ComputeDtype.BFLOAT16


@dataclass(frozen=True)
class Capability:
    """What the device can compute fast, as probed on this machine."""

    device: str  # "cuda" or "cpu"
    name: str  # the CPU's ATen capability ("AVX2", "AVX512", ...) or the GPU's name
    native_bf16: bool  # oneDNN (CPU) or the GPU computes bf16 natively
    bf16_speedup: float | None = None  # CPU probe: fp32 matmul time / bf16 matmul time

    def describe(self) -> str:
        if self.device == "cuda":
            return f"CUDA {self.name} ({'with' if self.native_bf16 else 'without'} bf16)"
        if not self.native_bf16:
            return f"CPU {self.name} without native bf16"
        measured = f", bf16 matmul {self.bf16_speedup:.1f}x fp32" if self.bf16_speedup else ""
        return f"CPU {self.name} with native bf16{measured}"


@dataclass(frozen=True)
class Precision:
    """The chosen compute dtype, the capability it was chosen for, and who chose it."""

    dtype: ComputeDtype
    capability: Capability
    chosen_by: str  # "auto", "QUANTA_COMPUTE_DTYPE", "job", "--dtype", ...

    @property
    def torch_dtype(self) -> Any:
        return torch_dtype(self.dtype)

    @property
    def is_bf16(self) -> bool:
        return self.dtype is ComputeDtype.BFLOAT16

    @property
    def is_fp16(self) -> bool:
        return self.dtype is ComputeDtype.FLOAT16

    def describe(self) -> str:
        how = "auto" if self.chosen_by == "auto" else f"set by {self.chosen_by}"
        return f"compute dtype {self.dtype} ({how}; {self.capability.describe()})"

    def as_dict(self) -> dict[str, Any]:
        """For job events and reports."""
        return {"compute_dtype": str(self.dtype), "chosen_by": self.chosen_by,
                "device": self.capability.device, "capability": self.capability.name,
                "native_bf16": self.capability.native_bf16,
                "bf16_speedup": self.capability.bf16_speedup}


def torch_dtype(dtype: ComputeDtype | str) -> Any:
    import torch

    value = ComputeDtype(dtype)
    if value is ComputeDtype.AUTO:
        raise ValueError("'auto' is not a dtype: resolve it first (quanta.precision.resolve)")
    return getattr(torch, str(value))


def choose(capability: Capability) -> ComputeDtype:
    """The automatic rule (see the module docstring)."""
    if capability.device == "cuda":
        return ComputeDtype.BFLOAT16 if capability.native_bf16 else ComputeDtype.FLOAT16
    if capability.native_bf16 and (capability.bf16_speedup or 0.0) >= BF16_MIN_SPEEDUP:
        return ComputeDtype.BFLOAT16
    return ComputeDtype.FLOAT32


def resolve(requested: ComputeDtype | str | None = None, *, requested_by: str = "request",
            settings: Settings | None = None, device: str | None = None) -> Precision:
    """The compute dtype to use: ``requested`` if concrete, else the setting, else the rule."""
    capability = detect(device)
    if requested is not None and ComputeDtype(requested) is not ComputeDtype.AUTO:
        return Precision(ComputeDtype(requested), capability, requested_by)
    configured = ComputeDtype((settings or get_settings()).compute_dtype)
    if configured is not ComputeDtype.AUTO:
        return Precision(configured, capability, "QUANTA_COMPUTE_DTYPE")
    return Precision(choose(capability), capability, "auto")


def default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


@lru_cache
def detect(device: str | None = None) -> Capability:
    """Probe ``device`` (default: CUDA when present, else the CPU) once per process."""
    import torch

    device = device or default_device()
    if device.startswith("cuda"):
        return Capability("cuda", torch.cuda.get_device_name(), torch.cuda.is_bf16_supported())
    name = torch.backends.cpu.get_cpu_capability()
    if not cpu_native_bf16():
        return Capability("cpu", name, False)
    return Capability("cpu", name, True, cached_bf16_speedup())


def cpu_native_bf16() -> bool:
    """Does oneDNN compute bf16 on this CPU (avx512_core/AMX class), as torch sees it?

    Honours ``ONEDNN_MAX_CPU_ISA`` (and torch's ``ATEN_CPU_CAPABILITY``), which is how
    tests force a capable CPU down to an AVX2 one.
    """
    import torch

    try:
        return bool(torch.backends.mkldnn.is_available()
                    and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def cached_bf16_speedup(settings: Settings | None = None) -> float:
    """fp32 / bf16 time of the probe matmul, measured once per machine and cached."""
    path = (settings or get_settings()).resolved_cache / CACHE_FILE
    key = machine_fingerprint()
    try:
        cache = json.loads(path.read_text())
    except (OSError, ValueError):
        cache = {}
    if isinstance(cache.get(key), int | float):
        return float(cache[key])
    speedup = measure_bf16_speedup()
    cache[key] = round(speedup, 3)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(cache, indent=1, sort_keys=True))
        os.replace(tmp, path)
    except OSError:
        pass  # a read-only home only costs the probe again next time
    return speedup


def measure_bf16_speedup(repeats: int = PROBE_REPEATS) -> float:
    """Median fp32 time over median bf16 time of one projection-sized matmul."""
    import torch

    m, k, n = PROBE_SHAPE

    def seconds(dtype: Any) -> float:
        a = torch.randn(m, k).to(dtype)
        b = torch.randn(k, n).to(dtype)
        a @ b  # warm-up: first-call kernel selection and allocation
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            a @ b
            times.append(time.perf_counter() - started)
        return statistics.median(times)

    return seconds(torch.float32) / max(seconds(torch.bfloat16), 1e-9)


def machine_fingerprint() -> str:
    """What the probe result depends on: CPU model and flags, torch, and ISA overrides."""
    import torch

    model, flags = platform.processor(), ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and not model.strip():
                model = value.strip()
            elif key.strip() == "flags":
                flags = value.strip()
                break
    except OSError:
        pass
    parts = [model, flags, torch.__version__, torch.backends.cpu.get_cpu_capability(),
             os.environ.get("ONEDNN_MAX_CPU_ISA", ""), os.environ.get("ATEN_CPU_CAPABILITY", "")]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


def storage_dtype(model_dir: Path) -> ComputeDtype:
    """The dtype a Hugging Face model directory stores its weights in (config.json)."""
    try:
        config = json.loads((Path(model_dir) / "config.json").read_text())
    except (OSError, ValueError):
        return DEFAULT_STORAGE_DTYPE
    value = config.get("dtype") or config.get("torch_dtype")
    try:
        return ComputeDtype(value) if value else DEFAULT_STORAGE_DTYPE
    except ValueError:
        return DEFAULT_STORAGE_DTYPE
