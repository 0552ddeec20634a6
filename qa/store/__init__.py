"""The article store: a facade over the catalogue (catalogue.py: articles, chunks, each article's
sentence vectors, in SQLite) and the chunk vectors (vectors.py: Chroma), so that choosing context
never runs the embedder again.

An article becomes visible only when its catalogue row says `ok`, which is written after
its vectors are in Chroma. A crash at any moment therefore leaves, at worst, vectors of an
article that is not `ok`; `recover()` deletes them, and retrieval never shows them.
"""

from __future__ import annotations

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
from .catalogue import AlsoReported, Catalogue, NewArticle, StoredArticle
from .vectors import Vectors, date_number, vector_metadata

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
        home.mkdir(parents=True, exist_ok=True)
        self.catalogue = Catalogue(home / f"{collection}.sqlite")
        self.vectors = Vectors(
            home,
            collection,
            embedder_name,
            dimension,
            chroma_url=chroma_url,
            chroma_token=chroma_token,
            catalogue_empty=self.catalogue.is_empty,
        )
        if not self.catalogue.lexicon_current():
            self._build_lexicon()

    def _build_lexicon(self) -> None:
        """Index the visible chunks: a store written before the index lived in the catalogue (or by
        another analyser). Said on the `qa` logger when it takes more than a second."""
        started, said = time.perf_counter(), 0.0

        def progress(done: int, total: int) -> None:
            nonlocal said
            now = time.perf_counter() - started
            if now > 1 and now - said > 5:
                said = now
                log.info(f"Building the keyword index of {self.name!r}: {done:,} of {total:,} chunks…")

        self.catalogue.build_lexicon(progress)
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
        self.catalogue.write_pending(items)
        ids = [c.id for item in items for c in item.chunks]
        if ids:
            vectors = np.concatenate(
                [
                    np.asarray(item.chunk_vectors, dtype=np.float32).reshape(len(item.chunks), -1)
                    for item in items
                    if item.chunks
                ]
            )
            metadatas = [vector_metadata(item.article, c.position) for item in items for c in item.chunks]
            self.vectors.upsert(ids, vectors, metadatas)
        self.catalogue.publish(items)
        replaced = [item.replaces for item in items if item.replaces and item.replaces != item.article.id]
        if replaced:
            self.remove(replaced)

    def update_metadata(self, article: Article) -> None:
        """Rewrite a stored article's title, source, date, url, author and origin (its text, and so
        its chunks and vectors, unchanged). The vectors' filter fields are written first and the
        catalogue last: an interruption leaves the old record, and the next ingest repeats it."""
        rows = self.catalogue.chunk_positions(article.id)
        self.vectors.update_metadata([r[0] for r in rows], [vector_metadata(article, r[1]) for r in rows])
        self.catalogue.update_record(article)

    def remove(self, article_ids: Sequence[str]) -> int:
        """Delete articles: hide them first, then their vectors, then their rows."""
        if not article_ids:
            return 0
        self.catalogue.hide(article_ids)
        self.vectors.delete_articles(article_ids)
        return self.catalogue.delete(article_ids)

    def recover(self) -> int:
        """Finish what a crash interrupted: drop every article that is not `ok`."""
        stale = self.catalogue.unfinished()
        self.remove(stale)
        return len(stale)

    def add_also_reported(self, article_id: str, key: str, copy: Article) -> bool:
        """Record `copy` as another source of a visible article (not when it is that article's own key)."""
        return self.catalogue.add_also_reported(article_id, key, copy)

    def set_signature(self, article_id: str, minhash: bytes) -> None:
        """Keep an article's MinHash signature, so near-duplicate detection survives reopening."""
        self.catalogue.set_signature(article_id, minhash)

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
        return self.catalogue.lexical_search(words, k)

    def document_frequencies(self, words: Sequence[str]) -> tuple[int, dict[str, int]]:
        """Chunks in the lexical index, and in how many of them each term occurs."""
        return self.catalogue.document_frequencies(words)

    def lexicon_chunk_ids(self) -> set[str]:
        return self.catalogue.lexicon_chunk_ids()

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
