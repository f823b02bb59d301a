"""The syscall filter a python grader runs under, on top of bubblewrap's namespaces.

bubblewrap gives the grader fresh namespaces; this filter (handed to ``bwrap --seccomp``,
applied just before the grader's interpreter starts) keeps it from making more of them
or reaching past them: no new user, mount, network or PID namespaces (``clone`` with a
namespace flag, ``unshare``, ``setns``), no ``ptrace`` of its own children, no kernel
keyrings, eBPF, mounts, modules, clocks or reboots: the calls Docker's default profile
refuses a container without capabilities, refused here with ``EPERM`` whatever the
sandbox's capabilities in its own namespace. Everything else is allowed: the grader is
ordinary Python and the namespaces and rlimits bound what it can reach.

The filter is compiled once per process with libseccomp (``pyseccomp``); a host without
libseccomp cannot run python graders (``SandboxUnavailable``), it never runs them
unfiltered.
"""

from __future__ import annotations

import errno
import os
import tempfile
from functools import cache

# clone(2) flags that create a namespace; clone is refused when any of them is set.
NAMESPACE_FLAGS = {
    "CLONE_NEWNS": 0x00020000, "CLONE_NEWCGROUP": 0x02000000, "CLONE_NEWUTS": 0x04000000,
    "CLONE_NEWIPC": 0x08000000, "CLONE_NEWUSER": 0x10000000, "CLONE_NEWPID": 0x20000000,
    "CLONE_NEWNET": 0x40000000, "CLONE_NEWTIME": 0x00000080,
}

REFUSED = (
    # namespaces and the ways into other processes
    "unshare", "setns", "ptrace", "process_vm_readv", "process_vm_writev", "kcmp",
    "pidfd_getfd",
    # kernel keyrings, eBPF, perf, userfaultfd, io_uring (outside the audit of the rest)
    "keyctl", "add_key", "request_key", "bpf", "perf_event_open", "userfaultfd",
    "io_uring_setup", "io_uring_enter", "io_uring_register",
    # file systems and mounts
    "mount", "umount2", "pivot_root", "chroot", "move_mount", "open_tree", "fsopen",
    "fsconfig", "fsmount", "fspick", "mount_setattr", "open_by_handle_at",
    "name_to_handle_at", "quotactl", "quotactl_fd", "swapon", "swapoff", "acct",
    # the kernel and the machine
    "init_module", "finit_module", "delete_module", "kexec_load", "kexec_file_load",
    "reboot", "syslog", "settimeofday", "clock_settime", "clock_adjtime", "adjtimex",
    "sethostname", "setdomainname", "iopl", "ioperm", "personality", "lookup_dcookie",
    "vhangup", "uselib", "ustat", "sysfs", "_sysctl", "nfsservctl", "set_mempolicy", "mbind",
    "move_pages", "migrate_pages",
)


class SeccompUnavailable(RuntimeError):
    """libseccomp is missing or refused to build the filter."""


@cache
def grader_filter() -> bytes:
    """The compiled BPF program (for ``bwrap --seccomp FD``), built once per process."""
    try:
        import pyseccomp as seccomp

        rules = seccomp.SyscallFilter(seccomp.ALLOW)
        refuse = seccomp.ERRNO(errno.EPERM)
        for name in REFUSED:
            try:
                rules.add_rule(refuse, name)
            except (OSError, ValueError, RuntimeError):
                continue  # not a syscall on this architecture
        for flag in NAMESPACE_FLAGS.values():  # rules on one syscall are OR-ed
            rules.add_rule(refuse, "clone", seccomp.Arg(0, seccomp.MASKED_EQ, flag, flag))
        # clone3 passes its flags in memory a filter cannot read: answer "no such call",
        # as Docker does, and the C library falls back to clone, which is checked above.
        rules.add_rule(seccomp.ERRNO(errno.ENOSYS), "clone3")
        with tempfile.TemporaryFile() as out:
            rules.export_bpf(out)
            out.flush()
            out.seek(0)
            program = out.read()
    except (ImportError, OSError, RuntimeError, ValueError) as exc:
        raise SeccompUnavailable(f"cannot build the graders' syscall filter with libseccomp "
                                 f"({exc}); install libseccomp2") from exc
    if not program:
        raise SeccompUnavailable("libseccomp produced an empty filter")
    return program


def filter_file(directory: str | os.PathLike[str]) -> str:
    """Write the filter into ``directory`` (bwrap reads it from a file descriptor)."""
    path = os.path.join(directory, "seccomp.bpf")
    with open(path, "wb") as fh:
        fh.write(grader_filter())
    return path
