"""The demo's report: ``index.md`` plus PNG plots (matplotlib, headless)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from quanta.console import fmt_metric


@dataclass
class DemoResults:
    """Everything the demo measured; filled in step by step."""

    base_model: str = ""
    adapter: str = ""
    quick: bool = False
    precision: dict[str, Any] = field(default_factory=dict)
    seconds_per_step: float | None = None
    timings: dict[str, float] = field(default_factory=dict)
    loss_curve: list[tuple[int, float]] = field(default_factory=list)
    eval_before: dict[str, Any] = field(default_factory=dict)
    eval_after: dict[str, Any] = field(default_factory=dict)
    examples: list[dict[str, str]] = field(default_factory=list)
    exports: list[dict[str, Any]] = field(default_factory=list)
    by_split: dict[str, Any] = field(default_factory=dict)  # demo.accuracy.SplitAccuracy
    served: list[dict[str, str]] = field(default_factory=list)
    eval_id: str = ""  # the demo's eval on the tune API (demo.evals)
    eval_runs: list[dict[str, Any]] = field(default_factory=list)  # one per model and engine
    notes: list[str] = field(default_factory=list)


def plot_loss(curve: list[tuple[int, float]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    steps, losses = zip(*curve, strict=True) if curve else ((), ())
    ax.plot(steps, losses, marker="o", markersize=3)
    ax.set(xlabel="step", ylabel="training loss", title="Training loss")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_accuracy(before: dict[str, Any], after: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = ["base", "adapter"]
    values = [100 * float(before.get("physics_accuracy") or 0.0),
              100 * float(after.get("physics_accuracy") or 0.0)]
    fig, ax = plt.subplots(figsize=(4.5, 3.5))
    bars = ax.bar(labels, values, color=["#9aa5b1", "#2b8a3e"])
    ax.bar_label(bars, fmt="%.0f%%")
    ax.set(ylabel="held-out physics accuracy (%)", ylim=(0, 100),
           title="Physics answers before / after")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")[:300]


def _by_split(by_split: dict[str, Any]) -> list[str]:
    """Accuracy per held-out split for every row (base, adapter, calculator, exports), and
    a few answers side by side."""
    n, correct = by_split["n"], by_split["correct"]
    splits = list(next(iter(correct.values())))
    lines = ["## Held-out accuracy by split", "",
             f"{n} problems per split: other numbers, a phrasing training never used, "
             "families training never saw. Exports answer through their own engine, with "
             "calculator decoding.", "",
             "| | " + " | ".join(f"by {s}" for s in splits) + " |",
             "|---|" + "---|" * len(splits)]
    for row, scores in correct.items():
        lines.append(f"| {row} | " + " | ".join(f"{scores[s]}/{n} ({100 * scores[s] / n:.0f}%)"
                                                for s in splits) + " |")
    rows = [row for row in correct if row in by_split["samples"][0]] if by_split[
        "samples"] else []
    if rows:
        lines += ["", "| split | question | expected | " + " | ".join(rows) + " |",
                  "|---|---|---|" + "---|" * len(rows)]
        lines += [f"| {e['split']} | {_cell(e['question'])} | {_cell(e['expected'])} | "
                  + " | ".join(_cell(e[row]) for row in rows) + " |"
                  for e in by_split["samples"]]
    return [*lines, ""]


def _eval_runs(results: DemoResults) -> list[str]:
    """The eval's runs as the console's Evals page shows them (same numbers: both read
    the tune API's runs)."""
    lines = ["## One eval, one run per model", "",
             f"Eval `{results.eval_id}` on the tune API (OpenAI's Evals API), criterion "
             "`physics_answer`; each run asks its model through `quanta serve` as a client "
             "(calculator decoding for the adapter), answered by `quanta tune runner`.", "",
             "| run | model | status | passed | pass rate | tokens | console |",
             "|---|---|---|---|---|---|---|"]
    for row in results.eval_runs:
        rate = f"{row['passed'] / row['total']:.0%}" if row["total"] else "-"
        lines.append(f"| {row['label']} ({row['engine']}) | `{row['model']}` | {row['status']} "
                     f"| {row['passed']}/{row['total']} | {rate} | {row['tokens']} "
                     f"| [run]({row['report_url']}) |")
    return [*lines, ""]


def write_report(results: DemoResults, out_dir: Path) -> Path:
    """Write ``index.md``, ``loss.png`` and ``accuracy.png`` under ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    plot_loss(results.loss_curve, out_dir / "loss.png")
    plot_accuracy(results.eval_before, results.eval_after, out_dir / "accuracy.png")
    lines = [
        "# Quanta physics demo",
        "",
        f"Base model `{results.base_model}`, adapter `{results.adapter}`"
        + (" (quick run)" if results.quick else "") + ".",
        "",
        *([f"Computed in {results.precision['compute_dtype']} on {results.precision['device']} "
           f"{results.precision['capability']} (native bf16: "
           f"{'yes' if results.precision['native_bf16'] else 'no'}; chosen by "
           f"{results.precision['chosen_by']})"
           + (f", {results.seconds_per_step:.2f} s per training step" if results.seconds_per_step
              else "") + ".", ""] if results.precision else []),
        "## Before and after tuning",
        "",
        "| metric | base | adapter |",
        "|---|---|---|",
    ]
    for metric in sorted(set(results.eval_before) | set(results.eval_after)):
        if isinstance(results.eval_before.get(metric, results.eval_after.get(metric)), list | dict):
            continue
        lines.append(f"| {metric} | {fmt_metric(results.eval_before.get(metric))} "
                     f"| {fmt_metric(results.eval_after.get(metric))} |")
    lines += ["", "![training loss](loss.png) ![accuracy](accuracy.png)", ""]
    if results.examples:
        lines += ["## Example answers (held-out problems)", "",
                  "| question | expected | base | adapter |", "|---|---|---|---|"]
        lines += [f"| {_cell(e['question'])} | {_cell(e.get('expected', ''))} "
                  f"| {_cell(e['base'])} | {_cell(e['adapter'])} |" for e in results.examples]
        lines.append("")
    if results.exports:
        lines += ["## Exports", "", "Held-out physics accuracy is measured through each "
                  "export's own engine, with calculator decoding for an adapter trained on "
                  "calculation traces; an export more than 5 points below its adapter is "
                  "marked degraded.", "",
                  "| format | size (MB) | perplexity | reference | ratio | accuracy "
                  "| adapter's accuracy |", "|---|---|---|---|---|---|---|"]
        for e in results.exports:
            name = f"{e['format']} (degraded)" if e.get("degraded") else e["format"]
            lines.append(f"| {name} | {e['bytes'] / 1e6:.1f} "
                         f"| {fmt_metric(e.get('perplexity'))} "
                         f"| {fmt_metric(e.get('reference_perplexity'))} "
                         f"| {fmt_metric(e.get('perplexity_ratio'))} "
                         f"| {fmt_metric(e.get('physics_accuracy'))} "
                         f"| {fmt_metric(e.get('reference_accuracy'))} |")
        lines.append("")
    if results.by_split:
        lines += _by_split(results.by_split)
    if results.served:
        lines += ["## Served answers", "", "| engine | question | expected | base | adapter |",
                  "|---|---|---|---|---|"]
        lines += [f"| {s['engine']} | {_cell(s['question'])} | {_cell(s.get('expected', ''))} "
                  f"| {_cell(s['base'])} | {_cell(s['adapter'])} |" for s in results.served]
        lines.append("")
    if results.eval_runs:
        lines += _eval_runs(results)
    lines += ["## Wall time per step", "", "| step | seconds |", "|---|---|"]
    lines += [f"| {step} | {seconds:.1f} |" for step, seconds in results.timings.items()]
    if results.notes:
        lines += ["", "## Notes", ""] + [f"- {note}" for note in results.notes]
    (out_dir / "results.json").write_text(json.dumps(asdict(results), indent=2, default=str))
    index = out_dir / "index.md"
    index.write_text("\n".join(lines) + "\n")
    return index
