"""Greedy chat answers with transformers, optionally with calculator decoding.

Shared by evaluation (tune), export accuracy (the GPTQ worker, which runs in its own
environment with only ``quanta`` and ``quantize`` on its path) and benchmarks. torch is
imported lazily.
"""

from __future__ import annotations

from typing import Any

from quanta.calculator import CLOSE, insertion


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
                   max_calls: int = 16) -> list[str]:
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
