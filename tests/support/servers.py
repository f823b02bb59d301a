"""Live servers for tests and benchmarks: the tune API in a thread, ``quanta serve`` as a
child process (its own process group, stopped with it)."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from quanta.config import Settings
from quanta.processes import (
    ServiceFailed,
    free_port,
    quanta_command,
    start_process,
    stop_process,
    wait_healthy,
)
from quanta.registry import Registry, ServeEndpointRecord


@contextmanager
def serve_api(app: Any) -> Iterator[str]:
    """Run an ASGI ``app`` with uvicorn in a thread on a free local port; yields its URL."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("the API did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def quanta_env(home: Path, *, anonymous: bool = False, **extra: str) -> dict[str, str]:
    """The environment of a child Quanta process on the embedded registry at ``home``."""
    env = {**os.environ, "QUANTA_HOME": str(home),
           "QUANTA_ALLOW_ANONYMOUS": "true" if anonymous else "false",
           "OMP_WAIT_POLICY": "PASSIVE", "TOKENIZERS_PARALLELISM": "false", **extra}
    env.pop("QUANTA_DATABASE_URL", None)
    env.pop("QUANTA_STORE_URL", None)
    return env


@dataclass
class RunningServe:
    proc: subprocess.Popen[bytes]
    url: str
    grpc_target: str | None
    log: Path
    endpoint: ServeEndpointRecord | None = None  # its registry row (start_base_serve)

    def stop(self, grace: float = 60) -> None:
        stop_process(self.proc, grace)


def start_serve(home: Path, *args: str, grpc: bool = True, anonymous: bool = False,
                timeout: float = 600, log_name: str | None = None,
                port: int | None = None, env: dict[str, str] | None = None) -> RunningServe:
    """``quanta serve`` over the registry at ``home`` on free loopback ports (or ``port``,
    chosen before a client was pointed at it), healthy.

    ``args`` go to ``quanta serve`` as they are (``--engine``, ``--max-loras``...);
    ``env`` adds to its environment (e.g. ``QUANTA_LORA_OPS``).
    """
    port = port or free_port()
    grpc_port = free_port() if grpc else 0
    log = home / (log_name or f"serve-{port}.log")
    proc = start_process(quanta_command("serve", "--host", "127.0.0.1", "--port", str(port),
                                        "--grpc-port", str(grpc_port), *args),
                         log, {**quanta_env(home, anonymous=anonymous), **(env or {})})
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(f"{url}/health", proc, timeout, log)
    except BaseException:
        stop_process(proc)
        raise
    return RunningServe(proc, url, f"127.0.0.1:{grpc_port}" if grpc else None, log)


def start_base_serve(home: Path, base_model_id: str, *args: str, timeout: float = 600,
                     registered_within: float = 60, **kwargs: Any) -> RunningServe:
    """``quanta serve --model <base_model_id>`` (see :func:`start_serve`; ``args`` and
    ``kwargs`` as there), returned once healthy and recorded in the registry's serve
    endpoints at its URL: what the tune API, the console and other bases' servers read.
    Several, one per base, serve side by side over one registry."""
    running = start_serve(home, "--model", base_model_id, *args, timeout=timeout, **kwargs)
    try:
        running.endpoint = wait_registered(home, base_model_id, running.url,
                                           registered_within, running)
    except BaseException:
        running.stop()
        raise
    return running


def wait_registered(home: Path, base_model_id: str, url: str, timeout: float = 60,
                    running: RunningServe | None = None) -> ServeEndpointRecord:
    """The live serve-endpoint row of ``base_model_id`` at ``url`` in the embedded
    registry at ``home`` (the one :func:`quanta_env` points servers at); ServiceFailed
    after ``timeout`` seconds or if ``running``'s process exits first."""
    registry = Registry.open(Settings(home=home, database_url=None, store_url=None))
    deadline = time.monotonic() + timeout
    while True:
        found = [e for e in registry.serve_endpoints.for_base(base_model_id) if e.url == url]
        if found:
            return found[0]
        if running is not None and running.proc.poll() is not None:
            raise ServiceFailed(f"{url}: the server exited with {running.proc.returncode} "
                                "before it registered")
        if time.monotonic() > deadline:
            raise ServiceFailed(f"{url} did not record itself as a server of "
                                f"{base_model_id} within {timeout:.0f}s")
        time.sleep(0.5)
