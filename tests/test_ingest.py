"""Ingest and the store, on a real Chroma in tmp_path: new / unchanged / updated / duplicate,
removal everywhere, embedder mismatch, and crash safety (nothing half-written is ever visible)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from qa.doctor import store_checks
from qa.errors import QAError
from qa.ingest.articles import make_article
from qa.ingest.pipeline import identity_key, ingest
from qa.search import Library
from qa.search.bm25 import open_index
from tests.fakes import FakeEmbedder

WORDS = (
    "council budget tram harbour strike union vote drought rain farmers minister bridge port engineers "
    "cost delay reported Tuesday million euros workers said plan city region water prices rose"
).split()


def long_body(seed: int, sentences: int = 60, extra: str = "") -> str:
    import random

    rng = random.Random(seed)
    out = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(8, 20))).capitalize() + "." for _ in range(sentences)]
    return " ".join(out) + (" " + extra if extra else "")


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def news(folder: Path, n: int = 3, sentences: int = 6) -> list[Path]:
    return [
        write(
            folder / f"a{i:02d}.txt",
            f"Headline {i}\nSource: Wire {i % 2}\nDate: 2024-02-{i + 1:02d}\n\n"
            + long_body(i, sentences, extra=f"Marker{i} closes the story."),
        )
        for i in range(n)
    ]


@pytest.fixture
def env(make_store, index_for, fake_embedder):
    """A store, its BM25 index and a run() that ingests with them."""
    store = make_store(fake_embedder)
    index = index_for(store)

    class Env:
        def run(self, *paths, **kw):
            return ingest(
                [str(p) for p in paths], library=Library(store, kw.pop("embedder", fake_embedder), index), **kw
            )

    e = Env()
    e.store, e.index, e.embedder = store, index, fake_embedder
    return e


def consistent(store, index) -> dict[str, bool]:
    return {c.component: c.ok for c in store_checks(store)}


def assert_consistent(store, index) -> None:
    checks = consistent(store, index)
    assert all(checks.values()), checks
    chunk_ids = [c.id for c in store.chunks()]
    assert len(chunk_ids) == len(set(chunk_ids)) == store.vector_count() == store.chunk_count()


# ---- new, unchanged, updated, duplicate ------------------------------------------------------


def test_first_ingest_stores_everything(env, tmp_path):
    news(tmp_path / "in", 3, sentences=40)
    report = env.run(tmp_path / "in")
    assert [report.count(s) for s in ("new", "updated", "unchanged", "duplicate", "failed")] == [3, 0, 0, 0, 0]
    stored = env.store.articles()
    assert len(stored) == 3 and all(a.chunks >= 2 for a in stored)
    assert report.chunks_added == env.store.chunk_count() == env.store.vector_count() == env.index.size
    assert {a.article.date for a in stored} == {"2024-02-01", "2024-02-02", "2024-02-03"}
    assert_consistent(env.store, env.index)
    # chunks read back from the catalogue are exact slices of the stored text
    texts = {a.article.id: a.article.text for a in stored}
    for c in env.store.chunks():
        assert texts[c.article_id][c.start : c.end] == c.text


def test_reingesting_unchanged_articles_adds_nothing(env, tmp_path):
    news(tmp_path / "in", 3)
    env.run(tmp_path / "in")
    generation, vectors = env.store.generation, env.store.vector_ids()
    report = env.run(tmp_path / "in")
    assert report.count("unchanged") == 3 and report.count("new") == 0 and report.chunks_added == 0
    assert env.store.generation == generation and env.store.vector_ids() == vectors
    assert_consistent(env.store, env.index)


def test_whitespace_and_case_edits_keep_the_article_unchanged(env, tmp_path):
    (path,) = news(tmp_path / "in", 1)
    env.run(path)
    head, body = path.read_text().split("\n\n", 1)
    path.write_text(head + "\n\n" + body.replace(" ", "   ").upper() + "\n\n\n")
    report = env.run(path)
    assert report.count("unchanged") == 1 and report.chunks_added == 0


def test_corrected_title_and_date_are_rewritten_without_re_embedding(env, tmp_path):
    from qa.search.retrieval import Filters

    (path,) = news(tmp_path / "in", 1)
    env.run(path)
    generation, vectors = env.store.generation, env.store.vector_ids()
    body = path.read_text().split("\n\n", 1)[1]
    path.write_text("Headline, corrected\nSource: Wire 9\nDate: 2025-03-04\n\n" + body)
    report = env.run(path)
    assert report.count("updated") == 1 and report.chunks_added == 0
    assert report.items[0].detail == "new title, source, date"
    (stored,) = env.store.articles()
    assert (stored.article.title, stored.article.source, stored.article.date) == (
        "Headline, corrected",
        "Wire 9",
        "2025-03-04",
    )
    assert env.store.vector_ids() == vectors and env.store.generation == generation  # nothing re-embedded
    # the vectors' filter fields moved too: a date or source filter in Chroma finds the article
    query = env.embedder.embed(["council budget"])[0]
    assert env.store.dense(query, 5, where=Filters(since="2025-01-01", source="Wire 9").where())
    assert not env.store.dense(query, 5, where=Filters(until="2024-12-31").where())
    assert env.run(path).count("unchanged") == 1
    assert_consistent(env.store, env.index)


def test_changed_article_replaces_its_old_chunks(env, tmp_path):
    path = write(tmp_path / "story.txt", "Story\n\n" + long_body(1, 50, extra="Zeppelin sightings were reported."))
    env.run(path)
    (old,) = env.store.articles()
    old_chunk_ids = {c.id for c in env.store.chunks()}
    assert old.chunks >= 3 and old_chunk_ids <= env.store.vector_ids()
    assert env.index.search("zeppelin", 5)

    path.write_text("Story\n\n" + long_body(2, 20, extra="Hovercraft trials began."))
    report = env.run(path)
    assert report.count("updated") == 1 and report.count("new") == 0
    (new,) = env.store.articles()
    assert new.article.id != old.article.id and new.key == old.key
    new_chunk_ids = {c.id for c in env.store.chunks()}
    assert not old_chunk_ids & env.store.vector_ids()  # old vectors gone from Chroma
    assert env.store.vector_ids() == new_chunk_ids and env.store.chunk_count() == new.chunks
    assert env.store.find_by_id(old.article.id) is None
    assert env.index.search("zeppelin", 5) == [] and env.index.search("hovercraft", 5)
    assert_consistent(env.store, env.index)


def test_same_url_from_another_file_is_an_update(env, tmp_path):
    url = "https://wire.test/story"
    env.run(write(tmp_path / "v1.md", f"---\ntitle: Story\nurl: {url}\n---\n" + long_body(1, 5)))
    report = env.run(write(tmp_path / "v2.md", f"---\ntitle: Story (corrected)\nurl: {url}\n---\n" + long_body(2, 5)))
    assert report.count("updated") == 1
    assert [a.article.title for a in env.store.articles()] == ["Story (corrected)"]
    assert_consistent(env.store, env.index)


def test_exact_duplicate_under_another_path_is_not_stored_twice(env, tmp_path):
    (original,) = news(tmp_path / "in", 1)
    env.run(original)
    chunks = env.store.chunk_count()
    copy = write(tmp_path / "elsewhere" / "copy.txt", original.read_text())
    report = env.run(copy)
    (item,) = report.items
    assert item.status == "duplicate" and str(original) in item.detail
    assert len(env.store.articles()) == 1 and env.store.chunk_count() == chunks == env.store.vector_count()


def test_duplicates_within_one_run(env, tmp_path):
    (original,) = news(tmp_path / "in", 1)
    write(tmp_path / "in" / "zz-copy.txt", original.read_text())
    report = env.run(tmp_path / "in")
    assert {Path(i.origin).name: i.status for i in report.items} == {"a00.txt": "new", "zz-copy.txt": "duplicate"}
    assert len(env.store.articles()) == 1
    assert_consistent(env.store, env.index)


def test_repeated_search_results_in_one_run_are_duplicates_not_unchanged(env, tmp_path):
    # RealTimeQA repeats the same search result under several questions of one file.
    result = {"url": "https://wire.test/x", "title": "X", "text": long_body(3, 4), "publish_date": "2023/01/05"}
    lines = [{"question_id": f"q{i}", "search_result": [result]} for i in range(3)]
    path = write(tmp_path / "week_gcs.jsonl", "\n".join(json.dumps(line) for line in lines))
    report = env.run(path)
    assert {i.origin.rsplit(":", 1)[1]: i.status for i in report.items} == {
        "1[0]": "new",
        "2[0]": "duplicate",
        "3[0]": "duplicate",
    }
    assert len(env.store.articles()) == 1
    again = env.run(path)  # counts that add up to what is stored: one unchanged, the repeats duplicates
    assert again.count("unchanged") == 1 and again.count("duplicate") == 2 and again.count("new") == 0
    assert again.chunks_added == 0


def test_failures_are_reported_and_the_rest_is_ingested(env, tmp_path):
    news(tmp_path / "in", 2)
    write(tmp_path / "in" / "empty.txt", "")
    write(tmp_path / "in" / "recs.jsonl", '{"text": "A good record here."}\n{oops\n')
    report = env.run(tmp_path / "in", tmp_path / "nope.txt", tmp_path / "*.none")
    failed = {Path(i.origin).name: i.detail for i in report.failed}
    assert failed == {
        "nope.txt": "no such file or folder",
        "*.none": "no file matches this pattern",
        "empty.txt": "file is empty",
        "recs.jsonl:2": failed["recs.jsonl:2"],
    }
    assert "line 2" in failed["recs.jsonl:2"]
    assert report.count("new") == 3 and len(env.store.articles()) == 3


def test_identity_key_prefers_the_url_then_the_resolved_origin(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert identity_key(make_article("x", url="https://a.test/1", origin="a.txt")) == "https://a.test/1"
    assert identity_key(make_article("x", origin="sub/a.txt")) == str(tmp_path / "sub" / "a.txt")
    assert identity_key(make_article("x", origin="f.jsonl:3[1]")) == str(tmp_path / "f.jsonl") + ":3[1]"


# ---- removal ------------------------------------------------------------------------------


def test_remove_deletes_vectors_rows_and_bm25_entries(env, tmp_path):
    news(tmp_path / "in", 3)
    env.run(tmp_path / "in")
    gone = next(a for a in env.store.articles() if a.article.title == "Headline 1")
    gone_chunks = {c.id for c in env.store.chunks([gone.article.id])}
    assert env.index.search("marker1", 3)

    with env.store.write_lock():
        assert env.store.remove([gone.article.id]) == 1
        index = open_index(env.store)
    assert env.store.find_by_id(gone.article.id) is None
    assert not gone_chunks & env.store.vector_ids()
    assert (
        env.store.catalogue.db.execute("SELECT COUNT(*) FROM chunks WHERE article_id=?", (gone.article.id,)).fetchone()[
            0
        ]
        == 0
    )
    assert (
        env.store.catalogue.db.execute("SELECT COUNT(*) FROM articles WHERE id=?", (gone.article.id,)).fetchone()[0]
        == 0
    )
    assert not gone_chunks & env.store.lexicon_chunk_ids() and index.search("marker1", 3) == []
    assert index.search("marker2", 3)
    assert_consistent(env.store, index)
    # the next ingest sees it as new again
    assert env.run(tmp_path / "in").count("new") == 1


def test_a_store_from_before_the_lexical_index_is_indexed_on_first_open(env, tmp_path, home, fake_embedder):
    """An existing user's store (BM25 files beside it, no index in the catalogue) keeps working."""
    from qa.store import Store

    news(tmp_path / "in", 3)
    env.run(tmp_path / "in")
    found = {cid for cid, _ in env.index.search("marker1 headline", 10)}
    db = env.store.catalogue.db
    for table in ("lexicon_docs", "lexicon_terms", "lexicon_segments", "lexicon_postings", "lexicon_dead"):
        db.execute(f"DROP TABLE {table}")
    db.execute("DELETE FROM meta WHERE name LIKE 'lexicon%'")
    db.execute("DELETE FROM sqlite_sequence WHERE name='lexicon_docs'")
    (home / "bm25" / "articles").mkdir(parents=True)
    (home / "bm25" / "articles" / "state.json").write_text("{}")
    env.store.close()

    reopened = Store(home, "articles", fake_embedder.name, fake_embedder.dimension)
    assert reopened.lexicon_chunk_ids() == {c.id for c in reopened.chunks()}
    assert {cid for cid, _ in open_index(reopened).search("marker1 headline", 10)} == found
    assert not (home / "bm25" / "articles").exists()  # the old index files are gone
    assert_consistent(reopened, None)
    reopened.close()


