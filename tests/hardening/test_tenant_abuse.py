"""What one tenant sends cannot fail, hold or blow up another tenant's requests.

Each test reproduces one failure an outside tester found (issue 33) and checks the fix:
shared process limits between sandboxes, grader work inside the API process, text that
is valid JSON but not text, grader results that are not numbers, loose request types.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from quanta.config import Settings
from quanta.tenancy import create_key, create_tenant
from tests.support.fixtures import arithmetic_chat, seeded_registry
from tune.api.app import create_app
from tune.graders.sandbox import Limits, run_python_grader

needs_bwrap = pytest.mark.skipif(shutil.which("bwrap") is None,
                                 reason="bubblewrap missing (scripts/setup.sh installs it)")
HALF = "def grade(sample, item):\n    return 0.5"
# Forks (at most 300 children, each sleeping) until refused; returns how many it made.
COUNT_FORKS = """import os, time
def forks():
    n = 0
    while n < 300:
        try:
            if os.fork() == 0:
                time.sleep(30)
                os._exit(0)
            n += 1
        except OSError:
            break
    return n
def grade(sample, item):
    return float(forks())
"""
# Forks until refused, allocates until refused, then spins: every limit it has, used up.
HOG = COUNT_FORKS.replace("    return float(forks())", """    forks()
    blocks = []
    try:
        while True:
            blocks.append(bytearray(16 * 1024 * 1024))
    except MemoryError:
        pass
    while True:
        pass
""")


def _h(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def env(quanta_home: Path, base_model_dir: Path) -> dict[str, Any]:
    settings = Settings(home=quanta_home, allow_anonymous=False, grader_timeout=6,
                        grader_cpu_seconds=3, grader_run_seconds=8, grader_workers=4,
                        grader_tenant_concurrency=2, max_json_bytes=256 * 1024)
    registry = seeded_registry(quanta_home, base_model_dir, settings=settings)
    create_tenant(registry, "other")
    _, key = create_key(registry, "local")
    _, other = create_key(registry, "other")
    return {"registry": registry, "client": TestClient(create_app(settings, registry)),
            "key": key, "other": other}


def _post(env: dict[str, Any], url: str, body: Any, key: str | None = None) -> Any:
    """POST ``body`` as JSON with ASCII escapes (how a client sends a lone surrogate)."""
    return env["client"].post(url, content=json.dumps(body), headers={
        **_h(key or env["key"]), "content-type": "application/json"})


def _run_grader(env: dict[str, Any], grader: dict[str, Any], sample: str = "42",
                item: dict[str, Any] | None = None, key: str | None = None) -> Any:
    return _post(env, "/v1/fine_tuning/alpha/graders/run",
                 {"grader": grader, "model_sample": sample, "item": item or {}}, key)


def _training_file(env: dict[str, Any]) -> str:
    uploaded = env["client"].post(
        "/v1/files", headers=_h(env["key"]), data={"purpose": "fine-tune"},
        files={"file": ("d.jsonl", "".join(json.dumps(r) + "\n"
                                           for r in arithmetic_chat(3)).encode())})
    return str(uploaded.json()["id"])


def _python(source: str, name: str = "py") -> dict[str, Any]:
    return {"type": "python", "name": name, "source": source}


def _error(resp: Any, status: int, param: str | None = None) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    error = resp.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["message"]
    if param is not None:
        assert error["param"] == param, error
    return error


# -- 1 and 3: one tenant's grader uses up its limits; another's still scores ------------

def _as_user(uid: int | None, function: Any) -> Any:
    """``function()`` in a forked child that dropped to ``uid`` first (how the tune image
    runs: uid 10001); the child inherits this process's imports, so nothing is exec'd
    from a directory the user cannot read."""
    import multiprocessing

    from tune.graders.seccomp import grader_filter

    grader_filter()  # compiled (and cached) here: the stdlib is not readable to the uid
    context = multiprocessing.get_context("fork")
    receive, send = context.Pipe(duplex=False)

    def child() -> None:
        if uid is not None:
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)
        os.chdir("/")
        try:
            send.send((True, function()))
        except BaseException as exc:
            send.send((False, repr(exc)))

    process = context.Process(target=child)
    process.start()
    assert receive.poll(150), "the child did not answer"
    ok, value = receive.recv()
    process.join()
    assert ok, value
    return value


def _users() -> list[Any]:
    return [None, pytest.param(10001, marks=pytest.mark.skipif(
        os.geteuid() != 0, reason="switching to an unprivileged uid needs root"))]


def _hog_beside_half() -> list[Any]:
    limits = Limits(wall_seconds=8, cpu_seconds=4, memory_bytes=256 * 1024 * 1024)
    hog = threading.Thread(target=run_python_grader, args=(HOG, {}, {}, limits))
    hog.start()
    time.sleep(2.5)  # the hog has forked and allocated to its limits by now
    scores: list[Any] = []
    for _ in range(3):
        run = run_python_grader(HALF, {}, {}, limits)
        scores += [run.result and run.result.get("score"), run.failure()]
    hog.join()
    return scores


@needs_bwrap
@pytest.mark.parametrize("uid", _users(), ids=["as-this-user", "as-uid-10001"])
def test_a_hog_cannot_fail_another_tenants_grader(uid: int | None) -> None:
    """Before: every sandbox shared ``nobody``'s 32 processes, and a fork bomb made other
    tenants' graders exit 1; as non-root there was no process limit at all."""
    assert _as_user(uid, _hog_beside_half) == [0.5, None] * 3


