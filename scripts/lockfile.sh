# Sourced by scripts/setup.sh and scripts/setup_gptq.sh: the lock of each environment.
#
# constraints/<env>.txt pins every package of an environment (pip constraints,
# `name==version`), so a fresh machine installs what CI tested; `make lock`
# (QUANTA_RELOCK=1) resolves afresh and rewrites them, then runs the suite.

# lock_args ENV: print pip's arguments that hold ENV to its lock, one a line (none when
# relocking); exit 2 when the lock is missing.
lock_args() {
    local lock="$LOCK_DIR/$1.txt"
    [ "${QUANTA_RELOCK:-0}" = 1 ] && return 0
    [ -f "$lock" ] || { echo "no lock at $lock: run 'make lock'" >&2; exit 2; }
    printf '%s\n' -c "$lock"
}

# write_lock ENV PYTHON: when relocking, freeze PYTHON's environment into ENV's lock.
write_lock() {
    [ "${QUANTA_RELOCK:-0}" = 1 ] || return 0
    local lock="$LOCK_DIR/$1.txt"
    mkdir -p "$LOCK_DIR"
    {
        echo "# The $1 environment's lock (pip constraints), written by 'make lock' on"
        echo "# $(date -u +%Y-%m-%d) with $("$2" --version). Do not edit by hand."
        "$2" -m pip list --format=freeze --exclude-editable | sort -f
    } > "$lock"
    echo "lock written: $lock ($(grep -vc '^#' "$lock") packages)"
}

# check_lock ENV PYTHON: fail unless every package PYTHON's environment holds is pinned
# in ENV's lock at that version (what was installed is what the lock says).
check_lock() {
    [ "${QUANTA_RELOCK:-0}" = 1 ] && return 0
    "$2" - "$LOCK_DIR/$1.txt" <<'PY'
import sys
from importlib.metadata import distributions

from packaging.utils import canonicalize_name

pins = {}
for line in open(sys.argv[1]):
    line = line.strip()
    if line and not line.startswith("#"):
        name, _, version = line.partition("==")
        pins[canonicalize_name(name)] = version
unpinned = {"quanta", "pip", "setuptools", "wheel"}  # the project itself; pip's own tools
drift = []
for dist in distributions():
    name = canonicalize_name(dist.metadata["Name"])
    if name not in unpinned and pins.get(name) != dist.version:
        drift.append(f"{name} {dist.version} (lock: {pins.get(name, 'absent')})")
if drift:
    sys.exit(f"installed but not as locked in {sys.argv[1]}:\n  " + "\n  ".join(sorted(drift)))
print(f"lock check: {len(pins)} pins, every installed package as locked")
PY
}
