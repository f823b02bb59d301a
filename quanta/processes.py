"""Child processes that serve something: start in their own group, wait until healthy, stop.

The demo, the benchmarks and the tests start Quanta's servers (``quanta tune api``,
``quanta serve``, workers) as child processes. Each runs in its own session so it and
its children (vLLM's engine core) stop together, and so a Ctrl-C in the terminal
reaches only the parent, which then stops them in order. A parent killed outright
(``kill -9``, the OOM killer) gets no chance to: on Linux each child asks the kernel
for SIGTERM when its parent dies (``PR_SET_PDEATHSIG``), and a ``ServiceLedger`` lets
the next run stop what an earlier one left anyway.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
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


PR_SET_PDEATHSIG = 1
# Resolved here, not in the child: between fork and exec of a threaded parent only
# async-signal-safe work is safe, and loading a library is not.
_prctl = ctypes.CDLL(None, use_errno=True).prctl if sys.platform.startswith("linux") else None


def die_with_parent() -> Callable[[], None]:
    """A ``preexec_fn``: the child gets SIGTERM when this process dies (Linux; the kernel
    watches the thread that started the child, so start long-lived ones from the main
    thread). For every helper process a killed parent must not leave running."""
    parent = os.getpid()

    def arrange() -> None:
        if _prctl is not None:
            _prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before the request took effect
            os._exit(1)

    return arrange


def exit_with_parent(sig: int = signal.SIGTERM) -> None:
    """Ask for ``sig`` when this process's parent dies (for a process started by another
    program, torchrun say, that cannot pass a ``preexec_fn``)."""
    if _prctl is not None:
        _prctl(PR_SET_PDEATHSIG, sig, 0, 0, 0)


def start_process(argv: list[str], log: Path, env: dict[str, str] | None = None
                  ) -> subprocess.Popen[bytes]:
    """Start ``argv`` in its own process group, stdout and stderr appended to ``log``;
    ``env`` is its whole environment (default: this process's). It gets SIGTERM if this
    process dies without stopping it."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        return subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env,
                                start_new_session=True, preexec_fn=die_with_parent())


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


class ServiceLedger:
    """The services one program runs, written down (``pid``, start time, command) so that
    its next run can stop those a killed run left behind, and only those."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _read(self) -> list[dict[str, object]]:
        try:
            return list(json.loads(self.path.read_text()))
        except (OSError, ValueError):
            return []

    def _write(self, entries: list[dict[str, object]]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(entries))
        os.replace(tmp, self.path)

    def add(self, proc: subprocess.Popen[bytes], argv: list[str]) -> None:
        self._write([*self._read(), {"pid": proc.pid, "started": _start_time(proc.pid),
                                     "argv": argv}])

    def remove(self, proc: subprocess.Popen[bytes]) -> None:
        self._write([e for e in self._read() if e["pid"] != proc.pid])

    def stop_stale(self, grace: float = 15.0) -> list[int]:
        """Stop every recorded service still running (same pid *and* start time: never
        a process that reused the pid); returns their pids."""
        stopped = []
        for entry in self._read():
            pid = int(entry["pid"])  # type: ignore[call-overload]
            if _start_time(pid) != entry.get("started") or entry.get("started") is None:
                continue
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGTERM)
                deadline = time.monotonic() + grace
                while _start_time(pid) is not None and time.monotonic() < deadline:
                    time.sleep(0.2)
                os.killpg(pid, signal.SIGKILL)
            stopped.append(pid)
        self._write([])
        return stopped


def _start_time(pid: int) -> str | None:
    """The process's start time (field 22 of ``/proc/<pid>/stat``), or None if it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[-1].split()[19]


@contextmanager
def service(argv: list[str], log: Path, health_url: str | None = None,
            timeout: float = 300.0, env: dict[str, str] | None = None,
            grace: float = 15.0, ledger: ServiceLedger | None = None
            ) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``argv`` (see :func:`start_process`), wait for ``health_url``, stop it after,
    whatever happens in between (Ctrl-C included); ``ledger`` records it meanwhile."""
    proc = start_process(argv, log, env)
    if ledger is not None:
        ledger.add(proc, argv)
    try:
        if health_url:
            wait_healthy(health_url, proc, timeout, log)
        yield proc
    finally:
        stop_process(proc, grace)
        if ledger is not None:
            ledger.remove(proc)
