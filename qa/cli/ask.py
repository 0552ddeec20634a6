"""`qa ask`: one question, answered from the articles with every sentence cited, or "I don't know"."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.live import Live
from rich.markdown import Markdown

from ..errors import UsageError
from ..library import ask_options, open_library
from . import documents, views
from ._help import Command
from ._shared import (
    BudgetOption,
    LlmOption,
    SinceOption,
    SourceOption,
    UntilOption,
    filters,
    load_llm,
    out,
    reported,
    since_start_ms,
)

MODES = ("hybrid", "dense", "bm25")


def ask(
    ctx: typer.Context,
    question: Annotated[str, typer.Argument(help="Your question, in quotes.")],
    llm: LlmOption = None,
    budget: BudgetOption = None,
    k: Annotated[int | None, typer.Option("--k", help="Candidates from each retriever (default: 40).")] = None,
    source: SourceOption = "",
    since: SinceOption = "",
    until: UntilOption = "",
    mode: Annotated[str, typer.Option("--mode", help="hybrid | dense | bm25.")] = "hybrid",
    as_of: Annotated[
        str | None,
        typer.Option(
            "--as-of", help='Ask as on this date (YYYY-MM-DD): the model is told it, so "this week" means that week.'
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print answer, citations and timings as JSON.")] = False,
) -> None:
    """Answer a question from your articles, every sentence cited, or say it does not know."""
    from ..answer import answer
    from ..search.retrieval import retrieve

    with reported():
        if not question.strip():
            raise UsageError('Ask a question, in quotes: qa ask "What did the union demand?"')
        if mode not in MODES:
            raise UsageError(f"--mode must be hybrid, dense or bm25, not {mode!r}.")
        chosen = filters(source, since, until)
        settings = ctx.obj.settings(llm=llm, budget=budget, k=k, as_of=as_of)
        options = ask_options(settings, filters=chosen, mode=mode)
        library = open_library(settings)
        found = retrieve(question, library=library, options=options.retrieval)
        sources_ms = since_start_ms()
        live = not as_json and out.is_terminal
        if live:  # the evidence at once; the model's answer streams in under it, then is checked
            articles = len({p.article_id for p in found.passages})
            title = f"Passages found: {len(found.passages)} from {articles} article(s), {found.ms:.0f} ms"
            out.print(views.sources_panel(found.passages, title=title))
        model = load_llm(settings)
        if not live:
            result = answer(question, found.passages, llm=model, embedder=library.embedder, options=options)
        else:
            streamed: list[str] = []
            with Live(console=out, refresh_per_second=10, transient=True) as view:

                def on_token(piece: str) -> None:
                    streamed.append(piece)
                    view.update(Markdown("".join(streamed)))

                result = answer(
                    question, found.passages, llm=model, embedder=library.embedder, options=options, on_token=on_token
                )
        result.timings.retrieval_ms = found.ms
        result.timings.sources_ms = sources_ms
        if as_json:
            out.print_json(json.dumps(documents.answer_json(result)))
            return
        if live:
            for part in views.checked_answer_parts(result):
                out.print(part)
        else:
            for part in views.answer_parts(result, views.sources_panel):
                out.print(part)
        out.print(views.timings_line(result))


def register(app: typer.Typer) -> None:
    app.command(cls=Command)(ask)
