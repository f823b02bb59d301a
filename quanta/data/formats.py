"""The four dataset formats Quanta accepts, each checked and normalised to OpenAI chat format.

- ``chat``: OpenAI fine-tuning JSONL, ``{"messages": [...]}`` (extra top-level keys allowed).
- ``preference``: OpenAI DPO JSONL, ``{"input": {"messages": [...]}, "preferred_output": [...],
  "non_preferred_output": [...]}``, normalised to trl's ``{"prompt", "chosen", "rejected"}``.
- ``camel``: camel-ai/physics records (``message_1`` question, ``message_2`` answer; the real
  dataset spells the topic key ``topic;``).
- ``alpaca``: ``instruction``, optional ``input``, ``output``.
- ``reinforcement``: OpenAI RFT JSONL, ``{"messages": [...prompt ending with the user...],
  ...the fields graders read (at least one)}``, normalised to ``{"messages": [...],
  "item": {the whole record}}`` (graders read ``{{item.<field>}}``; ``developer`` messages
  become ``system``).

Checkers return error strings of the form ``field 'x': problem``; the caller adds ``file:line:``.
"""

from __future__ import annotations

from typing import Any

from quanta.calculator import trace_problems
from quanta.data.errors import DatasetError
from quanta.data.reader import json_type
from quanta.types import DatasetFormat

FORMATS: tuple[DatasetFormat, ...] = tuple(DatasetFormat)
ROLES: tuple[str, ...] = ("system", "user", "assistant")
PROMPT_ROLES: tuple[str, ...] = ("developer", *ROLES)  # RFT prompts may use OpenAI's developer
_MESSAGE_KEYS = frozenset({"role", "content", "name", "weight"})
_CAMEL_TOPIC_KEYS = ("topic", "topic;")


def detect_format(record: dict[str, Any]) -> DatasetFormat:
    """Guess a record's format from its keys; raises ``DatasetError`` when none fits."""
    if not isinstance(record, dict):
        raise DatasetError(f"unknown format: expected a JSON object, got {json_type(record)}")
    keys = set(record)
    if "messages" in keys:
        return DatasetFormat.REINFORCEMENT if _is_prompt_only(record) else DatasetFormat.CHAT
    if {"preferred_output", "non_preferred_output"} & keys:
        return DatasetFormat.PREFERENCE
    if keys & {"message_1", "message_2", "role_1", "topic;"}:
        return DatasetFormat.CAMEL
    if keys & {"instruction", "output"}:
        return DatasetFormat.ALPACA
    shown = ", ".join(repr(k) for k in sorted(keys)[:8]) or "none"
    raise DatasetError(
        f"unknown format: keys {shown}; expected 'messages' (chat), 'input'/'preferred_output' "
        "(preference), 'message_1'/'message_2' (camel), or 'instruction'/'output' (alpaca)"
    )


def _is_prompt_only(record: dict[str, Any]) -> bool:
    """An RFT row: messages that stop before the assistant answers, plus the fields its
    graders read. Without such fields it is a chat row missing its answer, and is
    reported as one."""
    messages = record["messages"]
    if len(record) < 2 or not isinstance(messages, list) or not messages:
        return False
    last = messages[-1]
    return isinstance(last, dict) and last.get("role") != "assistant"


def normalise_record(record: Any, fmt: str) -> tuple[dict[str, Any] | None, list[str]]:
    """Check ``record`` against ``fmt``; return its normalised form (or None) and its errors."""
    if not isinstance(record, dict):
        return None, [f"expected a JSON object, got {json_type(record)}"]
    checker = _CHECKERS.get(fmt)
    if checker is None:
        return None, [f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}"]
    errors: list[str] = []
    example = checker(record, errors)
    return (None, errors) if errors else (example, [])


def record_topic(record: Any) -> str | None:
    """The record's topic label when it carries one (``topic``, or camel's ``topic;``)."""
    if not isinstance(record, dict):
        return None
    for key in _CAMEL_TOPIC_KEYS:
        value = record.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def _check_messages(
    messages: Any, field: str, errors: list[str], *, assistant_last: bool,
    roles: tuple[str, ...] = ROLES,
) -> list[dict[str, Any]]:
    """Validate a list of chat messages; returns them reduced to role/content (and weight)."""
    if not isinstance(messages, list):
        errors.append(f"field '{field}': expected an array of messages, got {json_type(messages)}")
        return []
    if not messages:
        errors.append(f"field '{field}': must not be empty")
        return []
    clean: list[dict[str, Any]] = []
    before = len(errors)
    for i, message in enumerate(messages):
        where = f"{field}[{i}]"
        if not isinstance(message, dict):
            errors.append(f"field '{where}': expected an object, got {json_type(message)}")
            continue
        extra = sorted(set(message) - _MESSAGE_KEYS)
        if extra:
            errors.append(f"field '{where}': unexpected key(s) {', '.join(map(repr, extra))}")
        role = message.get("role")
        if "role" not in message:
            errors.append(f"field '{where}.role': missing")
        elif role not in roles:
            errors.append(f"field '{where}.role': expected one of {', '.join(roles)}, got {role!r}")
        content = _check_text(message, "content", where, errors)
        if role == "assistant" and isinstance(content, str):
            errors.extend(f"field '{where}.content': {problem}"
                          for problem in trace_problems(content))
        weight = message.get("weight")
        if "weight" in message and (weight not in (0, 1) or isinstance(weight, bool)):
            errors.append(f"field '{where}.weight': expected 0 or 1, got {weight!r}")
        item: dict[str, Any] = {"role": role, "content": content}
        if "weight" in message:
            item["weight"] = weight
        clean.append(item)
    if len(errors) == before and assistant_last:
        if not any(m["role"] == "assistant" for m in clean):
            errors.append(f"field '{field}': needs at least one assistant message")
        elif clean[-1]["role"] != "assistant":
            errors.append(
                f"field '{field}[{len(clean) - 1}].role': the last message must be from the "
                f"assistant, got {clean[-1]['role']!r}"
            )
    return clean


