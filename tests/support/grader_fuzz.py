"""Fuzz the grader routes and job creation with hypothesis (hand-written strategies).

schemathesis (``tests.support.fuzz``) fuzzes from the OpenAPI schema, but the grader
routes and ``POST /v1/fine_tuning/jobs`` read their bodies by hand, so the schema says
nothing about them. Here the strategies follow ``tune.graders.config`` and ``tune.plan``:
valid-ish configs of every grader type (nested ``multi`` too), broken ones (a key dropped,
a value swapped for junk, a key added), odd text (lone surrogates, NUL, non-characters,
``{{item.r}}`` repeated), huge and non-finite numbers, deep nesting, bools where ints
go, raw bodies that are not JSON or not UTF-8, other content types, and python graders
drawn from a corpus of hostile snippets (fork, allocate, loop, sleep, forge the result
fd, return 10**400, raise BaseException subclasses, unshare/ptrace via ctypes...).

The invariant, checked on every response by :class:`GraderFuzzTarget`: no 5xx; a JSON
body; a 4xx is OpenAI's error shape (a 429 carries ``Retry-After``); a graders/run 200 has
a finite reward; no hostile snippet's "I escaped" sentinel comes back as a reward. After
the run :meth:`GraderFuzzTarget.check_consistent` asks ``registry.verify()`` (what
``quanta registry verify`` runs), and that every job the API created renders.

``tests/hardening/test_grader_fuzz.py`` runs the properties small;
``bench/fuzz_apis.py --graders`` runs them large (``fuzz_graders``).
"""

from __future__ import annotations

import collections
import contextlib
import json
import math
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st

from tests.support.fuzz import FuzzResult

RUN = "/v1/fine_tuning/alpha/graders/run"
VALIDATE = "/v1/fine_tuning/alpha/graders/validate"
JOBS = "/v1/fine_tuning/jobs"
BASE_MODEL = "fuzz-base"  # a fake base model registered by the target (score_model, jobs)
ESCAPED = 12345.0  # a hostile snippet returns this only if its attack succeeded

# Sandbox limits for the fuzz (the operator's settings, small so hostile graders end fast).
GRADER_ENV = {"QUANTA_GRADER_TIMEOUT": "2", "QUANTA_GRADER_CPU_SECONDS": "1",
              "QUANTA_GRADER_MEMORY_MB": "256", "QUANTA_GRADER_RUN_SECONDS": "20"}
REQUEST_TIMEOUT = 60.0  # no answer by then is a violation (the run budget is 20 s)


def examples(default: int, scale: float = 1.0) -> int:
    """``QUANTA_FUZZ_EXAMPLES`` (times ``scale``) if set, else ``default`` (the CI size)."""
    value = os.environ.get("QUANTA_FUZZ_EXAMPLES")
    return max(1, int(int(value) * scale)) if value else default


# -- strategies: text and junk ----------------------------------------------------------------

SPECIAL_STRINGS = [
    "", " ", "\x00", "a\x00b", "\udfff", "\ud800", "x\udc00y", "\ud83d", "\ufffe", "\uffff",
    "\U0010ffff", "\ufdd0", "\u202e", "\u200b", "\r\n", "\x1b[31m", "\t" * 50, "é" * 100,
    "💥" * 50, "NaN", "Infinity", "-0", "1e309", "null", "true", "0x10", "../../etc/passwd",
    "%s%s%n", "' OR 1=1 --", "{{item.r}}", "{{ sample.output_text }}", "{{", "}}",
    "{{item.__class__}}", "{{item.r.-}}", "{{sample.output_json.a[0]}}",
    "{{item.a[99999999999999999999999]}}", "{{other.x}}", "{{item}}", "{{sample}}",
    "{{ item.r }}" * 2000, "x" * 70_000,
]
odd_chars = st.characters(exclude_categories=())  # surrogates (Cs) included
odd_text = st.one_of(st.sampled_from(SPECIAL_STRINGS), st.text(odd_chars, max_size=24),
                     st.lists(st.sampled_from(SPECIAL_STRINGS[:45]), min_size=2, max_size=6)
                     .map("".join))


def mostly(clean: st.SearchStrategy[Any], odd: st.SearchStrategy[Any] | None = None,
           one_in: int = 8) -> st.SearchStrategy[Any]:
    """``clean`` usually, ``odd`` (default: odd text) one draw in ``one_in``: every text
    field of a request odd at once would make nearly every request a 400 at the body.
    (The clean branch is hypothesis's "simplest" choice, 0, which it draws more often.)"""
    odd = odd_text if odd is None else odd
    return st.integers(0, one_in - 1).flatmap(lambda i: odd if i == one_in - 1 else clean)


huge_ints = st.sampled_from([2**31, 2**63, -(2**63) - 1, 2**64, 10**30, 10**400, -(10**400)])
numbers = st.one_of(st.integers(-5, 300), huge_ints,
                    st.floats(allow_nan=True, allow_infinity=True), st.booleans())