@needs_bwrap
@pytest.mark.parametrize("uid", _users(), ids=["as-this-user", "as-uid-10001"])
def test_a_fork_bomb_gets_its_own_process_limit(uid: int | None) -> None:
    """As a non-root user the sandbox used to set no process limit (300 children)."""
    forks = _as_user(uid, lambda: run_python_grader(COUNT_FORKS, {}, {}).result["score"])
    assert 0 < forks < 32


@needs_bwrap
def test_runs_take_distinct_identities_as_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("per-run uids are handed out by root")
    source = "import os\ndef grade(sample, item):\n    return float(os.getuid())"
    seen = set()
    for _ in range(3):
        run = run_python_grader(source, {}, {}, Limits())
        assert run.failure() is None, run.output
        seen.add(run.result["score"])
    assert 0 not in seen and 65534 not in seen  # neither root's nor nobody's


# clone(2)'s raw syscall number by architecture (the C library's clone() needs a stack).
CLONE_SYSCALL = {"x86_64": 56, "aarch64": 220}


@needs_bwrap
def test_nested_namespaces_ptrace_and_mounts_are_refused() -> None:
    clone = CLONE_SYSCALL.get(platform.machine())
    if clone is None:
        pytest.skip(f"clone's syscall number on {platform.machine()} is not in the table")
    source = """import ctypes
def grade(sample, item):
    libc = ctypes.CDLL(None, use_errno=True)
    results = []
    for call in (lambda: libc.unshare(0x10000000), lambda: libc.unshare(0x40000000),
                 lambda: libc.ptrace(16, 1, 0, 0),
                 lambda: libc.mount(b"none", b"/tmp", b"tmpfs", 0, None),
                 lambda: libc.syscall(CLONE, 0x10000000 | 17, 0, 0, 0, 0)):
        ctypes.set_errno(0)
        results.append((call(), ctypes.get_errno()))
    return 1.0 if all(r == -1 and e == 1 for r, e in results) else -float(len(results))
""".replace("CLONE", str(clone))
    run = run_python_grader(source, {}, {}, Limits())
    assert run.failure() is None, run.output
    assert run.result == {"score": 1.0}


# -- 2: grader work runs apart from the API, bounded ------------------------------------

