"""`qa feeds add | list | remove | update`: registered on the app of qa/cli.py.

Feeds belong to a collection (`--collection`); `update` ingests new or changed entries into it.
"""

from __future__ import annotations

import json
from dataclasses import asdict

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from . import views
from . import _embedder, _fetcher, _store, app, err, out, reported
from ..settings import Settings

feeds_app = typer.Typer(help="Follow RSS and Atom feeds: add, list, remove, update.", no_args_is_help=True)
app.add_typer(feeds_app, name="feeds")


def _feed_list(settings: Settings):
    from ..ingest.feeds import FeedList

    return FeedList(settings.home, settings.collection)


@feeds_app.command("add")
def add(ctx: typer.Context, url: str = typer.Argument(..., help="The feed's URL (or a page that links to its feed).")) -> None:
    """Follow a feed; `qa feeds update` then ingests its entries."""
    from ..ingest.feeds import add_feed

    with reported():
        settings = ctx.obj.settings()
        with _fetcher(settings) as fetcher:
            feed, entries = add_feed(_feed_list(settings), url, fetcher=fetcher)
        out.print(f"Added {feed.title or feed.url} ({feed.url}), {entries} entries now. "
                  "Run `qa feeds update` to ingest them.", soft_wrap=True)


@feeds_app.command("list")
def list_feeds(ctx: typer.Context, as_json: bool = typer.Option(False, "--json", help="Print as JSON.")) -> None:
    """The feeds this collection follows: title, URL, entries ingested, last update."""
    with reported():
        feeds = _feed_list(ctx.obj.settings()).load()
        if as_json:
            out.print_json(json.dumps([{k: v for k, v in asdict(f).items() if k != "entries"} | {"entries": len(f.entries)}
                                       for f in feeds]))
            return
        if not feeds:
            out.print("No feeds yet: add one with `qa feeds add URL`.")
            return
        table = Table(show_edge=False)
        for name in ("title", "url", "entries", "last update", "status"):
            table.add_column(name, overflow="fold")
        for f in feeds:
            table.add_row(f.title or "-", f.url, str(len(f.entries)), f.checked or "never", f.status or "-")
        out.print(table)


@feeds_app.command("remove")
def remove(ctx: typer.Context, url: str = typer.Argument(..., help="The feed's URL, as `qa feeds list` shows it.")) -> None:
    """Stop following a feed (its articles stay; `qa remove` deletes articles)."""
    from ..ingest.feeds import remove_feed

    with reported():
        feed = remove_feed(_feed_list(ctx.obj.settings()), url)
        out.print(f"Removed the feed {feed.title or feed.url}; its articles stay in the store.")


@feeds_app.command("update")
def update(ctx: typer.Context, as_json: bool = typer.Option(False, "--json", help="Print the report as JSON.")) -> None:
    """Fetch every feed and ingest its new or changed entries; unchanged feeds and entries are not fetched again."""
    from ..ingest.feeds import update_feeds
    from ..search.bm25 import LexicalIndex

    with reported():
        settings = ctx.obj.settings()
        feed_list = _feed_list(settings)
        if not feed_list.load():
            out.print("No feeds yet: add one with `qa feeds add URL`.")
            return
        embedder = _embedder(settings)
        store = _store(settings, embedder)
        index = LexicalIndex(settings.home / "bm25" / store.name)
        index.load()
        progress = Progress(TextColumn("[bold]Feeds"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                            TextColumn("{task.description}"), console=err, disable=as_json or not err.is_terminal)
        with progress, _fetcher(settings) as fetcher:
            task = progress.add_task("", total=None)
            report = update_feeds(
                feed_list, fetcher=fetcher, store=store, embedder=embedder, index=index,
                chunk_tokens=settings.chunk_tokens, overlap=settings.chunk_overlap,
                max_bytes=settings.max_file_mb * 1_000_000, near_duplicates=settings.near_duplicates,
                on_progress=lambda done, what: progress.update(task, completed=done, description=what[-40:]),
                on_wait=lambda message: err.print(f"[yellow]{message}[/yellow]"))
        if as_json:
            out.print_json(json.dumps({"feeds": [asdict(f) for f in report.feeds],
                                       "ingest": views.ingest_json(report.ingest)}))
        else:
            for f in report.feeds:
                name = f.title or f.url
                if f.status == "failed":
                    err.print(Text.assemble(("failed  ", "bold red"), f"{name}: {f.detail}"), soft_wrap=True)
                elif f.status == "not modified":
                    out.print(Text.assemble(("feed  ", "dim"), f"{name}: not modified"), soft_wrap=True)
                else:
                    retry = f", {f.retry} to retry next time" if f.retry else ""
                    out.print(Text.assemble(("feed  ", "dim"), f"{name}: {f.loaded} new or changed of {f.entries}"
                                                               f" entries{retry}"), soft_wrap=True)
            for line in views.ingest_problems(report.ingest):
                err.print(line, soft_wrap=True)
            out.print(views.ingest_summary(report.ingest))
        if report.ingest.interrupted:
            err.print("[yellow]Interrupted: finished articles are saved; run `qa feeds update` again to finish.[/yellow]")
            raise typer.Exit(130)
        if report.failed or report.ingest.failed:
            raise typer.Exit(1)
