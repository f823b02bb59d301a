"""greedy_answers' calculator rounds, over a scripted character-level model."""

from __future__ import annotations

import pytest
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


# -- sampled rollouts (reinforcement), token ids and the generated mask -------------------

EOS = 1
SHORT = ["x = <<2+2>>", " so done."]  # what the model writes to the prompt "short"


OVERRUN = 1000  # one token for ">>," (it runs past the close)


class RolloutTokenizer(CharTokenizer):
    eos_token_id = EOS

    def __call__(self, text, add_special_tokens):  # type: ignore[override]
        return {"input_ids": [ord(c) for c in text]}

    def decode(self, tokens, skip_special_tokens):
        return "".join(">>," if t == OVERRUN else chr(t) for t in tokens if t not in (PAD, EOS))


class SamplingModel(ScriptedModel):
    """Writes SEGMENTS (then EOS) with ">>" as a stop string, PLAIN without; a stopped row
    is padded to the batch's length, as transformers pads finished sequences."""

    def __init__(self, eos: int = EOS) -> None:
        super().__init__()
        self.eos = eos

    def generate(self, input_ids, attention_mask, generation_config, tokenizer):  # type: ignore[override]
        stop = generation_config.stop_strings
        budget = generation_config.max_new_tokens
        self.calls.append({"stop": stop, "max_new_tokens": budget,
                           "rows": len(input_ids), "left_pad": int((attention_mask == 0).sum())})
        out = []
        for row in input_ids.tolist():
            prompt, written = "".join(chr(t) for t in row if t != PAD).split(MARK, 1)
            script = SHORT if prompt == "short" else SEGMENTS
            text = (script[written.count(">>")] if stop else PLAIN[len(written):])
            tokens = [ord(c) for c in text] + ([self.eos] if text.endswith("done.") else [])
            if prompt == "overrun":  # the close comes inside one token, ">>,"
                tokens = ([ord(c) for c in "w = <<6*7"] + [OVERRUN] if ">>" not in written
                          else [ord(c) for c in " so done."] + [self.eos])
            out.append(row + tokens[:budget])
        width = max(len(r) for r in out)
        pad = generation_config.pad_token_id
        return torch.tensor([r + [pad] * (width - len(r)) for r in out])


def _config(eos: int = EOS):  # type: ignore[no-untyped-def]
    from transformers import GenerationConfig

    return GenerationConfig(do_sample=True, eos_token_id=eos, pad_token_id=PAD)


def _prompt(text: str) -> list[int]:
    return [ord(c) for c in text + MARK]


@pytest.mark.parametrize("eos", [EOS, PAD], ids=["eos", "eos-is-padding"])
def test_rollouts_insert_values_and_mark_them_not_generated(eos: int) -> None:
    """Also where padding is the EOS token (SmolLM2): a row stopped at ">>" and padded
    after it has closed a calculation; it has not ended."""
    from quanta.generation import sample_with_calculator

    model, tokenizer = SamplingModel(eos), RolloutTokenizer()
    tokenizer.eos_token_id = eos
    # Prompts of different lengths share a left-padded batch; "short" closes its first
    # calculation 6 tokens before the other row, and is padded after its ">>".
    prompts = [_prompt("q"), _prompt("longer q"), _prompt("short")]
    rollouts = sample_with_calculator(model, tokenizer, prompts, _config(eos),
                                      max_new_tokens=200)
    assert tokenizer.decode(rollouts[2].ids, True) == "x = <<2+2>>4 so done."
    assert rollouts[2].calls == 1 and rollouts[2].ids[-1] == eos
    rollouts = rollouts[:2]
    want = "v = <<8 + 1.6*4>>14.4 m/s and <<2**10>>1024 done."
    for rollout in rollouts:
        assert tokenizer.decode(rollout.ids, True) == want and rollout.ids[-1] == eos
        inserted = "".join(chr(t) for t, g in zip(rollout.ids, rollout.generated, strict=True)
                           if not g)
        assert inserted == "14.41024" and rollout.calls == 2
        assert len(rollout.generated) == len(rollout.ids)
    assert [c["stop"] for c in model.calls] == [[">>"]] * 3
    assert model.calls[0]["left_pad"] == 2 * len("longer q") - len("q") - len("short")


def test_rollouts_budget_generated_tokens_only_and_stop_calculating() -> None:
    """As a served completion's max_tokens: inserted values come on top of the budget."""
    from quanta.generation import sample_with_calculator

    model, tokenizer = SamplingModel(), RolloutTokenizer()
    [short] = sample_with_calculator(model, tokenizer, [_prompt("q")], _config(),
                                     max_new_tokens=18)
    # 17 generated reach ">>", "14.4" is inserted, 1 generated token is left: " ".
    assert tokenizer.decode(short.ids, True) == "v = <<8 + 1.6*4>>14.4 "
    assert sum(short.generated) == 18 and len(short.ids) == 22
    model.calls.clear()
    [capped] = sample_with_calculator(model, tokenizer, [_prompt("q")], _config(),
                                      max_new_tokens=200, max_calls=1)
    # After one calculation ">>" is no stop: the model writes the rest, its own 99.
    assert tokenizer.decode(capped.ids, True).endswith("and <<2**10>>99 done.")
    assert capped.calls == 1 and [c["stop"] for c in model.calls] == [[">>"], None]


def test_a_close_inside_a_longer_token_is_cut_there_as_the_server_cuts_it() -> None:
    from quanta.generation import sample_with_calculator

    model, tokenizer = SamplingModel(), RolloutTokenizer()
    [rollout] = sample_with_calculator(model, tokenizer, [_prompt("overrun")], _config(),
                                       max_new_tokens=100)
    assert tokenizer.decode(rollout.ids, True) == "w = <<6*7>>42 so done."
    assert OVERRUN not in rollout.ids and rollout.calls == 1
    not_generated = "".join(chr(t) for t, g in zip(rollout.ids, rollout.generated, strict=True)
                            if not g)
    assert not_generated == ">>42"  # the close, re-tokenized, and the value