@needs_bwrap
def test_per_tenant_cap_answers_429_and_others_still_run(env: dict[str, Any]) -> None:
    """Before: seven 160-second multi graders at once were all accepted."""
    sleeper = _python("import time\ndef grade(sample, item):\n    time.sleep(30)")
    slow = {"type": "multi", "name": "m", "calculate_output": "a + b",
            "graders": {"a": sleeper, "b": sleeper}}
    answers: list[Any] = []
    threads = [threading.Thread(target=lambda: answers.append(_run_grader(env, slow)))
               for _ in range(2)]
    for thread in threads:
        thread.start()
    time.sleep(1.0)
    busy = _run_grader(env, slow)
    error = _error(busy, 429)
    assert int(busy.headers["retry-after"]) >= 1 and error["code"] == "rate_limit_exceeded"
    other = _run_grader(env, _python(HALF), key=env["other"])
    assert other.status_code == 200 and other.json()["reward"] == 0.5
    listed = env["client"].get("/v1/files", headers=_h(env["other"]))
    assert listed.status_code == 200
    assert all(thread.is_alive() for thread in threads)  # the API answered meanwhile
    for thread in threads:
        thread.join()
    for answer in answers:  # the run's budget (8 s) ends it, scored 0 with the reason
        assert answer.status_code == 200
        errors = answer.json()["metadata"]["errors"]
        assert answer.json()["reward"] == 0 and errors["unresponsive_reward_error"]


def test_oversized_grader_inputs_are_400s_naming_the_field(env: dict[str, Any]) -> None:
    """Before: a 1,000,000-character fuzzy match ran 37 s in the API process, and 6,000
    copies of ``{{item.r}}`` took it from 823 MB to 1,967 MB."""
    fuzzy = {"type": "text_similarity", "name": "f", "evaluation_metric": "fuzzy_match",
             "input": "{{sample.output_text}}", "reference": "{{item.r}}"}
    _error(_run_grader(env, fuzzy, sample="a" * 60_000, item={"r": "b"}), 400,
           "grader.input")
    _error(_run_grader(env, {**fuzzy, "evaluation_metric": "rouge_l"}, sample="a b",
                       item={"r": "word " * 4000}), 400, "grader.reference")
    repeat = {"type": "string_check", "name": "s", "operation": "eq",
              "input": "{{item.r}}" * 6000, "reference": "x"}
    _error(_run_grader(env, repeat, item={"r": "y" * 100}), 400, "grader.input")
    nested = {"type": "multi", "name": "m", "calculate_output": "s",
              "graders": {"s": repeat}}
    _error(_run_grader(env, nested, item={"r": "y" * 100}), 400, "grader.graders.s.input")
    _error(_run_grader(env, fuzzy, sample="a" * 100_001), 400, "model_sample")
    huge = b'{"grader": {}, "model_sample": "' + b"a" * 300_000 + b'"}'
    resp = env["client"].post("/v1/fine_tuning/alpha/graders/run", content=huge,
                              headers={**_h(env["key"]), "content-type": "application/json"})
    assert _error(resp, 413)["code"] == "request_too_large"
    ok = _run_grader(env, fuzzy, sample="abc", item={"r": "abc"})
    assert ok.status_code == 200 and ok.json()["reward"] == 1.0


# -- 5: valid JSON that is not text ------------------------------------------------------

def test_text_that_is_not_text_is_refused_before_it_is_stored(env: dict[str, Any]) -> None:
    """Before: a job whose metadata held "\\udfff" was stored, then every list was a 500."""
    file_id = _training_file(env)
    jobs = "/v1/fine_tuning/jobs"
    for metadata, param in [({"k": "\udfff"}, "metadata.k"), ({"k": "a\x00b"}, "metadata.k"),
                            ({"k": "\ufffe"}, "metadata.k"), ({"\ud800": "v"}, "metadata")]:
        resp = _post(env, jobs, {"model": "smollm2-135m-instruct", "training_file": file_id,
                                 "metadata": metadata})
        _error(resp, 400, param)
    _error(_post(env, jobs, {"model": "smollm2-135m-instruct", "training_file": file_id,
                             "suffix": "x\udfff"}), 400, "suffix")
    _error(_post(env, jobs, {"model": "smollm2-135m-instruct", "training_file": file_id,
                             "validation_file": ""}), 400, "validation_file")
    assert env["client"].get(jobs, headers=_h(env["key"])).json()["data"] == []
    multi = {"type": "multi", "name": "m", "calculate_output": "a",
             "graders": {"\udfff": _python(HALF)}}
    _error(_run_grader(env, multi), 400, "grader.graders")
    _error(_run_grader(env, _python(HALF, name="n\udfff")), 400, "grader.name")
    bad_line = json.dumps({"messages": [{"role": "user", "content": "q\udfff"},
                                        {"role": "assistant", "content": "a"}]})
    resp = env["client"].post("/v1/files", headers=_h(env["key"]), data={"purpose": "fine-tune"},
                              files={"file": ("d.jsonl", bad_line.encode() + b"\n")})
    assert "lone surrogate" in _error(resp, 400)["message"]
    assert env["client"].get("/v1/files", headers=_h(env["key"])).status_code == 200


