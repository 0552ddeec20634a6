"""Briefings on a topic across many articles: find them, summarise each (map), merge (reduce).

Every sentence is verified against the numbered passages (qa/verify.py `verify`), exactly
as answers are. The timeline is built by code from each article's verified notes, ordered by
article date. What articles say is disputed, and what they say is not yet known, is found by
code too, so a briefing has them when the model misses them, and without a model.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from .embeddings import Embedder
from .findings import disagreements, open_questions, two_sided
from .llm import LLM, Messages, model_name
from .notes import (
    CallProgress,
    Item,
    bullet_text,
    cached,
    clean_line,
    generate,
    note_lines,
    ranked_sentences,
    renumbered,
    to_global,
    units,
    verify_items,
)
from .prompts import fill, format_passages
from .records import Article, Cites, Passage, Sentence, Timings
from .search import Library
from .search.context import select_context
from .search.retrieval import Filters, RetrievalOptions, search
from .verify import cited_text

RELEVANCE_FLOOR = 0.25  # MiniLM cosine of the topic with an article's best sentence; unrelated text is ~0.1
RELATIVE_FLOOR = 0.55  # ... and at least this share of the best article's
_SECTIONS = {
    "overview": "overview",
    "summary": "overview",
    "key points": "key_points",
    "key facts": "key_points",
    "disagreements": "disagreements",
    "where sources disagree": "disagreements",
    "open questions": "open_questions",
    "questions": "open_questions",
}
_HEADER = re.compile(
    r"^(overview|summary|key points|key facts|disagreements|where sources disagree|"
    r"open questions|questions)\s*:?\s*(.*)$",
    re.I,
)
# a section header written mid-line ("... [3]. Key points: - ..."), to be put on a line of its own
_INLINE_HEADER = re.compile(
    r"[ \t]+(?=(?:\*\*)?(?:key points|key facts|disagreements|where sources disagree|"
    r"open questions)(?:\*\*)?\s*:)",
    re.I,
)


@dataclass(frozen=True)
class BriefOptions:
    filters: Filters = Filters()
    articles: int = 5  # articles at most in the briefing
    candidates: int = 40  # chunk hits looked at
    per_article_budget: int = 350  # passage tokens taken from each article
    points: int = 5
    notes: int = 3  # notes at most per article in the map step
    temperature: float = 0.0


@dataclass(frozen=True)
class TimelineEntry:
    date: str
    source: str
    title: str
    article_id: str
    sentences: list[Sentence]


@dataclass
class Briefing(Cites):
    topic: str
    overview: Item
    key_points: list[Item]
    timeline: list[TimelineEntry]
    disagreements: list[Item]
    open_questions: list[Item]
    passages: list[Passage]
    articles: list[Article]
    model: str
    fallback: str = ""
    calls: int = 0
    dropped: int = 0  # map notes their passages did not support, left out of the merge
    set_aside: int = 0  # "disagreements" from the model that cite one article and name no dispute
    timings: Timings = field(default_factory=Timings)

    @property
    def sentences(self) -> list[Sentence]:
        items = [
            self.overview,
            *self.key_points,
            *(e.sentences for e in self.timeline),
            *self.disagreements,
            *self.open_questions,
        ]
        return [s for item in items for s in item]

    @property
    def sources(self) -> list[str]:
        return sorted({p.source for p in self.cited if p.source})


# ---- finding the articles ------------------------------------------------------------------


def find_articles(
    topic: str, *, library: Library, options: BriefOptions
) -> tuple[list[Article], list[Passage], np.ndarray]:
    """The most relevant articles, taken in turn from each source, and from each its passages on
    the topic (numbered across the briefing), dated articles first in date order."""
    store, embedder = library.store, library.embedder
    hits, qvec = search(topic, library=library, options=RetrievalOptions(k=options.candidates, filters=options.filters))
    if qvec is None:
        qvec = embedder.embed([topic])[0]
    by_article: dict[str, list] = {}
    for h in hits:
        by_article.setdefault(h.chunk.article_id, []).append(h)
    # the best articles overall, and the best two of every source found, so each source can be taken
    ranked = list(by_article)
    per_source: dict[str, list[str]] = {}
    for aid in ranked:
        per_source.setdefault(by_article[aid][0].source, []).append(aid)
    pool = set(ranked[: options.articles * 2]) | {aid for ids in per_source.values() for aid in ids[:2]}
    scored: list[tuple[float, str, list[Passage]]] = []
    for aid in [a for a in ranked if a in pool]:
        passages = select_context(
            topic,
            by_article[aid],
            library=library,
            qvec=qvec,
            options=RetrievalOptions(budget=options.per_article_budget, per_article=3, falloff=0.0),
        )
        texts = [s for _, s in units(passages, 4)]
        relevance = float(np.max(embedder.embed(texts) @ qvec)) if texts else 0.0
        scored.append((relevance, aid, passages))
    # relevant in itself, and not far below the best article: off-topic articles make a briefing worse
    floor = max(RELEVANCE_FLOOR, RELATIVE_FLOOR * max((r for r, _, _ in scored), default=0.0))
    scored = sorted((row for row in scored if row[0] >= floor), key=lambda r: -r[0])
    # diverse across sources: every source's best article first, then every source's second...
    turn: dict[str, int] = {}
    taken: dict[str, int] = {}
    for _, aid, passages in scored:
        source = passages[0].source if passages else ""
        turn[aid] = taken.get(source, 0)
        taken[source] = turn[aid] + 1
    chosen = sorted(scored, key=lambda r: (turn[r[1]], -r[0]))[: options.articles]
    meta = {a.article.id: a.article for a in store.articles(ids=[aid for _, aid, _ in chosen])}
    chosen.sort(key=lambda r: (meta[r[1]].date or "9999", meta[r[1]].source))
    numbered: list[Passage] = []
    for _, _, passages in chosen:
        for p in passages:
            numbered.append(replace(p, number=len(numbered) + 1))
    return [meta[aid] for _, aid, _ in chosen], numbered, qvec


# ---- map -----------------------------------------------------------------------------------


def map_messages(topic: str, passages: Sequence[Passage], notes: int) -> Messages:
    tag, blocks = format_passages(passages, salt=topic)
    return [
        {"role": "system", "content": fill("brief_map", notes=notes)},
        {"role": "user", "content": fill("brief_map_user", topic=" ".join(topic.split()), tag=tag, passages=blocks)},
    ]


def extract_notes(passages: Sequence[Passage], embedder: Embedder, qvec: np.ndarray, limit: int) -> list[Item]:
    """The article's sentences most central to it and to the topic, quoted and cited."""
    ranked = ranked_sentences(passages, embedder, topic=qvec)[:limit]
    return [[Sentence(text, (number,), True, 1.0)] for _, _, number, text in ranked]


