"""Plain data that flows through the pipeline: Article -> Chunk -> Hit -> Passage -> Answer."""

from __future__ import annotations

from dataclasses import dataclass, field


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
    chunk_id: str
    text: str
    start: int  # character offsets of `text` inside the article text
    end: int
    title: str = ""
    source: str = ""
    date: str = ""
    url: str = ""
    score: float = 0.0


@dataclass(frozen=True)
class Sentence:
    """One sentence of an answer, its verified citations and whether they support it."""

    text: str
    citations: tuple[int, ...]
    supported: bool
    support: float = 0.0
    added_citation: bool = False  # the code, not the model, attached the citation


@dataclass
class Timings:
    retrieval_ms: float = 0.0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    first_token_ms: float = 0.0
    generation_ms: float = 0.0
    total_ms: float = 0.0

    @property
    def tokens_per_s(self) -> float:
        return self.completion_tokens / (self.generation_ms / 1000) if self.generation_ms > 0 else 0.0


@dataclass
class Answer:
    """What `qa ask` returns: verified sentences, the passages they cite, and how it went."""

    question: str
    text: str
    sentences: list[Sentence]
    passages: list[Passage]
    model: str
    refused: bool = False
    fallback: str = ""  # why the answer is extractive evidence rather than the model's words
    incomplete: bool = False
    timings: Timings = field(default_factory=Timings)

    @property
    def cited(self) -> list[Passage]:
        used = {n for s in self.sentences for n in s.citations}
        return [p for p in self.passages if p.number in used]