def test_one_writer_at_a_time(make_store, fake_embedder):
    first, second = make_store(fake_embedder), make_store(fake_embedder)
    with first.write_lock(), pytest.raises(QAError, match="Another qa process"), second.write_lock(wait=False):
        pass
    with second.write_lock(wait=False):
        pass


# ---- embedder mismatch ----------------------------------------------------------------------


def test_a_different_embedder_is_refused_with_a_fix(env, tmp_path, make_store):
    news(tmp_path / "in", 1)
    env.run(tmp_path / "in")
    for other in (FakeEmbedder(32, name="other"), FakeEmbedder(32, name="fake")):
        with pytest.raises(QAError) as caught:
            make_store(other)
        message = str(caught.value)
        assert "'fake' (64 dims)" in message and f"{other.name!r} (32 dims)" in message
        assert "--embedder" in message and "--collection" in message and "remove --all" in message
    # a separate collection for the other embedder is fine
    assert make_store(FakeEmbedder(32, name="other"), collection="other-articles").embedder == "other (32 dims)"


def test_emptying_the_collection_lets_another_embedder_take_it(env, tmp_path, make_store, index_for):
    # The mismatch message advises `qa remove --all` then ingesting again: that must work.
    news(tmp_path / "in", 2)
    env.run(tmp_path / "in")
    env.store.remove([a.article.id for a in env.store.articles()])
    other = FakeEmbedder(32, name="other")
    store = make_store(other)
    assert store.embedder == "other (32 dims)"
    index = index_for(store)
    report = ingest([str(tmp_path / "in")], library=Library(store, other, index))
    assert report.count("new") == 2
    assert_consistent(store, index)


