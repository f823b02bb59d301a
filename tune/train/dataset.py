"""Turn normalised chat examples into trainer-ready token ids with assistant-only labels.

Chat templates (SmolLM2's, the defaults ``quanta.architectures`` gives bases) have no
``{% generation %}`` markers, so trl's ``assistant_only_loss`` cannot find the assistant
tokens. We render the template once per
example and mark the character spans each assistant message adds (the template must be
prefix-preserving, which we check), then map spans to tokens with the tokenizer's offsets.
Every assistant turn is trained on (its end-of-turn token included, so the model learns to
stop) unless it carries ``"weight": 0``; system, user and template tokens get label -100.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

IGNORE_INDEX = -100


class TemplateError(ValueError):
    """The chat template is not prefix-preserving, so assistant spans cannot be located."""


def _render(tokenizer: Any, messages: Sequence[dict[str, Any]], generation_prompt: bool) -> str:
    clean = [{"role": m["role"], "content": m["content"]} for m in messages]
    return tokenizer.apply_chat_template(clean, tokenize=False,
                                         add_generation_prompt=generation_prompt)


def assistant_spans(tokenizer: Any,
                    messages: Sequence[dict[str, Any]]) -> tuple[str, list[tuple[int, int]]]:
    """The rendered conversation and the character spans of the assistant turns to train on."""
    text = _render(tokenizer, messages, generation_prompt=False)
    spans: list[tuple[int, int]] = []
    for i, message in enumerate(messages):
        if message["role"] != "assistant" or message.get("weight", 1) == 0:
            continue
        prefix = _render(tokenizer, messages[:i], generation_prompt=True) if i else ""
        upto = _render(tokenizer, messages[: i + 1], generation_prompt=False)
        if not (upto.startswith(prefix) and text.startswith(upto)):
            raise TemplateError("the chat template is not prefix-preserving; cannot mask the "
                                "non-assistant tokens")
        spans.append((len(prefix), len(upto)))
    return text, spans


def tokenize_chat(tokenizer: Any, messages: Sequence[dict[str, Any]],
                  max_length: int) -> dict[str, list[int]]:
    """``input_ids`` and ``labels`` (-100 outside assistant turns), truncated to ``max_length``."""
    text, spans = assistant_spans(tokenizer, messages)
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True,
                    truncation=True, max_length=max_length)
    labels = []
    for token_id, (start, end) in zip(enc["input_ids"], enc["offset_mapping"], strict=True):
        inside = end > start and any(s <= start < e for s, e in spans)
        labels.append(token_id if inside else IGNORE_INDEX)
    return {"input_ids": list(enc["input_ids"]), "labels": labels}


def tokenize_examples(tokenizer: Any, examples: Sequence[dict[str, Any]],
                      max_length: int) -> list[dict[str, list[int]]]:
    """Tokenize chat examples; drops those left with no trainable token after truncation."""
    rows = [tokenize_chat(tokenizer, ex["messages"], max_length) for ex in examples]
    return [r for r in rows if any(label != IGNORE_INDEX for label in r["labels"])]


def count_tokens(rows: Sequence[dict[str, list[int]]]) -> int:
    return sum(len(r["input_ids"]) for r in rows)
