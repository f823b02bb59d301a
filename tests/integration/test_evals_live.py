"""OpenAI's Evals API end to end with the official SDK, as a script written for OpenAI's
hosted Evals runs it (only ``base_url`` changed): create an eval, run it over the base
model and acme's fine-tuned one through the real ``quanta serve`` (vLLM), let an eval
worker grade the runs, read the results, cancel and delete; globex sees none of it."""

from __future__ import annotations

import json

import openai
import pytest

from tests.support.loop import Loop
from tune.evals import EvalWorker

# OpenAI's SDK warns that its hosted Evals shut down: the reason this API exists here.
pytestmark = pytest.mark.filterwarnings("ignore:The Evals API is deprecated:DeprecationWarning")

ITEMS = [{"question": "What is the capital of France?", "answer": "Paris"},
         {"question": "What colour is the sky on a clear day?", "answer": "blue"},
         {"question": "What is 2 + 2?", "answer": "4"}]


def _completions(model: str, source: dict[str, object]) -> dict[str, object]:
    return {"type": "completions", "model": model, "source": source,
            "input_messages": {"type": "template", "template": [
                {"role": "system", "content": "Answer in a few words."},
                {"role": "user", "content": "{{item.question}}"}]},
            "sampling_params": {"temperature": 0, "max_completion_tokens": 8, "seed": 1}}


def test_an_eval_over_base_and_fine_tuned_models(loop: Loop) -> None:
    client, other = loop.tune("acme"), loop.tune("globex")
    ev = client.evals.create(
        name="capitals",
        data_source_config={"type": "custom", "include_sample_schema": True, "item_schema": {
            "type": "object", "required": ["question", "answer"],
            "properties": {"question": {"type": "string"}, "answer": {"type": "string"}}}},
        testing_criteria=[
            {"type": "string_check", "name": "mentions", "operation": "ilike",
             "input": "{{sample.output_text}}", "reference": "{{item.answer}}"},
            {"type": "text_similarity", "name": "close", "evaluation_metric": "fuzzy_match",
             "input": "{{sample.output_text}}", "reference": "{{item.answer}}",
             "pass_threshold": 0.5}])
    mentions, close = (c.id for c in ev.testing_criteria)  # type: ignore[union-attr]
    data = "".join(json.dumps({"item": item}) + "\n" for item in ITEMS).encode()
    file = client.files.create(file=("items.jsonl", data), purpose="evals")
    runs = {
        "base": client.evals.runs.create(
            ev.id, name="base", data_source=_completions(  # type: ignore[arg-type]
                loop.base, {"type": "file_id", "id": file.id})),
        "plain": client.evals.runs.create(
            ev.id, name="plain", data_source=_completions(  # type: ignore[arg-type]
                loop.adapters["plain"],
                {"type": "file_content", "content": [{"item": i} for i in ITEMS]})),
    }
    assert {r.status for r in runs.values()} == {"queued"}
    worker = EvalWorker(loop.registry, "live")
    assert [worker.run_once(), worker.run_once()] == [runs["base"].id, runs["plain"].id]

    for label, created in runs.items():
        run = client.evals.runs.retrieve(created.id, eval_id=ev.id)
        assert run.status == "completed", run.error
        counts = run.result_counts
        assert counts.total == len(ITEMS) and counts.errored == 0
        assert counts.passed + counts.failed == len(ITEMS)
        items = list(client.evals.runs.output_items.list(created.id, eval_id=ev.id))
        assert [i.datasource_item_id for i in items] == [0, 1, 2]
        for item, source in zip(items, ITEMS, strict=True):
            sample = item.sample
            assert sample.model == (loop.base if label == "base" else loop.adapters[label])
            assert sample.input[-1].content == source["question"]
            text = sample.output[0].content or ""
            assert text and sample.usage.completion_tokens <= 8
            results = {r.name: r for r in item.results}
            mention = source["answer"].lower() in text.lower()
            assert results[mentions].passed is mention
            assert results[mentions].score == (1.0 if mention else 0.0)
            assert results[close].passed is (results[close].score >= 0.5)
            assert item.status == ("pass" if mention and results[close].passed else "fail")
        per = {r.testing_criteria: r for r in run.per_testing_criteria_results}
        assert per[mentions].passed == sum(r.results[0].passed for r in items)
        assert run.per_model_usage[0].invocation_count == len(ITEMS)
        with pytest.raises(openai.NotFoundError):  # another tenant: as if it never existed
            other.evals.runs.retrieve(created.id, eval_id=ev.id)
        with pytest.raises(openai.NotFoundError):
            other.evals.runs.output_items.list(created.id, eval_id=ev.id)

    waiting = client.evals.runs.create(ev.id, data_source=_completions(  # type: ignore[arg-type]
        loop.base, {"type": "file_id", "id": file.id}))
    for attempt in (other.evals.runs.cancel, other.evals.runs.delete):
        with pytest.raises(openai.NotFoundError):
            attempt(waiting.id, eval_id=ev.id)
    assert client.evals.runs.cancel(waiting.id, eval_id=ev.id).status == "canceled"
    assert worker.run_once() is None  # a canceled run is never claimed
    assert client.evals.runs.delete(waiting.id, eval_id=ev.id).deleted
    with pytest.raises(openai.NotFoundError):
        client.evals.runs.retrieve(waiting.id, eval_id=ev.id)

    for attempt in (other.evals.retrieve, other.evals.delete):
        with pytest.raises(openai.NotFoundError):
            attempt(ev.id)
    assert ev.id in [e.id for e in client.evals.list()]
    assert client.evals.delete(ev.id).deleted
    with pytest.raises(openai.NotFoundError):
        client.evals.retrieve(ev.id)
