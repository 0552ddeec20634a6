"""Retrieval is a function of the store's contents: the process that ingested a collection and any
later one get the same hits, scores and passages; ties come in id order, not in whatever order
the HNSW graph (built by several threads) happens to yield them."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np

from tests.conftest import REPO, SAMPLE

QUESTIONS = (
    "What pay rise did Korvane's Brakemoor workers accept to end their strike?",
    "How many riders used the new tram line in its first month?",
    "What did the union demand?",
    "Who met to discuss the harbour?",
)

SCRIPT = """
import json, sys
from qa.library import open_library
from qa.settings import load_settings, prepare_environment
from qa.search.retrieval import RetrievalOptions, retrieve

settings = load_settings({"embedder": "minilm"})
prepare_environment(settings)
library = open_library(settings, ingesting=True)
if sys.argv[1] == "ingest":
    from qa.ingest.pipeline import ingest
    ingest([sys.argv[2]], library=library)
out = []
for question in json.loads(sys.argv[3]):
    for mode in ("hybrid", "dense", "bm25"):
        got = retrieve(question, library=library, options=RetrievalOptions(mode=mode, k=10, budget=600))
        out.append({
            "hits": [[h.chunk.id, round(h.score, 12)] for h in got.hits],
            "passages": [[p.article_id, p.start, p.end, round(p.score, 9)] for p in got.passages],
        })
print(json.dumps(out))
"""


def _retrieve_in_a_process(step: str) -> list:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, step, str(SAMPLE), json.dumps(QUESTIONS)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_fresh_process_retrieves_what_the_ingesting_process_did(home):
    ingesting = _retrieve_in_a_process("ingest")
    later = _retrieve_in_a_process("query")
    assert any(r["hits"] for r in ingesting) and any(r["passages"] for r in ingesting)
    assert later == ingesting
    assert _retrieve_in_a_process("query") == ingesting


def test_equally_near_chunks_come_in_id_order(make_store, fake_embedder):
    """Copies of one vector under many ids: HNSW yields them in its own order, qa in id order."""
    from qa.ingest.articles import make_article
    from qa.records import Chunk
    from qa.store import NewArticle

    store = make_store(fake_embedder)
    rng = np.random.default_rng(3)
    shared = fake_embedder.embed(["the one vector every copy has"])[0]
    items = []
    for n in rng.permutation(40):
        article = make_article(f"Copy number {n} of the story.", title=f"Copy {n}", origin=f"c{n}.txt")
        chunk = Chunk(f"{article.id}-0000", article.id, 0, article.text, 0, len(article.text), 6)
        items.append(NewArticle(article, f"c{n}.txt", [chunk], shared.reshape(1, -1)))
    with store.write_lock():
        store.add_many(items)
    got = store.dense(shared, 25)
    assert len(got) == 25
    assert [cid for cid, _ in got] == sorted(cid for cid, _ in got)
    assert [cid for cid, _ in got] == sorted(i.chunks[0].id for i in items)[:25]


def test_collections_search_broadly_old_ones_included(home, fake_embedder):
    """A collection from before the setting gets the wider HNSW search when it is opened."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    from qa.store import Store
    from qa.store.vectors import SEARCH_EF

    client = chromadb.PersistentClient(path=str(home / "chroma"), settings=ChromaSettings(anonymized_telemetry=False))
    meta = {"embedder": fake_embedder.name, "dimension": fake_embedder.dimension, "hnsw:space": "cosine"}
    old = client.create_collection("articles", embedding_function=None, metadata=meta)
    assert old.configuration_json["hnsw"]["ef_search"] < SEARCH_EF
    store = Store(home, "articles", fake_embedder.name, fake_embedder.dimension)
    assert store.vectors.collection.configuration_json["hnsw"]["ef_search"] == SEARCH_EF
    new = Store(home, "other", fake_embedder.name, fake_embedder.dimension)
    assert new.vectors.collection.configuration_json["hnsw"]["ef_search"] == SEARCH_EF
    store.close()
    new.close()
