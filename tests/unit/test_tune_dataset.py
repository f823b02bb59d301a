"""Assistant-only labels: exactly the assistant turns (end-of-turn token included) carry loss."""

from __future__ import annotations

from pathlib import Path

import pytest

from tune.train.dataset import IGNORE_INDEX, tokenize_chat, tokenize_examples


@pytest.fixture(scope="module")
def tokenizer(base_model_dir: Path):  # type: ignore[no-untyped-def]
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(base_model_dir)


def _trained_text(tokenizer, row) -> str:  # type: ignore[no-untyped-def]
    return tokenizer.decode([tok for tok, lab in zip(row["input_ids"], row["labels"], strict=True)
                             if lab != IGNORE_INDEX])


def test_only_assistant_tokens_have_labels(tokenizer) -> None:  # type: ignore[no-untyped-def]
    messages = [{"role": "system", "content": "Be brief."},
                {"role": "user", "content": "What is 2 plus 2?"},
                {"role": "assistant", "content": "The answer is 4."}]
    row = tokenize_chat(tokenizer, messages, 256)
    assert _trained_text(tokenizer, row) == "The answer is 4.<|im_end|>\n"
    labelled = [lab for lab in row["labels"] if lab != IGNORE_INDEX]
    assert labelled == [tok for tok, lab in zip(row["input_ids"], row["labels"], strict=True)
                        if lab != IGNORE_INDEX]
    # Nothing before the assistant's content is trained on.
    first = next(i for i, lab in enumerate(row["labels"]) if lab != IGNORE_INDEX)
    assert "What is 2 plus 2?" in tokenizer.decode(row["input_ids"][:first])


def test_multi_turn_and_weight_zero(tokenizer) -> None:  # type: ignore[no-untyped-def]
    messages = [{"role": "user", "content": "Hi"},
                {"role": "assistant", "content": "Hello there", "weight": 0},
                {"role": "user", "content": "Speed of light?"},
                {"role": "assistant", "content": "About 3e8 m/s."}]
    row = tokenize_chat(tokenizer, messages, 256)
    assert _trained_text(tokenizer, row) == "About 3e8 m/s.<|im_end|>\n"
    messages[1].pop("weight")
    row = tokenize_chat(tokenizer, messages, 256)
    assert _trained_text(tokenizer, row) == "Hello there<|im_end|>\nAbout 3e8 m/s.<|im_end|>\n"


def test_truncation_drops_examples_without_targets(tokenizer) -> None:  # type: ignore[no-untyped-def]
    long_prompt = {"messages": [{"role": "user", "content": "word " * 300},
                                {"role": "assistant", "content": "ok"}]}
    short = {"messages": [{"role": "user", "content": "x"}, {"role": "assistant", "content": "y"}]}
    rows = tokenize_examples(tokenizer, [long_prompt, short], 64)
    assert len(rows) == 1 and len(rows[0]["input_ids"]) <= 64
