"""`qa ingest URL` against a web server on loopback: HTML pages (canonical URL, metadata, dates),
PDFs, and every failure (timeout, over-size, wrong type, redirect loop, 404, refused) as one
clear line with nothing half-written in the store."""

from __future__ import annotations

import json
import textwrap

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from typer.testing import CliRunner

from qa import __version__
from qa.cli import app
from qa.doctor import store_checks
from qa.ingest.fetch import Fetcher, FetchLimits, Page, canonical_url, date_from_url, load_page, load_url
from qa.ingest.loaders import load_file, load_pdf
from qa.ingest.pipeline import ingest
from qa.search import Library
from tests.local_web import STORY, article_html, closed_port_url, make_pdf

PDF_LINES = textwrap.wrap(STORY, 80)


@pytest.fixture
def env(make_store, index_for, fake_embedder):
    store = make_store(fake_embedder)
    index = index_for(store)
    fetcher = Fetcher(FetchLimits(timeout=3, max_bytes=50_000, max_redirects=3))  # generous: the machine may be loaded

    def run(*inputs: str):
        return ingest(list(inputs), library=Library(store, fake_embedder, index), fetcher=fetcher)

    yield store, index, run
    fetcher.close()


def assert_nothing_half_written(store, index) -> None:
    assert all(c.ok for c in store_checks(store)), [(c.component, c.detail) for c in store_checks(store)]
    assert store.catalogue.db.execute("SELECT COUNT(*) FROM articles WHERE state!='ok'").fetchone()[0] == 0
    assert store.vector_ids() == {c.id for c in store.chunks()}


# ---- pages ---------------------------------------------------------------------------------------


def test_an_html_page_becomes_an_article_with_its_metadata(site, env):
    store, index, run = env
    url = site.add("/news/2026/01/12/harbour?utm_source=rss", article_html(canonical="/news/harbour"))
    report = run(url)
    assert report.count("new") == 1 and not report.failed and not report.warnings
    (stored,) = store.articles()
    a = stored.article
    assert a.url == site.url("/news/harbour") == stored.key  # the canonical URL is the identity
    assert (a.title, a.source, a.author, a.date) == (
        "Harbour breakwater to be rebuilt",
        "Coast Courier",
        "Ana Ruiz",
        "2026-01-12",
    )
    assert a.origin == url and "42 million euros" in a.text and "All rights reserved" not in a.text
    assert site.user_agents == [f"qa/{__version__}"]
    assert_nothing_half_written(store, index)


def test_the_same_story_under_another_address_is_unchanged(site, env):
    store, _, run = env
    page = article_html(canonical="/news/harbour")
    site.add("/news/harbour", page)
    site.add("/amp/harbour", page)
    site.redirect("/r/1", "/news/harbour")
    assert run(site.url("/news/harbour")).count("new") == 1
    again = run(site.url("/amp/harbour"), site.url("/r/1"))
    # one story met twice in a run: unchanged once, then a duplicate (the counts add up to what is stored)
    assert again.count("unchanged") == 1 and again.count("duplicate") == 1 and len(store.articles()) == 1


def test_og_url_then_final_url_after_redirects(site):
    with Fetcher() as fetcher:
        site.add("/og", article_html(og_url="https://coast.test/story/og"))
        site.add("/plain/new", article_html())
        site.redirect("/plain/old", "/plain/new", status=301)
        (og,) = load_url(site.url("/og"), fetcher=fetcher).articles
        (moved,) = load_url(site.url("/plain/old"), fetcher=fetcher).articles
    assert og.url == "https://coast.test/story/og" and og.source == "Coast Courier"
    assert moved.url == site.url("/plain/new") and moved.origin == site.url("/plain/old")


def test_canonical_url_rules():
    base = "https://wire.test/world/story-1?ref=x"
    assert canonical_url('<link rel="canonical" href="/world/story-1">', base) == "https://wire.test/world/story-1"
    assert canonical_url('<link rel="Canonical Shortlink" href="https://w.test/a#top">', base) == "https://w.test/a"
    assert canonical_url('<link rel="canonical" href="/">', base) == base  # a template pointing at the home page
    assert canonical_url('<link rel="canonical" href="javascript:x">', base) == base
    assert canonical_url("", base) == base


