"""What code finds in a briefing's passages, with or without a model: the sentences that say a
figure or claim is disputed (with the figure on the other side), and those that say something is
not yet known or decided; quoted, cited, the most relevant to the topic first."""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from .chunking import sentence_spans
from .embeddings import Embedder
from .notes import Item, units
from .records import Passage, Sentence

OPEN_QUESTION = re.compile(
    r"\b(not yet|still not|has not been|have not been|yet to|unclear|uncertain|unknown|undecided|"
    r"remains? to be|no decision|will decide|would not say|declined to|called for|an independent "
    r"review|once the)\b",
    re.I,
)
DISPUTE = re.compile(
    r"\b(disput(?:es|ed|ing) (?:the|this|that|these|those|his|her|their|its)\b|disagree\w*|"
    r"contradict\w*|far (?:lower|higher)|at odds|conflicting|\d[\w ,.]{0,30} apart\b|"
    r"counted .* twice|overstat\w*|understat\w*)",
    re.I,
)


def disagreements(passages: Sequence[Passage], embedder: Embedder, qvec: np.ndarray, limit: int = 2) -> list[Item]:
    """Sentences in which an article says a figure or claim is disputed, each with the neighbouring
    sentence that gives a figure (the other side), quoted and cited; most relevant first."""
    found: list[tuple[str, Item]] = []
    for p in passages:
        sentences = [p.text[a:b] for a, b in sentence_spans(p.text)]
        for k, text in enumerate(sentences):
            if len(text.split()) < 3 or not DISPUTE.search(text):
                continue
            before = sentences[k - 1] if k > 0 and re.search(r"\d", sentences[k - 1]) else ""
            after = sentences[k + 1] if k + 1 < len(sentences) and re.search(r"\d", sentences[k + 1]) else ""
            side = [before, text] if before and (not after or not re.search(r"\d", text)) else [text, after]
            found.append((" ".join(side), [Sentence(t, (p.number,), True, 1.0) for t in side if t]))
    if not found:
        return []
    relevance = embedder.embed([t for t, _ in found]) @ qvec
    return _best_distinct([(float(r), item) for r, (_, item) in zip(relevance, found, strict=True)], limit)


def open_questions(passages: Sequence[Passage], embedder: Embedder, qvec: np.ndarray, limit: int = 2) -> list[Item]:
    """Sentences that say something is not yet known or decided, most relevant first."""
    found = [(n, s) for n, s in units(passages, 5) if OPEN_QUESTION.search(s)]
    if not found:
        return []
    relevance = embedder.embed([s for _, s in found]) @ qvec
    return _best_distinct(
        [(float(r), [Sentence(s, (n,), True, 1.0)]) for r, (n, s) in zip(relevance, found, strict=True)], limit
    )


def _best_distinct(found: list[tuple[float, Item]], limit: int) -> list[Item]:
    out: list[Item] = []
    seen: set[str] = set()
    for _, item in sorted(found, key=lambda f: -f[0]):
        texts = {s.text for s in item}
        if texts & seen:
            continue
        seen |= texts
        out.append(item)
        if len(out) >= limit:
            break
    return out


def two_sided(item: Item, passages: Sequence[Passage]) -> bool:
    """A disagreement has two sides: it cites two articles, or its own words say something is disputed."""
    owner = {p.number: p.article_id for p in passages}
    return len({owner[n] for s in item for n in s.citations}) >= 2 or bool(
        DISPUTE.search(" ".join(s.text for s in item))
    )
