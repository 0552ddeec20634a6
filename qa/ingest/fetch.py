"""Fetch articles from the web: one GET with limits, then the page becomes an Article like a file.

Every failure (timeout, too large, wrong content type, redirect loop, an HTTP error, a refused
connection) is one `FetchError` with a one-line reason; `load_url` turns it into a `LoadProblem`.
Nothing is fetched unless the user named a URL or a feed: `qa` stays offline otherwise.
"""

from __future__ import annotations

import codecs
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import date
from urllib.parse import urldefrag, urljoin, urlparse

import httpx

from .. import __version__
from ..errors import QAError
from .articles import normalise_date, source_from_url
from .loaders import Loaded, LoadProblem, load_html, load_one, load_pdf, load_plain

USER_AGENT = f"qa/{__version__}"

# media type -> how to read it
ARTICLE_TYPES = {"text/html": "html", "application/xhtml+xml": "html", "application/pdf": "pdf", "text/plain": "text"}
FEED_TYPES = {
    t: "feed"
    for t in (
        "application/rss+xml",
        "application/atom+xml",
        "application/rdf+xml",
        "application/x-rss+xml",
        "application/xml",
        "text/xml",
    )
}


def is_url(text: str) -> bool:
    return text.lower().startswith(("http://", "https://"))


@dataclass(frozen=True)
class FetchLimits:
    timeout: float = 20.0  # seconds for the whole request, redirects and body included
    max_bytes: int = 10_000_000
    max_redirects: int = 5


@dataclass(frozen=True)
class Page:
    url: str  # as asked for
    final_url: str  # after redirects
    status: int  # 200-299, or 304: unchanged since the ETag / Last-Modified we sent
    media_type: str = ""  # "text/html", without parameters
    charset: str = ""
    body: bytes = b""
    etag: str = ""
    last_modified: str = ""

    @property
    def not_modified(self) -> bool:
        return self.status == 304

    def text(self) -> str:
        """The body decoded: the declared charset, else a <meta charset>, else UTF-8 (Windows-1252 as fallback)."""
        declared = self.charset or _meta_charset(self.body[:4096])
        for encoding in (declared, "utf-8-sig"):
            if encoding and _known_codec(encoding):
                try:
                    return self.body.decode(encoding)
                except UnicodeDecodeError:
                    pass
        return self.body.decode("cp1252", errors="replace")


class FetchError(QAError):
    """One URL could not be fetched; `reason` is one line; `transient` failures are worth retrying."""

    def __init__(self, url: str, reason: str, transient: bool = False):
        super().__init__(f"Cannot fetch {url}: {reason}")
        self.url, self.reason, self.transient = url, reason, transient


