"""The composition root: the one place that turns settings into parts.

- `open_library(settings)`: a collection's store, the embedder it was built with and its BM25
  index, together (`open_store` alone for catalogue work that needs no embedder);
- `make_llm(settings)`: the model, or None for `extractive` (answers are then the best cited
  sentences, with no model);
- `ask_options(settings)`: the options of an answer.

The CLI and the eval and bench scripts build their parts here and pass them down; nothing
below this module reads settings. Backends beyond the built-in ones come from the modules
named in the `plugins` setting (QA_PLUGINS, comma-separated), each of whose `register(backends)`
adds factories by name; the test suite adds its deterministic fakes so (tests/fakes.py).
"""

from __future__ import annotations

import importlib
import importlib.util
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING

from .answer import AskOptions
from .embeddings import MINILM, Embedder
from .errors import QAError, UsageError
from .ingest.articles import normalise_date
from .llm import EXTRACTIVE, LLM
from .search import Library
from .search.bm25 import open_index
from .search.retrieval import Filters, RetrievalOptions
from .settings import Settings
from .store import Store
from .tokens import encoding

if TYPE_CHECKING:
    from .ingest.fetch import Fetcher

EMPTY = "The store is empty: add articles first with `qa ingest PATH`."
_BUILT_IN_LLM = re.compile(r"^(local(:[\w.\-]+)?|extractive|openai:.+)$")


@dataclass
class Backends:
    """Factories by name beyond the built-in backends: what a plugin's `register(backends)` adds to."""

    embedders: dict[str, Callable[[Settings], Embedder]] = field(default_factory=dict)
    llms: dict[str, Callable[[Settings], LLM]] = field(default_factory=dict)


@lru_cache(maxsize=8)
def _plugins(names: str) -> Backends:
    found = Backends()
    for name in filter(None, (n.strip() for n in names.split(","))):
        try:
            module = importlib.import_module(name)
        except ImportError as exc:
            raise QAError(f"The plugin module {name!r} (QA_PLUGINS) cannot be imported ({exc}).") from None
        module.register(found)
    return found


def backends(settings: Settings) -> Backends:
    """The backends the plugins of `settings.plugins` add (none by default)."""
    return _plugins(settings.plugins)


def make_embedder(settings: Settings) -> Embedder:
    """`minilm` (the packaged offline model), `openai:MODEL`, or a plugin's embedder."""
    spec = settings.embedder
    if spec in ("minilm", MINILM):
        from .embeddings import MiniLMEmbedder

        return MiniLMEmbedder(threads=settings.threads)
    if spec.startswith("openai:"):
        from .embeddings import OpenAIEmbedder

        return OpenAIEmbedder(spec.split(":", 1)[1])
    extra = backends(settings).embedders.get(spec)
    if extra is not None:
        return extra(settings)
    raise QAError(f"Unknown embedder {spec!r}; use 'minilm' (the offline default) or 'openai:MODEL'.")


def open_store(settings: Settings, embedder: Embedder | None = None) -> Store:
    """The collection's store; without an embedder, for catalogue work only (list, remove, check)."""
    return Store(
        settings.home,
        settings.collection,
        embedder.name if embedder else None,
        embedder.dimension if embedder else 0,
        chroma_url=settings.chroma_url,
        chroma_token=settings.chroma_token,
    )


def _warm_up() -> None:
    importlib.import_module("chromadb")
    encoding()


def open_library(
    settings: Settings, *, embedder: Embedder | None = None, ingesting: bool = False, empty: str = EMPTY
) -> Library:
    """The store, embedder and BM25 index of the collection. For reading (the default) an empty
    store is an error with the message `empty`; for ingesting it may be empty."""
    # chromadb's import and the tokenizer's tables (~0.7 s of Python together) are made ready beside
    # the embedder's start (ONNX, native code): what a user waits before the sources appear
    # (bench/answer.py)
    importing = threading.Thread(target=_warm_up, daemon=True)
    importing.start()
    embedder = embedder or make_embedder(settings)
    importing.join()
    store = open_store(settings, embedder)
    if not ingesting and store.chunk_count() == 0:
        raise QAError(empty)
    return Library(store, embedder, open_index(store))


