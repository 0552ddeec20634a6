"""The store's integration tests, against both the embedded Chroma and a real `chroma run` server
started on loopback for this test session."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import numpy as np
import pytest

from qa.errors import QAError
from qa.ingest.pipeline import ingest
from qa.records import Chunk
from qa.search import Library
from qa.search.bm25 import open_index
from qa.store import Store


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def chroma_server(tmp_path_factory):
    exe = Path(sys.executable).with_name("chroma")
    if not exe.exists():
        exe = Path(shutil.which("chroma") or "chroma")
    port = _free_port()
    data = tmp_path_factory.mktemp("chroma-server")
    proc = subprocess.Popen(
        [str(exe), "run", "--path", str(data), "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while True:
        try:
            if httpx.get(f"{url}/api/v2/heartbeat", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.time() > deadline:
            proc.kill()
            pytest.fail(f"`chroma run` did not start on {url}")
        time.sleep(0.3)
    yield url
    proc.terminate()
    proc.wait(timeout=20)


@pytest.fixture(params=["embedded", "server"])
def open_store(request, home):
    url = request.getfixturevalue("chroma_server") if request.param == "server" else ""
    name = f"t-{uuid.uuid4().hex[:10]}"  # the server is shared by the session
    opened = []

    def _open(embedder, collection: str = name) -> Store:
        store = Store(home, collection, embedder.name, embedder.dimension, chroma_url=url)
        opened.append(store)
        return store

    yield _open
    for store in opened:
        store.close()


def test_ingest_query_and_remove(open_store, embedder, sample_dir, home):
    store = open_store(embedder)

    index = open_index(store)
    report = ingest([str(sample_dir)], library=Library(store, embedder, index))
    assert report.count("new") == 12
    assert store.vector_count() == store.chunk_count() > 12
    hits = store.dense(embedder.embed(["tram ridership in the first month"])[0], 3)
    titles = {store.find_by_id(store.chunks_by_id([cid])[0].article_id).article.title for cid, _ in hits}
    assert any("ridership" in t for t in titles)
    strike = [a.article.id for a in store.articles() if "strike" in a.article.title.lower()]
    with store.write_lock():
        assert store.remove(strike) == len(strike) > 0
    assert store.vector_ids() == {c.id for c in store.chunks()}
    assert open_index(store).size == store.chunk_count()


def test_filters_on_source_and_dates(open_store, embedder, sample_dir, home):
    from qa.search.retrieval import Filters

    store = open_store(embedder)
    ingest([str(sample_dir)], library=Library(store, embedder, open_index(store)))
    vec = embedder.embed(["Korvane strike"])[0]
    where = Filters(source="Capital Wire", since="2026-01-01").where()
    ids = [cid for cid, _ in store.dense(vec, 10, where=where)]
    arts = {store.chunks_by_id([i])[0].article_id for i in ids}
    assert ids and all(store.find_by_id(a).article.source == "Capital Wire" for a in arts)
    assert all(store.find_by_id(a).article.date >= "2026-01-01" for a in arts)


def test_rewritten_metadata_reaches_the_vectors_filters(open_store, fake_embedder):
    from dataclasses import replace

    from qa.ingest.articles import make_article
    from qa.search.retrieval import Filters

    store = open_store(fake_embedder)
    article = make_article(
        "The harbour crane strike ended on Friday. Dockers accepted the offer.",
        title="Strike ends",
        source="Port Wire",
        date="2024-02-01",
        origin="a.txt",
    )
    chunk = Chunk("c1", article.id, 0, article.text, 0, len(article.text), 12)
    with store.write_lock():
        store.add(article, "a.txt", [chunk], fake_embedder.embed([article.text]))
        store.update_metadata(replace(article, source="Harbour Times", date="2025-06-30", title="Strike over"))
    vec = fake_embedder.embed([article.text])[0]
    assert store.dense(vec, 5, where=Filters(source="Harbour Times", since="2025-06-01").where())
    assert not store.dense(vec, 5, where=Filters(source="Port Wire").where())
    assert store.find_by_id(article.id).article.title == "Strike over"


def test_crash_before_commit_is_invisible_and_recovered(open_store, fake_embedder, monkeypatch):
    from qa.chunking import chunk_article
    from qa.ingest.articles import make_article

    store = open_store(fake_embedder)
    article = make_article("A first sentence about trams. A second one about buses.", title="T", origin="x.txt")
    chunks = chunk_article(article)
    vectors = fake_embedder.embed([c.text for c in chunks])

    class Boom(Exception):
        pass

    original = store.vectors.collection.upsert

    def upsert_then_die(**kwargs):
        original(**kwargs)
        raise Boom  # the vectors are in Chroma, the catalogue has not said `ok`

    store.vectors.collection.upsert = upsert_then_die
    with pytest.raises(Boom):
        store.add(article, "x.txt", chunks, vectors)
    store.vectors.collection.upsert = original
    assert store.articles() == [] and store.chunks() == []  # nothing half-written is visible
    assert store.vector_count() == len(chunks)
    # on a server, a `pending` record may be another user's write under way: it is cleaned up only
    # once older than GRACE_MS (an hour); here, at once
    monkeypatch.setattr("qa.store.shared.GRACE_MS", -1)
    assert store.recover() == 1
    assert store.vector_count() == 0


def test_chunk_text_is_cut_by_character_offsets_beyond_ascii(open_store, fake_embedder):
    from qa.chunking import chunk_article
    from qa.ingest.articles import make_article

    store = open_store(fake_embedder)
    text = " ".join(f"Café № {n} in Zürich served 🚋 riders “on time” — ½ of them 日本語 speakers." for n in range(40))
    article = make_article(text, title="Trams", origin="u.txt")
    chunks = chunk_article(article, max_tokens=60, overlap=10)
    assert len(chunks) > 3
    store.add(article, "u.txt", chunks, fake_embedder.embed([c.text for c in chunks]))
    stored = store.chunks([article.id])
    assert [c.text for c in stored] == [article.text[c.start : c.end] for c in chunks] == [c.text for c in chunks]
    assert {c.id for c in store.chunks_by_id([chunks[2].id])} == {chunks[2].id}


def test_a_collection_refuses_another_embedder(open_store, fake_embedder):
    from tests.fakes import FakeEmbedder

    store = open_store(fake_embedder)
    store.add(*_one_article(fake_embedder))
    other = FakeEmbedder(dimension=32, name="other")
    with pytest.raises(QAError, match="was built with the embedder 'fake'"):
        open_store(other, store.name)


def _one_article(embedder):
    from qa.chunking import chunk_article
    from qa.ingest.articles import make_article

    article = make_article("Trams run every six minutes on the new line.", title="Trams", origin="t.txt")
    chunks = chunk_article(article)
    return article, "t.txt", chunks, embedder.embed([c.text for c in chunks]).astype(np.float32)


def test_unreachable_server_is_one_clear_error(home, fake_embedder):
    port = _free_port()  # nothing listens there
    with pytest.raises(QAError, match="Cannot open the Chroma store"):
        Store(home, "articles", fake_embedder.name, fake_embedder.dimension, chroma_url=f"http://127.0.0.1:{port}")
