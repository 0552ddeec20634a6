"""Question embedding latency: the one-thread session qa uses for a single text against the
all-cores session, interleaved in one process (so load affects both alike).

    .venv/bin/python bench/question_embedding.py [--rounds 4] [--calls 60]

Embeds the 60 RealTimeQA dev question sentences one at a time (the fixed sample question
when the data is absent). Prints p50/p95 ms per session and round; writes
bench/results/question_embedding.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--data", default=str(REPO.parent / "shared" / "eval" / "realtimeqa-dev"))
    parser.add_argument("--out", default=str(REPO / "bench" / "results" / "question_embedding.json"))
    args = parser.parse_args()
    from qa.library import make_embedder
    from qa.settings import load_settings, prepare_environment

    settings = load_settings({"embedder": "minilm"})
    prepare_environment(settings)

    questions = [
        json.loads(line)["question_sentence"]
        for p in sorted(Path(args.data).glob("*_qa.jsonl"))
        for line in p.read_text().splitlines()
        if line.strip()
    ]
    questions = questions or ["Which company said this week that it would cut 10,000 jobs?"] * 60
    embedder = make_embedder(settings)  # MiniLM: all cores for batches; `single` is the one-thread session
    sessions = {"one thread (used for a single text)": embedder.single, "all cores": embedder.session}
    for q in questions[:10]:
        embedder.embed([q])
    rows = []
    for r in range(args.rounds):
        for name, session in sessions.items():
            embedder.single = session
            times = []
            for q in questions:
                t0 = time.perf_counter()
                embedder.embed([q])
                times.append((time.perf_counter() - t0) * 1000)
            times.sort()
            row = {
                "round": r,
                "session": name,
                "p50_ms": round(times[len(times) // 2], 2),
                "p95_ms": round(times[int(0.95 * (len(times) - 1))], 2),
                "calls": len(times),
            }
            rows.append(row)
            print(f"round {r}  {name:<36} p50 {row['p50_ms']:6.1f} ms  p95 {row['p95_ms']:6.1f} ms")
    result = {
        "cores": os.cpu_count(),
        "load": os.getloadavg(),
        "rows": rows,
        "when": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    print(f"load average {os.getloadavg()}; wrote {args.out}")


if __name__ == "__main__":
    main()
