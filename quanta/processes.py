"""Child processes that serve something: start in their own group, wait until healthy, stop.

The demo, the benchmarks and the tests start Quanta's servers (``quanta tune api``,
``quanta serve``, workers) as child processes. Each runs in its own session so it and
its children (vLLM's engine core) stop together, and so a Ctrl-C in the terminal
reaches only the parent, which then stops them in order.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx


class ServiceFailed(RuntimeError):
    """A service exited or never became healthy; the message carries its log tail."""


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def log_tail(path: Path | None, lines: int = 60) -> str:
    if path is None:
        return ""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return ""


def start_process(argv: list[str], log: Path, env: dict[str, str] | None = None
                  ) -> subprocess.Popen[bytes]:
    """Start ``argv`` in its own process group, stdout and stderr appended to ``log``;
    ``env`` is its whole environment (default: this process's)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        return subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env,
                                start_new_session=True)


def quanta_command(*args: str) -> list[str]:
    """``quanta <args>`` run with this interpreter (works without the console script)."""
    return [sys.executable, "-m", "quanta.cli", *args]


def wait_healthy(url: str, proc: subprocess.Popen[bytes], timeout: float,
                 log: Path | None = None) -> float:
    """Poll ``url`` until it answers 200; returns the seconds waited.

    Raises ServiceFailed (with the log's tail) if the process exits or time runs out.
    """
    started = time.monotonic()
    while True:
        if proc.poll() is not None:
            raise ServiceFailed(f"{url}: the server exited with {proc.returncode}:\n"
                                f"{log_tail(log)}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return time.monotonic() - started
        except httpx.HTTPError:
            pass
        if time.monotonic() - started > timeout:
            raise ServiceFailed(f"{url} not healthy after {timeout:.0f}s:\n{log_tail(log)}")
        time.sleep(1)


def stop_process(proc: subprocess.Popen[bytes], grace: float = 60) -> None:
    """SIGTERM the leader (servers stop their own children), then SIGKILL what is left
    of its process group after ``grace`` seconds."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=grace)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)


@contextmanager
def service(argv: list[str], log: Path, health_url: str | None = None,
            timeout: float = 300.0, env: dict[str, str] | None = None,
            grace: float = 15.0) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``argv`` (see :func:`start_process`), wait for ``health_url``, stop it after,
    whatever happens in between (Ctrl-C included)."""
    proc = start_process(argv, log, env)
    try:
        if health_url:
            wait_healthy(health_url, proc, timeout, log)
        yield proc
    finally:
        stop_process(proc, grace)
