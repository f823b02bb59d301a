"""Fuzz the HTTP APIs from their own OpenAPI schemas with schemathesis (loopback only).

``fuzz_tune`` runs the tune API in-process (uvicorn in a thread, its own temporary
registry); ``fuzz_serve`` fuzzes a running ``quanta serve``. Each counts the requests
sent, responses by status, the 5xx seen (and on which operation) and schemathesis'
failures by check. ``bench/fuzz_apis.py`` runs them large, the hardening tests small.
"""

from __future__ import annotations

import collections
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

# Checks that must pass on each surface. tune: no 5xx, and every documented response
# matches its schema and headers. Its undocumented status codes (401/404/409/413 are not
# declared in FastAPI's schema), bodies read by hand (/v1/files, /v1/fine_tuning/jobs
# declare none) and TRACE answers are reported, not asserted: see bench/RELIABILITY.md.
TUNE_CHECKS = "not_a_server_error,response_schema_conformance,response_headers_conformance"
# serve: vLLM's own schema is vLLM's; only "no 5xx" is Quanta's to guarantee.
SERVE_CHECKS = "not_a_server_error"
# vLLM 0.32 operations that answer 5xx to some malformed inputs by themselves (found by
# this fuzzer; upstream bugs behind Quanta's middleware, reported in RELIABILITY.md):
# /v1/responses with an assistant message of empty content ("list index out of range"),
# /v1/messages/count_tokens with no messages (500), /v1/systemone on a model without
# structured decisions (501 Not Implemented).
UPSTREAM_5XX_OPS = frozenset({"POST /v1/responses", "POST /v1/messages/count_tokens",
                              "POST /v1/systemone"})


@dataclass
class FuzzResult:
    surface: str
    returncode: int
    seconds: float
    requests: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    failures: dict[str, int] = field(default_factory=dict)  # "ST103 Undocumented ..." -> n
    server_errors: int = 0
    server_error_ops: dict[str, int] = field(default_factory=dict)  # "POST /path" -> n
    output: str = ""

    def line(self) -> str:
        classes = collections.Counter(f"{s // 100}xx" for s in self.statuses for _ in
                                      range(self.statuses[s]))
        shown = ", ".join(f"{k}={v}" for k, v in sorted(classes.items()))
        fails = "; ".join(f"{k}: {v}" for k, v in sorted(self.failures.items())) or "none"
        where = ", ".join(f"{op} x{n}" for op, n in sorted(self.server_error_ops.items()))
        return (f"{self.surface}: {self.requests} requests in {self.seconds:.0f}s ({shown}); "
                f"5xx={self.server_errors}{f' ({where})' if where else ''}; "
                f"failed checks: {fails}")


def run_schemathesis(surface: str, schema_url: str, headers: dict[str, str], checks: str,
                     *, max_examples: int, max_time: float, seed: int = 1,
                     extra: list[str] | None = None) -> FuzzResult:
    """One bounded schemathesis CLI run; counts every response from its NDJSON report."""
    assert schema_url.startswith(("http://127.0.0.1", "http://localhost")), "loopback only"
    exe = shutil.which("schemathesis") or str(Path(sys.executable).with_name("schemathesis"))
    report = Path(tempfile.mkdtemp(prefix="quanta-fuzz-"))
    argv = [exe, "run", schema_url, "--checks", checks, "-n", str(max_examples),
            "--max-time", str(int(max_time)), "--seed", str(seed), "--request-timeout", "60",
            "--report", "ndjson", "--report-dir", str(report), "--no-color",
            "--output-truncate", "true", "--suppress-health-check", "all", *(extra or [])]
    for name, value in headers.items():
        argv += ["-H", f"{name}: {value}"]
    started = time.monotonic()
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=max_time + 240)
    result = FuzzResult(surface, proc.returncode, time.monotonic() - started,
                        output=proc.stdout[-20000:] + proc.stderr[-4000:])
    statuses: collections.Counter[int] = collections.Counter()
    ops: collections.Counter[str] = collections.Counter()
    for path in report.glob("*.ndjson"):
        for line in path.read_text().splitlines():
            event = json.loads(line)
            finished = event.get("ScenarioFinished")
            if not finished:
                continue
            for interaction in ((finished.get("recorder") or {}).get("interactions")
                                or {}).values():
                response = interaction.get("response")
                if response:
                    statuses[int(response["status_code"])] += 1
                    if int(response["status_code"]) >= 500:
                        request = interaction.get("request") or {}
                        op = f"{request.get('method', '?')} {urlsplit(request.get('uri', '')).path}"
                        ops[op] += 1
    shutil.rmtree(report, ignore_errors=True)
    result.statuses = dict(statuses)
    result.requests = sum(statuses.values())
    result.server_errors = sum(n for s, n in statuses.items() if s >= 500)
    result.server_error_ops = dict(ops)
    summary = proc.stdout.split("SUMMARY", 1)[-1]
    for code, text, count in re.findall(r"(ST\d+) ([^:\n]+): (\d+)", summary):
        result.failures[f"{code} {text.strip()}"] = int(count)
    return result


def fuzz_tune(max_examples: int, max_time: float, checks: str = TUNE_CHECKS) -> FuzzResult:
    """The tune API in-process over a temporary registry (1 MiB upload limit)."""
    from quanta.config import Settings
    from quanta.registry import Registry
    from quanta.tenancy import create_key, create_tenant
    from tests.support.servers import serve_api
    from tune.api.app import create_app

    home = Path(tempfile.mkdtemp(prefix="quanta-fuzz-tune-"))
    try:
        registry = Registry.open(Settings(home=home, allow_anonymous=False,
                                          max_upload_bytes=1 << 20))
        create_tenant(registry, "fuzz")
        key = create_key(registry, "fuzz")[1]
        with serve_api(create_app(registry.settings, registry)) as url:
            return run_schemathesis("tune", f"{url}/openapi.json",
                                    {"Authorization": f"Bearer {key}"}, checks,
                                    max_examples=max_examples, max_time=max_time)
    finally:
        shutil.rmtree(home, ignore_errors=True)


def fuzz_serve(url: str, key: str, max_examples: int, max_time: float) -> FuzzResult:
    """A running ``quanta serve``: every vLLM operation (lengths bounded by its
    ``--max-model-len``)."""
    return run_schemathesis("serve", f"{url}/openapi.json", {"Authorization": f"Bearer {key}"},
                            SERVE_CHECKS, max_examples=max_examples, max_time=max_time)
