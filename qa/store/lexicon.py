"""The lexical (BM25) index, kept in the catalogue's own SQLite database and written in the same
transactions as the rows it indexes: an article's chunks enter it in the transaction that makes
the article visible and leave it in the one that hides it, so keyword search sees exactly what
readers see, after a crash too, and nothing is ever rebuilt from scratch.

An inverted index in log-structured segments, as Lucene keeps one, in five tables:
- lexicon_docs: a document number per indexed chunk (never reused) and its length in terms;
- lexicon_terms: each term's document frequency among live documents;
- lexicon_postings: per (term, segment) the document numbers, term frequencies and document
  lengths, as one packed array (POSTING: int32, uint16, uint16);
- lexicon_segments: every write adds one segment; a segment's level is the order of magnitude
  (base FANOUT) of its document count, and FANOUT segments of one level merge into one, so a
  term is read from a few rows whatever the number or the size of the writes;
- lexicon_dead: removed documents still inside a segment, masked when searching and dropped
  when their segment is rewritten.

SQLite's FTS5 was measured first (eval/RESULTS.md, BENCHMARKS.md): its bm25() scores every
matching row in C, 31 ms a question at 100k chunks and 322 ms at 1M; here the postings of the
question's terms are scored by numpy. Scores are Lucene BM25 over live documents (k1 1.5,
b 0.75, idf log(1 + (N - df + 0.5) / (df + 0.5)), as bm25s computed them): the same ranking
whatever the state of the segments, ties broken by chunk id.
"""

from __future__ import annotations

import math
import sqlite3
from collections import Counter
from collections.abc import Callable, Iterable, Sequence

import numpy as np

from ..terms import ANALYZER, terms

K1, B = 1.5, 0.75
FANOUT = 8
TOP_LEVEL = 5  # segments of 8**5 = 32,768 documents or more are not merged further (a merge of
# eight would rewrite up to 262k documents' postings, ~8 s on this machine; see BENCHMARKS.md)
PURGE_SHARE = 0.2  # a segment is rewritten without its removed documents past this share
FORMAT = f"{ANALYZER}.1"  # the analyser and the layout: another value means the index is rebuilt
POSTING = np.dtype([("doc", "<i4"), ("tf", "<u2"), ("length", "<u2")])

SCHEMA = """
CREATE TABLE IF NOT EXISTS lexicon_docs (
    doc INTEGER PRIMARY KEY AUTOINCREMENT, chunk_id TEXT NOT NULL UNIQUE, length INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS lexicon_terms (term TEXT PRIMARY KEY, df INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS lexicon_segments (
    segment INTEGER PRIMARY KEY, level INTEGER NOT NULL, first_doc INTEGER NOT NULL, last_doc INTEGER NOT NULL,
    docs INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS lexicon_postings (
    term TEXT NOT NULL, segment INTEGER NOT NULL, postings BLOB NOT NULL, PRIMARY KEY (term, segment));
CREATE INDEX IF NOT EXISTS lexicon_postings_segment ON lexicon_postings(segment);
CREATE TABLE IF NOT EXISTS lexicon_dead (doc INTEGER PRIMARY KEY);
"""
_TABLES = ("lexicon_docs", "lexicon_terms", "lexicon_segments", "lexicon_postings", "lexicon_dead")

Texts = Sequence[tuple[str, str]]  # (chunk id, chunk text)


def _marks(values: Sequence[object]) -> str:
    return ",".join("?" * len(values))


def _stat(db: sqlite3.Connection, name: str) -> int:
    row = db.execute("SELECT value FROM meta WHERE name=?", (name,)).fetchone()
    return int(row[0]) if row else 0


def _add_stat(db: sqlite3.Connection, name: str, delta: int) -> None:
    db.execute(
        "INSERT INTO meta VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET value = CAST(value AS INTEGER) + ?",
        (name, str(delta), delta),
    )


def create(db: sqlite3.Connection) -> None:
    """The tables (the catalogue's `meta` table must exist)."""
    db.executescript(SCHEMA)


