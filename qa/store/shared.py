"""The shared archive on a Chroma server (QA_CHROMA_URL): everything a reader needs is on the
server, and a user's QA_HOME holds only a cache of it (the catalogue, with its lexical index),
brought up to date before every command and rebuilt from scratch when deleted.

On the server, for a qa collection NAME:
- NAME: the chunk vectors, as in embedded mode, whose metadata also carries each chunk's offsets
  and token count, and a share of its article's sentence spans and vectors (float16, base64);
- NAME.articles: one record per article: its text as the document, the mean of its chunk vectors
  as the vector, and as metadata its title, source, date, url, author, origin, key, other
  reports, near-duplicate signature, `state` and `seq`.

`seq` is the server's clock (its heartbeat, in ms) when the record last changed, so a cache asks
only for records changed since it last looked. A write goes: record `pending`, chunk vectors,
record `ok` with a new seq (the commit point: a reader sees the article from then on). A removal:
record `removing` (hidden), vectors deleted, record `removed` (a tombstone that tells caches to
drop it). Whatever a crash interrupts is finished by the next writer's `recover()`: records
`removing`, and `pending` ones older than GRACE_MS. Writers on different machines need no lock:
different articles never share a record or a vector, and the same article is written alike.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..records import Article, Chunk
from .catalogue import NewArticle

# A cache asks for records with seq > (its last look - OVERLAP_MS): a record whose write was
# still on its way when the cache looked is caught next time, provided it landed within
# OVERLAP_MS of its seq; a writer whose commit took longer than half of that commits again.
OVERLAP_MS = 120_000
GRACE_MS = 3_600_000  # a `pending` record this old was left by a writer that died
PAGE = 1000  # records per request (the texts travel with them)


@dataclass(frozen=True)
class Change:
    """A record the server changed: its article id, seq and state."""

    id: str
    seq: int
    state: str


def pack(spans: Sequence[tuple[int, int]], vectors: np.ndarray) -> str:
    """Sentence spans (int32 pairs) and unit vectors (float16) as one base64 string."""
    data = np.asarray(spans, dtype="<i4").tobytes() + np.asarray(vectors, dtype="<f2").tobytes()
    return base64.b64encode(data).decode("ascii")


def unpack(text: str, count: int, dimension: int) -> tuple[list[tuple[int, int]], np.ndarray]:
    data = base64.b64decode(text)
    pairs = np.frombuffer(data[: count * 8], dtype="<i4").reshape(count, 2)
    vectors = np.frombuffer(data[count * 8 :], dtype="<f2").reshape(count, dimension)
    return [(int(a), int(b)) for a, b in pairs], vectors


def chunk_extras(item: NewArticle) -> list[dict]:
    """What a chunk's vector carries on the server beyond the filter fields: its offsets and token
    count, and its share of the article's sentences (split evenly over the chunks in order)."""
    n = len(item.chunks)
    sentences = list(item.sentences) if item.sentence_vectors is not None else []
    bounds = np.linspace(0, len(sentences), n + 1).astype(int)
    extras = []
    for i, c in enumerate(item.chunks):
        extra: dict[str, Any] = {"start": c.start, "end": c.end, "tokens": c.tokens, "sentences": 0}
        a, b = int(bounds[i]), int(bounds[i + 1])
        if b > a and item.sentence_vectors is not None:
            extra["sentences"] = b - a
            extra["sentence_data"] = pack(sentences[a:b], np.asarray(item.sentence_vectors)[a:b])
        extras.append(extra)
    return extras


@dataclass(frozen=True)
class Fetched:
    """An article as the server holds it, ready for the cache."""

    item: NewArticle
    seq: int
    signature: bytes | None
    also: tuple[tuple[str, ...], ...]  # other reports: (key, source, url, title, date, origin)