def junk(max_leaves: int = 8) -> st.SearchStrategy[Any]:
    """Any JSON value (NaN and Infinity too, which Python's json reads), odd text inside."""
    return st.recursive(st.none() | numbers | odd_text,
                        lambda inner: st.lists(inner, max_size=4)
                        | st.dictionaries(odd_text, inner, max_size=4),
                        max_leaves=max_leaves)


def nested(depth: int, leaf: Any = "x") -> Any:
    value: Any = leaf
    for i in range(depth):
        value = [value] if i % 2 else {"a": value}
    return value


deep_values = st.sampled_from([50, 200, 900]).map(nested)
templates = mostly(st.one_of(
    st.sampled_from(["{{item.r}}", "{{ sample.output_text }}", "{{sample.output_json.a}}",
                     "{{item.answer}}", "{{item.unit}}", "{{item.r}} and {{sample.output_text}}",
                     "{{sample.choices[0].message.content}}", "{{item.deep.a.a.a}}", "plain"]),
    st.integers(1, 8000).map(lambda n: "{{item.r}}" * n)))  # a variable repeated, expanded
samples = mostly(st.one_of(
    st.sampled_from(["42", "14.4 m/s", '{"a": [1, 2]}', "[" * 500, "ab " * 3000,
                     "x " * 50_000, "y" * 500_000, "The answer is 9.81 m/s^2"]),
    st.text(max_size=200), junk().map(json.dumps)))
clean_items = st.one_of(
    st.fixed_dictionaries({"r": mostly(st.text(max_size=50)),
                           "answer": st.sampled_from(["14.4 m/s", "9.81", "1e400 kg", "\udfff m"]),
                           "unit": st.sampled_from(["m/s", "", "furlong", "\x00"])}),
    st.builds(lambda r, n: {"r": r * n, "answer": "1 m"}, st.sampled_from(["ab ", "\udfff", "é"]),
              st.sampled_from([1, 1000, 100_000])),
    deep_values.map(lambda v: {"deep": v, "r": "x"}))
items = mostly(clean_items, st.one_of(st.none(), st.dictionaries(odd_text, junk(), max_size=4),
                                      junk()))  # junk(): not an object at all


# -- strategies: grader configs ---------------------------------------------------------------

BENIGN_PYTHON = [
    "def grade(sample, item):\n    return 0.5",
    "def grade(sample, item):\n    return len(sample['output_text']) % 7 / 7",
    "import json\ndef grade(sample, item):\n    return float(bool(item))",
]
BROKEN_PYTHON = [
    "def grade(sample, item)\n    return 1", "def grade(a, b, c):\n    return 1",
    "grade = lambda sample, item: 1.0", "def other(sample, item):\n    return 1",
    "def grade(sample, item):\n    return 1\x00", "def grade(sample, item):\n    return '\udfff'",
    "x = 1\n" * 40_000 + "def grade(sample, item):\n    return 1",  # over 256 kB
    "def grade(sample, item):\n    return " + "(" * 400 + "1" + ")" * 400,  # parser depth
]
METRICS = ["fuzzy_match", "bleu", "gleu", "rouge_1", "rouge_2", "rouge_3", "rouge_4",
           "rouge_5", "rouge_l"]


def names() -> st.SearchStrategy[Any]:
    return mostly(st.sampled_from(["a", "b", "c", "score", "x_1"]), one_in=8)


@st.composite
def string_check(draw: Any) -> dict[str, Any]:
    return {"type": "string_check", "name": draw(names()), "input": draw(templates),
            "reference": draw(templates),
            "operation": draw(mostly(st.sampled_from(["eq", "ne", "like", "ilike"]),
                                     st.sampled_from(["regex", "", "EQ", None])))}


@st.composite
def text_similarity(draw: Any) -> dict[str, Any]:
    return {"type": "text_similarity", "name": draw(names()), "input": draw(templates),
            "reference": draw(templates), "evaluation_metric": draw(
                mostly(st.sampled_from(METRICS),
                       st.sampled_from(["cosine", "meteor", "rouge_6", "", "ROUGE_L"])))}


@st.composite
def python_config(draw: Any, sources: st.SearchStrategy[str] | None = None) -> dict[str, Any]:
    config = {"type": "python", "name": draw(names()),
              "source": draw(sources or mostly(st.sampled_from(BENIGN_PYTHON),
                                               st.sampled_from(BROKEN_PYTHON), one_in=3))}
    if draw(st.integers(0, 3)) == 0:
        config["image_tag"] = draw(st.one_of(odd_text, st.none(), st.just("3.11")))
    return config


messages = st.one_of(
    st.fixed_dictionaries(
        {"role": st.sampled_from(["user", "system", "developer", "assistant", "tool"]),
         "content": st.one_of(templates,
                              st.fixed_dictionaries({"type": st.sampled_from(
                                  ["input_text", "output_text", "input_image", "input_audio"]),
                                  "text": templates}),
                              st.lists(templates | st.just({"type": "input_image"}),
                                       max_size=3))},
        optional={"type": st.sampled_from(["message", "other"])}),
    junk(4))