def current(db: sqlite3.Connection) -> bool:
    """Whether the index was built by this analyser and layout."""
    row = db.execute("SELECT value FROM meta WHERE name='lexicon_format'").fetchone()
    return row is not None and row[0] == FORMAT


def clear(db: sqlite3.Connection) -> None:
    """Empty the index and mark it current (inside the caller's transaction)."""
    for table in _TABLES:
        db.execute(f"DELETE FROM {table}")
    db.execute("DELETE FROM meta WHERE name IN ('lexicon_docs', 'lexicon_length')")
    db.execute("INSERT OR REPLACE INTO meta VALUES ('lexicon_format', ?)", (FORMAT,))


def add(db: sqlite3.Connection, chunks: Texts) -> None:
    """Index chunks as one new segment (inside the caller's transaction); a chunk already indexed is kept."""
    if not chunks:
        return
    have = {r[0] for r in _rows(db, "SELECT chunk_id FROM lexicon_docs WHERE chunk_id IN ({})", [c[0] for c in chunks])}
    row = db.execute("SELECT seq FROM sqlite_sequence WHERE name='lexicon_docs'").fetchone()
    first = doc = row[0] if row else 0
    docs_rows: list[tuple[int, str, int]] = []
    vocabulary: dict[str, int] = {}
    term_ids: list[int] = []
    tfs: list[int] = []
    docs: list[int] = []
    lengths: list[int] = []
    for chunk_id, text in chunks:
        if chunk_id in have:
            continue
        have.add(chunk_id)
        doc += 1
        counts = Counter(terms(text))
        length = min(sum(counts.values()), 65535)
        docs_rows.append((doc, chunk_id, length))
        term_ids.extend(vocabulary.setdefault(t, len(vocabulary)) for t in counts)
        tfs.extend(counts.values())
        docs.extend([doc] * len(counts))
        lengths.extend([length] * len(counts))
    if not docs_rows:
        return
    postings = np.empty(len(docs), POSTING)
    postings["doc"], postings["tf"], postings["length"] = docs, np.minimum(tfs, 65535), lengths
    ids = np.array(term_ids, np.int64)
    order = np.argsort(ids, kind="stable")  # by term, then by document
    postings, ids = postings[order], ids[order]
    # (chunks with no indexable words, such as Arabic text, add documents but no postings)
    starts = ends = np.zeros(0, np.int64)
    if len(ids):
        starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])
        ends = np.r_[starts[1:], len(ids)]
    names = list(vocabulary)
    rows = {names[ids[a]]: postings[a:b].tobytes() for a, b in zip(starts.tolist(), ends.tolist(), strict=True)}
    db.executemany("INSERT INTO lexicon_docs VALUES (?,?,?)", docs_rows)
    db.executemany(
        "INSERT INTO lexicon_terms VALUES (?,?) ON CONFLICT(term) DO UPDATE SET df = df + excluded.df",
        [(names[ids[a]], b - a) for a, b in zip(starts.tolist(), ends.tolist(), strict=True)],
    )
    _add_stat(db, "lexicon_docs", len(docs_rows))
    _add_stat(db, "lexicon_length", sum(r[2] for r in docs_rows))
    _write_segment(db, first + 1, doc, len(docs_rows), rows)
    _merge_full_levels(db)


