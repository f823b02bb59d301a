"""``quanta demo``: the physics expert end to end (see README)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from quanta.catalog import DEFAULT_MODEL_ID


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)


def demo(
    quick: Annotated[bool, typer.Option(help="A few-minute run: fewer steps, smaller evals")
                     ] = False,
    report_dir: Annotated[Path, typer.Option(help="Where index.md and the plots go")
                          ] = Path("demo-report"),
    serve: Annotated[bool, typer.Option(help="Serve and ask (vLLM, then llama.cpp)")] = True,
    base: Annotated[str, typer.Option(help="The base model: a registry id or a catalog name "
                                           "(smollm2-135m-instruct, gemma3-270m)")
                    ] = DEFAULT_MODEL_ID,
    accept_license: Annotated[bool, typer.Option(
        "--accept-license", help="Accept the base's licence terms if importing it needs "
                                 "that (Gemma's)")] = False,
) -> None:
    """Import a base (SmolLM2 by default), tune a physics adapter, export it, serve it, and
    write a report."""
    from rich.console import Console

    from demo.report import write_report
    from demo.steps import Demo, DemoPlan
    from quanta.models import resolve_catalog_id
    from quanta.precision import resolve
    from quanta.registry import Registry

    console = Console()
    registry = Registry.open()
    precision = resolve()  # what the worker will choose too: same machine, same rule
    run = Demo(registry, DemoPlan.for_run(quick, precision), precision,
               registry.settings.resolved_home / "demo", console,
               base=resolve_catalog_id(base) or base, accept_license=accept_license)
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
