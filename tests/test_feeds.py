"""`qa feeds` against a web server on loopback: RSS and Atom feeds, entries fetched or taken whole,
conditional GETs, nothing fetched twice, failures retried only when they may pass."""

from __future__ import annotations

import json
import re
from html import escape

import pytest
from typer.testing import CliRunner

from qa.cli import app
from qa.doctor import store_checks
from qa.errors import QAError
from qa.ingest.feeds import FeedList, add_feed, parse_feed, remove_feed, update_feeds
from qa.ingest.fetch import Fetcher, FetchError, FetchLimits
from qa.search import Library
from tests.local_web import article_html

LONG = " ".join(
    f"Paragraph {n} of the council report says the tram budget rose by {n} million euros "
    f"because steel prices climbed and the tunnel section was redesigned twice."
    for n in range(12)
)
LAST_MODIFIED = "Tue, 13 Jan 2026 08:00:00 GMT"


def rss(site, items: list[dict]) -> str:
    parts = []
    for it in items:
        parts.append(
            f"<item><title>{escape(it['title'])}</title><guid>{it['guid']}</guid>"
            + (f"<link>{site.url(it['path'])}</link>" if it.get("path") else "")
            + (f"<pubDate>{it['date']}</pubDate>" if it.get("date") else "")
            + f"<description>{escape(it.get('summary', 'A short teaser.'))}</description>"
            + (f"<content:encoded><![CDATA[{it['content']}]]></content:encoded>" if it.get("content") else "")
            + "</item>"
        )
    return (
        '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0" '
        'xmlns:content="http://purl.org/rss/1.0/modules/content/"><channel><title>Coast Courier</title>'
        f"<link>{site.url('/')}</link><description>News</description>{''.join(parts)}</channel></rss>"
    )


def atom(site, entries: list[dict]) -> str:
    parts = [
        f"<entry><title>{escape(e['title'])}</title><id>{e['id']}</id>"
        f'<link rel="alternate" href="{e["path"]}"/><updated>{e["updated"]}</updated>'
        f"<summary>Teaser.</summary></entry>"
        for e in entries
    ]
    return (
        '<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom">'
        f"<title>Valley Wire</title><id>urn:valley</id><updated>2026-01-14T10:00:00Z</updated>"
        f"{''.join(parts)}</feed>"
    )


RSS_ITEMS = [
    {
        "title": "Harbour breakwater to be rebuilt",
        "guid": "cc-1",
        "path": "/news/harbour",
        "date": "Mon, 12 Jan 2026 09:30:00 +0100",
    },
    {
        "title": "Ferry timetable changes",
        "guid": "cc-2",
        "path": "/news/ferry",
        "date": "Tue, 13 Jan 2026 07:00:00 +0100",
    },
    {
        "title": "Tram budget report",
        "guid": "cc-3",
        "path": "/news/tram",
        "date": "Wed, 14 Jan 2026 18:00:00 +0100",
        "content": "".join(f"<p>{s}.</p>" for s in LONG.split(". ")),
    },
]
FERRY = (
    "The ferry operator will add two evening sailings to the island from February, the port said on Tuesday. "
    "Morning departures move fifteen minutes earlier to meet the first train, and season tickets keep their "
    "price until the summer. Passenger numbers rose by a tenth last year as the bridge closed for repairs."
)


LIGHTHOUSE = (
    "The old lighthouse on the north pier opens to visitors again on Saturday after a two-year restoration. "
    "Volunteers repainted the tower and a museum now fills the keeper's cottage. Tickets cost four euros, "
    "and school groups visit for free on weekdays until the end of June."
)


def serve_rss(site, **feed_options) -> str:
    site.add("/news/harbour", article_html())
    site.add("/news/ferry", article_html(title="Ferry timetable changes", body=FERRY, published=""))
    return site.add(
        "/feed.xml", rss(site, RSS_ITEMS), content_type="application/rss+xml; charset=utf-8", **feed_options
    )


