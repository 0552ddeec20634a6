"""Hybrid retrieval: dense (Chroma) and BM25 candidates fused by reciprocal rank, filtered, then
context chosen at sentence grain (context.py) within the token budget."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from ..records import Hit, Passage
from . import Library
from .context import select_context
from .options import RRF_K, Filters, RetrievalOptions

__all__ = ["Filters", "Retrieval", "RetrievalOptions", "retrieve", "rrf", "search"]


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


def search(
    question: str, *, library: Library, options: RetrievalOptions = RetrievalOptions()
) -> tuple[list[Hit], np.ndarray | None]:
    """Fused chunk hits, best first, with the question vector (None in bm25 mode)."""
    store, embedder, index = library.store, library.embedder, library.index
    k, filters, mode = options.k, options.filters, options.mode
    rankings: list[list[str]] = []
    qvec = None
    if mode in ("hybrid", "dense"):
        qvec = embedder.embed([question])[0]
        rankings.append([cid for cid, _ in store.dense(qvec, k, where=filters.where())])
    if mode in ("hybrid", "bm25"):
        rankings.append([cid for cid, _ in index.search(question, k * options.bm25_factor)])
    fused = rrf(rankings, options.rrf_k)
    if options.rescore_chunks is not None:
        fused = options.rescore_chunks(fused)
    chunk_ids = sorted(fused, key=lambda c: (-fused[c], c))  # ties in id order: the same in every process
    hits: list[Hit] = []
    step = 2 * k  # read chunks in fused order, a slice at a time, until k are admitted
    for b in range(0, len(chunk_ids), step):
        part = chunk_ids[b : b + step]
        by_id = {c.id: c for c in store.chunks_by_id(part)}
        meta = store.article_records(list({c.article_id for c in by_id.values()}), text=False)
        for cid in part:
            chunk = by_id.get(cid)
            art = meta.get(chunk.article_id) if chunk else None
            if chunk is None or art is None or not filters.admits(art.source, art.date):
                continue  # removed since indexing, or filtered out
            hits.append(Hit(chunk, fused[cid], art.title, art.source, art.date, art.url))
            if len(hits) >= k:
                return hits, qvec
    return hits, qvec


def retrieve(question: str, *, library: Library, options: RetrievalOptions = RetrievalOptions()) -> Retrieval:
    """Search, then choose the context: the passages an answer is written from."""
    t0 = time.perf_counter()
    hits, qvec = search(question, library=library, options=options)
    passages = select_context(question, hits, library=library, qvec=qvec, options=options)
    return Retrieval(passages, hits, options.mode, (time.perf_counter() - t0) * 1000)