def remove(db: sqlite3.Connection, chunks: Texts) -> None:
    """Drop chunks from the index (inside the caller's transaction); their texts give the terms whose
    document frequency falls. Chunks that are not indexed are ignored."""
    if not chunks:
        return
    text_of = dict(chunks)
    found = _rows(db, "SELECT doc, chunk_id, length FROM lexicon_docs WHERE chunk_id IN ({})", list(text_of))
    if not found:
        return
    if len(found) >= _stat(db, "lexicon_docs"):
        clear(db)  # everything goes (`qa remove --all`): no term to count down
        return
    df: Counter[str] = Counter()
    for _, chunk_id, _ in found:
        df.update(set(terms(text_of[chunk_id])))
    docs = [r[0] for r in found]
    db.executemany("DELETE FROM lexicon_docs WHERE doc = ?", [(d,) for d in docs])
    _add_stat(db, "lexicon_docs", -len(found))
    _add_stat(db, "lexicon_length", -sum(r[2] for r in found))
    db.executemany("UPDATE lexicon_terms SET df = df - ? WHERE term = ?", [(n, t) for t, n in df.items()])
    db.execute("DELETE FROM lexicon_terms WHERE df <= 0")
    db.executemany("INSERT OR IGNORE INTO lexicon_dead VALUES (?)", [(d,) for d in docs])
    for segment, dead, size in db.execute(
        "SELECT s.segment, COUNT(d.doc), s.docs FROM lexicon_segments s JOIN lexicon_dead d "
        "ON d.doc BETWEEN s.first_doc AND s.last_doc GROUP BY s.segment"
    ).fetchall():
        if dead > PURGE_SHARE * size:
            _merge(db, [segment])


def search(db: sqlite3.Connection, query: Sequence[str], k: int) -> list[tuple[str, float]]:
    """(chunk id, BM25 score) of the best `k` chunks for the query terms, best first; a term given
    twice counts twice, as in bm25s."""
    counts = Counter(query)
    n, total = _stat(db, "lexicon_docs"), _stat(db, "lexicon_length")
    if not counts or n <= 0 or k <= 0:
        return []
    avgdl = max(total / n, 1e-9)
    words = list(counts)
    df = dict(db.execute(f"SELECT term, df FROM lexicon_terms WHERE term IN ({_marks(words)})", words))
    weight = {t: c * idf(n, df[t]) for t, c in counts.items() if df.get(t)}
    if not weight:
        return []
    # BM25's length normalisation for every length a chunk can have, once per question (as Lucene
    # caches its norms): per posting, one lookup instead of arithmetic on the length
    norm = (K1 * (1 - B + B * np.arange(65536, dtype=np.float64) / avgdl)).astype(np.float32)
    last = db.execute("SELECT seq FROM sqlite_sequence WHERE name='lexicon_docs'").fetchone()
    summed = np.zeros((last[0] if last else 0) + 1, dtype=np.float32)
    # ordered by term: every document's score is summed in the same order whatever the segments
    for term, blob in db.execute(
        f"SELECT term, postings FROM lexicon_postings WHERE term IN ({_marks(list(weight))}) ORDER BY term, segment",
        list(weight),
    ):
        postings = np.frombuffer(blob, POSTING)
        tf = postings["tf"].astype(np.float32)
        summed[postings["doc"]] += np.float32(weight[term]) * tf / (tf + norm[postings["length"]])  # one per doc
    dead = [r[0] for r in db.execute("SELECT doc FROM lexicon_dead")]
    if dead:
        summed[dead] = 0.0
    found = np.flatnonzero(summed)
    if len(found) > k:  # keep every document tied with the k-th, then break ties by chunk id
        kth = np.partition(summed[found], len(found) - k)[len(found) - k]
        found = found[summed[found] >= kth]
    ids = _chunk_ids(db, found.tolist())
    ranked = sorted(((ids[int(d)], float(summed[d])) for d in found if int(d) in ids), key=lambda x: (-x[1], x[0]))
    return ranked[:k]


def idf(n: int, df: int) -> float:
    return math.log(1 + (n - df + 0.5) / (df + 0.5))


def document_frequencies(db: sqlite3.Connection, words: Sequence[str]) -> tuple[int, dict[str, int]]:
    """The number of live documents and the document frequency of each term (0 when absent)."""
    found = dict(db.execute(f"SELECT term, df FROM lexicon_terms WHERE term IN ({_marks(words)})", list(words)))
    return _stat(db, "lexicon_docs"), {w: int(found.get(w, 0)) for w in words}


def size(db: sqlite3.Connection) -> int:
    return _stat(db, "lexicon_docs")


def chunk_ids(db: sqlite3.Connection) -> set[str]:
    return {r[0] for r in db.execute("SELECT chunk_id FROM lexicon_docs")}


