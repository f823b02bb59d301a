"""Greedy chat answers with transformers, optionally with calculator decoding.

Shared by evaluation (tune), export accuracy (the GPTQ worker, which runs in its own
environment with only ``quanta`` and ``quantize`` on its path) and benchmarks. torch is
imported lazily.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from quanta.calculator import CLOSE, MAX_CALLS, insertion


def _generate(model: Any, tokenizer: Any, prompts: list[str], max_new_tokens: list[int],
              stop: list[str] | None) -> list[tuple[str, int]]:
    """One greedy batch: each prompt's new text and how many tokens it generated."""
    import torch

    device = next(model.parameters()).device
    enc = tokenizer(prompts, return_tensors="pt", padding=True,
                    add_special_tokens=False).to(device)
    extra = {"stop_strings": stop, "tokenizer": tokenizer} if stop else {}
    with torch.no_grad():
        out = model.generate(**enc, max_new_tokens=max(max_new_tokens), do_sample=False,
                             pad_token_id=tokenizer.pad_token_id, use_cache=True, **extra)
    new = out[:, enc["input_ids"].shape[1]:]
    results = []
    for row, budget in zip(new, max_new_tokens, strict=True):
        tokens = [int(t) for t in row if int(t) != tokenizer.pad_token_id][:budget]
        results.append((tokenizer.decode(tokens, skip_special_tokens=True), len(tokens)))
    return results


def greedy_answers(model: Any, tokenizer: Any, conversations: list[list[dict[str, Any]]],
                   max_new_tokens: int, batch_size: int = 8, calculator: bool = False,
                   max_calls: int = MAX_CALLS) -> list[str]:
    """Greedy completions to chat prompts (trailing assistant turns dropped), batched.

    With ``calculator``, each answer is decoded as ``quanta serve`` decodes it for an
    adapter trained with calculation traces: generation stops at ``>>``, the value is
    inserted, and the answer continues (a new round for the sequences that stopped)."""

    prompts = []
    for conversation in conversations:
        messages = list(conversation)
        while messages and messages[-1]["role"] == "assistant":
            messages.pop()
        prompts.append(tokenizer.apply_chat_template(
            [{"role": m["role"], "content": m["content"]} for m in messages],
            tokenize=False, add_generation_prompt=True))
    texts = [""] * len(prompts)
    budgets = [max_new_tokens] * len(prompts)
    calls = [0] * len(prompts)
    active = list(range(len(prompts)))
    side = tokenizer.padding_side
    tokenizer.padding_side = "left"
    model.eval()
    try:
        while active:
            still = []
            for start in range(0, len(active), batch_size):
                batch = active[start:start + batch_size]
                stop = [CLOSE] if calculator else None
                outputs = _generate(model, tokenizer, [prompts[i] + texts[i] for i in batch],
                                    [budgets[i] for i in batch], stop)
                for i, (new, used) in zip(batch, outputs, strict=True):
                    budgets[i] -= used
                    cut = new.find(CLOSE)
                    if not calculator or cut < 0 or budgets[i] <= 0 or calls[i] >= max_calls:
                        texts[i] += new
                        continue
                    texts[i] += new[:cut]
                    texts[i] += insertion(texts[i])
                    calls[i] += 1
                    still.append(i)
            active = still
    finally:
        tokenizer.padding_side = side
    return texts


@dataclass
class Rollout:
    """One sampled completion with calculator decoding, as token ids.

    ``generated[k]`` is 1 where the model sampled token ``k`` and 0 where the calculator
    inserted it (a value after ``>>``): a policy gradient must credit only the former."""

    ids: list[int] = field(default_factory=list)
    generated: list[int] = field(default_factory=list)
    calls: int = 0

    def extend(self, ids: list[int], generated: bool) -> None:
        self.ids += ids
        self.generated += [int(generated)] * len(ids)


def _new_tokens(row: Any, eos: set[int], pad: int | None, budget: int) -> tuple[list[int], bool]:
    """The tokens one sequence generated in a round (its EOS kept, padding dropped), and
    whether it ended with EOS."""
    tokens: list[int] = []
    for token in (int(t) for t in row[:budget]):
        if token in eos:
            return [*tokens, token], True
        if token == pad:  # a sequence stopped early (at ">>") is padded to the batch's end
            break
        tokens.append(token)
    return tokens, False


