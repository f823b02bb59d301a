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
