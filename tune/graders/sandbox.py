"""Run a tenant's python grader where it can hurt nothing: bubblewrap plus rlimits.

The code runs as ``nobody`` in fresh user, PID, network, IPC, UTS and cgroup namespaces
(``bwrap --unshare-all``): no network (not even the host's loopback), no view of the
host's processes, an empty environment, and a file system made of ``/usr`` read-only,
the grader's own input files read-only and a small ``/tmp``. The registry, its
database, other tenants' files and the worker's secrets are simply not there.
rlimits bound address space, CPU seconds, file size (so output), open files and
processes (a fork bomb runs out of them); a wall-clock timer kills the whole process
group, and the PID namespace takes every descendant with it.

Input goes in as files; the result comes back on an inherited file descriptor of its
own, so whatever the grader prints cannot be mistaken for its score.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

NOBODY = 65534

# Runs inside the sandbox with python -I -S -B: stdlib only, no site-packages.
_RUNNER = '''\
import json, os, sys, traceback

RESULT_FD = int(sys.argv[1])

def _report(payload):
    os.write(RESULT_FD, json.dumps(payload).encode())

try:
    with open("/sandbox/input.json") as fh:
        data = json.load(fh)
    with open("/sandbox/grader.py") as fh:
        source = fh.read()
    namespace = {"__name__": "grader"}
    exec(compile(source, "grader.py", "exec"), namespace)
    value = namespace["grade"](data["sample"], data["item"])
    try:
        _report({"score": value})
    except (TypeError, ValueError):
        _report({"error": "grade returned %s, not a number" % type(value).__name__})
except BaseException as exc:
    _report({"error": "%s: %s" % (type(exc).__name__, str(exc)[:500]),
             "traceback": traceback.format_exc()[-2000:]})
    sys.exit(1)
'''


class SandboxUnavailable(RuntimeError):
    """bubblewrap or a system python is missing: python graders cannot run here."""


@dataclass(frozen=True)
class Limits:
    wall_seconds: float = 10.0
    cpu_seconds: int = 5
    memory_bytes: int = 512 * 1024 * 1024
    output_bytes: int = 64 * 1024
    tmp_bytes: int = 16 * 1024 * 1024
    processes: int = 32
    open_files: int = 64


@dataclass
class SandboxRun:
    """What came back: the grader's result object (or None) and how the process ended."""

    result: dict[str, Any] | None
    returncode: int | None
    timed_out: bool
    output: str  # the tail of what the grader printed (stdout and stderr)
    seconds: float

    def failure(self) -> str | None:
        """Why there is no score, in words (None when the grader returned one)."""
        if self.timed_out:
            return "the grader ran out of time"
        if self.result is not None and "error" in self.result:
            return str(self.result["error"])
        number = _signal_number(self.returncode)
        if number is not None:
            name = signal.Signals(number).name
            hint = {"SIGXCPU": " (CPU time limit)", "SIGXFSZ": " (output limit)",
                    "SIGKILL": " (killed)", "SIGSEGV": " (crashed; memory limit?)"}
            return f"the grader died with {name}{hint.get(name, '')}"
        if self.returncode != 0:
            return f"the grader exited with status {self.returncode}"
        if self.result is None:
            return "the grader returned no result"
        return None


def _signal_number(returncode: int | None) -> int | None:
    """The signal that ended the grader: bwrap itself (negative) or the code inside it
    (bwrap exits with 128 + the signal)."""
    if returncode is None:
        return None
    number = -returncode if returncode < 0 else returncode - 128
    return number if number in {s.value for s in signal.Signals} else None


def sandbox_python(configured: Path | None = None) -> str:
    """The interpreter graders run with: configured, else the system python3 under /usr
    (bound read-only into the sandbox)."""
    candidates = [configured] if configured else [Path("/usr/bin/python3"),
                                                  Path("/usr/local/bin/python3")]
    for path in candidates:
        if path and path.exists() and str(path).startswith("/usr/"):
            return str(path)
    raise SandboxUnavailable("python graders need a python3 under /usr (the only tree bound "
                             "into the sandbox); set QUANTA_GRADER_PYTHON")


def bwrap_path() -> str:
    path = shutil.which("bwrap")
    if path is None:
        raise SandboxUnavailable("python graders need bubblewrap: apt-get install bubblewrap")
    return path


