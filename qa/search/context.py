"""Context selection at sentence grain.

Every sentence of the top chunks is scored against the question; the best ones are taken with
their neighbours (which may lie in the next chunk: we cut from the article text itself), capped
per article, until the token budget is spent. Windows are grouped by article so each passage
reads as one continuous excerpt.
"""

from __future__ import annotations

import numpy as np

from ..chunking import article_sentences
from ..records import Hit, Passage
from ..terms import terms
from ..tokens import count_tokens
from . import Library
from .options import RetrievalOptions


def _lexical_score(sentence: str, qidf: dict[str, float]) -> float:
    """The share of the question's term weight (idf) that the sentence contains."""
    total = sum(qidf.values())
    if not total:
        return 0.0
    return sum(qidf[t] for t in set(terms(sentence)) if t in qidf) / total


def select_context(
    question: str,
    hits: list[Hit],
    *,
    library: Library,
    qvec: np.ndarray | None,
    options: RetrievalOptions = RetrievalOptions(),
) -> list[Passage]:
    """The best sentences of the top chunks with their neighbours, within `options.budget` tokens."""
    # Sentence vectors are stored at ingest, so scoring a candidate costs a dot product; only
    # articles stored before that (or by another embedder) are embedded here.
    if not hits:
        return []
    store, embedder, index = library.store, library.embedder, library.index
    budget, per_article, neighbours, overhead = (
        options.budget,
        options.per_article,
        options.neighbours,
        options.header_tokens,
    )
    hits = hits[: options.top_chunks]
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
    qidf = index.idfs(terms(question))
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
    score = (
        options.dense_weight * dense
        + options.lexical_weight * lexical
        + options.rank_weight * np.array([candidates[k] for k in keys])
    )
    if options.sentence_bonus is not None:
        score = score + options.sentence_bonus(question, sentences)

    sizes: dict[tuple[str, int], int] = {}

    def tokens(aid: str, x: int) -> int:
        if (aid, x) not in sizes:
            sizes[aid, x] = count_tokens(texts[aid].text[slice(*spans[aid][x])])
        return sizes[aid, x]

    chosen: dict[str, set[int]] = {}
    order: list[str] = []
    best: dict[str, float] = {}
    used = 0
    ranked = np.argsort(-score, kind="stable")
    rank_of = {keys[j]: r for r, j in enumerate(ranked)}
    # adaptive budget: once `min_budget` tokens are in, a sentence scoring under `falloff` x the best
    # one is not worth the seconds a local model spends reading it (nor are those after it)
    floor = options.falloff * float(score[ranked[0]]) if options.falloff and len(ranked) else -np.inf
    for j in ranked:
        aid, i = keys[j]
        if used >= options.min_budget and score[j] < floor:
            break
        have = chosen.setdefault(aid, set())
        if i in have:
            continue
        window = [x for x in range(i - neighbours, i + neighbours + 1) if 0 <= x < len(spans[aid]) and x not in have]
        if len(_windows(have)) >= per_article and not any(x - 1 in have or x + 1 in have for x in window):
            continue
        cost = sum(tokens(aid, x) for x in window) + (0 if have else overhead)
        if used + cost > budget:
            window = [i]  # try the sentence alone
            cost = tokens(aid, i) + (0 if have else overhead)
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
            lead = min(run, key=lambda x: rank_of.get((aid, x), len(keys)))  # the sentence that drew it in
            a, b = spans[aid][lead]
            passages.append(
                Passage(
                    number=len(passages) + 1,
                    article_id=aid,
                    text=art.text[start:end],
                    start=start,
                    end=end,
                    title=art.title,
                    source=art.source,
                    date=art.date,
                    url=art.url,
                    score=best[aid],
                    best=(a - start, b - start),
                )
            )
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
