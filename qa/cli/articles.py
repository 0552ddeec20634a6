"""`qa sources`, `qa remove`, `qa stats`: the articles of the collection."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer

from ..errors import UsageError
from ..library import open_store
from . import documents, views
from ._help import Command
from ._shared import err, out, reported, waiting


def sources(
    ctx: typer.Context, as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False
) -> None:
    """List the articles in the store: title, source, date, chunks."""
    with reported():
        articles = open_store(ctx.obj.settings()).articles()
        if as_json:
            out.print_json(json.dumps([documents.article_json(a) for a in articles]))
        elif not articles:
            out.print("No articles yet: add some with `qa ingest PATH`.")
        else:
            out.print(views.sources_table(articles, out.width))


MIN_PREFIX = 4  # as every command that takes an article id


def _confirm_all(count: int, collection: str) -> None:
    """`remove --all` asks on a terminal; without one it needs --yes."""
    if not sys.stdin.isatty():
        raise UsageError(
            f"`qa remove --all` would delete all {count} articles of {collection!r}; "
            "add --yes to confirm it without a terminal."
        )
    if not typer.confirm(f"Delete all {count} articles of the collection {collection!r}?", default=False, err=True):
        err.print("Nothing removed.")
        raise typer.Exit(1)


def remove(
    ctx: typer.Context,
    ids: Annotated[
        list[str] | None, typer.Argument(help="Article ids (or unique prefixes, as `qa sources` shows them).")
    ] = None,
    all_: Annotated[bool, typer.Option("--all", help="Remove every article in the collection.")] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="With --all: do not ask to confirm (for scripts).")] = False,
) -> None:
    """Remove articles (their chunks, vectors and index entries)."""
    with reported():
        store = open_store(ctx.obj.settings())
        known = [a.article.id for a in store.articles()]
        if all_:
            chosen = known
            if chosen and not yes:
                _confirm_all(len(chosen), store.name)
        elif ids:
            chosen = []
            for raw in ids:
                if len(raw) < MIN_PREFIX and raw not in known:
                    raise UsageError(
                        f"{raw!r} is too short to name an article; give at least {MIN_PREFIX} characters of its id "
                        "(see `qa sources`)."
                    )
                matches = [k for k in known if k.startswith(raw)]
                if len(matches) != 1:
                    raise UsageError(f"{raw!r} matches {len(matches)} articles; give a longer id (see `qa sources`).")
                chosen.append(matches[0])
        else:
            raise UsageError("Name the articles to remove (ids from `qa sources`), or pass --all.")
        with store.write_lock(on_wait=waiting):
            removed = store.remove(chosen)
        out.print(f"Removed {removed} article(s).")


def stats(ctx: typer.Context, as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False) -> None:
    """Counts for the collection: articles, chunks, vectors, sources, dates."""
    with reported():
        settings = ctx.obj.settings()
        store = open_store(settings)
        articles = store.articles()
        dates = sorted(a.article.date for a in articles if a.article.date)
        data = {
            "collection": store.name,
            "home": str(settings.home),
            "articles": len(articles),
            "chunks": store.chunk_count(),
            "vectors": store.vector_count(),
            "embedder": store.embedder,
            "sources": len({a.article.source for a in articles}),
            "first_date": dates[0] if dates else None,
            "last_date": dates[-1] if dates else None,
            "undated": sum(1 for a in articles if not a.article.date),
        }
        if as_json:
            out.print_json(json.dumps(data))
        else:
            for key, value in data.items():
                out.print(f"[bold]{key:>11}[/bold]  {value}")


def register(app: typer.Typer) -> None:
    app.command(cls=Command)(sources)
    app.command(cls=Command)(remove)
    app.command(cls=Command)(stats)
