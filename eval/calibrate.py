"""Calibrate the answer checks on a set no reported figure comes from: SQuAD 2.0 paragraphs.

    .venv/bin/python eval/calibrate.py [--data ../shared/eval/squad2-sample] [--llm local] [--limit N]

Wikipedia, not news, and disjoint from RGB, RealTimeQA and the sample gold set, which the figures
in eval/RESULTS.md are measured on. 120 items, built deterministically (seed 7) from the sample:
- A (60): an answerable question, its own paragraph and the two paragraphs closest to the
  question (by MiniLM) that do not contain a gold answer, shuffled;
- U1 (30): a SQuAD 2.0 unanswerable question (written to look answerable from its paragraph),
  its paragraph and its two closest neighbours: on topic, adversarial;
- U2 (30): an answerable question without its paragraph: the three closest paragraphs that do
  not contain the answer (what RGB's negative rejection looks like).
Each item goes through `qa.answer.answer` with the model's own check off, then the check is asked
on every answer the code checks let through. Printed: what each step refused, per kind, and the
check's threshold sweep: refusals on U1+U2 against refusals of A, and Youden's J. The chosen
threshold maximises J; if J gains less than 0.05 over no check, the check is not worth its
seconds and the recommendation is to leave it off. Then the 'stated together' check's window
(qa/claims.py WINDOW) is replayed on the recorded replies, 0-4 sentences. Raw rows go to
eval/runs/calibration.jsonl (an existing file is resumed: only the items missing from it are asked).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from qa.answer import AskOptions, answer, judge_with  # noqa: E402
from qa.eval.metrics import contains_span  # noqa: E402
from qa.grounding import ground, quotes  # noqa: E402
from qa.library import make_embedder, make_llm  # noqa: E402
from qa.records import Passage  # noqa: E402
from qa.settings import load_settings, prepare_environment  # noqa: E402

THRESHOLDS = [round(0.05 * i, 2) for i in range(1, 20)]


def build(data: Path, embedder) -> list[dict]:
    queries = json.loads((data / "queries.json").read_text())["queries"]
    truth = json.loads((data / "ground_truth.json").read_text())
    paragraphs = sorted({q["context"] for q in queries})
    vectors = embedder.embed(paragraphs)
    rng = random.Random(7)
    answerable = [q for q in queries if not truth[q["id"]]["is_impossible"]]
    impossible = [q for q in queries if truth[q["id"]]["is_impossible"]]
    rng.shuffle(answerable)
    rng.shuffle(impossible)

    def neighbours(q: dict, answers: list[str], n: int) -> list[str]:
        order = (vectors @ embedder.embed([q["question"]])[0]).argsort()[::-1]
        return [
            paragraphs[k]
            for k in order
            if paragraphs[k] != q["context"] and not (answers and contains_span(paragraphs[k], answers))
        ][:n]

    items = []
    for q in answerable[:60]:
        golds = [a for a in truth[q["id"]]["answers"] if a]
        items.append(dict(id=q["id"], kind="A", question=q["question"], answers=golds,
                          docs=[q["context"], *neighbours(q, golds, 2)]))  # fmt: skip
    for q in impossible[:30]:
        items.append(dict(id=q["id"], kind="U1", question=q["question"], answers=[],
                          docs=[q["context"], *neighbours(q, [], 2)]))  # fmt: skip
    for q in answerable[60:90]:
        golds = [a for a in truth[q["id"]]["answers"] if a]
        items.append(dict(id=q["id"], kind="U2", question=q["question"], answers=golds,
                          docs=neighbours(q, golds, 3)))  # fmt: skip
    for item in items:
        rng.shuffle(item["docs"])
    rng.shuffle(items)
    return items


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(REPO.parent / "shared" / "eval" / "squad2-sample"))
    parser.add_argument("--llm", default="local")
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--out", default=str(REPO / "eval" / "runs" / "calibration.jsonl"))
    args = parser.parse_args()
    settings = load_settings({"llm": args.llm})
    prepare_environment(settings)
    embedder = make_embedder(settings)
    llm = make_llm(settings)
    judge = judge_with(llm)
    items = build(Path(args.data), embedder)[: args.limit]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    done = {json.loads(line)["id"]: json.loads(line) for line in out.read_text().splitlines()} if out.exists() else {}
    rows = []
    with out.open("a") as sink:
        for n, item in enumerate(items, 1):
            if item["id"] in done:
                rows.append(done[item["id"]])
                continue
            passages = _passages(item["docs"])
            t0 = time.perf_counter()
            result = answer(item["question"], passages, llm=llm, embedder=embedder, options=AskOptions(judge=False))
            p = None
            if not result.refused and judge is not None:
                p = judge(item["question"], quotes(result.sentences, passages))
            row = dict(id=item["id"], kind=item["kind"], question=item["question"], raw=result.raw,
                       refused=result.refused, reason=result.reason, shown=result.text if not result.refused else "",
                       correct=bool(item["answers"]) and contains_span(result.text, item["answers"]),
                       judge=p, seconds=round(time.perf_counter() - t0, 1))  # fmt: skip
            sink.write(json.dumps(row) + "\n")
            sink.flush()
            rows.append(row)
            print(f"{n}/{len(items)} {row['kind']} refused={row['refused']} judge={p} {row['seconds']} s", flush=True)
    report(rows)
    windows(rows, {item["id"]: item for item in items})


def _passages(docs: list[str]) -> list[Passage]:
    """An item's paragraphs as numbered passages, with no title or date."""
    return [Passage(i + 1, f"p{i}", t, 0, len(t), title="", date="") for i, t in enumerate(docs)]


