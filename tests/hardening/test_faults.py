"""CI-sized fault runs (bench/faults.py does 20+): SIGKILL the tune API and the worker.

After each kill the registry verifies clean, nothing acknowledged is lost, and jobs end
succeeded (resumed from a checkpoint) or failed with a reason (tune fails a job whose
worker died three times: ``worker_lost``). The serve kills (about a
minute of vLLM start-up each) run in the benchmark only; serve's own writes are the
adapter cache, whose atomicity and verification ``test_limits_integrity.py`` covers.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from tests.support import faults

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


def test_sigkill_tune_api_loses_nothing(tmp_path: Path) -> None:
    tally = faults.Tally()
    faults.run_api_kills(3, random.Random(1), tally, tmp_path / "api")
    assert tally.kills == 3 and tally.survived == 3, tally.problems
    assert tally.artifacts_lost == 0 and tally.half_written == 0


def test_sigkill_worker_jobs_resume_and_succeed(tmp_path: Path, base_model_dir: Path) -> None:
    tally = faults.Tally()
    # Kill while the first job loads or trains (it takes ~15 s on 2 idle cores).
    faults.run_worker_kills(2, random.Random(2), tally, tmp_path / "worker", base_model_dir,
                            jobs_per_kill=0.5, finish_timeout=600, window=(3.0, 10.0),
                            max_steps=8)
    assert tally.kills >= 1 and tally.survived == tally.kills, tally.problems
    assert not tally.problems and tally.artifacts_lost == 0


def test_sigkill_export_leaves_no_staging_and_no_half_export(tmp_path: Path,
                                                             base_model_dir: Path) -> None:
    tally = faults.Tally()
    faults.run_export_kills(1, random.Random(3), tally, tmp_path / "export", base_model_dir,
                            window=(4.0, 8.0))
    assert tally.kills == 1 and tally.survived == 1, tally.problems
    assert not tally.problems


def test_a_full_disk_is_an_error_not_a_traceback(tmp_path: Path) -> None:
    tally = faults.Tally()
    if not faults.run_disk_full(tally, tmp_path):
        pytest.skip("this machine does not let the tests mount a tmpfs")
    assert tally.kills == 2 and not tally.problems, tally.problems
