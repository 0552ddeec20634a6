"""Shared fixtures: a real Chroma on tmp_path, the real tokenizer and the real MiniLM embedder.

Tests never touch the network: pytest-socket allows loopback only (see pyproject.toml). The fakes
(tests/fakes.py) are registered as backends named `fake` through QA_PLUGINS, for the `qa`
processes tests start too; tests/local_web.py (a web server on loopback) is a plugin of this suite.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / "eval" / "sample" / "articles"
pytest_plugins = ["tests.local_web"]


@pytest.fixture(scope="session", autouse=True)
def _no_engine_left(tmp_path_factory):
    """No test leaves a background engine running: at the end of the session, every engine process
    serving a data directory under this session's temporary base is stopped (SIGTERM, then SIGKILL)."""
    yield
    from qa.llm.engine import SERVER_MODULE

    base = str(tmp_path_factory.getbasetemp())
    left = []
    for entry in Path("/proc").iterdir() if Path("/proc/self").is_dir() else []:
        try:
            args = (entry / "cmdline").read_bytes().decode(errors="replace").split("\0")
        except (OSError, ValueError):
            continue
        if SERVER_MODULE in args and any(a.startswith(base) for a in args):
            left.append(int(entry.name))
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in left:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        time.sleep(1.0 if left else 0)


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory, monkeypatch):
    """Every test gets its own QA_HOME; no test sees the user's config or OpenAI variables."""
    home = tmp_path_factory.mktemp("qa-home")
    monkeypatch.setenv("QA_HOME", str(home))
    for name in list(os.environ):
        if name.startswith("QA_") and name != "QA_HOME" or name.startswith("OPENAI_"):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("QA_PLUGINS", "tests.fakes")  # `--llm fake`, `--embedder fake`, here and in child processes
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    from qa.settings import load_settings, prepare_environment

    prepare_environment(load_settings())
    umask = os.umask(0o022)  # a `qa` command run in-process makes files in a private home private (umask 077)
    os.umask(umask)
    yield home
    os.umask(umask)


@pytest.fixture
def home(_isolated_home) -> Path:
    return _isolated_home


@pytest.fixture(scope="session")
def embedder():
    """The real offline embedder (all-MiniLM-L6-v2 int8), loaded once per test session."""
    os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
    from qa.embeddings import MiniLMEmbedder

    return MiniLMEmbedder(threads=1)


@pytest.fixture
def fake_embedder():
    from tests.fakes import FakeEmbedder

    return FakeEmbedder()


@pytest.fixture(scope="module")
def sample_library(tmp_path_factory, embedder):
    """The twelve sample articles (store, real embedder, BM25 index) with the real embedder, ingested once for the
    module into their own data directory. Tests that change a store make one of their own."""
    from qa.ingest.pipeline import ingest
    from qa.search import Library
    from qa.search.bm25 import open_index
    from qa.store import Store

    home = tmp_path_factory.mktemp("sample-library")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TIKTOKEN_CACHE_DIR", str(home / "tiktoken"))
        store = Store(home, "articles", embedder.name, embedder.dimension)
        report = ingest([str(SAMPLE)], library=Library(store, embedder, open_index(store)))
        assert report.count("new") == 12 and not report.failed
        yield Library(store, embedder, open_index(store))
    store.close()


@pytest.fixture
def make_store(home):
    """Open (or reopen) a real Chroma-backed store on tmp_path for a given embedder."""
    from qa.store import Store

    opened = []

    def _make(embedder, collection: str = "articles"):
        store = Store(home, collection, embedder.name, embedder.dimension)
        opened.append(store)
        return store

    yield _make
    for store in opened:
        store.close()


@pytest.fixture
def index_for():
    """The BM25 index of a store as saved (what ingest is given; it brings it up to date)."""
    from qa.search.bm25 import open_index

    def _make(store):
        return open_index(store)

    return _make


@pytest.fixture
def sample_dir() -> Path:
    return SAMPLE
