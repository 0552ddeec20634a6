"""The article store: a facade over the catalogue (catalogue.py: articles, chunks, each article's
sentence vectors, in SQLite) and the chunk vectors (vectors.py: Chroma), so that choosing context
never runs the embedder again.

An article becomes visible only when its catalogue row says `ok`, which is written after
its vectors are in Chroma. A crash at any moment therefore leaves, at worst, vectors of an
article that is not `ok`; `recover()` deletes them, and retrieval never shows them.

With a Chroma server (`chroma_url`) the server holds everything (shared.py: article records,
chunk vectors, sentences) and the catalogue is this user's cache of it (cache.py), kept in
QA_HOME/cache/, brought up to date when the store is opened (and by `sync()`); every write goes
to the server first, with the same pending -> ok protocol, then to the cache.
"""

from __future__ import annotations

import base64
import fcntl
import logging
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from ..errors import QAError
from ..records import Article, Chunk
from ..settings import masked_url
from . import cache, lexicon
from .catalogue import AlsoReported, Catalogue, NewArticle, StoredArticle
from .shared import Fetched, SharedArchive, also_json, article_fields, chunk_extras
from .vectors import Vectors, date_number, reason, vector_metadata

__all__ = ["AlsoReported", "NewArticle", "Store", "StoredArticle", "date_number"]

log = logging.getLogger(__name__)