@pytest.fixture
def env(make_store, index_for, fake_embedder, home):
    store = make_store(fake_embedder)
    index = index_for(store)
    feeds = FeedList(home, store.name)
    fetcher = Fetcher(FetchLimits(timeout=3, max_bytes=200_000))  # generous: the machine may be loaded

    def update():
        return update_feeds(feeds, fetcher=fetcher, library=Library(store, fake_embedder, index))

    yield store, index, feeds, fetcher, update
    fetcher.close()


def page_hits(site) -> int:
    return sum(n for path, n in site.hits.items() if path.startswith("/news/"))


def test_rss_update_twice_fetches_no_entry_again(site, env):
    store, index, feeds, fetcher, update = env
    feed_url = serve_rss(site, etag=True)
    feed, entries = add_feed(feeds, feed_url, fetcher=fetcher)
    assert (feed.title, entries) == ("Coast Courier", 3)

    first = update()
    assert [(f.status, f.entries, f.loaded, f.retry) for f in first.feeds] == [("updated", 3, 3, 0)]
    assert first.ingest.count("new") == 3 and not first.ingest.failed
    # the teasers' pages were fetched once each; the full-text entry was not fetched at all
    assert dict(site.hits) == {"/feed.xml": 2, "/news/harbour": 1, "/news/ferry": 1}
    by_title = {a.article.title: a.article for a in store.articles()}
    assert by_title["Harbour breakwater to be rebuilt"].date == "2026-01-12"  # the page's own metadata
    assert by_title["Ferry timetable changes"].date == "2026-01-13"  # no date in the page: the feed's
    tram = by_title["Tram budget report"]
    assert (tram.source, tram.url, tram.date) == ("Coast Courier", site.url("/news/tram"), "2026-01-14")
    assert "Paragraph 11 of the council report" in tram.text

    second = update()
    assert [(f.status, f.loaded) for f in second.feeds] == [("not modified", 0)]
    assert site.conditional == ["/feed.xml"] and page_hits(site) == 2  # no entry fetched again
    assert len(store.articles()) == 3
    assert all(c.ok for c in store_checks(store))


def test_atom_with_last_modified_only(site, env):
    store, _, feeds, fetcher, update = env
    site.add("/valley/1", article_html(title="Valley dam inspected", site_name="Valley Wire"))
    site.add("/valley/2026/01/14/rain", article_html(title="Rain returns", body=FERRY, published=""))
    entries = [
        {"title": "Valley dam inspected", "id": "urn:v1", "path": "/valley/1", "updated": "2026-01-13T10:00:00Z"},
        {"title": "Rain returns", "id": "urn:v2", "path": "/valley/2026/01/14/rain", "updated": ""},
    ]
    url = site.add("/atom", atom(site, entries), content_type="application/atom+xml", last_modified=LAST_MODIFIED)
    add_feed(feeds, url, fetcher=fetcher)
    assert update().ingest.count("new") == 2
    dates = {a.article.title: a.article.date for a in store.articles()}
    assert dates == {"Valley dam inspected": "2026-01-12", "Rain returns": "2026-01-14"}  # page, then the URL
    assert update().feeds[0].status == "not modified" and page_hits(site) == 0
    assert site.hits["/valley/1"] == 1 and site.conditional == ["/atom"]


def test_without_validators_only_new_or_changed_entries_are_fetched(site, env):
    store, _, feeds, fetcher, update = env
    url = serve_rss(site)  # no ETag, no Last-Modified: the whole feed comes every time
    add_feed(feeds, url, fetcher=fetcher)
    update()
    assert page_hits(site) == 2
    again = update()
    assert [(f.status, f.loaded) for f in again.feeds] == [("updated", 0)] and page_hits(site) == 2

    # one entry changes, one is added: only those two are loaded
    items = [
        dict(RSS_ITEMS[0], summary="Updated: tender delayed."),
        *RSS_ITEMS[1:],
        {"title": "Lighthouse reopens", "guid": "cc-4", "path": "/news/lighthouse"},
    ]
    site.add("/news/lighthouse", article_html(title="Lighthouse reopens", body=LIGHTHOUSE))
    site.add("/feed.xml", rss(site, items), content_type="application/rss+xml")
    third = update()
    assert third.feeds[0].loaded == 2 and site.hits["/news/harbour"] == 2 and site.hits["/news/ferry"] == 1
    assert third.ingest.count("unchanged") == 1 and third.ingest.count("new") == 1
    assert len(store.articles()) == 4