def rebuild(db: sqlite3.Connection, batches: Iterable[Texts], on_batch: Callable[[int], None] | None = None) -> None:
    """Empty the index and add every batch of (chunk id, text), inside the caller's transaction;
    `on_batch(chunks so far)` after each."""
    clear(db)
    done = 0
    for batch in batches:
        add(db, batch)
        done += len(batch)
        if on_batch:
            on_batch(done)


# ---- segments -------------------------------------------------------------------------------


def _rows(db: sqlite3.Connection, query: str, values: Sequence[object]) -> list[tuple]:
    """`query` with its one `IN ({})` filled with `values`, run in slices SQLite takes (32,766 variables)."""
    out: list[tuple] = []
    for b in range(0, len(values), 30000):
        part = list(values[b : b + 30000])
        out.extend(db.execute(query.format(_marks(part)), part))
    return out


def _chunk_ids(db: sqlite3.Connection, docs: list[int]) -> dict[int, str]:
    return dict(_rows(db, "SELECT doc, chunk_id FROM lexicon_docs WHERE doc IN ({})", docs))


def _write_segment(db: sqlite3.Connection, first: int, last: int, docs: int, rows: dict[str, bytes]) -> None:
    level = min(int(math.log(max(docs, 1), FANOUT)), TOP_LEVEL)
    cur = db.execute(
        "INSERT INTO lexicon_segments (level, first_doc, last_doc, docs) VALUES (?,?,?,?)", (level, first, last, docs)
    )
    db.executemany(
        "INSERT INTO lexicon_postings VALUES (?,?,?)", [(term, cur.lastrowid, blob) for term, blob in rows.items()]
    )


def _merge_full_levels(db: sqlite3.Connection) -> None:
    """While FANOUT segments share a level below the top one, merge them into one."""
    while True:
        row = db.execute(
            "SELECT level FROM lexicon_segments WHERE level < ? GROUP BY level HAVING COUNT(*) >= ? "
            "ORDER BY level LIMIT 1",
            (TOP_LEVEL, FANOUT),
        ).fetchone()
        if row is None:
            return
        level = row[0]
        segments = [
            r[0] for r in db.execute("SELECT segment FROM lexicon_segments WHERE level=? ORDER BY first_doc", (level,))
        ]
        _merge(db, segments)


def _merge(db: sqlite3.Connection, segments: list[int]) -> None:
    """Rewrite `segments` as one segment, without their removed documents. (Segments
    cover disjoint ranges of document numbers, so joining a term's pieces in range order keeps
    its postings sorted.)"""
    first, last = db.execute(
        f"SELECT MIN(first_doc), MAX(last_doc) FROM lexicon_segments WHERE segment IN ({_marks(segments)})", segments
    ).fetchone()
    dead = np.array(
        [r[0] for r in db.execute("SELECT doc FROM lexicon_dead WHERE doc BETWEEN ? AND ?", (first, last))], np.int32
    )
    pieces: dict[str, list[bytes]] = {}
    for term, blob in db.execute(
        "SELECT p.term, p.postings FROM lexicon_postings p JOIN lexicon_segments s ON s.segment=p.segment "
        f"WHERE p.segment IN ({_marks(segments)}) ORDER BY s.first_doc",
        segments,
    ):
        pieces.setdefault(term, []).append(blob)
    merged: dict[str, bytes] = {}
    for term, blobs in pieces.items():
        blob = b"".join(blobs)
        if len(dead):
            postings = np.frombuffer(blob, POSTING)
            blob = postings[~np.isin(postings["doc"], dead)].tobytes()
        if blob:
            merged[term] = blob
    live = db.execute("SELECT COUNT(*) FROM lexicon_docs WHERE doc BETWEEN ? AND ?", (first, last)).fetchone()[0]
    db.execute(f"DELETE FROM lexicon_postings WHERE segment IN ({_marks(segments)})", segments)
    db.execute(f"DELETE FROM lexicon_segments WHERE segment IN ({_marks(segments)})", segments)
    db.execute("DELETE FROM lexicon_dead WHERE doc BETWEEN ? AND ?", (first, last))
    if merged:
        _write_segment(db, first, last, live, merged)
