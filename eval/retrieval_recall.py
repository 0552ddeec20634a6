"""Answer recall of the context that retrieval sends, on RealTimeQA dev (60 questions).

    .venv/bin/python eval/retrieval_recall.py [--data DIR] [--home DIR] [--write]

Ingests the whole article pool (both *_gcs.jsonl files, 436 search results) into an isolated
QA_HOME (kept between runs: a second run finds every article unchanged). For each question,
retrieval gets the question sentence alone, never the choices. A question counts as recalled
when the text of its gold choice (lower-cased, NFKC, curly quotes straightened, whitespace
collapsed) occurs as whole words inside one of the passages retrieval selected. The ceiling is
the share of questions whose gold text occurs anywhere in the pool. Only `question_sentence`,
`choices` and `answer` are read from the question files: `evidence` and `question_url` never
reach the system.

Latency (p50 / p95 of retrieve()) is taken at the default budget with nothing cached; the other
budgets reuse its sentence vectors, which changes no result. Prints a table per mode and
budget; with --write, also the Markdown section of eval/RESULTS.md and the raw figures in
bench/results/retrieval_recall.json.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import statistics
import subprocess
import sys
import time
import unicodedata
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from qa.search import Library  # noqa: E402
from qa.settings import Settings, load_settings, prepare_environment  # noqa: E402

MODES = ("dense", "bm25", "hybrid")
BUDGETS = (400, 800, 1000, 1600)
DEFAULT_BUDGET = 1000
SECTION = "## Retrieval recall on RealTimeQA dev"
RETRIEVAL_CODE = (
    "search/retrieval.py",
    "search/context.py",
    "search/options.py",
    "search/bm25.py",
    "store/lexicon.py",
    "terms.py",
    "chunking.py",
)


def norm(text: str) -> str:
    text = unicodedata.normalize("NFKC", text)
    for curly, straight in (("’", "'"), ("‘", "'"), ("“", '"'), ("”", '"')):
        text = text.replace(curly, straight)
    return " ".join(text.lower().split())


def contains(text: str, gold: str) -> bool:
    """`gold` occurs in `text` as whole words ("noma" is not in "carcinoma", nor "15" in "2015")."""
    return re.search(r"(?<![a-z0-9])" + re.escape(gold) + r"(?![a-z0-9])", text) is not None


def own_results(data: Path) -> dict[str, list[str]]:
    """Evaluator-side only: the normalised texts of each question's own search results."""
    out: dict[str, list[str]] = {}
    for path in sorted(data.glob("*_gcs.jsonl")):
        for line in path.read_text().splitlines():
            if line.strip():
                r = json.loads(line)
                out[r["question_id"]] = [norm(x.get("text") or "") for x in r.get("search_result") or []]
    return out


def load_questions(data: Path) -> list[dict]:
    """Only what an evaluator may see: id, question sentence, the gold choice's text."""
    questions = []
    for path in sorted(data.glob("*_qa.jsonl")):
        for line in path.read_text().splitlines():
            if not line.strip():
                continue
            r = json.loads(line)
            gold = r["choices"][int(r["answer"][0])]
            questions.append({"id": r["question_id"], "question": r["question_sentence"], "gold": gold})
    return questions


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def code_hash() -> str:
    """Which retrieval code produced the figures."""
    digest = hashlib.sha256()
    for name in RETRIEVAL_CODE + ("settings.py",):
        digest.update((REPO / "qa" / name).read_bytes())
    return digest.hexdigest()[:12]


