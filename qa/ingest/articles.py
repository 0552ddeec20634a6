"""An Article from text and metadata: its id from the normalised text, its date normalised, its
source from its URL when none is given, its text cleaned, a title when it has none."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from datetime import datetime
from email.utils import parsedate_to_datetime
from urllib.parse import urlparse

from ..records import Article


def article_id(text: str) -> str:
    """A stable id from the normalised content: the same words give the same id."""
    norm = " ".join(unicodedata.normalize("NFKC", text).lower().split())
    return hashlib.sha256(norm.encode("utf-8")).hexdigest()[:16]


def normalise_date(raw: object) -> str:
    """An ISO date (YYYY-MM-DD) from the usual shapes news metadata comes in, else ""."""
    if not raw:
        return ""
    text = str(raw).strip()
    # "Mon. Feb 26th, 2024" -> "Feb 26, 2024": drop a weekday and ordinal suffixes
    text = re.sub(r"^(mon|tue|wed|thu|fri|sat|sun)[a-z]*\.?,?\s+", "", text, flags=re.I)
    text = re.sub(r"(?<=\d)(st|nd|rd|th)\b", "", text)
    m = re.match(r"^(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})", text)
    if m:
        y, mo, d = (int(g) for g in m.groups())
        try:
            return datetime(y, mo, d).date().isoformat()
        except ValueError:
            return ""
    for parse in (lambda t: datetime.fromisoformat(t.replace("Z", "+00:00")), parsedate_to_datetime):
        try:
            return parse(text).date().isoformat()
        except (TypeError, ValueError, IndexError):
            pass
    for fmt in ("%B %d, %Y", "%b %d, %Y", "%d %B %Y", "%d %b %Y", "%b. %d, %Y"):
        try:
            return datetime.strptime(text, fmt).date().isoformat()
        except ValueError:
            pass
    return ""


def source_from_url(url: str) -> str:
    host = urlparse(url).netloc.lower()
    return host[4:] if host.startswith("www.") else host


def make_article(
    text: str,
    *,
    title: str = "",
    source: str = "",
    date: object = "",
    url: str = "",
    author: str = "",
    origin: str = "",
) -> Article:
    text = clean_text(text)
    title = " ".join(title.split()) or _first_line(text)
    first, _, rest = text.partition("\n")
    if title and first.strip() == title and rest.strip():
        text = rest.strip()  # the headline repeated as the first line of the body
    return Article(
        id=article_id(text),
        text=text,
        title=title[:300],
        source=source or source_from_url(url),
        date=normalise_date(date),
        url=url,
        author=author,
        origin=origin,
    )


def clean_text(text: str) -> str:
    text = unicodedata.normalize("NFC", text.replace("\r\n", "\n").replace("\r", "\n"))
    text = "".join(ch for ch in text if ch in "\n\t" or unicodedata.category(ch)[0] != "C")
    lines = [" ".join(line.split()) for line in text.split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def _first_line(text: str) -> str:
    """A title for an article that has none: its first line, or that line's first sentence."""
    line = text.split("\n", 1)[0]
    if len(line) > 120:
        line = re.split(r"(?<=[.!?])\s", line, maxsplit=1)[0]
    return line if len(line) <= 120 else line[:120].rsplit(" ", 1)[0] + "…"
