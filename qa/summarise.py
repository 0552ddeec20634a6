"""Summaries of one article, every claim cited and verified (qa/verify.py), with no model too.

- The article's sentences are grouped into numbered passages, the unit a citation points at.
- It fits the context budget: one call. It does not: map-reduce. Each part is summarised
  (map) with its passages numbered 1..k, the verified citations are renumbered into the
  article's global numbers, and the notes are merged (reduce) keeping those numbers; the
  merged text is verified again against every passage of the article.
- Extractive: the lead sentence plus the most central ones, quoted and cited. It needs no
  model, is the fallback when the model's text has no supported sentence, and the baseline.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from .chunking import sentence_spans
from .embeddings import Embedder
from .errors import UsageError
from .llm import LLM, Messages, model_name
from .notes import (
    BULLET,
    CallProgress,
    Item,
    bullet_text,
    cached,
    clean_line,
    generate,
    is_statement,
    note_lines,
    ranked_sentences,
    renumbered,
    to_global,
    verify_items,
)
from .prompts import fill, format_passages
from .records import Article, Cites, Passage, Sentence, Timings
from .tokens import count_tokens
from .verify import cited_text, verify

PASSAGE_OVERHEAD = 24  # tokens of delimiter and title/source/date around each passage
STYLES = ("bullets", "paragraph")


@dataclass(frozen=True)
class SummaryOptions:
    style: str = "bullets"  # "bullets" (headline plus bullets) or "paragraph"
    bullets: int = 5
    words: int = 0  # 0: a default for the style
    budget: int = 1000  # passage tokens sent in one model call; a longer article is map-reduced
    passage_tokens: int = 120
    temperature: float = 0.0

    @property
    def word_limit(self) -> int:
        return self.words or (self.bullets * 25 if self.style == "bullets" else 100)


@dataclass
class Summary(Cites):
    """A verified summary: a headline and points (bullets), or one paragraph, over numbered passages."""

    article: Article
    headline: Item
    points: list[Item]
    passages: list[Passage]
    style: str
    model: str
    parts: int = 1  # map parts (1: the article fitted in one call)
    calls: int = 0  # model calls made
    fallback: str = ""  # why the summary is extractive rather than the model's words
    dropped: int = 0  # the model's sentences (and map-step notes) the article does not state: not shown
    timings: Timings = field(default_factory=Timings)

    @property
    def sentences(self) -> list[Sentence]:
        return [s for item in [self.headline, *self.points] for s in item]

    @property
    def text(self) -> str:
        """The summary as plain text, without citation markers."""
        return " ".join(s.text for s in self.sentences)

    @property
    def support_rate(self) -> float:
        return sum(s.supported for s in self.sentences) / len(self.sentences) if self.sentences else 0.0


# ---- passages ------------------------------------------------------------------------------


def article_passages(article: Article, max_tokens: int = 120, first: int = 1) -> list[Passage]:
    """The article's sentences grouped into numbered passages of about `max_tokens` tokens,
    broken preferably at paragraph ends, each with its offsets in the article text."""
    text = article.text
    spans = sentence_spans(text)
    groups: list[list[tuple[int, int, int]]] = []
    size = 0
    for a, b in spans:
        tokens = count_tokens(text[a:b])
        current = groups[-1] if groups else None
        paragraph_end = current is not None and "\n" in text[current[-1][1] : a]
        if current is None or size + tokens > max_tokens or (paragraph_end and size >= max_tokens // 2):
            groups.append([(a, b, tokens)])
            size = tokens
        else:
            current.append((a, b, tokens))
            size += tokens
    return [
        Passage(
            number=first + i,
            article_id=article.id,
            text=text[g[0][0] : g[-1][1]],
            start=g[0][0],
            end=g[-1][1],
            title=article.title,
            source=article.source,
            date=article.date,
            url=article.url,
        )
        for i, g in enumerate(groups)
    ]


def passage_cost(p: Passage) -> int:
    return count_tokens(p.text) + PASSAGE_OVERHEAD + count_tokens(p.title) // 2


def split_parts(passages: Sequence[Passage], budget: int) -> list[list[Passage]]:
    """Consecutive passages packed into parts of at most `budget` tokens (a passage is never cut)."""
    parts: list[list[Passage]] = []
    used = 0
    for p in passages:
        cost = passage_cost(p)
        if parts and used + cost <= budget:
            parts[-1].append(p)
            used += cost
        else:
            parts.append([p])
            used = cost
    return parts


_HEADLINE = re.compile(r"^(?:headline|title)\s*[:\-–]\s*", re.I)


def parse_lines(raw: str) -> tuple[str, list[str]]:
    """(headline, bullets) from model text; a leading plain line counts as the headline."""
    headline, bullets = "", list[str]()
    for line in raw.splitlines():
        line = clean_line(line)
        if _HEADLINE.match(line):
            headline = headline or _HEADLINE.sub("", line)
        elif not headline and not bullets and line and not BULLET.match(line) and bullet_text(line):
            headline = line
        elif text := bullet_text(line):
            bullets.append(text)
    return headline, bullets


def word_count(sentences: Sequence[Sentence]) -> int:
    return sum(len(s.text.split()) for s in sentences)


def trim(items: list[Item], words: int) -> list[Item]:
    """Whole sentences, in order, up to the word limit (a little slack; never empty)."""
    out: list[Item] = []
    used = 0
    for item in items:
        kept: Item = []
        for s in item:
            n = len(s.text.split())
            if used + n > words * 1.15 and (out or kept):
                break
            kept.append(s)
            used += n
        if kept:
            out.append(kept)
        if len(kept) < len(item):
            break
    return out


# ---- extractive ----------------------------------------------------------------------------


def extract_summary(
    passages: Sequence[Passage], embedder: Embedder, options: SummaryOptions
) -> tuple[Item, list[Item]]:
    """(headline, points) with no model: the lead sentence, then the most central sentences, cited."""
    ranked = ranked_sentences(passages, embedder)
    if not ranked:
        return [], []
    order = sorted(ranked, key=lambda r: r[1])
    lead = next((r for r in order if is_statement(r[3])), order[0])
    rest = [r for r in ranked if r is not lead]
    quote = lambda r: Sentence(r[3], (r[2],), True, 1.0)
    if options.style == "bullets":
        return [quote(lead)], [[quote(r)] for r in sorted(rest[: options.bullets], key=lambda r: r[1])]
    chosen, words = [lead], len(lead[3].split())
    for r in rest:
        n = len(r[3].split())
        if words + n > options.word_limit * 1.15:
            continue
        chosen.append(r)
        words += n
    return [], [[quote(r) for r in sorted(chosen, key=lambda r: r[1])]]


def _shape(options: SummaryOptions) -> str:
    if options.style == "bullets":
        return fill("summarise_shape_bullets", bullets=options.bullets, words=options.word_limit)
    return fill("summarise_shape_paragraph", words=options.word_limit)


def _max_tokens(options: SummaryOptions) -> int:
    return int(options.word_limit * 2.2) + 60  # room for citation markers and the headline


def summary_messages(passages: Sequence[Passage], options: SummaryOptions) -> Messages:
    tag, blocks = format_passages(passages, salt="summarise")
    return [
        {"role": "system", "content": fill("summarise_system", shape=_shape(options))},
        {"role": "user", "content": fill("summarise_user", tag=tag, passages=blocks)},
    ]


def map_messages(passages: Sequence[Passage], part: int, parts: int, title: str, notes: int) -> Messages:
    tag, blocks = format_passages(passages, salt=f"map{part}")
    return [
        {"role": "system", "content": fill("summarise_map", notes=notes)},
        {
            "role": "user",
            "content": fill(
                "summarise_map_user",
                part=part,
                parts=parts,
                title=" ".join(title.split()) or "untitled",
                tag=tag,
                passages=blocks,
            ),
        },
    ]


def reduce_messages(notes: Sequence[Item], title: str, options: SummaryOptions) -> Messages:
    lines = "\n".join(f"- {cited_text(item)}" for item in notes)
    return [
        {"role": "system", "content": fill("summarise_reduce", shape=_shape(options))},
        {
            "role": "user",
            "content": fill("summarise_reduce_user", title=" ".join(title.split()) or "untitled", notes=lines),
        },
    ]


def shape_items(
    raw: str, passages: Sequence[Passage], embedder: Embedder, options: SummaryOptions
) -> tuple[Item, list[Item]]:
    """The model's text as a verified (headline, points), cut to the asked length."""
    headline_text, lines = parse_lines(raw)
    if options.style == "paragraph":
        body = " ".join(([headline_text] if headline_text else []) + lines)
        items = verify_items([body], passages)
        return [], trim(items, options.word_limit)
    headline = verify(headline_text, passages) if headline_text else []
    points = verify_items(lines, passages)[: options.bullets]
    return headline, trim(points, max(options.word_limit - word_count(headline), 10))


