"""The article store: Chroma holds chunk vectors, a SQLite catalogue holds articles, chunks and
each article's sentence vectors (so that choosing context never runs the embedder again).

An article becomes visible only when its catalogue row says `ok`, which is written after
its vectors are in Chroma. A crash at any moment therefore leaves, at worst, vectors of an
article that is not `ok`; `recover()` deletes them, and retrieval never shows them.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np

from ..errors import QAError
from ..records import Article, Chunk

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


@dataclass(frozen=True)
class StoredArticle:
    article: Article
    key: str
    chunks: int
    also_reported: tuple[AlsoReported, ...] = ()


def date_number(date: str) -> int:
    """YYYY-MM-DD as an integer for Chroma range filters; 0 when unknown."""
    return int(date.replace("-", "")) if len(date) == 10 else 0


def _vector_metadata(article: Article, position: int) -> dict:
    """What Chroma keeps beside a chunk's vector: its article and the fields dense search filters on."""
    return {"article_id": article.id, "position": position, "source": article.source,
            "date": date_number(article.date)}


class Store:
    def __init__(self, home: Path, collection: str, embedder_name: str | None = None, dimension: int = 0,
                 chroma_url: str = "", chroma_token: str = ""):
        """Without an embedder name the store is opened for catalogue work only (list, remove,
        check); vectors are still deleted, but nothing that needs the embedder is allowed."""
        self.home = home
        self.name = collection
        home.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(home / f"{collection}.sqlite", timeout=30, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.executescript(_SCHEMA)
        self.collection = self._open_collection(embedder_name, dimension, chroma_url, chroma_token)

    def _open_collection(self, embedder_name: str | None, dimension: int, chroma_url: str, chroma_token: str):
        os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
        import chromadb
        from chromadb.config import Settings as ChromaSettings

        settings = ChromaSettings(anonymized_telemetry=False)
        try:
            if chroma_url:
                from urllib.parse import urlparse

                u = urlparse(chroma_url)
                headers = {"Authorization": f"Bearer {chroma_token}"} if chroma_token else None
                client = chromadb.HttpClient(host=u.hostname or "127.0.0.1", port=u.port or 8000,
                                             ssl=u.scheme == "https", headers=headers, settings=settings)
            else:
                client = chromadb.PersistentClient(path=str(self.home / "chroma"), settings=settings)
            if embedder_name is None:
                names = {getattr(c, "name", c) for c in client.list_collections()}
                self.client = client
                return client.get_collection(self.name, embedding_function=None) if self.name in names else None
            collection = client.get_or_create_collection(
                self.name, embedding_function=None,
                metadata={"embedder": embedder_name, "dimension": dimension, "hnsw:space": "cosine"})
        except Exception as exc:  # chromadb raises many types for a broken or unreachable store
            where = chroma_url or str(self.home / "chroma")
            raise QAError(f"Cannot open the Chroma store at {where} ({exc.__class__.__name__}: {exc}); "
                          "check the path or server, or run `qa doctor`.")
        meta = collection.metadata or {}
        mismatch = meta.get("embedder") != embedder_name or int(meta.get("dimension", dimension)) != dimension
        if mismatch and collection.count() == 0 and not self.db.execute("SELECT 1 FROM articles").fetchone():
            # emptied (`qa remove --all`): start it again for the new embedder, as the error below advises
            client.delete_collection(self.name)
            collection = client.create_collection(
                self.name, embedding_function=None,
                metadata={"embedder": embedder_name, "dimension": dimension, "hnsw:space": "cosine"})
        elif mismatch:
            raise QAError(
                f"Collection {self.name!r} was built with the embedder {meta.get('embedder')!r} "
                f"({meta.get('dimension')} dims), not {embedder_name!r} ({dimension} dims). "
                f"Use the same embedder (--embedder / QA_EMBEDDER), or a new collection (--collection NAME), "
                f"or delete it with `qa remove --all --collection {self.name}` and ingest again.")
        self.client = client
        return collection

    # ---- writing -------------------------------------------------------------------------

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        """All or nothing. (`with self.db:` alone opens no transaction in autocommit mode.)"""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    @contextmanager
    def write_lock(self, wait: bool = True, on_wait: Callable[[str], None] | None = None) -> Iterator[None]:
        """One writer at a time per collection, across processes; readers never wait."""
        path = self.home / f"{self.name}.lock"
        with open(path, "w") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if not wait:
                    raise QAError(f"Another qa process is writing to {self.name!r}; try again when it finishes.")
                if on_wait:
                    on_wait(f"Another qa process is writing to {self.name!r}; waiting for it to finish…")
                fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def add(self, article: Article, key: str, chunks: Sequence[Chunk], vectors: np.ndarray,
            replaces: str | None = None) -> None:
        """Write one article and its chunk vectors; it becomes visible only at the end."""
        self.add_many([NewArticle(article, key, chunks, vectors, replaces=replaces)])

    def add_many(self, items: Sequence[NewArticle]) -> None:
        """Write articles with their vectors; each becomes visible only when all of them are stored.

        One catalogue transaction marks them pending, one batched upsert writes their vectors
        (Chroma commits per call: an upsert per article cost ~0.1 s each), one transaction makes
        them visible. The chunk text is not copied into Chroma: it is cut from the catalogue.
        """
        if not items:
            return
        with self._transaction():
            for item in items:
                a = item.article
                self.db.execute("DELETE FROM chunks WHERE article_id=?", (a.id,))
                self.db.execute("INSERT OR REPLACE INTO articles VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                                (a.id, item.key, a.title, a.source, a.date, a.url, a.author, a.origin, a.text,
                                 "pending", time.time()))
                self.db.executemany("INSERT INTO chunks VALUES (?,?,?,?,?,?)",
                                    [(c.id, c.article_id, c.position, c.start, c.end, c.tokens) for c in item.chunks])
                if item.sentence_vectors is not None and len(item.sentences):
                    self.db.execute("INSERT OR REPLACE INTO sentence_vectors VALUES (?,?,?)",
                                    (a.id, np.asarray(item.sentences, dtype=np.int32).tobytes(),
                                     np.asarray(item.sentence_vectors, dtype=np.float16).tobytes()))
                else:
                    self.db.execute("DELETE FROM sentence_vectors WHERE article_id=?", (a.id,))
        ids = [c.id for item in items for c in item.chunks]
        if ids:
            vectors = np.concatenate([np.asarray(item.chunk_vectors, dtype=np.float32).reshape(len(item.chunks), -1)
                                      for item in items if item.chunks])
            metadatas = [_vector_metadata(item.article, c.position) for item in items for c in item.chunks]
            step = max(1, min(5000, self.client.get_max_batch_size()))
            for b in range(0, len(ids), step):
                self.collection.upsert(ids=ids[b:b + step], embeddings=vectors[b:b + step].tolist(),
                                       metadatas=metadatas[b:b + step])
        replaced = [item.replaces for item in items if item.replaces and item.replaces != item.article.id]
        with self._transaction():
            for item in items:
                self.db.execute("UPDATE articles SET state='ok' WHERE id=?", (item.article.id,))
                self.db.execute("DELETE FROM also_reported WHERE key=?", (item.key,))  # now an article of its own
                if item.replaces and item.replaces != item.article.id:
                    self.db.execute("UPDATE articles SET state='removing' WHERE id=?", (item.replaces,))
                    # the other sources of the old version report the new one
                    self.db.execute("UPDATE OR IGNORE also_reported SET article_id=? WHERE article_id=?",
                                    (item.article.id, item.replaces))
            self._bump_generation()
        if replaced:
            self.remove(replaced)

    def update_metadata(self, article: Article) -> None:
        """Rewrite a stored article's title, source, date, url, author and origin (its text, and so
        its chunks and vectors, unchanged). The vectors' filter fields are written first and the
        catalogue last: an interruption leaves the old record, and the next ingest repeats it."""
        rows = self.db.execute("SELECT id, position FROM chunks WHERE article_id=?", (article.id,)).fetchall()
        if self.collection is not None and rows:
            self.collection.update(ids=[r[0] for r in rows], metadatas=[_vector_metadata(article, r[1]) for r in rows])
        with self._transaction():
            self.db.execute("UPDATE articles SET title=?, source=?, date=?, url=?, author=?, origin=? WHERE id=?",
                            (article.title, article.source, article.date, article.url, article.author,
                             article.origin, article.id))

    def remove(self, article_ids: Sequence[str]) -> int:
        """Delete articles: hide them first, then their vectors, then their rows."""
        if not article_ids:
            return 0
        with self._transaction():
            marks = ",".join("?" * len(article_ids))
            self.db.execute(f"UPDATE articles SET state='removing' WHERE id IN ({marks})", list(article_ids))
            self._bump_generation()
        if self.collection is not None:
            ids = list(article_ids)
            for b in range(0, len(ids), 500):
                part = ids[b:b + 500]
                self.collection.delete(where={"article_id": {"$in": part}})
        with self._transaction():
            self.db.execute(f"DELETE FROM chunks WHERE article_id IN ({marks})", list(article_ids))
            self.db.execute(f"DELETE FROM also_reported WHERE article_id IN ({marks})", list(article_ids))
            self.db.execute(f"DELETE FROM signatures WHERE article_id IN ({marks})", list(article_ids))
            self.db.execute(f"DELETE FROM sentence_vectors WHERE article_id IN ({marks})", list(article_ids))
            cur = self.db.execute(f"DELETE FROM articles WHERE id IN ({marks})", list(article_ids))
        return cur.rowcount

    def recover(self) -> int:
        """Finish what a crash interrupted: drop every article that is not `ok`."""
        stale = [r[0] for r in self.db.execute("SELECT id FROM articles WHERE state!='ok'")]
        self.remove(stale)
        return len(stale)

    def add_also_reported(self, article_id: str, key: str, copy: Article) -> bool:
        """Record `copy` as another source of a visible article (not when it is that article's own key)."""
        with self._transaction():
            row = self.db.execute("SELECT key FROM articles WHERE id=? AND state='ok'", (article_id,)).fetchone()
            if row is None or row[0] == key:
                return False
            self.db.execute("INSERT OR REPLACE INTO also_reported VALUES (?,?,?,?,?,?,?)",
                            (article_id, key, copy.source, copy.url, copy.title, copy.date, copy.origin))
        return True

    def set_signature(self, article_id: str, minhash: bytes) -> None:
        """Keep an article's MinHash signature, so near-duplicate detection survives reopening."""
        self.db.execute("INSERT OR REPLACE INTO signatures VALUES (?,?)", (article_id, minhash))

    def signatures(self) -> list[tuple[str, bytes | None]]:
        """(article id, stored signature or None) for every visible article."""
        return self.db.execute("SELECT a.id, s.minhash FROM articles a LEFT JOIN signatures s "
                               "ON s.article_id=a.id WHERE a.state='ok'").fetchall()

    def _bump_generation(self) -> None:
        self.db.execute("INSERT INTO meta VALUES ('generation', '1') ON CONFLICT(name) "
                        "DO UPDATE SET value = CAST(value AS INTEGER) + 1")

    # ---- reading -------------------------------------------------------------------------

    @property
    def generation(self) -> int:
        row = self.db.execute("SELECT value FROM meta WHERE name='generation'").fetchone()
        return int(row[0]) if row else 0

    def find_by_key(self, key: str) -> str | None:
        row = self.db.execute("SELECT id FROM articles WHERE key=? AND state='ok'", (key,)).fetchone()
        return row[0] if row else None

    def find_by_id(self, article_id: str) -> StoredArticle | None:
        rows = self.articles(ids=[article_id])
        return rows[0] if rows else None

    def article_records(self, ids: Sequence[str], text: bool = True) -> dict[str, Article]:
        """Visible articles by id: the light read retrieval needs (no chunk counts or other
        sources); with `text=False` only their metadata (the text left empty)."""
        if not ids:
            return {}
        body = "text" if text else "''"
        rows = self.db.execute(f"SELECT id, title, source, date, url, author, origin, {body} FROM articles "
                               f"WHERE state='ok' AND id IN ({','.join('?' * len(ids))})", list(ids))
        return {r[0]: Article(id=r[0], title=r[1], source=r[2], date=r[3], url=r[4], author=r[5], origin=r[6],
                              text=r[7]) for r in rows}

    def articles(self, ids: Sequence[str] | None = None) -> list[StoredArticle]:
        query = ("SELECT a.id, a.key, a.title, a.source, a.date, a.url, a.author, a.origin, a.text, "
                 "(SELECT COUNT(*) FROM chunks c WHERE c.article_id=a.id) FROM articles a WHERE a.state='ok'")
        params: list[str] = []
        if ids is not None:
            query += f" AND a.id IN ({','.join('?' * len(ids))})"
            params = list(ids)
        also: dict[str, list[AlsoReported]] = {}
        where = f"WHERE article_id IN ({','.join('?' * len(ids))})" if ids is not None else ""
        for r in self.db.execute("SELECT article_id, source, url, title, date, origin FROM also_reported "
                                 f"{where} ORDER BY date, source", params):
            also.setdefault(r[0], []).append(AlsoReported(*r[1:]))
        out = []
        for r in self.db.execute(query + " ORDER BY a.date DESC, a.title", params):
            out.append(StoredArticle(Article(id=r[0], title=r[2], source=r[3], date=r[4], url=r[5], author=r[6],
                                             origin=r[7], text=r[8]), key=r[1], chunks=r[9],
                                     also_reported=tuple(also.get(r[0], ()))))
        return out

    def chunks(self, article_ids: Sequence[str] | None = None) -> list[Chunk]:
        """Chunks of visible articles, their text cut from the article text by offsets."""
        if article_ids is None:
            return self._chunk_rows("", [])
        return self._chunk_rows(f"AND c.article_id IN ({','.join('?' * len(article_ids))})", list(article_ids))

    def chunks_by_id(self, chunk_ids: Sequence[str]) -> list[Chunk]:
        if not chunk_ids:
            return []
        return self._chunk_rows(f"AND c.id IN ({','.join('?' * len(chunk_ids))})", list(chunk_ids))

    def _chunk_rows(self, clause: str, params: list[str]) -> list[Chunk]:
        # substr counts characters (code points) from 1, as Python slices count them from 0
        query = ('SELECT c.id, c.article_id, c.position, c.start, c."end", c.tokens, '
                 'substr(a.text, c.start + 1, c."end" - c.start) FROM chunks c '
                 f"JOIN articles a ON a.id=c.article_id WHERE a.state='ok' {clause} ORDER BY c.article_id, c.position")
        return [Chunk(id=r[0], article_id=r[1], position=r[2], start=r[3], end=r[4], tokens=r[5], text=r[6])
                for r in self.db.execute(query, params)]

    def sentence_vectors(self, article_ids: Sequence[str]) -> dict[str, tuple[list[tuple[int, int]], np.ndarray]]:
        """Stored (sentence spans, unit vectors as float32) of visible articles; articles written
        before sentence vectors were kept have none and are left out."""
        if not article_ids:
            return {}
        rows = self.db.execute("SELECT s.article_id, s.spans, s.vectors FROM sentence_vectors s JOIN articles a "
                               "ON a.id=s.article_id WHERE a.state='ok' AND s.article_id IN "
                               f"({','.join('?' * len(article_ids))})", list(article_ids))
        out = {}
        for aid, spans, vectors in rows:
            pairs = np.frombuffer(spans, dtype=np.int32).reshape(-1, 2)
            out[aid] = ([(int(a), int(b)) for a, b in pairs],
                        np.frombuffer(vectors, dtype=np.float16).reshape(len(pairs), -1).astype(np.float32))
        return out

    def chunk_count(self) -> int:
        return self.db.execute("SELECT COUNT(*) FROM chunks c JOIN articles a ON a.id=c.article_id "
                               "WHERE a.state='ok'").fetchone()[0]

    def vector_count(self) -> int:
        return self.collection.count() if self.collection is not None else 0

    @property
    def embedder(self) -> str:
        meta = (self.collection.metadata or {}) if self.collection is not None else {}
        return f"{meta.get('embedder', '-')} ({meta.get('dimension', '-')} dims)"

    def dense(self, vector: np.ndarray, k: int, where: dict | None = None) -> list[tuple[str, float]]:
        """(chunk id, cosine similarity) of the nearest chunks. (No `count()` first: Chroma returns
        what it has, and counting cost 8 ms at 100k chunks and 89 ms at 1M, per question.)"""
        if self.collection is None:
            return []
        result = self.collection.query(query_embeddings=[vector.tolist()], n_results=k, where=where or None,
                                       include=["distances"])
        return [(i, 1.0 - d) for i, d in zip(result["ids"][0], result["distances"][0])]

    def vector_ids(self) -> set[str]:
        ids: set[str] = set()
        if self.collection is None:
            return ids
        offset, step = 0, 5000
        while True:
            got = self.collection.get(include=[], limit=step, offset=offset)["ids"]
            ids.update(got)
            if len(got) < step:
                return ids
            offset += step

    def close(self) -> None:
        self.db.close()