def _check_text(
    record: dict[str, Any], key: str, where: str | None, errors: list[str], required: bool = True
) -> str:
    """A required (or optional) string field; empty or whitespace-only required text is an error."""
    name = f"{where}.{key}" if where else key
    if key not in record or (record[key] is None and not required):
        if required:
            errors.append(f"field '{name}': missing")
        return ""
    value = record[key]
    if not isinstance(value, str):
        errors.append(f"field '{name}': expected a string, got {json_type(value)}")
        return ""
    if required and not value.strip():
        errors.append(f"field '{name}': must not be empty")
    return value


def _check_chat(record: dict[str, Any], errors: list[str]) -> dict[str, Any]:
    if "messages" not in record:
        errors.append("field 'messages': missing")
        return {}
    messages = _check_messages(record["messages"], "messages", errors, assistant_last=True)
    return {"messages": messages}


def _check_preference(record: dict[str, Any], errors: list[str]) -> dict[str, Any]:
    prompt: list[dict[str, Any]] = []
    source = record.get("input")
    if "input" not in record:
        errors.append("field 'input': missing")
    elif not isinstance(source, dict):
        errors.append(f"field 'input': expected an object, got {json_type(source)}")
    elif "messages" not in source:
        errors.append("field 'input.messages': missing")
    else:
        before = len(errors)
        prompt = _check_messages(source["messages"], "input.messages", errors, assistant_last=False)
        if len(errors) == before and prompt and prompt[-1]["role"] != "user":
            errors.append(
                f"field 'input.messages[{len(prompt) - 1}].role': the prompt must end with a "
                f"user message, got {prompt[-1]['role']!r}"
            )
    outputs = {}
    for key in ("preferred_output", "non_preferred_output"):
        if key not in record:
            errors.append(f"field '{key}': missing")
            continue
        before = len(errors)
        outputs[key] = _check_messages(record[key], key, errors, assistant_last=False)
        if len(errors) == before:
            for i, message in enumerate(outputs[key]):
                if message["role"] != "assistant":
                    errors.append(
                        f"field '{key}[{i}].role': expected 'assistant', got {message['role']!r}"
                    )
    return {
        "prompt": prompt,
        "chosen": outputs.get("preferred_output", []),
        "rejected": outputs.get("non_preferred_output", []),
    }


def _check_camel(record: dict[str, Any], errors: list[str]) -> dict[str, Any]:
    question = _check_text(record, "message_1", None, errors)
    answer = _check_text(record, "message_2", None, errors)
    present = [k for k in _CAMEL_TOPIC_KEYS if k in record]
    if not present:
        errors.append("field 'topic': missing (the camel-ai files spell it 'topic;')")
    for key in present:
        _check_text(record, key, None, errors)
    for key in ("sub_topic", "role_1"):
        _check_text(record, key, None, errors, required=False)
    return {
        "messages": [
            {"role": "user", "content": question.strip()},
            {"role": "assistant", "content": answer.strip()},
        ]
    }


def _check_alpaca(record: dict[str, Any], errors: list[str]) -> dict[str, Any]:
    instruction = _check_text(record, "instruction", None, errors)
    extra = _check_text(record, "input", None, errors, required=False)
    output = _check_text(record, "output", None, errors)
    prompt = instruction.strip()
    if extra.strip():
        prompt = f"{prompt}\n\n{extra.strip()}"
    return {
        "messages": [
            {"role": "user", "content": prompt},
            {"role": "assistant", "content": output.strip()},
        ]
    }


def _check_reinforcement(record: dict[str, Any], errors: list[str]) -> dict[str, Any]:
    if "messages" not in record:
        errors.append("field 'messages': missing")
        return {}
    before = len(errors)
    prompt = _check_messages(record["messages"], "messages", errors, assistant_last=False,
                             roles=PROMPT_ROLES)
    if len(errors) == before and prompt[-1]["role"] != "user":
        errors.append(f"field 'messages[{len(prompt) - 1}].role': a reinforcement prompt must "
                      f"end with a user message, got {prompt[-1]['role']!r}")
    messages = [{**m, "role": "system"} if m["role"] == "developer" else m for m in prompt]
    return {"messages": messages, "item": record}


_CHECKERS = {
    DatasetFormat.CHAT: _check_chat,
    DatasetFormat.PREFERENCE: _check_preference,
    DatasetFormat.CAMEL: _check_camel,
    DatasetFormat.ALPACA: _check_alpaca,
    DatasetFormat.REINFORCEMENT: _check_reinforcement,
}
