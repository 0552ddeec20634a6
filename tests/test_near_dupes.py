"""Near-duplicate stories at ingest: a syndicated copy with small edits is not stored again but
listed as another source of the article kept; the signatures survive reopening the store."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from qa.cli import app
from qa.doctor import store_checks
from qa.ingest.near_dupes import NearDuplicates, jaccard, shingles
from qa.ingest.pipeline import ingest
from qa.search import Library
from tests.local_web import article_html

STORY = (
    "Workers at the Brakemoor plant voted on Friday to accept a 6 percent pay rise, ending a strike that had "
    "halted production for three weeks. The union said 82 percent of members backed the deal in a ballot "
    "that closed at noon. Management agreed to review shift patterns by the end of March and to drop "
    "disciplinary cases linked to the walkout. The strike began after talks on overtime rates collapsed in "
    "early January, and picket lines had blocked deliveries to the site since then. Local suppliers said the "
    "stoppage had cost them orders worth several million euros. Production is expected to resume on Monday "
    "with the night shift returning first, a company spokesperson said. Both sides said they would meet "
    "again in April to discuss pensions, which were left out of the agreement."
)


def syndicated(text: str, source: str) -> str:
    """What a second outlet prints: its own dateline and sign-off, a few words changed."""
    edited = text.replace("a company spokesperson said", "the company said").replace("several million", "millions of")
    return f"BRAKEMOOR ({source}) - {edited} Reporting by the {source} newsroom."


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def md(folder: Path, name: str, source: str, body: str, date: str = "2026-01-16", title: str = "Strike ends") -> Path:
    return write(
        folder / f"{name}.md",
        f"---\ntitle: {title}\nsource: {source}\ndate: {date}\nurl: https://{name}.test/strike\n---\n{body}\n",
    )


@pytest.fixture
def env(make_store, index_for, fake_embedder):
    store = make_store(fake_embedder)
    index = index_for(store)

    def run(*inputs, **kw):
        return ingest([str(i) for i in inputs], library=Library(store, fake_embedder, index), **kw)

    return store, index, run


def test_the_edits_are_small_but_real():
    assert 0.7 <= jaccard(shingles(STORY), shingles(syndicated(STORY, "Lakeside Post"))) < 0.95


def test_two_near_copies_are_one_article_with_both_sources(env, tmp_path):
    store, index, run = env
    first = run(md(tmp_path, "wire", "Capital Wire", STORY))
    second = run(
        md(tmp_path, "lakeside", "Lakeside Post", syndicated(STORY, "Lakeside Post"), title="Deal ends strike")
    )
    assert first.count("new") == 1
    (item,) = second.items
    assert item.status == "duplicate" and item.article_id == store.articles()[0].article.id
    assert re.fullmatch(r"near-copy of .*wire\.md \(\d\d% alike\), listed as another source of it", item.detail)
    (kept,) = store.articles()
    assert kept.article.source == "Capital Wire" and store.chunk_count() == kept.chunks == store.vector_count()
    assert [(r.source, r.url, r.title, r.date) for r in kept.also_reported] == [
        ("Lakeside Post", "https://lakeside.test/strike", "Deal ends strike", "2026-01-16")
    ]
    assert all(c.ok for c in store_checks(store))
    # the same copy again adds no second listing
    assert run(tmp_path / "lakeside.md").count("duplicate") == 1
    assert len(store.articles()[0].also_reported) == 1


def test_three_outlets_in_one_run_from_the_web(site, env):
    store, _, run = env
    urls = [
        site.add(
            f"/{name.split()[0].lower()}/strike",
            article_html(title="Strike ends", body=body, site_name=name, published=""),
        )
        for name, body in (
            ("Capital Wire", STORY),
            ("Lakeside Post", syndicated(STORY, "Lakeside Post")),
            ("Harrow Courier", syndicated(STORY, "Harrow Courier")),
        )
    ]
    report = run(*urls)
    assert [(i.origin, i.status) for i in report.items] == [
        (urls[0], "new"),
        (urls[1], "duplicate"),
        (urls[2], "duplicate"),
    ]
    (kept,) = store.articles()
    assert kept.article.source == "Capital Wire"
    assert [r.source for r in kept.also_reported] == ["Harrow Courier", "Lakeside Post"]


def test_sources_lists_the_other_outlets(env, tmp_path, monkeypatch):
    _, _, run = env
    run(
        md(tmp_path, "wire", "Capital Wire", STORY),
        md(tmp_path, "lakeside", "Lakeside Post", syndicated(STORY, "LP")),
        md(tmp_path, "harrow", "Harrow Courier", syndicated(STORY, "HC")),
    )
    monkeypatch.setenv("QA_EMBEDDER", "fake")
    monkeypatch.setenv("COLUMNS", "200")
    runner = CliRunner()
    table = runner.invoke(app, ["sources"])
    assert table.exit_code == 0 and "+2 sources: Harrow Courier, Lakeside Post" in " ".join(table.stdout.split())
    (row,) = json.loads(runner.invoke(app, ["sources", "--json"]).stdout)
    assert [(r["source"], r["url"]) for r in row["also_reported"]] == [
        ("Harrow Courier", "https://harrow.test/strike"),
        ("Lakeside Post", "https://lakeside.test/strike"),
    ]


def test_signatures_survive_reopening_the_store(env, tmp_path, make_store, index_for, fake_embedder):
    store, _, run = env
    run(md(tmp_path, "wire", "Capital Wire", STORY))
    assert store.catalogue.db.execute("SELECT COUNT(*) FROM signatures").fetchone()[0] == 1
    store.close()
    reopened = make_store(fake_embedder)
    report = ingest(
        [str(md(tmp_path, "lakeside", "Lakeside Post", syndicated(STORY, "LP")))],
        library=Library(reopened, fake_embedder, index_for(reopened)),
    )
    assert report.count("duplicate") == 1 and len(reopened.articles()) == 1


def test_a_store_from_before_signatures_gets_them_on_open(env, tmp_path):
    store, _, run = env
    run(md(tmp_path, "wire", "Capital Wire", STORY))
    store.catalogue.db.execute("DELETE FROM signatures")
    near = NearDuplicates(store)
    assert store.catalogue.db.execute("SELECT COUNT(*) FROM signatures").fetchone()[0] == 1
    assert near.match("x", syndicated(STORY, "LP"))[0] == store.articles()[0].article.id


def test_a_corrected_version_at_the_same_url_is_an_update(env, tmp_path):
    store, _, run = env
    path = md(tmp_path, "wire", "Capital Wire", STORY)
    run(path)
    md(tmp_path, "wire", "Capital Wire", STORY.replace("82 percent", "84 percent"))
    report = run(path)
    assert report.count("updated") == 1 and report.count("duplicate") == 0
    (kept,) = store.articles()
    assert "84 percent" in kept.article.text


def test_the_other_sources_follow_an_update_and_go_with_a_removal(env, tmp_path):
    store, index, run = env
    path = md(tmp_path, "wire", "Capital Wire", STORY)
    run(path, md(tmp_path, "lakeside", "Lakeside Post", syndicated(STORY, "LP")))
    md(tmp_path, "wire", "Capital Wire", STORY.replace("82 percent", "84 percent"))
    run(path)
    (kept,) = store.articles()
    assert [r.source for r in kept.also_reported] == ["Lakeside Post"]
    store.remove([kept.article.id])
    assert store.catalogue.db.execute("SELECT COUNT(*) FROM also_reported").fetchone()[0] == 0
    assert store.catalogue.db.execute("SELECT COUNT(*) FROM signatures").fetchone()[0] == 0
    # with the original gone, the copy is a story of its own again
    assert run(tmp_path / "lakeside.md").count("new") == 1


def test_an_exact_copy_from_another_outlet_is_listed_too(env, tmp_path):
    store, _, run = env
    run(md(tmp_path, "wire", "Capital Wire", STORY), md(tmp_path, "mirror", "Mirror Site", STORY))
    (kept,) = store.articles()
    assert [r.source for r in kept.also_reported] == ["Mirror Site"]


def test_different_stories_and_short_texts_are_kept_apart(env, tmp_path):
    store, _, run = env
    other = (
        "The city council approved a new tram line on Tuesday that will link the harbour to the university "
        "by 2028. Construction starts in the spring and will close two streets for a year. The plan costs "
        "310 million euros, most of it from a regional fund, and adds eleven stops. Opponents said the budget "
        "ignores cycling lanes and bus routes in the northern districts."
    )
    short = "Workers at the Brakemoor plant voted on Friday to accept a pay rise."
    report = run(
        md(tmp_path, "wire", "Capital Wire", STORY),
        md(tmp_path, "tram", "Courier", other),
        md(tmp_path, "s1", "A", short),
        md(tmp_path, "s2", "B", short.replace("Friday", "Monday")),
    )
    assert report.count("new") == 4 and report.count("duplicate") == 0


def test_near_duplicates_can_be_switched_off(env, tmp_path):
    store, _, run = env
    report = run(
        md(tmp_path, "wire", "Capital Wire", STORY),
        md(tmp_path, "lakeside", "Lakeside Post", syndicated(STORY, "LP")),
        near_duplicates=0,
    )
    assert report.count("new") == 2 and len(store.articles()) == 2
