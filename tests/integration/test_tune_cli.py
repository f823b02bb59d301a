"""``quanta tune run`` trains locally in one command and prints the evaluation table."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from quanta.data import write_jsonl
from tests.support.fixtures import arithmetic_chat, seeded_registry

pytestmark = pytest.mark.slow


def _quanta(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "QUANTA_HOME": str(home), "COLUMNS": "200"}
    quanta = Path(sys.executable).with_name("quanta")  # the console script, as users run it
    return subprocess.run([str(quanta), *args], env=env, text=True, capture_output=True,
                          timeout=600)


def test_tune_run_and_jobs_commands(quanta_home: Path, base_model_dir: Path,
                                    tmp_path: Path) -> None:
    registry = seeded_registry(quanta_home, base_model_dir)
    data = write_jsonl(arithmetic_chat(4), tmp_path / "train.jsonl")
    run = _quanta(quanta_home, "tune", "run", str(data), "--validation-file", str(data),
                  "--max-steps", "2", "--batch-size", "2", "--max-length", "128",
                  "--lora-r", "4", "--eval-n", "0", "--suffix", "cli")
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]
    assert "evaluation" in run.stdout and "heldout_loss" in run.stdout
    (adapter,) = registry.list_adapters("local")
    assert adapter.name in run.stdout.replace("\n", "") and ":cli:" in adapter.name

    listing = _quanta(quanta_home, "tune", "jobs", "ls")
    assert listing.returncode == 0 and "succeeded" in listing.stdout
    assert adapter.job_id in listing.stdout
    events = _quanta(quanta_home, "tune", "jobs", "events", adapter.job_id)
    assert "The job has successfully completed" in events.stdout
    shown = _quanta(quanta_home, "tune", "jobs", "show", adapter.job_id)
    assert '"status": "succeeded"' in shown.stdout
    cancel = _quanta(quanta_home, "tune", "jobs", "cancel", adapter.job_id)
    assert cancel.returncode == 2 and "cannot be cancelled" in cancel.stderr
    missing = _quanta(quanta_home, "tune", "run", str(tmp_path / "nope.jsonl"))
    assert missing.returncode == 2 and "no such file" in missing.stderr
    rft = write_jsonl([{"messages": [{"role": "user", "content": "2 + 2 m?"}], "answer": "4 m"}],
                      tmp_path / "rft.jsonl")
    no_grader = _quanta(quanta_home, "tune", "run", str(rft), "--method", "reinforcement")
    assert no_grader.returncode == 2 and "needs --grader" in no_grader.stderr
    bad = tmp_path / "grader.json"
    bad.write_text('{"type": "string_check", "name": "s", "input": "x", "reference": "y", '
                   '"operation": "matches"}')
    refused = _quanta(quanta_home, "tune", "run", str(rft), "--method", "reinforcement",
                      "--grader", str(bad))
    assert refused.returncode == 2 and "operation" in refused.stderr


def test_sandbox_check_says_when_python_graders_cannot_run(quanta_home: Path,
                                                           monkeypatch: pytest.MonkeyPatch
                                                           ) -> None:
    """The operator's check (`quanta tune sandbox`, also printed when a worker starts)."""
    monkeypatch.setenv("QUANTA_GRADER_PYTHON", "/usr/bin/no-such-python")
    broken = _quanta(quanta_home, "tune", "sandbox")
    assert broken.returncode == 1 and "sandbox_unavailable" in broken.stdout
    monkeypatch.delenv("QUANTA_GRADER_PYTHON")
    if shutil.which("bwrap") is not None:
        ok = _quanta(quanta_home, "tune", "sandbox")
        assert ok.returncode == 0 and "sandbox ok" in ok.stdout, ok.stdout + ok.stderr
