"""The composition root: read settings once, build the pieces, call the core, render the result.

Exit codes: 0 success; 1 an error, or some inputs failed; 2 bad usage; 130 interrupted.
"""

from __future__ import annotations

import json
import os
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator, List, Optional

import typer
from rich.console import Console
from rich.live import Live
from rich.progress import BarColumn, DownloadColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from .. import __version__
from . import views
from ..errors import QAError, UsageError
from ..settings import Settings, load_settings, prepare_environment

app = typer.Typer(help="Ask cited questions of your news articles, offline.", no_args_is_help=True,
                  add_completion=False, pretty_exceptions_enable=False, rich_markup_mode="rich")
out = Console()
err = Console(stderr=True)


@dataclass
class Context:
    overrides: dict

    def settings(self, **more: object) -> Settings:
        settings = load_settings({**self.overrides, **{k: v for k, v in more.items() if v is not None}})
        prepare_environment(settings)
        return settings


@contextmanager
def reported() -> Iterator[None]:
    """Turn QAError into one red line and an exit code; Ctrl-C into exit 130."""
    try:
        yield
    except QAError as exc:
        views.error(err, str(exc))
        raise typer.Exit(exc.exit_code)
    except KeyboardInterrupt:
        err.print("[yellow]Interrupted.[/yellow]")
        raise typer.Exit(130)
    except (typer.Exit, typer.Abort, SystemExit):
        raise
    except Exception as exc:  # a bug or a library failure: one line, the traceback only on request
        if os.environ.get("QA_DEBUG"):
            raise
        views.error(err, f"unexpected {exc.__class__.__name__}: {exc}. Run `qa doctor`; "
                         "set QA_DEBUG=1 to see the traceback and please report it.")
        raise typer.Exit(1)


def _embedder(settings: Settings):
    from ..embeddings import make_embedder

    return make_embedder(settings.embedder, settings.threads)


def _store(settings: Settings, embedder=None):
    from ..store import Store

    return Store(settings.home, settings.collection, embedder.name if embedder else None,
                 embedder.dimension if embedder else 0, chroma_url=settings.chroma_url,
                 chroma_token=settings.chroma_token)


def _library(settings: Settings):
    """(embedder, store, BM25 index) for reading; an empty store is an error that says what to do."""
    from ..ingest.pipeline import open_index

    embedder = _embedder(settings)
    store = _store(settings, embedder)
    if store.chunk_count() == 0:
        raise QAError("The store is empty: add articles first with `qa ingest PATH`.")
    return embedder, store, open_index(store)


def _date_option(name: str, value: str) -> str:
    """A date flag as an ISO date ("" when not given); one that cannot be read is a usage error."""
    from ..ingest.loaders import normalise_date

    if value and not normalise_date(value):
        raise UsageError(f"{name} needs a date like 2024-02-26, not {value!r}.")
    return normalise_date(value)


def _filters(source: str, since: str, until: str):
    """--source/--since/--until as retrieval filters."""
    from ..search.retrieval import Filters

    return Filters(source, _date_option("--since", since), _date_option("--until", until))


def _as_of(settings: Settings) -> str:
    """The date questions are asked on (`--as-of`, QA_AS_OF), "" when not set: then the model is
    told no date. (Telling it today's date by default was measured on RealTimeQA and gained
    nothing: eval/RESULTS.md.)"""
    return _date_option("--as-of (QA_AS_OF)", settings.as_of)


def _fetcher(settings: Settings):
    from ..ingest.fetch import Fetcher, limits_from

    return Fetcher(limits_from(settings.fetch_timeout, settings.fetch_max_mb, settings.fetch_max_redirects))


def _llm(settings: Settings):
    from ..llm import make_llm

    progress = Progress(TextColumn("Assembling the local model (first use only)"), BarColumn(), DownloadColumn(),
                        console=err, transient=True)
    task = None

    def on_progress(done: int, total: int) -> None:
        nonlocal task
        if task is None:
            progress.start()
            task = progress.add_task("model", total=total)
        progress.update(task, completed=done)

    spec = settings.resolved_llm()
    try:
        return make_llm(spec, models_dir=settings.models_dir, threads=settings.threads,
                        timeout=settings.timeout, on_progress=on_progress)
    except QAError as exc:
        if not (spec == "local" or spec.startswith("local:")):
            raise
        err.print(f"[yellow]The local model is not available: {exc}\nAnswering with the extractive backend "
                  "(cited sentences, no model).[/yellow]", soft_wrap=True)
        return make_llm("extractive", models_dir=settings.models_dir)
    finally:
        if task is not None:
            progress.stop()


