"""``score_model``: a model Quanta serves reads the answer and returns a number.

The prompt (``input`` messages, templated) is sent to an OpenAI-compatible chat endpoint,
by default Quanta's own ``quanta serve`` (``QUANTA_GRADER_MODEL_URL``, key
``QUANTA_GRADER_API_KEY``). The reply is read as OpenAI's model graders answer, JSON
``{"result": <number>, ...}``, else its first number, and clamped to ``range``. A refusal,
an unreadable reply or a server error scores 0 with OpenAI's flag for it.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any, Self

from quanta.types import GraderType
from tune.graders import register_grader
from tune.graders.base import Grade
from tune.graders.config import ScoreModelConfig
from tune.graders.templates import TemplateError, render

if TYPE_CHECKING:
    from quanta.config import Settings

_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


def read_score(text: str) -> float | None:
    """The reply's score: ``{"result": x}`` JSON, else the first number in the text."""
    try:
        parsed = json.loads(text)
    except ValueError:
        parsed = None
    if isinstance(parsed, dict) and isinstance(parsed.get("result"), int | float):
        return float(parsed["result"])
    if isinstance(parsed, int | float) and not isinstance(parsed, bool):
        return float(parsed)
    match = _NUMBER.search(text)
    return float(match.group(0)) if match else None


def ask_model(base_url: str, api_key: str | None, body: dict[str, Any], timeout: float
              ) -> tuple[dict[str, Any], dict[str, Any], dict[str, int]] | Grade:
    """Ask the chat endpoint at ``base_url``: (the reply, its first message, its token
    usage), or the failed Grade of a server that did not answer one
    (``model_grader_server_error``). The model graders' one way to a model."""
    import httpx

    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    try:
        response = httpx.post(f"{base_url.rstrip('/')}/chat/completions", json=body,
                              headers=headers, timeout=timeout)
        response.raise_for_status()
        reply = response.json()
        message = reply["choices"][0]["message"]
        usage = reply.get("usage") or {}
        tokens = {k: int(usage.get(k) or 0) for k in ("prompt_tokens", "completion_tokens",
                                                       "total_tokens")}
    except (httpx.HTTPError, ValueError, KeyError, IndexError, TypeError,
            AttributeError) as exc:
        return Grade.failed("model_grader_server_error", f"{type(exc).__name__}: {exc}"[:500],
                            "model_grader_server_error_details")
    return reply, message, tokens


class ServedModelGrader:
    """What the model graders share: the server of the model they ask and its key, by
    default the operator's settings (``QUANTA_GRADER_MODEL_URL``, ``QUANTA_GRADER_API_KEY``;
    an eval run passes its own)."""

    def __init__(self, config: Any, base_url: str, api_key: str | None,
                 timeout: float = 120.0) -> None:
        self.config, self.name, self.type = config, config.name, str(config.type)
        self.base_url, self.api_key, self.timeout = base_url.rstrip("/"), api_key, timeout

    @classmethod
    def from_config(cls, config: Any, settings: Settings) -> Self:
        return cls(config, settings.grader_model_url, settings.grader_api_key)

    def _request(self, item: dict[str, Any], sample: dict[str, Any]) -> dict[str, Any]:
        """The chat request asking the model about this sample (TemplateError)."""
        raise NotImplementedError

    def _ask(self, item: dict[str, Any], sample: dict[str, Any]
             ) -> tuple[dict[str, Any], dict[str, Any], dict[str, int]] | Grade:
        """The model's answer to this sample (as :func:`ask_model`), or the failed Grade
        of a template that cannot render or a server that did not answer."""
        try:
            body = self._request(item, sample)
        except TemplateError as exc:
            return Grade.failed("invalid_variable_error", str(exc))
        return ask_model(self.base_url, self.api_key, body, self.timeout)


@register_grader(GraderType.SCORE_MODEL)
class ScoreModelGrader(ServedModelGrader):
    config: ScoreModelConfig

    def _request(self, item: dict[str, Any], sample: dict[str, Any]) -> dict[str, Any]:
        params = self.config.sampling_params
        body: dict[str, Any] = {
            "model": self.config.model,
            "messages": [{"role": "system" if m.role == "developer" else m.role,
                          "content": render(m.text(), item, sample)}
                         for m in self.config.input],
            "temperature": params.temperature if params and params.temperature is not None
            else 0.0,
            "max_tokens": params.max_completions_tokens if params and
            params.max_completions_tokens else 64,
        }
        if params and params.top_p is not None:
            body["top_p"] = params.top_p
        if params and params.seed is not None:
            body["seed"] = params.seed
        return body

    def grade(self, sample: dict[str, Any], item: dict[str, Any]) -> Grade:
        asked = self._ask(item, sample)
        if isinstance(asked, Grade):
            return asked
        reply, message, tokens = asked
        if message.get("refusal"):
            grade = Grade.failed("model_grader_refusal_error", str(message["refusal"])[:300])
        else:
            score = read_score(message.get("content") or "")
            low, high = self.config.range
            grade = (Grade.failed("model_grader_parse_error",
                                  f"no number in {str(message.get('content'))[:200]!r}")
                     if score is None else Grade(score=min(high, max(low, score))))
        grade.token_usage, grade.sampled_model_name = tokens, reply.get("model")
        return grade
