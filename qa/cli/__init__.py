"""The command line: `qa` and its global options; each command group lives in a module of its own
(ingest, ask, articles, doctor, engine, chat, summarise, evaluate, feeds) and is registered here.

Exit codes: 0 success; 1 an error, or some inputs failed; 2 bad usage; 130 interrupted.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from .. import __version__
from . import articles, ask, chat, doctor, engine, evaluate, feeds, ingest, summarise
from ._help import Group
from ._shared import Context, err, out, show_notices

app = typer.Typer(
    cls=Group,
    help="Ask cited questions of your news articles, offline.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)


def _show_version(wanted: bool) -> None:
    if wanted:  # eager: answered before click asks for a command
        out.print(f"qa {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    ctx: typer.Context,
    home: Annotated[
        str | None, typer.Option("--home", help="Data directory (default: QA_HOME or the user data dir).")
    ] = None,
    collection: Annotated[
        str | None, typer.Option("--collection", "-c", help="Collection to use (default: articles).")
    ] = None,
    embedder: Annotated[
        str | None, typer.Option("--embedder", help="minilm (offline default) or openai:MODEL.")
    ] = None,
    version: Annotated[
        bool,
        typer.Option("--version", help="Show the version and exit.", is_eager=True, callback=_show_version),
    ] = False,
) -> None:
    """qa: ingest news articles, then ask questions and get answers with verified citations."""
    show_notices()
    ctx.obj = Context({"home": home, "collection": collection, "embedder": embedder})


for group in (ingest, ask, articles, doctor, engine, chat, summarise, evaluate, feeds):  # the order `qa --help` lists
    group.register(app)


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        err.print("[yellow]Interrupted.[/yellow]")
        sys.exit(130)
