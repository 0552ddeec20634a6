"""`qa summarise` and `qa brief`: registered on the app of qa/cli.py, with their Markdown and JSON views.

Markdown goes to stdout (rendered on a terminal, plain when piped) or to `-o FILE.md`.
A sentence its passages do not support is shown with a warning, never dropped silently.
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator, Optional, Sequence

import typer
from rich.markdown import Markdown
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from . import _embedder, _filters, _library, _llm, _store, app, err, out, reported
from ..verify import render
from ..errors import QAError, UsageError
from ..records import Passage, Sentence

FLAG = "⚠ *not supported by the cited passages*"
NO_SUPPORT = "⚠ *not supported by the article*"


# ---- views -----------------------------------------------------------------------------------


def item_markdown(item: Sequence[Sentence]) -> str:
    """Sentences with their citation markers; each unsupported one flagged where it stands."""
    parts = []
    for s in item:
        text = render([s])
        if not s.supported:
            text += " " + (FLAG if s.citations else NO_SUPPORT)
        parts.append(text)
    return " ".join(parts)


def _snippet(text: str, width: int = 240) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[:width].rsplit(" ", 1)[0] + " …"


def sources_markdown(passages: Sequence[Passage]) -> list[str]:
    lines = ["## Sources", ""]
    for p in passages:
        where = ", ".join(x for x in (p.source, p.date or "undated") if x)
        link = f" <{p.url}>" if p.url else ""
        lines += [f"[{p.number}] **{p.title or '(untitled)'}**, {where}.{link}  ", f"> {_snippet(p.text)}", ""]
    return lines


def notes_markdown(fallback: str, dropped: int, sentences: Sequence[Sentence], more: Sequence[str] = ()) -> list[str]:
    notes = list(more)
    if fallback:
        notes.append(f"> Note: {fallback}.")
    if dropped:
        notes.append(f"> {dropped} note(s) from the map step were not supported by their passages and were left out.")
    flagged = sum(not s.supported for s in sentences)
    if flagged:
        notes.append(f"> {flagged} sentence(s) below are not supported by the passages they cite (marked ⚠).")
    return [n + "  " for n in notes[:-1]] + notes[-1:] + [""] if notes else []  # one line each


def summary_markdown(summary) -> str:
    art = summary.article
    meta = " · ".join(x for x in (art.source, art.date, art.url) if x)
    lines = [f"# Summary: {art.title or '(untitled)'}", ""]
    if meta:
        lines += [f"*{meta}*", ""]
    lines += notes_markdown(summary.fallback, summary.dropped, summary.sentences)
    if summary.headline:
        lines += [f"**{item_markdown(summary.headline)}**", ""]
    if summary.style == "bullets":
        lines += [f"- {item_markdown(item)}" for item in summary.points] + [""]
    else:
        lines += [item_markdown(item) for item in summary.points] + [""]
    how = f"{summary.model}, {summary.parts} part(s), {summary.calls} model call(s)" if summary.calls else summary.model
    lines += sources_markdown(summary.cited) + [f"*{how}, {summary.timings.total_ms / 1000:.1f} s.*", ""]
    return "\n".join(lines)


def briefing_markdown(b) -> str:
    lines = [f"# Briefing: {' '.join(b.topic.split())}", ""]
    lines += [f"*{len(b.articles)} article(s), {len(b.sources)} source(s) cited: {', '.join(b.sources) or '-'}*", ""]
    aside = [f"> {b.set_aside} item(s) the model gave as disagreements cite one article and name no dispute; "
             "they were left out."] if b.set_aside else []
    lines += notes_markdown(b.fallback, b.dropped, b.sentences, aside)
    sections = [("Overview", [b.overview] if b.overview else []), ("Key points", b.key_points)]
    for title, items in sections:
        lines += [f"## {title}", ""]
        if title == "Overview":
            lines += [item_markdown(i) for i in items] or ["(none)"]
        else:
            lines += [f"- {item_markdown(i)}" for i in items] or ["- (none)"]
        lines.append("")
    lines += ["## Timeline", ""]
    lines += [f"- **{e.date or 'undated'}** · {e.source or 'unknown source'}, *{e.title}*: {item_markdown(e.sentences)}"
              for e in b.timeline] or ["- (none)"]
    lines.append("")
    for title, items in (("Where sources disagree", b.disagreements), ("Open questions", b.open_questions)):
        lines += [f"## {title}", ""] + ([f"- {item_markdown(i)}" for i in items] or ["- (none found)"]) + [""]
    lines += sources_markdown(b.cited)
    lines += [f"*{b.model}, {b.calls} model call(s), {b.timings.total_ms / 1000:.1f} s.*", ""]
    return "\n".join(lines)


def _sentences_json(item: Sequence[Sentence]) -> dict:
    return {"text": render(item), "supported": all(s.supported for s in item),
            "sentences": [{"text": s.text, "citations": list(s.citations), "supported": s.supported,
                           "support": s.support, "citation_added": s.added_citation} for s in item]}


def _passage_json(p: Passage) -> dict:
    return {"number": p.number, "article_id": p.article_id, "title": p.title, "source": p.source, "date": p.date,
            "url": p.url, "start": p.start, "end": p.end, "text": p.text}


def _timings_json(t) -> dict:
    return {"retrieval_ms": round(t.retrieval_ms, 1), "generation_ms": round(t.generation_ms, 1),
            "prompt_tokens": t.prompt_tokens, "completion_tokens": t.completion_tokens,
            "total_ms": round(t.total_ms, 1)}


def summary_json(s) -> dict:
    art = s.article
    return {"article": {"id": art.id, "title": art.title, "source": art.source, "date": art.date, "url": art.url},
            "style": s.style, "model": s.model, "parts": s.parts, "calls": s.calls, "fallback": s.fallback or None,
            "dropped_notes": s.dropped, "support_rate": round(s.support_rate, 3),
            "headline": _sentences_json(s.headline) if s.headline else None,
            "points": [_sentences_json(i) for i in s.points], "citations": [_passage_json(p) for p in s.cited],
            "passages": [{"number": p.number, "start": p.start, "end": p.end} for p in s.passages],
            "timings": _timings_json(s.timings)}


def briefing_json(b) -> dict:
    return {"topic": b.topic, "model": b.model, "fallback": b.fallback or None, "calls": b.calls,
            "dropped_notes": b.dropped, "set_aside_disagreements": b.set_aside, "sources": b.sources,
            "overview": _sentences_json(b.overview) if b.overview else None,
            "key_points": [_sentences_json(i) for i in b.key_points],
            "timeline": [{"date": e.date, "source": e.source, "title": e.title, "article_id": e.article_id,
                          **_sentences_json(e.sentences)} for e in b.timeline],
            "disagreements": [_sentences_json(i) for i in b.disagreements],
            "open_questions": [_sentences_json(i) for i in b.open_questions],
            "articles": [{"id": a.id, "title": a.title, "source": a.source, "date": a.date, "url": a.url}
                         for a in b.articles],
            "citations": [_passage_json(p) for p in b.cited], "timings": _timings_json(b.timings)}


# ---- commands ----------------------------------------------------------------------------------


@contextmanager
def progress_bar(enabled: bool) -> Iterator[Callable[[int, int, str], None]]:
    """A rich progress bar over model calls, on stderr; a no-op callback when disabled."""
    bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                   console=err, transient=True, disable=not enabled)
    with bar:
        task = bar.add_task("", total=None)

        def on_progress(done: int, total: int, what: str) -> None:
            bar.update(task, completed=done, total=max(total, done), description=what[:50])

        yield on_progress


def emit(markdown: str, data: dict, as_json: bool, output: Optional[str]) -> None:
    text = json.dumps(data, indent=2, ensure_ascii=False) + "\n" if as_json else markdown
    if output:
        try:
            Path(output).expanduser().write_text(text, encoding="utf-8")
        except OSError as exc:
            raise QAError(f"Cannot write {output} ({exc.strerror}); choose another path with -o.")
        err.print(f"Wrote {output}")
    elif as_json:
        out.print_json(json.dumps(data))
    elif out.is_terminal:
        out.print(Markdown(markdown))
    else:
        out.file.write(markdown)


@app.command()
def summarise(
    ctx: typer.Context,
    article: str = typer.Argument(..., help="Article id (or prefix), the path or URL it was ingested from, or its title."),
    llm: Optional[str] = typer.Option(None, "--llm", help="local | openai:MODEL | extractive (no model)."),
    style: str = typer.Option("bullets", "--style", help="bullets (headline plus bullets) | paragraph."),
    bullets: Optional[int] = typer.Option(None, "--bullets", help="Number of bullets (default 5)."),
    words: Optional[int] = typer.Option(None, "--words", help="Length in words (default 125 for bullets, 100 for a paragraph)."),
    budget: Optional[int] = typer.Option(None, "--budget", help="Passage tokens per model call; a longer article is summarised in parts (default: 1000)."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary, citations and timings as JSON."),
    output: Optional[str] = typer.Option(None, "--output", "-o", help="Write to this file instead of stdout."),
) -> None:
    """Summarise one article, every sentence cited and checked against the article."""
    from ..summarise import STYLES, SummaryOptions, find_article, summarise as run_summarise

    with reported():
        if style not in STYLES:
            raise UsageError(f"--style must be bullets or paragraph, not {style!r}.")
        if bullets is not None and style == "paragraph":
            raise UsageError("--bullets goes with --style bullets; use --words for a paragraph.")
        for name, value in (("--bullets", bullets), ("--words", words), ("--budget", budget)):
            if value is not None and value < 1:
                raise UsageError(f"{name} must be a positive number, not {value}.")
        settings = ctx.obj.settings(llm=llm, budget=budget)
        embedder = _embedder(settings)
        store = _store(settings, embedder)
        found = find_article(article, store).article
        model = _llm(settings)
        options = SummaryOptions(style=style, bullets=bullets or 5, words=words or 0, budget=settings.budget,
                                 temperature=settings.temperature)
        with progress_bar(not as_json and err.is_terminal) as on_progress:
            result = run_summarise(found, llm=model, embedder=embedder, options=options, on_progress=on_progress)
        emit(summary_markdown(result), summary_json(result), as_json, output)


@app.command()
def brief(
    ctx: typer.Context,
    topic: str = typer.Argument(..., help="The topic, in quotes."),
    llm: Optional[str] = typer.Option(None, "--llm", help="local | openai:MODEL | extractive (no model)."),
    since: str = typer.Option("", "--since", help="Only articles dated on or after YYYY-MM-DD."),
    until: str = typer.Option("", "--until", help="Only articles dated on or before YYYY-MM-DD."),
    source: str = typer.Option("", "--source", help="Only articles from this source."),
    articles: int = typer.Option(5, "--articles", help="Articles at most in the briefing."),
    points: int = typer.Option(5, "--points", help="Key points at most."),
    as_json: bool = typer.Option(False, "--json", help="Print the briefing as JSON."),
    output: Optional[str] = typer.Option(None, "--output", "-o", help="Write to this file (e.g. brief.md)."),
) -> None:
    """A briefing on a topic across your articles: overview, key points, timeline, disagreements, open questions."""
    from ..brief import BriefOptions, brief as run_brief

    with reported():
        filters = _filters(source, since, until)
        if articles < 1 or points < 1:
            raise UsageError("--articles and --points must be positive numbers.")
        settings = ctx.obj.settings(llm=llm)
        embedder, store, index = _library(settings)
        model = _llm(settings)
        options = BriefOptions(filters=filters,
                               articles=articles, points=points, temperature=settings.temperature)
        with progress_bar(not as_json and err.is_terminal) as on_progress:
            result = run_brief(topic, store=store, embedder=embedder, index=index, llm=model, options=options,
                               on_progress=on_progress)
        if not result.articles:
            raise QAError(f"No articles on {topic!r} were found (with these filters); try other words or `qa sources`.")
        emit(briefing_markdown(result), briefing_json(result), as_json, output)
