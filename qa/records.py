"""Plain data that flows through the pipeline: Article -> Chunk -> Hit -> Passage -> Answer."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class Article:
    """One cleaned article, ready to chunk. `id` is derived from its normalised text."""

    id: str
    text: str
    title: str
    source: str = ""
    date: str = ""  # ISO 8601 date (YYYY-MM-DD) or "" when unknown
    url: str = ""
    author: str = ""
    origin: str = ""  # where it came from: a path, or path#line for a JSON record


@dataclass(frozen=True)
class Chunk:
    """A token-bounded slice of an article with its character offsets in the article text."""

    id: str
    article_id: str
    position: int
    text: str
    start: int
    end: int
    tokens: int


@dataclass(frozen=True)
class Hit:
    """A chunk found by retrieval, with its fused score and the article it came from."""

    chunk: Chunk
    score: float
    title: str = ""
    source: str = ""
    date: str = ""
    url: str = ""


@dataclass(frozen=True)
class Passage:
    """A numbered piece of context sent to the model: the unit a citation `[n]` points at."""

    number: int
    article_id: str
    text: str
    start: int  # character offsets of `text` inside the article text
    end: int
    title: str = ""
    source: str = ""
    date: str = ""
    url: str = ""
    score: float = 0.0
    best: tuple[int, int] | None = None  # offsets in `text` of its sentence that scored best for the question


@dataclass(frozen=True)
class Sentence:
    """One sentence of an answer, its verified citations and whether they support it."""

    text: str
    citations: tuple[int, ...]
    supported: bool
    support: float = 0.0  # share of its content words that its cited passages contain
    added_citation: bool = False  # the code, not the model, attached the citation
    evidence: tuple[int, int, int] | None = None  # (passage number, start, end): where the passage states it
    missing: tuple[str, ...] = ()  # when not supported: what its passages lack (a name, "#3", a word stem, "!not")


@dataclass
class Timings:
    sources_ms: float = 0.0  # from the command's start until the passages were ready to show
    retrieval_ms: float = 0.0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    first_token_ms: float = 0.0
    generation_ms: float = 0.0
    checks_ms: float = 0.0  # grounding after generation: claims, question terms, the model's own check
    total_ms: float = 0.0

    @property
    def tokens_per_s(self) -> float:
        return self.completion_tokens / (self.generation_ms / 1000) if self.generation_ms > 0 else 0.0


class _Citing(Protocol):
    @property
    def passages(self) -> Sequence[Passage]: ...

    @property
    def sentences(self) -> Sequence[Sentence]: ...


class Cites:
    """For results made of verified sentences over numbered passages (answers, summaries, briefings)."""

    @property
    def cited(self: _Citing) -> list[Passage]:
        """The passages some sentence cites, in passage order."""
        used = {n for s in self.sentences for n in s.citations}
        return [p for p in self.passages if p.number in used]


@dataclass
class Answer(Cites):
    """What `qa ask` returns: verified sentences, the passages they cite, and how it went."""

    question: str
    text: str
    sentences: list[Sentence]
    passages: list[Passage]
    model: str
    refused: bool = False
    reason: str = ""  # why it refused, when it did
    incomplete: bool = False
    timings: Timings = field(default_factory=Timings)
    language_note: str = ""  # said when the question or its passages are not English (the embedder is English-only)
    dropped: list[Sentence] = field(default_factory=list)  # the model's sentences the passages do not state
    checks: list[str] = field(default_factory=list)  # which grounding checks ran (qa/grounding.py)
    judge: float | None = None  # the model's own check: P(the evidence answers the question)
    raw: str = ""  # the model's reply as it wrote it

    @property
    def proposed(self) -> int:
        """Sentences the model proposed: shown and dropped."""
        return len(self.sentences) + len(self.dropped)


def sentence_json(s: Sentence, *, scores: bool = True) -> dict:
    """A verified sentence as JSON; with `scores`, its support score and whether code added its citation."""
    data: dict = {"text": s.text, "citations": list(s.citations), "supported": s.supported}
    if scores:
        data.update(support=s.support, citation_added=s.added_citation)
        if s.evidence:
            data["evidence"] = {"passage": s.evidence[0], "start": s.evidence[1], "end": s.evidence[2]}
        if s.missing:
            data["missing"] = list(s.missing)
    return data


def passage_json(p: Passage) -> dict:
    """A cited passage as JSON: where it comes from and its offsets in its article's text."""
    return {
        "number": p.number,
        "article_id": p.article_id,
        "title": p.title,
        "source": p.source,
        "date": p.date,
        "url": p.url,
        "start": p.start,
        "end": p.end,
        "text": p.text,
    }
