"""The lexical index in the catalogue (qa/store/lexicon.py): it ranks as bm25s did, grows and shrinks
without a rebuild (the same scores as an index built afresh, through merges and purges), and
moves in the catalogue's own transactions."""

from __future__ import annotations

import sqlite3

import pytest

from qa.ingest.pipeline import ingest
from qa.search import Library
from qa.search.bm25 import open_index
from qa.store import lexicon
from qa.terms import terms

QUERIES = (
    "What pay rise did the Brakemoor workers accept?",
    "tram ridership first month",
    "drought farmers water prices",
    "Who chairs the harbour authority and what did the council vote?",
    "strike strike union",  # a word twice counts twice, as in bm25s
    "zzzz nothing matches",
)


def fresh_index(chunks: list[tuple[str, str]]) -> sqlite3.Connection:
    db = sqlite3.connect(":memory:", isolation_level=None)
    db.execute("CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT)")
    lexicon.create(db)
    lexicon.clear(db)
    lexicon.add(db, chunks)
    return db


def test_it_ranks_as_bm25s_did(sample_library):
    """The scores bm25s gave (Lucene BM25, k1 1.5, b 0.75) over the same terms, to float precision."""
    import bm25s  # a dev dependency: qa itself no longer uses it

    store = sample_library.store
    chunks = store.chunks()
    corpus = [terms(c.text) or ["_empty_"] for c in chunks]
    vocabulary = {t for doc in corpus for t in doc}
    model = bm25s.BM25()
    model.index(corpus, show_progress=False)
    index = open_index(store)
    for query in QUERIES:
        words = [t for t in terms(query) if t in vocabulary]
        scores = model.get_scores(words) if words else [0.0] * len(chunks)
        expected = {c.id: float(s) for c, s in zip(chunks, scores, strict=True) if s > 0}
        got = dict(index.search(query, len(chunks)))
        assert got.keys() == expected.keys(), query
        assert all(abs(got[k] - expected[k]) < 1e-5 for k in got), query
    assert index.search("zzzz nothing matches", 5) == []


def test_growing_and_shrinking_gives_the_scores_of_an_index_built_afresh(sample_library, monkeypatch):
    """Many small writes, merges (FANOUT 2) and purges (any removal) end where one build would."""
    monkeypatch.setattr(lexicon, "FANOUT", 2)
    monkeypatch.setattr(lexicon, "PURGE_SHARE", 0.0)
    chunks = [(c.id, c.text) for c in sample_library.store.chunks()]
    db = fresh_index([])
    for b in range(0, len(chunks), 3):
        lexicon.add(db, chunks[b : b + 3])
    assert db.execute("SELECT COUNT(*) FROM lexicon_segments").fetchone()[0] < len(chunks) / 3  # merged
    gone = chunks[::4]
    lexicon.remove(db, gone[: len(gone) // 2])
    lexicon.remove(db, gone[len(gone) // 2 :])
    lexicon.add(db, chunks[1:2])  # already indexed: kept as it is
    kept = [c for c in chunks if c not in gone]
    rebuilt = fresh_index(kept)
    for query in QUERIES:
        a, b = lexicon.search(db, terms(query), 50), lexicon.search(rebuilt, terms(query), 50)
        assert [x[0] for x in a] == [x[0] for x in b], query
        assert all(abs(x[1] - y[1]) < 1e-9 for x, y in zip(a, b, strict=True)), query
    assert lexicon.chunk_ids(db) == {c[0] for c in kept}
    assert lexicon.document_frequencies(db, ["strike"]) == lexicon.document_frequencies(rebuilt, ["strike"])
    assert db.execute("SELECT COUNT(*) FROM lexicon_dead").fetchone()[0] == 0  # purged as it went
    lexicon.remove(db, kept)
    assert lexicon.size(db) == 0 and lexicon.search(db, ["strike"], 5) == []


def test_ties_are_broken_by_chunk_id(fake_embedder):
    text = "The harbour strike ended on Friday after talks."
    db = fresh_index([("b-0001", text), ("a-0001", text), ("c-0001", text + " Harbour again.")])
    assert [cid for cid, _ in lexicon.search(db, terms("harbour strike"), 2)] == ["c-0001", "a-0001"]


def test_the_index_moves_with_the_catalogue_transaction(make_store, fake_embedder, sample_dir, monkeypatch):
    """A failure while an article is made visible leaves both the catalogue and the index as they were."""
    store = make_store(fake_embedder)
    library = Library(store, fake_embedder, open_index(store))
    ingest([str(sample_dir / "korvane-strike-ends.md")], library=library)
    before = store.lexicon_chunk_ids()
    assert before == {c.id for c in store.chunks()}

    def broken(db, chunks):
        raise RuntimeError("disk full")

    monkeypatch.setattr(lexicon, "add", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        ingest([str(sample_dir)], library=library)
    monkeypatch.undo()
    assert store.lexicon_chunk_ids() == before == {c.id for c in store.chunks()}
    report = ingest([str(sample_dir)], library=library)  # recovers, then writes them again
    assert report.recovered > 0 and store.lexicon_chunk_ids() == {c.id for c in store.chunks()}
    with store.write_lock():
        store.remove([a.article.id for a in store.articles()][:3])
    assert store.lexicon_chunk_ids() == {c.id for c in store.chunks()}


def test_chunks_with_no_indexable_words_are_stored_and_found_by_nothing():
    """Arabic text has no words the ASCII analyser indexes: the chunk is counted, with no postings."""
    db = fresh_index([("ar-1", "طالبت النقابة بزيادة في الأجور."), ("en-1", "The union demanded a pay rise.")])
    assert db.execute("SELECT count(*) FROM lexicon_docs").fetchone()[0] == 2
    alone = fresh_index([("ar-1", "طالبت النقابة بزيادة في الأجور.")])
    assert alone.execute("SELECT count(*) FROM lexicon_terms").fetchone()[0] == 0