def is_known_llm(settings: Settings, spec: str) -> bool:
    """Whether `make_llm` knows the backend `spec` names (checked before a model loads in the background)."""
    return bool(_BUILT_IN_LLM.match(spec)) or spec in backends(settings).llms


def make_llm(
    settings: Settings,
    *,
    on_progress: Callable[[int, int], None] | None = None,
    on_starting: Callable[[], None] | None = None,
) -> LLM | None:
    """The model `settings.llm` names (`local[:qwen|smollm2]`, `openai:MODEL`, a plugin's); None for
    `extractive`. Auto (no setting): openai when a key or base URL is set, else local.
    The local model runs in the background engine shared by commands (`engine = background`, the
    default), or in this process (`in-process`). `on_progress(bytes done, total)` follows the
    model's assembly on first use; `on_starting()` is called before the engine loads the model."""
    spec = settings.resolved_llm()
    if spec == EXTRACTIVE:
        return None
    if spec == "local" or spec.startswith("local:"):
        model = spec.partition(":")[2] or "qwen"
        timeout = max(settings.timeout, 300.0)
        if background_engine(settings):
            from .llm.engine_chat import engine_llm

            return engine_llm(
                model,
                settings.models_dir,
                settings.engine_dir,
                threads=settings.threads,
                idle=settings.engine_idle,
                timeout=timeout,
                on_progress=on_progress,
                on_starting=on_starting,
            )
        from .llm.local import local_llm

        return local_llm(model, settings.models_dir, settings.threads, timeout, on_progress)
    if spec.startswith("openai:") and spec[7:]:
        from .llm.openai_chat import OpenAIChat

        return OpenAIChat(spec[7:], timeout=settings.timeout)
    extra = backends(settings).llms.get(spec)
    if extra is not None:
        return extra(settings)
    raise UsageError(f"Unknown LLM {spec!r}; use local, openai:MODEL or extractive.")


def background_engine(settings: Settings) -> bool:
    """Whether the local model runs in the background engine (`engine` setting), where the system
    allows it (it needs fcntl locks: POSIX)."""
    if settings.engine not in ("background", "in-process"):
        raise QAError(f"Setting engine must be 'background' or 'in-process', not {settings.engine!r}.")
    return settings.engine == "background" and importlib.util.find_spec("fcntl") is not None


def make_fetcher(settings: Settings) -> Fetcher:
    """The web client of `qa ingest URL` and `qa feeds`, with the fetch limits of the settings."""
    from .ingest.fetch import Fetcher, limits_from

    return Fetcher(limits_from(settings.fetch_timeout, settings.fetch_max_mb, settings.fetch_max_redirects))


def checked_date(name: str, value: str) -> str:
    """A date option or setting as an ISO date ("" when not given); one that cannot be read is a usage error."""
    if value and not normalise_date(value):
        raise UsageError(f"{name} needs a date like 2024-02-26, not {value!r}.")
    return normalise_date(value)


def ask_options(settings: Settings, *, filters: Filters = Filters(), mode: str = "hybrid") -> AskOptions:
    """The options of an answer from settings: retrieval knobs, answer length, temperature, and the
    date questions are asked on (`as_of`; unset, the model is told no date: telling it today's date
    by default was measured on RealTimeQA and gained nothing, eval/RESULTS.md)."""
    retrieval = RetrievalOptions(
        budget=settings.budget, k=settings.k, per_article=settings.per_article, filters=filters, mode=mode
    )
    return AskOptions(
        retrieval=retrieval,
        max_tokens=settings.max_answer_tokens,
        temperature=settings.temperature,
        today=checked_date("--as-of (QA_AS_OF)", settings.as_of),
    )