@st.composite
def score_model(draw: Any) -> dict[str, Any]:
    config = {"type": "score_model", "name": draw(names()),
              "model": draw(mostly(st.just(BASE_MODEL),
                                   st.sampled_from(["ft:fuzz-base:other:x", "", "\udfff"]))),
              "input": draw(mostly(st.lists(messages, min_size=1, max_size=3), st.just([])))}
    if draw(st.booleans()):
        config["range"] = draw(mostly(st.just([0, 10]), st.lists(numbers, max_size=3), 2))
    if draw(st.booleans()):
        config["sampling_params"] = draw(st.fixed_dictionaries(
            {}, optional={"seed": numbers, "top_p": numbers, "temperature": numbers,
                          "max_completions_tokens": numbers, "reasoning_effort": odd_text}))
    return config


@st.composite
def physics_answer(draw: Any) -> dict[str, Any]:
    config: dict[str, Any] = {"type": "physics_answer", "name": draw(names())}
    for key in ("input", "reference", "unit"):
        if draw(st.booleans()):
            config[key] = draw(templates)
    if draw(st.booleans()):
        config["rel_tol"] = draw(mostly(st.floats(0.001, 1), numbers, 2))
    if draw(st.booleans()):
        config["check_dimension"] = draw(mostly(st.booleans(), st.one_of(numbers, odd_text)))
    return config


formulas = st.one_of(
    st.sampled_from(["a", "a + b", "(a + b) / 2", "a / 0", "a ^ 1e308", "exp(1000)",
                     "log(-1)", "sqrt(-1)", "min(a, b) * max(a, b)", "floor(a) + ceil(b)",
                     "a ^ b ^ a ^ b", "-" * 900 + "a", "(" * 600 + "a" + ")" * 600,
                     "__import__('os')", "a.__class__", "a if b else c", "1" * 5000,
                     "abs(" * 300 + "a" + ")" * 300, "unknown_name", "a +"]),
    odd_text)


def single_grader(python: st.SearchStrategy[dict[str, Any]] | None = None
                  ) -> st.SearchStrategy[dict[str, Any]]:
    return st.one_of(string_check(), text_similarity(), python or python_config(),
                     score_model(), physics_answer())


@st.composite
def multi(draw: Any, leaves: st.SearchStrategy[dict[str, Any]] | None = None,
          max_graders: int = 18) -> dict[str, Any]:
    leaf = leaves or mostly(single_grader(), st.deferred(lambda: multi(max_graders=3)), 8)
    size = draw(mostly(st.integers(1, 4), st.integers(0, max_graders), 3))
    keys = draw(st.lists(names(), min_size=size, max_size=size, unique=True))
    graders = {k: draw(leaf) for k in keys}
    good = st.sampled_from([" + ".join(keys) or "a", f"max({', '.join(keys[:2]) or 'a'})",
                            f"({' * '.join(keys) or 'a'}) / 2"])
    config = {"type": "multi", "name": draw(names()),
              "graders": graders if draw(st.booleans()) else list(graders.values()),
              "calculate_output": draw(mostly(good, formulas, 3))}
    return config


@st.composite
def mutated(draw: Any, base: st.SearchStrategy[Any], one_in: int = 5) -> Any:
    """``base``'s value, or (one draw in ``one_in``) it broken: a key dropped, a value made
    junk, a key added, another type."""
    value = draw(base)
    if not isinstance(value, dict) or draw(st.integers(0, one_in - 1)) != one_in - 1:
        return value
    value = dict(value)
    for _ in range(draw(st.integers(1, 3))):
        action = draw(st.sampled_from(["drop", "junk", "add", "type"]))
        if action == "drop" and value:
            value.pop(draw(st.sampled_from(sorted(value, key=repr))))
        elif action == "junk" and value:
            value[draw(st.sampled_from(sorted(value, key=repr)))] = draw(junk())
        elif action == "add":
            value[draw(odd_text)] = draw(junk(3))
        else:
            value["type"] = draw(st.sampled_from(["multi", "python", "string_check", "label_model",
                                                  "", "STRING_CHECK"]) | odd_text)
    return value


graders = mutated(st.one_of(single_grader(), multi()))


@st.composite
def grader_requests(draw: Any) -> tuple[str, Any]:
    """(route, body) for graders/run or graders/validate."""
    route = draw(st.sampled_from([RUN, RUN, VALIDATE]))
    body: dict[str, Any] = {"grader": draw(graders)}
    if route == RUN:
        body["model_sample"] = draw(samples)
        if draw(st.integers(0, 3)):
            body["item"] = draw(items)
    return route, draw(mutated(st.just(body), 8))


# -- strategies: raw bodies -------------------------------------------------------------------

RAW_BODIES = [
    b"", b"null", b"[]", b'"x"', b"1" * 5000, b"[" * 100_000, b"{" * 50_000,
    b'{"grader": ' + b"[" * 5000, b"NaN", b'{"grader": NaN}', b"\xff\xfe\xfd",
    b'{"grader": {"type": "string_check", "name": "\xed\xbf\xbf", "input": "a", '
    b'"reference": "a", "operation": "eq"}, "model_sample": "a"}',  # a surrogate as raw UTF-8
    '{"model_sample": "a"}'.encode("utf-16"), b"\xef\xbb\xbf{}", b'{"a": 1} trailing',
    b'{"grader": {}, "grader": {}}', b'{"model_sample": "' + b"\\ud800" * 1000 + b'"}',
    b'{"x": 1e999999}', b'{"x": ' + b"9" * 5000 + b"}",
]
CONTENT_TYPES = [None, "application/json", "application/json; charset=utf-8", "text/plain",
                 "application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
                 "application/json; charset=utf-16", "application/jsonx", "Application/JSON",
                 "application/problem+json", "*/*"]


