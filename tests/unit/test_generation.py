"""greedy_answers' calculator rounds, over a scripted character-level model."""

from __future__ import annotations

import torch

from quanta.generation import greedy_answers

PAD = 0
MARK = "|A|"
# What the scripted model writes: whole (its own arithmetic is wrong), or, stopping at
# ">>", the segment after its k-th calculation.
PLAIN = "v = <<8 + 1.6*4>>24 m/s and <<2**10>>99 done."
SEGMENTS = ["v = <<8 + 1.6*4>>", " m/s and <<2**10>>", " done."]


class CharTokenizer:
    """One token per character; left padding with 0."""

    pad_token_id = PAD
    padding_side = "right"

    def apply_chat_template(self, messages, tokenize, add_generation_prompt):
        return "".join(m["content"] for m in messages) + MARK

    def __call__(self, texts, return_tensors, padding, add_special_tokens):
        width = max(len(t) for t in texts)
        rows = [[PAD] * (width - len(t)) + [ord(c) for c in t] for t in texts]

        class Batch(dict):
            def to(self, device):
                return self

        return Batch(input_ids=torch.tensor(rows), attention_mask=torch.tensor(rows) != PAD)

    def decode(self, tokens, skip_special_tokens):
        return "".join(chr(t) for t in tokens)


class ScriptedModel(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(1))
        self.calls: list[dict] = []

    def generate(self, input_ids, attention_mask, max_new_tokens, stop_strings=None, **_):
        self.calls.append({"stop": stop_strings, "max_new_tokens": max_new_tokens})
        out = []
        for row in input_ids.tolist():
            written = "".join(chr(t) for t in row if t != PAD).split(MARK, 1)[1]
            text = SEGMENTS[written.count(">>")] if stop_strings else PLAIN[len(written):]
            out.append(row + [ord(c) for c in text[:max_new_tokens]])
        width = max(len(r) for r in out)
        return torch.tensor([r + [PAD] * (width - len(r)) for r in out])


def test_calculator_rounds_insert_values_where_the_model_guessed() -> None:
    model, tokenizer = ScriptedModel(), CharTokenizer()
    conversation = [{"role": "user", "content": "How fast?"}]
    plain = greedy_answers(model, tokenizer, [conversation], 200)
    assert plain == [PLAIN]
    answers = greedy_answers(model, tokenizer, [conversation] * 3, 200, batch_size=2,
                             calculator=True)
    assert answers == ["v = <<8 + 1.6*4>>14.4 m/s and <<2**10>>1024 done."] * 3
    assert [c["stop"] for c in model.calls[1:]] == [[">>"]] * 6  # 2 batches x 3 rounds
    assert tokenizer.padding_side == "right"  # restored


def test_calculator_rounds_respect_the_token_budget() -> None:
    model, tokenizer = ScriptedModel(), CharTokenizer()
    [answer] = greedy_answers(model, tokenizer, [[{"role": "user", "content": "q"}]], 20,
                              calculator=True)
    # 17 characters reach the first ">>", 3 are left: the next round writes " m/" and stops.
    assert answer == "v = <<8 + 1.6*4>>14.4 m/"
    assert model.calls[-1]["max_new_tokens"] == 3
