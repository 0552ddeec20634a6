"""Answer latency of the local default on the RealTimeQA dev pool.

Prints retrieval p50/p95 ms, prompt tokens, time to first token and generation tokens/s
over the first --limit dev questions (question text only), per context budget.
Then the peak memory of answering: one real `qa ask` (the first question, the first budget,
the same --llm) runs in a child process, and its peak RSS (ru_maxrss from wait4) is printed
and written as `answer_peak_rss_mib`; --no-memory skips it. With a local model it runs twice:
with the background engine (the default: the command talks to the warm engine this script
started, whose own peak RSS is printed beside it) and with `QA_ENGINE=in-process` (the command
loads the model itself).

    .venv/bin/python bench/answer.py [--limit 10] [--budgets 1000] [--home DIR] [--collection NAME] [--llm local]

The pool is ingested into --home first (skipped when already there). Figures go to
bench/results/answer.json.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def answer_peak_rss(question: str, *, home: str, collection: str, llm: str, budget: int, engine: str = "") -> dict:
    """One real `qa ask --json` in a child process: its peak RSS (ru_maxrss via wait4) and wall time.
    `engine` ("background" or "in-process") is the child's QA_ENGINE; "" leaves the environment's."""
    command = [
        sys.executable,
        "-m",
        "qa",
        "--home",
        home,
        "--collection",
        collection,
        "ask",
        "--llm",
        llm,
        "--budget",
        str(budget),
        "--json",
        "--",
        question,
    ]
    with tempfile.TemporaryFile() as errors:
        t0 = time.perf_counter()
        env = {**os.environ, **({"QA_ENGINE": engine} if engine else {})}
        child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=errors, cwd=REPO, env=env)
        stdout = child.stdout.read()
        _, status, usage = os.wait4(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - t0
        if child.returncode:
            errors.seek(0)
            tail = errors.read().decode(errors="replace")[-2000:]
            sys.exit(f"{tail}\n`qa ask` failed (exit {child.returncode}): {' '.join(command)}")
    try:
        model = json.loads(stdout).get("model", "")
    except json.JSONDecodeError:
        model = ""
    return {
        "answer_peak_rss_mib": round(usage.ru_maxrss / 1024, 1),  # KiB on Linux
        "answer_process_s": round(wall, 2),
        "answer_process_model": model,
        "answer_process_command": f"{'QA_ENGINE=' + engine + ' ' if engine else ''}qa ask QUESTION --llm {llm} "
        f"--budget {budget} --json",
    }


def engine_peak_rss_mib(llm: object) -> float | None:
    """The peak RSS of the background engine serving `llm` (VmHWM from /proc), or None when in-process."""
    state = getattr(llm, "state", None)
    try:
        status = Path(f"/proc/{state.pid}/status").read_text() if state is not None else ""
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)  # kB
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(REPO.parent / "shared" / "eval" / "realtimeqa-dev"))
    parser.add_argument("--home", default="/tmp/qa-bench-answer")
    parser.add_argument("--limit", type=int, default=10)
    parser.add_argument("--budgets", default="1000", help="comma-separated context budgets in tokens")
    parser.add_argument("--llm", default="local")
    parser.add_argument("--collection", default="rtqa", help="collection holding (or to hold) the pool")
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory run of one `qa ask`")
    args = parser.parse_args()

    os.environ["QA_HOME"] = args.home
    from qa.answer import AskOptions, ask
    from qa.ingest.pipeline import ingest
    from qa.library import make_llm, open_library
    from qa.llm import model_name
    from qa.search.bm25 import open_index
    from qa.search.retrieval import RetrievalOptions
    from qa.settings import load_settings, prepare_environment

    settings = load_settings({"collection": args.collection, "llm": args.llm})
    prepare_environment(settings)
    data = Path(args.data)
    library = open_library(settings, ingesting=True)
    if library.store.chunk_count() == 0:
        ingest([str(p) for p in sorted(data.glob("*_gcs.jsonl"))], library=library)
    library.index = open_index(library.store)
    questions = [
        json.loads(line)["question_sentence"]
        for f in sorted(data.glob("*_qa.jsonl"))
        for line in f.read_text().splitlines()
        if line.strip()
    ][: args.limit]

    t0 = time.perf_counter()
    llm = make_llm(settings)
    if llm is None:
        sys.exit("bench/answer.py measures a model: pass --llm local (or openai:MODEL), not extractive")
    load_s = time.perf_counter() - t0
    ask(
        "Warm-up question?",
        library=library,
        llm=llm,
        options=AskOptions(retrieval=RetrievalOptions(budget=200), max_tokens=8),
    )  # the VM maps memory lazily: warm up first

    rows = []
    for budget in [int(b) for b in args.budgets.split(",")]:
        per = []
        for q in questions:
            a = ask(q, library=library, llm=llm, options=AskOptions(retrieval=RetrievalOptions(budget=budget)))
            t = a.timings
            per.append(t)
        gen = [t.tokens_per_s for t in per if t.completion_tokens > 1]
        rows.append(
            {
                "budget": budget,
                "questions": len(per),
                "retrieval_p50_ms": round(percentile([t.retrieval_ms for t in per], 0.5), 1),
                "retrieval_p95_ms": round(percentile([t.retrieval_ms for t in per], 0.95), 1),
                "prompt_tokens_mean": round(statistics.mean(t.prompt_tokens for t in per), 1),
                "first_token_s_mean": round(statistics.mean(t.first_token_ms for t in per) / 1000, 2),
                "generation_tok_s_mean": round(statistics.mean(gen), 1) if gen else 0.0,
                "completion_tokens_mean": round(statistics.mean(t.completion_tokens for t in per), 1),
                "total_s_mean": round(statistics.mean(t.total_ms for t in per) / 1000, 2),
            }
        )

    result = {"llm": model_name(llm), "model_load_s": round(load_s, 2), "cores": os.cpu_count(), "rows": rows}
    # this process's own peak: model, embedder, store, and the pool's ingest when it ran here
    result["bench_process_peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    if not args.no_memory and questions:
        # this process stays idle (and resident) meanwhile
        run = dict(home=args.home, collection=args.collection, llm=args.llm, budget=int(args.budgets.split(",")[0]))
        result.update(answer_peak_rss(questions[0], **run))
        result["engine_peak_rss_mib"] = engine_peak_rss_mib(llm)
        if args.llm.startswith("local") and result["engine_peak_rss_mib"] is not None:
            alone = answer_peak_rss(questions[0], engine="in-process", **run)  # the child loads the model itself
            result.update({k.replace("answer_", "in_process_answer_"): v for k, v in alone.items()})
    result["load_average"] = [round(x, 2) for x in os.getloadavg()]
    out = REPO / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "answer.json").write_text(json.dumps(result, indent=2) + "\n")
    print(f"llm {result['llm']}  (load {load_s:.1f} s, {os.cpu_count()} cores)")
    head = ["budget", "retrieval p50 ms", "p95 ms", "prompt tok", "first token s", "gen tok/s", "answer tok", "total s"]
    print(" | ".join(head))
    for r in rows:
        print(
            " | ".join(
                str(r[k])
                for k in (
                    "budget",
                    "retrieval_p50_ms",
                    "retrieval_p95_ms",
                    "prompt_tokens_mean",
                    "first_token_s_mean",
                    "generation_tok_s_mean",
                    "completion_tokens_mean",
                    "total_s_mean",
                )
            )
        )
    if "answer_peak_rss_mib" in result:
        engine_rss = result["engine_peak_rss_mib"]
        where = f"; the warm background engine it used: {engine_rss:.0f} MiB" if engine_rss else ", model load included"
        print(
            f"peak RSS of one `qa ask` process ({result['answer_process_model'] or args.llm}): "
            f"{result['answer_peak_rss_mib']:.0f} MiB  ({result['answer_process_s']:.1f} s{where})"
        )
    if "in_process_answer_peak_rss_mib" in result:
        print(
            f"peak RSS of one `qa ask` process with QA_ENGINE=in-process: "
            f"{result['in_process_answer_peak_rss_mib']:.0f} MiB  ({result['in_process_answer_process_s']:.1f} s, "
            "model load included)"
        )


if __name__ == "__main__":
    main()
