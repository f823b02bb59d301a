"""Held-out physics problems as an eval in OpenAI's Evals API shapes: what the demo and
``bench/eval_runs.py`` create on the tune API, so a model's physics accuracy is one eval
run (graded by the ``physics_answer`` criterion, the same grader reinforcement jobs use),
seen alike in the report, the console and any OpenAI SDK script."""

from __future__ import annotations

from typing import Any

from quanta_physics.problems import SYSTEM_PROMPT, PhysicsProblem

ITEM_SCHEMA: dict[str, Any] = {
    "type": "object", "required": ["id", "question", "answer"],
    "properties": {"id": {"type": "string"}, "question": {"type": "string"},
                   "answer": {"type": "string"}, "family": {"type": "string"}}}

CRITERION: dict[str, Any] = {"type": "physics_answer", "name": "final answer",
                             "input": "{{sample.output_text}}", "reference": "{{item.answer}}"}


def eval_request(name: str, metadata: dict[str, str] | None = None) -> dict[str, Any]:
    """``POST /v1/evals``'s body: items are physics problems, graded by their final
    answer with units."""
    return {"name": name, "metadata": metadata or {},
            "data_source_config": {"type": "custom", "item_schema": ITEM_SCHEMA,
                                   "include_sample_schema": True},
            "testing_criteria": [CRITERION]}


def eval_items(problems: list[PhysicsProblem]) -> list[dict[str, Any]]:
    """The problems as an eval run's ``file_content`` (each answer as ``value unit``)."""
    return [{"item": {"id": p.id, "question": p.question, "answer": f"{p.value:g} {p.unit}",
                      "family": p.family}} for p in problems]


def completions_source(model: str, problems: list[PhysicsProblem], max_tokens: int,
                       system_prompt: str = SYSTEM_PROMPT) -> dict[str, Any]:
    """A run's ``completions`` data source: ``model`` asked each problem at temperature 0
    as the physics adapters are trained (their system prompt, then the question)."""
    return {"type": "completions", "model": model,
            "source": {"type": "file_content", "content": eval_items(problems)},
            "input_messages": {"type": "template", "template": [
                {"role": "system", "content": system_prompt},
                {"role": "user", "content": "{{item.question}}"}]},
            "sampling_params": {"temperature": 0, "max_completion_tokens": max_tokens,
                                "seed": 0}}
