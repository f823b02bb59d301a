#!/usr/bin/env bash
# Checks the deployment files without Docker or a cluster, with the real tools:
#   1. static checks (tests/deploy/deploy_checks.py): render k8s/overlays/{cpu,gpu} and
#      k8s/base/jobs with `kubectl kustomize`, validate every object against the
#      Kubernetes schemas (kubernetes-validate) and the CRD schemas, cross-references
#      between objects, compose/Prometheus/Grafana coherence, the Dockerfile's own rules;
#   2. hadolint on the Dockerfile;
#   3. checkov on the Dockerfile, the rendered manifests (pod hardening, probes,
#      resources, image pins), and secrets in deploy/ k8s/.
#
# Usage: scripts/check_deploy.sh [--lint-only] [--rendered DIR] [--dockerfile FILE]
#   --lint-only        steps 2-3 only (tests/deploy/test_manifests.py runs step 1 itself)
#   --rendered DIR     lint these rendered manifests instead of rendering k8s/ (tests use
#                      it to show that a broken copy is caught)
#   --dockerfile FILE  lint this Dockerfile instead of ./Dockerfile
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
RENDERED=""
DOCKERFILE="Dockerfile"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --lint-only) LINT_ONLY=1 ;;
    --rendered) RENDERED="$2"; shift ;;
    --dockerfile) DOCKERFILE="$2"; shift ;;
    *) echo "check_deploy: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done

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

if [[ -z "$RENDERED" ]]; then
  RENDERED="$WORK/rendered"
  ONLY=()
  if [[ $LINT_ONLY -eq 1 ]]; then ONLY=(--render-only); fi
  step "static checks (kubectl kustomize, schemas, references, compose, Dockerfile)"
  if ! "$PY" tests/deploy/deploy_checks.py --write-rendered "$RENDERED" "${ONLY[@]}"; then
    FAILED+=("static checks")
  fi
fi

ensure_lint_venv

step "hadolint Dockerfile"
if ! "$VENV/bin/hadolint" --no-color "$DOCKERFILE"; then FAILED+=("hadolint"); fi

# --skip-download: no calls to the Prisma Cloud API (there is no network).
CHECKOV=("$VENV/bin/checkov" --skip-download --compact --quiet)
step "checkov: Dockerfile"
if ! "${CHECKOV[@]}" --framework dockerfile -f "$DOCKERFILE"; then FAILED+=("checkov dockerfile"); fi
step "checkov: rendered Kubernetes manifests (cpu, gpu, jobs)"
if ! "${CHECKOV[@]}" --framework kubernetes -d "$RENDERED"; then FAILED+=("checkov kubernetes"); fi
step "checkov: secrets in deploy/, k8s/ and the Dockerfile"
if ! "${CHECKOV[@]}" --framework secrets -d deploy -d k8s -f "$DOCKERFILE"; then FAILED+=("checkov secrets"); fi

echo
if [[ ${#FAILED[@]} -gt 0 ]]; then
  echo "check_deploy: FAILED: ${FAILED[*]}"
  exit 1
fi
echo "check_deploy: all deployment checks passed"
