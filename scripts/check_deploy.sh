#!/usr/bin/env bash
# Checks the deployment files without Docker or a cluster:
#   1. static checks (tests/deploy/deploy_checks.py): render k8s/overlays/{cpu,gpu} and
#      k8s/base/jobs with the Python kustomize renderer, validate every object
#      against the Kubernetes schemas (kubernetes-validate) and the CRD schemas,
#      pod-hardening/probe/reference policy, compose/Prometheus/Grafana coherence,
#      Dockerfile rules;
#   2. `kubectl kustomize` renders the same objects (only when kubectl is installed);
#   3. hadolint on the Dockerfile;
#   4. checkov on the Dockerfile, the rendered manifests, and secrets in deploy/ k8s/.
#
# Usage: scripts/check_deploy.sh [--lint-only]
#   --lint-only   steps 3-4 only (tests/deploy/test_manifests.py runs 1-2 itself)
# Env:
#   PYTHON            interpreter with deploy/requirements-check.txt installed
#                     (default: .venv/bin/python if present, else python3)
#   QUANTA_CHECK_VENV where checkov + hadolint live, created on first use and reused
#                     (default: $HOME/.cache/quanta/venv-deploy-check)
# Exit status: 0 all passed, 1 a check failed, 3 the lint venv could not be created.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

LINT_ONLY=0
if [[ "${1:-}" == "--lint-only" ]]; then LINT_ONLY=1; fi

if [[ -n "${PYTHON:-}" ]]; then
  PY="$PYTHON"
elif [[ -x "$ROOT/.venv/bin/python" ]]; then
  PY="$ROOT/.venv/bin/python"
else
  PY="python3"
fi

VENV="${QUANTA_CHECK_VENV:-$HOME/.cache/quanta/venv-deploy-check}"
REQ="$ROOT/deploy/requirements-lint.txt"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
FAILED=()

step() { printf '\n== %s\n' "$*"; }

# Create (once) or refresh the linters' venv; reinstalls only when the pins change.
ensure_lint_venv() {
  local stamp="$VENV/.requirements-lint.sha256" want
  want="$(sha256sum "$REQ" | cut -d' ' -f1)"
  if [[ -x "$VENV/bin/checkov" && -x "$VENV/bin/hadolint" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    return 0
  fi
  step "creating lint venv at $VENV (checkov, hadolint)"
  if ! { mkdir -p "$(dirname "$VENV")" \
         && python3 -m venv "$VENV" \
         && "$VENV/bin/pip" install --quiet --disable-pip-version-check -r "$REQ"; }; then
    echo "check_deploy: cannot create the lint venv at $VENV" >&2
    exit 3
  fi
  echo "$want" > "$stamp"
}

if [[ $LINT_ONLY -eq 0 ]]; then
  step "static checks (render, schemas, policy, compose, Dockerfile)"
  if ! "$PY" tests/deploy/deploy_checks.py --write-rendered "$WORK/rendered"; then
    FAILED+=("static checks")
  fi
  if command -v kubectl >/dev/null 2>&1; then
    step "kubectl kustomize renders the same objects"
    if ! "$PY" tests/deploy/compare_kubectl.py; then FAILED+=("kubectl kustomize comparison"); fi
  else
    step "kubectl not installed: skipping the kubectl kustomize comparison"
  fi
else
  "$PY" - "$WORK/rendered" <<'PYEOF'
import sys
from pathlib import Path
sys.path.insert(0, "tests/deploy")
import yaml
from deploy_checks import render_all
out = Path(sys.argv[1]); out.mkdir(parents=True, exist_ok=True)
for name, objs in render_all().items():
    with (out / f"{name}.yaml").open("w") as fh:
        yaml.safe_dump_all(objs, fh, sort_keys=False)
PYEOF
fi

ensure_lint_venv

step "hadolint Dockerfile"
if ! "$VENV/bin/hadolint" --no-color Dockerfile; then FAILED+=("hadolint"); fi

# --skip-download: no calls to the Prisma Cloud API (there is no network).
CHECKOV=("$VENV/bin/checkov" --skip-download --compact --quiet)
step "checkov: Dockerfile"
if ! "${CHECKOV[@]}" --framework dockerfile -f Dockerfile; then FAILED+=("checkov dockerfile"); fi
step "checkov: rendered Kubernetes manifests (cpu, gpu, jobs)"
if ! "${CHECKOV[@]}" --framework kubernetes -d "$WORK/rendered"; then FAILED+=("checkov kubernetes"); fi
step "checkov: secrets in deploy/ and k8s/"
if ! "${CHECKOV[@]}" --framework secrets -d deploy -d k8s; then FAILED+=("checkov secrets"); fi

echo
if [[ ${#FAILED[@]} -gt 0 ]]; then
  echo "check_deploy: FAILED: ${FAILED[*]}"
  exit 1
fi
echo "check_deploy: all deployment checks passed"
