"""llama.cpp's Python converters, taken from the pinned llama-cpp-python sdist, and its quantizer.

PyPI has llama-cpp-python 0.3.36 only as an sdist; that sdist vendors llama.cpp's
``convert_hf_to_gguf.py``, ``convert_lora_to_gguf.py``, their ``conversion/`` package and
the matching ``gguf-py``. The PyPI ``gguf`` package does not work with these converters
(no ``LazyChunkedTensor``), so we extract the four pieces once into a cache directory and
run the converters in a subprocess with ``PYTHONPATH`` pointing at the bundled gguf-py.
Quantization (q8_0, q4_k_m) goes through ``llama_cpp.llama_model_quantize``: no llama.cpp
binaries are needed.
"""

from __future__ import annotations

import os

# llama.cpp's OpenMP threads spin while waiting; on busy cores that drops decode from
# ~50 to ~4 tokens/s. Must be set before llama_cpp (and its libgomp) is first loaded.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from quanta.config import get_settings
from quanta.processes import die_with_parent
from quantize.errors import ConversionError, ToolMissingError

LLAMA_CPP_PYTHON_VERSION = "0.3.36"
SDIST_NAME = f"llama_cpp_python-{LLAMA_CPP_PYTHON_VERSION}.tar.gz"
VENDOR_PREFIX = f"llama_cpp_python-{LLAMA_CPP_PYTHON_VERSION}/vendor/llama.cpp/"
# What the converters need, relative to vendor/llama.cpp/.
TOOL_MEMBERS = ("convert_hf_to_gguf.py", "convert_lora_to_gguf.py", "conversion/", "gguf-py/")


def tools_dir() -> Path:
    """Where the extracted converters live (``QUANTA_LLAMA_CPP_TOOLS`` or the cache)."""
    settings = get_settings()
    if settings.llama_cpp_tools is not None:
        return settings.llama_cpp_tools.expanduser()
    return settings.resolved_cache / f"llama.cpp-{LLAMA_CPP_PYTHON_VERSION}"


def sdist_path() -> Path:
    """The llama-cpp-python sdist: ``QUANTA_LLAMA_CPP_SDIST`` or ``$QUANTA_CACHE/sdist/``."""
    settings = get_settings()
    if settings.llama_cpp_sdist is not None:
        return settings.llama_cpp_sdist.expanduser()
    return settings.resolved_cache / "sdist" / SDIST_NAME


def _complete(directory: Path) -> bool:
    return all((directory / m.rstrip("/")).exists() for m in TOOL_MEMBERS) and (
        directory / "gguf-py" / "gguf" / "__init__.py").is_file()


def ensure_tools() -> Path:
    """The directory holding the converters, extracting them from the sdist on first use."""
    target = tools_dir()
    if _complete(target):
        return target
    sdist = sdist_path()
    if not sdist.is_file():
        raise ToolMissingError(
            f"llama.cpp's converters are not in {target} and the llama-cpp-python sdist is "
            f"not at {sdist}. Get it with `pip download --no-deps --no-binary :all: "
            f"llama-cpp-python=={LLAMA_CPP_PYTHON_VERSION} -d {sdist.parent}` (or set "
            "QUANTA_LLAMA_CPP_SDIST), or run scripts/llama_cpp_tools.sh")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".llama.cpp-", dir=target.parent))
    try:
        with tarfile.open(sdist, "r:gz") as tar:
            members = []
            for member in tar.getmembers():
                if not member.name.startswith(VENDOR_PREFIX):
                    continue
                rel = member.name[len(VENDOR_PREFIX):]
                if any(rel == m or (m.endswith("/") and rel.startswith(m)) for m in TOOL_MEMBERS):
                    member.name = rel
                    members.append(member)
            if not members:
                raise ToolMissingError(f"{sdist} does not contain {VENDOR_PREFIX}")
            tar.extractall(tmp, members=members, filter="data")
        if not _complete(tmp):
            raise ToolMissingError(f"{sdist} lacks some of {', '.join(TOOL_MEMBERS)}")
        try:
            os.replace(tmp, target)
        except OSError:
            if not _complete(target):  # another process won the race: fine
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def gguf_support(architecture: str) -> str | None:
    """None when llama.cpp's HF converter registers ``architecture`` (what the llama-cpp
    engine serves is a GGUF export of it); else why not. Read from the converter's
    source, which maps each architecture name to the module converting it."""
    try:
        tools = ensure_tools()
    except ToolMissingError as exc:
        return str(exc)
    needle = f'"{architecture}"'
    sources = [tools / "convert_hf_to_gguf.py", *(tools / "conversion").glob("*.py")]
    if any(needle in path.read_text(errors="replace") for path in sources):
        return None
    return f"llama.cpp's GGUF converter has no {architecture}"


def run_converter(script: str, args: list[str], *, timeout: float = 1800) -> str:
    """Run one of llama.cpp's converter scripts with its bundled gguf-py; returns its log."""
    tools = ensure_tools()
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(tools / "gguf-py"), str(tools), *filter(None, [env.get("PYTHONPATH")])])
    env.setdefault("HF_HUB_OFFLINE", "1")  # converters must never reach the hub
    env.setdefault("TRANSFORMERS_OFFLINE", "1")
    env.pop("NO_LOCAL_GGUF", None)
    proc = subprocess.run([sys.executable, str(tools / script), *args], env=env, cwd=tools,
                          capture_output=True, text=True, timeout=timeout, check=False,
                          preexec_fn=die_with_parent())
    log = proc.stdout + proc.stderr
    if proc.returncode != 0:
        tail = "\n".join(log.strip().splitlines()[-15:])
        raise ConversionError(f"{script} failed (exit {proc.returncode}):\n{tail}")
    return log


if __name__ == "__main__":  # `python -m quantize.llama_cpp_tools`: extract once, print where
    print(ensure_tools())
