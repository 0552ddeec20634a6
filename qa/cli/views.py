"""Terminal views (rich) and JSON shapes for what the core returns. Nothing here computes."""

from __future__ import annotations

from dataclasses import asdict
from typing import Sequence

from rich.console import Console, Group
from rich.markdown import Markdown
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from ..doctor import Check
from ..ingest.pipeline import STATUSES, IngestReport
from ..records import Answer, Passage
from ..store import StoredArticle


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
    lines += [Text.assemble(("duplicate ", "cyan"), f"{i.origin}: {i.detail}") for i in report.items
              if i.status == "duplicate"][:20]
    return lines


def ingest_json(report: IngestReport) -> dict:
    return {"counts": {s: report.count(s) for s in STATUSES}, "chunks_added": report.chunks_added,
            "seconds": round(report.seconds, 3), "embed_seconds": round(report.embed_seconds, 3),
            "interrupted": report.interrupted, "recovered": report.recovered,
            "items": [asdict(i) for i in report.items], "warnings": [asdict(w) for w in report.warnings]}


def sources_table(articles: Sequence[StoredArticle]) -> Table:
    table = Table(show_edge=False)
    table.add_column("id", no_wrap=True)
    table.add_column("date", no_wrap=True)
    table.add_column("source", no_wrap=True, max_width=22, overflow="ellipsis")
    table.add_column("title", ratio=1, overflow="fold")
    table.add_column("chunks", justify="right", no_wrap=True)
    for a in articles:
        title = Text(a.article.title)
        if a.also_reported:  # copies of this story from elsewhere, kept as sources only
            others = ", ".join(dict.fromkeys(r.source or r.url or r.origin for r in a.also_reported))
            title.append(f"  +{len(a.also_reported)} source{'s' if len(a.also_reported) > 1 else ''}: {others}",
                         style="dim")
        table.add_row(a.article.id[:10], a.article.date or "-", a.article.source or "-", title, str(a.chunks))
    return table


def article_json(a: StoredArticle) -> dict:
    art = a.article
    return {"id": art.id, "title": art.title, "source": art.source, "date": art.date, "url": art.url,
            "author": art.author, "origin": art.origin, "chunks": a.chunks,
            "also_reported": [asdict(r) for r in a.also_reported]}


def _snippet(text: str, width: int = 220) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[:width].rsplit(" ", 1)[0] + " …"


def sources_panel(passages: Sequence[Passage], title: str = "Sources") -> Panel:
    table = Table(show_header=False, show_edge=False, box=None, padding=(0, 1))
    table.add_column(style="bold cyan", no_wrap=True)
    table.add_column()
    for p in passages:
        head = Text.assemble((p.title or "(untitled)", "bold"), f"  {p.source or '-'}  {p.date or 'undated'}")
        body = [head]
        if p.url:
            body.append(Text(p.url, style="blue underline"))
        body.append(Text(f"“{_snippet(p.text)}”", style="dim"))
        table.add_row(f"[{p.number}]", Group(*body))
    return Panel(table, title=title, title_align="left", border_style="cyan")


def answer_view(answer: Answer) -> Group:
    parts: list = [Markdown(answer.text)]
    if answer.fallback:
        parts.append(Text(f"Note: {answer.fallback}.", style="yellow"))
    if answer.incomplete:
        parts.append(Text("The answer was cut off before the model finished (incomplete).", style="yellow"))
    flagged = [s for s in answer.sentences if not s.supported]
    for s in flagged:
        parts.append(Text(f"⚠ not supported by the cited passages: “{_snippet(s.text, 160)}”", style="red"))
    added = [s for s in answer.sentences if s.added_citation]
    if added:
        parts.append(Text(f"{len(added)} citation(s) added by verification.", style="dim"))
    return Group(*parts)


def timings_line(answer: Answer) -> Text:
    t = answer.timings
    bits = [answer.model, f"retrieval {t.retrieval_ms:.0f} ms"]
    if t.prompt_tokens:
        bits += [f"prompt {t.prompt_tokens} tok", f"first token {t.first_token_ms / 1000:.1f} s",
                 f"{t.tokens_per_s:.1f} tok/s"]
    bits.append(f"total {t.total_ms / 1000:.1f} s")
    return Text(" · ".join(bits), style="dim")


def answer_json(answer: Answer) -> dict:
    t = answer.timings
    return {
        "question": answer.question, "answer": answer.text, "refused": answer.refused, "model": answer.model,
        "fallback": answer.fallback or None, "incomplete": answer.incomplete,
        "sentences": [{"text": s.text, "citations": list(s.citations), "supported": s.supported,
                       "support": s.support, "citation_added": s.added_citation} for s in answer.sentences],
        "citations": [{"number": p.number, "article_id": p.article_id, "title": p.title, "source": p.source,
                       "date": p.date, "url": p.url, "start": p.start, "end": p.end, "text": p.text}
                      for p in answer.cited],
        "passages": [{"number": p.number, "article_id": p.article_id, "start": p.start, "end": p.end}
                     for p in answer.passages],
        "timings": {"retrieval_ms": round(t.retrieval_ms, 1), "prompt_tokens": t.prompt_tokens,
                    "completion_tokens": t.completion_tokens, "first_token_ms": round(t.first_token_ms, 1),
                    "tokens_per_s": round(t.tokens_per_s, 2), "total_ms": round(t.total_ms, 1)},
    }


def checks_table(checks: Sequence[Check], title: str) -> Table:
    table = Table(title=title, show_edge=False, title_justify="left")
    for name in ("", "component", "version", "detail"):
        table.add_column(name, overflow="fold")
    for c in checks:
        table.add_row(Text("✔", style="green") if c.ok else Text("✘", style="bold red"), c.component,
                      c.version or "", c.detail)
    return table


def error(console: Console, message: str) -> None:
    console.print(Text.assemble(("error: ", "bold red"), message), soft_wrap=True)