class Fetcher:
    """An HTTP client with our limits and User-Agent. `transport` lets tests mock the network."""

    def __init__(self, limits: FetchLimits = FetchLimits(), transport: httpx.BaseTransport | None = None):
        self.limits = limits
        self._transport = transport
        self._client: httpx.Client | None = None  # made on first use: ingesting files needs none

    @property
    def client(self) -> httpx.Client:
        if self._client is None:
            self._client = httpx.Client(
                timeout=httpx.Timeout(self.limits.timeout),
                follow_redirects=False,
                headers={"User-Agent": USER_AGENT},
                transport=self._transport,
            )
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def __enter__(self) -> Fetcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def get(
        self, url: str, *, accept: Mapping[str, str] = ARTICLE_TYPES, etag: str = "", last_modified: str = ""
    ) -> Page:
        """GET `url`, following at most `max_redirects` redirects; conditional when etag/last_modified given."""
        if not is_url(url):
            raise FetchError(url, "only http:// and https:// URLs can be fetched")
        headers = {"Accept": ", ".join([*accept, "*/*;q=0.1"])}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        deadline = time.monotonic() + self.limits.timeout
        visited = [url]
        try:
            while True:
                if time.monotonic() > deadline:  # a chain of slow redirects
                    raise self._timeout(url)
                with self.client.stream("GET", visited[-1], headers=headers) as response:
                    if not response.has_redirect_location:
                        return self._read(url, response, accept, deadline)
                    target = str(response.url.join(response.headers["location"]))
                if target in visited:
                    loop = " -> ".join(urlparse(u).path or "/" for u in [*visited[visited.index(target) :], target])
                    raise FetchError(url, f"redirect loop ({loop})")
                if len(visited) > self.limits.max_redirects:
                    raise FetchError(url, f"too many redirects (more than {self.limits.max_redirects})")
                if not is_url(target):
                    raise FetchError(url, f"redirected to {target}, which is not an http(s) URL")
                visited.append(target)
        except httpx.TimeoutException:
            raise self._timeout(url)
        except httpx.ConnectError as exc:
            refused = "refused" in str(exc).lower()
            raise FetchError(
                url, "connection refused (is the server up?)" if refused else f"cannot connect ({exc})", transient=True
            )
        except httpx.InvalidURL as exc:
            raise FetchError(url, f"not a valid URL ({exc})")
        except httpx.HTTPError as exc:  # protocol errors, broken connections
            raise FetchError(
                url, f"{exc.__class__.__name__}: {exc}" if str(exc) else exc.__class__.__name__, transient=True
            )

    def _timeout(self, url: str) -> FetchError:
        return FetchError(
            url, f"timed out after {self.limits.timeout:g} s (raise QA_FETCH_TIMEOUT to wait longer)", transient=True
        )

    def _read(self, url: str, response: httpx.Response, accept: Mapping[str, str], deadline: float) -> Page:
        status = response.status_code
        common = dict(
            url=url,
            final_url=urldefrag(str(response.url))[0],
            status=status,
            etag=response.headers.get("etag", ""),
            last_modified=response.headers.get("last-modified", ""),
        )
        if status == 304:
            return Page(**common)
        if status >= 400 or status < 200:
            raise FetchError(
                url,
                f"HTTP {status} {response.reason_phrase}".strip(),
                transient=status in (408, 425, 429) or status >= 500,
            )
        media, charset = _content_type(response.headers.get("content-type", ""))
        if media not in accept and media not in _SNIFFED:
            hint = "; follow a feed with `qa feeds add URL`" if media in FEED_TYPES else ""
            raise FetchError(url, f"content type {media} is not {_expected(accept)}{hint}")
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.limits.max_bytes:
            raise self._too_large(url, int(declared))
        body = bytearray()
        for piece in response.iter_bytes():
            body += piece
            if len(body) > self.limits.max_bytes:
                raise self._too_large(url, 0)
            if time.monotonic() > deadline:  # a server that trickles bytes must not hold us forever
                raise self._timeout(url)
        if media in _SNIFFED:
            media = _sniff(bytes(body[:1024]))
            if media not in accept:
                raise FetchError(url, f"content is not {_expected(accept)} (no usable Content-Type)")
        return Page(media_type=media, charset=charset, body=bytes(body), **common)

    def _too_large(self, url: str, size: int) -> FetchError:
        limit = f"over the {self.limits.max_bytes / 1e6:g} MB limit (raise QA_FETCH_MAX_MB to allow it)"
        return FetchError(url, f"response is {size / 1e6:.3g} MB, {limit}" if size else f"response is {limit}")


_SNIFFED = {"", "application/octet-stream", "binary/octet-stream"}


def _content_type(header: str) -> tuple[str, str]:
    media, _, params = header.partition(";")
    m = re.search(r"charset\s*=\s*[\"']?([\w.:-]+)", params, re.I)
    return media.strip().lower(), (m.group(1) if m else "")


def _sniff(head: bytes) -> str:
    start = head.lstrip()[:512].lower()
    if start.startswith(b"%pdf-"):
        return "application/pdf"
    if start.startswith(b"<?xml") and (b"<rss" in start or b"<feed" in start or b"<rdf" in start):
        return "application/xml"
    if start.startswith((b"<!doctype html", b"<html")) or b"<body" in start or b"<head" in start:
        return "text/html"
    return "application/octet-stream"


def _expected(accept: Mapping[str, str]) -> str:
    kinds = sorted(set(accept.values()))
    names = {"html": "HTML", "pdf": "PDF", "text": "plain text", "feed": "an RSS or Atom feed"}
    return (
        "an article (HTML, PDF or plain text)"
        if kinds == ["html", "pdf", "text"]
        else " or ".join(names.get(k, k) for k in kinds)
    )


def _meta_charset(head: bytes) -> str:
    m = re.search(rb"<meta[^>]+charset\s*=\s*[\"']?([\w.:-]+)", head, re.I)
    return m.group(1).decode("ascii", "replace") if m else ""