def git_head() -> str:
    """The commit, marked +dirty when the retrieval code differs from it."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(REPO), *args], capture_output=True, text=True, check=True
        ).stdout.strip()

    try:
        dirty = git("status", "--porcelain", "--", *(f"qa/{n}" for n in RETRIEVAL_CODE))
        return git("rev-parse", "--short", "HEAD") + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return ""


def pool_settings(home: str | Path, collection: str = "") -> Settings:
    """The settings of the pool store: its QA_HOME, and by default a collection named after the store
    format, so a store written by older ingest code is not mixed with a new one."""
    from qa.ingest.pipeline import STORE_FORMAT

    settings = load_settings({"home": str(home), "collection": collection or f"pool-v{STORE_FORMAT}"})
    prepare_environment(settings)
    return settings


def run(data: Path, settings: Settings) -> dict:
    from dataclasses import replace

    from qa.ingest.pipeline import ingest
    from qa.library import ask_options, open_library
    from qa.notes import CachedEmbedder
    from qa.search.retrieval import retrieve
    from qa.tokens import count_tokens

    library = open_library(settings, ingesting=True)
    store, embedder, index = library.store, library.embedder, library.index
    t0 = time.perf_counter()
    report = ingest(
        sorted(str(p) for p in data.glob("*_gcs.jsonl")),
        library=library,
        chunk_tokens=settings.chunk_tokens,
        overlap=settings.chunk_overlap,
    )
    ingest_s = time.perf_counter() - t0
    pool = [norm(a.article.text) for a in store.articles()]

    questions = load_questions(data)
    own = own_results(data)
    embedder.embed(["warm up the embedder before timing"] * 8)
    cached = CachedEmbedder(embedder)
    rows = []
    for q in questions:
        gold = norm(q["gold"])
        row = {
            "id": q["id"],
            "in_pool": any(contains(text, gold) for text in pool),
            "in_own_results": any(contains(text, gold) for text in own.get(q["id"], [])),
            "runs": {},
        }
        for mode in MODES:
            # the default budget first and on an empty memo: its latency is that of a cold retrieve()
            cached.memo.clear()
            options = ask_options(settings, mode=mode).retrieval
            for budget in sorted(BUDGETS, key=lambda b: b != DEFAULT_BUDGET):
                got = retrieve(
                    q["question"], library=Library(store, cached, index), options=replace(options, budget=budget)
                )
                row["runs"][f"{mode}@{budget}"] = {
                    "hit": any(contains(norm(p.text), gold) for p in got.passages),
                    "tokens": sum(count_tokens(p.text) for p in got.passages),
                    "passages": len(got.passages),
                    "ms": round(got.ms, 1),
                }
        rows.append(row)

    n = len(rows)
    ceiling = sum(r["in_pool"] for r in rows) / n
    table = {}
    for mode in MODES:
        for budget in BUDGETS:
            runs = [r["runs"][f"{mode}@{budget}"] for r in rows]
            recall = sum(x["hit"] for x in runs) / n
            table[f"{mode}@{budget}"] = {
                "mode": mode,
                "budget": budget,
                "recall": round(recall, 4),
                "of_ceiling": round(recall / ceiling, 4) if ceiling else 0.0,
                "mean_tokens": round(statistics.mean(x["tokens"] for x in runs), 1),
                "mean_passages": round(statistics.mean(x["passages"] for x in runs), 2),
                "p50_ms": round(percentile([x["ms"] for x in runs], 0.5), 1),
                "p95_ms": round(percentile([x["ms"] for x in runs], 0.95), 1),
            }
    return {
        "data": data.name,
        "questions": n,
        "articles_in_pool": len(pool),
        "ingest": {s: report.count(s) for s in ("new", "updated", "unchanged", "duplicate", "failed")},
        "ingest_s": round(ingest_s, 2),
        "ceiling": round(ceiling, 4),
        "ceiling_own_results": round(sum(r["in_own_results"] for r in rows) / n, 4),
        "table": table,
        "settings": {
            "k": settings.k,
            "per_article": settings.per_article,
            "chunk_tokens": settings.chunk_tokens,
            "chunk_overlap": settings.chunk_overlap,
            "embedder": embedder.name,
        },
        "code_hash": code_hash(),
        "git_head": git_head(),
        "when": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "per_question": rows,
    }


def pool_parser(doc: str) -> argparse.ArgumentParser:
    """The arguments the scripts reading an already built pool store share: --data, --home, --collection."""
    parser = argparse.ArgumentParser(description=doc.split("\n")[0])
    parser.add_argument("--data", default=str(REPO.parent / "shared" / "eval" / "realtimeqa-dev"))
    parser.add_argument("--home", default=str(REPO / "eval" / "runs" / "realtimeqa-home"))
    parser.add_argument("--collection", default="")
    return parser


def open_pool(args: argparse.Namespace):
    """(settings, library: store, embedder, BM25 index) of the pool store this script built; exits when it is empty."""
    from qa.errors import QAError
    from qa.library import open_library

    settings = pool_settings(args.home, args.collection)
    try:
        return settings, open_library(
            settings,
            empty=f"collection {settings.collection!r} in {args.home} is empty: run eval/retrieval_recall.py first",
        )
    except QAError as exc:
        sys.exit(str(exc))


def markdown(result: dict, command: str) -> str:
    t = result["table"]
    lines = [
        SECTION,
        "",
        f"{result['questions']} questions (weeks 2023-01-06 and 2023-01-13), pool of "
        f"{result['articles_in_pool']} distinct articles from the {sum(result['ingest'].values())} search results. "
        "Query: the question sentence alone. Recall: share of questions whose gold choice text "
        "(case-insensitive, whitespace normalised, as whole words) appears in the passages retrieval selected. "
        "Tokens: mean cl100k tokens of the passages' text actually selected.",
        "",
        f"Ceiling (gold text anywhere in the pool): **{result['ceiling']:.3f}**. For reference, the gold text "
        f"occurs in the question's own search results for {result['ceiling_own_results']:.3f} of the questions: "
        "the rest of the pool ceiling comes from passing mentions in articles found for other questions "
        "(often older articles: a 2019 list of countries that names Brazil, a 2022 strike story that "
        "names hospitals).",
        "",
        "| mode | " + " | ".join(f"recall @{b}" for b in BUDGETS) + " | of ceiling @1000 | tokens used @1000 "
        "| p50 / p95 ms @1000 |",
        "|---|" + "---:|" * (len(BUDGETS) + 3),
    ]
    for mode in MODES:
        cells = [f"{t[f'{mode}@{b}']['recall']:.3f}" for b in BUDGETS]
        d = t[f"{mode}@{DEFAULT_BUDGET}"]
        lines.append(
            f"| {mode} | " + " | ".join(cells) + f" | {d['of_ceiling']:.0%} | {d['mean_tokens']:.0f} | "
            f"{d['p50_ms']:.0f} / {d['p95_ms']:.0f} |"
        )
    lines += [
        "",
        "Mean context tokens actually used per budget (hybrid): "
        + ", ".join(f"{b}: {t[f'hybrid@{b}']['mean_tokens']:.0f}" for b in BUDGETS)
        + ".",
        "",
        f"Produced by `{command}` at commit {result['git_head']} (retrieval code hash {result['code_hash']}, "
        f"k={result['settings']['k']}, per_article={result['settings']['per_article']}, "
        f"chunks {result['settings']['chunk_tokens']}/{result['settings']['chunk_overlap']} tokens, "
        f"{result['settings']['embedder']}) on {result['when'][:10]}. Latency is wall time of `retrieve()` "
        "(question embedding, dense and BM25 search, context selection from stored sentence vectors) "
        "on the shared 2-core machine; it grows with "
        "the load other jobs put on the machine. Raw figures: `bench/results/retrieval_recall.json`.",
        "",
    ]
    return "\n".join(lines)


def write_section(path: Path, section: str) -> None:
    """Replace this script's section of RESULTS.md (or append it), leaving other sections alone."""
    text = path.read_text() if path.exists() else "# Evaluation results\n"
    start = text.find(SECTION)
    if start < 0:
        text = text.rstrip("\n") + "\n\n" + section
    else:
        nxt = text.find("\n## ", start + len(SECTION))
        text = text[:start] + section.rstrip("\n") + "\n\n" + (text[nxt + 1 :] if nxt >= 0 else "")
    path.write_text(text.rstrip("\n") + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=str(REPO.parent / "shared" / "eval" / "realtimeqa-dev"))
    parser.add_argument(
        "--home",
        default=str(REPO / "eval" / "runs" / "realtimeqa-home"),
        help="QA_HOME for the pool (reused between runs)",
    )
    parser.add_argument(
        "--collection",
        default="",
        help="collection holding (or to hold) the pool; default pool-v<store format>, so a store "
        "written by older ingest code is not mixed with a new one",
    )
    parser.add_argument(
        "--write", action="store_true", help="update eval/RESULTS.md and bench/results/retrieval_recall.json"
    )
    args = parser.parse_args()
    result = run(Path(args.data), pool_settings(args.home, args.collection))
    print(
        f"ceiling {result['ceiling']:.3f} (own search results {result['ceiling_own_results']:.3f}; "
        f"{result['questions']} questions, {result['articles_in_pool']} articles)"
    )
    print(f"{'mode':<7} " + " ".join(f"{'@' + str(b):>7}" for b in BUDGETS) + "   tokens@1000  p50/p95 ms@1000")
    for mode in MODES:
        t = result["table"]
        d = t[f"{mode}@{DEFAULT_BUDGET}"]
        print(
            f"{mode:<7} "
            + " ".join(f"{t[f'{mode}@{b}']['recall']:>7.3f}" for b in BUDGETS)
            + f"   {d['mean_tokens']:>11.0f}  {d['p50_ms']:.0f}/{d['p95_ms']:.0f}"
        )
    if args.write:
        command = " ".join([".venv/bin/python", "eval/retrieval_recall.py", *sys.argv[1:]])
        write_section(REPO / "eval" / "RESULTS.md", markdown(result, command))
        out = REPO / "bench" / "results" / "retrieval_recall.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=1) + "\n")
        print("wrote eval/RESULTS.md and bench/results/retrieval_recall.json")


if __name__ == "__main__":
    main()