def test_real_minilm_store_and_mismatch(make_store, index_for, embedder, tmp_path):
    store = make_store(embedder)
    index = index_for(store)
    write(tmp_path / "in" / "bridge.txt", "Bridge\n\nThe harbour bridge reopened to traffic after cable repairs.")
    write(tmp_path / "in" / "drought.txt", "Drought\n\nFarmers lost their harvest as the drought dried the wells.")
    report = ingest([str(tmp_path / "in")], library=Library(store, embedder, index))
    assert report.count("new") == 2 and store.embedder == "all-MiniLM-L6-v2-int8 (384 dims)"
    ids = {a.article.title: a.article.id for a in store.articles()}
    (query,) = embedder.embed(["Which crossing opened again after repair work?"])
    (best_id, score), (_, other_score) = store.dense(query, 2)
    assert best_id == f"{ids['Bridge']}-0000"
    assert score > other_score + 0.1 and score <= 1.0
    with pytest.raises(QAError, match="all-MiniLM-L6-v2-int8"):
        make_store(FakeEmbedder())


# ---- crash safety ------------------------------------------------------------------------------


class CrashingCollection:
    """The real Chroma collection, except that the Nth upsert lands and then 'crashes'."""

    def __init__(self, real, crash_on: int, exc: BaseException):
        self.real, self.crash_on, self.exc, self.calls = real, crash_on, exc, 0

    def upsert(self, **kwargs):
        self.calls += 1
        self.real.upsert(**kwargs)
        if self.calls == self.crash_on:
            raise self.exc

    def __getattr__(self, name):
        return getattr(self.real, name)


