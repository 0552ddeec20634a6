"""Verified notes: the toolkit that summaries and briefings share.

Model text is cut into items (a bullet, a paragraph: lists of sentences), each checked by the
verifier (qa/verify.py) against numbered passages; a part of an article is renumbered 1..k for
one model call and its citations mapped back; with no model, notes are the passages' most
central sentences, quoted and cited.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from dataclasses import replace

import numpy as np

from .chunking import sentence_spans
from .embeddings import Embedder
from .llm import LLM, Messages
from .records import Passage, Sentence, Timings
from .verify import verify

Item = list[Sentence]  # one bullet, or one paragraph: the sentences of it, each verified
CallProgress = Callable[[int, int, str], None]  # (model calls done, calls planned, what is happening)


def renumbered(passages: Sequence[Passage]) -> tuple[list[Passage], dict[int, int]]:
    """The passages numbered 1..k for one model call, and the map back to their own numbers."""
    local = [replace(p, number=i + 1) for i, p in enumerate(passages)]
    return local, {i + 1: p.number for i, p in enumerate(passages)}


def to_global(items: Sequence[Item], mapping: dict[int, int]) -> list[Item]:
    return [[replace(s, citations=tuple(mapping[n] for n in s.citations)) for s in item] for item in items]


class CachedEmbedder:
    """The embedder with a memory, so verifying many small texts against the same passages
    embeds each passage sentence once."""

    def __init__(self, embedder: Embedder):
        self.inner = embedder
        self.name = embedder.name
        self.dimension = embedder.dimension
        self.memo: dict[str, np.ndarray] = {}

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        missing = list(dict.fromkeys(t for t in texts if t not in self.memo))
        if missing:
            for t, v in zip(missing, self.inner.embed(missing), strict=True):
                self.memo[t] = v
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return np.stack([self.memo[t] for t in texts])


def cached(embedder: Embedder) -> Embedder:
    return embedder if isinstance(embedder, CachedEmbedder) else CachedEmbedder(embedder)


def verify_items(texts: Sequence[str], passages: Sequence[Passage]) -> list[Item]:
    """Each text (a bullet, a paragraph) checked by `qa.citations.verify` against the passages."""
    return [item for item in (verify(t, passages) for t in texts) if item]


BULLET = re.compile(r"^(?:[-*•·]|\d{1,2}[.)])\s+")
_LABEL = re.compile(r"^[A-Za-z][\w ']{0,40}:$")  # "Summary:", "Key points:" on a line of their own
_NOTHING = re.compile(
    r"^(?:none|nothing|n/?a|no (?:disagreements?|open questions?|questions?|notes?|information))"
    r"\W*$",
    re.I,
)
_PREFIX = re.compile(r"^(?:summary|paragraph|notes?)\s*:\s*(?=\S)", re.I)  # "Summary: The ..." on one line


def clean_line(line: str) -> str:
    line = line.strip().replace("**", "").replace("__", "")
    return _PREFIX.sub("", re.sub(r"^#+\s*", "", line)).strip()


def bullet_text(line: str) -> str:
    """A line of model text without its bullet mark; "" for blank lines, "none" and bare labels."""
    line = clean_line(line)
    if not line or _LABEL.match(line) and not re.search(r"\[\d", line):
        return ""
    body = BULLET.sub("", line).strip()
    return "" if _NOTHING.match(body) else body


def note_lines(raw: str) -> list[str]:
    """Every line of the model's notes, bullet or not."""
    return [t for t in map(bullet_text, raw.splitlines()) if t]


def units(passages: Sequence[Passage], min_words: int = 5) -> list[tuple[int, str]]:
    found = [(p.number, p.text[a:b]) for p in passages for a, b in sentence_spans(p.text)]
    return [(n, s) for n, s in found if len(s.split()) >= min_words]


def is_statement(sentence: str, words: int = 8) -> bool:
    """A sentence fit to lead a summary: not a question, a sub-heading or a dateline."""
    return len(sentence.split()) >= words and sentence.rstrip("\"'”’)").endswith((".", "!"))


def ranked_sentences(
    passages: Sequence[Passage], embedder: Embedder, topic: np.ndarray | None = None, redundancy: float = 0.85
) -> list[tuple[float, int, int, str]]:
    """(score, order, passage number, sentence), best first: centrality in the article (similarity
    to the mean of all its sentences), plus relevance to `topic` when given; near-repeats dropped."""
    found = units(passages)
    # sub-headings, questions and fragments of live blogs make poor points: statements first
    found = [u for u in found if is_statement(u[1], 6)] or found
    if not found:
        return []
    vectors = embedder.embed([s for _, s in found])
    centre = vectors.mean(axis=0)
    centre /= max(float(np.linalg.norm(centre)), 1e-9)
    score = vectors @ centre
    if topic is not None:
        score = 0.4 * score + 0.6 * (vectors @ topic)
    picked: list[int] = []
    for j in np.argsort(-score):
        if all(float(vectors[j] @ vectors[i]) < redundancy for i in picked):
            picked.append(int(j))
    return [(float(score[j]), j, found[j][0], found[j][1]) for j in picked]


def generate(llm: LLM, messages: Messages, max_tokens: int, temperature: float, timings: Timings) -> str:
    """One model call, its tokens and time added to `timings`."""
    t0 = time.perf_counter()
    raw = llm.complete(messages, max_tokens=max_tokens, temperature=temperature)
    timings.generation_ms += (time.perf_counter() - t0) * 1000
    timings.prompt_tokens += llm.usage.prompt_tokens
    timings.completion_tokens += llm.usage.completion_tokens
    return raw