@app.callback()
def main_options(
    ctx: typer.Context,
    home: Optional[str] = typer.Option(None, "--home", help="Data directory (default: QA_HOME or the user data dir)."),
    collection: Optional[str] = typer.Option(None, "--collection", "-c", help="Collection to use (default: articles)."),
    embedder: Optional[str] = typer.Option(None, "--embedder", help="minilm (offline default) or openai:MODEL."),
    version: bool = typer.Option(False, "--version", help="Show the version and exit."),
) -> None:
    """qa: ingest news articles, then ask questions and get answers with verified citations."""
    if version:
        out.print(f"qa {__version__}")
        raise typer.Exit()
    ctx.obj = Context({"home": home, "collection": collection, "embedder": embedder})


@app.command()
def ingest(
    ctx: typer.Context,
    paths: List[str] = typer.Argument(..., help="Files, folders (recursive), glob patterns or http(s) URLs."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Add articles (.txt .md .html .pdf .json .jsonl, or web pages by URL) to the store; unchanged ones are skipped."""
    from ..ingest.pipeline import ingest as run_ingest

    with reported():
        settings = ctx.obj.settings()
        embedder = _embedder(settings)
        store = _store(settings, embedder)
        from ..search.bm25 import LexicalIndex

        index = LexicalIndex(settings.home / "bm25" / store.name)
        index.load()
        quiet = as_json or not err.is_terminal
        progress = Progress(TextColumn("[bold]Ingesting"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                            TextColumn("{task.description}"), console=err, disable=quiet)
        with progress:
            task = progress.add_task("", total=None)

            def on_progress(done: int, what: str) -> None:
                progress.update(task, completed=done, description=what[-40:])

            report = run_ingest(paths, store=store, embedder=embedder, index=index,
                                chunk_tokens=settings.chunk_tokens, overlap=settings.chunk_overlap,
                                max_bytes=settings.max_file_mb * 1_000_000, on_progress=on_progress,
                                on_wait=lambda message: err.print(f"[yellow]{message}[/yellow]"),
                                fetcher=_fetcher(settings), near_duplicates=settings.near_duplicates)
        if as_json:
            out.print_json(json.dumps(views.ingest_json(report)))
        else:
            for line in views.ingest_problems(report):
                err.print(line, soft_wrap=True)  # one line per problem, whatever the width
            out.print(views.ingest_summary(report))
        if report.interrupted:
            err.print("[yellow]Interrupted: finished articles are saved; run the same command again to finish.[/yellow]")
            raise typer.Exit(130)
        if report.failed:
            raise typer.Exit(1)


@app.command()
def ask(
    ctx: typer.Context,
    question: str = typer.Argument(..., help="Your question, in quotes."),
    llm: Optional[str] = typer.Option(None, "--llm", help="local | openai:MODEL | extractive (default: local, or openai when configured)."),
    budget: Optional[int] = typer.Option(None, "--budget", help="Context tokens sent to the model (default: 1000)."),
    k: Optional[int] = typer.Option(None, "--k", help="Candidates from each retriever (default: 40)."),
    source: str = typer.Option("", "--source", help="Only articles from this source."),
    since: str = typer.Option("", "--since", help="Only articles dated on or after YYYY-MM-DD."),
    until: str = typer.Option("", "--until", help="Only articles dated on or before YYYY-MM-DD."),
    mode: str = typer.Option("hybrid", "--mode", help="hybrid | dense | bm25."),
    as_of: Optional[str] = typer.Option(None, "--as-of", help="Ask as on this date (YYYY-MM-DD): the model is told it, so \"this week\" means that week."),
    as_json: bool = typer.Option(False, "--json", help="Print answer, citations and timings as JSON."),
) -> None:
    """Answer a question from your articles, every sentence cited, or say it does not know."""
    from ..answer import AskOptions, ask as run_ask

    with reported():
        if mode not in ("hybrid", "dense", "bm25"):
            raise UsageError(f"--mode must be hybrid, dense or bm25, not {mode!r}.")
        filters = _filters(source, since, until)
        settings = ctx.obj.settings(llm=llm, budget=budget, k=k, as_of=as_of)
        today = _as_of(settings)
        embedder, store, index = _library(settings)
        model = _llm(settings)
        options = AskOptions(budget=settings.budget, k=settings.k, per_article=settings.per_article,
                             filters=filters, mode=mode, max_tokens=settings.max_answer_tokens,
                             temperature=settings.temperature, today=today)
        if as_json or not out.is_terminal:
            result = run_ask(question, store=store, embedder=embedder, index=index, llm=model, options=options)
        else:
            streamed: list[str] = []
            with Live(console=out, refresh_per_second=10, transient=True) as live:
                def on_token(piece: str) -> None:
                    streamed.append(piece)
                    live.update(views.Markdown("".join(streamed)))

                result = run_ask(question, store=store, embedder=embedder, index=index, llm=model, options=options,
                                 on_token=on_token)
        if as_json:
            out.print_json(json.dumps(views.answer_json(result)))
            return
        out.print(views.answer_view(result))
        if result.cited:
            out.print(views.sources_panel(result.cited))
        elif result.refused and result.passages:
            out.print(views.sources_panel(result.passages[:3], title="Closest passages (they do not answer it)"))
        out.print(views.timings_line(result))


@app.command()
def sources(ctx: typer.Context, as_json: bool = typer.Option(False, "--json", help="Print as JSON.")) -> None:
    """List the articles in the store: title, source, date, chunks."""
    with reported():
        store = _store(ctx.obj.settings())
        articles = store.articles()
        if as_json:
            out.print_json(json.dumps([views.article_json(a) for a in articles]))
        elif not articles:
            out.print("No articles yet: add some with `qa ingest PATH`.")
        else:
            out.print(views.sources_table(articles))


@app.command()
def remove(
    ctx: typer.Context,
    ids: List[str] = typer.Argument(None, help="Article ids (or unique prefixes, as `qa sources` shows them)."),
    all_: bool = typer.Option(False, "--all", help="Remove every article in the collection."),
) -> None:
    """Remove articles (their chunks, vectors and index entries)."""
    from ..ingest.pipeline import open_index

    with reported():
        settings = ctx.obj.settings()
        store = _store(settings)
        known = [a.article.id for a in store.articles()]
        if all_:
            chosen = known
        elif ids:
            chosen = []
            for raw in ids:
                matches = [k for k in known if k.startswith(raw)]
                if len(matches) != 1:
                    raise UsageError(f"{raw!r} matches {len(matches)} articles; give a longer id (see `qa sources`).")
                chosen.append(matches[0])
        else:
            raise UsageError("Name the articles to remove (ids from `qa sources`), or pass --all.")
        with store.write_lock(on_wait=lambda message: err.print(f"[yellow]{message}[/yellow]")):
            removed = store.remove(chosen)
            open_index(store)
        out.print(f"Removed {removed} article(s).")


@app.command()
def stats(ctx: typer.Context, as_json: bool = typer.Option(False, "--json", help="Print as JSON.")) -> None:
    """Counts for the collection: articles, chunks, vectors, sources, dates."""
    with reported():
        settings = ctx.obj.settings()
        store = _store(settings)
        articles = store.articles()
        dates = sorted(a.article.date for a in articles if a.article.date)
        data = {"collection": store.name, "home": str(settings.home), "articles": len(articles),
                "chunks": store.chunk_count(), "vectors": store.vector_count(), "embedder": store.embedder,
                "sources": len({a.article.source for a in articles}),
                "first_date": dates[0] if dates else None, "last_date": dates[-1] if dates else None,
                "undated": sum(1 for a in articles if not a.article.date)}
        if as_json:
            out.print_json(json.dumps(data))
        else:
            for key, value in data.items():
                out.print(f"[bold]{key:>11}[/bold]  {value}")


@app.command()
def doctor(
    ctx: typer.Context,
    check: bool = typer.Option(False, "--check", help="Also check the store's consistency; exit 1 if not."),
    as_json: bool = typer.Option(False, "--json", help="Print as JSON."),
) -> None:
    """Show each component of the offline stack: present, ready, version, where its data lives."""
    from dataclasses import asdict

    from ..doctor import stack_checks, store_checks
    from ..search.bm25 import LexicalIndex

    with reported():
        settings = ctx.obj.settings()
        results = {"stack": stack_checks(settings)}
        if check:
            store = _store(settings)
            index = LexicalIndex(settings.home / "bm25" / store.name)
            index.load()
            results["store"] = store_checks(store, index)
        if as_json:
            out.print_json(json.dumps({k: [asdict(c) for c in v] for k, v in results.items()}))
        else:
            for name, checks in results.items():
                out.print(views.checks_table(checks, f"{name}: {settings.collection}" if name == "store" else name))
        if check and not all(c.ok for c in results["store"]):
            raise typer.Exit(1)


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        err.print("[yellow]Interrupted.[/yellow]")
        sys.exit(130)

from . import eval  # noqa: E402,F401  (registers qa eval)
from . import chat  # noqa: E402,F401  (registers qa chat)


from . import summarise  # noqa: E402,F401  (registers qa summarise / brief)
from . import feeds  # noqa: E402,F401  (registers qa feeds)
