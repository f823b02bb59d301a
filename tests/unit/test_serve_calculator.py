"""Calculator decoding over a scripted engine: values inserted, shapes, streaming, limits,
errors, and the registry flag / extension field deciding who gets it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, StreamingResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from quanta.config import Settings
from quanta.registry import Registry
from quanta.tenancy import create_key, create_tenant
from serve.access import ModelAccess
from serve.calculator import CalculatorRoute
from serve.middleware import TenancyMiddleware
from tests.support.fixtures import fake_adapter_dir, fake_base_models

BASE = "base-model"
# What the scripted model writes after its k-th calculation (its own arithmetic is wrong:
# "24" would follow the first ">>" if nothing were inserted).
TURNS = ["v = <<8 + 1.6*4>>", " m/s, then <<1/0>>", " and so on. Final answer: 14.4 m/s"]
PLAIN = "v = <<8 + 1.6*4>>24 m/s, then <<1/0>>7 and so on. Final answer: 24 m/s"
PROMPT_MARK = "<|assistant|>"


class FakePrompts:
    """A chat template and token counter without a tokenizer."""

    def render(self, messages: list[dict]) -> str:
        return "".join(f"<|{m['role']}|>{m['content']}" for m in messages) + PROMPT_MARK

    def count(self, text: str) -> int:
        return len(text.split())


def _continuation(prompt: str, stops: list[str]) -> tuple[str, str | None]:
    """The scripted model: the turn after as many calculations as the prompt holds,
    cut at the first stop string (which is not returned, as vLLM does)."""
    written = prompt.split(PROMPT_MARK, 1)[-1]
    text = TURNS[written.count(">>")] if ">>" in stops else PLAIN[len(written):]
    if ">>" not in stops and written.count(">>") >= 1:
        text = "".join(TURNS[written.count(">>"):])
    cut = min(((text.find(s), s) for s in stops if s in text), default=None)
    if cut is None:
        return text, None
    return text[:cut[0]], cut[1]


def _engine(seen: list[dict], fail: bool = False) -> Starlette:
    async def completions(request: Request):
        body = await request.json()
        seen.append(body)
        if fail:
            return JSONResponse({"error": {"message": "engine says no", "code": 400}}, 400)
        text, stop_reason = _continuation(body["prompt"], body.get("stop") or [])
        words = text.split(" ")

        async def events():
            for i, word in enumerate(words):
                piece = word if i == 0 else " " + word
                yield "data: " + json.dumps({"choices": [{"index": 0, "text": piece,
                                                          "finish_reason": None}]}) + "\n\n"
            yield "data: " + json.dumps({"choices": [{"index": 0, "text": "",
                                                      "finish_reason": "stop",
                                                      "stop_reason": stop_reason}]}) + "\n\n"
            yield "data: " + json.dumps({"choices": [], "usage": {
                "prompt_tokens": 10, "completion_tokens": len(words)}}) + "\n\n"
            yield "data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")

    async def chat(request: Request):
        seen.append(await request.json())
        return JSONResponse({"choices": [{"message": {"content": "plain"}}],
                             "usage": {"prompt_tokens": 1, "completion_tokens": 1}})

    return Starlette(routes=[Route("/v1/completions", completions, methods=["POST"]),
                             Route("/v1/chat/completions", chat, methods=["POST"])])


@pytest.fixture
def served(tmp_path: Path, quanta_home: Path):
    def make(fail: bool = False, max_calls: int = 16):
        registry = Registry.open(Settings(home=quanta_home, allow_anonymous=False))
        fake_base_models(registry, tmp_path / "model", BASE)
        create_tenant(registry, "acme")
        key = {"Authorization": f"Bearer {create_key(registry, 'acme')[1]}"}
        adapter_dir = fake_adapter_dir(tmp_path / "adapter")
        names = {flag: registry.add_adapter("acme", BASE, adapter_dir, suffix=f"c{flag}",
                                            config={"calculator": flag}).name
                 for flag in (True, False)}
        seen: list[dict] = []
        route = CalculatorRoute(FakePrompts(), max_calls)  # type: ignore[arg-type]
        app = TenancyMiddleware(_engine(seen, fail), access=ModelAccess(registry, BASE, BASE),
                                calculator=route)
        return TestClient(app), key, names, seen
    return make


def _chat(model: str, **extra) -> dict:
    return {"model": model, "messages": [{"role": "user", "content": "How fast?"}], **extra}


def test_values_are_inserted_and_errors_marked(served) -> None:
    client, key, names, seen = served()
    response = client.post("/v1/chat/completions", json=_chat(names[True]), headers=key)
    assert response.status_code == 200, response.text
    body = response.json()
    content = body["choices"][0]["message"]["content"]
    assert content == ("v = <<8 + 1.6*4>>14.4 m/s, then <<1/0>>[calculation error] and so "
                       "on. Final answer: 14.4 m/s")
    assert body["object"] == "chat.completion" and body["choices"][0]["finish_reason"] == "stop"
    # Three segments: each continues the text so far, with ">>" as an extra stop.
    assert [s["prompt"].split(PROMPT_MARK)[1] for s in seen] == [
        "", "v = <<8 + 1.6*4>>14.4", "v = <<8 + 1.6*4>>14.4 m/s, then <<1/0>>[calculation error]"]
    assert all(">>" in s["stop"] for s in seen)
    generated = sum(len(_continuation(s["prompt"], s["stop"])[0].split(" ")) for s in seen)
    assert body["usage"] == {"prompt_tokens": 10, "completion_tokens": generated,
                             "total_tokens": 10 + generated}


def test_streaming_sends_inserted_values_as_text(served) -> None:
    client, key, names, _ = served()
    with client.stream("POST", "/v1/chat/completions", headers=key,
                       json=_chat(names[True], stream=True,
                                  stream_options={"include_usage": True})) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = [line for line in response.iter_lines() if line.startswith("data: ")]
    assert lines[-1] == "data: [DONE]"
    chunks = [json.loads(line[6:]) for line in lines[:-1]]
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert "<<8 + 1.6*4>>14.4 m/s" in text and "[calculation error]" in text
    assert any(c["choices"] and c["choices"][0]["delta"].get("content") == ">>14.4"
               for c in chunks)
    finishes = [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]]
    assert finishes[-1] == "stop" and finishes.count("stop") == 1
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] > 0
    assert len({c["id"] for c in chunks}) == 1


def test_stream_without_usage_asked_hides_it(served) -> None:
    client, key, names, _ = served()
    with client.stream("POST", "/v1/completions", headers=key,
                       json={"model": names[True], "prompt": "Q:", "max_tokens": 200,
                             "stream": True}) as response:
        chunks = [json.loads(line[6:]) for line in response.iter_lines()
                  if line.startswith("data: {")]
    assert all(c["object"] == "text_completion" and c["choices"] for c in chunks)
    assert "14.4" in "".join(c["choices"][0]["text"] for c in chunks)


def test_extension_field_switches_it_and_untrained_adapters_are_untouched(served) -> None:
    client, key, names, seen = served()
    plain = client.post("/v1/chat/completions", json=_chat(names[False]), headers=key)
    assert plain.json()["choices"][0]["message"]["content"] == "plain"
    assert "quanta" not in seen[-1] and seen[-1]["messages"]
    off = client.post("/v1/chat/completions", headers=key,
                      json=_chat(names[True], quanta={"calculator": False}))
    assert off.json()["choices"][0]["message"]["content"] == "plain"
    assert "quanta" not in seen[-1]
    on = client.post("/v1/chat/completions", headers=key,
                     json=_chat(BASE, quanta={"calculator": True}))
    assert "14.4" in on.json()["choices"][0]["message"]["content"]
    bad = client.post("/v1/chat/completions", headers=key,
                      json=_chat(BASE, quanta={"calculator": "yes"}))
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "quanta.calculator"


@pytest.mark.parametrize(("field", "value"), [("n", 2), ("logprobs", True), ("tools", [{}]),
                                              ("response_format", {"type": "json_object"})])
def test_what_it_cannot_keep_is_refused_by_name(served, field, value) -> None:
    client, key, names, seen = served()
    response = client.post("/v1/chat/completions", json=_chat(names[True], **{field: value}),
                           headers=key)
    assert response.status_code == 400
    assert response.json()["error"]["param"] == field and "quanta" in response.text
    assert seen == []


def test_calculations_are_capped_and_tokens_limited(served) -> None:
    client, key, names, seen = served(max_calls=1)
    response = client.post("/v1/completions", headers=key,
                           json={"model": names[True], "prompt": "Q:", "max_tokens": 500})
    text = response.json()["choices"][0]["text"]
    assert text.startswith("v = <<8 + 1.6*4>>14.4") and "[calculation error]" not in text
    assert len(seen) == 2 and ">>" not in seen[-1]["stop"]
    assert seen[-1]["max_tokens"] == 500 - len(TURNS[0].split(" "))


def test_engine_errors_are_the_engines_own(served) -> None:
    client, key, names, _ = served(fail=True)
    response = client.post("/v1/chat/completions", json=_chat(names[True]), headers=key)
    assert response.status_code == 400 and response.json()["error"]["message"] == \
        "engine says no"


# -- the Responses API ----------------------------------------------------------------------

def test_a_response_is_served_as_chat_with_values_inserted(served) -> None:
    from tests.support.openai_schema import OpenAISchemas

    spec = OpenAISchemas("openai-serve.json")
    client, key, names, seen = served()
    chat = client.post("/v1/chat/completions", json=_chat(names[True]), headers=key).json()
    response = client.post("/v1/responses", headers=key,
                           json={"model": names[True], "input": "How fast?",
                                 "instructions": "Show the work.", "max_output_tokens": 500})
    assert response.status_code == 200, response.text
    body = spec.conforms(response.json(), "Response")
    assert body["output"][0]["content"][0]["text"] == \
        chat["choices"][0]["message"]["content"]
    assert body["status"] == "completed" and body["instructions"] == "Show the work."
    assert body["usage"]["output_tokens"] == chat["usage"]["completion_tokens"]
    # The chat the calculator served: instructions as the system message, then the input.
    assert seen[-1]["prompt"].startswith("<|system|>Show the work.<|user|>How fast?")
    stored = client.get(f"/v1/responses/{body['id']}", headers=key).json()
    assert stored == body

    with client.stream("POST", "/v1/responses", headers=key,
                       json={"model": names[True], "input": "How fast?",
                             "instructions": "Show the work.", "stream": True}) as streamed:
        lines = [line for line in streamed.iter_lines() if line.startswith("data: ")]
    events = [spec.conforms(json.loads(line[6:]), "ResponseStreamEvent") for line in lines]
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    assert [e["type"] for e in events][:4] == ["response.created", "response.in_progress",
                                                "response.output_item.added",
                                                "response.content_part.added"]
    assert "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta") \
        == body["output"][0]["content"][0]["text"]
    assert any(e.get("delta") == ">>14.4" for e in events)
    completed = events[-1]
    assert completed["type"] == "response.completed"
    assert completed["response"]["output"][0]["content"][0]["text"] == \
        body["output"][0]["content"][0]["text"]
    assert completed["response"]["usage"]["output_tokens"] == body["usage"]["output_tokens"]
    # Continued with previous_response_id: the stored conversation is the chat's history.
    again = client.post("/v1/responses", headers=key,
                        json={"model": names[True], "input": "And then?",
                              "previous_response_id": body["id"]})
    assert again.json()["previous_response_id"] == body["id"]
    assert "<|assistant|>v = <<8 + 1.6*4>>14.4 m/s" in seen[-1]["prompt"]
    assert seen[-1]["prompt"].endswith("<|user|>And then?" + PROMPT_MARK)


@pytest.mark.parametrize(("field", "value", "param"), [
    ("tools", [{"type": "function", "name": "f"}], "tools"),
    ("top_logprobs", 2, "top_logprobs"),
    ("include", ["message.output_text.logprobs"], "include"),
    ("max_output_tokens", 0, "max_output_tokens"),
    ("text", {"format": {"type": "json_object"}}, "text.format"),
    ("input", [{"type": "function_call_output", "call_id": "c", "output": "1"}], "input[0]")])
def test_a_response_it_cannot_keep_is_refused_by_name(served, field, value, param) -> None:
    client, key, names, seen = served()
    response = client.post("/v1/responses", headers=key,
                           json={"model": names[True], "input": "How fast?", field: value})
    assert response.status_code == 400
    assert response.json()["error"]["param"] == param and seen == []


def test_a_response_cut_short_is_incomplete() -> None:
    import asyncio

    from serve.calculator.responses import ResponseWriter

    sent: list[dict] = []

    async def send(message: dict) -> None:
        sent.append(message)

    async def run() -> None:
        writer = ResponseWriter(send, {"model": "m", "max_output_tokens": 2})
        await writer.send({"type": "http.response.start", "status": 200,
                           "headers": [(b"content-type", b"application/json")]})
        chat = {"choices": [{"message": {"content": "v ="}, "finish_reason": "length"}],
                "usage": {"prompt_tokens": 4, "completion_tokens": 2}}
        await writer.send({"type": "http.response.body", "body": json.dumps(chat).encode()})

    asyncio.run(run())
    body = json.loads(sent[-1]["body"])
    assert body["status"] == "incomplete" and body["output"][0]["status"] == "incomplete"
    assert body["incomplete_details"] == {"reason": "max_output_tokens"}
    assert body["usage"]["total_tokens"] == 6
    assert dict(sent[0]["headers"])[b"content-length"] == str(len(sent[-1]["body"])).encode()
