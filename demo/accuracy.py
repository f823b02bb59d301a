"""Held-out physics accuracy by split: base, adapter with and without the calculator, and
every export of the adapter, each as it is served.

The demo runs it with a few problems per split; ``bench/physics_accuracy.py`` with more.
Splits (``quanta_physics.HeldOutSplit``): other numbers, an unseen phrasing, an
unseen family. Base and adapter answer through transformers in the compute dtype
``quanta.precision`` picks; GGUF exports through llama.cpp and GPTQ through gptqmodel,
with calculator decoding (``quantize.accuracy``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from quanta.calculator import calculator_flag
from quanta.registry import AdapterRecord, ExportRecord, Registry
from quanta.types import ArtifactKind, ExportFormat, is_gguf_format
from quanta_physics import (
    HeldOutSplit,
    PhysicsProblem,
    check_answer,
    held_out_problems,
    problem_prompt,
)

SPLITS = tuple(str(split) for split in HeldOutSplit)
BASE, PLAIN, CALCULATOR = "base", "adapter, no calculator", "adapter, calculator"


@dataclass
class SplitAccuracy:
    """Correct answers per row and split, and a few answers side by side."""

    n: int
    correct: dict[str, dict[str, int]] = field(default_factory=dict)
    samples: list[dict[str, Any]] = field(default_factory=list)

    def accuracy(self, row: str, split: str) -> float:
        return self.correct[row][split] / self.n

    def as_dict(self) -> dict[str, Any]:
        return {"n": self.n, "correct": self.correct, "samples": self.samples}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SplitAccuracy:
        return cls(int(data["n"]), data["correct"], data["samples"])


def _chats(problems: list[PhysicsProblem]) -> list[list[dict[str, Any]]]:
    return [problem_prompt(p) for p in problems]


def _solved(problems: list[PhysicsProblem], answers: list[str]) -> list[bool]:
    return [bool(check_answer(p, a)) for p, a in zip(problems, answers, strict=True)]


ALL_EXPORTS = frozenset(f for f in ExportFormat if f != ExportFormat.MERGED)


def accuracy_by_split(registry: Registry, adapter: AdapterRecord, n: int, max_tokens: int,
                      workdir: Path, samples: int = 3,
                      formats: frozenset[ExportFormat] = ALL_EXPORTS) -> SplitAccuracy:
    """Every row on ``n`` problems of each split: base, adapter without and with the
    calculator, and the adapter's registered exports in ``formats``."""
    from peft import PeftModel

    from quanta.generation import greedy_answers
    from quanta.models import model_path
    from quanta.precision import resolve
    from tune.train.modeling import load_base, load_tokenizer

    problems = {split: held_out_problems(n, split) for split in SPLITS}
    # One list for all splits: each row answers in one batch run (and one model load).
    flat = [p for split in SPLITS for p in problems[split]]
    result = SplitAccuracy(n)
    base_dir = model_path(registry, adapter.base_model_id)
    tokenizer = load_tokenizer(base_dir)
    answers: dict[str, list[str]] = {}

    def record(row: str, texts: list[str]) -> None:
        answers[row] = texts
        result.correct[row] = {split: sum(_solved(problems[split], texts[i * n:(i + 1) * n]))
                               for i, split in enumerate(SPLITS)}

    model = load_base(base_dir, resolve())
    record(BASE, greedy_answers(model, tokenizer, _chats(flat), max_tokens))
    model = PeftModel.from_pretrained(model, str(registry.materialize(adapter.sha256)))
    record(PLAIN, greedy_answers(model, tokenizer, _chats(flat), max_tokens))
    record(CALCULATOR, greedy_answers(model, tokenizer, _chats(flat), max_tokens,
                                      calculator=True))
    del model
    for export in registry.list_exports():
        if export.adapter_id == adapter.id and export.format in formats:
            record(str(export.format), _export_answers(registry, adapter, export, base_dir,
                                                       flat, max_tokens, workdir))
    for i, split in enumerate(SPLITS):
        for j, problem in enumerate(problems[split][:samples]):
            result.samples.append({"split": split, "question": problem.question,
                                   "expected": f"{problem.value:g} {problem.unit}",
                                   **{row: texts[i * n + j] for row, texts in answers.items()}})
    return result


def calculator_accuracy(registry: Registry, adapter: AdapterRecord, n: int, max_tokens: int,
                        splits: tuple[str, ...] = SPLITS) -> dict[str, float]:
    """The adapter's accuracy on ``n`` problems of each split, answering with calculator
    decoding (the row that matters for an adapter trained with traces), without the others."""
    problems = {split: held_out_problems(n, split) for split in splits}
    solved = calculator_solved(registry, adapter, [p for s in splits for p in problems[s]],
                               max_tokens)
    return {split: sum(solved[i * n:(i + 1) * n]) / n for i, split in enumerate(splits)}


def calculator_solved(registry: Registry, adapter: AdapterRecord, problems: list[PhysicsProblem],
                      max_tokens: int) -> list[bool]:
    """Whether the adapter's greedy answer, with calculator decoding, solves each problem."""
    from peft import PeftModel

    from quanta.generation import greedy_answers
    from quanta.models import model_path
    from quanta.precision import resolve
    from tune.train.modeling import load_base, load_tokenizer

    base_dir = model_path(registry, adapter.base_model_id)
    model = PeftModel.from_pretrained(load_base(base_dir, resolve()),
                                      str(registry.materialize(adapter.sha256))).eval()
    answers = greedy_answers(model, load_tokenizer(base_dir), _chats(problems), max_tokens,
                             calculator=True)
    return _solved(problems, answers)


def _export_answers(registry: Registry, adapter: AdapterRecord, export: ExportRecord,
                    base_dir: Path,
                    problems: list[PhysicsProblem], max_tokens: int, workdir: Path
                    ) -> list[str]:
    from quantize.accuracy import export_answers

    format = ExportFormat(export.format)
    path = (registry.blob_path(export.sha256, ".gguf") if is_gguf_format(format)
            else registry.materialize(export.sha256))
    base_gguf = None
    if format == ExportFormat.GGUF_LORA:
        base = registry.get_row(ArtifactKind.EXPORT, export.metrics["base_export_id"])
        base_gguf = registry.blob_path(base.sha256, ".gguf")
    return export_answers(format, path, base_dir, problems, workdir,
                          calculator=calculator_flag(adapter.config),  # as it is served
                          base_gguf=base_gguf, max_tokens=max_tokens)
