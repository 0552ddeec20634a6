"""Shared fixtures: a real Chroma on tmp_path, the real tokenizer and the real MiniLM embedder.

Tests never touch the network: pytest-socket allows loopback only (see pyproject.toml).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / "eval" / "sample" / "articles"


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory, monkeypatch):
    """Every test gets its own QA_HOME; no test sees the user's config or OpenAI variables."""
    home = tmp_path_factory.mktemp("qa-home")
    monkeypatch.setenv("QA_HOME", str(home))
    for name in list(os.environ):
        if name.startswith("QA_") and name != "QA_HOME" or name.startswith("OPENAI_"):
            monkeypatch.delenv(name, raising=False)
    from qa.settings import load_settings, prepare_environment

    prepare_environment(load_settings())
    yield home


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
    from qa.embeddings import FakeEmbedder

    return FakeEmbedder()


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
def index_for(home):
    from qa.search.bm25 import LexicalIndex

    def _make(store):
        return LexicalIndex(home / "bm25" / store.name)

    return _make


@pytest.fixture
def sample_dir() -> Path:
    return SAMPLE
