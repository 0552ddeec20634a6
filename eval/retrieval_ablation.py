"""Retrieval ablations on RealTimeQA dev: what chunk vectors and candidate settings do to recall.

    .venv/bin/python eval/retrieval_ablation.py [--home DIR] [--collection NAME] [--variants ...]

Over a pool store built by the current ingest (`eval/retrieval_recall.py` builds one), counts
the questions whose gold text reaches the context `retrieve()` selects, at 400 / 1,000 / 1,600
tokens, in dense and hybrid mode, with the store's dense search replaced by:
- `mean`: the stored chunk vectors (the mean of each chunk's sentence vectors: qa's default);
- `chunk`: vectors of the chunk texts embedded whole (MiniLM reads the first 256 word pieces);
  brute force over all chunks, so no second Chroma collection is needed;
- `max`: chunks ranked by their best sentence's similarity to the question;
and, in hybrid mode at 1,000 tokens, with 4 to 40 candidate chunks and 0 to 2 neighbours.
Prints counts out of the 60 questions.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent
sys.path.insert(0, str(REPO.parent))
sys.path.insert(0, str(REPO))

import retrieval_recall as rr  # noqa: E402


class DenseVariant:
    """The pool store with its dense search done another way (the store passed to retrieve() in its place)."""

    def __init__(self, store, dense):
        self.store, self.dense = store, dense

    def __getattr__(self, name):
        return getattr(self.store, name)


def main() -> None:
    parser = rr.pool_parser(__doc__)
    parser.add_argument("--variants", default="mean,chunk,max,candidates")
    args = parser.parse_args()
    settings, library = rr.open_pool(args)
    store, embedder, index = library.store, library.embedder, library.index
    from dataclasses import replace

    from qa.library import ask_options
    from qa.search import Library
    from qa.search.retrieval import retrieve

    base = ask_options(settings).retrieval
    questions = rr.load_questions(Path(args.data))
    chunks = store.chunks()
    ids = [c.id for c in chunks]
    stored = store.sentence_vectors(list({c.article_id for c in chunks}))
    owner, rows = [], []  # sentence -> chunk index, for `max`
    for n, c in enumerate(chunks):
        spans, vectors = stored[c.article_id]
        for (a, b), v in zip(spans, vectors, strict=True):
            if a < c.end and b > c.start:
                owner.append(n)
                rows.append(v)
    sentence_matrix = np.array(rows, dtype=np.float32)
    chunk_matrix = None

    def ranked(scores: np.ndarray, k: int) -> list[tuple[str, float]]:
        top = np.argsort(-scores)[:k]
        return [(ids[t], float(scores[t])) for t in top]

    def store_for(variant: str):
        if variant == "mean":
            return store  # the stored chunk vectors: qa's own dense search

        def dense(vector, k, where=None):
            nonlocal chunk_matrix
            if variant == "chunk":
                if chunk_matrix is None:
                    print(f"embedding {len(chunks)} chunk texts whole…", flush=True)
                    chunk_matrix = embedder.embed([c.text for c in chunks])
                return ranked(chunk_matrix @ vector, k)
            best = np.full(len(chunks), -1.0, dtype=np.float32)
            np.maximum.at(best, owner, sentence_matrix @ vector)
            return ranked(best, k)

        return DenseVariant(store, dense)

    def count(searched, mode: str, budget: int, **knobs) -> int:
        options = replace(base, mode=mode, budget=budget, **knobs)
        hits = 0
        for q in questions:
            got = retrieve(q["question"], library=Library(searched, embedder, index), options=options)
            hits += any(rr.contains(rr.norm(p.text), rr.norm(q["gold"])) for p in got.passages)
        return hits

    variants = args.variants.split(",")
    print(f"{len(questions)} questions; counts of questions with the gold text in the context")
    for variant in [v for v in variants if v in ("mean", "chunk", "max")]:
        searched = store_for(variant)
        for mode in ("dense", "hybrid"):
            print(
                f"{variant:<6} {mode:<7} " + "  ".join(f"@{b}: {count(searched, mode, b)}" for b in (400, 1000, 1600)),
                flush=True,
            )
    if "candidates" in variants:
        for top in (4, 8, 12, 16, 24, 40):
            print(f"hybrid @1000, {top} candidate chunks: {count(store, 'hybrid', 1000, top_chunks=top)}", flush=True)
        for n in (0, 1, 2):
            print(f"hybrid @1000, {n} neighbour sentences: {count(store, 'hybrid', 1000, neighbours=n)}", flush=True)


if __name__ == "__main__":
    main()
