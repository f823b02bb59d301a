"""``quanta export``, ``quanta exports ls|worker`` and ``quanta chat``: thin over the
exporters and the export worker."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from quanta.console import fmt_bytes
from quanta.registry import ExportRecord, Registry
from quanta.types import ExportFormat

console = Console()
exports_app = typer.Typer(help="Exported models (merged, GGUF, GPTQ) and their quality.",
                          no_args_is_help=True)


def _registry() -> Registry:
    return Registry.open()


def quality_table(registry: Registry, rows: list[ExportRecord], title: str = "exports") -> Table:
    """Size, perplexity (export vs. its unquantized reference, same engine) and held-out
    physics accuracy (export vs. its adapter) per export; degraded exports say so."""
    table = Table(title=title, title_justify="left")
    table.add_column("export", overflow="fold")  # long names wrap, never cut
    for column in ("size", "ppl", "ref ppl", "ratio", "accuracy", "adapter"):
        table.add_column(column, justify="right")
    table.add_column("engine")
    for row in rows:
        m = row.metrics or {}
        name = registry.export_name(row)
        if m.get("degraded"):
            name += " [red](degraded)[/red]"
        table.add_row(name, fmt_bytes(row.bytes),
                      _num(m.get("perplexity")), _num(m.get("reference_perplexity")),
                      _num(m.get("perplexity_ratio")), _percent(m.get("physics_accuracy")),
                      _percent(m.get("reference_accuracy")), str(m.get("engine", "-")))
    return table


def _percent(value: object) -> str:
    return f"{100 * value:.1f}%" if isinstance(value, int | float) else "-"


def _num(value: object) -> str:
    return f"{value:.4f}" if isinstance(value, int | float) else "-"


def export_command(
    model: Annotated[str, typer.Argument(help="Adapter (ft:... name, id or alias) or base "
                                              "model id")],
    format: Annotated[str, typer.Option("--format", "-f",
                                        help=f"One of {', '.join(ExportFormat)}")],
    ollama: Annotated[Path | None, typer.Option(help="Also write the GGUF(s) and an Ollama "
                                                "Modelfile into this directory")] = None,
    tenant: Annotated[str | None, typer.Option(help="Tenant owning the adapter")] = None,
) -> None:
    """Export a model, measure its perplexity against the unquantized model, register it."""
    from quantize.chat import write_ollama
    from quantize.exporters import GGUF_FORMATS, check_format, export, resolve_target

    check_format(format)
    if ollama is not None and format not in GGUF_FORMATS:
        raise ValueError(f"--ollama needs a GGUF format ({', '.join(GGUF_FORMATS)})")
    registry = _registry()
    resolve_target(registry, model, tenant)  # unknown names fail before any work
    with console.status(f"exporting {model} as {format}..."):
        row = export(registry, model, format, tenant_id=tenant)
    target = resolve_target(registry, model, tenant)
    related = [r for r in registry.list_exports(target.tenant_id)
               if r.adapter_id == target.adapter_id and r.base_model_id == target.base_model_id]
    console.print(quality_table(registry, related, title=f"exports of {target.name}"))
    console.print(f"registered export [bold]{row.id}[/bold] ({format})")
    if ollama is not None:
        modelfile = write_ollama(registry, row, ollama)
        console.print(f"wrote {modelfile}: ollama create NAME -f {modelfile}")


def exports_ls(tenant: Annotated[str | None, typer.Option()] = None) -> None:
    """List exports with their size and perplexity ratio."""
    registry = _registry()
    console.print(quality_table(registry, registry.list_exports(
        tenant or registry.settings.default_tenant)))


def chat_command(
    model: Annotated[str, typer.Argument(help="Adapter or base model id, optionally "
                                              "@<a GGUF format>, e.g. @gguf-q4_k_m")],
    prompt: Annotated[str | None, typer.Option(help="Answer this one message and exit")] = None,
    max_tokens: Annotated[int, typer.Option(help="Most tokens per reply")] = 256,
    temperature: Annotated[float, typer.Option(help="0 = greedy")] = 0.0,
    system: Annotated[str | None, typer.Option(help="System prompt")] = None,
    tenant: Annotated[str | None, typer.Option()] = None,
) -> None:
    """Chat with a GGUF export locally through llama.cpp, streaming the reply."""
    from quantize.chat import load, resolve_local_model, stream_chat

    registry = _registry()
    local = resolve_local_model(registry, model, tenant)
    llm = load(local)
    messages: list[dict[str, str]] = [{"role": "system", "content": system}] if system else []
    interactive = prompt is None
    if interactive:
        console.print(f"[dim]{local.name} ({local.format}); empty line or Ctrl-D quits[/dim]")
    try:
        while True:
            if interactive:
                try:
                    text = console.input("[bold]> [/bold]")
                except EOFError:
                    break
                if not text.strip():
                    break
            else:
                text = prompt or ""
            messages.append({"role": "user", "content": text})
            reply = []
            for piece in stream_chat(llm, messages, max_tokens=max_tokens,
                                     temperature=temperature, calculator=local.calculator):
                reply.append(piece)
                sys.stdout.write(piece)
                sys.stdout.flush()
            sys.stdout.write("\n")
            messages.append({"role": "assistant", "content": "".join(reply)})
            if not interactive:
                break
    finally:
        llm.close()


def exports_worker(
    once: Annotated[bool, typer.Option(help="Run at most one export job, then exit")] = False,
    poll_interval: Annotated[float, typer.Option(help="Seconds between queue polls")] = 2.0,
    stale_after: Annotated[float, typer.Option(help="Re-queue running export jobs whose "
                                                    "heartbeat is older than this (s)")] = 60.0,
    heartbeat: Annotated[float, typer.Option(help="Heartbeat interval (seconds)")] = 5.0,
) -> None:
    """Claim queued export jobs (the tune API's ``POST .../exports``) and run them."""
    import contextlib
    import logging

    from quantize.worker import ExportWorker

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    worker = ExportWorker(_registry(), heartbeat_interval=heartbeat, stale_after=stale_after)
    console.print(f"export worker {worker.worker_id}: polling every {poll_interval:g}s")
    if once:
        ran = worker.run_once()
        console.print(f"ran {ran}" if ran else "no queued export job")
        return
    with contextlib.suppress(KeyboardInterrupt):
        worker.run_forever(poll_interval)


def register(app: typer.Typer) -> None:
    app.command("export")(export_command)
    app.command("chat")(chat_command)
    exports_app.command("ls")(exports_ls)
    exports_app.command("worker")(exports_worker)
    app.add_typer(exports_app, name="exports")
