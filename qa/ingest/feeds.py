"""Feeds: RSS and Atom feeds a collection follows, and `update_feeds`, which ingests their new or
changed entries (the page each links to, or the entry's own content when it is the full text).

The list and what was ingested from each feed live in QA_HOME/feeds/<collection>.json, written
atomically. A feed is asked for conditionally (ETag / Last-Modified) and an entry already ingested
in its current form is not fetched again. An entry that failed (a timeout, a 404, a page with no
article) is kept as pending and tried again at every update until it is ingested or the feed drops it.
"""

from __future__ import annotations

import fcntl
import hashlib
import io
import json
import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote, urljoin

from ..errors import QAError, UsageError
from .articles import make_article, normalise_date, source_from_url
from .fetch import ARTICLE_TYPES, FEED_TYPES, Fetcher, FetchError, date_from_url, is_url, load_page
from .loaders import Loaded, LoadProblem
from .pipeline import IngestReport, Source, ingest

FULL_TEXT_WORDS = 150  # an entry's own content this long is taken as the article; shorter is a teaser


@dataclass
class Feed:
    url: str
    title: str = ""
    etag: str = ""  # validators of the last copy whose every entry was dealt with
    last_modified: str = ""
    added: str = ""
    checked: str = ""
    status: str = ""  # the last update's outcome, one line
    entries: dict[str, str] = field(default_factory=dict)  # entry key -> fingerprint of the version ingested
    pending: dict[str, str] = field(default_factory=dict)  # entry key -> why it failed: tried again next update


@dataclass(frozen=True)
class Entry:
    key: str
    fingerprint: str
    link: str
    title: str
    date: str  # as the feed gives it
    author: str
    text: str  # the entry's own content as plain text ("" when it has none)
    full_text: bool
    origin: str  # what ingest reports it as: its link, else feed#key


@dataclass(frozen=True)
class FeedResult:
    url: str
    title: str
    status: str  # "updated", "not modified" or "failed"
    entries: int = 0  # entries in the feed
    loaded: int = 0  # new or changed entries taken this time
    retry: int = 0  # entries that failed: tried again next time
    detail: str = ""


@dataclass
class FeedsReport:
    feeds: list[FeedResult]
    ingest: IngestReport

    @property
    def failed(self) -> list[FeedResult]:
        return [f for f in self.feeds if f.status == "failed"]


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class FeedList:
    """The feeds of one collection, kept as JSON beside the store."""

    def __init__(self, home: Path, collection: str):
        self.path = home / "feeds" / f"{collection}.json"

    @contextmanager
    def locked(self) -> Iterator[None]:
        """One process at a time changes the list (taken before the store's own write lock)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_suffix(".lock"), "w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def load(self) -> list[Feed]:
        if not self.path.is_file():
            return []
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            known = {f.name for f in fields(Feed)}
            return [Feed(**{k: v for k, v in item.items() if k in known}) for item in data["feeds"]]
        except (ValueError, KeyError, TypeError) as exc:
            raise QAError(
                f"The feed list {self.path} is damaged ({exc.__class__.__name__}); "
                "fix or delete it and add the feeds again."
            )

    def save(self, feeds: list[Feed]) -> None:
        """Write a new file beside the old one, then swap it in: a crash leaves one or the other."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".feeds-", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump({"feeds": [asdict(f) for f in feeds]}, handle, indent=1, ensure_ascii=False)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


# ---- reading a feed -------------------------------------------------------------------------------


def html_text(fragment: str) -> str:
    """Plain text of an HTML fragment (a feed entry's content), paragraphs kept apart."""
    import lxml.html

    marked = re.sub(r"(?i)<(br|/p|/h[1-6]|/li|/div|/blockquote|/tr)\b[^>]*>", "\n\n", fragment)
    try:
        return lxml.html.fromstring(f"<div>{marked}</div>").text_content()
    except Exception:  # lxml raises ParserError / ValueError on odd fragments
        return re.sub(r"<[^>]+>", " ", marked)


