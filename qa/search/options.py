"""What retrieval is asked for: the filters a user sets, and every knob of search and context
selection. The defaults are qa's measured choices; experiments (eval/retrieval_*.py) pass others."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from ..store import date_number

RRF_K = 60


@dataclass(frozen=True)
class Filters:
    source: str = ""
    since: str = ""  # ISO dates, inclusive
    until: str = ""

    def where(self) -> dict | None:
        clauses: list[dict] = []
        if self.source:
            clauses.append({"source": self.source})
        if self.since:
            clauses.append({"date": {"$gte": date_number(self.since)}})
        if self.until:
            clauses.append({"date": {"$lte": date_number(self.until)}})
        if not clauses:
            return None
        return clauses[0] if len(clauses) == 1 else {"$and": clauses}

    def admits(self, source: str, date: str) -> bool:
        if self.source and source != self.source:
            return False
        if self.since and (not date or date < self.since):
            return False
        if self.until and (not date or date > self.until):
            return False
        return True


@dataclass(frozen=True)
class RetrievalOptions:
    """Search: `k` dense candidates and `bm25_factor * k` BM25 ones, fused by reciprocal rank
    (`rrf_k`), filtered, the best `k` kept. Context: the sentences of the best `top_chunks`
    chunks scored (`dense_weight` x similarity to the question + `lexical_weight` x its share of
    the question's idf + `rank_weight` x its chunk's rank weight), each taken with `neighbours`
    sentences either side, at most `per_article` windows per article, until `budget` tokens
    (`header_tokens` counted once per article) are spent, or (adaptive) until the sentences left
    score under `falloff` x the best one once `min_budget` tokens are in."""

    budget: int = 1000
    k: int = 40
    per_article: int = 3
    filters: Filters = Filters()
    mode: str = "hybrid"  # hybrid | dense | bm25
    bm25_factor: int = 4
    rrf_k: int = RRF_K
    top_chunks: int = 8
    neighbours: int = 1
    dense_weight: float = 0.45
    lexical_weight: float = 0.35
    rank_weight: float = 0.20
    header_tokens: int = 20
    # adaptive budget: past `min_budget` tokens, stop at the first sentence scoring under
    # `falloff` x the best sentence's score (0: fill the budget). 0.65/400 is the smallest
    # context that kept RealTimeQA's answer recall at 1,000 tokens (36/60; 725 tokens sent
    # against 905, eval/retrieval_recall.py); 0.75 lost 3 answers (eval/RESULTS.md)
    falloff: float = 0.65
    min_budget: int = 400
    # experiments only (None in qa): rescore the fused chunk scores, {chunk id: score} -> the same;
    # and a score added to each candidate sentence's, (question, sentences) -> one per sentence
    rescore_chunks: Callable[[dict[str, float]], dict[str, float]] | None = None
    sentence_bonus: Callable[[str, Sequence[str]], np.ndarray] | None = None