def test_dates_come_from_the_page_then_the_feed_then_the_url(site):
    undated = article_html(published="")
    with Fetcher() as fetcher:
        page = lambda path, html: Page(
            url=site.url(path), final_url=site.url(path), status=200, media_type="text/html", body=html.encode()
        )
        meta = load_page(page("/2024/05/06/x", article_html()), origin="o", feed_date="Tue, 02 Apr 2024 10:00:00 GMT")
        feed = load_page(page("/2024/05/06/x", undated), origin="o", feed_date="Tue, 02 Apr 2024 23:30:00 -0500")
        in_url = load_page(page("/2024/05/06/x", undated), origin="o")
        nothing = load_page(page("/x", undated), origin="o")
        assert load_url(closed_port_url(), fetcher=fetcher).articles == []
    assert meta.articles[0].date == "2026-01-12"
    assert feed.articles[0].date == "2024-04-02"  # the publisher's own calendar day, not UTC's
    assert in_url.articles[0].date == "2024-05-06"
    # the footer's "© 2019" is no publication date: kept undated, and said so
    assert nothing.articles[0].date == "" and [p.fatal for p in nothing.problems] == [False]
    assert "kept undated" in nothing.problems[0].reason


@pytest.mark.parametrize(
    "url, expected",
    [
        ("https://a.test/2026/01/12/story", "2026-01-12"),
        ("https://a.test/news/2025-11-03-vote", "2025-11-03"),
        ("https://a.test/world/2024/jan/05/floods", "2024-01-05"),
        ("https://a.test/2026/13/01/x", ""),
        ("https://a.test/story-20260112", ""),
        ("https://a.test/2999/01/01/future", ""),
        ("https://a.test/a/b", ""),
    ],
)
def test_date_from_url(url, expected):
    assert date_from_url(url) == expected


# ---- PDF -----------------------------------------------------------------------------------------


def test_a_fetched_pdf_and_a_pdf_file(site, env, tmp_path):
    store, index, run = env
    data = make_pdf(
        PDF_LINES, title="Breakwater works: the plan", author="Port Office", created="D:20260112093000+01'00'"
    )
    url = site.add("/docs/plan", data, content_type="application/pdf")
    assert run(url).count("new") == 1
    (fetched,) = store.articles()
    assert (fetched.article.title, fetched.article.author, fetched.article.date, fetched.article.url) == (
        "Breakwater works: the plan",
        "Port Office",
        "2026-01-12",
        url,
    )
    # printed lines are joined again: sentences run across the line breaks of the page
    assert "rebuild the northern breakwater after winter storms cracked it" in fetched.article.text

    path = tmp_path / "minutes.pdf"
    path.write_bytes(make_pdf(["Council minutes.", *PDF_LINES[::-1]], title="Microsoft Word - minutes.docx"))
    (article,) = load_file(path).articles
    assert article.title == "Council minutes." and article.date == "" and article.author == ""
    assert run(str(tmp_path)).count("new") == 1  # a folder's PDFs are ingested too
    assert_nothing_half_written(store, index)


def test_unreadable_pdfs_are_one_line_each(tmp_path):
    broken = tmp_path / "broken.pdf"
    broken.write_bytes(b"%PDF-1.4\n1 0 obj <<\n%%EOF")
    empty = tmp_path / "empty.pdf"
    empty.write_bytes(make_pdf([]))
    (p1,) = load_file(broken).problems
    (p2,) = load_file(empty).problems
    assert p1.reason.startswith("PDF could not be read") or p1.reason.startswith("no text in the PDF")
    assert p2.reason == "no text in the PDF (scanned pages need OCR first)"


@hsettings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=3000))
def test_random_bytes_never_crash_the_pdf_loader(data):
    from qa.ingest.loaders import load_one

    loaded = load_one(load_pdf, b"%PDF-1.4\n" + data, "x.pdf", origin="x.pdf")
    assert loaded.articles or (len(loaded.problems) == 1 and "\n" not in loaded.problems[0].reason)


# ---- failures: one clear line each, nothing half-written ---------------------------------------------


FAILURES = {
    "timeout": ("/slow", "timed out after 3 s (raise QA_FETCH_TIMEOUT to wait longer)"),
    "too large (declared)": ("/big", "response is 0.1 MB, over the 0.05 MB limit (raise QA_FETCH_MAX_MB to allow it)"),
    "too large (streamed)": ("/big-stream", "response is over the 0.05 MB limit (raise QA_FETCH_MAX_MB to allow it)"),
    "wrong content type": ("/photo.png", "content type image/png is not an article (HTML, PDF or plain text)"),
    "redirect loop": ("/loop/a", "redirect loop (/loop/a -> /loop/b -> /loop/a)"),
    "too many redirects": ("/hop/0", "too many redirects (more than 3)"),
    "404": ("/gone", "HTTP 404 Not Found"),
    "server error": ("/broken", "HTTP 500 Internal Server Error"),
    "no article text": ("/menu", "no article text found in the HTML"),
}