def windows(rows: list[dict], items: dict[str, dict]) -> None:
    """The 'stated together' check (qa/claims.py WINDOW) replayed on the recorded replies: the same
    grounding with windows of 1-4 sentences (0: the check off), refusals per kind, and Youden's J."""
    print("\nstated together, replayed: window  refused A  refused U  J")
    for window in (0, 1, 2, 3, 4):
        refused = {"A": 0, "U": 0}
        for row in rows:
            passages = _passages(items[row["id"]]["docs"])
            refused["A" if row["kind"] == "A" else "U"] += ground(
                row["question"], row["raw"], passages, window=window
            ).refused
        a = refused["A"] / max(1, sum(r["kind"] == "A" for r in rows))
        u = refused["U"] / max(1, sum(r["kind"] != "A" for r in rows))
        print(f"{window:>6}  {a:9.3f}  {u:9.3f}  {u - a:.3f}")


def report(rows: list[dict]) -> None:
    kinds = ("A", "U1", "U2")
    print("\nkind  n   model/code refused  answered  answered right")
    for kind in kinds:
        part = [r for r in rows if r["kind"] == kind]
        if part:
            refused = sum(r["refused"] for r in part)
            print(f"{kind:4} {len(part):3}  {refused:3} ({refused / len(part):.2f})  {len(part) - refused:3}  "
                  f"{sum(r['correct'] for r in part):3}")  # fmt: skip
    a = [r for r in rows if r["kind"] == "A"]
    u = [r for r in rows if r["kind"] != "A"]
    if not a or not u:
        return

    def rates(t: float | None) -> tuple[float, float]:
        def refuses(r: dict) -> bool:
            return r["refused"] or (t is not None and r["judge"] is not None and r["judge"] < t)

        return sum(map(refuses, a)) / len(a), sum(map(refuses, u)) / len(u)

    base_a, base_u = rates(None)
    print(f"\nwithout the model's check: refused A {base_a:.3f}, refused U {base_u:.3f}, J {base_u - base_a:.3f}")
    best = (base_u - base_a, None)
    for t in THRESHOLDS:
        ra, ru = rates(t)
        print(f"threshold {t:.2f}: refused A {ra:.3f}, refused U {ru:.3f}, J {ru - ra:.3f}")
        if ru - ra > best[0]:
            best = (ru - ra, t)
    gain = best[0] - (base_u - base_a)
    if best[1] is None or gain < 0.05:
        print(f"\nrecommendation: leave the model's check off (best J gain {gain:+.3f} < 0.05)")
    else:
        print(f"\nrecommendation: threshold {best[1]} (J {best[0]:.3f}, gain {gain:+.3f})")


if __name__ == "__main__":
    main()
