"""Keyword search, two ways, on the same chunks: SQLite FTS5 ranked by its bm25() (the obvious
candidate, measured first) and qa's lexicon (qa/store/lexicon.py, what qa uses).

    .venv/bin/python bench/lexical.py [--sizes 100k,1m] [--root /tmp/qa-bench-lexical]
                                      [--data ../shared/eval/realtimeqa-dev]

The RealTimeQA dev pool (379 distinct articles, 2,614 chunks of 300 tokens) is repeated until the
index holds SIZE chunks, each copy under its own chunk ids, written in batches of one copy (as the
retrieval benchmark's stores are). Both indexes get the same terms (qa.terms: lower-cased, stopwords
out, light stemming), computed per chunk inside the timed build. FTS5: a contentless table with
`tokenize="unicode61 tokenchars '.'"` (a term keeps its dots, as qa's do), one INSERT per chunk.
Then the 60 dev question sentences are searched for their best 160 chunks (what hybrid retrieval
asks for at k=40), twice after a warm-up pass: p50 / p95 ms. Agreement: the share of questions
whose top 10 chunk texts are the same set in both (chunk ids differ across copies, texts do not).

Prints a table and writes bench/results/lexical.json, with the load average before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

import retrieval as rb  # noqa: E402  (the corpus loader, sizes, load averages)

from qa.settings import load_settings, prepare_environment  # noqa: E402


def fresh(path: Path) -> sqlite3.Connection:
    for suffix in ("", "-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    return db


def size_mb(path: Path) -> float:
    return round(
        sum(Path(str(path) + s).stat().st_size for s in ("", "-wal") if Path(str(path) + s).exists()) / 2**20, 1
    )


def build_fts5(path: Path, chunks: list[str], target: int) -> tuple[sqlite3.Connection, float]:
    from qa.terms import terms

    db = fresh(path)
    db.execute("CREATE VIRTUAL TABLE f USING fts5(terms, content='', tokenize=\"unicode61 tokenchars '.'\")")
    t0, n = time.perf_counter(), 0
    while n < target:
        db.execute("BEGIN")
        rows = []
        for text in chunks[: target - n]:
            n += 1
            rows.append((n, " ".join(terms(text))))
        db.executemany("INSERT INTO f(rowid, terms) VALUES (?,?)", rows)
        db.execute("COMMIT")
    seconds = time.perf_counter() - t0
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return db, seconds


def build_lexicon(path: Path, chunks: list[str], target: int) -> tuple[sqlite3.Connection, float]:
    from qa.store import lexicon

    db = fresh(path)
    db.execute("PRAGMA mmap_size=1099511627776")  # as the catalogue opens it
    db.execute("CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT)")
    lexicon.create(db)
    lexicon.clear(db)
    t0, n, copy = time.perf_counter(), 0, 0
    while n < target:
        batch = [(f"{copy}-{i}", text) for i, text in enumerate(chunks[: target - n])]
        db.execute("BEGIN IMMEDIATE")
        lexicon.add(db, batch)
        db.execute("COMMIT")
        n += len(batch)
        copy += 1
    seconds = time.perf_counter() - t0
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return db, seconds


def fts5_search(db: sqlite3.Connection, words: list[str], k: int) -> list[int]:
    if not words:
        return []
    match = " OR ".join(f'"{w}"' for w in words)
    rows = db.execute("SELECT rowid FROM f WHERE f MATCH ? ORDER BY bm25(f) LIMIT ?", (match, k))
    return [r[0] for r in rows]


def timed(search, questions: list[list[str]]) -> tuple[list, dict]:
    for words in questions:  # warm-up
        search(words)
    ms, found = [], []
    for _ in range(2):
        found = []
        for words in questions:
            t0 = time.perf_counter()
            found.append(search(words))
            ms.append((time.perf_counter() - t0) * 1000)
    return found, {"p50_ms": round(rb.percentile(ms, 0.5), 1), "p95_ms": round(rb.percentile(ms, 0.95), 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="100k,1m")
    parser.add_argument("--root", type=Path, default=Path("/tmp/qa-bench-lexical"))
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "eval" / "realtimeqa-dev")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "lexical.json")
    a = parser.parse_args()
    prepare_environment(load_settings())
    from qa.store import lexicon
    from qa.terms import terms

    base, _ = rb.load_base(a.data)
    chunks = [c.text for _, _, cs, _ in base for c in cs]
    questions = [terms(q) for q in rb.load_questions(a.data)]
    a.root.mkdir(parents=True, exist_ok=True)
    result: dict = {"command": "bench/lexical.py " + " ".join(sys.argv[1:]), "code": rb.provenance(), "sizes": []}
    for label in [s.strip() for s in a.sizes.split(",") if s.strip()]:
        target = rb.SIZES[label]
        row: dict = {"size": label, "chunks": target, "load_before": rb.loadavg()}
        fts, fts_s = build_fts5(a.root / f"fts5-{label}.sqlite", chunks, target)
        lex, lex_s = build_lexicon(a.root / f"lexicon-{label}.sqlite", chunks, target)
        row["build_s"] = {"fts5": round(fts_s, 1), "lexicon": round(lex_s, 1)}
        row["size_mb"] = {
            "fts5": size_mb(a.root / f"fts5-{label}.sqlite"),
            "lexicon": size_mb(a.root / f"lexicon-{label}.sqlite"),
        }
        fts_found, row["fts5"] = timed(lambda w, db=fts: fts5_search(db, w, 160), questions)
        lex_found, row["lexicon"] = timed(lambda w, db=lex: lexicon.search(db, w, 160), questions)
        # agreement on texts: FTS5 rowid n is chunk (n - 1) % len(chunks); lexicon ids are "copy-index"
        text_fts = [{chunks[(r - 1) % len(chunks)] for r in f[:10]} for f in fts_found]
        text_lex = [{chunks[int(cid.split("-")[1])] for cid, _ in f[:10]} for f in lex_found]
        row["same_top10_texts"] = round(
            sum(x == y for x, y in zip(text_fts, text_lex, strict=True)) / len(questions), 3
        )
        row["load_after"] = rb.loadavg()
        result["sizes"].append(row)
        print(json.dumps(row), flush=True)
        fts.close()
        lex.close()
    print("\n| chunks | index | build s | size MB | search p50 / p95 ms (top 160) | load before / after |")
    print("|---:|---|---:|---:|---|---|")
    for r in result["sizes"]:
        for name in ("fts5", "lexicon"):
            print(
                f"| {r['chunks']:,} | {name} | {r['build_s'][name]} | {r['size_mb'][name]} | "
                f"{r[name]['p50_ms']} / {r[name]['p95_ms']} | {r['load_before'][0]} / {r['load_after'][0]} |"
            )
        print(f"same top-10 texts in both: {r['same_top10_texts']:.0%} of the questions ({r['size']})")
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"load average now {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