class CrashingDB:
    """The real SQLite connection, except that one statement 'crashes' before it runs."""

    def __init__(self, real, needle: str, exc: BaseException):
        self.real, self.needle, self.exc = real, needle, exc

    def execute(self, sql, *args):
        if self.needle in sql:
            raise self.exc
        return self.real.execute(sql, *args)

    def __enter__(self):
        return self.real.__enter__()

    def __exit__(self, *exc):
        return self.real.__exit__(*exc)

    def __getattr__(self, name):
        return getattr(self.real, name)


def test_interrupt_after_vectors_before_commit(env, tmp_path):
    news(tmp_path / "in", 6)
    real = env.store.vectors.collection
    env.store.vectors.collection = CrashingCollection(real, crash_on=3, exc=KeyboardInterrupt())
    report = env.run(tmp_path / "in", batch_chunks=1)  # one article per write
    env.store.vectors.collection = real
    assert report.interrupted and report.count("new") == 2

    # the third article's vectors are in Chroma, but it is not visible anywhere
    visible = env.store.articles()
    assert [a.article.title for a in visible] == ["Headline 1", "Headline 0"]
    assert {c.article_id for c in env.store.chunks()} == {a.article.id for a in visible}
    assert env.store.vector_count() > env.store.chunk_count()
    checks = consistent(env.store, env.index)
    assert checks["every chunk has its vector"] and checks["every article has chunks"]
    assert checks["BM25 index matches the store"]
    # what readers see is consistent: the interrupted write is hidden and its vectors ignored
    assert checks["no half-written article visible"] and checks["every vector has its article"]

    assert env.store.recover() == 1
    assert env.store.vector_ids() == {c.id for c in env.store.chunks()}
    again = env.run(tmp_path / "in")
    assert again.count("new") == 4 and again.count("unchanged") == 2 and again.count("duplicate") == 0
    assert len(env.store.articles()) == 6
    assert_consistent(env.store, env.index)


