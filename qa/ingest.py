"""Ingest: load -> identify (new, changed, unchanged, duplicate) -> chunk -> embed -> store -> index."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from .chunking import chunk_article
from .embeddings import Embedder
from .lexical import LexicalIndex
from .loaders import LoadProblem, expand_paths, load_file
from .records import Article, Chunk
from .store import Store

STATUSES = ("new", "updated", "unchanged", "duplicate", "failed")


@dataclass(frozen=True)
class ItemResult:
    origin: str
    status: str  # one of STATUSES
    title: str = ""
    article_id: str = ""
    chunks: int = 0
    detail: str = ""


@dataclass
class IngestReport:
    items: list[ItemResult] = field(default_factory=list)
    warnings: list[LoadProblem] = field(default_factory=list)
    seconds: float = 0.0
    embed_seconds: float = 0.0
    recovered: int = 0
    interrupted: bool = False

    def count(self, status: str) -> int:
        return sum(1 for i in self.items if i.status == status)

    @property
    def chunks_added(self) -> int:
        return sum(i.chunks for i in self.items if i.status in ("new", "updated"))

    @property
    def failed(self) -> list[ItemResult]:
        return [i for i in self.items if i.status == "failed"]


def identity_key(article: Article) -> str:
    """What makes 'the same article' across versions: its URL, else where it was read from."""
    if article.url:
        return article.url
    path, sep, rest = article.origin.partition(":")
    return str(Path(path).resolve()) + sep + rest if article.origin else article.id


Progress = Callable[[int, str], None]  # (articles done, what is happening)


def ingest(inputs: Sequence[str], *, store: Store, embedder: Embedder, index: LexicalIndex,
           chunk_tokens: int = 300, overlap: int = 45, max_bytes: int = 20_000_000,
           batch_chunks: int = 256, on_progress: Progress | None = None,
           on_wait: Callable[[str], None] | None = None) -> IngestReport:
    """Ingest files, folders and globs. Each article is written whole or not at all."""
    started = time.perf_counter()
    report = IngestReport()
    files, problems = expand_paths(list(inputs))
    report.items.extend(ItemResult(p.origin, "failed", detail=p.reason) for p in problems)
    progress = on_progress or (lambda done, what: None)

    with store.write_lock(on_wait=on_wait):
        report.recovered = store.recover()
        pending: list[tuple[Article, str, str | None, list[Chunk]]] = []
        seen_in_run: dict[str, str] = {}

        def flush() -> None:
            if not pending:
                return
            texts = [c.text for _, _, _, chunks in pending for c in chunks]
            t0 = time.perf_counter()
            vectors = embedder.embed(texts)
            report.embed_seconds += time.perf_counter() - t0
            offset = 0
            for article, key, replaces, chunks in pending:
                store.add(article, key, chunks, vectors[offset: offset + len(chunks)], replaces=replaces)
                offset += len(chunks)
                status = "updated" if replaces else "new"
                report.items.append(ItemResult(article.origin, status, article.title, article.id, len(chunks)))
            pending.clear()

        try:
            for n, path in enumerate(files, 1):
                progress(n - 1, path.name)
                loaded = load_file(path, max_bytes=max_bytes)
                for problem in loaded.problems:
                    if problem.fatal:
                        report.items.append(ItemResult(problem.origin, "failed", detail=problem.reason))
                    else:
                        report.warnings.append(problem)
                for article in loaded.articles:
                    key = identity_key(article)
                    existing = store.find_by_id(article.id)
                    if existing is not None and existing.key == key:
                        report.items.append(ItemResult(article.origin, "unchanged", article.title, article.id))
                        continue
                    if existing is not None or article.id in seen_in_run:
                        # stored from elsewhere, or met earlier in this very run (a repeated record)
                        other = existing.article.origin if existing else seen_in_run[article.id]
                        report.items.append(ItemResult(article.origin, "duplicate", article.title, article.id,
                                                       detail=f"same text as {other}"))
                        continue
                    seen_in_run[article.id] = article.origin
                    chunks = chunk_article(article, chunk_tokens, overlap)
                    pending.append((article, key, store.find_by_key(key), chunks))
                    if sum(len(p[3]) for p in pending) >= batch_chunks:
                        flush()
            flush()
            progress(len(files), "done")
        except KeyboardInterrupt:
            report.interrupted = True
        finally:
            if store.generation != index.generation:
                index.build(store.chunks(), store.generation)
    report.seconds = time.perf_counter() - started
    return report


def open_index(store: Store) -> LexicalIndex:
    """The BM25 index of a store, rebuilt if the store changed since it was saved."""
    index = LexicalIndex(store.home / "bm25" / store.name)
    if not index.load() or index.generation != store.generation:
        index.build(store.chunks(), store.generation)
    return index
