"""Python graders in Quanta's own containers: what Docker's default seccomp profile does to
the sandbox, and that the profile Quanta ships lets it start and nothing more.

Each case runs the grader code in a child process that first loads a container's
seccomp profile (``tests/support/seccomp_profiles.py``: compiled as Docker and runc
compile it for a container with ``cap_drop: [ALL]``), as the test's own user and, when
the tests run as root, as uid 10001 like the shipped images:

- under Docker's default profile (``tests/data/seccomp/docker-default.json``) bubblewrap
  cannot create its user namespace: the host's problem (``SandboxUnavailable``,
  ``probe_sandbox`` says why, the grader reports ``python_grader_server_error`` of type
  ``sandbox_unavailable``), never the tenant's ``python_grader_runtime_error``;
- under ``deploy/seccomp/quanta-grader.json`` (compose) and its containerd form
  ``k8s/seccomp/quanta-grader.json`` a grader scores, also behind Docker's masked
  ``/proc``; the grader itself still cannot make namespaces or mount;
- the profile is Docker's plus rules each of which bubblewrap needs: without any one of
  them the sandbox does not start.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.support.seccomp_profiles import (
    DOCKER_DEFAULT,
    QUANTA_GRADER,
    REPO,
    libseccomp_missing,
    oci_profile,
    run_under_profile,
    selected_rules,
)

K8S_PROFILE = REPO / "k8s" / "seccomp" / "quanta-grader.json"
APPARMOR_PROFILE = REPO / "deploy" / "apparmor" / "quanta-grader"
IS_ROOT = os.geteuid() == 0
# The calls the shipped profile adds to Docker's, one rule each (bubblewrap 0.8 under
# strace: clone with the namespace flags, unshare(CLONE_NEWUSER), mounts, the pivot).
ADDED_CALLS = ("clone", "unshare", "mount", "umount2", "pivot_root")

pytestmark = [
    pytest.mark.skipif(shutil.which("bwrap") is None,
                       reason="bubblewrap missing (scripts/setup.sh installs it)"),
    pytest.mark.skipif(libseccomp_missing() is not None,
                       reason=str(libseccomp_missing())),
]

USERS = [
    pytest.param(None, id="own-uid"),
    pytest.param(10001, id="uid-10001", marks=pytest.mark.skipif(
        not IS_ROOT, reason="running as another uid needs root")),
]

# Runs in the child, under the profile: one grader three ways, printed as JSON.
_GRADE = '''
import json
from tune.graders.config import PythonConfig
from tune.graders.python import PythonGrader
from tune.graders.sandbox import Limits, SandboxUnavailable, probe_sandbox, run_python_grader

SOURCE = {source!r}
LIMITS = Limits(wall_seconds=10.0, cpu_seconds=2, memory_bytes=256 * 1024 * 1024)
out = {{}}
try:
    run = run_python_grader(SOURCE, {{"output_text": "42"}}, {{}}, LIMITS)
    out["run"] = {{"result": run.result, "failure": run.failure(), "output": run.output}}
except SandboxUnavailable as exc:
    out["unavailable"] = str(exc)
if {probe!r}:
    out["probe"] = probe_sandbox()
    config = PythonConfig.model_validate({{"type": "python", "name": "g", "source": SOURCE}})
    grade = PythonGrader(config, LIMITS).grade({{"output_text": "42"}}, {{}})
    out["grade"] = {{"score": grade.score, "errors": grade.errors}}
print("RESULT " + json.dumps(out, default=str))
'''

HALF = "def grade(sample, item):\n    return 0.5"


@pytest.fixture(scope="module", autouse=True)
def _sandbox_works_without_a_profile() -> None:
    """Without any container profile the sandbox must work here, or nothing below says
    anything about the profiles (no user namespaces on this host, say)."""
    proc = run_under_profile(None, "from tune.graders.sandbox import probe_sandbox\n"
                                   "print('PROBE', probe_sandbox())", timeout=120)
    if "PROBE None" not in proc.stdout:
        pytest.skip(f"the grader sandbox does not work on this host at all: "
                    f"{(proc.stdout + proc.stderr).strip()[-500:]}")


def grade_under(profile: Path | dict[str, Any] | None, tmp_path: Path, source: str = HALF,
                user: int | None = None, probe: bool = False,
                mask_proc: bool = False) -> dict[str, Any]:
    """Run ``source`` through the sandbox in a child under ``profile``; what came back."""
    if isinstance(profile, dict):
        path = tmp_path / "profile.json"
        path.write_text(json.dumps(profile))
        profile = path
    proc = run_under_profile(profile, _GRADE.format(source=source, probe=probe), user,
                             mask_proc=mask_proc, timeout=180)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, (
        f"the child failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return json.loads(lines[-1].removeprefix("RESULT "))


def _score(out: dict[str, Any]) -> Any:
    assert "run" in out, f"the sandbox did not start: {out.get('unavailable')}"
    assert out["run"]["failure"] is None, out["run"]
    return out["run"]["result"]["score"]


# --- (a) Docker's default profile: the host cannot build the sandbox -------------------


@pytest.mark.parametrize("user", USERS)
def test_under_dockers_default_profile_the_sandbox_is_unavailable(user, tmp_path):
    out = grade_under(DOCKER_DEFAULT, tmp_path, user=user, probe=True)
    assert "run" not in out, f"a grader ran under Docker's default profile: {out}"
    assert "namespace" in out["unavailable"], out["unavailable"]
    assert isinstance(out["probe"], str) and out["probe"], out
    errors = out["grade"]["errors"]
    assert out["grade"]["score"] == 0.0
    assert errors.get("python_grader_server_error") is True, errors
    assert errors.get("python_grader_server_error_type") == "sandbox_unavailable", errors
    assert not errors.get("python_grader_runtime_error"), errors


# --- (b) the shipped profile: a grader scores ------------------------------------------


@pytest.mark.parametrize("user", USERS)
@pytest.mark.parametrize("profile", [QUANTA_GRADER, K8S_PROFILE], ids=["compose", "k8s"])
def test_under_the_shipped_profile_a_grader_scores(profile, user, tmp_path):
    out = grade_under(profile, tmp_path, user=user, probe=True)
    assert _score(out) == 0.5
    assert out["probe"] is None
    assert out["grade"] == {"score": 0.5, "errors": {}}


@pytest.mark.skipif(not IS_ROOT, reason="masking /proc needs root")
def test_a_grader_scores_behind_dockers_masked_proc(tmp_path):
    """Docker (and Kubernetes with procMount Default) masks /proc/kcore, /proc/keys... and
    makes /proc/sys read-only; the kernel then refuses a fresh procfs in a new user
    namespace ("mount too revealing"), so the sandbox must work without mounting one."""
    out = grade_under(QUANTA_GRADER, tmp_path, user=10001, mask_proc=True)
    assert _score(out) == 0.5


@pytest.mark.parametrize("user", USERS)
def test_the_grader_itself_cannot_make_namespaces_or_mount(user, tmp_path):
    """The container may create user namespaces now; the grader's inner filter still
    refuses it (and mount) inside the sandbox."""
    source = (
        "import ctypes, errno, platform\n"
        "libc = ctypes.CDLL(None, use_errno=True)\n"
        "CLONE = {'x86_64': 56, 'aarch64': 220}[platform.machine()]\n"
        "def refused(result):\n"
        "    return result == -1 and ctypes.get_errno() == errno.EPERM\n"
        "def grade(sample, item):\n"
        "    checks = [refused(libc.unshare(0x10000000)),\n"
        "              refused(libc.mount(b'none', b'/tmp', b'tmpfs', 0, None)),\n"
        "              refused(libc.syscall(CLONE, 0x10000000 | 17, 0, 0, 0, 0))]\n"
        "    return sum(2 ** i for i, ok in enumerate(checks) if ok)\n"
    )
    out = grade_under(QUANTA_GRADER, tmp_path, source=source, user=user)
    assert _score(out) == 7, "bit 0: unshare, 1: mount, 2: clone(CLONE_NEWUSER) was allowed"


# --- the profile: Docker's, plus what bubblewrap needs, and nothing else --------------


def test_shipped_profile_is_docker_default_plus_the_bwrap_rules():
    docker = json.loads(DOCKER_DEFAULT.read_text())
    shipped = json.loads(QUANTA_GRADER.read_text())
    assert {k: v for k, v in shipped.items() if k != "syscalls"} == \
        {k: v for k, v in docker.items() if k != "syscalls"}
    count = len(docker["syscalls"])
    assert shipped["syscalls"][:count] == docker["syscalls"], "Docker's rules were changed"
    added = shipped["syscalls"][count:]
    assert {name for rule in added for name in rule["names"]} == set(ADDED_CALLS)
    for rule in added:
        assert rule["action"] == "SCMP_ACT_ALLOW"
        assert rule["comment"].startswith("Quanta grader sandbox:")
    # clone3 still answers ENOSYS (its flags live in memory a filter cannot read): the C
    # library falls back to clone, whose flags the rules check.
    clone3 = [rule for rule in selected_rules(shipped) if "clone3" in rule["names"]]
    assert [(r["action"], r.get("errnoRet")) for r in clone3] == [("SCMP_ACT_ERRNO", 38)]
    # Namespaces only with a new user namespace; unshare only exactly CLONE_NEWUSER.
    new_user = 0x10000000
    clone = next(r for r in added if r["names"] == ["clone"] and "includes" not in r)
    assert clone["args"] == [{"index": 0, "value": new_user, "valueTwo": new_user,
                              "op": "SCMP_CMP_MASKED_EQ"}]
    unshare = next(r for r in added if r["names"] == ["unshare"])
    assert unshare["args"] == [{"index": 0, "value": 0xFFFFFFFF, "valueTwo": new_user,
                                "op": "SCMP_CMP_MASKED_EQ"}]


@pytest.mark.parametrize("call", ADDED_CALLS)
def test_each_added_rule_is_needed(call, tmp_path):
    """Minimal by experiment: without any one of the added calls bubblewrap fails."""
    profile = json.loads(QUANTA_GRADER.read_text())
    docker_count = len(json.loads(DOCKER_DEFAULT.read_text())["syscalls"])
    for rule in profile["syscalls"][docker_count:]:
        rule["names"] = [name for name in rule["names"] if name != call]
    profile["syscalls"] = [rule for rule in profile["syscalls"] if rule["names"]]
    out = grade_under(profile, tmp_path, user=10001 if IS_ROOT else None)
    assert "run" not in out, f"the sandbox started without {call}: {out}"
    assert out["unavailable"], out


def test_k8s_profile_is_the_shipped_profile_resolved_for_containerd():
    """containerd reads a Localhost profile as plain OCI LinuxSeccomp: it ignores
    includes/excludes, so the committed file is the shipped one resolved for a container
    without capabilities on amd64 and arm64."""
    assert json.loads(K8S_PROFILE.read_text()) == oci_profile(QUANTA_GRADER)
    flat = json.loads(K8S_PROFILE.read_text())
    assert all("includes" not in r and "excludes" not in r for r in flat["syscalls"])
    names = {name for rule in flat["syscalls"] for name in rule["names"]}
    assert not names & {"bpf", "setns", "keyctl", "fsopen", "open_tree", "chroot"}


def test_oci_form_drops_what_a_process_without_capabilities_does_not_get():
    flat = oci_profile(copy.deepcopy(json.loads(DOCKER_DEFAULT.read_text())))
    names = {name for rule in flat["syscalls"] for name in rule["names"]}
    assert {"mount", "unshare", "bpf", "pivot_root"}.isdisjoint(names)
    assert {"read", "arch_prctl", "ptrace"} <= names


@pytest.mark.skipif(shutil.which("apparmor_parser") is None,
                    reason="apparmor_parser missing (apt-get install apparmor)")
def test_apparmor_profile_compiles():
    proc = subprocess.run(["apparmor_parser", "--skip-kernel-load", "--skip-cache",
                           "--stdout", str(APPARMOR_PROFILE)], capture_output=True,
                          timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    rules = [line.strip() for line in APPARMOR_PROFILE.read_text().splitlines()
             if line.strip() and not line.lstrip().startswith("#")]
    assert "deny mount," not in rules and {"mount,", "pivot_root,", "umount,"} <= set(rules)
