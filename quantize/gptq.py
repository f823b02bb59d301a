"""GPTQ export: 4-bit gptqmodel quantization of the merged model, run in its own venv.

gptqmodel 7.6.0 pins numpy 2.2.6 and needs torch<2.14, so it cannot share the main
environment: ``scripts/setup_gptq.sh`` builds ``.venv-gptq`` and this module runs
``<venv>/bin/python -m quantize.gptq_worker`` there, with only Quanta's own packages put
on its path (from wherever they are installed: a checkout or a wheel), never the main
environment's site-packages. Calibration uses the adapter's own
training data (what the merged model will see in use), falling back to the bundled
physics problems.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import quanta
import quantize
from quanta.config import get_settings
from quanta.processes import die_with_parent
from quanta.types import ComputeDtype
from quantize.errors import ConversionError, ToolMissingError

GROUP_SIZES = (128, 64, 32)
DEFAULT_SAMPLES = 64
GPTQ_VENV_NAME = ".venv-gptq"
# The packages the worker imports, put on the GPTQ environment's path.
WORKER_PACKAGES = (quanta, quantize)


def group_size_for(*in_features: int) -> int:
    """128, or the largest of 128/64/32 dividing the input size of every projection: the
    CPU int4 kernel needs K divisible by the group size (a hidden size of 576 -> 64)."""
    for size in GROUP_SIZES:
        if all(k % size == 0 for k in in_features):
            return size
    raise ConversionError(f"input sizes {sorted(set(in_features))} are not all multiples of "
                          "32: GPTQ unsupported")


def projection_inputs(model_dir: Path) -> list[int]:
    """The input size (K) of every matrix in the decoder layers, from the weights' headers."""
    from quanta.base_info import weight_shapes

    return [shape[1] for name, shape in weight_shapes(model_dir).items()
            if ".layers." in name and len(shape) == 2]


def gptq_venv() -> Path:
    """``QUANTA_GPTQ_VENV``, else ``.venv-gptq`` beside the running interpreter's venv (the
    layout scripts/setup.sh makes: ``.venv`` and ``.venv-gptq`` side by side)."""
    configured = get_settings().gptq_venv
    return (configured or Path(sys.prefix).parent / GPTQ_VENV_NAME).expanduser()


def gptq_python() -> Path:
    """The GPTQ environment's interpreter, or a ToolMissingError saying how to build it."""
    python = gptq_venv() / "bin" / "python"
    if not python.is_file():
        raise ToolMissingError(
            f"the GPTQ environment {gptq_venv()} does not exist: run scripts/setup_gptq.sh "
            "(or point QUANTA_GPTQ_VENV at one with gptqmodel==7.6.0)")
    return python


def worker_path(workdir: Path) -> Path:
    """A directory holding links to Quanta's own packages only, for the worker's PYTHONPATH."""
    root = workdir / "gptq-path"
    root.mkdir(parents=True, exist_ok=True)
    for package in WORKER_PACKAGES:
        link = root / package.__name__
        if not link.is_symlink():
            link.symlink_to(Path(package.__file__).resolve().parent, target_is_directory=True)
    return root


def run_worker(args: list[str], result_file: Path, *, timeout: float = 3600) -> dict[str, Any]:
    env = dict(os.environ)
    env.setdefault("GPTQMODEL_CPU_WORKERS", "2")
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    path = worker_path(result_file.parent)
    env["PYTHONPATH"] = os.pathsep.join([str(path), *filter(None, [env.get("PYTHONPATH")])])
    proc = subprocess.run([str(gptq_python()), "-m", "quantize.gptq_worker", *args,
                           "--result", str(result_file)], env=env, cwd=path,
                          capture_output=True, text=True, timeout=timeout, check=False,
                          preexec_fn=die_with_parent())
    if proc.returncode != 0 or not result_file.is_file():
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-20:])
        raise ConversionError(f"GPTQ worker failed (exit {proc.returncode}):\n{tail}")
    return json.loads(result_file.read_text())


def write_calibration(examples: list[dict[str, Any]], path: Path) -> Path:
    with open(path, "w") as fh:
        for example in examples:
            if example.get("messages"):
                fh.write(json.dumps({"messages": example["messages"]}) + "\n")
            elif example.get("prompt") and example.get("chosen"):  # preference data
                fh.write(json.dumps({"messages": [*example["prompt"], *example["chosen"]]})
                         + "\n")
    return path


def quantize_gptq(merged_dir: Path, out_dir: Path, calibration: list[dict[str, Any]],
                  eval_text: str, workdir: Path, *, dtype: ComputeDtype, bits: int = 4,
                  samples: int = DEFAULT_SAMPLES) -> dict[str, Any]:
    """Quantize ``merged_dir`` into ``out_dir``, computing in ``dtype`` (the precision rule's
    choice, made here in the main environment); returns the worker's result (perplexities,
    the saved quantization_config, timings)."""
    group_size = group_size_for(*projection_inputs(merged_dir))
    calib = write_calibration(calibration, workdir / "calibration.jsonl")
    text = workdir / "eval.txt"
    text.write_text(eval_text)
    return run_worker(["quantize", "--model", str(merged_dir), "--out", str(out_dir),
                       "--calibration", str(calib), "--bits", str(bits),
                       "--group-size", str(group_size), "--samples", str(samples),
                       "--eval-text", str(text), "--dtype", str(dtype)],
                      workdir / "gptq-result.json")


def generate_gptq(model_dir: Path, prompt: str, workdir: Path, max_tokens: int = 32,
                  loader: str = "gptqmodel") -> dict[str, Any]:
    """Greedy completion from a GPTQ directory in the GPTQ venv, loaded by gptqmodel or by
    transformers (+ optimum): ``{"text", "tokens", "seconds", "linear_class"}``."""
    from quanta.precision import resolve

    return run_worker(["generate", "--model", str(model_dir), "--prompt", prompt,
                       "--max-tokens", str(max_tokens), "--loader", loader,
                       "--dtype", str(resolve().dtype)],
                      workdir / f"gptq-generate-{loader}.json")


def gptq_answers(model_dir: Path, conversations: list[list[dict[str, Any]]], workdir: Path, *,
                 calculator: bool, max_tokens: int = 128) -> list[str]:
    """Greedy answers from a GPTQ directory, loaded by gptqmodel in the GPTQ venv (with
    calculator decoding when the adapter writes calculation traces)."""
    from quanta.precision import resolve

    source = workdir / "gptq-conversations.json"
    source.write_text(json.dumps(conversations))
    args = ["answers", "--model", str(model_dir), "--conversations", str(source),
            "--max-tokens", str(max_tokens), "--dtype", str(resolve().dtype)]
    result = run_worker(args + (["--calculator"] if calculator else []),
                        workdir / "gptq-answers.json")
    return list(result["answers"])
