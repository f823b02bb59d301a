#!/usr/bin/env bash
# Create the GPTQ environment (.venv-gptq by default) beside the main one.
#
# Why a separate venv: gptqmodel 7.6.0 pins numpy==2.2.6 and needs torch<2.14,
# which must not disturb the main environment. quantize.gptq runs
# `<venv>/bin/python -m quantize.gptq_worker` in it as a subprocess.
#
# Pinned by constraints/gptq.txt (the lock; scripts/setup.sh explains it), rewritten
# instead when QUANTA_RELOCK=1 (`make lock`).
#
# Re-running is cheap: pip reuses its wheel cache (the pypcre wheel it compiled
# the first time, ~4 min), and an existing venv is only topped up.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${QUANTA_GPTQ_VENV:-$ROOT/.venv-gptq}"
PYTHON="${PYTHON:-python3.11}"
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3
LOCK_DIR="${QUANTA_LOCK_DIR:-$ROOT/constraints}"
# shellcheck source=scripts/lockfile.sh
. "$ROOT/scripts/lockfile.sh"
lock_args gptq >/dev/null
mapfile -t LOCKED < <(lock_args gptq)

if [[ ! -x "$VENV/bin/python" ]]; then
    echo "creating $VENV with $("$PYTHON" --version)"
    "$PYTHON" -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip)
"${PIP[@]}" install -q --upgrade pip wheel setuptools

# torch first and pinned: the CPU wheel (find-links /opt/wheels on this host,
# or the PyTorch CPU index via PIP_EXTRA_INDEX_URL in CI) so that nothing later
# drags in a CUDA build.
"${PIP[@]}" install -q "${LOCKED[@]}" torch==2.13.0
"${PIP[@]}" install -q "${LOCKED[@]}" torch==2.13.0 gptqmodel==7.6.0 optimum \
    "transformers>=5.16.1,<5.20" peft==0.21.2 safetensors
# The repo itself, without its (main-venv) dependencies: the worker imports
# quantize.gptq_worker and quanta.data only.
# (pip would list quanta's main-venv requirements as missing: on purpose, so not said.)
"${PIP[@]}" install -q --no-deps --no-warn-conflicts -e "$ROOT"
# quanta's own light deps that quanta.data / quanta.config / quanta.calculator import
# (export accuracy decodes with the calculator in this environment).
"${PIP[@]}" install -q --no-warn-conflicts "${LOCKED[@]}" \
    "pydantic>=2.7" "pydantic-settings>=2.3" "simpleeval>=1.0"
write_lock gptq "$VENV/bin/python"
check_lock gptq "$VENV/bin/python"

"$VENV/bin/python" - <<'PY'
import gptqmodel, numpy, torch, transformers
print(f"gptq venv ok: gptqmodel {gptqmodel.__version__}, torch {torch.__version__}, "
      f"transformers {transformers.__version__}, numpy {numpy.__version__}")
PY