def summarise(
    article: Article,
    *,
    llm: LLM | None,
    embedder: Embedder,
    options: SummaryOptions = SummaryOptions(),
    on_progress: CallProgress | None = None,
) -> Summary:
    """Summarise one article: extractive, one call, or map-reduce when it exceeds the budget."""
    if options.style not in STYLES:
        raise UsageError(f"--style must be bullets or paragraph, not {options.style!r}.")
    t0 = time.perf_counter()
    timings = Timings()
    embedder = cached(embedder)
    passages = article_passages(article, options.passage_tokens)
    progress = on_progress or (lambda done, total, what: None)

    def finish(headline: Item, points: list[Item], **extra: Any) -> Summary:
        timings.total_ms = (time.perf_counter() - t0) * 1000
        return Summary(article, headline, points, passages, options.style, model_name(llm), timings=timings, **extra)

    if llm is None or not passages:
        return finish(*extract_summary(passages, embedder, options))

    parts = split_parts(passages, options.budget)
    calls = dropped = 0
    if len(parts) == 1:
        progress(0, 1, "summarising")
        raw = generate(llm, summary_messages(passages, options), _max_tokens(options), options.temperature, timings)
        calls = 1
        progress(1, 1, "verifying")
        headline, points = shape_items(raw, passages, embedder, options)
    else:
        notes: list[Item] = []
        dropped = 0
        per_part = max(3, min(6, options.bullets))
        planned = len(parts) + 1
        for i, part in enumerate(parts, 1):
            progress(calls, planned, f"part {i} of {len(parts)}")
            local, mapping = renumbered(part)
            raw = generate(
                llm,
                map_messages(local, i, len(parts), article.title, per_part),
                per_part * 45 + 20,
                options.temperature,
                timings,
            )
            calls += 1
            found = to_global(verify_items(note_lines(raw), local), mapping)
            # only what the passages support goes on to the merge (the count of the rest is reported)
            notes += [[s for s in item if s.supported] for item in found if any(s.supported for s in item)]
            dropped += sum(not s.supported for item in found for s in item)
        headline, points, used = _reduce(
            notes,
            article.title,
            passages,
            llm,
            embedder,
            options,
            timings,
            lambda done, total, what: progress(calls + done, calls + total, what),
        )
        calls += used
        progress(calls, calls, "done")
    # as in answers: a sentence the article does not state is not shown (it is counted in `dropped`)
    dropped += sum(not s.supported for s in headline + [s for item in points for s in item])
    headline = [s for s in headline if s.supported]
    points = [[s for s in item if s.supported] for item in points if any(s.supported for s in item)]
    if not headline and not points:
        headline, points = extract_summary(passages, embedder, options)
        return finish(
            headline,
            points,
            parts=len(parts),
            calls=calls,
            dropped=dropped,
            fallback="the model's summary was not supported by the article; showing its key sentences instead",
        )
    return finish(headline, points, parts=len(parts), calls=calls, dropped=dropped)