@st.composite
def raw_requests(draw: Any) -> tuple[str, bytes, str | None]:
    route = draw(st.sampled_from([RUN, VALIDATE, JOBS]))
    body = draw(st.one_of(st.sampled_from(RAW_BODIES), st.binary(max_size=64),
                          grader_requests().map(lambda rb: json.dumps(rb[1]).encode())))
    return route, body, draw(st.sampled_from(CONTENT_TYPES))


# -- strategies: fine-tuning job bodies -------------------------------------------------------

hyper_values = mostly(st.one_of(st.just("auto"), st.integers(1, 8),
                                st.floats(0.01, 2)), st.one_of(numbers, odd_text, junk(3)), 3)


@st.composite
def hyperparameters(draw: Any, reinforcement: bool = False) -> dict[str, Any]:
    keys = ["n_epochs", "batch_size", "learning_rate_multiplier", "beta"]
    if reinforcement:
        keys += ["reasoning_effort", "compute_multiplier", "eval_interval", "eval_samples"]
    chosen = draw(st.lists(st.sampled_from(keys), unique=True, max_size=4))
    return {k: draw(hyper_values) for k in chosen}


@st.composite
def job_bodies(draw: Any, files: dict[str, str]) -> dict[str, Any]:
    kind = draw(mostly(st.sampled_from(["supervised", "reinforcement", "dpo", "none"]),
                       st.sampled_from(["null", "legacy"]), 4))
    body: dict[str, Any] = {
        "model": draw(mostly(st.just(BASE_MODEL), st.sampled_from(["gpt-4o", "\x00"]))),
        "training_file": files[{"reinforcement": "rft", "dpo": "dpo"}.get(kind, "chat")]}
    if kind == "null":
        body["method"] = None
    elif kind == "legacy":
        body["hyperparameters"] = draw(hyperparameters())
    elif kind != "none":
        block: dict[str, Any] = {}
        if draw(st.booleans()):
            block["hyperparameters"] = draw(hyperparameters(kind == "reinforcement"))
        if kind == "reinforcement":
            block["grader"] = draw(st.one_of(graders, single_grader()))
        body["method"] = {"type": draw(mostly(st.just(kind), st.sampled_from(
            ["supervised", None, True, "reinforcement"]))), kind: block}
    optional = {
        "seed": mostly(st.integers(0, 2**31 - 1), numbers, 2),
        "suffix": mostly(st.sampled_from(["ok", "A-b_c"])),
        "validation_file": mostly(st.sampled_from(list(files.values()))),
        "metadata": mostly(st.dictionaries(st.text(max_size=8), st.text(max_size=20),
                                           max_size=4),
                           st.one_of(st.dictionaries(odd_text, odd_text, max_size=20), junk(3))),
        "integrations": st.one_of(st.just([{"type": "wandb", "wandb": {"project": "p"}}]),
                                  st.just([{"type": "mlflow", "mlflow": {
                                      "tracking_uri": "http://169.254.169.254/"}}]), junk(4)),
        "quanta": st.one_of(st.fixed_dictionaries({}, optional={
            "lora": st.fixed_dictionaries({}, optional={"r": numbers, "alpha": numbers,
                                                        "target_modules": junk(3)}),
            "qlora": st.one_of(st.booleans(), numbers),
            "max_steps": numbers, "max_length": numbers,
            "distributed": st.fixed_dictionaries({}, optional={"nodes": numbers,
                                                               "strategy": odd_text})}),
            junk(3)),
    }
    for key in draw(st.lists(st.sampled_from(sorted(optional)), unique=True, max_size=3)):
        body[key] = draw(optional[key])
    return draw(mutated(st.just(body), 6))


# -- hostile python graders -------------------------------------------------------------------