def serve_failures(site) -> None:
    site.add("/slow", article_html(), delay=10)
    site.add("/big", b"<html>" + b"x" * 100_000)
    site.add("/big-stream", b"<html>" + b"x" * 100_000, length=False)
    site.add("/photo.png", b"\x89PNG\r\n", content_type="image/png")
    site.redirect("/loop/a", "/loop/b")
    site.redirect("/loop/b", "/loop/a")
    for n in range(5):
        site.redirect(f"/hop/{n}", f"/hop/{n + 1}")
    site.add("/broken", "oops", status=500)
    site.add("/menu", "<html><body><nav><a href='/'>Home</a></nav></body></html>")


@pytest.mark.parametrize("case", sorted(FAILURES))
def test_each_failure_is_one_clear_line(site, env, case):
    store, index, run = env
    serve_failures(site)
    path, reason = FAILURES[case]
    report = run(site.url(path))
    assert [(i.origin, i.detail) for i in report.items] == [(site.url(path), reason)]
    assert report.failed and store.articles() == []
    assert_nothing_half_written(store, index)


def test_a_refused_connection(env):
    store, index, run = env
    url = closed_port_url()
    report = run(url)
    assert [(i.origin, i.detail) for i in report.failed] == [(url, "connection refused (is the server up?)")]
    assert_nothing_half_written(store, index)


def test_a_malformed_url_is_one_line():
    with Fetcher() as fetcher:
        (problem,) = load_url("https://[::1", fetcher=fetcher).problems
    assert problem.reason.startswith("not a valid URL (") and "\n" not in problem.reason


def test_failures_do_not_stop_the_good_pages(site, env):
    store, index, run = env
    serve_failures(site)
    good = site.add("/news/harbour", article_html())
    report = run(*(site.url(path) for path, _ in FAILURES.values()), good, closed_port_url())
    assert report.count("new") == 1 and len(report.failed) == len(FAILURES) + 1
    assert [a.article.url for a in store.articles()] == [good]
    assert_nothing_half_written(store, index)


def test_a_feed_given_to_ingest_says_how_to_follow_it(site):
    site.add("/feed.xml", "<rss version='2.0'><channel></channel></rss>", content_type="application/rss+xml")
    with Fetcher() as fetcher:
        (problem,) = load_url(site.url("/feed.xml"), fetcher=fetcher).problems
    assert problem.reason == (
        "content type application/rss+xml is not an article (HTML, PDF or plain text); "
        "follow a feed with `qa feeds add URL`"
    )


def test_missing_content_type_is_sniffed(site):
    site.add("/file", make_pdf(PDF_LINES, title="Sniffed"), content_type="application/octet-stream")
    site.add("/blob", b"\x00\x01binary", content_type="")
    with Fetcher() as fetcher:
        assert [a.title for a in load_url(site.url("/file"), fetcher=fetcher).articles] == ["Sniffed"]
        (problem,) = load_url(site.url("/blob"), fetcher=fetcher).problems
    assert problem.reason == "content is not an article (HTML, PDF or plain text) (no usable Content-Type)"


# ---- the command ---------------------------------------------------------------------------------


def test_qa_ingest_url_with_limits_from_settings(site, monkeypatch):
    monkeypatch.setenv("QA_EMBEDDER", "fake")
    monkeypatch.setenv("QA_FETCH_TIMEOUT", "2")
    monkeypatch.setenv("QA_FETCH_MAX_MB", "0.02")
    monkeypatch.setenv("QA_FETCH_MAX_REDIRECTS", "1")
    good = site.add("/news/harbour", article_html())
    site.add("/slow", article_html(), delay=8)
    site.add("/big", b"x" * 30_000)
    site.redirect("/r1", "/r2")
    site.redirect("/r2", "/news/harbour")
    runner = CliRunner()
    result = runner.invoke(app, ["ingest", good, site.url("/slow"), site.url("/big"), site.url("/r1")])
    assert result.exit_code == 1, result.output
    lines = [" ".join(line.split()) for line in result.stderr.splitlines() if line.startswith("failed")]
    assert lines == [
        f"failed {site.url('/slow')}: timed out after 2 s (raise QA_FETCH_TIMEOUT to wait longer)",
        f"failed {site.url('/big')}: response is 0.03 MB, over the 0.02 MB limit (raise QA_FETCH_MAX_MB to allow it)",
        f"failed {site.url('/r1')}: too many redirects (more than 1)",
    ]
    assert "Traceback" not in result.output
    sources = json.loads(runner.invoke(app, ["sources", "--json"]).stdout)
    assert [(s["url"], s["date"], s["source"]) for s in sources] == [(good, "2026-01-12", "Coast Courier")]