def sample_with_calculator(model: Any, tokenizer: Any, prompt_ids: list[list[int]],
                           generation_config: Any, max_new_tokens: int,
                           max_calls: int = MAX_CALLS) -> list[Rollout]:
    """Sampled completions to tokenized prompts, decoded with the calculator at the token
    level: each round samples until ``>>`` (a stop string), EOS or the budget; a sequence
    that closed a calculation gets the value's tokens appended and goes on in the next
    round from exactly the ids so far (no re-tokenization, so the ids are what the model
    saw). ``max_new_tokens`` counts generated tokens only, as a served completion's
    ``max_tokens`` does: inserted values come on top."""
    eos_config = generation_config.eos_token_id
    eos = {int(e) for e in (eos_config if isinstance(eos_config, list) else [eos_config])
           if e is not None} or {tokenizer.eos_token_id}
    rollouts = [Rollout() for _ in prompt_ids]
    budgets = [max_new_tokens] * len(prompt_ids)
    active = list(range(len(prompt_ids)))
    while active:
        still: list[int] = []
        calculating = [i for i in active if rollouts[i].calls < max_calls]
        writing = [i for i in active if rollouts[i].calls >= max_calls]  # ">>" is no stop
        for group, stop in ((calculating, True), (writing, False)):
            if group:
                still += _round(model, tokenizer, prompt_ids, group, rollouts, budgets,
                                generation_config, eos, stop)
        active = still
    return rollouts


def _closes(tokenizer: Any, ids: list[int]) -> bool:
    return tokenizer.decode(ids, skip_special_tokens=True).endswith(CLOSE)


def _round(model: Any, tokenizer: Any, prompt_ids: list[list[int]], group: list[int],
           rollouts: list[Rollout], budgets: list[int], generation_config: Any,
           eos: set[int], stop: bool) -> list[int]:
    """One sampling round for the sequences ``group``; returns those that go on (a value
    was inserted and budget is left)."""
    import copy

    import torch

    pad = tokenizer.pad_token_id
    device = next(model.parameters()).device
    sequences = [prompt_ids[i] + rollouts[i].ids for i in group]
    width = max(len(s) for s in sequences)
    input_ids = torch.tensor([[pad] * (width - len(s)) + s for s in sequences], device=device)
    attention = torch.tensor([[0] * (width - len(s)) + [1] * len(s) for s in sequences],
                             device=device)
    config = copy.deepcopy(generation_config)
    config.max_new_tokens = max(budgets[i] for i in group)
    config.stop_strings = [CLOSE] if stop else None
    with torch.no_grad():
        out = model.generate(input_ids=input_ids, attention_mask=attention,
                             generation_config=config, tokenizer=tokenizer)
    going_on = []
    for i, row in zip(group, out[:, width:], strict=True):
        tokens, ended = _new_tokens(row, eos, pad, budgets[i])
        rollout = rollouts[i]
        if ended and stop and _closes(tokenizer, rollout.ids + tokens[:-1]):
            # Stopped at ">>" and padded after it, where padding is the EOS token.
            tokens, ended = tokens[:-1], False
        budgets[i] -= len(tokens)
        closing: list[int] = []
        if stop and not ended and budgets[i] > 0:
            tokens, closing = _cut_at_close(tokenizer, rollout.ids, tokens)
        rollout.extend(tokens, generated=True)
        rollout.extend(closing, generated=False)
        if not stop or ended or budgets[i] <= 0 or not _closes(tokenizer, rollout.ids):
            continue
        text = tokenizer.decode(rollout.ids, skip_special_tokens=True)
        value = insertion(text[:-len(CLOSE)])[len(CLOSE):]
        rollout.extend(tokenizer(value, add_special_tokens=False)["input_ids"], generated=False)
        rollout.calls += 1
        going_on.append(i)
    return going_on


def _cut_at_close(tokenizer: Any, before: list[int], tokens: list[int]
                  ) -> tuple[list[int], list[int]]:
    """A round that stopped at ``>>`` inside a token running past it (``>>,``): the
    tokens before that one, and the text up to ``>>`` tokenized again (what the server
    keeps: it cuts the text at ``>>``). Tokens that end at ``>>`` come back as they are."""
    if not tokens or _closes(tokenizer, before + tokens):
        return tokens, []
    seen = tokenizer.decode(before, skip_special_tokens=True).count(CLOSE)
    for k in range(1, len(tokens) + 1):
        text = tokenizer.decode(before + tokens[:k], skip_special_tokens=True)
        if text.count(CLOSE) > seen:
            head = tokenizer.decode(before + tokens[:k - 1], skip_special_tokens=True)
            piece = text[len(head):text.rindex(CLOSE) + len(CLOSE)]
            return tokens[:k - 1], tokenizer(piece, add_special_tokens=False)["input_ids"]
    return tokens, []
