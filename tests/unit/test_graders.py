"""Graders without a model: templates, every grader type, formulas, validation errors."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import ValidationError

from quanta.data import validate_bytes
from tests.support.servers import serve_api
from tune.graders import parse_grader, run_grader, sample_from_text
from tune.graders.formula import FormulaError, evaluate_formula
from tune.graders.templates import TemplateError, render

ITEM = {"answer": "14.4 m/s", "label": "Paris", "meta": {"alts": ["paris", "Lutetia"]}}


def grade(grader: dict[str, Any], text: str, item: dict[str, Any] | None = None) -> dict[str, Any]:
    return run_grader(parse_grader(grader), text, ITEM if item is None else item)


def test_templates_reach_into_item_and_sample() -> None:
    sample = sample_from_text('{"city": "Rome"}')
    assert render("{{ item.meta.alts[1] }}/{{sample.output_json.city}}", ITEM, sample) \
        == "Lutetia/Rome"
    assert render("{{item.meta}}", ITEM, sample) == json.dumps(ITEM["meta"])
    with pytest.raises(TemplateError, match=r"item\.missing"):
        render("{{item.missing}}", ITEM, sample)
    with pytest.raises(ValueError, match="start with item or sample"):
        parse_grader({"type": "string_check", "name": "s", "input": "{{env.HOME}}",
                      "reference": "x", "operation": "eq"})


@pytest.mark.parametrize(("operation", "text", "expected"), [
    ("eq", "Paris", 1.0), ("eq", "paris", 0.0), ("ne", "Rome", 1.0),
    ("like", "It is Paris.", 1.0), ("like", "it is paris", 0.0), ("ilike", "it is PARIS", 1.0),
])
def test_string_check(operation: str, text: str, expected: float) -> None:
    result = grade({"type": "string_check", "name": "city", "input": "{{sample.output_text}}",
                    "reference": "{{item.label}}", "operation": operation}, text)
    assert result["reward"] == expected
    assert result["metadata"]["type"] == "string_check"
    assert not any(v for k, v in result["metadata"]["errors"].items() if k.endswith("_error"))


def test_missing_item_field_scores_zero_with_invalid_variable_error() -> None:
    result = grade({"type": "string_check", "name": "s", "input": "{{sample.output_text}}",
                    "reference": "{{item.nope}}", "operation": "eq"}, "x")
    assert result["reward"] == 0.0
    assert result["metadata"]["errors"]["invalid_variable_error"] is True


@pytest.mark.parametrize("metric", ["fuzzy_match", "bleu", "gleu", "rouge_1", "rouge_2",
                                    "rouge_l"])
def test_text_similarity_metrics_rank_answers(metric: str) -> None:
    grader = {"type": "text_similarity", "name": "sim", "input": "{{sample.output_text}}",
              "reference": "{{item.text}}", "evaluation_metric": metric}
    item = {"text": "the quick brown fox jumps over the lazy dog"}
    same = grade(grader, item["text"], item)["reward"]
    close = grade(grader, "the quick brown fox jumped over a lazy dog", item)["reward"]
    far = grade(grader, "entropy never decreases in an isolated system", item)["reward"]
    assert same == pytest.approx(1.0)
    assert same > close > far >= 0.0


@pytest.mark.parametrize("metric", ["cosine", "meteor", "jaccard"])
def test_unsupported_similarity_metrics_are_refused(metric: str) -> None:
    with pytest.raises(ValidationError, match=metric):
        parse_grader({"type": "text_similarity", "name": "s", "input": "a", "reference": "b",
                      "evaluation_metric": metric})


@pytest.mark.parametrize(("text", "expected"), [
    ("v = 8 + 1.6 * 4 = 14.4 m/s. Final answer: 14.4 m/s", 1.0),
    ("Final answer: 51.84 km/h", 1.0),  # converted
    ("Final answer: 24 m/s", 0.0),
    ("Final answer: 14.4 s", 0.0),  # wrong dimension
    ("Final answer: 14.4", 0.0),  # a unit is expected
    ("I do not know", 0.0),
])
def test_physics_answer_checks_number_and_unit(text: str, expected: float) -> None:
    assert grade({"type": "physics_answer", "name": "phys"}, text)["reward"] == expected


def test_physics_answer_with_separate_unit_and_without_dimension_check() -> None:
    item = {"value": 2.5, "unit": "kJ"}
    lenient = {"type": "physics_answer", "name": "p", "reference": "{{item.value}}",
               "unit": "{{item.unit}}", "check_dimension": False}
    assert grade(lenient, "The work is 2500 J", item)["reward"] == 1.0
    assert grade(lenient, "The work is 2.5", item)["reward"] == 1.0  # bare number, kJ
    strict = {**lenient, "check_dimension": True}
    assert grade(strict, "The work is 2.5", item)["reward"] == 0.0


def test_multi_combines_named_graders() -> None:
    multi = {"type": "multi", "name": "both", "calculate_output": "0.75 * phys + 0.25 * fmt^2",
             "graders": {
                 "phys": {"type": "physics_answer", "name": "phys"},
                 "fmt": {"type": "string_check", "name": "fmt", "operation": "like",
                         "input": "{{sample.output_text}}", "reference": "Final answer:"}}}
    result = grade(multi, "Final answer: 14.4 m/s")
    assert result["reward"] == 1.0 and result["sub_rewards"] == {"phys": 1.0, "fmt": 1.0}
    assert grade(multi, "Final answer: 3 m/s")["reward"] == 0.25
    assert grade(multi, "14.4 m/s")["reward"] == 0.75


def test_multi_formula_is_checked_and_never_evaluated_as_python() -> None:
    base = {"type": "multi", "name": "m", "graders": {
        "a": {"type": "string_check", "name": "a", "input": "x", "reference": "x",
              "operation": "eq"}}}
    for formula, problem in [("a + b", "'b'"), ("__import__('os').system('id')", "may call"),
                             ("a.real", "only numbers"), ("a +", "parse")]:
        with pytest.raises(ValidationError, match=problem):
            parse_grader({**base, "calculate_output": formula})
    assert evaluate_formula("min(a, 1) + sqrt(b) + floor(2.7)", {"a": 3, "b": 4}) == 5.0
    with pytest.raises(FormulaError):
        evaluate_formula("a / b", {"a": 1.0, "b": 0.0})
    with pytest.raises(FormulaError):
        evaluate_formula("a ^ 100000000", {"a": 10.0})  # simpleeval's power limit
    result = grade({**base, "calculate_output": "a / (a - 1)"}, "x")
    assert result["reward"] == 0.0 and result["metadata"]["errors"]["formula_parse_error"]


@pytest.mark.parametrize(("source", "problem"), [
    ("def grade(sample, item) return 1", "does not parse"),
    ("def score(sample, item):\n    return 1", r"function grade\(sample, item\)"),
    ("def grade(sample):\n    return 1", "exactly two arguments"),
    ("x" * (300 * 1024), "256 kB"),
])
def test_python_grader_source_is_checked_without_running_it(source: str, problem: str) -> None:
    with pytest.raises(ValidationError, match=problem):
        parse_grader({"type": "python", "name": "py", "source": source})


def test_rft_files_validate_with_line_and_field() -> None:
    good = {"messages": [{"role": "developer", "content": "Answer with a unit."},
                         {"role": "user", "content": "How fast?"}],
            "answer": "14.4 m/s", "topic": "kinematics"}
    report = validate_bytes(json.dumps(good).encode(), "rft.jsonl")
    assert report.ok and report.format == "reinforcement"
    assert report.examples[0]["messages"][0]["role"] == "system"  # developer -> system
    assert report.examples[0]["item"]["answer"] == "14.4 m/s"
    bad_lines = [good,
                 {"messages": [{"role": "user", "content": "q"},
                               {"role": "assistant", "content": "a"}], "answer": "1 m"},
                 {"messages": [{"role": "user", "content": ""}], "answer": "1 m"},
                 {"messages": "q", "answer": "1 m"}]
    report = validate_bytes("\n".join(json.dumps(r) for r in bad_lines).encode(), "rft.jsonl")
    assert report.format == "reinforcement"
    assert report.errors == [
        "rft.jsonl:2: field 'messages[1].role': a reinforcement prompt must end with a user "
        "message, got 'assistant'",
        "rft.jsonl:3: field 'messages[0].content': must not be empty",
        "rft.jsonl:4: field 'messages': expected an array of messages, got string",
    ]


def _grading_model_app(replies: list[Any], requests: list[dict[str, Any]]) -> Any:
    """An OpenAI-compatible chat endpoint answering fixed replies (a grading model stand-in)."""
    from fastapi import FastAPI
    from fastapi.responses import JSONResponse

    app = FastAPI()

    @app.post("/v1/chat/completions")
    async def chat(body: dict[str, Any]) -> Any:
        requests.append(body)
        reply = replies.pop(0)
        if isinstance(reply, int):
            return JSONResponse({"error": {"message": "boom"}}, status_code=reply)
        return {"model": body["model"], "choices": [{"index": 0, "message": reply}],
                "usage": {"prompt_tokens": 10, "completion_tokens": 2, "total_tokens": 12}}

    return app


@pytest.fixture
def grading_model(quanta_env: Any) -> Iterator[list[dict[str, Any]]]:
    requests: list[dict[str, Any]] = []
    replies: list[Any] = [
        {"role": "assistant", "content": '{"result": 7, "steps": []}'},
        {"role": "assistant", "content": "I would give it 0.4 overall"},
        {"role": "assistant", "content": "no idea"},
        {"role": "assistant", "content": None, "refusal": "I cannot grade this"},
        500,
    ]
    with serve_api(_grading_model_app(replies, requests)) as url:
        quanta_env(QUANTA_GRADER_MODEL_URL=f"{url}/v1", QUANTA_GRADER_API_KEY="grader-key")
        yield requests


def test_score_model_reads_clamps_and_flags(grading_model: list[dict[str, Any]]) -> None:
    grader = {"type": "score_model", "name": "judge", "model": "smollm2-135m-instruct",
              "range": [0, 5], "sampling_params": {"temperature": 0, "max_completions_tokens": 9},
              "input": [{"role": "developer", "content": "Score 0-5."},
                        {"role": "user", "content": [{"type": "input_text",
                                                      "text": "Q: {{item.label}} A: "
                                                              "{{sample.output_text}}"}]}]}
    first = grade(grader, "Paris")
    assert first["reward"] == 5.0  # 7 clamped to the range
    sent = grading_model[0]
    assert sent["messages"] == [{"role": "system", "content": "Score 0-5."},
                                {"role": "user", "content": "Q: Paris A: Paris"}]
    assert sent["max_tokens"] == 9 and sent["temperature"] == 0
    assert first["metadata"]["sampled_model_name"] == "smollm2-135m-instruct"
    assert first["metadata"]["token_usage"] == 12
    assert grade(grader, "x")["reward"] == 0.4
    parse = grade(grader, "x")
    assert parse["reward"] == 0 and parse["metadata"]["errors"]["model_grader_parse_error"]
    refusal = grade(grader, "x")
    assert refusal["metadata"]["errors"]["model_grader_refusal_error"]
    server = grade(grader, "x")
    assert server["metadata"]["errors"]["model_grader_server_error"]
    assert "500" in server["metadata"]["errors"]["model_grader_server_error_details"]
