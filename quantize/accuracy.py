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
from pathlib import Path
from typing import TYPE_CHECKING, Any

from quanta.calculator import calculator_decode
from quanta.domains import get_domain
from quanta.registry import AdapterRecord
from quanta.types import ExportFormat
from quantize.llama_source import llama_source, without_template_bos

if TYPE_CHECKING:
    from quanta_physics import PhysicsProblem

DEGRADED_POINTS = 5.0  # percentage points of held-out accuracy


def reference_accuracy(adapter: AdapterRecord | None, n: int | None = None
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


def _prompt(tokenizer: Any, problem: PhysicsProblem) -> str:
    return tokenizer.apply_chat_template(get_domain().problem_prompt(problem), tokenize=False,
                                         add_generation_prompt=True)


async def _answer(llm: Any, prompt: str, max_tokens: int, calculator: bool) -> str:
    source = llama_source(llm)
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
        return [asyncio.run(_answer(llm, without_template_bos(llm, _prompt(tokenizer, p)),
                                    max_tokens, calculator)) for p in problems]
    finally:
        llm.close()


def export_answers(format: ExportFormat, path: Path, base_dir: Path,
                   problems: list[PhysicsProblem], workdir: Path, *, calculator: bool,
                   base_gguf: Path | None = None, max_tokens: int = 128) -> list[str]:
    """Greedy answers from an export, loaded by the engine that serves its format: GPTQ
    through gptqmodel (in its own environment), GGUF through llama.cpp (a LoRA-GGUF over
    ``base_gguf``, the base model's f16 export)."""
    from quantize.gptq import gptq_answers

    if format == ExportFormat.GPTQ:
        prompts = [get_domain().problem_prompt(p) for p in problems]
        return gptq_answers(path, prompts, workdir, calculator=calculator, max_tokens=max_tokens)
    if not format.is_gguf:
        raise ValueError(f"{format} exports are answered by the adapter's own evaluation")
    if format == ExportFormat.GGUF_LORA:
        if base_gguf is None:
            raise ValueError("a LoRA-GGUF export answers over its base model's GGUF")
        return gguf_answers(base_gguf, base_dir, problems, calculator=calculator,
                            lora_path=path, max_tokens=max_tokens)
    return gguf_answers(path, base_dir, problems, calculator=calculator,
                        max_tokens=max_tokens)


def export_accuracy(format: ExportFormat, path: Path, base_dir: Path,
                    reference: dict[str, Any], workdir: Path, *,
                    base_gguf: Path | None = None, max_tokens: int = 128) -> dict[str, Any]:
    """An export's accuracy on the held-out problems its adapter was evaluated on
    (``reference``), decoded as the adapter was (with the calculator or not)."""
    domain = get_domain()  # the one the adapter's evaluation used (tune.train.evaluation)
    problems = domain.held_out_problems(int(reference["physics_n"]))
    calculator = bool(reference.get("physics_calculator"))
    answers = export_answers(format, path, base_dir, problems, workdir, calculator=calculator,
                             base_gguf=base_gguf, max_tokens=max_tokens)
    correct = sum(bool(domain.check_answer(p, a)) for p, a in zip(problems, answers, strict=True))
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
