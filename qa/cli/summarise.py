"""`qa summarise` and `qa brief`: Markdown to stdout (rendered on a terminal, plain when piped) or to
`-o FILE.md`, or JSON."""

from __future__ import annotations

from typing import Annotated

import typer

from ..errors import QAError, UsageError
from ..library import make_embedder, open_library, open_store
from . import documents
from ._help import Command
from ._shared import SinceOption, SourceOption, UntilOption, call_progress, emit, err, filters, load_llm, reported

ShortLlmOption = Annotated[str | None, typer.Option("--llm", help="local | openai:MODEL | extractive (no model).")]


def summarise(
    ctx: typer.Context,
    article: Annotated[
        str, typer.Argument(help="Article id (or prefix), the path or URL it was ingested from, or its title.")
    ],
    llm: ShortLlmOption = None,
    style: Annotated[str, typer.Option("--style", help="bullets (headline plus bullets) | paragraph.")] = "bullets",
    bullets: Annotated[int | None, typer.Option("--bullets", help="Number of bullets (default 5).")] = None,
    words: Annotated[
        int | None, typer.Option("--words", help="Length in words (default 125 for bullets, 100 for a paragraph).")
    ] = None,
    budget: Annotated[
        int | None,
        typer.Option(
            "--budget", help="Passage tokens per model call; a longer article is summarised in parts (default: 1000)."
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary, citations and timings as JSON.")] = False,
    output: Annotated[str | None, typer.Option("--output", "-o", help="Write to this file instead of stdout.")] = None,
) -> None:
    """Summarise one article, every sentence cited and checked against the article."""
    from ..store.lookup import find_article
    from ..summarise import STYLES, SummaryOptions
    from ..summarise import summarise as run_summarise

    with reported():
        if style not in STYLES:
            raise UsageError(f"--style must be bullets or paragraph, not {style!r}.")
        if bullets is not None and style == "paragraph":
            raise UsageError("--bullets goes with --style bullets; use --words for a paragraph.")
        for name, value in (("--bullets", bullets), ("--words", words), ("--budget", budget)):
            if value is not None and value < 1:
                raise UsageError(f"{name} must be a positive number, not {value}.")
        settings = ctx.obj.settings(llm=llm, budget=budget)
        embedder = make_embedder(settings)
        found = find_article(article, open_store(settings, embedder)).article
        model = load_llm(settings)
        options = SummaryOptions(
            style=style,
            bullets=bullets or 5,
            words=words or 0,
            budget=settings.budget,
            temperature=settings.temperature,
        )
        with call_progress(not as_json and err.is_terminal) as on_progress:
            result = run_summarise(found, llm=model, embedder=embedder, options=options, on_progress=on_progress)
        emit(documents.summary_markdown(result), documents.summary_json(result), as_json, output)


def brief(
    ctx: typer.Context,
    topic: Annotated[str, typer.Argument(help="The topic, in quotes.")],
    llm: ShortLlmOption = None,
    since: SinceOption = "",
    until: UntilOption = "",
    source: SourceOption = "",
    articles: Annotated[int, typer.Option("--articles", help="Articles at most in the briefing.")] = 5,
    points: Annotated[int, typer.Option("--points", help="Key points at most.")] = 5,
    as_json: Annotated[bool, typer.Option("--json", help="Print the briefing as JSON.")] = False,
    output: Annotated[str | None, typer.Option("--output", "-o", help="Write to this file (e.g. brief.md).")] = None,
) -> None:
    """A briefing on a topic across your articles: overview, key points, timeline, disagreements, open questions."""
    from ..brief import BriefOptions
    from ..brief import brief as run_brief

    with reported():
        chosen = filters(source, since, until)
        if articles < 1 or points < 1:
            raise UsageError("--articles and --points must be positive numbers.")
        settings = ctx.obj.settings(llm=llm)
        library = open_library(settings)
        model = load_llm(settings)
        options = BriefOptions(filters=chosen, articles=articles, points=points, temperature=settings.temperature)
        with call_progress(not as_json and err.is_terminal) as on_progress:
            result = run_brief(
                topic,
                library=library,
                llm=model,
                options=options,
                on_progress=on_progress,
            )
        if not result.articles:
            raise QAError(f"No articles on {topic!r} were found (with these filters); try other words or `qa sources`.")
        emit(documents.briefing_markdown(result), documents.briefing_json(result), as_json, output)


def register(app: typer.Typer) -> None:
    app.command(cls=Command)(summarise)
    app.command(cls=Command)(brief)
