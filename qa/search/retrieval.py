"""Hybrid retrieval and context selection.

Dense (Chroma) and BM25 candidates are fused by reciprocal rank. Context is then chosen at
sentence grain: every sentence of the top chunks is scored against the question, the best
ones are taken with their neighbours (which may lie in the next chunk: we cut from the
article text itself), capped per article, until the token budget is spent. Windows are
grouped by article so each passage reads as one continuous excerpt.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from ..chunking import article_sentences
from ..embeddings import Embedder
from .bm25 import LexicalIndex, terms
from ..records import Hit, Passage
from ..store import Store, date_number
from ..tokens import count_tokens

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


@dataclass
class Retrieval:
    passages: list[Passage]
    hits: list[Hit]
    mode: str
    ms: float


def rrf(rankings: list[list[str]], k: int = RRF_K) -> dict[str, float]:
    scores: dict[str, float] = {}
    for ranking in rankings:
        for rank, item in enumerate(ranking):
            scores[item] = scores.get(item, 0.0) + 1.0 / (k + rank + 1)
    return scores


def search(question: str, *, store: Store, embedder: Embedder, index: LexicalIndex, k: int = 40,
           filters: Filters = Filters(), mode: str = "hybrid") -> tuple[list[Hit], np.ndarray | None]:
    """Fused chunk hits, best first, with the question vector (None in bm25 mode)."""
    rankings: list[list[str]] = []
    qvec = None
    if mode in ("hybrid", "dense"):
        qvec = embedder.embed([question])[0]
        rankings.append([cid for cid, _ in store.dense(qvec, k, where=filters.where())])
    if mode in ("hybrid", "bm25"):
        rankings.append([cid for cid, _ in index.search(question, k * 4)])
    fused = rrf(rankings)
    chunk_ids = sorted(fused, key=fused.get, reverse=True)
    hits: list[Hit] = []
    step = 2 * k  # read chunks in fused order, a slice at a time, until k are admitted
    for b in range(0, len(chunk_ids), step):
        part = chunk_ids[b:b + step]
        by_id = {c.id: c for c in store.chunks_by_id(part)}
        meta = store.article_records(list({c.article_id for c in by_id.values()}), text=False)
        for cid in part:
            chunk = by_id.get(cid)
            art = meta.get(chunk.article_id) if chunk else None
            if art is None or not filters.admits(art.source, art.date):
                continue  # removed since indexing, or filtered out
            hits.append(Hit(chunk, fused[cid], art.title, art.source, art.date, art.url))
            if len(hits) >= k:
                return hits, qvec
    return hits, qvec


def _lexical_score(sentence: str, qidf: dict[str, float]) -> float:
    """The share of the question's term weight (idf) that the sentence contains."""
    total = sum(qidf.values())
    if not total:
        return 0.0
    return sum(qidf[t] for t in set(terms(sentence)) if t in qidf) / total


def select_context(question: str, hits: list[Hit], *, store: Store, embedder: Embedder, index: LexicalIndex,
                   qvec: np.ndarray | None, budget: int = 1000, per_article: int = 3, top_chunks: int = 8,
                   neighbours: int = 1) -> list[Passage]:
    """The best sentences of the top chunks with their neighbours, within `budget` tokens."""
    # Sentence vectors are stored at ingest, so scoring a candidate costs a dot product; only
    # articles stored before that (or by another embedder) are embedded here.
    if not hits:
        return []
    hits = hits[:top_chunks]
    texts = store.article_records(list({h.chunk.article_id for h in hits}))
    stored = store.sentence_vectors(list(texts))
    # every sentence of each article that has a hit, so windows can cross chunk boundaries
    spans = {aid: stored[aid][0] if aid in stored else article_sentences(art) for aid, art in texts.items()}
    candidates: dict[tuple[str, int], float] = {}
    chunk_weight = {h.chunk.id: 1.0 / (rank + 1) ** 0.5 for rank, h in enumerate(hits)}
    for h in hits:
        for i, (a, b) in enumerate(spans.get(h.chunk.article_id, ())):
            if a < h.chunk.end and b > h.chunk.start:
                key = (h.chunk.article_id, i)
                candidates[key] = max(candidates.get(key, 0.0), chunk_weight[h.chunk.id])
    keys = list(candidates)
    sentences = [texts[aid].text[slice(*spans[aid][i])] for aid, i in keys]
    qidf = {t: index.idf(t) for t in set(terms(question))}
    lexical = np.array([_lexical_score(s, qidf) for s in sentences])
    dense = np.zeros(len(keys))
    if qvec is not None and keys:
        vectors = np.zeros((len(keys), len(qvec)), dtype=np.float32)
        missing = []
        for j, (aid, i) in enumerate(keys):
            if aid in stored and stored[aid][1].shape[1] == len(qvec):
                vectors[j] = stored[aid][1][i]
            else:
                missing.append(j)
        if missing:
            vectors[missing] = embedder.embed([sentences[j] for j in missing])
        dense = vectors @ qvec
    score = 0.45 * dense + 0.35 * lexical + 0.20 * np.array([candidates[k] for k in keys])

    sizes: dict[tuple[str, int], int] = {}

    def tokens(aid: str, x: int) -> int:
        if (aid, x) not in sizes:
            sizes[aid, x] = count_tokens(texts[aid].text[slice(*spans[aid][x])])
        return sizes[aid, x]

    chosen: dict[str, set[int]] = {}
    order: list[str] = []
    best: dict[str, float] = {}
    used = 0
    for j in np.argsort(-score):
        aid, i = keys[j]
        have = chosen.setdefault(aid, set())
        if i in have:
            continue
        window = [x for x in range(i - neighbours, i + neighbours + 1) if 0 <= x < len(spans[aid]) and x not in have]
        if len(_windows(have)) >= per_article and not any(x - 1 in have or x + 1 in have for x in window):
            continue
        cost = sum(tokens(aid, x) for x in window) + (0 if have else 20)
        if used + cost > budget:
            window = [i]  # try the sentence alone
            cost = tokens(aid, i) + (0 if have else 20)
            if used + cost > budget:
                continue
        have.update(window)
        used += cost
        if aid not in order:
            order.append(aid)
            best[aid] = float(score[j])

    passages: list[Passage] = []
    for aid in order:
        art = texts[aid]
        for run in _windows(chosen[aid]):
            start, end = spans[aid][run[0]][0], spans[aid][run[-1]][1]
            passages.append(Passage(number=len(passages) + 1, article_id=aid, chunk_id="", text=art.text[start:end],
                                    start=start, end=end, title=art.title, source=art.source, date=art.date,
                                    url=art.url, score=best[aid]))
    return passages


def _windows(indices: set[int]) -> list[list[int]]:
    """Consecutive runs of sentence indices."""
    runs: list[list[int]] = []
    for x in sorted(indices):
        if runs and x == runs[-1][-1] + 1:
            runs[-1].append(x)
        else:
            runs.append([x])
    return runs


def retrieve(question: str, *, store: Store, embedder: Embedder, index: LexicalIndex, budget: int = 1000,
             k: int = 40, per_article: int = 3, filters: Filters = Filters(), mode: str = "hybrid") -> Retrieval:
    t0 = time.perf_counter()
    hits, qvec = search(question, store=store, embedder=embedder, index=index, k=k, filters=filters, mode=mode)
    passages = select_context(question, hits, store=store, embedder=embedder, index=index, qvec=qvec,
                              budget=budget, per_article=per_article)
    return Retrieval(passages, hits, mode, (time.perf_counter() - t0) * 1000)