# -- 6: results that are not numbers score 0 with the reason ------------------------------

@needs_bwrap
def test_a_graders_words_are_echoed_as_text(env: dict[str, Any]) -> None:
    """A grader's error message is its author's text: escaped where it is not text."""
    raising = _python("def grade(sample, item):\n    raise ValueError('\\udfff\\x00' * 3)")
    for grader in (raising, {"type": "multi", "name": "m", "calculate_output": "a",
                             "graders": {"a": raising}}):
        resp = _run_grader(env, grader)
        assert resp.status_code == 200, resp.text
        details = resp.json()["metadata"]["errors"]["python_grader_runtime_error_details"]
        assert "\\udfff\\x00" in details and resp.json()["reward"] == 0


@needs_bwrap
@pytest.mark.parametrize(("source", "reason"), [
    ("def grade(sample, item):\n    return 10**400", "too large for a float"),
    ("def grade(sample, item):\n    return 1e300", "outside"),
    ("import os, sys\ndef grade(sample, item):\n"
     "    os.write(int(sys.argv[1]), b'[' * 60000)\n    os._exit(0)", "not readable"),
    ("import os, sys\ndef grade(sample, item):\n"
     "    os.write(int(sys.argv[1]), b'{\"score\": 1' + b'0' * 5000 + b'}')\n    os._exit(0)",
     "not readable"),
    ("def grade(sample, item):\n    x = []\n    for _ in range(100000):\n        x = [x]\n"
     "    return x", "RecursionError"),
])
def test_results_that_are_not_scores_score_zero(env: dict[str, Any], source: str,
                                                reason: str) -> None:
    resp = _run_grader(env, _python(source))
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["reward"] == 0.0
    assert reason in body["metadata"]["errors"]["python_grader_runtime_error_details"]


def test_a_raising_grader_costs_one_reward_in_training() -> None:
    from tune.train.methods.rft import GraderReward

    class Broken:
        name, type = "broken", "python"

        def grade(self, sample: Any, item: Any) -> Any:
            raise OverflowError("int too large to convert to float")

    warnings: list[str] = []
    hooks = type("Hooks", (), {"on_warning": lambda self, text, data: warnings.append(text)})()
    rewards = GraderReward(Broken(), hooks)([None], ["answer"], item=[json.dumps({})])
    assert rewards == [0.0] and "OverflowError" in warnings[0]


# -- strict request types -----------------------------------------------------------------

def test_loose_types_are_400s(env: dict[str, Any]) -> None:
    file_id = _training_file(env)
    base = {"model": "smollm2-135m-instruct", "training_file": file_id}
    jobs, client, key = "/v1/fine_tuning/jobs", env["client"], env["key"]
    epochs = {"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": True}}}
    _error(client.post(jobs, headers=_h(key), json={**base, "method": epochs}), 400,
           "method.supervised.hyperparameters.n_epochs")
    _error(client.post(jobs, headers=_h(key), json={**base, "method": None}), 400, "method")
    for targets in (["../../x"], ["no_such_proj"]):
        _error(client.post(jobs, headers=_h(key), json={
            **base, "quanta": {"lora": {"target_modules": targets}}}), 400,
            "quanta.lora.target_modules" if targets != ["../../x"]
            else "quanta.lora.target_modules.0")
    plain = client.post(jobs, content=json.dumps(base),
                        headers={**_h(key), "content-type": "text/plain"})
    assert _error(plain, 400)["code"] == "unsupported_content_type"
    _error(client.post("/v1/uploads", headers=_h(key), json={
        "filename": "d.jsonl", "purpose": "fine-tune", "bytes": "12",
        "mime_type": "text/jsonl"}), 400, "bytes")
    good = client.post(jobs, headers=_h(key), json={
        **base, "quanta": {"lora": {"target_modules": ["q_proj", "self_attn.v_proj"]}}})
    assert good.status_code == 200, good.text
