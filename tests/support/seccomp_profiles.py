"""Docker-format seccomp profiles, compiled with libseccomp and run, as a container would.

``compile_profile`` turns a profile JSON (Docker's ``default.json`` format: ``defaultAction``,
``defaultErrnoRet``, ``architectures`` or ``archMap``, ``syscalls[]`` with ``names``,
``action``, ``errnoRet``, ``args`` and ``includes``/``excludes`` by ``caps``, ``arches`` and
``minKernel``) into a ``pyseccomp.SyscallFilter`` the way Docker and runc do:

- moby's ``setupSeccomp`` picks the rules: a rule whose ``includes`` are not all met, or
  any of whose ``excludes`` is, is dropped. The process's capability (bounding) set is
  empty unless told otherwise, as for a container started with ``cap_drop: [ALL]``;
- runc's ``matchCall`` adds them: a call libseccomp does not know is skipped, an action
  equal to the default is skipped, the conditions of one rule are AND-ed unless two of
  them test the same argument (then each becomes a rule of its own, OR-ed);
  ``SCMP_CMP_MASKED_EQ`` takes the mask from ``value`` and the datum from ``valueTwo``.

What it leaves out: runc's patch that answers ``ENOSYS`` for syscalls newer than the
profile knows (here they get the default action), and ``SCMP_ACT_NOTIFY``.

``run_under_profile`` runs a python snippet in a child process that loads the filter
first (libseccomp sets ``no_new_privs``, as ``no-new-privileges:true`` does), optionally
as another uid and behind Docker's masked ``/proc`` paths, and returns its
``CompletedProcess``.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
DOCKER_DEFAULT = REPO / "tests" / "data" / "seccomp" / "docker-default.json"
QUANTA_GRADER = REPO / "deploy" / "seccomp" / "quanta-grader.json"

# platform.machine() -> the arch names profiles use in includes/excludes (moby's goToNative).
_NATIVE_NAMES = {"x86_64": "amd64", "i686": "x86", "i386": "x86", "aarch64": "arm64",
                 "armv7l": "arm", "ppc64le": "ppc64le", "ppc64": "ppc64", "s390x": "s390x",
                 "riscv64": "riscv64", "loongarch64": "loong64", "mips64": "mips64"}

# What Docker does to /proc and /sys in every container that is not privileged
# (moby daemon/pkg/oci/defaults.go): masked paths (a read-only tmpfs over a directory,
# /dev/null over a file) and read-only paths.
DOCKER_MASKED_PATHS = ("/proc/acpi", "/proc/asound", "/proc/interrupts", "/proc/kcore",
                       "/proc/keys", "/proc/latency_stats", "/proc/sched_debug", "/proc/scsi",
                       "/proc/timer_list", "/proc/timer_stats",
                       "/sys/devices/virtual/powercap", "/sys/firmware")
DOCKER_READONLY_PATHS = ("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys",
                         "/proc/sysrq-trigger")


def libseccomp_missing() -> str | None:
    """Why profiles cannot be compiled here (None when they can)."""
    try:
        import pyseccomp  # noqa: F401
    except (ImportError, RuntimeError, OSError) as exc:
        return f"libseccomp (pyseccomp) unavailable: {exc}"
    return None


def native_arch_name() -> str:
    return _NATIVE_NAMES.get(platform.machine(), platform.machine())


def kernel_version(release: str | None = None) -> tuple[int, int]:
    """(major, minor) of the running kernel (``uname -r``), as moby compares minKernel."""
    parts = (release or os.uname().release).split("-")[0].split(".")
    return int(parts[0]), int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0


def _version(text: str) -> tuple[int, int]:
    major, _, minor = text.partition(".")
    return int(major), int(minor or 0)


def load_profile(profile: str | os.PathLike[str] | dict[str, Any]) -> dict[str, Any]:
    if isinstance(profile, dict):
        return profile
    return json.loads(Path(profile).read_text())


def selected_rules(profile: dict[str, Any], capabilities: Iterable[str] = (),
                   arch: str | None = None,
                   kernel: tuple[int, int] | None = None) -> list[dict[str, Any]]:
    """The rules moby's setupSeccomp keeps for a process with ``capabilities`` (its
    bounding set) on ``arch`` under ``kernel``, each with ``names`` filled in."""
    caps, arch = set(capabilities), arch or native_arch_name()
    kernel = kernel or kernel_version()
    kept = []
    for rule in profile.get("syscalls") or []:
        if rule.get("name") and rule.get("names"):
            raise ValueError("a rule has both 'name' and 'names'")
        names = [rule["name"]] if rule.get("name") else list(rule.get("names") or [])
        excludes, includes = rule.get("excludes") or {}, rule.get("includes") or {}
        if arch in (excludes.get("arches") or []):
            continue
        if caps & set(excludes.get("caps") or []):
            continue
        if excludes.get("minKernel") and kernel >= _version(excludes["minKernel"]):
            continue
        if includes.get("arches") and arch not in includes["arches"]:
            continue
        if not set(includes.get("caps") or []) <= caps:
            continue
        if includes.get("minKernel") and kernel < _version(includes["minKernel"]):
            continue
        kept.append({**rule, "names": names})
    return kept


def _action(seccomp: Any, name: str, errno_ret: int | None) -> int:
    errno_ret = 1 if errno_ret is None else int(errno_ret)  # runc: EPERM unless told
    actions = {"SCMP_ACT_ALLOW": seccomp.ALLOW, "SCMP_ACT_KILL": seccomp.KILL,
               "SCMP_ACT_KILL_THREAD": seccomp.KILL_THREAD,
               "SCMP_ACT_KILL_PROCESS": seccomp.KILL_PROCESS, "SCMP_ACT_TRAP": seccomp.TRAP,
               "SCMP_ACT_LOG": seccomp.LOG, "SCMP_ACT_ERRNO": seccomp.ERRNO(errno_ret),
               "SCMP_ACT_TRACE": seccomp.TRACE(errno_ret)}
    if name not in actions:
        raise ValueError(f"unsupported seccomp action {name}")
    return actions[name]


def _condition(seccomp: Any, arg: dict[str, Any]) -> Any:
    ops = {"SCMP_CMP_NE": seccomp.NE, "SCMP_CMP_LT": seccomp.LT, "SCMP_CMP_LE": seccomp.LE,
           "SCMP_CMP_EQ": seccomp.EQ, "SCMP_CMP_GE": seccomp.GE, "SCMP_CMP_GT": seccomp.GT,
           "SCMP_CMP_MASKED_EQ": seccomp.MASKED_EQ}
    return seccomp.Arg(int(arg["index"]), ops[arg["op"]], int(arg.get("value") or 0),
                       int(arg.get("valueTwo") or 0))


def _architectures(seccomp: Any, profile: dict[str, Any]) -> list[int]:
    """The extra architectures the filter covers: ``architectures``, or the native
    entry of ``archMap`` and its sub-architectures (as moby picks them)."""
    def arch(name: str) -> int | None:  # None: unknown to this pyseccomp
        return getattr(seccomp.Arch, name.removeprefix("SCMP_ARCH_"), None)

    native = seccomp.system_arch()
    if profile.get("architectures"):
        named = (arch(name) for name in profile["architectures"])
        return [known for known in named if known is not None]
    for entry in profile.get("archMap") or []:
        if arch(entry["architecture"]) == native:
            subs = (arch(name) for name in entry.get("subArchitectures") or [])
            return [native, *(sub for sub in subs if sub is not None)]
    return []


def compile_profile(profile: str | os.PathLike[str] | dict[str, Any],
                    capabilities: Iterable[str] = (), arch: str | None = None,
                    kernel: tuple[int, int] | None = None) -> Any:
    """A ``pyseccomp.SyscallFilter`` for ``profile`` as Docker/runc would build it for a
    process with ``capabilities`` (none by default: ``cap_drop: [ALL]``)."""
    import pyseccomp as seccomp

    profile = load_profile(profile)
    default = _action(seccomp, profile["defaultAction"], profile.get("defaultErrnoRet"))
    rules = seccomp.SyscallFilter(default)
    for extra in _architectures(seccomp, profile):
        if not rules.exist_arch(extra):
            rules.add_arch(extra)
    for rule in selected_rules(profile, capabilities, arch, kernel):
        action = _action(seccomp, rule["action"], rule.get("errnoRet"))
        if action == default:
            continue  # libseccomp refuses a rule that repeats the default
        args = rule.get("args") or []
        conditions = [_condition(seccomp, arg) for arg in args]
        indexes = [int(arg["index"]) for arg in args]
        # runc: conditions on distinct arguments are AND-ed in one rule; two on the same
        # argument become one rule each (OR-ed).
        groups = ([[c] for c in conditions] if len(set(indexes)) < len(indexes)
                  else [conditions])
        for name in rule["names"]:
            if seccomp.resolve_syscall(seccomp.Arch.NATIVE, name) == -1:
                continue  # unknown to this libseccomp (a newer or foreign syscall)
            for group in groups:
                rules.add_rule(action, name, *group)
    return rules


def oci_profile(profile: str | os.PathLike[str] | dict[str, Any],
                arches: Iterable[str] = ("amd64", "arm64"), capabilities: Iterable[str] = (),
                kernel: tuple[int, int] = (5, 4)) -> dict[str, Any]:
    """``profile`` resolved into the plain OCI runtime-spec form (``LinuxSeccomp``) that
    containerd reads for a Kubernetes ``Localhost`` profile: containerd does not know
    Docker's ``includes``/``excludes``/``archMap`` and would apply every rule to every
    process (CAP_SYS_ADMIN's included). The rules kept for ``capabilities`` on any of
    ``arches`` (same argument layout for clone: not s390), under ``kernel``, in order,
    each once; ``architectures`` lists those arches and their sub-architectures. runc
    skips a call its native libseccomp does not know, so one file serves every arch."""
    profile = load_profile(profile)
    wanted = set(arches)
    if wanted & {"s390", "s390x"}:
        raise ValueError("s390 passes clone's flags in another argument: flatten it alone")
    go_names = {"SCMP_ARCH_X86_64": "amd64", "SCMP_ARCH_AARCH64": "arm64",
                "SCMP_ARCH_RISCV64": "riscv64", "SCMP_ARCH_LOONGARCH64": "loong64",
                "SCMP_ARCH_PPC64LE": "ppc64le"}
    architectures = []
    for entry in profile.get("archMap") or []:
        if go_names.get(entry["architecture"]) in wanted:
            architectures += [entry["architecture"], *(entry.get("subArchitectures") or [])]
    syscalls: list[dict[str, Any]] = []
    for arch in arches:
        for rule in selected_rules(profile, capabilities, arch, kernel):
            flat = {key: rule[key] for key in ("names", "action", "errnoRet", "args", "comment")
                    if rule.get(key) not in (None, [], "")}
            if flat not in syscalls:
                syscalls.append(flat)
    flat_profile = {"defaultAction": profile["defaultAction"]}
    if profile.get("defaultErrnoRet") is not None:
        flat_profile["defaultErrnoRet"] = profile["defaultErrnoRet"]
    return {**flat_profile, "architectures": architectures, "syscalls": syscalls}


# Runs in the child: in a mount namespace of its own (root only) mask /proc like Docker
# and make the interpreter's prefix reachable for the uid (a /root/.pyenv python is not),
# take the uid, load the filter (read before: the caller's file may be private), run the
# snippet. Argument: one JSON object.
_BOOTSTRAP = r"""
import ctypes, json, os, sys, tempfile
spec = json.loads(sys.argv[1])
sys.argv = [sys.argv[0]]
if spec["profile"] is not None:  # read while still the caller (its file may be private)
    with open(spec["profile"]) as fh:
        profile = json.load(fh)
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT = 1, 2, 4, 8, 32
MS_BIND, MS_MOVE, MS_REC, MS_PRIVATE = 4096, 8192, 16384, 1 << 18
libc = ctypes.CDLL(None, use_errno=True)

def fail(what):
    raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()), what)