# ---- reduce --------------------------------------------------------------------------------


def reduce_messages(topic: str, notes: dict[str, list[Item]], articles: Sequence[Article], points: int) -> Messages:
    blocks = []
    for art in articles:
        if notes.get(art.id):
            head = f"{art.source or 'unknown source'}, {art.date or 'undated'}: {' '.join(art.title.split())}"
            blocks.append(head + "\n" + "\n".join(f"- {cited_text(item)}" for item in notes[art.id]))
    return [
        {"role": "system", "content": fill("brief_reduce", points=points)},
        {
            "role": "user",
            "content": fill("brief_reduce_user", topic=" ".join(topic.split()), notes="\n\n".join(blocks)),
        },
    ]


def parse_sections(raw: str) -> dict[str, list[str]]:
    """The model's briefing text cut into its sections: the overview as one text, the others as
    lists of bullet texts ("none" dropped)."""
    sections: dict[str, list[str]] = {k: [] for k in ("overview", "key_points", "disagreements", "open_questions")}
    current = "overview"
    for line in _INLINE_HEADER.sub("\n", raw).splitlines():
        line = clean_line(line)
        m = _HEADER.match(line)
        if m:
            current = _SECTIONS[m.group(1).lower()]
            line = m.group(2).strip()
        text = bullet_text(line)
        if text:
            sections[current].append(text)
    if sections["overview"]:
        sections["overview"] = [" ".join(sections["overview"])]
    return sections


def _merge(model: list[Item], code: list[Item], limit: int) -> list[Item]:
    """The model's verified items, then what code found that they do not already cite."""
    cited = {n for item in model for s in item for n in s.citations}
    extra = [item for item in code if not {n for s in item for n in s.citations} <= cited]
    return (model + extra)[:limit]


# ---- the briefing ---------------------------------------------------------------------------