def parse_feed(url: str, body: bytes, final_url: str = "") -> tuple[str, list[Entry]]:
    """The feed's title and its entries; FetchError when the document is no RSS or Atom feed."""
    import feedparser

    # a stream, never a string: feedparser would fetch a string that looks like a URL
    parsed = feedparser.parse(io.BytesIO(body), response_headers={"content-location": final_url or url})
    if not parsed.get("version"):
        problem = str(parsed.get("bozo_exception") or "no <rss>, <feed> or <rdf> element").splitlines()[0][:120]
        raise FetchError(url, f"not an RSS or Atom feed ({problem})")
    entries = []
    for raw in parsed.entries:
        link = raw.get("link", "")
        link = link if is_url(link) else ""
        title = " ".join(str(raw.get("title", "")).split())
        content = max((c.get("value", "") for c in raw.get("content", [])), key=len, default="")
        text = html_text(content) if content else ""
        full = len(text.split()) >= FULL_TEXT_WORDS
        if not full and not link:  # nothing to fetch: the entry's own words are all there is
            text = text or html_text(raw.get("summary", ""))
        updated = dict.get(raw, "updated", "")  # raw.get("updated") falls back to published, with a warning
        date = raw.get("published") or updated or raw.get("created") or ""
        key = raw.get("id") or link or hashlib.sha256((title + text).encode()).hexdigest()[:16]
        stamp = json.dumps([link, title, date, updated, content or raw.get("summary", "")])
        entries.append(
            Entry(
                key=key,
                fingerprint=hashlib.sha256(stamp.encode()).hexdigest()[:16],
                link=link,
                title=title,
                date=date,
                author=raw.get("author", ""),
                text=text,
                full_text=full,
                origin=link or f"{url}#{quote(key, safe='')}",
            )
        )
    return " ".join(str(parsed.feed.get("title", "")).split()), entries


def discover_feed(html: str, page_url: str) -> str:
    """The first RSS or Atom feed a web page links to (<link rel=alternate type=...>), else ""."""
    for tag in re.findall(r"<link\b[^>]*>", html, re.I):
        attrs = {k.lower(): v for k, _, v in re.findall(r"""([\w-]+)\s*=\s*(["'])(.*?)\2""", tag)}
        if "alternate" in attrs.get("rel", "").lower().split() and attrs.get("type", "").lower() in FEED_TYPES:
            return urljoin(page_url, attrs.get("href", ""))
    return ""


def entry_source(entry: Entry, feed_title: str, *, fetcher: Fetcher) -> Source:
    """How ingest loads one entry: its own full text, or the page it links to."""

    def load() -> Loaded:
        if entry.full_text or not entry.link:
            if not entry.text.strip():
                return Loaded([], [LoadProblem(entry.origin, "entry has no link and no text")])
            date = normalise_date(entry.date) or date_from_url(entry.link)
            article = make_article(
                entry.text,
                title=entry.title,
                source=feed_title or source_from_url(entry.link),
                date=date,
                url=entry.link or entry.origin,
                author=entry.author,
                origin=entry.origin,
            )
            undated = LoadProblem(entry.origin, "no date in the feed or the URL: kept undated", fatal=False)
            return Loaded([article], [] if date else [undated])
        try:
            page = fetcher.get(entry.link, accept=ARTICLE_TYPES)
        except FetchError as exc:
            return Loaded([], [LoadProblem(entry.origin, exc.reason)])
        return load_page(page, origin=entry.origin, feed_date=entry.date)

    return Source(entry.title[:40] or entry.link, load, origin=entry.origin)


# ---- the verbs ------------------------------------------------------------------------------------


