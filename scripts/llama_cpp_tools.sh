#!/usr/bin/env bash
# Put llama.cpp's Python converters (convert_hf_to_gguf.py, convert_lora_to_gguf.py,
# conversion/, gguf-py/) where quantize/ finds them: ~/.cache/quanta/llama.cpp-0.3.36
# (or $QUANTA_LLAMA_CPP_TOOLS). They come from the pinned llama-cpp-python sdist, which
# is fetched from PyPI only when it is not cached yet (~/.cache/quanta/sdist or
# $QUANTA_LLAMA_CPP_SDIST). The export code extracts on first use too; CI runs this
# up front so a missing sdist fails the setup step, not a test.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"
VERSION=0.3.36
SDIST="${QUANTA_LLAMA_CPP_SDIST:-${QUANTA_CACHE:-$HOME/.cache/quanta}/sdist/llama_cpp_python-$VERSION.tar.gz}"

if [[ ! -f "$SDIST" ]]; then
    mkdir -p "$(dirname "$SDIST")"
    "$PYTHON" -m pip download --no-deps --no-binary :all: "llama-cpp-python==$VERSION" \
        -d "$(dirname "$SDIST")"
fi
cd "$ROOT"
QUANTA_LLAMA_CPP_SDIST="$SDIST" "$PYTHON" -m quantize.llama_cpp_tools
