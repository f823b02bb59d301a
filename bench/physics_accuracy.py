"""Held-out physics accuracy of the demo's adapter: base, adapter, adapter with calculator
decoding, and every GGUF export, on the three held-out splits.

One run over one registry (``--model-home``: a demo's data directory, e.g. ``quanta-data``;
``--adapter``: default the newest adapter there trained with calculation traces):

* base model and adapter (transformers, greedy, the compute dtype ``quanta.precision``
  picks), the adapter once without and once with calculator decoding;
* each GGUF export of the adapter through llama.cpp, with calculator decoding;

each on ``--n`` problems of the splits by numbers, by phrasing and by family
(``quanta.domains.physics.HeldOutSplit``). Targets (issue 14): adapter with calculator
>= 60% by phrasing and >= 40% by family, base <= 10%, every export within 5 points of its
adapter.

    python bench/physics_accuracy.py --model-home quanta-data
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from quanta.config import Settings
from quanta.domains.physics import HeldOutSplit, check_answer, held_out_problems, problem_to_chat
from quanta.registry import Registry

SPLITS = tuple(HeldOutSplit)


def _accuracy(problems: list[Any], answers: list[str]) -> float:
    return sum(bool(check_answer(p, a)) for p, a in zip(problems, answers, strict=True)) / len(
        problems)


def transformers_rows(base_dir: Path, adapter_dir: Path, problems: dict[str, list[Any]],
                      max_tokens: int) -> dict[str, dict[str, float]]:
    from peft import PeftModel

    from quanta.generation import greedy_answers
    from quanta.precision import resolve
    from tune.modeling import load_base, load_tokenizer

    tokenizer = load_tokenizer(base_dir)
    model = load_base(base_dir, resolve())

    def score(calculator: bool) -> dict[str, float]:
        result = {}
        for split, items in problems.items():
            chats = [list(problem_to_chat(p)["messages"]) for p in items]
            answers = greedy_answers(model, tokenizer, chats, max_tokens, calculator=calculator)
            result[split] = _accuracy(items, answers)
        return result

    rows = {"base": score(False)}
    model = PeftModel.from_pretrained(model, str(adapter_dir))
    rows["adapter, no calculator"] = score(False)
    rows["adapter, calculator"] = score(True)
    return rows


def export_rows(registry: Registry, adapter: Any, base_dir: Path,
                problems: dict[str, list[Any]], max_tokens: int) -> dict[str, dict[str, float]]:
    from quanta.types import ExportFormat, is_gguf_format
    from quantize.accuracy import gguf_answers

    rows = {}
    for export in registry.list_exports():
        if export.adapter_id != adapter.id or not is_gguf_format(export.format):
            continue
        path = registry.blob_path(export.sha256, ".gguf")
        model, lora = path, None
        if export.format == ExportFormat.GGUF_LORA:
            base = registry.find_export(base_model_id=adapter.base_model_id,
                                        format=ExportFormat.GGUF_F16)
            assert base is not None, "a LoRA GGUF needs the base model's f16 GGUF"
            model, lora = registry.blob_path(base.sha256, ".gguf"), path
        rows[f"{export.format} (llama.cpp, calculator)"] = {
            split: _accuracy(items, gguf_answers(model, base_dir, items, calculator=True,
                                                 lora_path=lora, max_tokens=max_tokens))
            for split, items in problems.items()}
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model-home", type=Path, required=True)
    parser.add_argument("--adapter", default=None)
    parser.add_argument("--tenant", default=None)
    parser.add_argument("--n", type=int, default=30, help="problems per split")
    parser.add_argument("--max-tokens", type=int, default=160)
    args = parser.parse_args()

    from quanta.calculator import calculator_flag
    from quanta.models import model_path

    registry = Registry.open(Settings(home=args.model_home))
    tenant = args.tenant or registry.settings.default_tenant
    if args.adapter:
        adapter = registry.resolve_adapter(tenant, args.adapter)
    else:
        trained = [a for a in registry.list_adapters(tenant) if calculator_flag(a.config)]
        assert trained, "no adapter trained with calculation traces: run `quanta demo` first"
        adapter = max(trained, key=lambda a: a.created_at)
    base_dir = model_path(registry, adapter.base_model_id)
    adapter_dir = registry.materialize(adapter.sha256)
    problems = {str(split): held_out_problems(args.n, split) for split in SPLITS}

    started = time.monotonic()
    rows = transformers_rows(base_dir, adapter_dir, problems, args.max_tokens)
    rows.update(export_rows(registry, adapter, base_dir, problems, args.max_tokens))
    elapsed = time.monotonic() - started

    print(f"\nheld-out physics accuracy of {adapter.name} ({args.n} problems per split, "
          f"{elapsed:.0f} s)")
    width = max(len(name) for name in rows)
    print(f"{'':<{width}}  " + "  ".join(f"{s!s:>9}" for s in SPLITS))
    for name, scores in rows.items():
        print(f"{name:<{width}}  " + "  ".join(f"{scores[str(s)]:>9.1%}" for s in SPLITS))
    calc = rows["adapter, calculator"]
    print(f"\ntargets: by phrasing {calc['phrasing']:.1%} (>= 60%), by family "
          f"{calc['family']:.1%} (>= 40%), base by numbers {rows['base']['numbers']:.1%} "
          "(<= 10%)")
    for name, scores in rows.items():
        if "llama.cpp" in name:
            drop = max(100 * (calc[str(s)] - scores[str(s)]) for s in SPLITS)
            print(f"{name}: largest drop against the adapter {drop:+.1f} points (<= 5)")
    print(json.dumps({"adapter": adapter.name, "n": args.n, "rows": rows}))


if __name__ == "__main__":
    main()