_G = "def grade(sample, item):\n"
HOSTILE_PYTHON: dict[str, str] = {
    "fork_bomb": "import os\n" + _G + "    while True:\n        try:\n            os.fork()\n"
                 "        except OSError:\n            pass",
    "orphan_sleepers": "import subprocess\n" + _G + "    for _ in range(8):\n"
                       "        subprocess.Popen(['/usr/bin/sleep', '600'], start_new_session=True)"
                       "\n    return 0.25",
    "allocate_10g": _G + "    block = bytearray(10 * 1024 ** 3)\n    return 1.0",
    "allocate_slowly": _G + "    hoard = []\n    while True:\n"
                       "        hoard.append(bytearray(16 * 1024 ** 2))",
    "busy_loop": _G + "    while True:\n        pass",
    "sleep": "import time\n" + _G + "    time.sleep(600)\n    return 1.0",
    "ignore_sigterm_and_sleep": "import signal, time\n" + _G +
                                "    signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
                                "    time.sleep(600)",
    "stop_self": "import os, signal\n" + _G + "    os.kill(os.getpid(), signal.SIGSTOP)\n"
                 "    return 1.0",
    "forge_result_fd": "import os, sys\n" + _G +
                       "    os.write(int(sys.argv[1]), b'{\"score\": 12345.0}')\n"
                       "    raise SystemExit(0)",
    "garbage_result_fd": "import os, sys\n" + _G +
                         "    os.write(int(sys.argv[1]), b'\\xff\\xfe\\x00{\"score\":' * 5000)\n"
                         "    return 1.0",
    "flood_result_fd": "import os, sys\n" + _G + "    while True:\n"
                       "        os.write(int(sys.argv[1]), b'9' * 65536)",
    "nan_result_fd": "import os, sys\n" + _G +
                     "    os.write(int(sys.argv[1]), b'{\"score\": NaN}')\n    os._exit(0)",
    "huge_result_fd": "import os, sys\n" + _G +
                      "    os.write(int(sys.argv[1]), b'{\"score\": 1' + b'0' * 5000 + b'}')\n"
                      "    os._exit(0)",
    "close_result_fd": "import os, sys\n" + _G + "    os.close(int(sys.argv[1]))\n    return 1.0",
    "return_10_400": _G + "    return 10 ** 400",
    "return_neg_10_400": _G + "    return -(10 ** 400)",
    "return_1e308": _G + "    return 1e308",
    "return_inf": _G + "    return float('inf')",
    "return_bool": _G + "    return True",
    "return_str_number": _G + "    return '0.5'",
    "return_nested_list": _G + "    value = 1.0\n    for _ in range(100000):\n"
                          "        value = [value]\n    return value",
    "return_big_list": _G + "    return [0.5] * 2_000_000",
    "return_dict": _G + "    return {'score': 12345.0}",
    "raise_system_exit": _G + "    raise SystemExit(0)",
    "raise_keyboard_interrupt": _G + "    raise KeyboardInterrupt",
    "raise_generator_exit": _G + "    raise GeneratorExit",
    "raise_custom_base": "class Boom(BaseException):\n    pass\n" + _G +
                         "    raise Boom('x' * 10**6)",
    "raise_surrogate_message": _G + "    raise ValueError('\\udfff\\x00\\ufffe' * 100)",
    "exit_quietly": "import os\n" + _G + "    os._exit(0)",
    "print_surrogates": "import sys\n" + _G + "    print('\\udfff' * 1000)\n"
                        "    sys.stdout.buffer.write(b'\\xed\\xbf\\xbf\\xff\\x00' * 1000)\n"
                        "    sys.stdout.flush()\n    return 0.5",
    "print_flood": _G + "    while True:\n        print('x' * 65536)",
    "fill_tmp": _G + "    with open('/tmp/fill', 'wb') as fh:\n"
                "        while True:\n            fh.write(b'0' * 1024 * 1024)",
    "open_files": _G + "    files = [open('/sandbox/grader.py') for _ in range(100000)]\n"
                  "    return 1.0",
    "threads": "import threading, time\n" + _G +
               "    for _ in range(10000):\n"
               "        threading.Thread(target=time.sleep, args=(600,), daemon=True).start()\n"
               "    return 1.0",
    "recursion": "import sys\n" + _G + "    sys.setrecursionlimit(10**9)\n"
                 "    def f(n):\n        return f(n + 1)\n    return f(0)",
    "unshare_ctypes": "import ctypes\n" + _G +
                      "    libc = ctypes.CDLL(None, use_errno=True)\n"
                      "    for flag in (0x10000000, 0x20000000, 0x00020000, 0x40000000):\n"
                      "        if libc.unshare(flag) == 0:\n"
                      "            return 12345.0\n"
                      "    return 0.0",
    "ptrace_ctypes": "import ctypes, os\n" + _G +
                     "    libc = ctypes.CDLL(None, use_errno=True)\n"
                     "    if libc.ptrace(0, 0, 0, 0) == 0:  # PTRACE_TRACEME\n"
                     "        return 12345.0\n"
                     "    if libc.ptrace(16, 1, 0, 0) == 0:  # PTRACE_ATTACH to pid 1\n"
                     "        return 12345.0\n"
                     "    return 0.0",
    "mount_ctypes": "import ctypes\n" + _G +
                    "    libc = ctypes.CDLL(None, use_errno=True)\n"
                    "    if libc.mount(b'none', b'/tmp', b'tmpfs', 0, None) == 0:\n"
                    "        return 12345.0\n"
                    "    return 0.0",
    "raise_rlimits": "import resource\n" + _G +
                     "    for limit in (resource.RLIMIT_CPU, resource.RLIMIT_AS,\n"
                     "                  resource.RLIMIT_NPROC):\n"
                     "        try:\n"
                     "            resource.setrlimit(limit, (resource.RLIM_INFINITY,\n"
                     "                                       resource.RLIM_INFINITY))\n"
                     "            return 12345.0\n"
                     "        except (ValueError, OSError):\n"
                     "            pass\n"
                     "    return 0.0",
    "kill_everything": "import os, signal\n" + _G + "    os.kill(-1, signal.SIGKILL)\n"
                       "    return 1.0",
    "kill_parent": "import os, signal\n" + _G + "    os.kill(os.getppid(), signal.SIGKILL)\n"
                   "    return 1.0",
    "read_registry": "import glob, os\n" + _G +
                     "    found = glob.glob('/tmp/**/registry.db', recursive=True)\n"
                     "    found += glob.glob('/*/registry.db') + glob.glob('/*/*/registry.db')\n"
                     "    return 12345.0 if found or os.path.exists('/root') else 0.0",
}