class SharedArchive:
    """The records collection NAME.articles on the server (None until something is written)."""

    def __init__(self, client: Any, name: str, *, create: bool):
        self.client = client
        self.name = f"{name}.articles"
        if create:
            self.collection: Any = client.get_or_create_collection(
                self.name, embedding_function=None, metadata={"hnsw:space": "cosine", "qa": "article records"}
            )
        else:
            names = {getattr(c, "name", c) for c in client.list_collections()}
            self.collection = client.get_collection(self.name, embedding_function=None) if self.name in names else None

    @property
    def identity(self) -> str:
        """The records collection's id: a cache built from another collection of that name is stale."""
        return str(self.collection.id) if self.collection is not None else ""

    def now(self) -> int:
        """The server's clock in ms: every seq comes from it, so writers' clocks never matter."""
        return int(self.client.heartbeat()) // 1_000_000

    # ---- writing ----------------------------------------------------------------------------

    def begin(self, items: Sequence[NewArticle]) -> None:
        """Records of new articles, `pending`: invisible to readers until `commit`."""
        seq = self.now()
        for b in range(0, len(items), PAGE):
            part = items[b : b + PAGE]
            self.collection.upsert(
                ids=[i.article.id for i in part],
                embeddings=[_mean(i.chunk_vectors) for i in part],
                documents=[i.article.text for i in part],
                metadatas=[_record(i, seq, "pending") for i in part],
            )

    def set_state(self, ids: Sequence[str], state: str) -> int:
        """Move records to `state` with a new seq; a commit that took long is made again with a
        newer seq, so that no cache that looked in between misses it. Returns the seq."""
        while True:
            seq = self.now()
            for b in range(0, len(ids), PAGE):
                part = list(ids[b : b + PAGE])
                self.collection.update(ids=part, metadatas=[{"state": state, "seq": seq}] * len(part))
            if not ids or self.now() - seq < OVERLAP_MS // 2:
                return seq

    def bury(self, ids: Sequence[str]) -> None:
        """Tombstones in place of removed articles: no text, state `removed`, a new seq."""
        for b in range(0, len(ids), PAGE):
            part = list(ids[b : b + PAGE])
            found = self.collection.get(ids=part, include=["embeddings"])
            if found["ids"]:
                self.collection.upsert(
                    ids=found["ids"],
                    embeddings=[list(map(float, e)) for e in found["embeddings"]],
                    documents=[""] * len(found["ids"]),
                    metadatas=[{"state": "removing", "also": "", "minhash": ""}] * len(found["ids"]),
                )
        self.set_state(ids, "removed")

    def update(self, article_id: str, fields: dict) -> int:
        """Rewrite some metadata of a visible record (a corrected title, another source); its new seq."""
        seq = self.now()
        self.collection.update(ids=[article_id], metadatas=[{**fields, "seq": seq}])
        return seq

    def unfinished(self) -> tuple[list[str], list[str]]:
        """(records a dead writer left `pending`, records left `removing`)."""
        if self.collection is None:
            return [], []
        now = self.now()
        got = self.collection.get(where={"state": {"$in": ["pending", "removing"]}}, include=["metadatas"])
        rows = list(zip(got["ids"], got["metadatas"], strict=True))
        stale = [i for i, m in rows if m["state"] == "pending" and now - int(m["seq"]) > GRACE_MS]
        return stale, [i for i, m in rows if m["state"] == "removing"]

    # ---- reading ----------------------------------------------------------------------------

    def changes(self, since: int) -> Iterator[Change]:
        """Every record whose seq is above `since`, a page at a time."""
        if self.collection is None:
            return
        offset = 0
        while True:
            got = self.collection.get(
                where={"seq": {"$gt": since}}, include=["metadatas"], limit=PAGE * 5, offset=offset
            )
            for i, m in zip(got["ids"], got["metadatas"], strict=True):
                yield Change(i, int(m["seq"]), str(m["state"]))
            if len(got["ids"]) < PAGE * 5:
                return
            offset += PAGE * 5

    def visible_count(self) -> int:
        if self.collection is None:
            return 0
        return len(self.collection.get(where={"state": "ok"}, include=[])["ids"])

    def fetch(self, ids: Sequence[str], chunks: Any, dimension: int) -> list[Fetched]:
        """Visible articles with their chunks and sentences, as stored on the server; an article
        whose chunk vectors are not all there (a removal under way) is left out."""
        out: list[Fetched] = []
        for b in range(0, len(ids), 100):
            part = list(ids[b : b + 100])
            records = self.collection.get(ids=part, include=["documents", "metadatas"])
            rows = chunks.get(where={"article_id": {"$in": part}}, include=["metadatas"])
            by_article: dict[str, list[tuple[str, dict]]] = {}
            for cid, meta in zip(rows["ids"], rows["metadatas"], strict=True):
                by_article.setdefault(meta["article_id"], []).append((cid, meta))
            for aid, text, meta in zip(records["ids"], records["documents"], records["metadatas"], strict=True):
                own = sorted(by_article.get(aid, []), key=lambda x: x[1]["position"])
                if meta.get("state") != "ok" or len(own) != int(meta.get("chunks", -1)):
                    continue
                out.append(_fetched(aid, text, meta, own, dimension))
        return out


def _mean(vectors: np.ndarray) -> list[float]:
    v = np.asarray(vectors, dtype=np.float64).reshape(-1, np.asarray(vectors).shape[-1]).mean(axis=0)
    norm = float(np.linalg.norm(v))
    return (v / norm if norm > 0 else np.eye(1, len(v))[0]).tolist()


def article_fields(article: Article) -> dict:
    """What a record keeps of an article besides its text (the fields a corrected re-ingest rewrites)."""
    return {f: getattr(article, f) for f in ("title", "source", "date", "url", "author", "origin")}


def _record(item: NewArticle, seq: int, state: str) -> dict:
    return {
        "key": item.key,
        **article_fields(item.article),
        "ingested_at": time.time(),
        "chunks": len(item.chunks),
        "state": state,
        "seq": seq,
        "also": "",
        "minhash": base64.b64encode(item.signature).decode("ascii") if item.signature else "",
    }


def also_json(rows: Sequence[tuple[str, ...]]) -> str:
    """Other reports of an article, (key, source, url, title, date, origin) each, for its record."""
    return json.dumps([list(r) for r in rows]) if rows else ""


def _fetched(aid: str, text: str, meta: dict, own: list[tuple[str, dict]], dimension: int) -> Fetched:
    article = Article(
        id=aid,
        text=text,
        title=meta.get("title", ""),
        source=meta.get("source", ""),
        date=meta.get("date", ""),
        url=meta.get("url", ""),
        author=meta.get("author", ""),
        origin=meta.get("origin", ""),
    )
    chunks = [
        Chunk(
            cid, aid, int(m["position"]), text[m["start"] : m["end"]], int(m["start"]), int(m["end"]), int(m["tokens"])
        )
        for cid, m in own
    ]
    spans: list[tuple[int, int]] = []
    parts = []
    for _, m in own:
        if m.get("sentences"):
            s, v = unpack(m["sentence_data"], int(m["sentences"]), dimension)
            spans.extend(s)
            parts.append(v)
    vectors = np.concatenate(parts) if parts else None
    also = tuple(tuple(r) for r in json.loads(meta["also"])) if meta.get("also") else ()
    signature = base64.b64decode(meta["minhash"]) if meta.get("minhash") else None
    item = NewArticle(
        article, meta.get("key", ""), chunks, np.zeros((0, dimension)), spans, vectors, signature=signature
    )
    return Fetched(item, int(meta["seq"]), signature, also)
