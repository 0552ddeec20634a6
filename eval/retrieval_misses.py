"""Where the RealTimeQA questions that retrieval misses keep their answer in the pool.

    .venv/bin/python eval/retrieval_misses.py [--data DIR] [--home DIR] [--collection NAME] [--budget 1000]

For every question whose gold text is somewhere in the pool (the recall ceiling of
`eval/retrieval_recall.py`) but not in the context hybrid retrieval selects at the budget,
prints the fused rank of each retrieved chunk that holds the gold text, and every pool
article that holds it: date, source, title and the words around the first occurrence. Whether
such an article is about the question's subject is a judgement this script leaves to the reader;
eval/RESULTS.md records the judgement made on its output. Reads the same store as
`eval/retrieval_recall.py` (run that first) and the same question fields (never `evidence`).
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent
sys.path.insert(0, str(REPO.parent))
sys.path.insert(0, str(REPO))

import retrieval_recall as rr  # noqa: E402


def around(text: str, gold: str, width: int = 90) -> str:
    at = text.find(gold)
    return ("…" if at > width else "") + text[max(0, at - width) : at + len(gold) + width // 2] + "…"


def main() -> None:
    parser = rr.pool_parser(__doc__)
    parser.add_argument("--budget", type=int, default=rr.DEFAULT_BUDGET)
    args = parser.parse_args()
    settings, library = rr.open_pool(args)
    store = library.store
    from dataclasses import replace

    from qa.library import ask_options
    from qa.search.retrieval import retrieve

    options = replace(ask_options(settings).retrieval, budget=args.budget)

    pool = [(a.article, rr.norm(a.article.text)) for a in store.articles()]
    pool.sort(key=lambda x: x[0].date, reverse=True)
    questions = rr.load_questions(Path(args.data))
    in_pool = recalled = 0
    for q in questions:
        gold = rr.norm(q["gold"])
        holders = [(art, text) for art, text in pool if rr.contains(text, gold)]
        if not holders:
            continue
        in_pool += 1
        got = retrieve(q["question"], library=library, options=options)
        if any(rr.contains(rr.norm(p.text), gold) for p in got.passages):
            recalled += 1
            continue
        ranks = [str(r) for r, h in enumerate(got.hits) if rr.contains(rr.norm(h.chunk.text), gold)]
        print(
            f"\n{q['id']}: {q['question']}\n  gold: {q['gold']} | fused ranks of chunks holding it: "
            f"{', '.join(ranks) or 'none in the top ' + str(len(got.hits))}"
        )
        for art, text in holders:
            print(f"  {art.date or '????-??-??'} {art.source:<16} {art.title[:60]!r}\n      {around(text, gold)}")
    print(
        f"\n{recalled} of {in_pool} questions with the gold text in the pool have it in the context "
        f"at {args.budget} tokens; the {in_pool - recalled} others are listed above."
    )


if __name__ == "__main__":
    main()
