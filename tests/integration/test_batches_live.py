"""OpenAI's Batch API end to end with the official SDK, as a script written for OpenAI
runs it (only ``base_url`` changed): upload the requests, create the batch, let a batch
runner answer it through the real ``quanta serve`` (vLLM), download the output file.
The lines name the base and acme's fine-tuned models (one with calculator decoding)."""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest
from openai.types import Completion
from openai.types.chat import ChatCompletion

from tests.support.loop import Loop
from tune.batches.runner import BatchWorker


def _run(loop: Loop, endpoint: str, lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Create a batch of ``lines`` as acme, run it, and the output file's lines."""
    client = loop.tune("acme")
    data = "".join(json.dumps(line) + "\n" for line in lines).encode()
    file = client.files.create(file=("requests.jsonl", data), purpose="batch")
    batch = client.batches.create(input_file_id=file.id, endpoint=endpoint,
                                  completion_window="24h")
    assert batch.status == "validating"
    assert BatchWorker(loop.registry).run_once() == batch.id
    batch = client.batches.retrieve(batch.id)
    assert batch.status == "completed", batch
    assert batch.request_counts is not None
    assert batch.request_counts.completed == len(lines) and batch.error_file_id is None
    with pytest.raises(openai.NotFoundError):  # another tenant: as if it never existed
        loop.tune("globex").batches.retrieve(batch.id)
    assert batch.output_file_id is not None
    output = [json.loads(line) for line in
              client.files.content(batch.output_file_id).read().decode().splitlines()]
    assert [o["custom_id"] for o in output] == [line["custom_id"] for line in lines]
    for answer, line in zip(output, lines, strict=True):
        assert answer["error"] is None and answer["response"]["status_code"] == 200, answer
        assert answer["response"]["body"]["model"] == line["body"]["model"]
    return output


def test_a_chat_batch_over_base_and_fine_tuned_models(loop: Loop) -> None:
    models = {"base": loop.base, "plain": loop.adapters["plain"],
              "calculating": loop.adapters["calculating"]}
    lines = [{"custom_id": label, "method": "POST", "url": "/v1/chat/completions",
              "body": {"model": model, "max_tokens": 8, "temperature": 0,
                       "messages": [{"role": "user", "content": "What is 12 * 7?"}]}}
             for label, model in models.items()]
    for answer in _run(loop, "/v1/chat/completions", lines):
        reply = ChatCompletion.model_validate(answer["response"]["body"])
        assert reply.choices[0].message.role == "assistant"


def test_a_completions_batch(loop: Loop) -> None:
    lines = [{"custom_id": f"c{i}", "method": "POST", "url": "/v1/completions",
              "body": {"model": model, "prompt": "The sky is", "max_tokens": 4}}
             for i, model in enumerate((loop.base, loop.adapters["plain"]))]
    for answer in _run(loop, "/v1/completions", lines):
        assert Completion.model_validate(answer["response"]["body"]).choices[0].text


def test_a_responses_batch(loop: Loop) -> None:
    """Needs serve's ``POST /v1/responses``."""
    from openai.types.responses import Response

    lines = [{"custom_id": "r0", "method": "POST", "url": "/v1/responses",
              "body": {"model": loop.adapters["plain"], "input": "Say hello.",
                       "max_output_tokens": 8}}]
    (answer,) = _run(loop, "/v1/responses", lines)
    assert Response.model_validate(answer["response"]["body"]).output
