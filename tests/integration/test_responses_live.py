"""OpenAI's Responses API on a live ``quanta serve`` (the session's ``loop``), through the
official SDK: the base and an adapter, whole and streamed, calculator decoding, usage
in the metrics, stored Responses that belong to their tenant, every object and stream
event validated against OpenAI's published schemas; and echoed completion logprobs in
the published shape."""

from __future__ import annotations

import re
from typing import Any

import httpx
import openai
import pytest

from quanta.calculator import calculations, result_text
from tests.support.openai_schema import OpenAISchemas

spec = OpenAISchemas("openai-serve.json")
ASK = {"max_output_tokens": 12, "temperature": 0}


def _tokens(loop: Any, tenant: str, model: str) -> dict[str, float]:
    """``quanta_tokens_total`` for one tenant and model, by kind."""
    text = httpx.get(f"{loop.serve_url}/metrics", timeout=30).text
    found = {}
    for kind in ("prompt", "completion"):
        line = f'quanta_tokens_total{{kind="{kind}",model="{model}",tenant="{tenant}"}}'
        match = re.search(re.escape(line) + r" ([0-9.e+]+)", text)
        found[kind] = float(match.group(1)) if match else 0.0
    return found


def _create(client: openai.OpenAI, **body: Any) -> tuple[Any, dict]:
    """A Response through the SDK, and its JSON as it came (validated)."""
    raw = client.responses.with_raw_response.create(**body)
    return raw.parse(), spec.conforms(raw.http_response.json(), "Response")


def _stream(client: openai.OpenAI, **body: Any) -> list[Any]:
    """A streamed Response's events through the SDK, each as sent (validated)."""
    events = list(client.responses.create(stream=True, **body))
    for event in events:
        spec.conforms(event.to_dict(), "ResponseStreamEvent")
    return events


def _streamed_text(events: list[Any]) -> str:
    assert [e.type for e in events][:2] == ["response.created", "response.in_progress"]
    assert events[-1].type == "response.completed"
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert text == events[-1].response.output_text
    return text


@pytest.mark.parametrize("label", ["base", "plain"])
def test_responses_whole_and_streamed(loop: Any, label: str) -> None:
    model = loop.base if label == "base" else loop.adapters[label]
    acme = loop.serve("acme")
    before = _tokens(loop, "acme", model)
    response, raw = _create(acme, model=model, input="Name a planet.", **ASK)
    assert response.model == model and response.output_text
    assert raw["status"] in ("completed", "incomplete") and raw["error"] is None
    events = _stream(acme, model=model, input="Name a planet.", **ASK)
    assert _streamed_text(events) == response.output_text  # temperature 0
    usage = events[-1].response.usage
    assert usage.input_tokens == response.usage.input_tokens > 0
    after = _tokens(loop, "acme", model)
    assert after["prompt"] - before["prompt"] >= 2 * usage.input_tokens
    assert after["completion"] - before["completion"] >= \
        response.usage.output_tokens + usage.output_tokens


def test_calculator_decoding_fills_the_values(loop: Any) -> None:
    """The calculating adapter answers Responses as it answers chat: with calculator
    decoding, the same text at temperature 0, whole or streamed."""
    acme, model = loop.serve("acme"), loop.adapters["calculating"]
    question = "Repeat: 3*7 = <<3*7>>21. 123*457 = <<123*457"
    messages = [{"role": "user", "content": question}]
    chat = acme.chat.completions.create(model=model, messages=messages, max_tokens=24,
                                        temperature=0)
    response, _ = _create(acme, model=model, input=question, max_output_tokens=24,
                          temperature=0)
    assert response.output_text == chat.choices[0].message.content
    assert response.usage.output_tokens == chat.usage.completion_tokens
    assert _streamed_text(_stream(acme, model=model, input=question, max_output_tokens=24,
                                  temperature=0)) == response.output_text
    for calc in calculations(response.output_text):  # each value is the server's
        assert calc.written.startswith(result_text(calc.expression))
    # The extension field turns it on for any model: the base model copies the
    # calculation, and the server writes its value.
    forced, _ = _create(acme, model=loop.base, input=messages, max_output_tokens=24,
                        temperature=0, extra_body={"quanta": {"calculator": True}})
    assert "<<123*457>>56211" in forced.output_text
    assert forced.output_text == acme.chat.completions.create(
        model=loop.base, messages=messages, max_tokens=24, temperature=0,
        extra_body={"quanta": {"calculator": True}}).choices[0].message.content
    with pytest.raises(openai.BadRequestError, match="calculator") as refused:
        acme.responses.create(model=model, input=question, top_logprobs=2,
                              include=["message.output_text.logprobs"])
    assert refused.value.body["param"] == "top_logprobs"


