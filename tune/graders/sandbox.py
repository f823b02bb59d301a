"""Run a tenant's python grader where it can hurt nothing, not even another tenant's grader.

Each run gets its own identity and its own limits:

- fresh user, PID, network, IPC, UTS and cgroup namespaces (``bwrap --unshare-all``): no
  network (not even the host's loopback), no view of the host's processes, an empty
  environment, and a file system made of ``/usr`` read-only, the grader's own input
  files read-only, a small ``/tmp`` and no ``/proc``. The registry, its database, other tenants'
  files and the worker's secrets are simply not there;
- as root, a uid of its own from a reserved range (``RUN_UIDS``; a lock file per uid
  makes it unique on the host), so nothing counted per user is shared between runs;
- rlimits on address space, CPU seconds, file size (so output), open files and
  processes. The process limit is set by the runner *inside* the run's new user
  namespace, where the kernel counts processes per namespace: one tenant's fork bomb
  exhausts its own 32 processes, never a count another run (or the server) draws on;
- a seccomp filter (``tune.graders.seccomp``) that refuses new namespaces, ptrace,
  mounts, keyrings, eBPF and the rest of Docker's deny list;
- a wall-clock timer that kills the process group; the PID namespace takes every
  descendant with it.

Input goes in as files; the result comes back on an inherited file descriptor of its
own, so whatever the grader prints cannot be mistaken for its score. The runner writes
a byte on a second descriptor before any tenant code runs: a run that ends without it
never started, which is the host's fault (``SandboxUnavailable``: no user namespaces
under a container's seccomp profile, no libseccomp), not the tenant's.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import random
import resource
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from quanta.data.reader import loads
from tune.graders.seccomp import SeccompUnavailable, filter_file

# uids a root host hands out, one per concurrent run (above any distribution's users and
# the usual /etc/subuid ranges' start at 100000 + 65536 * n for small n).
RUN_UIDS = range(1_000_000, 1_000_000 + 4096)
UID_LOCKS = Path("/run/quanta-sandbox")

# Runs inside the sandbox with python -I -S -B: stdlib only, no site-packages.
_RUNNER = '''\
import json, os, sys, traceback

import resource

RESULT_FD, READY_FD, PROCESSES = (int(a) for a in sys.argv[1:4])
# Inside the run's own user namespace the kernel counts processes for this namespace
# alone: the limit is the run's, whatever else the host runs under the same uid.
resource.setrlimit(resource.RLIMIT_NPROC, (PROCESSES, PROCESSES))
os.write(READY_FD, b"1")
os.close(READY_FD)

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
    """The host cannot build the sandbox (bubblewrap, a system python or libseccomp is
    missing, or user namespaces are refused): the operator's problem, never the tenant's."""


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


def _command(python: str, inputs: Path, limits: Limits, fds: dict[str, int]) -> list[str]:
    command = [bwrap_path(), "--info-fd", str(fds["info"]), "--seccomp", str(fds["seccomp"]),
               "--unshare-all", "--die-with-parent", "--new-session", "--clearenv",
               "--cap-drop", "ALL", "--ro-bind", "/usr", "/usr"]
    for path in ("/lib", "/lib64", "/bin"):  # symlinks into /usr on merged-/usr systems
        command += ["--ro-bind-try", path, path]
    # No /proc: behind a container's masked /proc the kernel refuses a fresh procfs in a
    # user namespace, and a grader has no use for one.
    command += ["--dev", "/dev",
                "--size", str(limits.tmp_bytes), "--tmpfs", "/tmp",
                "--ro-bind", str(inputs), "/sandbox", "--chdir", "/sandbox",
                "--setenv", "PATH", "/usr/bin", "--setenv", "HOME", "/tmp",
                python, "-I", "-S", "-B", "/sandbox/runner.py", str(fds["result"]),
                str(fds["ready"]), str(limits.processes)]
    return command


def _set_limits(limits: Limits) -> None:
    """In the child, after it took the run's uid, before bwrap starts. The process limit
    is not set here: counted outside the run's user namespace it would be shared (see
    the runner)."""
    resource.setrlimit(resource.RLIMIT_AS, (limits.memory_bytes, limits.memory_bytes))
    resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_seconds, limits.cpu_seconds + 1))
    resource.setrlimit(resource.RLIMIT_FSIZE, (limits.output_bytes, limits.output_bytes))
    resource.setrlimit(resource.RLIMIT_NOFILE, (limits.open_files, limits.open_files))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


@contextlib.contextmanager
def run_identity() -> Iterator[dict[str, Any]]:
    """``Popen``'s user arguments for one run: as root, a uid of the run's own, held (by
    a lock file) until the run's namespace is gone; otherwise the server's own uid, which
    the user namespace isolates."""
    if os.geteuid() != 0:
        yield {}
        return
    UID_LOCKS.mkdir(mode=0o700, exist_ok=True)
    start = random.randrange(len(RUN_UIDS))
    for offset in range(len(RUN_UIDS)):
        uid = RUN_UIDS[(start + offset) % len(RUN_UIDS)]
        fd = os.open(UID_LOCKS / f"{uid}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        try:
            yield {"user": uid, "group": uid, "extra_groups": []}
        finally:
            os.close(fd)
        return
    raise SandboxUnavailable(f"all {len(RUN_UIDS)} grader uids are in use")


def run_python_grader(source: str, sample: dict[str, Any], item: dict[str, Any],
                      limits: Limits | None = None, python: Path | None = None) -> SandboxRun:
    """Run ``grade(sample, item)`` from ``source`` in the sandbox (``SandboxUnavailable``
    when the host cannot build one)."""
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
        try:
            program = open(filter_file(root), "rb")  # noqa: SIM115 - closed below
        except SeccompUnavailable as exc:
            raise SandboxUnavailable(str(exc)) from None
        with program, run_identity() as identity, open(root / "result", "w+b") as result, \
                open(root / "ready", "w+b") as ready, open(root / "output", "w+b") as output, \
                open(root / "info", "w+b") as info:
            fds = {"result": result.fileno(), "ready": ready.fileno(), "info": info.fileno(),
                   "seccomp": program.fileno()}
            started = time.monotonic()
            proc = subprocess.Popen(
                _command(interpreter, inputs, limits, fds),
                stdin=subprocess.DEVNULL, stdout=output, stderr=output,
                start_new_session=True, close_fds=True, pass_fds=tuple(fds.values()),
                env={}, cwd=str(root), preexec_fn=partial(_set_limits, limits), **identity)
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
            ready.seek(0)
            began = ready.read(1) == b"1"
            output.seek(0, os.SEEK_END)
            output.seek(max(0, output.tell() - 2000))
            tail = output.read().decode("utf-8", "replace")
        if not began and not timed_out:
            raise SandboxUnavailable("the sandbox could not start: " + (
                tail.strip().splitlines() or [f"bwrap exited with {proc.returncode}"])[-1][:500])
        return SandboxRun(result=_parse_result(raw), returncode=proc.returncode,
                          timed_out=timed_out, output=tail, seconds=seconds)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _parse_result(raw: bytes) -> dict[str, Any] | None:
    """The runner's result object; anything else a grader wrote on the descriptor (not
    UTF-8, not JSON, nested past the parser, not an object) is reported, never raised."""
    if not raw:
        return None
    try:
        parsed = loads(raw.decode("utf-8"))
    except ValueError:  # UnicodeDecodeError and InvalidJSON included
        parsed = None
    if not isinstance(parsed, dict):
        return {"error": "the grader's result was not readable"}
    return parsed


_probe_lock = threading.Lock()
_probed: dict[str | None, tuple[float, str | None]] = {}


def probe_sandbox(python: Path | None = None, max_age: float = 60.0) -> str | None:
    """None when a trivial grader runs here, else why not (for health checks and the
    worker's start). Remembered for ``max_age`` seconds."""
    key = str(python) if python else None
    with _probe_lock:
        seen = _probed.get(key)
        if seen and time.monotonic() - seen[0] < max_age:
            return seen[1]
        try:
            run = run_python_grader("def grade(sample, item):\n    return 1.0", {}, {},
                                    Limits(wall_seconds=10.0), python)
            problem = run.failure()
            reason = None if problem is None else f"a trivial grader failed: {problem}"
        except SandboxUnavailable as exc:
            reason = str(exc)
        _probed[key] = (time.monotonic(), reason)
        return reason


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
