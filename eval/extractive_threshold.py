"""Calibrate the extractive backend (`--llm extractive`): for each question, the best sentence it
would pick and its score, over passages that hold the answer and over passages that do not; then,
for thresholds from 0.30 to 0.65, how often it would answer with a sentence that holds the answer,
answer with one that does not, and refuse where there is nothing to find; and for the second
sentence an answer may add, at each share of the best one's score: how often it is kept, the share
of those kept that hold an answer, how often it adds the answer the first one lacks, and how often
one that would have is dropped.

Data (public, ../shared/eval, never the README's own examples):
- SQuAD 2.0 sample: each question over its own paragraph (answerable), and over the next
  question's paragraph (another topic: should refuse);
- RGB en_fact: each question over its correct passages (answerable), and over its `negative`
  passages (the same topic without the answer: should refuse).

    .venv/bin/python eval/extractive_threshold.py [--limit N] [--data ../shared/eval]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import qa.answer  # noqa: E402
from qa.answer import extract  # noqa: E402
from qa.records import Passage  # noqa: E402
from qa.settings import load_settings, prepare_environment  # noqa: E402

THRESHOLDS = [round(0.30 + 0.05 * i, 2) for i in range(8)]
RATIOS = [0.0, 0.7, 0.8, 0.85, 0.9, 0.95]


def passages(texts: list[str]) -> list[Passage]:
    return [Passage(n, f"a{n}", t, 0, len(t)) for n, t in enumerate(texts, 1)]


def squad(data: Path, limit: int) -> list[tuple[str, list[str], list[str], list[str]]]:
    """(question, answers, passages with the answer, passages without)."""
    queries = json.loads((data / "squad2-sample" / "queries.json").read_text())["queries"][:limit]
    truth = json.loads((data / "squad2-sample" / "ground_truth.json").read_text())
    return [
        (q["question"], truth[q["id"]]["answers"], [q["context"]], [queries[(i + 1) % len(queries)]["context"]])
        for i, q in enumerate(queries)
    ]


def rgb(data: Path, limit: int) -> list[tuple[str, list[str], list[str], list[str]]]:
    items = []
    for line in (data / "rgb-counterfactual" / "en_fact.json").read_text().splitlines()[:limit]:
        r = json.loads(line)
        answers = r["answer"] if isinstance(r["answer"], list) else [r["answer"]]
        answers = [a for group in answers for a in (group if isinstance(group, list) else [group])]
        if r.get("positive") and r.get("negative"):
            items.append((r["query"], answers, r["positive"][:3], r["negative"][:3]))
    return items


def best(question: str, texts: list[str], embedder) -> tuple[float, str]:
    picked = extract(question, passages(texts), embedder, limit=1, threshold=-1.0)
    return (picked[0].support, picked[0].text) if picked else (-1.0, "")


def second(question: str, texts: list[str], embedder) -> tuple[float, str, float, str]:
    """The best two sentences, whatever their scores: (score, text) of each (-1.0, "" for none)."""
    with_extra = qa.answer.EXTRA_SENTENCE
    qa.answer.EXTRA_SENTENCE = 0.0
    try:
        picked = extract(question, passages(texts), embedder, limit=2, threshold=-1.0)
    finally:
        qa.answer.EXTRA_SENTENCE = with_extra
    first = (picked[0].support, picked[0].text) if picked else (-1.0, "")
    return (*first, *((picked[1].support, picked[1].text) if len(picked) > 1 else (-1.0, "")))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "eval"))
    parser.add_argument("--limit", type=int, default=200)
    args = parser.parse_args()
    settings = load_settings()
    prepare_environment(settings)
    from qa.library import make_embedder

    embedder = make_embedder(settings)
    for name, load in (("SQuAD sample", squad), ("RGB en_fact", rgb)):
        items = load(Path(args.data), args.limit)
        answerable, unanswerable, seconds = [], [], []
        for question, answers, good, bad in items:
            score, text, score2, text2 = second(question, good, embedder)
            holds = any(a.lower() in text.lower() for a in answers if a)
            answerable.append((score, holds))
            if score2 > 0:  # how the second sentence compares, whether it holds an answer, and one the first lacks
                holds2 = any(a.lower() in text2.lower() for a in answers if a)
                seconds.append((score2 / score, holds2, holds2 and not holds))
            unanswerable.append(best(question, bad, embedder)[0])
        print(f"\n{name}: {len(items)} questions")
        print(f"{'threshold':>9}  {'answers, right':>14}  {'answers, wrong':>14}  {'refuses (no answer there)':>25}")
        for t in THRESHOLDS:
            right = sum(s >= t and h for s, h in answerable) / len(items)
            wrong = sum(s >= t and not h for s, h in answerable) / len(items)
            refused = sum(s < t for s in unanswerable) / len(items)
            print(f"{t:>9.2f}  {right:>14.3f}  {wrong:>14.3f}  {refused:>25.3f}")
        print(
            f"{'2nd/best':>9}  {'2nd kept':>14}  {'kept, holds it':>14}  {'kept, adds it':>14}  "
            f"{'dropped, would add it':>22}"
        )
        for ratio in RATIOS:
            kept = [(h, adds) for r, h, adds in seconds if r >= ratio]
            dropped = [adds for r, _, adds in seconds if r < ratio]
            holding = sum(h for h, _ in kept) / max(1, len(kept))
            print(
                f"{ratio:>9.2f}  {len(kept) / len(items):>14.3f}  {holding:>14.3f}  "
                f"{sum(a for _, a in kept) / len(items):>14.3f}  {sum(dropped) / len(items):>22.3f}"
            )


if __name__ == "__main__":
    main()
