"""Completions and Responses in OpenAI's published shape, and the request checks vLLM
leaves out.

vLLM's OpenAI server fills every optional field of its response models, so fields that
OpenAI's description types as an object, array or string (``message.annotations``,
``message.function_call``, ``usage.*_tokens_details``, ``system_fingerprint``; a
Response's ``user``, ``text`` and ``usage``) come back as ``null``, chat ``logprobs`` lack
the required ``refusal`` key, a Response lacks the required ``error`` and its text parts
say ``logprobs: null`` where OpenAI's schema wants a list, and echoed completions start
their logprobs with ``null``. It also accepts roles and ``logprobs`` values OpenAI
refuses. ``conform`` rewrites a response body (or one streamed chunk or event) and
``check_request`` refuses what OpenAI refuses, so clients that validate against OpenAI's
schema, not only the lenient SDK, work unchanged. Both are shaped as they would be fixed
in vLLM itself (``vllm/entrypoints/openai/protocol.py`` and ``.../responses/protocol.py``:
``exclude_none`` for those fields, a role enum, ``logprobs <= 5``); see serve/README.md.
"""

from __future__ import annotations

from typing import Any

from serve.errors import HTTPBadRequest

CHAT_PATH = "/v1/chat/completions"
COMPLETIONS_PATH = "/v1/completions"
RESPONSES_PATH = "/v1/responses"
# OpenAI's ChatCompletionRequestMessage roles (``function`` is its deprecated one).
CHAT_ROLES = ("developer", "system", "user", "assistant", "tool", "function")
MAX_COMPLETION_LOGPROBS = 5  # OpenAI: "The maximum value for logprobs is 5"
MAX_TOP_LOGPROBS = 20

# Keys OpenAI's schema does not allow to be null, where vLLM sends null: left out.
_NOT_NULL_TOP = ("system_fingerprint", "usage")
_NOT_NULL_MESSAGE = ("annotations", "function_call", "tool_calls")
_NOT_NULL_USAGE = ("completion_tokens_details", "prompt_tokens_details")
_NOT_NULL_RESPONSE = ("user", "text", "usage")
# Stream events that carry a whole Response, an output item, a content part.
_EVENT_PARTS = ("response", "item", "part")


def _drop_nulls(obj: Any, keys: tuple[str, ...]) -> None:
    if isinstance(obj, dict):
        for key in keys:
            if key in obj and obj[key] is None:
                del obj[key]


def conform(payload: Any) -> Any:
    """A chat or text completion (or one streamed chunk of one), a Response or one of its
    stream events, as OpenAI's schema has it; anything else is returned as it is."""
    if not isinstance(payload, dict):
        return payload
    if payload.get("object") == "response" or str(payload.get("type", "")).startswith(
            "response."):
        return conform_response(payload)
    if "choices" not in payload:
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
        elif isinstance(logprobs, dict):
            _unconditioned_first_token(logprobs)
    return payload


def _unconditioned_first_token(logprobs: dict[str, Any]) -> None:
    """Text completions' logprobs with ``echo``: vLLM (like OpenAI's API of old) gives the
    prompt's first token ``null`` in ``token_logprobs`` and ``top_logprobs``, since nothing
    precedes it to condition on; OpenAI's schema (and the SDK's types) want a number and
    an object. It gets ``0.0`` and ``{}``: log 1 adds nothing to the sum of the
    sequence's log-probabilities, so a prompt's score (what ``echo`` with ``logprobs`` is
    for, and what clients that skipped the ``null`` computed) is unchanged, and an empty
    ``top_logprobs`` says no alternatives were ranked for it. ``tokens`` and
    ``text_offset`` keep the token, so the lists stay aligned with the text. Streamed
    completions send the echoed prompt in their first chunk: the same rule applies."""
    token_logprobs = logprobs.get("token_logprobs")
    if isinstance(token_logprobs, list):
        logprobs["token_logprobs"] = [0.0 if v is None else v for v in token_logprobs]
    top_logprobs = logprobs.get("top_logprobs")
    if isinstance(top_logprobs, list):
        logprobs["top_logprobs"] = [{} if v is None else v for v in top_logprobs]


def conform_response(payload: dict[str, Any]) -> dict[str, Any]:
    """A Response (``object: "response"``) or a Responses stream event as OpenAI's
    schema has it: ``error`` present (``null`` unless it failed), ``user``, ``text`` and
    ``usage`` left out rather than ``null``, and every ``output_text`` part's
    ``logprobs`` a list (empty unless asked for) where vLLM sends ``null``."""
    if payload.get("object") == "response":
        _drop_nulls(payload, _NOT_NULL_RESPONSE)
        payload.setdefault("error", None)
        for item in payload.get("output") or []:
            _conform_output_item(item)
        return payload
    for key in _EVENT_PARTS:
        part = payload.get(key)
        if not isinstance(part, dict):
            continue
        if key == "response":
            conform_response(part)
        elif key == "item":
            _conform_output_item(part)
        else:
            _conform_content(part)
    return payload


def _conform_output_item(item: Any) -> None:
    if isinstance(item, dict) and item.get("type") == "message":
        for part in item.get("content") or []:
            _conform_content(part)


def _conform_content(part: Any) -> None:
    if isinstance(part, dict) and part.get("type") == "output_text":
        if part.get("logprobs") is None:
            part["logprobs"] = []
        part.setdefault("annotations", [])


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
    elif path == RESPONSES_PATH:
        _int_in(body, "top_logprobs", 0, MAX_TOP_LOGPROBS)