def mount(source, target, fstype, flags, data=None):
    if libc.mount(source and source.encode(), target.encode(), fstype and fstype.encode(),
                  flags, data and data.encode()) != 0:
        fail(target)

def reachable(paths):
    # the first directory on the way to each path that others cannot enter gets a tmpfs
    # (mode 755) over it, and the next directories on those ways are moved back inside
    closed = {}
    for path in paths:
        parts = os.path.realpath(path).split("/")[1:]
        for depth in range(1, len(parts)):
            above = "/" + "/".join(parts[:depth])
            if not os.stat(above).st_mode & 0o001:
                closed.setdefault(above, set()).add(above + "/" + parts[depth])
                break
    for above, belows in closed.items():
        holders = {}
        for below in belows:
            holders[below] = tempfile.mkdtemp()
            mount(below, holders[below], None, MS_BIND | MS_REC)
        mount("tmpfs", above, "tmpfs", 0, "mode=0755")
        for below, holder in holders.items():
            os.mkdir(below)
            mount(holder, below, None, MS_MOVE)
            os.rmdir(holder)

if spec["mask_proc"] or spec["user"] is not None:
    if libc.unshare(0x00020000) != 0:  # CLONE_NEWNS
        fail("unshare")
    mount(None, "/", None, MS_REC | MS_PRIVATE)
