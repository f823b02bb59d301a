"""A completions run's samples, asked of Quanta's serve as a client: one chat completion
per item, as the run's tenant, and the sample in OpenAI's output-item shape.

An item serve refuses (a prompt too long for the model, a model deleted since) is that
item's error, stored with it (its input only up to MAX_REFUSED_INPUT characters: what
was refused need not be kept whole); a server that is busy (429) or failing (5xx) is
asked again a few times first. A server that cannot be reached at all
(:class:`ServeUnreachable`, after those retries) fails the run with
``serve_unavailable``: its items are not the problem, so none is stored as an error, and
the items graded before it stay stored. A failed run is not resumed; create a new run
once serve is back (the graded items of the failed one remain readable).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import httpx

from tune.evals.data_sources import RunSource
from tune.graders.templates import TemplateError, sample_from_text

RETRIES = 3
MAX_REFUSED_INPUT = 8192  # characters of a refused sample's input messages kept
NO_ERROR = {"code": "", "message": ""}  # OpenAI's EvalAPIError of a sample that worked
USAGE_KEYS = ("total_tokens", "completion_tokens", "prompt_tokens", "cached_tokens")


class ServeUnreachable(RuntimeError):
    """serve did not answer at all (connection refused, timed out), after retries."""


@dataclass(frozen=True)
class Sampled:
    """One item's sample: OpenAI's ``sample`` object, the graders' ``sample`` namespace
    (None when sampling failed: the item is not graded) and the model's token usage."""

    sample: dict[str, Any]
    namespace: dict[str, Any] | None
    usage: dict[str, Any] | None = None


def _usage(raw: Any) -> dict[str, int]:
    raw = raw if isinstance(raw, dict) else {}
    details = raw.get("prompt_tokens_details") or {}
    cached = details.get("cached_tokens") if isinstance(details, dict) else 0
    usage = {key: int(raw.get(key) or 0) for key in USAGE_KEYS[:3]}
    return {**usage, "cached_tokens": int(cached or 0)}


class Sampler:
    """Asks serve (``client``: its OpenAI API as the run's tenant) for each item's
    completion under the run's data source."""

    def __init__(self, client: httpx.Client, source: RunSource, *, retries: int = RETRIES,
                 backoff: float = 1.0) -> None:
        assert source.type == "completions" and source.model
        self.client, self.source = client, source
        self.retries, self.backoff = retries, backoff

    def _shape(self, messages: list[dict[str, str]], *, output: list[dict[str, str]],
               finish_reason: str, model: str, usage: dict[str, int],
               error: dict[str, str]) -> dict[str, Any]:
        params = self.source.sampling
        return {"input": messages, "output": output, "finish_reason": finish_reason,
                "model": model, "usage": usage, "error": error,
                "temperature": params.temperature,
                "max_completion_tokens": params.max_completion_tokens,
                "top_p": params.top_p, "seed": params.seed}

    def _failed(self, messages: list[dict[str, str]], code: str, message: str) -> Sampled:
        sample = self._shape(_prefix(messages, MAX_REFUSED_INPUT), output=[],
                             finish_reason="",
                             model=self.source.model or "", usage=_usage(None),
                             error={"code": code, "message": message[:1000]})
        return Sampled(sample=sample, namespace=None)

    def body(self, messages: list[dict[str, str]]) -> dict[str, Any]:
        params = self.source.sampling
        body: dict[str, Any] = {"model": self.source.model, "messages": messages,
                                "temperature": params.temperature, "top_p": params.top_p,
                                "seed": params.seed,
                                "max_completion_tokens": params.max_completion_tokens}
        if params.response_format is not None:
            body["response_format"] = params.response_format
        return body

    def sample(self, item: dict[str, Any]) -> Sampled:
        try:
            messages = self.source.messages(item)
        except TemplateError as exc:
            return self._failed([], "invalid_item", str(exc))
        response = self._ask(self.body(messages))
        if response.status_code >= 400:
            code, message = _error_of(response)
            return self._failed(messages, code, message)
        try:
            reply = response.json()
            choice = reply["choices"][0]
            content = choice["message"].get("content") or ""
        except (ValueError, KeyError, IndexError, TypeError, AttributeError) as exc:
            return self._failed(messages, "invalid_response",
                                f"serve's answer is not a chat completion: {exc}")
        model = str(reply.get("model") or self.source.model)
        usage = _usage(reply.get("usage"))
        finish_reason = str(choice.get("finish_reason") or "")
        namespace = {**sample_from_text(content), "model": model,
                     "choices": reply["choices"]}
        sample = self._shape(messages, output=[{"role": "assistant", "content": content}],
                             finish_reason=finish_reason, model=model, usage=usage,
                             error=dict(NO_ERROR))
        return Sampled(sample=sample, namespace=namespace,
                       usage={"model_name": self.source.model, "invocation_count": 1,
                              **usage})

    def _ask(self, body: dict[str, Any]) -> httpx.Response:
        """serve's answer, asked again while it is busy or failing (its last answer then);
        ServeUnreachable when it does not answer."""
        for attempt in range(self.retries + 1):
            last = attempt == self.retries
            try:
                response = self.client.post("chat/completions", json=body)
            except httpx.TransportError as exc:
                if last:
                    raise ServeUnreachable(f"serve at {self.client.base_url} did not answer: "
                                           f"{type(exc).__name__}: {exc}") from exc
            else:
                if (response.status_code != 429 and response.status_code < 500) or last:
                    return response
            time.sleep(self.backoff * 2 ** attempt)
        raise AssertionError("unreachable")  # pragma: no cover


def _prefix(messages: list[dict[str, str]], limit: int) -> list[dict[str, str]]:
    """The messages up to ``limit`` characters of content: the last one kept cut short,
    those after it left out."""
    kept, left = [], limit
    for message in messages:
        if left <= 0:
            break
        kept.append({**message, "content": message["content"][:left]})
        left -= len(message["content"])
    return kept


def _error_of(response: httpx.Response) -> tuple[str, str]:
    """(code, message) of serve's OpenAI-shaped error answer."""
    try:
        error = response.json().get("error") or {}
    except (ValueError, AttributeError):
        error = {}
    if not isinstance(error, dict):
        error = {"message": str(error)}
    code = str(error.get("code") or f"http_{response.status_code}")
    message = str(error.get("message") or response.text[:500] or response.reason_phrase)
    return code, message


def given_sample(sample: dict[str, Any] | None) -> Sampled:
    """A ``jsonl`` item's own sample, as OpenAI's sample object (nothing was asked: no
    input, no usage, no sampling parameters) and as the graders' namespace."""
    namespace = dict(sample or {})
    text = namespace.get("output_text")
    if isinstance(text, str):
        namespace = {**sample_from_text(text), **namespace}
    choices = namespace.get("choices")
    first = choices[0] if isinstance(choices, list) and choices and isinstance(
        choices[0], dict) else {}
    out = ([{"role": "assistant", "content": text}] if isinstance(text, str) else [])
    shaped = {"input": [], "output": out, "finish_reason": str(first.get("finish_reason")
                                                               or ""),
              "model": str(namespace.get("model") or ""), "usage": _usage(None),
              "error": dict(NO_ERROR), "temperature": 0.0, "max_completion_tokens": 0,
              "top_p": 0.0, "seed": 0}
    return Sampled(sample=shaped, namespace=namespace)