def _reduce(
    notes: list[Item],
    title: str,
    passages: Sequence[Passage],
    llm: LLM,
    embedder: Embedder,
    options: SummaryOptions,
    timings: Timings,
    progress: CallProgress,
) -> tuple[Item, list[Item], int]:
    """Merge notes into the summary; notes over the budget are merged in groups first, round by round."""
    calls = 0
    note_options = replace(options, style="bullets", bullets=6, words=150)
    while sum(count_tokens(cited_text(n)) + 2 for n in notes) > options.budget and len(notes) > 1:
        groups: list[list[Item]] = [[]]
        used = 0
        for note in notes:
            cost = count_tokens(cited_text(note)) + 2
            if groups[-1] and used + cost > options.budget:
                groups.append([])
                used = 0
            groups[-1].append(note)
            used += cost
        if len(groups) == len(notes):
            break  # every note is a group of its own: merging cannot shrink them further
        merged: list[Item] = []
        for group in groups:
            progress(calls, calls + len(groups) + 1, "merging notes")
            raw = generate(
                llm,
                reduce_messages(group, title, note_options),
                _max_tokens(note_options),
                options.temperature,
                timings,
            )
            calls += 1
            head, points = shape_items(raw, passages, embedder, note_options)
            merged += [[s for s in item if s.supported] for item in [head, *points] if any(s.supported for s in item)]
        notes = merged
    progress(calls, calls + 1, "merging")
    if not notes:
        return [], [], calls
    raw = generate(llm, reduce_messages(notes, title, options), _max_tokens(options), options.temperature, timings)
    headline, points = shape_items(raw, passages, embedder, options)
    return headline, points, calls + 1
