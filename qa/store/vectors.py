"""Chunk vectors in Chroma (embedded on disk, or a server at QA_CHROMA_URL): one collection per qa
collection, its metadata naming the embedder, each vector beside its chunk's article id and the
fields dense search filters on. Chunk text is not copied here: it is cut from the catalogue."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np

from ..errors import QAError
from ..records import Article
from ..settings import masked_url

# HNSW search breadth. Chroma's default (100) missed some of the true 40 nearest chunks, and which
# ones depended on the graph, which Chroma builds with several threads: two stores of the same
# articles gave different results (1 in 60 questions on 10k chunks). At 200 the search found the
# exact top 40 for 60 of 60 questions in both builds (BENCHMARKS.md has its cost).
SEARCH_EF = 200


def date_number(date: str) -> int:
    """YYYY-MM-DD as an integer for Chroma range filters; 0 when unknown."""
    return int(date.replace("-", "")) if len(date) == 10 else 0


def vector_metadata(article: Article, position: int) -> dict:
    """What Chroma keeps beside a chunk's vector: its article and the fields dense search filters on."""
    return {"article_id": article.id, "position": position, "source": article.source, "date": date_number(article.date)}


def reason(exc: Exception, url: str) -> str:
    """A library error in one short line: no password from the URL, no HTML page a web server that is
    not Chroma sent back."""
    text = str(exc)
    password = urlparse(url).password if url else None
    if password:
        text = text.replace(password, "***")
    if re.search(r"<(!doctype|/?[a-z][a-z0-9]*)\b[^<>]*>", text, re.I):  # markup: a web page, not Chroma's JSON
        status = re.search(r"\b([45]\d\d)\b", text)
        return "the server answered with a web page, not as Chroma" + (f" (HTTP {status.group(1)})" if status else "")
    first = (text.strip().splitlines() or [""])[0]
    return f"{exc.__class__.__name__}: {first[:200]}"


def connect(chroma_url: str, chroma_token: str) -> Any:
    """A client of the Chroma server at `chroma_url` (a bearer token if given)."""
    os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
    from urllib.parse import urlparse

    import chromadb
    from chromadb.config import Settings as ChromaSettings

    u = urlparse(chroma_url)
    headers = {"Authorization": f"Bearer {chroma_token}"} if chroma_token else None
    return chromadb.HttpClient(
        host=u.hostname or "127.0.0.1",
        port=u.port or 8000,
        ssl=u.scheme == "https",
        headers=headers,
        settings=ChromaSettings(anonymized_telemetry=False),
    )


def probe(chroma_url: str, chroma_token: str, collection: str) -> str:
    """What `qa doctor` says of a Chroma server: reachable, its version, the collection's counts.
    Raises RuntimeError with what to do when the server cannot serve the commands."""
    try:
        client = connect(chroma_url, chroma_token)
        client.heartbeat()
        version = client.get_version()
        names = {getattr(c, "name", c) for c in client.list_collections()}
    except Exception as exc:  # chromadb raises many types for an unreachable or foreign server
        text = " ".join(str(exc).split())[:120] or exc.__class__.__name__
        raise RuntimeError(
            f"{masked_url(chroma_url)} does not answer as a Chroma server ({text}); start one with "
            "`chroma run --path DIR --host HOST --port PORT` or fix QA_CHROMA_URL"
        ) from None
    head = f"{masked_url(chroma_url)}, Chroma {version}, reachable"
    if collection not in names:
        return f"{head}; collection {collection!r} not created yet (nothing ingested)"
    chunks = client.get_collection(collection, embedding_function=None).count()
    records = f"{collection}.articles"
    if records not in names:
        return (
            f"{head}; collection {collection!r}: {chunks} chunk vectors but no article records (written before "
            "qa shared them: ingest the articles again to share them)"
        )
    got = client.get_collection(records, embedding_function=None).get(where={"state": "ok"}, include=[])
    return f"{head}; collection {collection!r}: {len(got['ids'])} articles, {chunks} chunk vectors"


