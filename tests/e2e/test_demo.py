"""``quanta demo --quick`` on a fresh QUANTA_HOME, as a new user runs it: Ctrl-C during
training stops everything cleanly, the next run continues, and a third reuses it all."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from sqlalchemy import select

from quanta.config import Settings
from quanta.registry import Registry
from quanta.registry import tables as t

pytestmark = pytest.mark.slow

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def demo_cmd(report: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "quanta.cli", "demo", "--quick", "--report-dir", str(report),
            *extra]


def _sigint_as_at_a_terminal() -> None:
    """Ctrl-C at a terminal always reaches the program; a runner started in the background
    (``cmd &`` without job control) passes SIGINT down ignored, and Python then never
    raises KeyboardInterrupt. Runs in the child, before the demo starts."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def wait_for_running_job(registry: Registry, proc: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, "demo exited before training started"
        with registry.session() as s:
            if s.scalar(select(t.Job).where(t.Job.status == "running")) is not None:
                return
        time.sleep(1)
    raise AssertionError("training never started")


def test_quick_demo(tmp_path: Path) -> None:
    home = tmp_path / "home"
    report = tmp_path / "report"
    env = {**os.environ, "QUANTA_HOME": str(home), "COLUMNS": "160"}
    registry = Registry.open(Settings(home=home))

    # 1. Ctrl-C while the job trains: the demo and everything it started stop.
    log1 = open(tmp_path / "run1.log", "w")  # noqa: SIM115
    first = subprocess.Popen(demo_cmd(report), env=env, stdout=log1, stderr=subprocess.STDOUT,
                             preexec_fn=_sigint_as_at_a_terminal)
    wait_for_running_job(registry, first, timeout=600)
    children = psutil.Process(first.pid).children(recursive=True)
    assert children, "the demo should have started the tune API and a worker"
    first.send_signal(signal.SIGINT)
    assert first.wait(120) == 130, (tmp_path / "run1.log").read_text()[-3000:]
    _, alive = psutil.wait_procs(children, timeout=30)
    assert not alive, f"left running: {[p.cmdline() for p in alive]}"

    # 2. The next run continues the interrupted job and finishes every step.
    second = subprocess.run(demo_cmd(report), env=env, capture_output=True, text=True,
                            timeout=2400)
    assert second.returncode == 0, second.stdout[-5000:] + second.stderr[-5000:]
    assert "resuming job" in second.stdout

    with registry.session() as s:
        jobs = list(s.scalars(select(t.Job)))
    assert len(jobs) == 1 and jobs[0].status == "succeeded"
    adapters = registry.list_adapters("local")
    assert len(adapters) == 1
    evaluation = adapters[0].eval
    assert "physics_accuracy" in evaluation["before"]
    assert "physics_accuracy" in evaluation["after"]
    formats = {e.format for e in registry.list_exports() if e.adapter_id == adapters[0].id}
    assert formats >= {"gguf-q4_k_m", "gguf-lora"}
    # The bundled data writes calculation traces: the adapter is evaluated and served with
    # the calculator, and every export's held-out accuracy is measured against it.
    assert adapters[0].config["calculator"] is True
    assert evaluation["after"]["physics_calculator"] is True
    for export in registry.list_exports():
        if export.adapter_id == adapters[0].id:
            assert "degraded" in export.metrics, export.format

    index = (report / "index.md").read_text()
    assert adapters[0].name in index
    for plot in ("loss.png", "accuracy.png"):
        assert (report / plot).read_bytes().startswith(PNG_MAGIC)
    results = json.loads((report / "results.json").read_text())
    assert len(results["loss_curve"]) >= 2
    assert results["examples"], "before/after example answers belong in the report"
    rows = results["by_split"]["correct"]
    assert {"base", "adapter, no calculator", "adapter, calculator", "gguf-q4_k_m",
            "gguf-lora"} <= set(rows)
    assert all(set(scores) == {"numbers", "phrasing", "family"} for scores in rows.values())
    assert "Held-out accuracy by split" in index
    assert all(e["base"] and e["adapter"] and e["expected"] for e in results["examples"])
    for engine in ("vllm", "llama-cpp"):
        served = [s for s in results["served"] if s["engine"] == engine]
        assert len(served) == 3, engine
        assert all(s["base"].strip() and s["adapter"].strip() for s in served)
        assert any(s["base"] != s["adapter"] for s in served), f"{engine}: adapter changed nothing"
    # The served comparison is one eval on the tune API, a run per model and engine.
    runs = results["eval_runs"]
    assert {(r["engine"], r["label"]) for r in runs} == {
        (engine, label) for engine in ("vllm", "llama-cpp") for label in ("base", "adapter")}
    assert all(r["status"] == "completed" and r["total"] >= 1 and r["errored"] == 0
               for r in runs), runs
    assert results["eval_id"] in index and "One eval, one run per model" in index
    assert registry.verify().ok

    # 3. Running it again reuses the registry's adapter and exports.
    third = subprocess.run(demo_cmd(report, "--no-serve"), env=env, capture_output=True,
                           text=True, timeout=600)
    assert third.returncode == 0, third.stdout[-3000:] + third.stderr[-3000:]
    assert "reusing" in third.stdout
    assert "reusing the held-out answers" in third.stdout  # not answered a second time
    with registry.session() as s:
        assert len(list(s.scalars(select(t.Job)))) == 1
    assert len(registry.list_adapters("local")) == 1
