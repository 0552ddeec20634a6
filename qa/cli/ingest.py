"""`qa ingest`: files, folders, globs and web pages into the collection."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from ..library import make_fetcher, open_library
from . import documents, views
from ._help import Command
from ._shared import article_progress, err, out, progress_mode, reported, waiting


def ingest(
    ctx: typer.Context,
    paths: Annotated[list[str], typer.Argument(help="Files, folders (recursive), glob patterns or http(s) URLs.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Add articles (.txt .md .html .pdf .json .jsonl, or web pages by URL) to the store; unchanged ones are skipped."""
    from ..ingest.pipeline import ingest as run_ingest

    with reported():
        settings = ctx.obj.settings()
        library = open_library(settings, ingesting=True)
        with article_progress("Ingesting", progress_mode(as_json)) as on_progress:
            report = run_ingest(
                paths,
                library=library,
                chunk_tokens=settings.chunk_tokens,
                overlap=settings.chunk_overlap,
                max_bytes=settings.max_file_mb * 1_000_000,
                on_progress=on_progress,
                on_wait=waiting,
                fetcher=make_fetcher(settings),
                near_duplicates=settings.near_duplicates,
            )
        if as_json:
            out.print_json(json.dumps(documents.ingest_json(report)))
        else:
            for line in views.ingest_problems(report):
                err.print(line, soft_wrap=True)  # one line per problem, whatever the width
            out.print(views.ingest_summary(report))
        if report.interrupted:
            err.print(
                "[yellow]Interrupted: finished articles are saved; run the same command again to finish.[/yellow]"
            )
            raise typer.Exit(130)
        if report.failed:
            raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command(cls=Command)(ingest)