def _command(python: str, inputs: Path, limits: Limits, result_fd: int,
             info_fd: int) -> list[str]:
    command = [bwrap_path(), "--info-fd", str(info_fd), "--unshare-all", "--die-with-parent",
               "--new-session", "--clearenv", "--cap-drop", "ALL", "--ro-bind", "/usr", "/usr"]
    for path in ("/lib", "/lib64", "/bin"):  # symlinks into /usr on merged-/usr systems
        command += ["--ro-bind-try", path, path]
    command += ["--proc", "/proc", "--dev", "/dev",
                "--size", str(limits.tmp_bytes), "--tmpfs", "/tmp",
                "--ro-bind", str(inputs), "/sandbox", "--chdir", "/sandbox",
                "--setenv", "PATH", "/usr/bin", "--setenv", "HOME", "/tmp",
                python, "-I", "-S", "-B", "/sandbox/runner.py", str(result_fd)]
    return command


def _set_limits(limits: Limits, limit_processes: bool) -> None:
    """In the child, after it became ``nobody``, before bwrap starts."""
    resource.setrlimit(resource.RLIMIT_AS, (limits.memory_bytes, limits.memory_bytes))
    resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_seconds, limits.cpu_seconds + 1))
    resource.setrlimit(resource.RLIMIT_FSIZE, (limits.output_bytes, limits.output_bytes))
    resource.setrlimit(resource.RLIMIT_NOFILE, (limits.open_files, limits.open_files))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if limit_processes:
        resource.setrlimit(resource.RLIMIT_NPROC, (limits.processes, limits.processes))


def run_python_grader(source: str, sample: dict[str, Any], item: dict[str, Any],
                      limits: Limits | None = None, python: Path | None = None) -> SandboxRun:
    """Run ``grade(sample, item)`` from ``source`` in the sandbox."""
    limits = limits or Limits()
    interpreter = sandbox_python(python)
    root = Path(tempfile.mkdtemp(prefix="quanta-grader-"))
    try:
        inputs = root / "in"
        inputs.mkdir()
        (inputs / "runner.py").write_text(_RUNNER)
        (inputs / "grader.py").write_text(source)
        (inputs / "input.json").write_text(json.dumps({"sample": sample, "item": item}))
        for path in (root, inputs, *inputs.iterdir()):
            path.chmod(0o755 if path.is_dir() else 0o644)
        as_root = os.geteuid() == 0
        drop: dict[str, Any] = ({"user": NOBODY, "group": NOBODY, "extra_groups": []}
                                if as_root else {})
        with open(root / "result", "w+b") as result, open(root / "output", "w+b") as output, \
                open(root / "info", "w+b") as info:
            started = time.monotonic()
            proc = subprocess.Popen(
                _command(interpreter, inputs, limits, result.fileno(), info.fileno()),
                stdin=subprocess.DEVNULL, stdout=output, stderr=output,
                start_new_session=True, close_fds=True,
                pass_fds=(result.fileno(), info.fileno()), env={}, cwd=str(root),
                preexec_fn=partial(_set_limits, limits, as_root), **drop)
            timed_out = False
            try:
                proc.wait(timeout=limits.wall_seconds)
            except subprocess.TimeoutExpired:
                timed_out = True
            finally:
                _kill_group(proc)
                info.seek(0)
                _wait_namespace_gone(info.read(4096))
            seconds = time.monotonic() - started
            result.seek(0)
            raw = result.read(limits.output_bytes)
            output.seek(0, os.SEEK_END)
            output.seek(max(0, output.tell() - 2000))
            tail = output.read().decode("utf-8", "replace")
        try:
            parsed = json.loads(raw) if raw else None
        except ValueError:
            parsed = {"error": "the grader's result was not readable"}
        if parsed is not None and not isinstance(parsed, dict):
            parsed = {"error": "the grader's result was not readable"}
        return SandboxRun(result=parsed, returncode=proc.returncode, timed_out=timed_out,
                          output=tail, seconds=seconds)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _wait_namespace_gone(info: bytes, timeout: float = 10.0) -> None:
    """Wait until the sandbox's PID namespace is torn down (its init, whose pid bwrap
    reported, is gone): the kernel kills every process in it, a fork bomb's too, but not
    instantly, and the next grader would find the process limit still used up."""
    try:
        child = int(json.loads(info.decode() or "{}")["child-pid"])
    except (ValueError, KeyError, TypeError):
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{child}/stat") as fh:
                if fh.read().rsplit(")", 1)[-1].split()[0] == "Z":
                    return  # a zombie holds no resources; its reaper will collect it
        except OSError:
            return
        time.sleep(0.01)


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL the sandbox's process group (bwrap and, through its PID namespace, all)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
