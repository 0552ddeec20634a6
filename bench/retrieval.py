"""Retrieval latency at scale: qa.search.retrieval.retrieve() at 10k / 100k / 1M chunks, embedded
Chroma and a Chroma server.

    .venv/bin/python bench/retrieval.py [--sizes 10k,100k,1m] [--backends embedded,server]
                                        [--modes dense,bm25,hybrid] [--repeats 3] [--root /tmp/qa-bench-retrieval]
                                        [--data ../shared/eval/realtimeqa-dev] [--build-only] [--profile SIZE]

What is timed: the whole retrieve() call a user waits for (question embedding with the real
MiniLM, Chroma dense search, BM25, reciprocal-rank fusion, catalogue reads and sentence-level
context selection at the default budget of 1,000 tokens, k=40, 3 passages per article), on
the 60 RealTimeQA dev question sentences. Each (size, backend) is measured in a fresh child
process: one untimed warm-up pass over all questions in every mode, then --repeats rounds of
every question in every mode (modes interleaved, so load drift hits them alike). Per call the
script also times, by wrapping the store's and index's methods from outside, the question
embedding, the Chroma query (with its count() call) and the BM25 search; "rest" is the
remainder (catalogue reads, fusion, context selection).

How the stores are built (cheaply, but through the real write path): the 436 RealTimeQA dev
search results are loaded with qa.ingest.loaders.load_file, deduplicated by article id, chunked as
qa/ingest.py does (sentence_units + chunk_article, 300 / 45 tokens) and their sentences
embedded ONCE with the real MiniLMEmbedder (vectors cached under ROOT, so reruns skip it).
Copy 0 is the corpus as is; copy c >= 1 prefixes each article's text with the line
"[benchmark copy c]", which gives it its own article id (qa.ingest.loaders.article_id of the new
text) and chunk ids; its sentence and chunk spans are the originals shifted past that line
(the chunk texts are the originals). Each copy's sentence vectors get Gaussian noise
(sigma 0.005 per dimension, cosine ~0.995 to the original) and are renormalised; chunk
vectors come from them through qa.chunking.chunk_vectors, as in ingest. Copies are written
with Store.add_many (one call per copy) until the store holds at least SIZE chunks (the last
copy is cut at an article boundary). The BM25 (lexical) index is written by those same calls, in
the catalogue (qa/store/lexicon.py): its share of the write time is timed, its size on disk read
from SQLite's dbstat, and it is then rebuilt from scratch once (what a store from before the
index lived in the catalogue pays on first open) and that timed too.
Stores live in ROOT/<size> and are reused while their recipe is unchanged; build times and
sizes on disk are kept in ROOT/<size>/build.json and reported.

The server backend is `chroma run --path ROOT/<size>-server/chroma --host 127.0.0.1 --port P`,
started by this script on a free loopback port and stopped after its measurement. Its store is
built through the same Store.add_many calls with QA_CHROMA_URL set, so the server holds what a team
shares (article records, chunk vectors with their sentences) and ROOT/<size>-server/cache holds the
user's cache (the catalogue with its lexical index), as `qa` keeps them (up to 100k chunks).

Cost of the 1M store on the project's (shared, loaded) machine: the write path ran at 550-1,000
chunks/s (100k: 183 s), so 1M takes roughly 20-35 min to write and ~9 GB of catalogue (each
copy keeps its 29k sentence vectors as float16); run `--sizes 1m --build-only` ahead of time
if you want it.

--profile SIZE: cProfile of hybrid retrieve() on the embedded store of that size (60
questions x 3 after warm-up); prints the top functions, writes nothing else.

The machine may be shared: load averages (1/5/15 min) are recorded before and after every
measurement, in the table and the JSON. Results: bench/results/retrieval.json.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from qa.search import Library  # noqa: E402
from qa.settings import load_settings, prepare_environment  # noqa: E402

MODES = ("dense", "bm25", "hybrid")
SERVER_SIZES = ("10k", "100k")  # a 1M store written through HTTP would take hours here
SIZES = {"10k": 10_000, "100k": 100_000, "1m": 1_000_000}
COLLECTION = "articles"
NOISE_SIGMA = 0.005
SEED = 8
RECIPE = 2  # bump when the way stores are built changes: stores built by another recipe are rebuilt
CHUNK_TOKENS, OVERLAP = 300, 45
TARGET = {"size": "100k", "backend": "embedded", "mode": "hybrid", "p95_ms": 50.0}


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def setup() -> None:
    """Telemetry off and tiktoken seeded from the package, before any library loads."""
    prepare_environment(load_settings())


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def du_mb(path: Path) -> float:
    return round(sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20, 1)


# ---- the base corpus ----------------------------------------------------------------------


def load_base(data: Path):
    """Distinct articles of the dev pool, chunked as qa/ingest.py does: [(article, key, chunks, spans)]."""
    from qa.chunking import SENTENCE_TOKENS, chunk_article, sentence_units
    from qa.ingest.loaders import load_file
    from qa.ingest.pipeline import identity_key

    files = sorted(data.glob("*_gcs.jsonl"))
    if not files:
        sys.exit(f"no *_gcs.jsonl files in {data}")
    base, seen, read = [], set(), 0
    for path in files:
        for article in load_file(path).articles:
            read += 1
            if article.id in seen:
                continue
            seen.add(article.id)
            units = sentence_units(article.text, min(CHUNK_TOKENS, SENTENCE_TOKENS))
            chunks = chunk_article(article, CHUNK_TOKENS, OVERLAP, units=units)
            base.append((article, identity_key(article), chunks, [(a, b) for a, b, _ in units]))
    return base, read


def sentence_vectors(base, root: Path) -> tuple[np.ndarray, dict]:
    """Every sentence of the base corpus embedded once with the real MiniLM, cached in ROOT."""
    from qa.embeddings import MINILM, MiniLMEmbedder

    texts = [article.text[a:b] for article, _, _, spans in base for a, b in spans]
    digest = hashlib.sha256(("\x00".join(texts) + MINILM).encode()).hexdigest()[:16]
    cache = root / f"sentence-vectors-{digest}.npy"
    if cache.is_file():
        return np.load(cache), {"sentences": len(texts), "embed_s": None, "cache": str(cache), "cached": True}
    log(f"embedding {len(texts):,} sentences with {MINILM} (once; cached in {cache})")
    embedder = MiniLMEmbedder()
    t0 = time.perf_counter()
    vectors = embedder.embed(texts)
    seconds = time.perf_counter() - t0
    root.mkdir(parents=True, exist_ok=True)
    np.save(cache.with_suffix(".tmp.npy"), vectors)
    os.replace(cache.with_suffix(".tmp.npy"), cache)
    return vectors, {"sentences": len(texts), "embed_s": round(seconds, 1), "cache": str(cache), "cached": False}


# ---- building a store ---------------------------------------------------------------------


def recipe(label: str, base_digest: str) -> dict:
    return {
        "recipe": RECIPE,
        "size": SIZES[label],
        "sigma": NOISE_SIGMA,
        "seed": SEED,
        "base": base_digest,
        "chunk_tokens": CHUNK_TOKENS,
        "overlap": OVERLAP,
    }


def lexicon_mb(path: Path) -> float:
    """Pages of the lexical index's tables and indexes in the catalogue (SQLite's dbstat)."""
    import sqlite3

    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    names = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE name LIKE '%lexicon%'")]
    size = sum(db.execute("SELECT SUM(pgsize) FROM dbstat WHERE name=?", (n,)).fetchone()[0] or 0 for n in names)
    db.close()
    return round(size / 2**20, 1)


def copy_items(base, vectors: np.ndarray, c: int, rng, limit: int | None = None) -> list:
    """Copy `c` of the base corpus as NewArticles (see the module text): copy 0 is the corpus itself,
    copy c >= 1 each article with a "[benchmark copy c]" first line, its own ids, noisy vectors."""
    from dataclasses import replace

    from qa.chunking import chunk_vectors
    from qa.ingest.articles import article_id
    from qa.records import Chunk
    from qa.store import NewArticle

    offsets = np.cumsum([0] + [len(s) for *_, s in base])
    noisy = vectors + rng.normal(0.0, NOISE_SIGMA, size=vectors.shape).astype(np.float32)
    noisy /= np.linalg.norm(noisy, axis=1, keepdims=True)
    items, chunks_so_far = [], 0
    for n, (article, key, chunks, spans) in enumerate(base):
        if limit is not None and chunks_so_far >= limit:
            break
        own = noisy[offsets[n] : offsets[n + 1]]
        if c == 0:
            new, new_chunks, new_spans, new_key = article, list(chunks), list(spans), key
        else:
            prefix = f"[benchmark copy {c}]\n"
            shift = len(prefix)
            text = prefix + article.text
            new = replace(article, id=article_id(text), text=text, origin=f"{article.origin}#copy{c}")
            new_key = f"{key}#copy{c}"
            new_spans = [(a + shift, b + shift) for a, b in spans]
            new_chunks = [
                Chunk(
                    id=f"{new.id}-{ch.position:04d}",
                    article_id=new.id,
                    position=ch.position,
                    text=ch.text,
                    start=ch.start + shift,
                    end=ch.end + shift,
                    tokens=ch.tokens,
                )
                for ch in chunks
            ]
        items.append(NewArticle(new, new_key, new_chunks, chunk_vectors(new_chunks, new_spans, own), new_spans, own))
        chunks_so_far += len(new_chunks)
    return items


def store_home(root: Path, label: str, url: str) -> Path:
    """Where a store of that size lives: ROOT/<size> (embedded), ROOT/<size>-server (its server's
    data in chroma/, the user's cache in cache/)."""
    return root / (f"{label}-server" if url else label)


def build(label: str, root: Path, data: Path, url: str = "") -> dict:
    """A store of at least SIZES[label] chunks (see the module text), embedded or, with `url`, on that
    Chroma server (serving store_home()/chroma); reused when built by this recipe."""
    from qa.library import make_embedder, open_store
    from qa.store import lexicon

    t_prep = time.perf_counter()
    base, read = load_base(data)
    vectors, embed_info = sentence_vectors(base, root)
    base_digest = hashlib.sha256("".join(a.id for a, *_ in base).encode()).hexdigest()[:16]
    want = recipe(label, base_digest) | ({"server": True} if url else {})
    home = store_home(root, label, url)
    marker = home / "build.json"
    if marker.is_file():
        done = json.loads(marker.read_text())
        if done.get("recipe_params") == want:
            done["reused"] = True
            return done
    prep_s = time.perf_counter() - t_prep

    if not url:
        shutil.rmtree(home, ignore_errors=True)  # (a server's folder is emptied before it is started)
    target = SIZES[label]
    base_chunks = sum(len(c) for _, _, c, _ in base)
    log(
        f"[{label}] building{' on ' + url if url else ''}: {len(base)} distinct articles ({read} read), "
        f"{base_chunks:,} chunks, {len(vectors):,} sentences per copy; target {target:,} chunks"
    )
    settings = load_settings({"home": str(home), "collection": COLLECTION, "chroma_url": url})
    store = open_store(settings, make_embedder(settings))  # the vectors are made here, not by the embedder
    rng = np.random.default_rng(SEED)
    spent: dict[str, float] = {}
    lexicon.add = Stopwatch(spent, "lexicon", lexicon.add)  # its share of the writes (merges included)
    total, copies, articles = 0, 0, 0
    t0 = time.perf_counter()
    while total < target:
        items = copy_items(base, vectors, copies, rng, limit=target - total)
        total += sum(len(i.chunks) for i in items)
        articles += len(items)
        store.add_many(items)
        copies += 1
        if copies % 5 == 0 or total >= target:
            rate = total / (time.perf_counter() - t0)
            log(f"[{label}] {total:,} chunks written ({copies} copies, {rate:,.0f} chunks/s, load {loadavg()[0]})")
    write_s = time.perf_counter() - t0
    chunk_rows, vector_rows = store.chunk_count(), store.vector_count()
    lexicon_write_s = spent.get("lexicon", 0.0) / 1000
    catalogue_path = Path(store.catalogue.db.execute("PRAGMA database_list").fetchone()[2])
    store.catalogue.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    lexicon_size = lexicon_mb(catalogue_path)
    log(f"[{label}] lexical index: {lexicon_write_s:.1f} s of the writes, {lexicon_size} MB")
    rebuild_s = None
    if not url:  # what a store from before pays once, on its first open
        store.catalogue.db.execute("DELETE FROM meta WHERE name='lexicon_format'")
        t1 = time.perf_counter()
        store.build_lexicon()
        rebuild_s = round(time.perf_counter() - t1, 1)
    terms_count = store.catalogue.db.execute("SELECT COUNT(*) FROM lexicon_terms").fetchone()[0]
    store.catalogue.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    store.close()
    done = {
        "size": label,
        "target_chunks": target,
        "chunks": chunk_rows,
        "vectors": vector_rows,
        "articles": articles,
        "copies": copies,
        "base_articles": len(base),
        "base_records_read": read,
        "base_chunks": base_chunks,
        "base_sentences": len(vectors),
        "sentence_embedding": embed_info,
        "prep_s": round(prep_s, 1),
        "write_s": round(write_s, 1),
        "write_chunks_per_s": round(chunk_rows / write_s),
        "lexicon_write_s": round(lexicon_write_s, 1),
        "lexicon_rebuild_s": rebuild_s,
        "backend": "server" if url else "embedded",
        "lexicon_terms": terms_count,
        "disk_mb": {
            "total": du_mb(home),
            "chroma": du_mb(home / "chroma"),
            "catalogue_sqlite": round(catalogue_path.stat().st_size / 2**20, 1),
            "lexicon": lexicon_mb(catalogue_path),
        },
        "load_at_end": loadavg(),
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "recipe_params": want,
        "reused": False,
    }
    marker.write_text(json.dumps(done, indent=1))
    return done


# ---- measuring ----------------------------------------------------------------------------


def load_questions(data: Path) -> list[str]:
    out = []
    for path in sorted(data.glob("*_qa.jsonl")):
        for line in path.read_text().splitlines():
            if line.strip():
                out.append(json.loads(line)["question_sentence"])
    return out


class Stopwatch:
    """Wraps a bound method; adds its wall time to `spent[name]`."""

    def __init__(self, spent: dict, name: str, fn):
        self.spent, self.name, self.fn = spent, name, fn

    def __call__(self, *args, **kwargs):
        t0 = time.perf_counter()
        try:
            return self.fn(*args, **kwargs)
        finally:
            self.spent[self.name] = self.spent.get(self.name, 0.0) + (time.perf_counter() - t0) * 1000


def open_for_query(label: str, root: Path, url: str):
    from qa.library import make_embedder, open_store
    from qa.search.bm25 import open_index

    settings = load_settings({"home": str(store_home(root, label, url)), "collection": COLLECTION, "chroma_url": url})
    embedder = make_embedder(settings)
    t0 = time.perf_counter()
    store = open_store(settings, embedder)
    index = open_index(store)
    open_s = time.perf_counter() - t0
    return store, index, embedder, open_s


def measure(label: str, backend: str, url: str, root: Path, data: Path, modes: list[str], repeats: int) -> dict:
    from qa.search.retrieval import RetrievalOptions, retrieve
    from qa.tokens import count_tokens

    store, index, embedder, open_s = open_for_query(label, root, url)
    spent: dict[str, float] = {}
    store.dense = Stopwatch(spent, "dense", store.dense)
    index.search = Stopwatch(spent, "bm25", index.search)
    inner_embed = embedder.embed
    embedder.embed = Stopwatch(spent, "embed", inner_embed)
    questions = load_questions(data)
    inner_embed(["warm up the embedder before timing"] * 8)
    load_before = loadavg()
    t0 = time.perf_counter()
    for q in questions:  # warm-up: every question once in every mode, untimed
        for mode in modes:
            retrieve(q, library=Library(store, embedder, index), options=RetrievalOptions(mode=mode))
    warm_s = time.perf_counter() - t0
    runs: dict[str, list[dict]] = {m: [] for m in modes}
    t0 = time.perf_counter()
    for r in range(repeats):
        for n, q in enumerate(questions):
            for j in range(len(modes)):
                mode = modes[(n + r + j) % len(modes)]  # rotate the order of modes
                spent.clear()
                start = time.perf_counter()
                got = retrieve(q, library=Library(store, embedder, index), options=RetrievalOptions(mode=mode))
                ms = (time.perf_counter() - start) * 1000
                runs[mode].append(
                    {
                        "ms": ms,
                        "embed": spent.get("embed", 0.0),
                        "dense": spent.get("dense", 0.0),
                        "bm25": spent.get("bm25", 0.0),
                        "tokens": sum(count_tokens(p.text) for p in got.passages),
                        "passages": len(got.passages),
                        "hits": len(got.hits),
                    }
                )
    timed_s = time.perf_counter() - t0
    load_after = loadavg()
    result = {
        "size": label,
        "backend": backend,
        "chunks": store.chunk_count(),
        "vectors": store.vector_count(),
        "bm25_docs": index.size,
        "open_s": round(open_s, 2),
        "warmup_s": round(warm_s, 1),
        "timed_s": round(timed_s, 1),
        "calls_per_mode": len(questions) * repeats,
        "load_before": load_before,
        "load_after": load_after,
        "modes": {},
    }
    for mode, rows in runs.items():
        ms = [x["ms"] for x in rows]
        rest = [x["ms"] - x["embed"] - x["dense"] - x["bm25"] for x in rows]
        result["modes"][mode] = {
            "p50_ms": round(percentile(ms, 0.5), 1),
            "p95_ms": round(percentile(ms, 0.95), 1),
            "mean_ms": round(statistics.mean(ms), 1),
            "max_ms": round(max(ms), 1),
            "stage_p50_ms": {
                "embed": round(percentile([x["embed"] for x in rows], 0.5), 1),
                "dense": round(percentile([x["dense"] for x in rows], 0.5), 1),
                "bm25": round(percentile([x["bm25"] for x in rows], 0.5), 1),
                "rest": round(percentile(rest, 0.5), 1),
            },
            "mean_context_tokens": round(statistics.mean(x["tokens"] for x in rows), 1),
            "mean_passages": round(statistics.mean(x["passages"] for x in rows), 2),
            "mean_hits": round(statistics.mean(x["hits"] for x in rows), 1),
        }
    store.close()
    return result


def profile(label: str, root: Path, data: Path) -> None:
    import cProfile
    import pstats

    from qa.search.retrieval import RetrievalOptions, retrieve

    store, index, embedder, _ = open_for_query(label, root, "")
    questions = load_questions(data)
    for q in questions:
        retrieve(q, library=Library(store, embedder, index), options=RetrievalOptions())
    prof = cProfile.Profile()
    t0 = time.perf_counter()
    prof.enable()
    for _ in range(3):
        for q in questions:
            retrieve(q, library=Library(store, embedder, index), options=RetrievalOptions())
    prof.disable()
    calls = 3 * len(questions)
    print(
        f"hybrid retrieve() at {label} embedded: {calls} calls, {(time.perf_counter() - t0) * 1000 / calls:.1f} ms "
        f"per call under cProfile, load {loadavg()}"
    )
    stats = pstats.Stats(prof)
    stats.sort_stats("cumulative").print_stats(35)
    stats.sort_stats("tottime").print_stats(20)


# ---- the server ---------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(path: Path, logfile: Path) -> tuple[subprocess.Popen, str]:
    chroma = Path(sys.executable).parent / "chroma"
    port = free_port()
    env = dict(os.environ, ANONYMIZED_TELEMETRY="False")
    out = open(logfile, "w")  # noqa: SIM115  (the server writes to it for as long as it runs)
    proc = subprocess.Popen(
        [str(chroma), "run", "--path", str(path), "--host", "127.0.0.1", "--port", str(port)],
        stdout=out,
        stderr=subprocess.STDOUT,
        env=env,
        cwd=str(path.parent),
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 180
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"chroma run exited with {proc.returncode}; see {logfile}")
        try:
            with urllib.request.urlopen(url + "/api/v2/heartbeat", timeout=2) as resp:
                if resp.status == 200:
                    return proc, url
        except OSError:
            pass
        time.sleep(0.5)
    proc.terminate()
    raise RuntimeError(f"chroma run did not answer on {url} within 180 s; see {logfile}")


def stop_server(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


# ---- the parent ---------------------------------------------------------------------------


def provenance() -> dict:
    """Which qa code was measured: the commit, whether qa/ differed from it, a hash of the retrieval files."""
    digest = hashlib.sha256()
    for name in (
        "search/retrieval.py",
        "search/context.py",
        "search/options.py",
        "search/bm25.py",
        "store/lexicon.py",
        "terms.py",
        "store/__init__.py",
        "store/catalogue.py",
        "store/vectors.py",
        "chunking.py",
        "embeddings.py",
    ):
        digest.update((REPO / "qa" / name).read_bytes())
    out = {"qa_code_hash": digest.hexdigest()[:12]}
    try:
        git = lambda *args: subprocess.run(
            ["git", "-C", str(REPO), *args], capture_output=True, text=True, check=True
        ).stdout.strip()
        out["git_head"] = git("rev-parse", "--short", "HEAD")
        out["qa_dirty"] = bool(git("status", "--porcelain", "--", "qa"))
    except (OSError, subprocess.CalledProcessError):
        pass
    return out


def child(args: list[str]) -> dict:
    """Run this script in a fresh process for one step; its last stdout line is JSON."""
    done = subprocess.run([sys.executable, str(Path(__file__).resolve()), *args], stdout=subprocess.PIPE, text=True)
    if done.returncode:
        raise RuntimeError(f"step {' '.join(args)} failed (exit {done.returncode})")
    return json.loads(done.stdout.strip().splitlines()[-1])


def table(result: dict) -> str:
    lines = [
        "| size | chunks | backend | mode | p50 ms | p95 ms | embed / dense / bm25 / rest p50 ms "
        "| mean context tokens | load 1-min before / after |",
        "|---|---:|---|---|---:|---:|---|---:|---|",
    ]
    for m in result["measurements"]:
        if "error" in m:
            lines.append(f"| {m['size']} | | {m['backend']} | - | failed: {m['error']} | | | | |")
            continue
        for mode, x in m["modes"].items():
            s = x["stage_p50_ms"]
            lines.append(
                f"| {m['size']} | {m['chunks']:,} | {m['backend']} | {mode} | {x['p50_ms']:,.1f} | "
                f"{x['p95_ms']:,.1f} | {s['embed']} / {s['dense']} / {s['bm25']} / {s['rest']} | "
                f"{x['mean_context_tokens']:,.0f} | {m['load_before'][0]} / {m['load_after'][0]} |"
            )
    return "\n".join(lines)


def builds_table(result: dict) -> str:
    lines = [
        "| size | chunks | articles (copies) | write s (chunks/s) | lexical index: s of the writes / rebuild s "
        "| disk MB total (chroma / catalogue / of which lexical index) | reused |",
        "|---|---:|---:|---:|---:|---|---|",
    ]
    for b in result["builds"].values():
        if "error" in b:
            lines.append(f"| {b['size']} | failed: {b['error']} | | | | | |")
            continue
        d = b["disk_mb"]
        lines.append(
            f"| {b['size']} {b.get('backend', 'embedded')} | {b['chunks']:,} | {b['articles']:,} ({b['copies']}) | "
            f"{b['write_s']:,} "
            f"({b['write_chunks_per_s']:,}) | {b['lexicon_write_s']} / {b['lexicon_rebuild_s']} | "
            f"{d['total']:,} ({d['chroma']:,} / {d['catalogue_sqlite']:,} / {d['lexicon']:,}) | "
            f"{'yes' if b['reused'] else 'no'} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="10k,100k,1m")
    parser.add_argument("--backends", default="embedded,server")
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--root", type=Path, default=Path("/tmp/qa-bench-retrieval"))
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "eval" / "realtimeqa-dev")
    parser.add_argument("--build-only", action="store_true")
    parser.add_argument("--profile", default="", help="cProfile hybrid retrieve() on this size (embedded)")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "retrieval.json")
    parser.add_argument("--_build", default="", help=argparse.SUPPRESS)
    parser.add_argument("--_measure", nargs=3, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--_url", default="", help=argparse.SUPPRESS)
    a = parser.parse_args()
    setup()

    if a._build:
        print(json.dumps(build(a._build, a.root, a.data, a._url)))
        return
    if a._measure:
        label, backend, url = a._measure
        print(
            json.dumps(
                measure(label, backend, "" if url == "-" else url, a.root, a.data, a.modes.split(","), a.repeats)
            )
        )
        return
    if a.profile:
        profile(a.profile, a.root, a.data)
        return

    sizes = [s.strip().lower() for s in a.sizes.split(",") if s.strip()]
    for s in sizes:
        if s not in SIZES:
            sys.exit(f"unknown size {s!r}; use {', '.join(SIZES)}")
    backends = [b.strip() for b in a.backends.split(",") if b.strip()]
    modes = [m.strip() for m in a.modes.split(",") if m.strip()]
    a.root.mkdir(parents=True, exist_ok=True)
    started = time.strftime("%Y-%m-%dT%H:%M:%S")
    result = {
        "command": "bench/retrieval.py " + " ".join(sys.argv[1:]),
        "started": started,
        "code": provenance(),
        "load_at_start": loadavg(),
        "cores": os.cpu_count(),
        "root": str(a.root),
        "data": str(a.data),
        "settings": {
            "budget": 1000,
            "k": 40,
            "per_article": 3,
            "embedder": "all-MiniLM-L6-v2-int8 (MiniLMEmbedder)",
            "chunk_tokens": CHUNK_TOKENS,
            "overlap": OVERLAP,
            "noise_sigma": NOISE_SIGMA,
            "repeats": a.repeats,
            "questions": len(load_questions(a.data)),
        },
        "how_built": __doc__.split("How the stores are built")[1].split("\n\n")[0].strip(),
        "builds": {},
        "measurements": [],
    }
    if "1m" not in sizes:
        result["not_measured"] = (
            "1m: not in --sizes (the run that produced this file left it out: building 1M "
            "chunks through Store.add_many takes ~20-35 min on this machine; see the docstring)"
        )
    for label in sizes:
        for backend in backends:
            if backend == "server" and label not in SERVER_SIZES:
                log(f"== {label} server: not built (server stores are built up to {SERVER_SIZES[-1]})")
                continue
            log(f"== {label} {backend}: build or reuse")
            proc, url = None, ""
            key = f"{label}-{backend}" if backend != "embedded" else label
            try:
                if backend == "server":
                    home = store_home(a.root, label, "server")
                    if not (home / "build.json").is_file():
                        shutil.rmtree(home, ignore_errors=True)
                    (home / "chroma").mkdir(parents=True, exist_ok=True)
                    proc, url = start_server(home / "chroma", a.root / f"chroma-server-{label}.log")
                b = child(["--_build", label, "--_url", url, "--root", str(a.root), "--data", str(a.data)])
                result["builds"][key] = b
                log(
                    f"[{key}] {b['chunks']:,} chunks, write {b['write_s']} s (lexical index "
                    f"{b['lexicon_write_s']} s), {b['disk_mb']['total']:,} MB{' (reused)' if b['reused'] else ''}"
                )
                if a.build_only:
                    continue
                log(f"== {label} {backend}: measuring {','.join(modes)} (load {loadavg()})")
                m = child(
                    [
                        "--_measure",
                        label,
                        backend,
                        url or "-",
                        "--root",
                        str(a.root),
                        "--data",
                        str(a.data),
                        "--modes",
                        ",".join(modes),
                        "--repeats",
                        str(a.repeats),
                    ]
                )
                result["measurements"].append(m)
                log(table({"measurements": [m]}))
            except RuntimeError as exc:
                result["measurements"].append({"size": label, "backend": backend, "error": str(exc)})
            finally:
                if proc is not None:
                    stop_server(proc)
    result["load_at_end"] = loadavg()
    result["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S")
    for m in result["measurements"]:
        if (m.get("size"), m.get("backend")) == (TARGET["size"], TARGET["backend"]) and TARGET["mode"] in m.get(
            "modes", {}
        ):
            p95 = m["modes"][TARGET["mode"]]["p95_ms"]
            result["target"] = dict(TARGET, measured_p95_ms=p95, met=p95 < TARGET["p95_ms"])
    print("\nStores:\n" + builds_table(result))
    if not a.build_only:
        print(
            f"\nretrieve() latency (60 questions x {a.repeats} after a warm-up pass; budget 1,000 tokens):\n"
            + table(result)
        )
        if "target" in result:
            t = result["target"]
            print(
                f"\nTarget: hybrid p95 < {t['p95_ms']:.0f} ms at 100k chunks, embedded: measured "
                f"{t['measured_p95_ms']:,.1f} ms -> {'met' if t['met'] else 'NOT met'}"
            )
        print(f"qa code: {result['code']}")
        print(
            f"load average at start {result['load_at_start']}, at end {result['load_at_end']} ({os.cpu_count()} cores)"
        )
        a.out.parent.mkdir(parents=True, exist_ok=True)
        tmp = a.out.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(result, indent=1) + "\n")
        os.replace(tmp, a.out)
        print(f"written {a.out.relative_to(REPO) if a.out.is_relative_to(REPO) else a.out}")


if __name__ == "__main__":
    main()
