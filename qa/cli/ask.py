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
from ._shared import BudgetOption, LlmOption, SinceOption, SourceOption, UntilOption, filters, load_llm, out, reported

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
    from ..answer import ask as run_ask

    with reported():
        if not question.strip():
            raise UsageError('Ask a question, in quotes: qa ask "What did the union demand?"')
        if mode not in MODES:
            raise UsageError(f"--mode must be hybrid, dense or bm25, not {mode!r}.")
        chosen = filters(source, since, until)
        settings = ctx.obj.settings(llm=llm, budget=budget, k=k, as_of=as_of)
        options = ask_options(settings, filters=chosen, mode=mode)
        library = open_library(settings)
        model = load_llm(settings)
        if as_json or not out.is_terminal:
            result = run_ask(
                question,
                library=library,
                llm=model,
                options=options,
            )
        else:
            streamed: list[str] = []
            with Live(console=out, refresh_per_second=10, transient=True) as live:

                def on_token(piece: str) -> None:
                    streamed.append(piece)
                    live.update(Markdown("".join(streamed)))

                result = run_ask(
                    question,
                    library=library,
                    llm=model,
                    options=options,
                    on_token=on_token,
                )
        if as_json:
            out.print_json(json.dumps(documents.answer_json(result)))
            return
        for part in views.answer_parts(result, views.sources_panel):
            out.print(part)
        out.print(views.timings_line(result))


def register(app: typer.Typer) -> None:
    app.command(cls=Command)(ask)
