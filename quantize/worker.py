"""The quantize worker: claims queued export jobs from the registry and runs them.

``POST /v1/quanta/models/{model}/exports`` (and ``quanta exports request``) only record an
export job; this worker (``quanta exports worker``) claims one at a time, as tune's
workers claim fine-tuning jobs, so no export runs inside an API's process. Each export
runs in a child process that dies with the worker (``PR_SET_PDEATHSIG``): a cancel, or
a lost claim, stops it at once; a killed worker's job goes back to the queue when its
heartbeat goes stale and the next worker runs it again. An export registers its row only
at its end, from a staging directory, so an attempt that dies leaves no row, and the
staging directory of a dead writer is swept when a worker starts and after each stop.
"""

from __future__ import annotations

import ctypes
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
from dataclasses import dataclass
from typing import Any

from quanta.registry import ExportJobRecord, Registry
from quanta.types import JobStatus

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class ExportOutcome:
    """How one child process ended: the export's id, or an error in OpenAI's shape."""

    export_id: str | None = None
    error: dict[str, Any] | None = None


class ExportWorker:
    """Claim, run and finish export jobs (``run_once``; ``run_forever`` polls)."""

    def __init__(self, registry: Registry, *, worker_id: str | None = None,
                 heartbeat_interval: float = 5.0, stale_after: float = 60.0) -> None:
        self.registry = registry
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:export"
        self.heartbeat_interval = heartbeat_interval
        self.stale_after = stale_after
        registry.sweep_staging()  # what a killed worker's export left behind

    def run_once(self) -> str | None:
        """Run the oldest queued export job, if any; returns its id."""
        self.registry.export_jobs.requeue_stale(self.stale_after)
        job = self.registry.export_jobs.claim_next(self.worker_id)
        if job is None:
            return None
        self._run(job)
        return job.id

    def run_forever(self, poll_interval: float = 2.0,
                    stop: threading.Event | None = None) -> None:
        stop = stop or threading.Event()
        while not stop.is_set():
            if self.run_once() is None:
                stop.wait(poll_interval)

    def _run(self, job: ExportJobRecord) -> None:
        jobs = self.registry.export_jobs
        child = subprocess.Popen(
            [sys.executable, "-m", "quantize.worker", "--run", job.id],
            env={**os.environ, **self.registry.settings.as_env()}, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True, preexec_fn=_die_with_parent)
        while True:
            try:
                out, err = child.communicate(timeout=self.heartbeat_interval)
                break
            except subprocess.TimeoutExpired:
                pulse = jobs.heartbeat(job.id, self.worker_id)
                if pulse.owned and not pulse.cancel:
                    continue
                _stop(child)
                self.registry.sweep_staging()
                if pulse.owned:
                    jobs.finish(job.id, self.worker_id, JobStatus.CANCELLED,
                                message="Export cancelled")
                else:
                    log.warning("export job %s was taken from this worker", job.id)
                return
        outcome = _outcome(child.returncode, out, err)
        if outcome.export_id is not None:
            jobs.finish(job.id, self.worker_id, JobStatus.SUCCEEDED, export_id=outcome.export_id,
                        message=f"Export {outcome.export_id} registered")
        else:
            error = outcome.error or {}
            self.registry.sweep_staging()
            jobs.finish(job.id, self.worker_id, JobStatus.FAILED, error=error,
                        message=f"Export failed: {error.get('message', 'unknown error')}")


def _die_with_parent() -> None:
    """In the child, before exec: the kernel kills it when the worker dies (SIGKILL too).
    Linux only; elsewhere (no ``prctl``) a killed worker's child runs to its end."""
    prctl = getattr(ctypes.CDLL(None, use_errno=True), "prctl", None)
    if prctl is not None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def _stop(child: subprocess.Popen[str]) -> None:
    child.kill()
    child.communicate()


def _outcome(returncode: int, out: str, err: str) -> ExportOutcome:
    """The child's last stdout line is its result as JSON; anything else is a crash."""
    lines = out.strip().splitlines()
    try:
        result = json.loads(lines[-1]) if lines else {}
    except ValueError:
        result = {}
    if returncode == 0 and isinstance(result.get("export_id"), str):
        return ExportOutcome(export_id=result["export_id"])
    if isinstance(result.get("error"), dict):
        return ExportOutcome(error=result["error"])
    tail = err.strip().splitlines()[-1:] or [f"exit status {returncode}"]
    return ExportOutcome(error={"code": "export_crashed", "param": None,
                                "message": f"the export process failed: {tail[0]}"})


def run_job(registry: Registry, job_id: str) -> dict[str, Any]:
    """Build one export job's export (the child process's work); its result as JSON."""
    from quanta.registry import NotFoundError
    from quantize.errors import ExportError
    from quantize.exporters import export

    job = registry.export_jobs.get(job_id)
    if job is None:
        return {"error": {"code": "not_found", "param": None,
                          "message": f"No such export job: {job_id}"}}
    try:
        row = export(registry, job.model, job.format, tenant_id=job.tenant_id,
                     accuracy_n=job.accuracy_n)
    except NotFoundError as exc:  # the model went away since the job was queued
        return {"error": {"code": "model_not_found", "param": "model", "message": str(exc)}}
    except ExportError as exc:
        return {"error": {"code": "export_failed", "param": "format", "message": str(exc)}}
    return {"export_id": row.id}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2 or argv[0] != "--run":
        print("usage: python -m quantize.worker --run EXPORT_JOB_ID", file=sys.stderr)
        return 2
    result = run_job(Registry.open(), argv[1])
    print(json.dumps(result))
    return 0 if "export_id" in result else 1


if __name__ == "__main__":
    sys.exit(main())