@st.composite
def hostile_python(draw: Any) -> tuple[str, dict[str, Any]]:
    """A graders/run body: a hostile snippet (or two in a multi); input the API accepts
    (odd text is the other properties' business: here the code must run)."""
    keys = sorted(HOSTILE_PYTHON)
    first = draw(st.sampled_from(keys))
    leaf = {"type": "python", "name": "py", "source": HOSTILE_PYTHON[first]}
    if draw(st.integers(0, 3)) == 0:
        second = draw(st.sampled_from(keys))
        grader = {"type": "multi", "name": "m", "calculate_output": "a + b",
                  "graders": {"a": leaf, "b": {"type": "python", "name": "py2",
                                               "source": HOSTILE_PYTHON[second]}}}
        first = f"multi({first}, {second})"
    else:
        grader = leaf
    body = {"grader": grader,
            "model_sample": draw(st.sampled_from(["42", '{"a": 1}', "x" * 10_000, "é💥"])),
            "item": draw(st.sampled_from([{}, {"r": "ok"}, {"deep": nested(200)}]))}
    return first, body


# -- the target ---------------------------------------------------------------------------------

def describe(route: str, body: Any, content_type: str | None = None) -> str:
    """A short, printable description of a request (for failures and 5xx reports)."""
    text = body if isinstance(body, bytes) else json.dumps(body, default=str)
    if isinstance(text, bytes):
        text = repr(text[:600]) + (f"... ({len(text)} bytes)" if len(text) > 600 else "")
    elif len(text) > 600:
        text = text[:600] + f"... ({len(text)} chars)"
    return f"POST {route} content-type={content_type!r} body={text}"


def _chat_jsonl(n: int = 12) -> bytes:
    rows = [{"messages": [{"role": "user", "content": f"What is {i} + {i}?"},
                          {"role": "assistant", "content": f"{2 * i}"}]} for i in range(n)]
    return "".join(json.dumps(r) + "\n" for r in rows).encode()


def _dpo_jsonl(n: int = 12) -> bytes:
    rows = [{"input": {"messages": [{"role": "user", "content": f"What is {i} + {i}?"}]},
             "preferred_output": [{"role": "assistant", "content": f"{2 * i}"}],
             "non_preferred_output": [{"role": "assistant", "content": "no idea"}]}
            for i in range(n)]
    return "".join(json.dumps(r) + "\n" for r in rows).encode()


def _rft_jsonl(n: int = 12) -> bytes:
    rows = [{"messages": [{"role": "user", "content": f"How fast after {i} s at 9.81 m/s^2?"}],
             "answer": f"{9.81 * i:.2f} m/s", "r": "x"} for i in range(n)]
    return "".join(json.dumps(r) + "\n" for r in rows).encode()


