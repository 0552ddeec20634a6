"""Markdown and JSON documents of what the core returns: answers, summaries, briefings, ingest
reports, articles. A sentence its passages do not support is shown with a warning, never dropped
silently. Nothing here computes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict

from ..brief import Briefing
from ..chunking import snippet
from ..ingest.pipeline import STATUSES, IngestReport
from ..records import Answer, Passage, Sentence, Timings, passage_json, sentence_json
from ..store import StoredArticle
from ..summarise import Summary
from ..tokens import count_tokens
from ..verify import cited_text

FLAG = "⚠ *not supported by the cited passages*"
NO_SUPPORT = "⚠ *not supported by the article*"


# ---- JSON ----------------------------------------------------------------------------------


def ingest_json(report: IngestReport) -> dict:
    return {
        "counts": {s: report.count(s) for s in STATUSES},
        "chunks_added": report.chunks_added,
        "seconds": round(report.seconds, 3),
        "embed_seconds": round(report.embed_seconds, 3),
        "interrupted": report.interrupted,
        "recovered": report.recovered,
        "items": [asdict(i) for i in report.items],
        "warnings": [asdict(w) for w in report.warnings],
    }


def article_json(a: StoredArticle) -> dict:
    art = a.article
    return {
        "id": art.id,
        "title": art.title,
        "source": art.source,
        "date": art.date,
        "url": art.url,
        "author": art.author,
        "origin": art.origin,
        "chunks": a.chunks,
        "also_reported": [asdict(r) for r in a.also_reported],
    }


def _offsets(passages: Sequence[Passage]) -> list[dict]:
    return [{"number": p.number, "article_id": p.article_id, "start": p.start, "end": p.end} for p in passages]


def answer_json(answer: Answer) -> dict:
    t = answer.timings
    return {
        "question": answer.question,
        "answer": answer.text,
        "refused": answer.refused,
        "model": answer.model,
        "reason": answer.reason or None,
        "incomplete": answer.incomplete,
        "checks": answer.checks,
        "judge": answer.judge,
        "language_note": answer.language_note or None,
        "sentences": [sentence_json(s) for s in answer.sentences],
        "dropped": [sentence_json(s) for s in answer.dropped],
        "citations": [passage_json(p) for p in answer.cited],
        "passages": _offsets(answer.passages),
        "timings": {
            "sources_ms": round(t.sources_ms, 1),
            "retrieval_ms": round(t.retrieval_ms, 1),
            "context_tokens": sum(count_tokens(p.text) for p in answer.passages),
            "prompt_tokens": t.prompt_tokens,
            "completion_tokens": t.completion_tokens,
            "first_token_ms": round(t.first_token_ms, 1),
            "tokens_per_s": round(t.tokens_per_s, 2),
            "checks_ms": round(t.checks_ms, 1),
            "total_ms": round(t.total_ms, 1),
        },
    }


def _item_json(item: Sequence[Sentence]) -> dict:
    return {
        "text": cited_text(item),
        "supported": all(s.supported for s in item),
        "sentences": [sentence_json(s) for s in item],
    }


def _timings_json(t: Timings) -> dict:
    return {
        "retrieval_ms": round(t.retrieval_ms, 1),
        "generation_ms": round(t.generation_ms, 1),
        "prompt_tokens": t.prompt_tokens,
        "completion_tokens": t.completion_tokens,
        "total_ms": round(t.total_ms, 1),
    }


def summary_json(s: Summary) -> dict:
    art = s.article
    return {
        "article": {"id": art.id, "title": art.title, "source": art.source, "date": art.date, "url": art.url},
        "style": s.style,
        "model": s.model,
        "parts": s.parts,
        "calls": s.calls,
        "fallback": s.fallback or None,
        "dropped_notes": s.dropped,
        "support_rate": round(s.support_rate, 3),
        "headline": _item_json(s.headline) if s.headline else None,
        "points": [_item_json(i) for i in s.points],
        "citations": [passage_json(p) for p in s.cited],
        "passages": [{"number": p.number, "start": p.start, "end": p.end} for p in s.passages],
        "timings": _timings_json(s.timings),
    }


def briefing_json(b: Briefing) -> dict:
    return {
        "topic": b.topic,
        "model": b.model,
        "fallback": b.fallback or None,
        "calls": b.calls,
        "dropped_notes": b.dropped,
        "set_aside_disagreements": b.set_aside,
        "sources": b.sources,
        "overview": _item_json(b.overview) if b.overview else None,
        "key_points": [_item_json(i) for i in b.key_points],
        "timeline": [
            {
                "date": e.date,
                "source": e.source,
                "title": e.title,
                "article_id": e.article_id,
                **_item_json(e.sentences),
            }
            for e in b.timeline
        ],
        "disagreements": [_item_json(i) for i in b.disagreements],
        "open_questions": [_item_json(i) for i in b.open_questions],
        "articles": [
            {"id": a.id, "title": a.title, "source": a.source, "date": a.date, "url": a.url} for a in b.articles
        ],
        "citations": [passage_json(p) for p in b.cited],
        "timings": _timings_json(b.timings),
    }


# ---- Markdown ------------------------------------------------------------------------------


def item_markdown(item: Sequence[Sentence]) -> str:
    """Sentences with their citation markers; each unsupported one flagged where it stands."""
    parts = []
    for s in item:
        text = cited_text([s])
        if not s.supported:
            text += " " + (FLAG if s.citations else NO_SUPPORT)
        parts.append(text)
    return " ".join(parts)


def sources_markdown(passages: Sequence[Passage]) -> list[str]:
    lines = ["## Sources", ""]
    for p in passages:
        where = ", ".join(x for x in (p.source, p.date or "undated") if x)
        link = f" <{p.url}>" if p.url else ""
        lines += [f"[{p.number}] **{p.title or '(untitled)'}**, {where}.{link}  ", f"> {snippet(p.text, 240)}", ""]
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


def summary_markdown(summary: Summary) -> str:
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


def briefing_markdown(b: Briefing) -> str:
    lines = [f"# Briefing: {' '.join(b.topic.split())}", ""]
    lines += [f"*{len(b.articles)} article(s), {len(b.sources)} source(s) cited: {', '.join(b.sources) or '-'}*", ""]
    aside = (
        [
            f"> {b.set_aside} item(s) the model gave as disagreements cite one article and name no dispute; "
            "they were left out."
        ]
        if b.set_aside
        else []
    )
    lines += notes_markdown(b.fallback, b.dropped, b.sentences, aside)
    lines += ["## Overview", ""] + ([item_markdown(b.overview)] if b.overview else ["(none)"]) + [""]
    lines += ["## Key points", ""] + ([f"- {item_markdown(i)}" for i in b.key_points] or ["- (none)"]) + [""]
    lines += ["## Timeline", ""]
    lines += [
        f"- **{e.date or 'undated'}** · {e.source or 'unknown source'}, *{e.title}*: {item_markdown(e.sentences)}"
        for e in b.timeline
    ] or ["- (none)"]
    lines.append("")
    for title, items in (("Where sources disagree", b.disagreements), ("Open questions", b.open_questions)):
        lines += [f"## {title}", ""] + ([f"- {item_markdown(i)}" for i in items] or ["- (none found)"]) + [""]
    lines += sources_markdown(b.cited)
    lines += [f"*{b.model}, {b.calls} model call(s), {b.timings.total_ms / 1000:.1f} s.*", ""]
    return "\n".join(lines)