def _known_codec(name: str) -> bool:
    try:
        codecs.lookup(name)
        return True
    except LookupError:
        return False


# ---- metadata: canonical URL and date -----------------------------------------------------------

_MONTHS = {m: i for i, m in enumerate("jan feb mar apr may jun jul aug sep oct nov dec".split(), 1)}


def date_from_url(url: str) -> str:
    """A date written in a URL path: /2026/01/12/, /2026-01-12-, /2026/jan/12/; else ""."""
    path = urlparse(url).path.lower()
    m = re.search(r"(?<!\d)((?:19|20)\d{2})[/-](\d{1,2}|[a-z]{3})[/-](\d{1,2})(?!\d)", path)
    if not m:
        return ""
    year, month, day = m.groups()
    month_number = _MONTHS.get(month, 0) if month.isalpha() else int(month)
    try:
        found = date(int(year), month_number, int(day))
    except ValueError:
        return ""
    return found.isoformat() if found <= date.today() else ""


def page_date(html: str) -> str:
    """The publication date in the page's own markup (meta tags, JSON-LD, <time>), never the URL's."""
    from htmldate import find_date  # trafilatura's date extractor

    try:
        # url="" keeps htmldate from reading a date out of the URL: that comes last, after the feed's
        found = find_date(html, url="", extensive_search=False, original_date=True, outputformat="%Y-%m-%d")
    except Exception:  # htmldate raises assorted parser errors on hostile markup
        return ""
    return normalise_date(found or "")


def canonical_url(html: str, final_url: str) -> str:
    """<link rel=canonical>, else og:url, resolved against the final URL; else the final URL."""
    import lxml.html

    try:
        tree = lxml.html.document_fromstring(html)
    except Exception:  # lxml raises ParserError / ValueError on empty or odd documents
        return final_url
    found = [
        link.get("href", "")
        for link in tree.iterfind(".//link[@rel]")
        if "canonical" in link.get("rel", "").lower().split()
    ]
    found += [
        meta.get("content", "")
        for meta in tree.iterfind(".//meta[@property]")
        if meta.get("property", "").lower() == "og:url"
    ]
    for href in found:
        url = urldefrag(urljoin(final_url, href.strip()))[0]
        parsed = urlparse(url)
        if href.strip() and is_url(url) and parsed.netloc:
            if parsed.path in ("", "/") and urlparse(final_url).path not in ("", "/"):
                continue  # a template that points every page at the home page: not this article
            return url
    return final_url


# ---- a fetched page as an Article ------------------------------------------------------------------


def load_url(url: str, *, fetcher: Fetcher, origin: str = "", feed_date: str = "") -> Loaded:
    """Fetch one URL and load it as an HTML, PDF or plain-text article; problems become LoadProblems."""
    try:
        page = fetcher.get(url, accept=ARTICLE_TYPES)
    except FetchError as exc:
        return Loaded([], [LoadProblem(origin or url, exc.reason)])
    return load_page(page, origin=origin or url, feed_date=feed_date)


def load_page(page: Page, *, origin: str, feed_date: str = "") -> Loaded:
    """The article in a fetched page. Identity is its canonical URL; the date comes from the page's
    metadata, else the feed, else the URL; an article with none is kept undated (date "")."""
    kind = ARTICLE_TYPES.get(page.media_type)
    if kind == "pdf":
        loaded = load_one(load_pdf, page.body, origin, origin=origin)
        url, found = page.final_url, ""
    else:
        text = page.text()
        loader = load_html if kind == "html" else load_plain
        loaded = load_one(loader, text, origin, origin=origin)
        url = canonical_url(text, page.final_url) if kind == "html" else page.final_url
        found = page_date(text) if kind == "html" else ""
    articles = []
    for article in loaded.articles:
        when = (
            (article.date if kind != "html" else found)
            or normalise_date(feed_date)
            or date_from_url(url)
            or date_from_url(page.final_url)
        )
        articles.append(replace(article, url=url, date=when, source=article.source or source_from_url(url)))
        if not when:
            loaded.problems.append(
                LoadProblem(origin, "no date in the page, the feed or the URL: kept undated", fatal=False)
            )
    return Loaded(articles, loaded.problems)


def limits_from(timeout: float, max_mb: float, max_redirects: int) -> FetchLimits:
    return FetchLimits(timeout=timeout, max_bytes=int(max_mb * 1_000_000), max_redirects=max_redirects)
