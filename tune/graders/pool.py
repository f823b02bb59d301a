"""Grader runs apart from the API: a process each, a bounded number at once, a budget each.

A grader run is CPU work of a size the tenant chooses (a fuzzy match of long texts, a
multi grader of sixteen python graders); done in the API process it holds the GIL, or the
request thread, while every other tenant waits. Here each run is a process forked from a
server that preloaded the graders (``multiprocessing``'s forkserver: a fork, not an
interpreter start), with its own address-space limit, killed when its time budget is
spent. At most ``workers`` run at once and ``per_tenant`` for one tenant: beyond them the
caller gets ``GraderBusy`` (the API's 429 with ``Retry-After``) at once, never a queue
that grows with the abuse.

As with every forkserver (or spawn) child, the run's process imports the parent's
``__main__`` (as ``__mp_main__``): a script that builds the API at import time, not under
``if __name__ == "__main__":``, would build it again in every run.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import resource
import shutil
import tempfile
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

_PRELOAD = ["tune.graders", "tune.graders.string_check", "tune.graders.text_similarity",
            "tune.graders.python", "tune.graders.multi", "tune.graders.score_model",
            "tune.graders.label_model"]


class GraderBusy(RuntimeError):
    """No room for another run now (all workers, or the tenant's share, are busy)."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class RunFailed(RuntimeError):
    """The run went past its budget (``timed_out``) or its process died or raised."""

    def __init__(self, message: str, *, timed_out: bool = False) -> None:
        super().__init__(message)
        self.timed_out = timed_out


def _address_space() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[0]) * resource.getpagesize()


def _child(conn: Any, memory_bytes: int, scratch: str, function: Callable[..., Any],
           args: tuple[Any, ...]) -> None:
    """In the run's process: cap what it may allocate beyond what it was forked with, and
    keep its temporary files in ``scratch`` (removed by the parent, even after a kill)."""
    tempfile.tempdir = scratch
    cap = _address_space() + memory_bytes
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    try:
        outcome: tuple[bool, Any] = (True, function(*args))
    except MemoryError:
        outcome = (False, "the grader run went over its memory budget")
    except BaseException as exc:  # reported to the caller; this process ends here
        outcome = (False, f"{type(exc).__name__}: {str(exc)[:300]}")
    try:
        conn.send(outcome)
    except Exception as exc:  # a result that does not pickle
        conn.send((False, f"the grader's result could not be returned ({exc})"))


@dataclass
class GraderPool:
    """Runs ``function(*args)`` in a child process (``execute``, inside a ``slot``),
    bounded in number, time and memory."""

    workers: int = 4
    per_tenant: int = 2
    budget_seconds: float = 60.0
    memory_bytes: int = 1024 * 1024 * 1024
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _running: Counter[str] = field(default_factory=Counter, repr=False)

    @contextlib.contextmanager
    def slot(self, tenant_id: str) -> Iterator[None]:
        """Hold one of the pool's places for ``tenant_id`` (``GraderBusy`` when none)."""
        with self._lock:
            if self._running[tenant_id] >= self.per_tenant:
                raise GraderBusy(f"{self.per_tenant} grader runs of yours are in progress; "
                                 "retry when one has finished", retry_after=2)
            if sum(self._running.values()) >= self.workers:
                raise GraderBusy("every grader worker is busy; retry shortly", retry_after=2)
            self._running[tenant_id] += 1
        try:
            yield
        finally:
            with self._lock:
                self._running[tenant_id] -= 1
                if not self._running[tenant_id]:
                    del self._running[tenant_id]

    def execute(self, function: Callable[..., Any], *args: Any) -> Any:
        """``function(*args)`` in a process of its own, for a caller holding a ``slot``."""
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(_PRELOAD)
        scratch = tempfile.mkdtemp(prefix="quanta-grader-run-")
        os.chmod(scratch, 0o711)  # a sandbox's own uid passes through to its directory
        receive, send = context.Pipe(duplex=False)
        process = context.Process(target=_child, daemon=True,
                                  args=(send, self.memory_bytes, scratch, function, args))
        try:
            process.start()
            send.close()
            if not receive.poll(self.budget_seconds):
                raise RunFailed(f"the grader run went past its {self.budget_seconds:g} s "
                                "budget", timed_out=True)
            try:
                ok, value = receive.recv()
            except (EOFError, OSError):
                raise RunFailed("the grader run's process died "
                                f"(exit {process.exitcode})") from None
        finally:
            process.kill()
            process.join()
            receive.close()
            shutil.rmtree(scratch, ignore_errors=True)
        if not ok:
            raise RunFailed(value)
        return value
