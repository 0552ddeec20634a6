"""Writes and syncs on a 100k-chunk store: adding one article (embedded and on a Chroma server), and
a second machine's first command after someone else added 1,000 articles.

    .venv/bin/python bench/shared.py [--root /tmp/qa-bench-retrieval] [--size 100k] [--articles 1000]
                                     [--data ../shared/eval/realtimeqa-dev]

Uses the stores bench/retrieval.py builds (ROOT/<size> embedded, ROOT/<size>-server with its
`chroma run` data and the owner's cache); builds them first if they are missing
(`bench/retrieval.py --sizes SIZE --build-only`).

1. One article added, end to end: `qa ingest FILE --json` in a new process (start-up, opening the
   store and, on a server, syncing its cache, loading the embedder, embedding the article's
   sentences, writing vectors, catalogue and keyword index), three different articles in turn
   (a dev-pool article of median length with a line of its own on top, so it is new), each removed
   again afterwards with `qa remove`. Also the ingest() call alone in one warm process.
2. A second machine: a fresh QA_HOME pointed at the server store. Its first look fetches the whole
   archive (timed). Then the owner adds N articles (copies of the dev pool through Store.add_many,
   vectors made beforehand as in bench/retrieval.py: no embedding) and the second machine opens the
   store again: the time its sync takes and what it fetched; then the owner removes them and the
   sync of N removals is timed. `qa stats` wall time on the second machine with nothing to sync is
   given for reference.

Prints a table and writes bench/results/shared.json, with load averages before and after each step.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

import retrieval as rb  # noqa: E402  (bench/retrieval.py: the stores, the server, the corpus)

from qa.settings import load_settings, prepare_environment  # noqa: E402

QA = str(Path(sys.executable).with_name("qa"))


def env_for(home: Path, url: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("QA_")}
    env |= {"QA_HOME": str(home), "QA_COLLECTION": rb.COLLECTION, "QA_LLM": "extractive"}
    if url:
        env["QA_CHROMA_URL"] = url
    return env


def timed_cli(args: list[str], env: dict) -> tuple[float, dict | None]:
    t0 = time.perf_counter()
    done = subprocess.run([QA, *args], env=env, capture_output=True, text=True, timeout=600)
    seconds = time.perf_counter() - t0
    if done.returncode:
        raise RuntimeError(f"qa {' '.join(args)} failed: {done.stderr.strip()}")
    try:
        return seconds, json.loads(done.stdout)
    except ValueError:
        return seconds, None


def sample_articles(data: Path, folder: Path, n: int) -> list[Path]:
    """n new article files: the dev-pool article of median length, its words shuffled (`_scrambled`)."""
    base, _ = rb.load_base(data)
    article = sorted((a for a, *_ in base), key=lambda a: len(a.text))[len(base) // 2]
    folder.mkdir(parents=True, exist_ok=True)
    files = []
    for i in range(n):
        path = folder / f"one-{i}-{time.time_ns()}.txt"
        path.write_text(
            f"{article.title}\nSource: {article.source}\nDate: {article.date}\n\n"
            f"[shared benchmark {path.stem}]\n{_scrambled(article.text, time.time_ns())}",
            encoding="utf-8",
        )
        files.append(path)
    return files


def _scrambled(text: str, seed: int) -> str:
    """The article's words in another order within each paragraph: as long as the article and as
    costly to embed and index, but not a near-copy of it (which ingest would list as another source
    of the pool's article instead of adding it)."""
    import random

    rng = random.Random(seed)
    paragraphs = []
    for paragraph in text.split("\n\n"):
        words = paragraph.split()
        rng.shuffle(words)
        paragraphs.append(" ".join(words))
    return "\n\n".join(paragraphs)


def add_one(home: Path, url: str, files: list[Path]) -> dict:
    env = env_for(home, url)
    rows = []
    for path in files:
        load = rb.loadavg()
        wall, report = timed_cli(["ingest", str(path), "--json"], env)
        assert report and report["counts"]["new"] == 1, report
        added = next(i for i in report["items"] if i["status"] == "new")
        rows.append({"wall_s": round(wall, 2), "ingest_s": report["seconds"], "chunks": added["chunks"], "load": load})
        timed_cli(["remove", added["article_id"]], env)
    # the same, inside one warm process
    from qa.ingest.pipeline import ingest
    from qa.library import open_library

    settings = load_settings(environ=env_for(home, url))
    library = open_library(settings, ingesting=True)
    warm = []
    for path in files:
        t0 = time.perf_counter()
        report = ingest([str(path)], library=library)
        warm.append(round(time.perf_counter() - t0, 2))
        with library.store.write_lock():
            library.store.remove([i.article_id for i in report.items if i.status == "new"])
    library.close()
    return {
        "backend": "server" if url else "embedded",
        "cli": rows,
        "cli_wall_s_median": statistics.median(r["wall_s"] for r in rows),
        "cli_wall_s_max": max(r["wall_s"] for r in rows),
        "warm_ingest_s": warm,
    }


def open_second(home: Path, url: str):
    from qa.library import open_store

    t0 = time.perf_counter()
    store = open_store(load_settings(environ=env_for(home, url)))
    return store, time.perf_counter() - t0


def second_machine(root: Path, label: str, url: str, data: Path, n: int) -> dict:
    from qa.library import make_embedder, open_store

    second = root / "second-machine"
    shutil.rmtree(second, ignore_errors=True)
    out: dict = {"load_before": rb.loadavg()}
    store, seconds = open_second(second, url)
    out["first_look"] = {"open_s": round(seconds, 2), **vars(store.last_sync), "articles": len(store.articles())}
    store.close()
    out["stats_wall_s_nothing_to_sync"] = round(timed_cli(["stats", "--json"], env_for(second, url))[0], 2)

    owner_settings = load_settings(environ=env_for(rb.store_home(root, label, url), url))
    owner = open_store(owner_settings, make_embedder(owner_settings))
    base, _ = rb.load_base(data)
    vectors, _ = rb.sentence_vectors(base, root)
    rng = np.random.default_rng(99)
    items: list = []
    copy = 100_000  # far above the copies the store was built from
    while len(items) < n:
        items += rb.copy_items(base, vectors, copy, rng)
        copy += 1
    items = items[:n]
    t0 = time.perf_counter()
    with owner.write_lock():
        owner.add_many(items)
    out["owner_add_s"] = round(time.perf_counter() - t0, 1)
    out["added_chunks"] = sum(len(i.chunks) for i in items)

    store, seconds = open_second(second, url)
    out["after_adds"] = {"open_s": round(seconds, 2), **vars(store.last_sync), "articles": len(store.articles())}
    store.close()
    with owner.write_lock():
        owner.remove([i.article.id for i in items])
    owner.close()
    store, seconds = open_second(second, url)
    out["after_removals"] = {"open_s": round(seconds, 2), **vars(store.last_sync), "articles": len(store.articles())}
    store.close()
    out["cache_mb"] = rb.du_mb(second / "cache")
    out["load_after"] = rb.loadavg()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", type=Path, default=Path("/tmp/qa-bench-retrieval"))
    parser.add_argument("--size", default="100k")
    parser.add_argument("--articles", type=int, default=1000)
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "eval" / "realtimeqa-dev")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "shared.json")
    a = parser.parse_args()
    prepare_environment(load_settings())
    label = a.size
    result: dict = {"command": "bench/shared.py " + " ".join(sys.argv[1:]), "code": rb.provenance(), "size": label}
    if (
        not (rb.store_home(a.root, label, "") / "build.json").is_file()
        or not (rb.store_home(a.root, label, "server") / "build.json").is_file()
    ):
        subprocess.run(
            [
                sys.executable,
                str(REPO / "bench" / "retrieval.py"),
                "--sizes",
                label,
                "--build-only",
                "--root",
                str(a.root),
            ],
            check=True,
        )
    files = sample_articles(a.data, a.root / "one-article", 3)
    result["one_article_embedded"] = add_one(rb.store_home(a.root, label, ""), "", files)
    home = rb.store_home(a.root, label, "server")
    proc, url = rb.start_server(home / "chroma", a.root / f"chroma-server-{label}.log")
    try:
        result["one_article_server"] = add_one(home, url, files)
        result["second_machine"] = second_machine(a.root, label, url, a.data, a.articles)
    finally:
        rb.stop_server(proc)
    print(json.dumps(result, indent=1))
    for key in ("one_article_embedded", "one_article_server"):
        r = result[key]
        print(
            f"{label} {r['backend']}: `qa ingest` of one article, wall s {[x['wall_s'] for x in r['cli']]} "
            f"(ingest itself {[x['ingest_s'] for x in r['cli']]}); in a warm process {r['warm_ingest_s']}"
        )
    s = result["second_machine"]
    print(
        f"second machine: first look {s['first_look']['seconds']:.1f} s ({s['first_look']['fetched']} articles); "
        f"after {a.articles} added: sync {s['after_adds']['seconds']:.2f} s ({s['after_adds']['fetched']} fetched); "
        f"after they were removed: {s['after_removals']['seconds']:.2f} s ({s['after_removals']['dropped']} dropped); "
        f"`qa stats` with nothing to sync {s['stats_wall_s_nothing_to_sync']} s"
    )
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
