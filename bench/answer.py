"""Answer latency of the local default on the RealTimeQA dev pool.

Prints retrieval p50/p95 ms, prompt tokens, time to first token and generation tokens/s
over the first --limit dev questions (question text only), per context budget.

    .venv/bin/python bench/answer.py [--limit 10] [--budgets 1000] [--home DIR] [--collection NAME] [--llm local]

The pool is ingested into --home first (skipped when already there). Figures go to
bench/results/answer.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(REPO.parent / "shared" / "eval" / "realtimeqa-dev"))
    parser.add_argument("--home", default="/tmp/qa-bench-answer")
    parser.add_argument("--limit", type=int, default=10)
    parser.add_argument("--budgets", default="1000", help="comma-separated context budgets in tokens")
    parser.add_argument("--llm", default="local")
    parser.add_argument("--collection", default="rtqa", help="collection holding (or to hold) the pool")
    args = parser.parse_args()

    os.environ["QA_HOME"] = args.home
    from qa.answer import AskOptions, ask
    from qa.embeddings import MiniLMEmbedder
    from qa.ingest import ingest, open_index
    from qa.llm import make_llm
    from qa.settings import load_settings, prepare_environment
    from qa.store import Store

    settings = load_settings()
    prepare_environment(settings)
    data = Path(args.data)
    embedder = MiniLMEmbedder()
    store = Store(settings.home, args.collection, embedder.name, embedder.dimension)
    index = open_index(store)
    if store.chunk_count() == 0:
        ingest([str(p) for p in sorted(data.glob("*_gcs.jsonl"))], store=store, embedder=embedder, index=index)
        index = open_index(store)
    questions = [json.loads(line)["question_sentence"] for f in sorted(data.glob("*_qa.jsonl"))
                 for line in f.read_text().splitlines() if line.strip()][: args.limit]

    t0 = time.perf_counter()
    llm = make_llm(args.llm, models_dir=settings.models_dir, threads=settings.threads)
    load_s = time.perf_counter() - t0
    ask("Warm-up question?", store=store, embedder=embedder, index=index, llm=llm,
        options=AskOptions(budget=200, max_tokens=8))  # the VM maps memory lazily: warm up first

    rows = []
    for budget in [int(b) for b in args.budgets.split(",")]:
        per = []
        for q in questions:
            a = ask(q, store=store, embedder=embedder, index=index, llm=llm, options=AskOptions(budget=budget))
            t = a.timings
            per.append(t)
        gen = [t.tokens_per_s for t in per if t.completion_tokens > 1]
        rows.append({
            "budget": budget, "questions": len(per),
            "retrieval_p50_ms": round(percentile([t.retrieval_ms for t in per], 0.5), 1),
            "retrieval_p95_ms": round(percentile([t.retrieval_ms for t in per], 0.95), 1),
            "prompt_tokens_mean": round(statistics.mean(t.prompt_tokens for t in per), 1),
            "first_token_s_mean": round(statistics.mean(t.first_token_ms for t in per) / 1000, 2),
            "generation_tok_s_mean": round(statistics.mean(gen), 1) if gen else 0.0,
            "completion_tokens_mean": round(statistics.mean(t.completion_tokens for t in per), 1),
            "total_s_mean": round(statistics.mean(t.total_ms for t in per) / 1000, 2),
        })

    result = {"llm": llm.name, "model_load_s": round(load_s, 2), "cores": os.cpu_count(), "rows": rows}
    out = REPO / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "answer.json").write_text(json.dumps(result, indent=2) + "\n")
    print(f"llm {llm.name}  (load {load_s:.1f} s, {os.cpu_count()} cores)")
    head = ["budget", "retrieval p50 ms", "p95 ms", "prompt tok", "first token s", "gen tok/s", "answer tok", "total s"]
    print(" | ".join(head))
    for r in rows:
        print(" | ".join(str(r[k]) for k in ("budget", "retrieval_p50_ms", "retrieval_p95_ms", "prompt_tokens_mean",
                                              "first_token_s_mean", "generation_tok_s_mean",
                                              "completion_tokens_mean", "total_s_mean")))


if __name__ == "__main__":
    main()
