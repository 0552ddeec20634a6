"""The catalogue: articles, their chunks (offsets into the article text), each article's sentence
vectors, other reports of an article, near-duplicate signatures, the store generation and the
lexical index of the visible chunks (lexicon.py), in one SQLite file beside the vectors.

An article is written `pending`, made `ok` (visible) once its vectors are stored, and marked
`removing` before its vectors are deleted: every reading query here shows `ok` articles only.
Its chunks enter the lexical index in the transaction that makes it `ok` and leave it in the one
that takes that away, so the index always holds exactly the visible chunks.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..records import Article, Chunk
from . import lexicon

_SCHEMA = """
CREATE TABLE IF NOT EXISTS articles (
    id TEXT PRIMARY KEY, key TEXT NOT NULL, title TEXT, source TEXT, date TEXT, url TEXT,
    author TEXT, origin TEXT, text TEXT NOT NULL, state TEXT NOT NULL, ingested_at REAL);
CREATE INDEX IF NOT EXISTS articles_key ON articles(key);
CREATE TABLE IF NOT EXISTS chunks (
    id TEXT PRIMARY KEY, article_id TEXT NOT NULL, position INTEGER, start INTEGER, "end" INTEGER,
    tokens INTEGER);
CREATE INDEX IF NOT EXISTS chunks_article ON chunks(article_id);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS also_reported (
    article_id TEXT NOT NULL, key TEXT NOT NULL, source TEXT, url TEXT, title TEXT, date TEXT, origin TEXT,
    PRIMARY KEY (article_id, key));