if spec["user"] is not None:
    reachable([sys.base_prefix, sys.prefix, spec["repo"]])
if spec["mask_proc"]:
    for path in spec["masked"]:
        if os.path.isdir(path):
            mount("tmpfs", path, "tmpfs", MS_RDONLY)
        elif os.path.exists(path):
            mount("/dev/null", path, None, MS_BIND)
    for path in spec["readonly"]:
        if os.path.exists(path):
            mount(path, path, None, MS_BIND | MS_REC)
            mount(None, path, None,
                  MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC)
if spec["user"] is not None:
    os.setgroups([])
    os.setgid(spec["user"])
    os.setuid(spec["user"])
if spec["profile"] is not None:
    from tests.support.seccomp_profiles import compile_profile
    compile_profile(profile, spec["capabilities"]).load()
exec(compile(spec["code"], "<under-profile>", "exec"), {"__name__": "__main__"})
"""


def run_under_profile(profile_path: str | os.PathLike[str] | None, code: str,
                      user: int | None = None, *, capabilities: Iterable[str] = (),
                      mask_proc: bool = False, timeout: float = 120.0,
                      env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh ``sys.executable`` (the checkout on ``PYTHONPATH``) under the
    profile at ``profile_path`` (None: no filter), as ``user`` when given (the caller must
    be root) and, with ``mask_proc``, behind Docker's masked and read-only /proc and /sys
    paths in a mount namespace of its own (root only). Output is captured as text."""
    if (user is not None or mask_proc) and os.geteuid() != 0:
        raise PermissionError("run_under_profile: user= and mask_proc need root")
    spec = {"profile": None if profile_path is None else str(profile_path), "code": code,
            "user": user, "capabilities": sorted(capabilities), "mask_proc": mask_proc,
            "masked": DOCKER_MASKED_PATHS, "readonly": DOCKER_READONLY_PATHS,
            "repo": str(REPO)}
    child_env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": "/tmp",
                 "LANG": "C.UTF-8", "PYTHONPATH": str(REPO), "PYTHONDONTWRITEBYTECODE": "1",
                 **(env or {})}
    return subprocess.run([sys.executable, "-c", _BOOTSTRAP, json.dumps(spec)], cwd=REPO,
                          env=child_env, capture_output=True, text=True, timeout=timeout,
                          check=False)
