"""Ingest: load -> identify (new, changed, unchanged, duplicate) -> chunk -> embed -> store (which indexes).

The embedder sees each sentence once: sentence vectors are kept for choosing context at
question time, and a chunk's vector is the normalised mean of its sentences' vectors.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..chunking import chunk_article, chunk_vectors, sentence_units
from ..records import Article, Chunk
from ..search import Library
from ..store import NewArticle
from .loaders import Loaded, LoadProblem, expand_paths, load_file
from .near_dupes import NearDuplicates

if TYPE_CHECKING:
    from .fetch import Fetcher

STATUSES = ("new", "updated", "unchanged", "duplicate", "failed")
# What re-ingesting the same article (same text, same key) rewrites when it differs.
METADATA = ("title", "source", "date", "url", "author")

# Bumped when what ingest stores for the same files changes (2: sentence vectors kept, chunk
# vectors from them; 3: a full stop after an abbreviation such as "U.S." no longer ends a
# sentence), so cached eval collections built by older code are not reused.
STORE_FORMAT = 3


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


@dataclass(frozen=True)
class Progress:
    """Where an ingest is: articles dealt with of those known (an input not read yet counts as one,
    so `total` is an estimate until the last input is read), the input being read, and while a batch
    is embedded, its sentences embedded so far of all (what a single huge article shows)."""

    done: int
    total: int
    what: str
    sentences: int = 0
    of_sentences: int = 0


ArticleProgress = Callable[[Progress], None]
EMBED_SLICE = 1024  # sentences embedded between two progress reports


@dataclass(frozen=True)
class Source:
    """An input: a name for progress, how to load it, and what a failure is reported as (the name
    when not given)."""

    name: str
    load: Callable[[], Loaded]
    origin: str = ""


def _sources(
    inputs: Sequence[str | Source], max_bytes: int, fetcher: Fetcher | None
) -> tuple[list[Source], list[LoadProblem]]:
    """Paths, folders and globs become files to load; http(s) URLs are fetched; Sources pass through."""
    from .fetch import Fetcher, is_url, load_url

    files, problems = expand_paths([i for i in inputs if isinstance(i, str) and not is_url(i)])
    sources = [Source(str(f), partial(load_file, f, max_bytes=max_bytes)) for f in files]
    for item in inputs:
        if isinstance(item, Source):
            sources.append(item)
        elif is_url(item):
            fetcher = fetcher or Fetcher()
            sources.append(Source(item, partial(load_url, item, fetcher=fetcher)))
    return sources, problems


def _load(source: Source) -> Loaded:
    """One input's articles; a loader that fails in a way nobody foresaw (a library missing, a parser
    bug) fails that input alone, in one line, and the others are still ingested."""
    try:
        return source.load()
    except Exception as exc:
        reason = (str(exc).strip().splitlines() or [""])[0][:200]
        return Loaded(
            [], [LoadProblem(source.origin or source.name, f"could not be read ({exc.__class__.__name__}: {reason})")]
        )


def ingest(
    inputs: Sequence[str | Source],
    *,
    library: Library,
    chunk_tokens: int = 300,
    overlap: int = 45,
    max_bytes: int = 20_000_000,
    batch_chunks: int = 256,
    on_progress: ArticleProgress | None = None,
    on_wait: Callable[[str], None] | None = None,
    fetcher: Fetcher | None = None,
    near_duplicates: float = 0.7,
) -> IngestReport:
    """Ingest files, folders, globs and http(s) URLs. Each article is written whole or not at all.
    A near-copy of a stored article (shingle Jaccard >= near_duplicates; 0 = off) becomes another source of it."""
    started = time.perf_counter()
    store, embedder = library.store, library.embedder
    report = IngestReport()
    sources, problems = _sources(inputs, max_bytes, fetcher)
    report.items.extend(ItemResult(p.origin, "failed", detail=p.reason) for p in problems if p.fatal)
    report.warnings.extend(p for p in problems if not p.fatal)  # e.g. a link out of a folder, not followed
    tell = on_progress or (lambda progress: None)
    done, total, what = 0, len(sources), ""

    with store.write_lock(on_wait=on_wait):
        report.recovered = store.recover()
        near = NearDuplicates(store, near_duplicates)
        pending: list[tuple[Article, str, str | None, list[Chunk], list[tuple[int, int]]]] = []
        seen_in_run: dict[str, str] = {}
        unchanged: dict[str, tuple[Article, str]] = {}  # checked against the vectors at the end
        restoring: set[str] = set()

        def prepare(article: Article, key: str, replaces: str | None) -> None:
            units = sentence_units(article.text, chunk_tokens)
            chunks = chunk_article(article, chunk_tokens, overlap, units=units)
            pending.append((article, key, replaces, chunks, [(a, b) for a, b, _ in units]))
            if sum(len(p[3]) for p in pending) >= batch_chunks:
                flush()

        def flush() -> None:
            if not pending:
                return
            texts = [article.text[a:b] for article, _, _, _, spans in pending for a, b in spans]
            t0 = time.perf_counter()
            parts = []
            for start in range(0, len(texts), EMBED_SLICE):
                if len(texts) > EMBED_SLICE:
                    tell(Progress(done, total, what, start, len(texts)))
                parts.append(embedder.embed(texts[start : start + EMBED_SLICE]))
            vectors = np.concatenate(parts) if len(parts) > 1 else parts[0]
            report.embed_seconds += time.perf_counter() - t0
            items, offset = [], 0
            for article, key, replaces, chunks, spans in pending:
                own = vectors[offset : offset + len(spans)]
                offset += len(spans)
                vecs = chunk_vectors(chunks, spans, own)
                signature = near.take_signature(article.id)
                items.append(NewArticle(article, key, chunks, vecs, spans, own, replaces, signature=signature))
            store.add_many(items)
            for article, _, replaces, chunks, _ in pending:
                if replaces and replaces != article.id:
                    near.forget(replaces)
                if article.id in restoring:
                    status, detail = "updated", "its vectors were missing from the store; written again"
                else:
                    status, detail = ("updated" if replaces else "new"), ""
                report.items.append(ItemResult(article.origin, status, article.title, article.id, len(chunks), detail))
            pending.clear()

        def record_copy(kept_id: str, article: Article, key: str) -> None:
            waiting = [p for p in pending if p[0].id == kept_id]
            if waiting and waiting[0][1] == key:
                return  # the same report met twice in this run, not another source
            if waiting:
                flush()  # a copy is recorded against a stored article only
            store.add_also_reported(kept_id, key, article)

        try:
            for source in sources:
                what = source.name
                tell(Progress(done, total, what))
                loaded = _load(source)
                total += len(loaded.articles) - 1  # the input's own articles in place of its one
                for problem in loaded.problems:
                    if problem.fatal:
                        report.items.append(ItemResult(problem.origin, "failed", detail=problem.reason))
                    else:
                        report.warnings.append(problem)
                for article in loaded.articles:
                    done += 1
                    key = identity_key(article)
                    if article.id in seen_in_run:
                        # the same text met earlier in this run (a repeated record, or one story under two
                        # titles): the first one read stands, or each run would rewrite it back and forth
                        first = seen_in_run[article.id]
                        report.items.append(
                            ItemResult(
                                article.origin, "duplicate", article.title, article.id, detail=f"same text as {first}"
                            )
                        )
                        record_copy(article.id, article, key)
                        continue
                    seen_in_run[article.id] = article.origin
                    existing = store.find_by_id(article.id)
                    if existing is not None and existing.key == key:
                        changed = [f for f in METADATA if getattr(existing.article, f) != getattr(article, f)]
                        if changed:  # the same text with a corrected title, date, ...: no re-embedding
                            store.update_metadata(article)
                            report.items.append(
                                ItemResult(
                                    article.origin,
                                    "updated",
                                    article.title,
                                    article.id,
                                    detail="new " + ", ".join(changed),
                                )
                            )
                        else:
                            unchanged[article.id] = (article, key)
                            report.items.append(ItemResult(article.origin, "unchanged", article.title, article.id))
                        continue
                    if existing is not None:  # stored from elsewhere
                        other = existing.article.origin
                        report.items.append(
                            ItemResult(
                                article.origin, "duplicate", article.title, article.id, detail=f"same text as {other}"
                            )
                        )
                        record_copy(article.id, article, key)
                        continue
                    replaces = store.find_by_key(key)
                    copied = near.match(article.id, article.text, exclude=[replaces])
                    if copied is not None:
                        record_copy(copied[0], article, key)
                        kept = store.find_by_id(copied[0])
                        report.items.append(
                            ItemResult(
                                article.origin,
                                "duplicate",
                                article.title,
                                copied[0],
                                detail=f"near-copy of {kept.article.origin if kept else copied[0]} "
                                f"({copied[1]:.0%} alike), listed as another source of it",
                            )
                        )
                        continue
                    prepare(article, key, replaces)
            # "unchanged" is not taken on trust: an article whose vectors are gone (removed by
            # another user of a shared store, a damaged store) is written again
            restoring.update(store.incomplete(list(unchanged)))
            report.items = [i for i in report.items if not (i.status == "unchanged" and i.article_id in restoring)]
            for article_id in sorted(restoring):
                article, key = unchanged[article_id]
                prepare(article, key, article_id)
            flush()
            tell(Progress(done, total, "done"))
        except KeyboardInterrupt:
            report.interrupted = True
    report.seconds = time.perf_counter() - started
    return report