def test_failed_entries_are_retried_until_they_succeed(site, env):
    store, index, feeds, fetcher, update = env
    items = [
        {"title": "Slow page", "guid": "s", "path": "/news/slow"},
        {"title": "Gone page", "guid": "g", "path": "/news/gone"},
        {"title": "Harbour", "guid": "h", "path": "/news/harbour"},
    ]
    site.add("/news/slow", article_html(title="Slow", body=FERRY), delay=8)
    site.add("/news/harbour", article_html())
    url = site.add("/feed.xml", rss(site, items), content_type="application/rss+xml", etag=True)
    add_feed(feeds, url, fetcher=fetcher)
    first = update()
    assert {(i.origin.rsplit("/", 1)[1], i.status, i.detail) for i in first.ingest.items} == {
        ("slow", "failed", "timed out after 3 s (raise QA_FETCH_TIMEOUT to wait longer)"),
        ("gone", "failed", "HTTP 404 Not Found"),
        ("harbour", "new", ""),
    }
    assert first.feeds[0].retry == 2
    assert all(c.ok for c in store_checks(store)) and len(store.articles()) == 1
    (saved,) = feeds.load()
    assert saved.etag == ""  # a 304 must not hide the entries still to fetch
    assert sorted(saved.pending.values()) == [
        "HTTP 404 Not Found",
        "timed out after 3 s (raise QA_FETCH_TIMEOUT to wait longer)",
    ]
    assert "2 failed and pending" in saved.status

    site.routes["/news/slow"].delay = 0
    second = update()
    assert second.feeds[0].loaded == 2 and second.ingest.count("new") == 1  # the timeout is retried, and the 404
    assert site.hits["/news/gone"] == 2 and list(feeds.load()[0].pending.values()) == ["HTTP 404 Not Found"]
    site.add("/news/gone", article_html(title="Back", body=LIGHTHOUSE))  # the page is mended
    third = update()
    assert third.ingest.count("new") == 1 and third.feeds[0].retry == 0  # ... until it succeeds
    assert len(store.articles()) == 3 and feeds.load()[0].pending == {}
    assert feeds.load()[0].etag and update().feeds[0].status == "not modified"


def test_feed_failures_are_one_line(site, env):
    store, _, feeds, fetcher, update = env
    site.add("/page", "<html><head><title>Home</title></head><body>No feed here.</body></html>")
    site.add("/broken.xml", "<rss><channel><item>", content_type="application/rss+xml")
    site.add("/img", b"\x89PNG", content_type="image/png")
    with pytest.raises(QAError, match=r"/page is a web page that names no RSS or Atom feed"):
        add_feed(feeds, site.url("/page"), fetcher=fetcher)
    with pytest.raises(FetchError, match=r"content type image/png is not an RSS or Atom feed"):
        add_feed(feeds, site.url("/img"), fetcher=fetcher)
    with pytest.raises(FetchError, match="HTTP 404"):
        add_feed(feeds, site.url("/nope.xml"), fetcher=fetcher)
    with pytest.raises(QAError, match="not an http"):
        add_feed(feeds, "feed.xml", fetcher=fetcher)
    assert feeds.load() == []

    url = serve_rss(site)
    add_feed(feeds, url, fetcher=fetcher)
    with pytest.raises(QAError, match="already in the feed list"):
        add_feed(feeds, url, fetcher=fetcher)
    del site.routes["/feed.xml"]
    report = update()
    assert [(f.status, f.detail) for f in report.feeds] == [("failed", "HTTP 404 Not Found")]
    assert feeds.load()[0].status == "failed: HTTP 404 Not Found" and store.articles() == []
    try:
        parse_feed("http://x/broken.xml", b"<html><body>hello</body></html>")
    except FetchError as exc:
        assert exc.reason.startswith("not an RSS or Atom feed") and "\n" not in exc.reason


