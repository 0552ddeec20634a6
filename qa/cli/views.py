"""Terminal views (rich) of what the core returns. Nothing here computes; `documents.py` has the
Markdown and JSON shapes."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from rich.console import Console, Group, RenderableType
from rich.markdown import Markdown
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from ..chat.commands import HELP, Opened
from ..chat.session import Turn
from ..chunking import snippet
from ..eval.scoring import LABELS
from ..ingest.pipeline import STATUSES, IngestReport
from ..records import Answer, Passage
from ..store import StoredArticle

if TYPE_CHECKING:
    from ..doctor import Check
    from ..ingest.feeds import Feed, FeedResult

CLOSEST = "Closest passages (they do not answer it)"


def error(console: Console, message: str) -> None:
    console.print(Text.assemble(("error: ", "bold red"), message), soft_wrap=True)


# ---- ingest, sources, doctor ---------------------------------------------------------------


def ingest_summary(report: IngestReport) -> Table:
    table = Table(title="Ingest", show_edge=False)
    for status in STATUSES:
        table.add_column(status, justify="right")
    table.add_column("chunks added", justify="right")
    table.add_column("seconds", justify="right")
    table.add_row(*(str(report.count(s)) for s in STATUSES), str(report.chunks_added), f"{report.seconds:.1f}")
    return table


def ingest_problems(report: IngestReport) -> list[Text]:
    lines = [Text.assemble(("failed  ", "bold red"), f"{i.origin}: {i.detail}") for i in report.failed]
    lines += [Text.assemble(("warning ", "yellow"), f"{w.origin}: {w.reason}") for w in report.warnings]
    lines += [
        Text.assemble(("duplicate ", "cyan"), f"{i.origin}: {i.detail}")
        for i in report.items
        if i.status == "duplicate"
    ][:20]
    return lines


def feed_lines(feeds: Sequence[FeedResult]) -> list[tuple[Text, bool]]:
    """One line per feed of an update, and whether it reports a failure (shown on stderr)."""
    lines = []
    for f in feeds:
        name = f.title or f.url
        if f.status == "failed":
            lines.append((Text.assemble(("failed  ", "bold red"), f"{name}: {f.detail}"), True))
        elif f.status == "not modified":
            lines.append((Text.assemble(("feed  ", "dim"), f"{name}: not modified"), False))
        else:
            retry = f", {f.retry} failed (tried again at the next update)" if f.retry else ""
            lines.append(
                (
                    Text.assemble(
                        ("feed  ", "dim"), f"{name}: {f.loaded} new or changed of {f.entries} entries{retry}"
                    ),
                    False,
                )
            )
    return lines


def feeds_table(feeds: Sequence[Feed]) -> Table:
    table = Table(show_edge=False)
    for name in ("title", "url", "entries", "pending", "last update", "status"):
        table.add_column(name, overflow="fold")
    for f in feeds:
        table.add_row(
            f.title or "-", f.url, str(len(f.entries)), str(len(f.pending)), f.checked or "never", f.status or "-"
        )
    return table


def pending_lines(feeds: Sequence[Feed]) -> list[Text]:
    """One line per entry that failed and waits for the next update, with why."""
    return [
        Text.assemble(("pending ", "yellow"), f"{f.title or f.url}: {key}: {why}")
        for f in feeds
        for key, why in f.pending.items()
    ]


def sources_table(articles: Sequence[StoredArticle], width: int = 80) -> Table:
    """One line per article at `width` columns: the title gives way (cut with an ellipsis), the id,
    date and source do not (a source longer than 30 characters is cut)."""
    source = min(30, max((len(a.article.source or "-") for a in articles), default=6))
    chunks = max([6, *(len(str(a.chunks)) for a in articles)])
    # every column has one space of padding each side, and the four rules between them one each
    room = max(12, width - (10 + 10 + source + chunks) - 5 * 2 - 4)
    table = Table(show_edge=False)
    table.add_column("id", no_wrap=True)
    table.add_column("date", no_wrap=True)
    table.add_column("source", no_wrap=True, max_width=source, overflow="ellipsis")
    table.add_column("title", no_wrap=True, max_width=room, overflow="ellipsis")
    table.add_column("chunks", justify="right", no_wrap=True)
    for a in articles:
        title = Text(a.article.title)
        if a.also_reported:  # copies of this story from elsewhere, kept as sources only
            others = ", ".join(dict.fromkeys(r.source or r.url or r.origin for r in a.also_reported))
            title.append(
                f"  +{len(a.also_reported)} source{'s' if len(a.also_reported) > 1 else ''}: {others}", style="dim"
            )
        table.add_row(a.article.id[:10], a.article.date or "-", a.article.source or "-", title, str(a.chunks))
    return table


def checks_table(checks: Sequence[Check], title: str) -> Table:
    table = Table(title=title, show_edge=False, title_justify="left")
    for name in ("", "component", "version", "detail"):
        table.add_column(name, overflow="fold")
    for c in checks:
        table.add_row(  # as Text: a detail such as "pip install '.[local]'" is not markup
            Text("✔", style="green") if c.ok else Text("✘", style="bold red"),
            Text(c.component),
            Text(c.version or ""),
            Text(c.detail),
        )
    return table


# ---- answers -------------------------------------------------------------------------------


def passage_text(p: Passage, limit: int = 260) -> Text:
    """The passage as a quote, its best sentence for the question in bold, cut to about `limit` characters
    around it."""
    if not p.best:
        return Text(f"“{snippet(p.text, limit)}”", style="dim")
    a, b = p.best
    flat = lambda s: " ".join(s.split())
    best = flat(p.text[a:b])
    room = max(0, limit - len(best))
    before, after = flat(p.text[:a]), flat(p.text[b:])
    before = before if len(before) <= room // 3 else "…" + before[len(before) - room // 3 :].lstrip()
    after = after if len(after) <= room - len(before) else after[: room - len(before)].rstrip() + "…"
    return Text.assemble(
        "“", (before + " " if before else "", "dim"), (best, "bold"), (" " + after if after else "", "dim"), "”"
    )


def sources_panel(passages: Sequence[Passage], title: str = "Sources") -> Panel:
    table = Table(show_header=False, show_edge=False, box=None, padding=(0, 1))
    table.add_column(style="bold cyan", no_wrap=True)
    table.add_column()
    for p in passages:
        head = Text.assemble((p.title or "(untitled)", "bold"), f"  {p.source or '-'}  {p.date or 'undated'}")
        body = [head]
        if p.url:
            body.append(Text(p.url, style="blue underline"))
        body.append(passage_text(p))
        table.add_row(f"[{p.number}]", Group(*body))
    return Panel(table, title=title, title_align="left", border_style="cyan")


def answer_view(answer: Answer) -> Group:
    parts: list[RenderableType] = [Markdown(answer.text)]
    if answer.refused and answer.reason:
        parts.append(Text(f"Why: {answer.reason}.", style="yellow"))
    if answer.incomplete:
        parts.append(Text("The answer was cut off before the model finished (incomplete).", style="yellow"))
    if answer.language_note:
        parts.append(Text(f"Note: {answer.language_note}", style="yellow"))
    flagged = [s for s in answer.sentences if not s.supported]
    for s in flagged:
        parts.append(Text(f"⚠ not supported by the cited passages: “{snippet(s.text, 160)}”", style="red"))
    if answer.dropped and not answer.refused:
        parts.append(
            Text(
                f"{len(answer.dropped)} sentence(s) of the model's answer left out: the passages do not state them.",
                style="dim",
            )
        )
    added = [s for s in answer.sentences if s.added_citation]
    if added:
        parts.append(Text(f"{len(added)} citation(s) added by verification.", style="dim"))
    return Group(*parts)


def timings_line(answer: Answer) -> Text:
    t = answer.timings
    bits = [answer.model, f"retrieval {t.retrieval_ms:.0f} ms"]
    if t.prompt_tokens:
        bits += [
            f"prompt {t.prompt_tokens} tok",
            f"first token {t.first_token_ms / 1000:.1f} s",
            f"{t.tokens_per_s:.1f} tok/s",
        ]
    bits.append(f"total {t.total_ms / 1000:.1f} s")
    if answer.checks:
        bits.append("checked: " + ", ".join(answer.checks))
    return Text(" · ".join(bits), style="dim")


def evidence_view(answer: Answer) -> Text:
    """Where the passages state each shown sentence: the quote a reader can check."""
    by_number = {p.number: p for p in answer.passages}
    lines = Text()
    seen: set[str] = set()
    for s in answer.sentences:
        if not s.evidence or s.evidence[0] not in by_number:
            continue
        n, a, b = s.evidence
        quote = " ".join(by_number[n].text[a:b].split())
        if quote in seen:
            continue
        seen.add(quote)
        lines.append(f"[{n}] ", style="bold cyan").append(f"“{snippet(quote, 300)}”\n", style="italic")
    lines.rstrip()
    return lines


def checked_answer_parts(answer: Answer) -> list[RenderableType]:
    """After the passages were shown: the checked answer with the quotes that state it, or the refusal
    with the closest passages (one line each: they are on screen above)."""
    parts: list[RenderableType] = [answer_view(answer)]
    if answer.sentences:
        parts.append(evidence_view(answer))
    elif answer.refused and answer.passages:
        parts.append(compact_sources(answer.passages[:3], title=CLOSEST, hint=""))
    return parts


def answer_parts(answer: Answer, sources: Callable[[list[Passage]], RenderableType]) -> list[RenderableType]:
    """The verified answer, then its cited sources (`sources` draws them) or, when it refused, the
    closest passages."""
    parts: list[RenderableType] = [answer_view(answer)]
    if answer.cited:
        parts.append(sources(answer.cited))
    elif answer.refused and answer.passages:
        parts.append(sources_panel(answer.passages[:3], title=CLOSEST))
    return parts


# ---- chat ----------------------------------------------------------------------------------


def compact_sources(
    passages: Sequence[Passage], title: str = "Sources", hint: str = "/open N for the passage"
) -> Panel:
    """One line per cited passage: number, title, source and date (/open N shows it in full)."""
    table = Table(show_header=False, show_edge=False, box=None, padding=(0, 1), expand=True)
    table.add_column(style="bold cyan", no_wrap=True)
    table.add_column(ratio=1, no_wrap=True, overflow="ellipsis")
    table.add_column(style="dim", no_wrap=True)
    for p in passages:
        table.add_row(
            f"[{p.number}]", Text(p.title or "(untitled)", style="bold"), f"{p.source or '-'}  {p.date or 'undated'}"
        )
    return Panel(
        table,
        title=title,
        title_align="left",
        subtitle=hint or None,
        subtitle_align="right",
        border_style="cyan",
    )


def status_line(turn: Turn, answer: Answer) -> Text:
    t = answer.timings
    bits = [f"retrieval {t.retrieval_ms:.0f} ms"]
    if turn.rewritten_by:
        bits.insert(0, f"rewrite ({turn.rewritten_by}) {turn.rewrite_ms / 1000:.1f} s")
    if t.prompt_tokens:
        bits += [f"first token {t.first_token_ms / 1000:.1f} s", f"{t.tokens_per_s:.1f} tok/s"]
    return Text.assemble(
        (answer.model, "bold dim"), (f" · answered in {turn.seconds:.1f} s", "dim"), (f" ({', '.join(bits)})", "dim")
    )


def help_table() -> Table:
    table = Table(show_header=False, show_edge=False, box=None, padding=(0, 2))
    table.add_column(style="bold cyan", no_wrap=True)
    table.add_column()
    for usage, what in HELP:
        table.add_row(usage, what)
    table.add_row("", "")
    for keys, what in (
        ("Enter", "ask; Alt-Enter (or Esc Enter), or a line ending in \\, starts a new line"),
        ("Up / Down", "earlier questions, kept across sessions"),
        ("Ctrl-C", "stop the answer being written (at the prompt: clear the line)"),
        ("Ctrl-D", "quit"),
    ):
        table.add_row(keys, what)
    return table


def opened_view(opened: Opened) -> Panel:
    a, p = opened.article, opened.passage
    meta = Table(show_header=False, show_edge=False, box=None, padding=(0, 1))
    meta.add_column(style="dim", no_wrap=True)
    meta.add_column(overflow="fold")
    for name, value in (
        ("title", a.title),
        ("source", a.source),
        ("date", a.date or "undated"),
        ("author", a.author),
        ("url", a.url),
        ("from", a.origin),
        ("article", a.id),
        ("characters", f"{p.start}–{p.end} of {len(a.text)}"),
    ):
        if value:
            meta.add_row(name, value)
    parts: list[RenderableType] = [meta, Text(""), Text(p.text)]
    if opened.citing:
        parts += [Text(""), Text("Cited by:", style="dim")]
        parts += [Text(f"  “{s.text}”", style="dim italic") for s in opened.citing]
    return Panel(Group(*parts), title=f"[{p.number}] {a.title}", title_align="left", border_style="cyan")


# ---- eval ----------------------------------------------------------------------------------


def summary_table(summary: dict) -> Table:
    table = Table(title=f"qa eval · {summary['name']}", show_edge=False, title_justify="left")
    for name in ("metric", "value", "95% interval", "n"):
        table.add_column(name, justify="left" if name == "metric" else "right")
    for name, entry in summary["metrics"].items():
        digits = 1 if name.endswith("tokens") or name == "summary_words" else 3
        interval = f"{entry['low']:.{digits}f} – {entry['high']:.{digits}f}"
        if name == "latency_s":
            interval += f"  (p50 {entry['p50']:.1f}, p95 {entry['p95']:.1f})"
        table.add_row(LABELS.get(name, name), f"{entry['mean']:.{digits}f}", interval, str(entry["n"]))
    return table


def comparison_tables(result: dict) -> list[RenderableType]:
    """Per-metric deltas with intervals (significant ones coloured), the settings that differ, the flips."""
    table = Table(
        title=f"{result['a']}  →  {result['b']}  ({result['items']} shared items)",
        show_edge=False,
        title_justify="left",
    )
    for col in ("metric", "A", "B", "B − A", "95% interval", "n"):
        table.add_column(col, justify="left" if col == "metric" else "right")
    for d in result["deltas"]:
        significant = d["low"] > 0 or d["high"] < 0
        style = "" if not significant or d["timing"] else ("green" if d["delta"] > 0 else "red")
        table.add_row(
            LABELS.get(d["metric"], d["metric"]),
            f"{d['a']:.3f}",
            f"{d['b']:.3f}",
            f"[{style}]{d['delta']:+.3f}[/{style}]" if style else f"{d['delta']:+.3f}",
            f"{d['low']:+.3f} – {d['high']:+.3f}",
            str(d["n"]),
        )
    parts: list[RenderableType] = [table]
    if result["settings_changed"]:
        parts.append("[bold]Settings that differ:[/bold] " + ", ".join(result["settings_changed"]))
    if result["flips"]:
        flips = Table(title="Items that flipped", show_edge=False, title_justify="left")
        for col in ("id", "metric", "A→B", "question", "answer A", "answer B"):
            flips.add_column(col, overflow="fold")
        for f in result["flips"]:
            flips.add_row(
                f["id"],
                f["metric"],
                f"{f['a']:g}→{f['b']:g}",
                f["question"][:70],
                str(f["answer_a"])[:40],
                str(f["answer_b"])[:40],
            )
        parts.append(flips)
    return parts
