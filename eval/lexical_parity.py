"""Does the catalogue's lexical index (qa/store/lexicon.py) rank as bm25s did? On a pool store, for
each RealTimeQA dev question: bm25s (what qa used before, built here over the same chunks and the
same terms) against the store's index, best 160 chunks each (what hybrid retrieval asks for).

    .venv/bin/python eval/lexical_parity.py --home HOME --collection NAME [--data ../shared/eval/realtimeqa-dev]

Prints how many questions get the same chunks in the same order, the same set, and the largest
score difference. bm25s is a dev dependency (`make install-dev`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "eval"))

from retrieval_recall import load_questions, pool_settings  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--home", required=True)
    parser.add_argument("--collection", default="")
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "eval" / "realtimeqa-dev")
    parser.add_argument("--k", type=int, default=160)
    a = parser.parse_args()
    import bm25s

    from qa.library import open_store
    from qa.search.bm25 import open_index
    from qa.terms import terms

    store = open_store(pool_settings(a.home, a.collection))
    chunks = store.chunks()
    ids = [c.id for c in chunks]
    corpus = [terms(c.text) or ["_empty_"] for c in chunks]
    vocabulary = {t for doc in corpus for t in doc}
    model = bm25s.BM25()
    model.index(corpus, show_progress=False)
    index = open_index(store)
    questions = [q["question"] for q in load_questions(a.data)]
    same_order = same_set = 0
    largest = 0.0
    for question in questions:
        words = [t for t in terms(question) if t in vocabulary]
        scores = model.get_scores(words) if words else np.zeros(len(ids))
        top = np.argsort(-scores, kind="stable")[: a.k]
        before = [(ids[i], float(scores[i])) for i in top if scores[i] > 0]
        now = index.search(question, a.k)
        old = dict(before)
        largest = max([largest, *(abs(old[c] - s) for c, s in now if c in old)])
        same_order += [c for c, _ in before] == [c for c, _ in now]
        same_set += {c for c, _ in before} == {c for c, _ in now}
    print(
        f"{len(questions)} questions, {len(ids):,} chunks, best {a.k}: same chunks in the same order for "
        f"{same_order}, the same set for {same_set}; largest score difference {largest:.1e}"
    )
    store.close()


if __name__ == "__main__":
    main()