@dataclass
class GraderFuzzTarget:
    """The tune API in this process (uvicorn in a thread, ``tests.support.servers``) over a
    fresh registry, asked over loopback HTTP; every response is checked. ``strict``: a
    violation raises AssertionError (the tests); otherwise it is counted (the bench)."""

    client: Any
    registry: Any
    key: str
    other_key: str
    files: dict[str, str]
    strict: bool = True
    statuses: collections.Counter[int] = field(default_factory=collections.Counter)
    violations: list[str] = field(default_factory=list)
    server_errors: list[str] = field(default_factory=list)
    job_ids: set[str] = field(default_factory=set)

    @property
    def requests(self) -> int:
        return sum(self.statuses.values())

    def post(self, route: str, body: Any = None, *, raw: bytes | None = None,
             content_type: str | None = "application/json", key: str | None = None) -> Any:
        content = raw if raw is not None else json.dumps(body).encode()  # \udfff as an escape
        headers = {"Authorization": f"Bearer {key or self.key}"}
        if content_type is not None:
            headers["Content-Type"] = content_type
        try:
            response = self.client.post(route, content=content, headers=headers)
        except httpx.HTTPError as exc:  # no answer in REQUEST_TIMEOUT, or the server died
            self.statuses[0] += 1
            self._reconnect()
            self._fail(f"no answer ({type(exc).__name__}: {exc}) for "
                       f"{describe(route, raw if raw is not None else body, content_type)}")
            return None
        self.statuses[response.status_code] += 1
        if response.status_code >= 500:
            # uvicorn closes the connection after an unhandled error: the next request
            # on it would be reset and blamed (and hypothesis' replay would show that).
            self._reconnect()
        self._check(route, response, describe(route, raw if raw is not None else body,
                                              content_type))
        return response

    def _reconnect(self) -> None:
        base_url, timeout = self.client.base_url, self.client.timeout
        self.client.close()
        self.client = httpx.Client(base_url=base_url, timeout=timeout)

    def _fail(self, problem: str) -> None:
        self.violations.append(problem)
        if self.strict:
            raise AssertionError(problem)

    def _check(self, route: str, response: Any, request: str) -> None:
        status = response.status_code
        if status >= 500:
            self.server_errors.append(f"{status} for {request}: {response.text[:300]}")
            self._fail(f"{status} (a server error) for {request}: {response.text[:300]}")
            return
        try:
            data = response.json()
        except ValueError:
            self._fail(f"{status} with a body that is not JSON for {request}: "
                       f"{response.text[:300]!r}")
            return
        if status >= 400:
            error = data.get("error") if isinstance(data, dict) else None
            shaped = (isinstance(error, dict) and isinstance(error.get("message"), str)
                      and isinstance(error.get("type"), str)
                      and all(isinstance(error.get(k), str | None) for k in ("param", "code"))
                      and set(error) <= {"message", "type", "param", "code"})
            if not shaped:
                self._fail(f"{status} not in OpenAI's error shape for {request}: {data!r:.300}")
            if status == 429 and "retry-after" not in response.headers:
                self._fail(f"429 without Retry-After for {request}")
            return
        if route == RUN:
            reward = data.get("reward") if isinstance(data, dict) else None
            if (isinstance(reward, bool) or not isinstance(reward, int | float)
                    or not math.isfinite(reward)):
                self._fail(f"graders/run answered reward {reward!r} for {request}")
            elif reward == ESCAPED:
                self._fail(f"a hostile grader's attack succeeded (reward {ESCAPED}) for "
                           f"{request}")
        elif route == JOBS and isinstance(data, dict) and isinstance(data.get("id"), str):
            self.job_ids.add(data["id"])

    def check_consistent(self) -> list[str]:
        """``registry.verify()`` clean (what ``quanta registry verify`` runs) with no blob
        stored without a row; every job created renders, to its owner only; the API still
        grades. Returns the problems."""
        from tests.support.faults import check_registry

        problems = check_registry(self.registry)
        report = self.registry.verify()
        if report.orphans:
            problems.append(f"orphan blobs (stored, no row): {report.orphans}")
        auth = {"Authorization": f"Bearer {self.key}"}
        other = {"Authorization": f"Bearer {self.other_key}"}
        listed: set[str] = set()
        after: str | None = None
        while True:
            response = self.client.get(JOBS, headers=auth,
                                       params={"limit": 100, **({"after": after} if after else {})})
            if response.status_code != 200:
                problems.append(f"GET {JOBS}: {response.status_code} {response.text[:300]}")
                break
            page = response.json()
            listed |= {job["id"] for job in page["data"]}
            if not page.get("has_more") or not page["data"]:
                break
            after = page["data"][-1]["id"]
        if listed != self.job_ids:
            problems.append(f"the job listing differs from the jobs created: "
                            f"{sorted(listed ^ self.job_ids)[:5]}")
        for job_id in sorted(self.job_ids):
            for path in (f"{JOBS}/{job_id}", f"{JOBS}/{job_id}/events"):
                if (status := self.client.get(path, headers=auth).status_code) != 200:
                    problems.append(f"GET {path}: {status}")
            if (status := self.client.get(f"{JOBS}/{job_id}", headers=other).status_code) != 404:
                problems.append(f"another tenant's GET {JOBS}/{job_id}: {status}, not 404")
        if self.client.get(JOBS, headers=other).json().get("data"):
            problems.append("another tenant lists the fuzzed tenant's jobs")
        source = "def grade(sample, item):\n    return float(sample['output_text']) / 84"
        alive = self.client.post(RUN, headers=auth, json={
            "grader": {"type": "python", "name": "ok", "source": source}, "model_sample": "42"})
        if alive.status_code != 200 or alive.json().get("reward") != 0.5:
            problems.append(f"a well-behaved python grader no longer scores: {alive.status_code} "
                            f"{alive.text[:300]}")
        return problems