def add_feed(feeds: FeedList, url: str, *, fetcher: Fetcher) -> tuple[Feed, int]:
    """Check that `url` is a feed (or a page naming one) and add it; returns it and its entry count."""
    if not is_url(url):
        raise UsageError(f"{url!r} is not an http(s) URL.")
    with feeds.locked():
        known = feeds.load()
        page = fetcher.get(url, accept={**FEED_TYPES, "text/html": "html"})
        if page.media_type == "text/html":
            found = discover_feed(page.text(), page.final_url)
            if not found:
                raise QAError(f"{url} is a web page that names no RSS or Atom feed; give the feed's own URL.")
            url, page = found, fetcher.get(found, accept=FEED_TYPES)
        if any(f.url == url for f in known):
            raise UsageError(f"{url} is already in the feed list (see `qa feeds list`).")
        title, entries = parse_feed(url, page.body, page.final_url)
        feed = Feed(url=url, title=title, added=_now())
        feeds.save([*known, feed])
    return feed, len(entries)


def remove_feed(feeds: FeedList, url: str) -> Feed:
    """Stop following a feed; the articles ingested from it stay in the store."""
    with feeds.locked():
        known = feeds.load()
        matches = [f for f in known if f.url.rstrip("/") == url.rstrip("/")]
        if not matches:
            raise UsageError(f"{url} is not in the feed list; see `qa feeds list` for the URLs.")
        feeds.save([f for f in known if f not in matches])
    return matches[0]


def update_feeds(feeds: FeedList, *, fetcher: Fetcher, **ingest_options: object) -> FeedsReport:
    """Fetch every feed (conditionally) and ingest its new or changed entries in one ingest run.
    `ingest_options` are ingest's own (library=, chunk_tokens=, ...)."""
    with feeds.locked():
        known = feeds.load()
        results: dict[str, FeedResult] = {}
        planned: list[tuple[Feed, str, str, list[Entry], list[Entry]]] = []
        sources: list[Source] = []
        for feed in known:
            feed.checked = _now()
            try:
                page = fetcher.get(feed.url, accept=FEED_TYPES, etag=feed.etag, last_modified=feed.last_modified)
                if page.not_modified:  # (never while entries are pending: their validators were not kept)
                    feed.status = "not modified" + (f", {len(feed.pending)} pending" if feed.pending else "")
                    results[feed.url] = FeedResult(feed.url, feed.title, "not modified", len(feed.entries))
                    continue
                title, entries = parse_feed(feed.url, page.body, page.final_url)
            except FetchError as exc:
                feed.status = f"failed: {exc.reason}"
                results[feed.url] = FeedResult(feed.url, feed.title, "failed", detail=exc.reason)
                continue
            feed.title = title or feed.title
            todo = [e for e in entries if feed.entries.get(e.key) != e.fingerprint or e.key in feed.pending]
            sources += [entry_source(e, feed.title, fetcher=fetcher) for e in todo]
            planned.append((feed, page.etag, page.last_modified, entries, todo))

        report = ingest(sources, **ingest_options) if sources else IngestReport()  # type: ignore[arg-type]

        failed = {item.origin: item.detail for item in report.items if item.status == "failed"}
        reached = {item.origin for item in report.items} - failed.keys()
        for feed, etag, last_modified, entries, todo in planned:
            done = {e.key for e in todo if e.origin in reached}
            remembered = {e.key: e.fingerprint if e.key in done else feed.entries.get(e.key, "") for e in entries}
            feed.entries = {k: v for k, v in remembered.items() if v}  # entries gone from the feed are dropped
            # an entry that failed (or that an interruption left) waits for the next update, until the feed drops it
            feed.pending = {e.key: failed.get(e.origin, "not reached") for e in todo if e.key not in done}
            # keep the validators only when every entry was dealt with, or a 304 would hide the rest
            feed.etag, feed.last_modified = (etag, last_modified) if not feed.pending else ("", "")
            left = len(feed.pending)
            feed.status = f"{len(done)} new or changed entries" + (
                f", {left} failed and pending (tried again at the next update)" if left else ""
            )
            results[feed.url] = FeedResult(feed.url, feed.title, "updated", len(entries), len(todo), left)
        feeds.save(known)
    return FeedsReport([results[f.url] for f in known], report)
