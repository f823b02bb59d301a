"""Container HEALTHCHECK for Quanta images (stdlib only, so it works in every image).

Usage: ``healthcheck.py [URL]``. The URL defaults to ``$QUANTA_HEALTHCHECK_URL``.
With ``process`` (the tune worker, which serves no HTTP) it only checks that PID 1
is a live ``quanta`` process: the worker is healthy while it runs, and the
container restarts when it exits.
"""

from __future__ import annotations

import os
import sys
import urllib.request


def main() -> int:
    target = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("QUANTA_HEALTHCHECK_URL", "")
    if not target or target == "process":
        try:
            with open("/proc/1/cmdline", "rb") as fh:
                return 0 if b"quanta" in fh.read() else 1
        except OSError:
            return 1
    try:
        with urllib.request.urlopen(target, timeout=5) as resp:
            return 0 if 200 <= resp.status < 300 else 1
    except Exception as exc:  # any failure means unhealthy
        print(f"unhealthy: {target}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
