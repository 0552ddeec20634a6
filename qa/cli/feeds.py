"""`qa feeds add | list | remove | update`. Feeds belong to a collection (`--collection`); `update`
ingests new or changed entries into it."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import TYPE_CHECKING, Annotated

import typer

from ..library import make_fetcher, open_library
from ..settings import Settings
from . import documents, views
from ._help import Command, Group
from ._shared import article_progress, err, out, progress_mode, reported, waiting

if TYPE_CHECKING:
    from ..ingest.feeds import FeedList

feeds_app = typer.Typer(cls=Group, help="Follow RSS and Atom feeds: add, list, remove, update.", no_args_is_help=True)
JsonOption = Annotated[bool, typer.Option("--json", help="Print as JSON.")]


def _feed_list(settings: Settings) -> FeedList:
    from ..ingest.feeds import FeedList

    return FeedList(settings.home, settings.collection)


@feeds_app.command("add", cls=Command)
def add(
    ctx: typer.Context, url: Annotated[str, typer.Argument(help="The feed's URL (or a page that links to its feed).")]
) -> None:
    """Follow a feed; `qa feeds update` then ingests its entries."""
    from ..ingest.feeds import add_feed

    with reported():
        settings = ctx.obj.settings()
        with make_fetcher(settings) as fetcher:
            feed, entries = add_feed(_feed_list(settings), url, fetcher=fetcher)
        out.print(
            f"Added {feed.title or feed.url} ({feed.url}), {entries} entries now. "
            "Run `qa feeds update` to ingest them.",
            soft_wrap=True,
        )


@feeds_app.command("list", cls=Command)
def list_feeds(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """The feeds this collection follows: title, URL, entries ingested, last update."""
    with reported():
        feeds = _feed_list(ctx.obj.settings()).load()
        if as_json:
            out.print_json(
                json.dumps(
                    [
                        {k: v for k, v in asdict(f).items() if k != "entries"} | {"entries": len(f.entries)}
                        for f in feeds
                    ]
                )
            )
        elif not feeds:
            out.print("No feeds yet: add one with `qa feeds add URL`.")
        else:
            out.print(views.feeds_table(feeds))
            for line in views.pending_lines(feeds):
                out.print(line, soft_wrap=True)


@feeds_app.command("remove", cls=Command)
def remove(
    ctx: typer.Context, url: Annotated[str, typer.Argument(help="The feed's URL, as `qa feeds list` shows it.")]
) -> None:
    """Stop following a feed (its articles stay; `qa remove` deletes articles)."""
    from ..ingest.feeds import remove_feed

    with reported():
        feed = remove_feed(_feed_list(ctx.obj.settings()), url)
        out.print(f"Removed the feed {feed.title or feed.url}; its articles stay in the store.")


@feeds_app.command("update", cls=Command)
def update(
    ctx: typer.Context, as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False
) -> None:
    """Fetch every feed and ingest its new or changed entries; unchanged feeds and entries are not fetched again."""
    from ..ingest.feeds import update_feeds

    with reported():
        settings = ctx.obj.settings()
        feed_list = _feed_list(settings)
        if not feed_list.load():
            out.print("No feeds yet: add one with `qa feeds add URL`.")
            return
        library = open_library(settings, ingesting=True)
        with (
            article_progress("Feeds", progress_mode(as_json)) as on_progress,
            make_fetcher(settings) as fetcher,
        ):
            report = update_feeds(
                feed_list,
                fetcher=fetcher,
                library=library,
                chunk_tokens=settings.chunk_tokens,
                overlap=settings.chunk_overlap,
                max_bytes=settings.max_file_mb * 1_000_000,
                near_duplicates=settings.near_duplicates,
                on_progress=on_progress,
                on_wait=waiting,
            )
        if as_json:
            out.print_json(
                json.dumps({"feeds": [asdict(f) for f in report.feeds], "ingest": documents.ingest_json(report.ingest)})
            )
        else:
            for line, failed in views.feed_lines(report.feeds):
                (err if failed else out).print(line, soft_wrap=True)
            for problem in views.ingest_problems(report.ingest):
                err.print(problem, soft_wrap=True)
            out.print(views.ingest_summary(report.ingest))
        if report.ingest.interrupted:
            err.print(
                "[yellow]Interrupted: finished articles are saved; run `qa feeds update` again to finish.[/yellow]"
            )
            raise typer.Exit(130)
        if report.failed or report.ingest.failed:
            raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.add_typer(feeds_app, name="feeds")