@contextlib.contextmanager
def grader_fuzz_target(home: Path, *, strict: bool = True) -> Iterator[GraderFuzzTarget]:
    """A :class:`GraderFuzzTarget` over a fresh registry at ``home``: tenants ``fuzz`` and
    ``other``, a fake base model, a chat, a preference and a reinforcement training file;
    the sandbox's limits small (``GRADER_ENV``), score_model graders pointed at a closed
    port."""
    from quanta.config import Settings, reset_settings
    from quanta.processes import free_port
    from quanta.registry import Registry
    from quanta.tenancy import create_key, create_tenant
    from tests.support.servers import serve_api
    from tune.api.app import create_app

    env = {**GRADER_ENV, "QUANTA_HOME": str(home), "QUANTA_ALLOW_ANONYMOUS": "false",
           "QUANTA_GRADER_MODEL_URL": f"http://127.0.0.1:{free_port()}/v1"}
    saved = {k: os.environ.get(k) for k in [*env, "QUANTA_DATABASE_URL", "QUANTA_STORE_URL"]}
    os.environ.update(env)
    os.environ.pop("QUANTA_DATABASE_URL", None)
    os.environ.pop("QUANTA_STORE_URL", None)
    reset_settings()
    try:
        settings = Settings(home=home, allow_anonymous=False, max_upload_bytes=1 << 20)
        registry = Registry.open(settings)
        model = home.parent / f"{home.name}-fake-model"
        model.mkdir(exist_ok=True)
        (model / "config.json").write_text('{"model_type": "llama"}')
        registry.add_base_model(BASE_MODEL, model, source="fuzz")
        for tenant in ("fuzz", "other"):
            create_tenant(registry, tenant)
        key, other_key = create_key(registry, "fuzz")[1], create_key(registry, "other")[1]
        with serve_api(create_app(settings, registry)) as url:
            client = httpx.Client(base_url=url, timeout=REQUEST_TIMEOUT)
            files = {}
            for name, data in (("chat", _chat_jsonl()), ("dpo", _dpo_jsonl()),
                               ("rft", _rft_jsonl())):
                response = client.post("/v1/files", headers={"Authorization": f"Bearer {key}"},
                                       files={"file": (f"{name}.jsonl", data)},
                                       data={"purpose": "fine-tune"})
                assert response.status_code == 200, response.text
                files[name] = response.json()["id"]
            target = GraderFuzzTarget(client, registry, key, other_key, files, strict=strict)
            try:
                yield target
            finally:
                target.client.close()  # the one in use (a 5xx replaces it)
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        reset_settings()


# -- the properties (the test file and the bench run the same ones) ----------------------------

def send_grader_request(target: GraderFuzzTarget, request: tuple[str, Any]) -> None:
    route, body = request
    target.post(route, body)


def send_raw(target: GraderFuzzTarget, request: tuple[str, bytes, str | None]) -> None:
    route, body, content_type = request
    target.post(route, raw=body, content_type=content_type)


def send_job(target: GraderFuzzTarget, body: Any) -> None:
    target.post(JOBS, body)


def send_hostile(target: GraderFuzzTarget, request: tuple[str, dict[str, Any]]) -> None:
    _snippet, body = request
    target.post(RUN, body)


def properties(target: GraderFuzzTarget) -> list[tuple[str, st.SearchStrategy[Any],
                                                        Callable[[GraderFuzzTarget, Any], None],
                                                        int]]:
    """(name, strategy, send, CI examples) for each property."""
    return [("grader configs", grader_requests(), send_grader_request, 150),
            ("raw bodies", raw_requests(), send_raw, 50),
            ("job bodies", job_bodies(target.files), send_job, 150),
            ("hostile python", hostile_python(), send_hostile, 14)]


def fuzz_settings(max_examples: int, *, derandomize: bool = True) -> Any:
    """No shrinking: an example can take seconds (a sandboxed grader), and the violation's
    message already names the whole request."""
    return settings(max_examples=max_examples, deadline=None, database=None,
                    derandomize=derandomize, print_blob=True, report_multiple_bugs=False,
                    phases=[Phase.explicit, Phase.generate],
                    suppress_health_check=list(HealthCheck))


def _property(target: GraderFuzzTarget, strategy: st.SearchStrategy[Any],
              send: Callable[[GraderFuzzTarget, Any], None], count: int, *,
              derandomize: bool, seed: int | None = None) -> Callable[[], None]:
    @fuzz_settings(count, derandomize=derandomize)
    @given(value=strategy)
    def run(value: Any) -> None:
        send(target, value)

    return run if seed is None else hypothesis_seed(seed)(run)


def fuzz_graders(n: int, *, seed: int | None = None, only: list[str] | None = None
                 ) -> tuple[FuzzResult, list[str]]:
    """Every property (or those named in ``only``) ``n`` times (hostile python ``n // 10``),
    non-strict, random unless ``seed`` is given; returns the counts (as
    ``tests.support.fuzz.FuzzResult``, the violations' requests in its ``output``) and the
    consistency problems."""
    home = Path(tempfile.mkdtemp(prefix="quanta-grader-fuzz-"))
    started = time.monotonic()
    try:
        with grader_fuzz_target(home / "home", strict=False) as target:
            for name, strategy, send, _ci in properties(target):
                if only and not any(word in name for word in only):
                    continue
                count = max(1, n // 10) if name == "hostile python" else n
                before, t0 = target.requests, time.monotonic()
                _property(target, strategy, send, count, derandomize=False, seed=seed)()
                print(f"  {name}: {target.requests - before} requests in "
                      f"{time.monotonic() - t0:.0f}s", flush=True)
            problems = target.check_consistent()
            result = FuzzResult("graders+jobs", 0, time.monotonic() - started,
                                requests=target.requests, statuses=dict(target.statuses),
                                server_errors=len(target.server_errors))
            result.failures = dict(collections.Counter(
                v.split(" for ", 1)[0] for v in target.violations))
            result.output = "\n".join(target.violations[:20])
            return result, problems
    finally:
        shutil.rmtree(home, ignore_errors=True)