class Vectors:
    """The Chroma collection `name`. Opened without an embedder name (catalogue work: list, remove,
    check) an absent collection stays absent (`collection` None) and nothing is created."""

    def __init__(
        self,
        home: Path,
        name: str,
        embedder_name: str | None,
        dimension: int,
        *,
        chroma_url: str = "",
        chroma_token: str = "",
        catalogue_empty: Callable[[], bool] = lambda: False,
    ):
        self.name = name
        self.client: Any = None
        self.collection: Any = self._open(home, embedder_name, dimension, chroma_url, chroma_token, catalogue_empty)

    def _open(
        self,
        home: Path,
        embedder_name: str | None,
        dimension: int,
        chroma_url: str,
        chroma_token: str,
        catalogue_empty: Callable[[], bool],
    ) -> Any:
        os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
        import chromadb
        from chromadb.config import Settings as ChromaSettings

        metadata = {
            "embedder": embedder_name,
            "dimension": dimension,
            "hnsw:space": "cosine",
            "hnsw:search_ef": SEARCH_EF,
        }
        try:
            if chroma_url:
                client = connect(chroma_url, chroma_token)
            else:
                settings = ChromaSettings(anonymized_telemetry=False)
                client = chromadb.PersistentClient(path=str(home / "chroma"), settings=settings)
            if embedder_name is None:
                names = {getattr(c, "name", c) for c in client.list_collections()}
                self.client = client
                return client.get_collection(self.name, embedding_function=None) if self.name in names else None
            collection = client.get_or_create_collection(self.name, embedding_function=None, metadata=metadata)
        except Exception as exc:  # chromadb raises many types for a broken or unreachable store
            where = masked_url(chroma_url) if chroma_url else str(home / "chroma")
            raise QAError(
                f"Cannot open the Chroma store at {where} ({reason(exc, chroma_url)}); "
                "check the path or server, or run `qa doctor`."
            ) from None
        meta = collection.metadata or {}
        mismatch = meta.get("embedder") != embedder_name or int(meta.get("dimension", dimension)) != dimension
        if mismatch and collection.count() == 0 and catalogue_empty():
            # emptied (`qa remove --all`): start it again for the new embedder, as the error below advises
            client.delete_collection(self.name)
            collection = client.create_collection(self.name, embedding_function=None, metadata=metadata)
        elif mismatch:
            raise QAError(
                f"Collection {self.name!r} was built with the embedder {meta.get('embedder')!r} "
                f"({meta.get('dimension')} dims), not {embedder_name!r} ({dimension} dims). "
                f"Use the same embedder (--embedder / QA_EMBEDDER), or a new collection (--collection NAME), "
                f"or delete it with `qa --collection {self.name} remove --all` and ingest again."
            )
        self.client = client
        _search_broadly(collection)
        return collection

    def upsert(self, ids: Sequence[str], vectors: np.ndarray, metadatas: Sequence[dict], batch: int = 5000) -> None:
        """Write vectors in batches of what the server takes (at most `batch`)."""
        step = max(1, min(batch, self.client.get_max_batch_size()))
        for b in range(0, len(ids), step):
            self.collection.upsert(
                ids=list(ids[b : b + step]),
                embeddings=vectors[b : b + step].tolist(),
                metadatas=list(metadatas[b : b + step]),
            )

    def update_metadata(self, ids: Sequence[str], metadatas: Sequence[dict]) -> None:
        if self.collection is not None and ids:
            self.collection.update(ids=list(ids), metadatas=list(metadatas))

    def delete_articles(self, article_ids: Sequence[str]) -> None:
        if self.collection is not None:
            ids = list(article_ids)
            for b in range(0, len(ids), 500):
                self.collection.delete(where={"article_id": {"$in": ids[b : b + 500]}})

    def count(self) -> int:
        return self.collection.count() if self.collection is not None else 0

    @property
    def dimension(self) -> int:
        meta = (self.collection.metadata or {}) if self.collection is not None else {}
        return int(meta.get("dimension") or 0)

    @property
    def embedder(self) -> str:
        meta = (self.collection.metadata or {}) if self.collection is not None else {}
        return f"{meta.get('embedder', '-')} ({meta.get('dimension', '-')} dims)"

    def dense(self, vector: np.ndarray, k: int, where: dict | None = None) -> list[tuple[str, float]]:
        """(chunk id, cosine similarity) of the `k` nearest chunks, ties in id order. Twice as many are
        asked for, so that among chunks tied at the k-th place (copies of a paragraph) the ones kept
        do not depend on the graph's order. (No `count()` first: Chroma returns what it has, and
        counting cost 8 ms at 100k chunks and 89 ms at 1M.)"""
        if self.collection is None or k <= 0:
            return []
        result = self.collection.query(
            query_embeddings=[vector.tolist()], n_results=2 * k, where=where or None, include=["distances"]
        )
        pairs = [(i, 1.0 - d) for i, d in zip(result["ids"][0], result["distances"][0], strict=True)]
        return sorted(pairs, key=lambda p: (-p[1], p[0]))[:k]

    def present(self, ids: Sequence[str]) -> set[str]:
        """Which of these chunk ids have a vector."""
        found: set[str] = set()
        if self.collection is None:
            return found
        for b in range(0, len(ids), 5000):
            found.update(self.collection.get(ids=list(ids[b : b + 5000]), include=[])["ids"])
        return found

    def ids(self) -> set[str]:
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


def _search_broadly(collection: Any) -> None:
    """Give a collection made before SEARCH_EF was set that search breadth (a setting, no rebuild)."""
    hnsw = (getattr(collection, "configuration_json", None) or {}).get("hnsw") or {}
    if int(hnsw.get("ef_search") or 0) < SEARCH_EF:
        collection.modify(configuration={"hnsw": {"ef_search": SEARCH_EF}})