def test_stored_responses_belong_to_their_tenant(loop: Any) -> None:
    acme, globex = loop.serve("acme"), loop.serve("globex")
    first, _ = _create(acme, model=loop.adapters["plain"], input="Say a colour.",
                       max_output_tokens=4, temperature=0)
    stored = acme.responses.with_raw_response.retrieve(first.id).http_response.json()
    assert spec.conforms(stored, "Response")["output"] == first.to_dict()["output"]
    items = acme.responses.input_items.with_raw_response.list(first.id).http_response.json()
    assert spec.conforms(items, "ResponseItemList")["data"][0]["content"] == \
        [{"type": "input_text", "text": "Say a colour."}]
    follow, _ = _create(acme, model=loop.base, input="Another one.", max_output_tokens=4,
                        previous_response_id=first.id, temperature=0)
    assert follow.previous_response_id == first.id and follow.usage.input_tokens > \
        first.usage.input_tokens  # the conversation so far came with it

    def refusal(call, *args: Any, **kwargs: Any) -> tuple[int, dict]:
        with pytest.raises(openai.APIStatusError) as error:
            call(*args, **kwargs)
        return error.value.status_code, error.value.body

    for response_id in (first.id, "resp_never_made"):  # globex sees both alike
        answers = [refusal(globex.responses.retrieve, response_id),
                   refusal(globex.responses.delete, response_id),
                   refusal(globex.responses.cancel, response_id),
                   refusal(globex.responses.input_items.list, response_id)]
        assert {status for status, _ in answers} == {404}
        assert all(body == {"message": f"Response with id '{response_id}' not found.",
                            "type": "invalid_request_error", "param": "response_id",
                            "code": "not_found"} for _, body in answers)
        status, body = refusal(globex.responses.create, model=loop.base, input="hi",
                               max_output_tokens=2, previous_response_id=response_id)
        assert status == 404 and body["param"] == "previous_response_id"
    with pytest.raises(openai.NotFoundError, match="does not exist"):
        globex.responses.create(model=loop.adapters["plain"], input="hi")
    acme.responses.delete(first.id)
    assert refusal(acme.responses.retrieve, first.id)[0] == 404
    assert acme.responses.retrieve(follow.id).id == follow.id


def test_echoed_completion_logprobs_follow_the_schema(loop: Any) -> None:
    """``echo`` with ``logprobs``: the prompt's first token, which nothing conditions,
    gets 0.0 and {} where vLLM sends null, streamed or not."""
    acme = loop.serve("acme")
    ask = {"model": loop.base, "prompt": "Hello there", "max_tokens": 2, "echo": True,
           "logprobs": 2, "temperature": 0}
    raw = acme.completions.with_raw_response.create(**ask).http_response.json()
    logprobs = spec.conforms(raw, "CreateCompletionResponse")["choices"][0]["logprobs"]
    assert logprobs["token_logprobs"][0] == 0.0 and logprobs["top_logprobs"][0] == {}
    assert logprobs["tokens"][0] == "Hello" and all(v < 0 for v in
                                                    logprobs["token_logprobs"][1:])
    chunks = [c.to_dict() for c in acme.completions.create(stream=True, **ask)]
    first = chunks[0]["choices"][0]  # the echoed prompt, with the first token generated
    assert first["logprobs"]["token_logprobs"][0] == 0.0
    assert first["logprobs"]["top_logprobs"][0] == {}
    # Streamed chunks send finish_reason null until the last (see test_serve_vllm): the
    # first is held to the schema with the last one's.
    spec.conforms({**chunks[0], "choices": [{**first, "finish_reason": "length"}]},
                  "CreateCompletionResponse")
    spec.conforms(chunks[-1], "CreateCompletionResponse")
