"""Held-out physics accuracy of an export, measured the way the export is served.

Perplexity says how far an export's token distribution moved; accuracy says whether the
answers are still right. For an adapter whose after-training evaluation measured physics
accuracy, each export answers the same held-out problems greedily (GGUF through
llama.cpp, GPTQ through gptqmodel in its own environment), with calculator decoding when
the adapter writes calculation traces, as ``quanta serve`` would; the row records both
numbers. An export that loses more than ``DEGRADED_POINTS`` against its adapter is marked
``degraded``: shown so by ``quanta export``, ``quanta adapters show`` and the demo report,
and never the export the llama.cpp engine serves when the adapter has another.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

from quanta.calculator import Delta, calculator_decode
from quanta.domains.physics import PhysicsProblem
from quanta.registry import tables as t

DEGRADED_POINTS = 5.0  # percentage points of held-out accuracy


def reference_accuracy(adapter: t.Adapter | None, n: int | None = None
                       ) -> dict[str, Any] | None:
    """The adapter's own held-out physics result (its after-training evaluation), on its
    first ``n`` problems when it recorded each problem's result (else on all of them)."""
    after = ((adapter.eval or {}).get("after") or {}) if adapter is not None else {}
    if not after.get("physics_n"):
        return None
    results = after.get("physics_results")
    if n is None or not results or n >= len(results):
        return after
    return {**after, "physics_n": n, "physics_correct": sum(results[:n]),
            "physics_accuracy": sum(results[:n]) / n, "physics_results": results[:n]}


def _prompt(tokenizer: Any, question: str) -> str:
    from quanta.domains.physics import SYSTEM_PROMPT

    return tokenizer.apply_chat_template(
        [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": question}],
        tokenize=False, add_generation_prompt=True)


def _llama_source(llm: Any):
    """One greedy llama.cpp completion per segment, as calculator decoding drives it."""

    async def complete(prompt: str, max_tokens: int | None,
                       stop: Sequence[str]) -> AsyncIterator[Delta]:
        out = llm.create_completion(prompt, max_tokens=max_tokens or 0, stop=list(stop),
                                    temperature=0.0, top_k=1, seed=0)
        choice = out["choices"][0]
        if choice["text"]:
            yield Delta(text=choice["text"])
        usage = out.get("usage") or {}
        yield Delta(finish_reason=choice.get("finish_reason") or "stop",
                    prompt_tokens=usage.get("prompt_tokens"),
                    completion_tokens=usage.get("completion_tokens"))

    return complete


async def _answer(llm: Any, prompt: str, max_tokens: int, calculator: bool) -> str:
    source = _llama_source(llm)
    text = ""
    if calculator:
        async for delta in calculator_decode(prompt, source, max_tokens=max_tokens):
            text += delta.text
    else:
        async for delta in source(prompt, max_tokens, ()):
            text += delta.text
    return text


def gguf_answers(model_path: Path, base_dir: Path, problems: list[PhysicsProblem], *,
                 calculator: bool, lora_path: Path | None = None,
                 max_tokens: int = 128) -> list[str]:
    """Greedy llama.cpp answers to held-out problems, asked as the demo asks them (the
    physics system prompt, the base model's chat template)."""
    from transformers import AutoTokenizer

    from quantize.quality import load_llama

    tokenizer = AutoTokenizer.from_pretrained(str(base_dir))
    llm = load_llama(model_path, lora_path=lora_path)
    try:
        return [asyncio.run(_answer(llm, _prompt(tokenizer, p.question), max_tokens,
                                    calculator)) for p in problems]
    finally:
        llm.close()


def gguf_accuracy(model_path: Path, base_dir: Path, reference: dict[str, Any], *,
                  lora_path: Path | None = None, max_tokens: int = 128) -> dict[str, Any]:
    """Accuracy of a GGUF export on the held-out problems its adapter was evaluated on."""
    from quanta.domains.physics import check_answer, held_out_problems

    problems = held_out_problems(int(reference["physics_n"]))
    calculator = bool(reference.get("physics_calculator"))
    answers = gguf_answers(model_path, base_dir, problems, calculator=calculator,
                           lora_path=lora_path, max_tokens=max_tokens)
    correct = sum(bool(check_answer(p, a)) for p, a in zip(problems, answers, strict=True))
    return accuracy_metrics(correct, len(problems), calculator, reference)


def gptq_accuracy(model_dir: Path, reference: dict[str, Any], workdir: Path, *,
                  max_tokens: int = 128) -> dict[str, Any]:
    """Accuracy of a GPTQ export (loaded by gptqmodel in its own environment) on the
    held-out problems its adapter was evaluated on."""
    from quanta.domains.physics import check_answer, held_out_problems, problem_to_chat
    from quantize.gptq import gptq_answers

    problems = held_out_problems(int(reference["physics_n"]))
    calculator = bool(reference.get("physics_calculator"))
    conversations = [[m for m in problem_to_chat(p)["messages"] if m["role"] != "assistant"]
                     for p in problems]
    answers = gptq_answers(model_dir, conversations, workdir, calculator=calculator,
                           max_tokens=max_tokens)
    correct = sum(bool(check_answer(p, a)) for p, a in zip(problems, answers, strict=True))
    return accuracy_metrics(correct, len(problems), calculator, reference)


def accuracy_metrics(correct: int, n: int, calculator: bool, reference: dict[str, Any]
                     ) -> dict[str, Any]:
    """What an export row records: its accuracy, the adapter's, and whether it degraded."""
    accuracy = correct / n
    drop = round(100.0 * (float(reference["physics_accuracy"]) - accuracy), 6)
    return {"physics_accuracy": round(accuracy, 4), "physics_correct": correct,
            "physics_n": n, "physics_calculator": calculator,
            "reference_accuracy": reference["physics_accuracy"],
            "accuracy_drop_points": round(drop, 2), "degraded": drop > DEGRADED_POINTS}


def is_degraded(metrics: dict[str, Any] | None) -> bool:
    return bool((metrics or {}).get("degraded"))