CREATE INDEX IF NOT EXISTS also_reported_key ON also_reported(key);
CREATE TABLE IF NOT EXISTS signatures (article_id TEXT PRIMARY KEY, minhash BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS sentence_vectors (
    article_id TEXT PRIMARY KEY, spans BLOB NOT NULL, vectors BLOB NOT NULL);
"""


@dataclass(frozen=True)
class AlsoReported:
    """Another report of a stored article (a copy or near-copy from elsewhere): a source, not stored text."""

    source: str
    url: str
    title: str
    date: str
    origin: str


@dataclass(frozen=True)
class NewArticle:
    """One article ready to write: its chunks with their vectors, and its sentences (character
    spans) with theirs. `replaces` is the id of the older version of the same article, if any."""

    article: Article
    key: str
    chunks: Sequence[Chunk]
    chunk_vectors: np.ndarray
    sentences: Sequence[tuple[int, int]] = ()
    sentence_vectors: np.ndarray | None = None
    replaces: str | None = None
    signature: bytes | None = None  # its near-duplicate MinHash, when known


@dataclass(frozen=True)
class StoredArticle:
    article: Article
    key: str
    chunks: int
    also_reported: tuple[AlsoReported, ...] = ()


def _marks(values: Sequence[object]) -> str:
    return ",".join("?" * len(values))


def _slices(values: Sequence[str], size: int = 30000) -> Iterator[list[str]]:
    """`values` in lists SQLite takes as one IN (...) (at most 32,766 variables)."""
    for b in range(0, len(values), size):
        yield list(values[b : b + size])


class Catalogue:
    """The SQLite catalogue of one collection (`path`), in WAL mode: readers never wait for a writer."""

    def __init__(self, path: Path):
        self.db = sqlite3.connect(path, timeout=30, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        # read pages through the OS page cache instead of copying them: keyword search reads
        # megabytes of postings per question (a quarter faster at 1M chunks; SQLite caps the size)
        self.db.execute("PRAGMA mmap_size=1099511627776")
        self.db.executescript(_SCHEMA)
        lexicon.create(self.db)
        if self.is_empty() and not lexicon.current(self.db):
            with self.transaction():
                lexicon.clear(self.db)  # a new catalogue: its index starts current

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """All or nothing. (`with self.db:` alone opens no transaction in autocommit mode.)"""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def _bump_generation(self) -> None:
        self.db.execute(
            "INSERT INTO meta VALUES ('generation', '1') ON CONFLICT(name) "
            "DO UPDATE SET value = CAST(value AS INTEGER) + 1"
        )

    # ---- writing -------------------------------------------------------------------------

    def write_pending(self, items: Sequence[NewArticle]) -> None:
        """Articles with their chunks and sentence vectors, not yet visible (`pending`)."""
        with self.transaction():
            lexicon.remove(self.db, self.chunk_texts([item.article.id for item in items], visible=True))
            for item in items:
                a = item.article
                self.db.execute("DELETE FROM chunks WHERE article_id=?", (a.id,))
                self.db.execute(
                    "INSERT OR REPLACE INTO articles VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                    (
                        a.id,
                        item.key,
                        a.title,
                        a.source,
                        a.date,
                        a.url,
                        a.author,
                        a.origin,
                        a.text,
                        "pending",
                        time.time(),
                    ),
                )
                self.db.executemany(
                    "INSERT INTO chunks VALUES (?,?,?,?,?,?)",
                    [(c.id, c.article_id, c.position, c.start, c.end, c.tokens) for c in item.chunks],
                )
                if item.sentence_vectors is not None and len(item.sentences):
                    self.db.execute(
                        "INSERT OR REPLACE INTO sentence_vectors VALUES (?,?,?)",
                        (
                            a.id,
                            np.asarray(item.sentences, dtype=np.int32).tobytes(),
                            np.asarray(item.sentence_vectors, dtype=np.float16).tobytes(),
                        ),
                    )
                else:
                    self.db.execute("DELETE FROM sentence_vectors WHERE article_id=?", (a.id,))
                if item.signature is not None:
                    self.db.execute("INSERT OR REPLACE INTO signatures VALUES (?,?)", (a.id, item.signature))

    def publish(self, items: Sequence[NewArticle]) -> None:
        """Make pending articles visible, and hide the older versions they replace (one transaction)."""
        with self.transaction():
            replaced = [item.replaces for item in items if item.replaces and item.replaces != item.article.id]
            lexicon.remove(self.db, self.chunk_texts(replaced, visible=True))
            lexicon.add(self.db, [(c.id, item.article.text[c.start : c.end]) for item in items for c in item.chunks])
            for item in items:
                self.db.execute("UPDATE articles SET state='ok' WHERE id=?", (item.article.id,))
                self.db.execute("DELETE FROM also_reported WHERE key=?", (item.key,))  # now an article of its own
                if item.replaces and item.replaces != item.article.id:
                    self.db.execute("UPDATE articles SET state='removing' WHERE id=?", (item.replaces,))
                    # the other sources of the old version report the new one
                    self.db.execute(
                        "UPDATE OR IGNORE also_reported SET article_id=? WHERE article_id=?",
                        (item.article.id, item.replaces),
                    )
            self._bump_generation()

    def chunk_positions(self, article_id: str) -> list[tuple[str, int]]:
        """(chunk id, position) of every chunk of an article, whatever its state."""
        return self.db.execute("SELECT id, position FROM chunks WHERE article_id=?", (article_id,)).fetchall()

    def update_record(self, article: Article) -> None:
        """Rewrite a stored article's title, source, date, url, author and origin."""
        with self.transaction():
            self.db.execute(
                "UPDATE articles SET title=?, source=?, date=?, url=?, author=?, origin=? WHERE id=?",
                (article.title, article.source, article.date, article.url, article.author, article.origin, article.id),
            )

    def hide(self, article_ids: Sequence[str]) -> None:
        """Mark articles `removing`: no reader sees them from now on."""
        with self.transaction():
            lexicon.remove(self.db, self.chunk_texts(article_ids, visible=True))
            for part in _slices(article_ids):
                self.db.execute(f"UPDATE articles SET state='removing' WHERE id IN ({_marks(part)})", part)
            self._bump_generation()

    def delete(self, article_ids: Sequence[str]) -> int:
        """Delete articles and everything kept about them; the number of articles deleted."""
        deleted = 0
        with self.transaction():
            for ids in _slices(article_ids):
                marks = _marks(ids)
                self.db.execute(f"DELETE FROM chunks WHERE article_id IN ({marks})", ids)
                self.db.execute(f"DELETE FROM also_reported WHERE article_id IN ({marks})", ids)
                self.db.execute(f"DELETE FROM signatures WHERE article_id IN ({marks})", ids)
                self.db.execute(f"DELETE FROM sentence_vectors WHERE article_id IN ({marks})", ids)
                deleted += self.db.execute(f"DELETE FROM articles WHERE id IN ({marks})", ids).rowcount
        return deleted

    def unfinished(self) -> list[str]:
        """Articles an interrupted write left (`pending` or `removing`)."""
        return [r[0] for r in self.db.execute("SELECT id FROM articles WHERE state!='ok'")]

    def add_also_reported(self, article_id: str, key: str, copy: Article) -> bool:
        """Record `copy` as another source of a visible article (not when it is that article's own key)."""
        with self.transaction():
            row = self.db.execute("SELECT key FROM articles WHERE id=? AND state='ok'", (article_id,)).fetchone()
            if row is None or row[0] == key:
                return False
            self.db.execute(
                "INSERT OR REPLACE INTO also_reported VALUES (?,?,?,?,?,?,?)",
                (article_id, key, copy.source, copy.url, copy.title, copy.date, copy.origin),
            )
        return True

    def set_signatures(self, signatures: Sequence[tuple[str, bytes]]) -> None:
        with self.transaction():  # one commit, not one per article (a 14k-article backfill took minutes)
            self.db.executemany("INSERT OR REPLACE INTO signatures VALUES (?,?)", list(signatures))

    def chunk_texts(self, article_ids: Sequence[str], visible: bool) -> list[tuple[str, str]]:
        """(chunk id, text) of the chunks of these articles (only the visible ones with `visible`)."""
        state = "AND a.state='ok'" if visible else ""
        out: list[tuple[str, str]] = []
        for part in _slices(article_ids):
            out.extend(
                self.db.execute(
                    'SELECT c.id, substr(a.text, c.start + 1, c."end" - c.start) FROM chunks c JOIN articles a '
                    f"ON a.id=c.article_id WHERE c.article_id IN ({_marks(part)}) {state}",
                    part,
                )
            )
        return out

    # ---- reading -------------------------------------------------------------------------

    @property
    def generation(self) -> int:
        row = self.db.execute("SELECT value FROM meta WHERE name='generation'").fetchone()
        return int(row[0]) if row else 0

    def is_empty(self) -> bool:
        """No article at all, in any state."""
        return not self.db.execute("SELECT 1 FROM articles").fetchone()

    def signatures(self) -> list[tuple[str, bytes | None]]:
        return self.db.execute(
            "SELECT a.id, s.minhash FROM articles a LEFT JOIN signatures s ON s.article_id=a.id WHERE a.state='ok'"
        ).fetchall()

    def find_by_key(self, key: str) -> str | None:
        row = self.db.execute("SELECT id FROM articles WHERE key=? AND state='ok'", (key,)).fetchone()
        return row[0] if row else None

    def article_records(self, ids: Sequence[str], text: bool = True) -> dict[str, Article]:
        if not ids:
            return {}
        body = "text" if text else "''"
        rows = self.db.execute(
            f"SELECT id, title, source, date, url, author, origin, {body} FROM articles "
            f"WHERE state='ok' AND id IN ({_marks(ids)})",
            list(ids),
        )
        return {
            r[0]: Article(id=r[0], title=r[1], source=r[2], date=r[3], url=r[4], author=r[5], origin=r[6], text=r[7])
            for r in rows
        }

    def articles(self, ids: Sequence[str] | None = None) -> list[StoredArticle]:
        query = (
            "SELECT a.id, a.key, a.title, a.source, a.date, a.url, a.author, a.origin, a.text, "
            "(SELECT COUNT(*) FROM chunks c WHERE c.article_id=a.id) FROM articles a WHERE a.state='ok'"
        )
        params: list[str] = []
        if ids is not None:
            query += f" AND a.id IN ({_marks(ids)})"
            params = list(ids)
        also: dict[str, list[AlsoReported]] = {}
        where = f"WHERE article_id IN ({_marks(ids)})" if ids is not None else ""
        for r in self.db.execute(
            f"SELECT article_id, source, url, title, date, origin FROM also_reported {where} ORDER BY date, source",
            params,
        ):
            also.setdefault(r[0], []).append(AlsoReported(*r[1:]))
        out = []
        for r in self.db.execute(query + " ORDER BY a.date DESC, a.title", params):
            out.append(
                StoredArticle(
                    Article(id=r[0], title=r[2], source=r[3], date=r[4], url=r[5], author=r[6], origin=r[7], text=r[8]),
                    key=r[1],
                    chunks=r[9],
                    also_reported=tuple(also.get(r[0], ())),
                )
            )
        return out

    def chunks(self, article_ids: Sequence[str] | None = None) -> list[Chunk]:
        if article_ids is None:
            return self._chunk_rows("", [])
        return self._chunk_rows(f"AND c.article_id IN ({_marks(article_ids)})", list(article_ids))

    def chunks_by_id(self, chunk_ids: Sequence[str]) -> list[Chunk]:
        if not chunk_ids:
            return []
        return self._chunk_rows(f"AND c.id IN ({_marks(chunk_ids)})", list(chunk_ids))

    def _chunk_rows(self, clause: str, params: list[str]) -> list[Chunk]:
        # substr counts characters (code points) from 1, as Python slices count them from 0
        query = (
            'SELECT c.id, c.article_id, c.position, c.start, c."end", c.tokens, '
            'substr(a.text, c.start + 1, c."end" - c.start) FROM chunks c '
            f"JOIN articles a ON a.id=c.article_id WHERE a.state='ok' {clause} ORDER BY c.article_id, c.position"
        )
        return [
            Chunk(id=r[0], article_id=r[1], position=r[2], start=r[3], end=r[4], tokens=r[5], text=r[6])
            for r in self.db.execute(query, params)
        ]

    def sentence_vectors(self, article_ids: Sequence[str]) -> dict[str, tuple[list[tuple[int, int]], np.ndarray]]:
        if not article_ids:
            return {}
        rows = self.db.execute(
            "SELECT s.article_id, s.spans, s.vectors FROM sentence_vectors s JOIN articles a "
            "ON a.id=s.article_id WHERE a.state='ok' AND s.article_id IN "
            f"({_marks(article_ids)})",
            list(article_ids),
        )
        out = {}
        for aid, spans, vectors in rows:
            pairs = np.frombuffer(spans, dtype=np.int32).reshape(-1, 2)
            out[aid] = (
                [(int(a), int(b)) for a, b in pairs],
                np.frombuffer(vectors, dtype=np.float16).reshape(len(pairs), -1).astype(np.float32),
            )
        return out

    def chunk_count(self) -> int:
        return self.db.execute(
            "SELECT COUNT(*) FROM chunks c JOIN articles a ON a.id=c.article_id WHERE a.state='ok'"
        ).fetchone()[0]

    def hidden_chunk_ids(self) -> set[str]:
        """Chunks of articles an interrupted write left (their vectors, if any, are ignored)."""
        return {
            r[0]
            for r in self.db.execute(
                "SELECT c.id FROM chunks c JOIN articles a ON a.id=c.article_id WHERE a.state!='ok'"
            )
        }

    def unfinished_count(self) -> int:
        return self.db.execute("SELECT COUNT(*) FROM articles WHERE state!='ok'").fetchone()[0]

    def close(self) -> None:
        self.db.close()