def brief(
    topic: str,
    *,
    library: Library,
    llm: LLM | None,
    options: BriefOptions = BriefOptions(),
    on_progress: CallProgress | None = None,
) -> Briefing:
    """Find the articles on a topic, take notes on each (map), merge them into a briefing (reduce)."""
    t0 = time.perf_counter()
    timings = Timings()
    embedder = cached(library.embedder)
    progress = on_progress or (lambda done, total, what: None)
    articles, passages, qvec = find_articles(topic, library=replace(library, embedder=embedder), options=options)
    timings.retrieval_ms = (time.perf_counter() - t0) * 1000
    by_article = {a.id: [p for p in passages if p.article_id == a.id] for a in articles}
    planned = len(articles) + 1 if llm is not None else 0
    calls = dropped = 0
    notes: dict[str, list[Item]] = {}
    for art in articles:
        own = by_article[art.id]
        if llm is not None:
            progress(calls, planned, f"article {calls + 1} of {len(articles)}: {art.source or art.title[:30]}")
            local, mapping = renumbered(own)
            raw = generate(
                llm, map_messages(topic, local, options.notes), options.notes * 45 + 20, options.temperature, timings
            )
            calls += 1
            found = to_global(verify_items(note_lines(raw), local), mapping)
            kept = [[s for s in item if s.supported] for item in found if any(s.supported for s in item)]
            dropped += sum(not s.supported for item in found for s in item)
            # an article whose notes its passages do not support is noted by its own key sentences
            notes[art.id] = kept or extract_notes(own, embedder, qvec, 2)
        else:
            notes[art.id] = extract_notes(own, embedder, qvec, 2)

    def on_topic(item: Item) -> float:
        return float(embedder.embed([" ".join(s.text for s in item)])[0] @ qvec)

    # each article's entry is its note closest to the topic (a year-in-review's first note may be about anything)
    timeline = [
        TimelineEntry(a.date, a.source, a.title, a.id, max(notes[a.id], key=on_topic)) for a in articles if notes[a.id]
    ]
    found_disagreements = disagreements(passages, embedder, qvec)
    found_questions = open_questions(passages, embedder, qvec)

    def finish(
        overview: Item,
        points: list[Item],
        disputes: list[Item],
        questions: list[Item],
        fallback: str = "",
        set_aside: int = 0,
    ) -> Briefing:
        timings.total_ms = (time.perf_counter() - t0) * 1000
        return Briefing(
            topic,
            overview,
            points,
            timeline,
            disputes,
            questions,
            passages,
            articles,
            model_name(llm),
            fallback=fallback,
            calls=calls,
            dropped=dropped,
            set_aside=set_aside,
            timings=timings,
        )

    ranked = sorted((item for items in notes.values() for item in items), key=on_topic, reverse=True)
    extractive = (ranked[0] if ranked else [], ranked[1 : options.points + 1], found_disagreements, found_questions)
    if llm is None or not articles:
        return finish(*extractive)
    progress(calls, planned, "merging")
    raw = generate(
        llm,
        reduce_messages(topic, notes, articles, options.points),
        150 + options.points * 50,
        options.temperature,
        timings,
    )
    calls += 1
    progress(calls, calls, "verifying")
    sections = parse_sections(raw)
    overview = verify_items(sections["overview"], passages)
    points = verify_items(sections["key_points"], passages)[: options.points]
    proposed = verify_items(sections["disagreements"], passages)
    # what the model calls a disagreement but is one article's account is left out, and counted
    disputes = _merge([item for item in proposed if two_sided(item, passages)], found_disagreements, 3)
    set_aside = sum(not two_sided(item, passages) for item in proposed)
    questions = verify_items(sections["open_questions"], passages)[:2]
    if not any(s.supported for item in overview + points for s in item):
        return finish(
            *extractive,
            fallback="the model's briefing was not supported by the articles; showing their key sentences instead",
        )
    if not any(s.supported for item in questions for s in item):
        questions = questions + found_questions
    note = ""
    if not any(s.supported for item in points for s in item):
        # no key point of the model's holds: the articles' own verified notes stand in, and it is said
        taken = {s.text for item in overview[:1] for s in item}
        points += [item for item in ranked if not taken & {s.text for s in item}][: options.points]
        note = "the model gave no supported key points; they are the articles' own notes"
    return finish(overview[0] if overview else [], points, disputes, questions[:3], fallback=note, set_aside=set_aside)
