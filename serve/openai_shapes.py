"""Completions in OpenAI's published shape, and the request checks vLLM leaves out.

vLLM's OpenAI server fills every optional field of its response models, so fields that
OpenAI's description types as an object, array or string (``message.annotations``,
``message.function_call``, ``usage.*_tokens_details``, ``system_fingerprint``) come back
as ``null``, and chat ``logprobs`` lack the required ``refusal`` key. It also accepts
roles and ``logprobs`` values OpenAI refuses. ``conform`` rewrites a response body (or
one streamed chunk) and ``check_request`` refuses what OpenAI refuses, so clients that
validate against OpenAI's schema, not only the lenient SDK, work unchanged. Both are
shaped as they would be fixed in vLLM itself (``vllm/entrypoints/openai/protocol.py``:
``exclude_none`` for those fields, a role enum, ``logprobs <= 5``); see serve/README.md.
"""

from __future__ import annotations

from typing import Any

from serve.errors import HTTPBadRequest

CHAT_PATH = "/v1/chat/completions"
COMPLETIONS_PATH = "/v1/completions"
# OpenAI's ChatCompletionRequestMessage roles (``function`` is its deprecated one).
CHAT_ROLES = ("developer", "system", "user", "assistant", "tool", "function")
MAX_COMPLETION_LOGPROBS = 5  # OpenAI: "The maximum value for logprobs is 5"
MAX_TOP_LOGPROBS = 20

# Keys OpenAI's schema does not allow to be null, where vLLM sends null: left out.
_NOT_NULL_TOP = ("system_fingerprint", "usage")
_NOT_NULL_MESSAGE = ("annotations", "function_call", "tool_calls")
_NOT_NULL_USAGE = ("completion_tokens_details", "prompt_tokens_details")


def _drop_nulls(obj: Any, keys: tuple[str, ...]) -> None:
    if isinstance(obj, dict):
        for key in keys:
            if key in obj and obj[key] is None:
                del obj[key]


def conform(payload: Any) -> Any:
    """A chat or text completion (or one streamed chunk of one), as OpenAI's schema has
    it; anything else is returned as it is."""
    if not isinstance(payload, dict) or "choices" not in payload:
        return payload
    _drop_nulls(payload, _NOT_NULL_TOP)
    _drop_nulls(payload.get("usage"), _NOT_NULL_USAGE)
    for choice in payload.get("choices") or []:
        if not isinstance(choice, dict):
            continue
        _drop_nulls(choice.get("message"), _NOT_NULL_MESSAGE)
        _drop_nulls(choice.get("delta"), _NOT_NULL_MESSAGE)
        logprobs = choice.get("logprobs")
        if isinstance(logprobs, dict) and "content" in logprobs:  # chat's shape
            logprobs.setdefault("refusal", None)
    return payload


def _int_in(body: dict[str, Any], name: str, low: int, high: int) -> None:
    value = body.get(name)
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise HTTPBadRequest(f"{name} must be an integer between {low} and {high}, "
                             f"got {value!r}", param=name)


def check_request(path: str, body: dict[str, Any]) -> None:
    """Refuse (400, naming the field) what OpenAI refuses and vLLM would accept."""
    if path == CHAT_PATH:
        messages = body.get("messages")
        if isinstance(messages, list):
            for i, message in enumerate(messages):
                role = message.get("role") if isinstance(message, dict) else None
                if role not in CHAT_ROLES:
                    raise HTTPBadRequest(
                        f"Invalid value {role!r} for messages[{i}].role: expected one of "
                        f"{', '.join(CHAT_ROLES)}", param=f"messages[{i}].role")
        _int_in(body, "top_logprobs", 0, MAX_TOP_LOGPROBS)
    elif path == COMPLETIONS_PATH:
        _int_in(body, "logprobs", 0, MAX_COMPLETION_LOGPROBS)
