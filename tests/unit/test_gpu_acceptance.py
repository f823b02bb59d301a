"""bench/gpu_acceptance.py: its CPU answer, its report and stage logic, and (on a CUDA
machine) the whole run."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "gpu_acceptance.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gpu_acceptance", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve their annotations through it
    spec.loader.exec_module(module)
    return module


ga = _load()


def _run(tmp_path: Path, *args: str, env: dict[str, str] | None = None,
         timeout: float = 120) -> tuple[subprocess.CompletedProcess[str], float]:
    started = time.monotonic()
    proc = subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True,
                          text=True, timeout=timeout, cwd=tmp_path,
                          env={**os.environ, **(env or {})}, check=False)
    return proc, time.monotonic() - started


def test_without_cuda_it_says_so_and_exits_0(tmp_path: Path) -> None:
    """No CUDA (hidden here, so the test means the same on a GPU machine): one line, exit
    0, quickly: only torch is imported."""
    report = tmp_path / "report.json"
    proc, seconds = _run(tmp_path, "--json", str(report), env={"CUDA_VISIBLE_DEVICES": ""})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == ga.NO_CUDA
    assert json.loads(report.read_text())["device"] is None
    assert seconds < 60  # < 10 s on an idle machine; 2 shared cores import torch slowly


def _result(name: str, status: str, detail: str = "", **metrics: Any) -> Any:
    return ga.StageResult(name, status, detail, 1.25, metrics)


def test_report_aggregates_statuses_and_formats_the_comparisons() -> None:
    results = [
        _result("import", ga.PASSED, model_id="smollm2-135m-instruct", shown="smollm2"),
        _result("qlora", ga.SKIPPED, "not installed: bitsandbytes"),
        _result("sft", ga.PASSED, step_s=0.2, shown="20 steps"),
        _result("serve", ga.PASSED, mixed_base_ratio=0.9134),
        _result("gptq", ga.FAILED, "ConversionError: GPTQ worker failed (exit 1)"),
        _result("unsloth", ga.PASSED, step_s=0.08),
    ]
    report = ga.build_report(results, device="H100", elapsed_s=301.26)

    assert report["passed"] is False and report["failed"] == ["gptq"]
    assert report["counts"] == {"passed": 4, "failed": 1, "skipped": 1}
    assert report["elapsed_s"] == 301.3 and report["budget_s"] == ga.BUDGET_S
    labels = {row["name"]: row["label"] for row in report["stages"]}
    assert labels["qlora"] == "skipped (not installed: bitsandbytes)"
    assert labels["gptq"] == "failed (ConversionError: GPTQ worker failed (exit 1))"
    assert labels["import"] == "passed"
    assert report["summary"] == [
        "serve mixed/base throughput: 0.91x (target >= 0.85)",
        "unsloth vs peft step time: 0.080 s vs 0.200 s per step (peft/unsloth 2.50x)"]
    assert json.loads(json.dumps(report)) == report  # --json writes exactly this

    everything_ran = ga.build_report([r for r in results if r.status != ga.FAILED],
                                     device="H100", elapsed_s=1)
    assert everything_ran["passed"] is True and everything_ran["failed"] == []


def test_comparisons_need_both_runs_passed() -> None:
    results = {"sft": _result("sft", ga.PASSED, step_s=0.2),
               "unsloth": _result("unsloth", ga.SKIPPED, "not installed: unsloth"),
               "serve": _result("serve", ga.FAILED, "timed out after 240 s",
                                mixed_base_ratio=0.5)}
    assert ga.unsloth_line(results) == "unsloth vs peft step time: n/a (needs both runs)"
    assert ga.serve_line(results) == "serve mixed/base throughput: n/a (target >= 0.85)"


@pytest.mark.parametrize(("value", "shown"), [
    (0.91349, "0.91x"), (1.0, "1.00x"), (12.345, "12.35x"), (None, "n/a"),
    (float("nan"), "n/a"), (float("inf"), "n/a")])
def test_format_ratio(value: float | None, shown: str) -> None:
    assert ga.format_ratio(value) == shown


def test_ratio_of_nothing_is_none() -> None:
    assert ga.ratio(3.0, 2.0) == 1.5
    assert ga.ratio(None, 2.0) is None and ga.ratio(3.0, 0.0) is None


def test_table_renders_every_stage_and_escapes_markup() -> None:
    from rich.console import Console

    report = ga.build_report([
        _result("import", ga.PASSED, shown="smollm2 [LlamaForCausalLM]"),
        _result("fsdp", ga.FAILED, "KeyError: ['rank']"),
    ], device="NVIDIA H100 80GB HBM3", elapsed_s=12)
    console = Console(record=True, width=160)
    console.print(ga.render_table(report))
    text = console.export_text()
    assert "GPU acceptance on NVIDIA H100 80GB HBM3: FAILED: fsdp" in text
    assert "smollm2 [LlamaForCausalLM]" in text and "failed (KeyError: ['rank'])" in text
    assert "serve mixed/base throughput: n/a" in text


def _find(installed: set[str]) -> Any:
    return lambda name: object() if name in installed else None


def test_stages_are_skipped_for_a_failed_prerequisite_a_missing_package_or_time() -> None:
    stage = ga.Stage("serve", "vLLM", 240, needs=("vllm", "peft"), after=("import",))
    ok = {"import": _result("import", ga.PASSED)}
    everything = _find({"vllm", "peft"})
    assert ga.why_not_run(stage, ok, 300, everything) is None
    assert ga.why_not_run(stage, {}, 300, everything) == "needs import"
    assert ga.why_not_run(stage, {"import": _result("import", ga.FAILED, "x")}, 300,
                          everything) == "needs import"
    assert ga.why_not_run(stage, ok, 300, _find({"peft"})) == "not installed: vllm"
    assert ga.why_not_run(stage, ok, 5, everything) == "time budget spent (5 s left)"
    assert ga.stage_timeout(stage, 100) == 100 and ga.stage_timeout(stage, 1000) == 240


def test_run_stages_goes_on_after_failures_within_one_budget() -> None:
    stages = [ga.Stage("import", "", 100), ga.Stage("a", "", 100, after=("import",)),
              ga.Stage("b", "", 100, needs=("missing",)), ga.Stage("c", "", 100),
              ga.Stage("d", "", 100)]
    now = [0.0]
    ran: list[tuple[str, float]] = []

    def run(stage: Any, timeout: float) -> Any:
        ran.append((stage.name, timeout))
        now[0] += 155 if stage.name == "c" else 10
        return _result(stage.name, ga.FAILED if stage.name == "import" else ga.PASSED)

    results = ga.run_stages(stages, run, budget_s=180, clock=lambda: now[0],
                            find=_find(set()))
    assert [r.label for r in results] == [
        "failed", "skipped (needs import)", "skipped (not installed: missing)", "passed",
        "skipped (time budget spent (15 s left))"]
    assert ran == [("import", 100), ("c", 100)]


def test_outcome_maps_skips_missing_packages_and_errors() -> None:
    def missing() -> dict[str, Any]:
        raise ModuleNotFoundError("No module named 'vllm'", name="vllm")

    def broken() -> dict[str, Any]:
        raise ga.StageFailed("loss did not fall: 2.0 -> 2.1\nmore")

    def skip() -> dict[str, Any]:
        raise ga.Skip("vLLM here is not a CUDA build")

    assert ga.outcome(lambda: {"x": 1}) == {"status": "passed", "metrics": {"x": 1}}
    assert ga.outcome(missing) == {"status": "skipped", "detail": "not installed: vllm"}
    assert ga.outcome(skip) == {"status": "skipped", "detail": "vLLM here is not a CUDA build"}
    failed = ga.outcome(broken)
    assert failed["status"] == "failed"
    assert failed["detail"] == "StageFailed: loss did not fall: 2.0 -> 2.1"
    assert "Traceback" in failed["error"]


def test_stage_env_is_offline_on_a_temporary_registry(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QUANTA_DATABASE_URL", "postgresql://elsewhere/db")
    env = ga.stage_env(tmp_path)
    assert env["QUANTA_HOME"] == str(tmp_path) and "QUANTA_DATABASE_URL" not in env
    assert env["HF_HUB_OFFLINE"] == env["TRANSFORMERS_OFFLINE"] == "1"
    assert env["PYTHONPATH"].split(os.pathsep)[0] == str(SCRIPT.parents[1])


def test_a_stage_past_its_timeout_fails_and_the_table_still_comes(tmp_path: Path) -> None:
    context = tmp_path / "context.json"
    context.write_text(json.dumps({"home": str(tmp_path / "home"), "results": {}}))
    result = ga.run_child(ga.STAGES[0], context, tmp_path, timeout_s=0.2)
    assert result.status == ga.FAILED and result.label == "failed (timed out after 0 s)"
    report = ga.build_report([result], device="H100", elapsed_s=1)
    assert report["failed"] == ["import"]


def test_gptq_kernels_named_for_cuda() -> None:
    assert ga.is_cuda_kernel("MarlinQuantLinear") and ga.is_cuda_kernel("ExllamaV2QuantLinear")
    assert not ga.is_cuda_kernel("TorchQuantLinear")


@pytest.mark.gpu
def test_acceptance_run_on_the_gpu(tmp_path: Path) -> None:
    """The whole run: every stage that could run here passed (the conftest skips this
    without CUDA)."""
    report_path = tmp_path / "acceptance.json"
    proc, _ = _run(tmp_path, "--json", str(report_path), "--logs", timeout=600)
    report = json.loads(report_path.read_text())
    print(proc.stdout)
    assert {row["name"] for row in report["stages"]} == {s.name for s in ga.STAGES}
    not_passed = {row["name"]: row["label"] for row in report["stages"]
                  if row["status"] not in ("passed", "skipped")}
    assert not not_passed, (not_passed, proc.stdout[-4000:])
    assert proc.returncode == 0