def test_crash_while_replacing_never_shows_both_versions(env, tmp_path):
    path = write(tmp_path / "story.txt", "Story\n\n" + long_body(1, 10))
    env.run(path)
    (old,) = env.store.articles()
    path.write_text("Story\n\n" + long_body(2, 10))
    real = env.store.catalogue.db
    env.store.catalogue.db = CrashingDB(real, "SET state='removing'", KeyboardInterrupt())
    try:
        report = env.run(path)
    finally:
        env.store.catalogue.db = real
    assert report.interrupted
    assert [a.article.id for a in env.store.articles()] == [old.article.id]  # one version, the old one

    assert env.store.recover() == 1
    again = env.run(path)
    assert again.count("updated") == 1
    (new,) = env.store.articles()
    assert new.article.id != old.article.id
    assert_consistent(env.store, env.index)


def test_embedder_failure_midway_then_rerun(env, tmp_path):
    news(tmp_path / "in", 4)

    class FailingSecondTime(FakeEmbedder):
        calls = 0

        def embed(self, texts):
            self.calls += 1
            if self.calls == 2:
                raise RuntimeError("embedder died")
            return super().embed(texts)

    with pytest.raises(RuntimeError, match="embedder died"):
        env.run(tmp_path / "in", embedder=FailingSecondTime(), batch_chunks=1)
    assert [a.article.title for a in env.store.articles()] == ["Headline 0"]
    assert_consistent(env.store, env.index)  # nothing half-written, the index in step
    report = env.run(tmp_path / "in")
    assert report.count("new") == 3 and report.count("unchanged") == 1
    assert_consistent(env.store, env.index)


def test_interrupt_while_embedding_keeps_finished_articles(env, tmp_path):
    news(tmp_path / "in", 5)

    class InterruptThirdTime(FakeEmbedder):
        calls = 0

        def embed(self, texts):
            self.calls += 1
            if self.calls == 3:
                raise KeyboardInterrupt
            return super().embed(texts)

    report = env.run(tmp_path / "in", embedder=InterruptThirdTime(), batch_chunks=1)
    assert report.interrupted and report.count("new") == 2
    assert len(env.store.articles()) == 2
    assert_consistent(env.store, env.index)
    assert env.run(tmp_path / "in").count("new") == 3
    assert_consistent(env.store, env.index)


def test_recover_runs_at_the_start_of_the_next_ingest(env, tmp_path):
    news(tmp_path / "in", 3)
    real = env.store.vectors.collection
    env.store.vectors.collection = CrashingCollection(real, crash_on=1, exc=KeyboardInterrupt())
    env.run(tmp_path / "in")
    env.store.vectors.collection = real
    assert env.store.articles() == [] and env.store.vector_count() > 0
    report = env.run(tmp_path / "in")
    assert report.recovered == 3 and report.count("new") == 3  # all three were in the interrupted write
    assert_consistent(env.store, env.index)
