"""Calibrate the adaptive context budget on the SQuAD sample, a set no reported figure comes from.

    .venv/bin/python eval/calibrate_context.py [--data ../shared/eval/squad2-sample] [--home DIR]

The 500 SQuAD paragraphs are one pool (as `qa eval --format squad` ingests them); for each of its
242 answerable questions, retrieval selects context within the 1,000-token budget with the
relevance falloff off (fill the budget) and at each candidate `falloff` x `min_budget`. Prints
answer recall (a gold answer inside the selected passages) and the mean tokens selected; the
chosen setting is the one with the fewest tokens whose recall is within one point of filling the
budget. RealTimeQA (eval/retrieval_recall.py) then checks it on news, where the issue's bar is.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from qa.eval.adapters import load_squad  # noqa: E402
from qa.eval.corpora import Corpora  # noqa: E402
from qa.eval.metrics import contains_span  # noqa: E402
from qa.library import make_embedder  # noqa: E402
from qa.search.options import RetrievalOptions  # noqa: E402
from qa.search.retrieval import retrieve  # noqa: E402
from qa.settings import load_settings, prepare_environment  # noqa: E402
from qa.tokens import count_tokens  # noqa: E402

FALLOFFS = (0.0, 0.5, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85)
MIN_BUDGETS = (150, 250, 400)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(REPO.parent / "shared" / "eval" / "squad2-sample"))
    parser.add_argument("--home", default="/tmp/qa-calibrate-context")
    parser.add_argument("--budget", type=int, default=1000)
    args = parser.parse_args()
    home = Path(args.home)
    settings = load_settings({"home": str(home)})
    prepare_environment(settings)
    evalset = load_squad(Path(args.data), "pool", home / "workspace")
    corpora = Corpora(evalset, home=home / "stores", embedder=make_embedder(settings))
    library = corpora.get("")
    assert library is not None
    items = [i for i in evalset.items if any(a.strip() for a in i.answers)]
    base = RetrievalOptions(budget=args.budget)
    rows = []
    for falloff in FALLOFFS:
        for min_budget in MIN_BUDGETS if falloff else (0,):
            options = replace(base, falloff=falloff, min_budget=min_budget)
            hit, tokens = 0, []
            for item in items:
                passages = retrieve(item.question, library=library, options=options).passages
                text = " ".join(p.text for p in passages)
                hit += contains_span(text, item.answers)
                tokens.append(sum(count_tokens(p.text) for p in passages))
            rows.append((falloff, min_budget, hit / len(items), statistics.mean(tokens)))
            print(
                f"falloff {falloff:.2f}  min {min_budget:4d}  recall {hit / len(items):.3f}  "
                f"tokens {statistics.mean(tokens):6.0f}",
                flush=True,
            )
    full = rows[0][2]
    eligible = [r for r in rows if r[2] >= full - 0.01]
    chosen = min(eligible, key=lambda r: r[3])
    print(f"\n{len(items)} answerable questions; filling the budget: recall {full:.3f}, {rows[0][3]:.0f} tokens")
    print(f"chosen: falloff {chosen[0]}, min_budget {chosen[1]}: recall {chosen[2]:.3f}, {chosen[3]:.0f} tokens")


if __name__ == "__main__":
    main()
