"""``quanta console``: the web console, served next to the tune and serve APIs."""

from __future__ import annotations

from typing import Annotated

import typer


def console_command(
    tune_url: Annotated[str, typer.Option(help="The tune API (quanta tune api)")] =
        "http://127.0.0.1:8100",
    serve_url: Annotated[str | None, typer.Option(
        help="The serving API (quanta serve), for the playground")] = "http://127.0.0.1:8000",
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    port: Annotated[int, typer.Option()] = 8200,
) -> None:
    """Serve the web console at http://HOST:PORT/console/ (sign in with an API key)."""
    import uvicorn

    from console.app import create_app

    uvicorn.run(create_app(tune_url, serve_url), host=host, port=port, log_level="warning")


def register(app: typer.Typer) -> None:
    app.command("console")(console_command)
