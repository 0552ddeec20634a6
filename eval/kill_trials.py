"""kill -9 an ingest at random moments, then check the store and finish the work.

    .venv/bin/python eval/kill_trials.py [--trials 20] [--articles 80] [--embedder minilm] [--seed 7]

Before each trial a random 40% of the articles are edited (so every run has new and
replacement work to do), then `qa ingest` starts on the folder, is killed with SIGKILL after a
random delay, and `qa doctor --check` runs: every chunk's article exists, every article has its
chunks, every vector has its chunk, nothing half-written is visible, BM25 matches Chroma.
(The next ingest finishes what the killed one started.) At the end an uninterrupted
ingest must bring every article in exactly once. Prints a table; exit 1 on any inconsistency.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

QA = [sys.executable, "-m", "qa"]


def write_article(folder: Path, i: int, version: int) -> None:
    body = " ".join(
        f"Paragraph {j} of report {i} says the council met on day {j} to discuss item {i * j}." for j in range(60)
    )
    (folder / f"report-{i:03d}.txt").write_text(
        f"Report {i}\nSource: Wire {i % 4}\nDate: 2026-02-{i % 28 + 1:02d}\n\n{body}\nRevision {version}.\n"
    )


def _stored_revision(env: dict, i: int) -> int:
    import sqlite3

    db = sqlite3.connect(Path(env["QA_HOME"]) / "articles.sqlite")
    rows = db.execute("SELECT text FROM articles WHERE title=? AND state='ok'", (f"Report {i}",)).fetchall()
    db.close()
    if len(rows) != 1:
        return -1  # missing or stored twice
    return int(rows[0][0].rsplit("Revision ", 1)[1].rstrip(". \n"))


def doctor(env: dict) -> tuple[bool, list[dict]]:
    run = subprocess.run(QA + ["doctor", "--check", "--json"], env=env, capture_output=True, text=True)
    checks = json.loads(run.stdout)["store"]
    return run.returncode == 0, checks


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--articles", type=int, default=80)
    parser.add_argument("--embedder", default="minilm")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--max-delay",
        type=float,
        default=0.0,
        help="longest wait before the kill (default: the time of one full ingest, measured first)",
    )
    args = parser.parse_args()
    rng = random.Random(args.seed)
    work = Path(tempfile.mkdtemp(prefix="qa-kill-"))
    folder = work / "articles"
    folder.mkdir(parents=True)
    versions = [0] * args.articles
    for i in range(args.articles):
        write_article(folder, i, 0)
    env = {**os.environ, "QA_HOME": str(work / "home"), "QA_EMBEDDER": args.embedder}
    if not args.max_delay:  # calibrate: kills should land anywhere from start-up to the last article
        started = time.perf_counter()
        subprocess.run(
            QA + ["ingest", str(folder), "--json"],
            env={**env, "QA_HOME": str(work / "calibration")},
            capture_output=True,
            check=True,
        )
        args.max_delay = time.perf_counter() - started
        print(f"one full ingest takes {args.max_delay:.1f} s: kills land between 0.5 s and that", flush=True)

    rows, inconsistent = [], 0
    for trial in range(1, args.trials + 1):
        if trial > 1:  # edit 40% of the articles: the next run replaces them
            for i in rng.sample(range(args.articles), k=args.articles * 2 // 5):
                versions[i] += 1
                write_article(folder, i, versions[i])
        delay = rng.uniform(0.5, args.max_delay)
        proc = subprocess.Popen(
            QA + ["ingest", str(folder), "--json"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        time.sleep(delay)
        finished = proc.poll() is not None
        if not finished:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        ok, checks = doctor(env)
        inconsistent += not ok
        rows.append(
            (
                trial,
                f"{delay:.2f}",
                "finished first" if finished else "killed",
                "ok" if ok else "INCONSISTENT",
                checks[0]["detail"],
            )
        )
        print(*rows[-1], sep=" | ", flush=True)

    final = subprocess.run(QA + ["ingest", str(folder), "--json"], env=env, capture_output=True, text=True)
    counts = json.loads(final.stdout)["counts"]
    ok, checks = doctor(env)
    stored = checks[0]["detail"]
    latest = sum(1 for i in range(args.articles) if _stored_revision(env, i) == versions[i])
    complete = ok and stored.startswith(f"{args.articles} articles") and latest == args.articles
    killed = sum(1 for r in rows if r[2] == "killed")
    print(
        f"\ntrials {len(rows)}, killed mid-run {killed}, inconsistent after a kill {inconsistent}; "
        f"final run {counts}; store: {stored}; latest version stored for {latest}/{args.articles}; "
        f"{'complete, no duplicates' if complete else 'INCOMPLETE'}"
    )
    return 0 if inconsistent == 0 and complete else 1


if __name__ == "__main__":
    sys.exit(main())
