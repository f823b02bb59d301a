"""``quanta demo``: the physics expert end to end (see README)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)


def demo(
    quick: Annotated[bool, typer.Option(help="A few-minute run: fewer steps, smaller evals")
                     ] = False,
    report_dir: Annotated[Path, typer.Option(help="Where index.md and the plots go")
                          ] = Path("demo-report"),
    serve: Annotated[bool, typer.Option(help="Serve and ask (vLLM, then llama.cpp)")] = True,
) -> None:
    """Import SmolLM2, tune a physics adapter, export it, serve it, and write a report."""
    from rich.console import Console

    from demo.report import write_report
    from demo.steps import Demo, DemoPlan
    from quanta.precision import resolve
    from quanta.registry import Registry

    console = Console()
    registry = Registry.open()
    precision = resolve()  # what the worker will choose too: same machine, same rule
    run = Demo(registry, DemoPlan.for_run(quick, precision), precision,
               registry.settings.resolved_home / "demo", console)
    try:
        run.import_base_model()
        run.tune()
        run.export()
        run.accuracy()
        if serve:
            run.serve("vllm")
            run.serve("llama-cpp")
    except KeyboardInterrupt:
        console.print("\n[yellow]interrupted[/yellow]: every process the demo started is "
                      "stopped; run it again to continue from the registry")
        raise typer.Exit(130) from None
    finally:
        run.close()
        if run.results.adapter:
            index = write_report(run.results, report_dir)
            console.print(f"report: {index}")
    console.rule("[bold green]done")
    for step, seconds in run.results.timings.items():
        console.print(f"{step}: {seconds:.0f} s")