def test_a_page_that_links_its_feed_is_followed_by_that_feed(site, env):
    _, _, feeds, fetcher, _ = env
    feed_url = serve_rss(site)
    site.add("/", '<html><head><link rel="alternate" type="application/rss+xml" href="/feed.xml"></head></html>')
    feed, _ = add_feed(feeds, site.url("/"), fetcher=fetcher)
    assert feed.url == feed_url
    assert remove_feed(feeds, feed_url).title == "Coast Courier" and feeds.load() == []
    with pytest.raises(QAError, match="not in the feed list"):
        remove_feed(feeds, feed_url)


def test_the_feed_list_is_written_whole(env, home):
    _, _, feeds, _, _ = env
    from qa.ingest.feeds import Feed

    feeds.save([Feed(url="https://a.test/feed", entries={"k": "f"})])
    assert json.loads(feeds.path.read_text())["feeds"][0]["entries"] == {"k": "f"}
    assert [p.name for p in feeds.path.parent.iterdir() if p.suffix == ".tmp"] == []
    feeds.path.write_text('{"feeds": [')
    with pytest.raises(QAError, match="feed list .* is damaged"):
        feeds.load()


def test_the_feeds_commands(site, monkeypatch):
    monkeypatch.setenv("QA_EMBEDDER", "fake")
    monkeypatch.setenv("COLUMNS", "200")
    url = serve_rss(site, etag=True)
    runner = CliRunner()

    def qa(*args):
        return runner.invoke(app, list(args))

    assert "No feeds yet" in qa("feeds", "list").stdout
    added = qa("feeds", "add", url)
    assert added.exit_code == 0 and "Added Coast Courier" in added.stdout and "3 entries" in added.stdout
    first = qa("feeds", "update")
    assert first.exit_code == 0, first.output
    assert "Coast Courier: 3 new or changed of 3 entries" in first.stdout
    second = qa("feeds", "update", "--json")
    report = json.loads(second.stdout)
    assert [f["status"] for f in report["feeds"]] == ["not modified"] and report["ingest"]["counts"]["new"] == 0
    assert page_hits(site) == 2
    (listed,) = json.loads(qa("feeds", "list", "--json").stdout)
    assert (listed["url"], listed["entries"], listed["status"]) == (url, 3, "not modified")
    assert len(json.loads(qa("sources", "--json").stdout)) == 3
    # an entry that fails stays pending, `feeds list` says so, and a later update ingests it
    site.routes["/feed.xml"].body = rss(
        site, [*RSS_ITEMS, {"title": "Late", "guid": "late", "path": "/news/late"}]
    ).encode()
    late = qa("feeds", "update")
    assert late.exit_code == 1 and "HTTP 404" in late.stderr
    listing = qa("feeds", "list")
    assert re.search(r"pending Coast Courier: \S*late: HTTP 404 Not Found", " ".join(listing.stdout.split()))
    site.add("/news/late", article_html(title="Late", body=LIGHTHOUSE))
    mended = json.loads(qa("feeds", "update", "--json").stdout)
    assert mended["ingest"]["counts"]["new"] == 1 and mended["feeds"][0]["retry"] == 0
    assert json.loads(qa("feeds", "list", "--json").stdout)[0]["pending"] == {}
    removed = qa("feeds", "remove", url)
    assert removed.exit_code == 0 and "its articles stay" in removed.stdout
    missing = qa("feeds", "remove", url)
    assert missing.exit_code == 2 and "not in the feed list" in missing.stderr and "Traceback" not in missing.output

    qa("feeds", "add", url)
    del site.routes["/feed.xml"]
    failed = qa("feeds", "update")
    assert failed.exit_code == 1 and "failed Coast Courier: HTTP 404 Not Found" in " ".join(failed.stderr.split())
