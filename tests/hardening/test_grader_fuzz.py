"""Fuzz the grader routes and job creation: no 5xx for any input, the registry stays sound.

Strategies and the per-response checks live in ``tests.support.grader_fuzz``: grader
configs of every type (valid-ish and broken, nested multi), raw bodies (not JSON, not
UTF-8, other content types), fine-tuning job bodies, and python graders from a corpus of
hostile snippets. Each response must be below 500, JSON, OpenAI's error shape when 4xx;
afterwards ``registry.verify()`` is clean and every job created renders.

CI-sized by default (under a minute on 2 cores; every hostile snippet runs once);
``QUANTA_FUZZ_EXAMPLES=N`` runs N examples per property (raw bodies N/2, combined hostile
python N/10), randomised; ``bench/fuzz_apis.py --graders`` runs the same properties and
prints the counts.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given

from tests.support.grader_fuzz import (
    BASE_MODEL,
    HOSTILE_PYTHON,
    JOBS,
    RUN,
    VALIDATE,
    GraderFuzzTarget,
    examples,
    fuzz_settings,
    grader_fuzz_target,
    grader_requests,
    hostile_python,
    job_bodies,
    raw_requests,
    send_grader_request,
    send_hostile,
    send_job,
    send_raw,
)

RANDOM = "QUANTA_FUZZ_EXAMPLES" in os.environ  # large runs explore; CI runs are repeatable
needs_bwrap = pytest.mark.skipif(shutil.which("bwrap") is None,
                                 reason="bubblewrap missing (scripts/setup.sh installs it)")


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GraderFuzzTarget]:
    with grader_fuzz_target(tmp_path_factory.mktemp("grader-fuzz") / "home") as fuzz_target:
        yield fuzz_target


@fuzz_settings(examples(250), derandomize=not RANDOM)
@given(request=grader_requests())
def test_grader_configs_never_5xx(target: GraderFuzzTarget, request: Any) -> None:
    send_grader_request(target, request)


@fuzz_settings(examples(100, 0.5), derandomize=not RANDOM)
@given(request=raw_requests())
def test_raw_bodies_never_5xx(target: GraderFuzzTarget, request: Any) -> None:
    send_raw(target, request)


def test_job_bodies_never_5xx(target: GraderFuzzTarget) -> None:
    @fuzz_settings(examples(250), derandomize=not RANDOM)
    @given(body=job_bodies(target.files))  # the strategy needs the target's file ids
    def check(body: Any) -> None:
        send_job(target, body)

    check()


@needs_bwrap
@pytest.mark.parametrize("snippet", sorted(HOSTILE_PYTHON))
def test_each_hostile_python_grader(target: GraderFuzzTarget, snippet: str) -> None:
    """Every snippet of the corpus once (about 0.5 s each; 2 s for those that hang): a 200
    scoring without the attack succeeding, or a 4xx; never a 5xx."""
    send_hostile(target, (snippet, {"grader": {"type": "python", "name": "py",
                                               "source": HOSTILE_PYTHON[snippet]},
                                    "model_sample": "42", "item": {"r": "ok"}}))


@needs_bwrap
@fuzz_settings(examples(6, 0.1), derandomize=not RANDOM)
@given(request=hostile_python())
def test_hostile_python_graders_combined(target: GraderFuzzTarget, request: Any) -> None:
    """Snippets in pairs (multi) and with other inputs."""
    send_hostile(target, request)


def _param(response: Any) -> str:
    return str(response.json()["error"]["param"])


def test_refusals_name_the_field(target: GraderFuzzTarget) -> None:
    """The specific refusals: each a 4xx naming what was wrong, never a 5xx."""
    check = {"type": "string_check", "name": "c", "input": "{{item.r}}", "reference": "a",
             "operation": "eq"}
    job = {"model": BASE_MODEL, "training_file": target.files["chat"]}
    cases: list[tuple[str, Any, int, str | None]] = [
        (RUN, {"grader": check, "model_sample": "a\udfffb"}, 400, "model_sample"),
        (RUN, {"grader": check, "model_sample": "a", "item": {"r": "a\x00b"}}, 400, "item"),
        (RUN, {"grader": {**check, "name": "\ufffe"}, "model_sample": "a"}, 400, "grader"),
        (VALIDATE, {"grader": {**check, "reference": "\ud800"}}, 400, "grader"),
        (RUN, {"grader": check, "model_sample": "a" * 1_000_001}, 400, "model_sample"),
        (JOBS, {**job, "method": None}, 400, "method"),
        (JOBS, {**job, "seed": True}, 400, "seed"),
        (JOBS, {**job, "method": {"type": "supervised", "supervised": {
            "hyperparameters": {"n_epochs": True}}}}, 400, "n_epochs"),
        (JOBS, {**job, "hyperparameters": {"batch_size": False}}, 400, "batch_size"),
        (JOBS, {**job, "quanta": {"lora": {"r": True}}}, 400, "r"),
        (JOBS, {**job, "validation_file": ""}, 400, "validation_file"),
    ]
    for route, body, status, param in cases:
        response = target.post(route, body)
        assert response.status_code == status, (route, body, response.text[:300])
        if param:
            assert param in _param(response), (route, body, response.text[:300])
    # Another content type is a 400; a body over QUANTA_MAX_JSON_BYTES a 413, unread.
    text = json.dumps({"grader": check, "model_sample": "a"}).encode()
    assert target.post(RUN, raw=text, content_type="text/plain").status_code == 400
    big = b'{"model_sample": "' + b"x" * (50 << 20) + b'"}'
    assert target.post(RUN, raw=big).status_code == 413
    # The expansion of a repeated variable is capped: a 400, not a minute of copying.
    expanding = {"grader": {**check, "input": "{{item.r}}" * 6000}, "model_sample": "a",
                 "item": {"r": "x" * 100_000}}
    assert target.post(RUN, expanding).status_code == 400


@needs_bwrap
def test_python_results_out_of_range_score_zero(target: GraderFuzzTarget) -> None:
    for value in ("10 ** 400", "-(10 ** 400)", "float('inf')", "1e308", "True", "'0.5'"):
        response = target.post(RUN, {"grader": {
            "type": "python", "name": "p", "source": f"def grade(sample, item):\n"
                                                      f"    return {value}"},
            "model_sample": "x"})
        assert response.status_code == 200, (value, response.text[:300])
        assert response.json()["reward"] == 0.0, (value, response.text[:300])


def test_registry_consistent_after_fuzzing(target: GraderFuzzTarget) -> None:
    """Last in the module: what every request above left behind is sound."""
    assert target.requests > 0
    assert target.check_consistent() == []