class Store:
    def __init__(
        self,
        home: Path,
        collection: str,
        embedder_name: str | None = None,
        dimension: int = 0,
        chroma_url: str = "",
        chroma_token: str = "",
    ):
        """Without an embedder name the store is opened for catalogue work only (list, remove,
        check); vectors are still deleted, but nothing that needs the embedder is allowed."""
        self.home = home
        self.name = collection
        self.url = chroma_url
        home.mkdir(parents=True, exist_ok=True)
        where = home / "cache" / _server_folder(chroma_url) if chroma_url else home
        where.mkdir(parents=True, exist_ok=True)
        self.catalogue = Catalogue(where / f"{collection}.sqlite")
        self.archive: SharedArchive | None = None
        self.last_sync = cache.Synced()
        self.vectors = Vectors(
            home,
            collection,
            embedder_name,
            dimension,
            chroma_url=chroma_url,
            chroma_token=chroma_token,
            catalogue_empty=self._nothing_stored,
        )
        if chroma_url:
            try:
                self.archive = SharedArchive(self.vectors.client, collection, create=embedder_name is not None)
            except Exception as exc:  # chromadb raises many types for a broken or unreachable server
                raise QAError(
                    f"Cannot read the shared archive at {masked_url(chroma_url)} ({reason(exc, chroma_url)}); "
                    "run `qa doctor`."
                )
        if not lexicon.current(self.catalogue.db):
            self.build_lexicon()
        if self.archive is not None:
            self.sync()

    def _nothing_stored(self) -> bool:
        """No article at all (a collection emptied by `qa remove --all` may take another embedder)."""
        if self.url:
            return self.archive is None or self.archive.visible_count() == 0
        return self.catalogue.is_empty()

    def sync(self) -> cache.Synced:
        """Bring the local cache of a shared archive up to date (nothing to do in embedded mode)."""
        if self.archive is None:
            return cache.Synced()
        try:
            self.last_sync = cache.sync(self.catalogue, self.archive, self.vectors.collection, self.vectors.dimension)
            return self.last_sync
        except QAError:
            raise
        except Exception as exc:  # chromadb raises many types for a broken or unreachable server
            raise QAError(
                f"Cannot read the shared archive at {masked_url(self.url)} ({reason(exc, self.url)}); run `qa doctor`."
            ) from None

    def build_lexicon(self) -> None:
        """Index the visible chunks: a store written before the index lived in the catalogue (or by
        another analyser). Said on the `qa` logger when it takes more than a second."""
        started, said = time.perf_counter(), 0.0

        def progress(done: int, total: int) -> None:
            nonlocal said
            now = time.perf_counter() - started
            if now > 1 and now - said > 5:
                said = now
                log.info(f"Building the keyword index of {self.name!r}: {done:,} of {total:,} chunks…")

        with self.catalogue.transaction():
            if not lexicon.current(self.catalogue.db):  # not built by another process meanwhile
                ids = [r[0] for r in self.catalogue.db.execute("SELECT id FROM articles WHERE state='ok' ORDER BY id")]
                total = self.catalogue.chunk_count()
                batches = (self.catalogue.chunk_texts(ids[b : b + 500], visible=True) for b in range(0, len(ids), 500))
                lexicon.rebuild(self.catalogue.db, batches, lambda done: progress(done, total))
        shutil.rmtree(self.home / "bm25" / self.name, ignore_errors=True)  # the index files it replaces
        if said:
            log.info(f"Keyword index of {self.name!r} built in {time.perf_counter() - started:.0f} s.")

    # ---- writing -------------------------------------------------------------------------

    @contextmanager
    def write_lock(self, wait: bool = True, on_wait: Callable[[str], None] | None = None) -> Iterator[None]:
        """One writer at a time per collection, across processes; readers never wait."""
        path = self.home / f"{self.name}.lock"
        with open(path, "w") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if not wait:
                    raise QAError(
                        f"Another qa process is writing to {self.name!r}; try again when it finishes."
                    ) from None
                if on_wait:
                    on_wait(f"Another qa process is writing to {self.name!r}; waiting for it to finish…")
                fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def add(
        self, article: Article, key: str, chunks: Sequence[Chunk], vectors: np.ndarray, replaces: str | None = None
    ) -> None:
        """Write one article and its chunk vectors; it becomes visible only at the end."""
        self.add_many([NewArticle(article, key, chunks, vectors, replaces=replaces)])

    def add_many(self, items: Sequence[NewArticle]) -> None:
        """Write articles with their vectors; each becomes visible only when all of them are stored.

        One catalogue transaction marks them pending, one batched upsert writes their vectors
        (Chroma commits per call: an upsert per article cost ~0.1 s each), one transaction makes
        them visible.
        """
        if not items:
            return
        if self.archive is not None:
            self._add_shared(items)
        else:
            self.catalogue.write_pending(items)
            self._upsert_vectors(items)
            self.catalogue.publish(items)
        replaced = [item.replaces for item in items if item.replaces and item.replaces != item.article.id]
        if replaced:
            self.remove(replaced)

    def _upsert_vectors(self, items: Sequence[NewArticle]) -> None:
        ids = [c.id for item in items for c in item.chunks]
        if not ids:
            return
        vectors = np.concatenate(
            [
                np.asarray(item.chunk_vectors, dtype=np.float32).reshape(len(item.chunks), -1)
                for item in items
                if item.chunks
            ]
        )
        metadatas = []
        for item in items:
            extras = chunk_extras(item) if self.archive is not None else [{}] * len(item.chunks)
            metadatas += [
                vector_metadata(item.article, c.position) | x for c, x in zip(item.chunks, extras, strict=True)
            ]
        # on a server each chunk carries ~10 kB of sentences: 500 a request keeps requests near 5 MB
        self.vectors.upsert(ids, vectors, metadatas, batch=500 if self.archive is not None else 5000)

    def _add_shared(self, items: Sequence[NewArticle]) -> None:
        """Server first (record pending, vectors, record ok: the commit), then this user's cache."""
        assert self.archive is not None
        if self.archive.collection is None:
            self.archive = SharedArchive(self.vectors.client, self.name, create=True)
        self.archive.begin(items)
        self._upsert_vectors(items)
        seq = self.archive.set_state([i.article.id for i in items], "ok")
        cache.apply(self.catalogue, [Fetched(i, seq, i.signature, ()) for i in items])
        for item in items:  # the other reports of an older version now report the new one
            if item.replaces and item.replaces != item.article.id:
                rows = cache.also_rows(self.catalogue, item.article.id)
                if rows:
                    cache.set_seq(
                        self.catalogue, item.article.id, self.archive.update(item.article.id, {"also": also_json(rows)})
                    )

    def update_metadata(self, article: Article) -> None:
        """Rewrite a stored article's title, source, date, url, author and origin (its text, and so
        its chunks and vectors, unchanged). The vectors' filter fields are written first and the
        catalogue last: an interruption leaves the old record, and the next ingest repeats it."""
        rows = self.catalogue.chunk_positions(article.id)
        self.vectors.update_metadata([r[0] for r in rows], [vector_metadata(article, r[1]) for r in rows])
        if self.archive is not None:
            cache.set_seq(self.catalogue, article.id, self.archive.update(article.id, article_fields(article)))
        self.catalogue.update_record(article)

    def remove(self, article_ids: Sequence[str]) -> int:
        """Delete articles: hide them first, then their vectors, then their rows."""
        if not article_ids:
            return 0
        if self.archive is not None and self.archive.collection is not None:
            self.archive.set_state(article_ids, "removing")
            self.vectors.delete_articles(article_ids)
            self.archive.bury(article_ids)
            known = sum(
                len(self.catalogue.article_records(article_ids[b : b + 30000], text=False))
                for b in range(0, len(article_ids), 30000)
            )
            cache.drop(self.catalogue, article_ids)
            return known
        self.catalogue.hide(article_ids)
        self.vectors.delete_articles(article_ids)
        return self.catalogue.delete(article_ids)

    def recover(self) -> int:
        """Finish what a crash interrupted: drop every article that is not `ok`."""
        stale = self.catalogue.unfinished()
        if self.archive is None:
            self.remove(stale)
            return len(stale)
        if stale:
            cache.drop(self.catalogue, stale)  # a cache write that stopped half-way: the server has the truth
        dead, removing = self.archive.unfinished()
        for ids in (dead, removing):
            if ids:
                self.vectors.delete_articles(ids)
                self.archive.bury(ids)
        return len(dead) + len(removing)

    def add_also_reported(self, article_id: str, key: str, copy: Article) -> bool:
        """Record `copy` as another source of a visible article (not when it is that article's own key)."""
        added = self.catalogue.add_also_reported(article_id, key, copy)
        if added and self.archive is not None:
            rows = cache.also_rows(self.catalogue, article_id)
            cache.set_seq(self.catalogue, article_id, self.archive.update(article_id, {"also": also_json(rows)}))
        return added

    def set_signatures(self, signatures: Sequence[tuple[str, bytes]]) -> None:
        """Keep articles' MinHash signatures, so near-duplicate detection survives reopening (on
        the server too, without a new seq: another cache that lacks one makes its own)."""
        self.catalogue.set_signatures(signatures)
        if self.archive is not None and self.archive.collection is not None:
            self.archive.collection.update(
                ids=[article_id for article_id, _ in signatures],
                metadatas=[{"minhash": base64.b64encode(blob).decode()} for _, blob in signatures],
            )

    # ---- reading -------------------------------------------------------------------------

    @property
    def generation(self) -> int:
        """Bumped by every write readers can see."""
        return self.catalogue.generation

    def signatures(self) -> list[tuple[str, bytes | None]]:
        """(article id, stored signature or None) for every visible article."""
        return self.catalogue.signatures()

    def find_by_key(self, key: str) -> str | None:
        return self.catalogue.find_by_key(key)

    def find_by_id(self, article_id: str) -> StoredArticle | None:
        rows = self.catalogue.articles(ids=[article_id])
        return rows[0] if rows else None

    def article_records(self, ids: Sequence[str], text: bool = True) -> dict[str, Article]:
        """Visible articles by id: the light read retrieval needs (no chunk counts or other
        sources); with `text=False` only their metadata (the text left empty)."""
        return self.catalogue.article_records(ids, text)

    def articles(self, ids: Sequence[str] | None = None) -> list[StoredArticle]:
        return self.catalogue.articles(ids)

    def chunks(self, article_ids: Sequence[str] | None = None) -> list[Chunk]:
        """Chunks of visible articles, their text cut from the article text by offsets."""
        return self.catalogue.chunks(article_ids)

    def chunks_by_id(self, chunk_ids: Sequence[str]) -> list[Chunk]:
        return self.catalogue.chunks_by_id(chunk_ids)

    def sentence_vectors(self, article_ids: Sequence[str]) -> dict[str, tuple[list[tuple[int, int]], np.ndarray]]:
        """Stored (sentence spans, unit vectors as float32) of visible articles; articles written
        before sentence vectors were kept have none and are left out."""
        return self.catalogue.sentence_vectors(article_ids)

    def chunk_count(self) -> int:
        return self.catalogue.chunk_count()

    def lexical_search(self, words: Sequence[str], k: int) -> list[tuple[str, float]]:
        """(chunk id, BM25 score) of the best `k` visible chunks for these terms."""
        return lexicon.search(self.catalogue.db, words, k)

    def document_frequencies(self, words: Sequence[str]) -> tuple[int, dict[str, int]]:
        """Chunks in the lexical index, and in how many of them each term occurs."""
        return lexicon.document_frequencies(self.catalogue.db, words)

    def lexicon_chunk_ids(self) -> set[str]:
        return lexicon.chunk_ids(self.catalogue.db)

    def incomplete(self, article_ids: Sequence[str]) -> list[str]:
        """Visible articles among these some of whose chunk vectors are missing."""
        chunks = [
            c for b in range(0, len(article_ids), 10000) for c in self.catalogue.chunks(article_ids[b : b + 10000])
        ]
        present = self.vectors.present([c.id for c in chunks])
        return sorted({c.article_id for c in chunks if c.id not in present})

    def vector_count(self) -> int:
        return self.vectors.count()

    @property
    def embedder(self) -> str:
        return self.vectors.embedder

    def dense(self, vector: np.ndarray, k: int, where: dict | None = None) -> list[tuple[str, float]]:
        return self.vectors.dense(vector, k, where)

    def vector_ids(self) -> set[str]:
        return self.vectors.ids()

    def close(self) -> None:
        self.catalogue.close()


def _server_folder(url: str) -> str:
    """A folder name for a server's cache: its host and port (credentials and path left out)."""
    from urllib.parse import urlparse

    u = urlparse(url)
    return "".join(ch if ch.isalnum() or ch in ".-" else "_" for ch in f"{u.hostname or 'server'}-{u.port or 8000}")
