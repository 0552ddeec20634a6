"""Turn files into Articles: text, Markdown, HTML (trafilatura), PDF (pypdf) and JSON / JSON lines.

Every problem with one file or one record becomes a `LoadProblem` with a one-line reason;
it never stops the other files from loading.
"""

from __future__ import annotations

import glob
import io
import json
import os
import re
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..records import Article
from .articles import make_article, normalise_date

SUFFIXES = {".txt", ".md", ".markdown", ".html", ".htm", ".json", ".jsonl", ".ndjson", ".pdf"}


@dataclass(frozen=True)
class LoadProblem:
    origin: str
    reason: str
    fatal: bool = True  # False: a warning, the article was still loaded


@dataclass
class Loaded:
    articles: list[Article]
    problems: list[LoadProblem]


class _Skip(Exception):
    """A whole file cannot be loaded; the message says why."""


def read_bytes(path: Path, max_bytes: int) -> bytes:
    """The bytes of a regular file within the size limit; raises _Skip for unusable files."""
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):
            raise _Skip("not a regular file")
        size = info.st_size
        if size > max_bytes:
            raise _Skip(
                f"file is {size / 1e6:.1f} MB, over the {max_bytes / 1e6:.0f} MB limit "
                "(raise QA_MAX_FILE_MB to allow it)"
            )
        data = path.read_bytes()
    except PermissionError:
        raise _Skip("cannot read file: permission denied")
    except OSError as exc:
        raise _Skip(f"cannot read file: {exc.strerror or exc}")
    return data


def read_text(path: Path, max_bytes: int) -> tuple[str, str]:
    """The text of a file and a warning ("" if none); raises _Skip for unusable files."""
    data = read_bytes(path, max_bytes)
    if not data.strip():
        raise _Skip("file is empty")
    if b"\x00" in data[:8192]:
        raise _Skip("binary file, not text (expected .txt, .md, .html or .json lines)")
    try:
        return data.decode("utf-8-sig"), ""
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("cp1252"), "not UTF-8: read as Windows-1252"
    except UnicodeDecodeError:
        raise _Skip("not UTF-8 text and not Windows-1252 either; convert it with `iconv -t UTF-8`")


def _front_matter(text: str) -> tuple[dict[str, str], str]:
    m = re.match(r"^---\s*\n(.*?)\n---\s*\n", text, re.S)
    if not m:
        return {}, text
    meta = {}
    for line in m.group(1).splitlines():
        if ":" in line:
            key, value = line.split(":", 1)
            meta[key.strip().lower()] = value.strip().strip("\"'")
    return meta, text[m.end() :]


def _header_lines(text: str) -> tuple[dict[str, str], str]:
    """`Source: X` / `Date: Y` lines near the top of a plain text file, after a title line."""
    lines = text.split("\n")
    meta: dict[str, str] = {}
    body_from = 0
    for i, line in enumerate(lines[:8]):
        m = re.match(r"^(title|source|date|url|author|by)\s*:\s*(.+)$", line.strip(), re.I)
        if m:
            meta[m.group(1).lower()] = m.group(2).strip()
            body_from = i + 1
        elif line.strip() and len(line) < 40 and normalise_date(line) and "date" not in meta:
            meta["date"] = line.strip()  # a dateline such as "Mon. Feb 26th, 2024"
            body_from = i + 1
        elif line.strip() and i == 0 and len(line) < 200:
            meta["title"] = line.strip()
        elif line.strip():
            break  # the body has begun: a later "Source: ..." line is part of the text
    if "title" in meta and body_from == 0 and not any(k in meta for k in ("source", "date")):
        return {}, text  # a first line alone is no header: keep it in the text
    if body_from == 0 and "title" in meta:
        body_from = 1
    return meta, "\n".join(lines[body_from:])


def dated(article: Article, raw: object, problems: list[LoadProblem] | None) -> Article:
    """The article; a date it was given that cannot be read is a warning (it is stored undated)."""
    given = " ".join(str(raw or "").split())
    if given and not article.date and problems is not None:
        problems.append(
            LoadProblem(
                article.origin,
                f"date {given[:40]!r} is not a date qa can read (write it as YYYY-MM-DD): stored undated",
                fatal=False,
            )
        )
    return article


def load_plain(text: str, origin: str, problems: list[LoadProblem] | None = None) -> Article:
    meta, body = _front_matter(text)
    if not meta:
        meta, body = _header_lines(text)
    if not body.strip():
        raise _Skip("no article text after the header")
    named = re.search(r"(\d{4}-\d{2}-\d{2})", Path(origin).name)  # a date in the file name, as a last resort
    article = make_article(
        body,
        title=meta.get("title", ""),
        source=meta.get("source", ""),
        date=meta.get("date", "") or (named.group(1) if named else ""),
        url=meta.get("url", ""),
        author=meta.get("author", meta.get("by", "")),
        origin=origin,
    )
    return dated(article, meta.get("date", ""), problems)


def load_html(html: str, origin: str) -> Article:
    import trafilatura

    try:
        doc = trafilatura.bare_extraction(
            html, with_metadata=True, include_comments=False, favor_precision=True, as_dict=False
        )
    except Exception as exc:  # trafilatura raises assorted parser errors on hostile markup
        raise _Skip(f"HTML could not be parsed ({exc.__class__.__name__})")
    text = getattr(doc, "text", None) if doc is not None else None
    if not text or len(text.split()) < 5:
        raise _Skip("no article text found in the HTML")
    field = lambda name: getattr(doc, name, None) or ""  # a trafilatura Document
    return make_article(
        text,
        title=field("title"),
        source=field("sitename"),
        date=field("date"),
        url=field("url"),
        author=field("author"),
        origin=origin,
    )


def load_pdf(data: bytes, origin: str) -> Article:
    """A PDF's text (pages in order, lines re-flowed) with its title, author and creation date."""
    import logging

    import pypdf

    logging.getLogger("pypdf").setLevel(logging.ERROR)  # it warns on every slightly broken file
    try:
        reader = pypdf.PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise _Skip("PDF is encrypted; save an unprotected copy first")
        pages = [page.extract_text() or "" for page in reader.pages]
        info: Any = reader.metadata or {}
        meta = {key: str(info.get(f"/{key}") or "") for key in ("Title", "Author", "CreationDate")}
    except _Skip:
        raise
    except Exception as exc:  # pypdf raises assorted errors on damaged files
        raise _Skip(f"PDF could not be read ({exc.__class__.__name__})")
    text = "\n\n".join(_reflow(page) for page in pages if page.strip())
    if len(text.split()) < 5:
        raise _Skip("no text in the PDF (scanned pages need OCR first)")
    title = meta["Title"]
    if re.search(r"^microsoft \w+ - |\.(docx?|pdf|odt|tex)$|^untitled", title, re.I):
        title = ""  # the name of the file it was made from, not a headline
    made = re.match(r"^(?:D:)?(\d{4})(\d{2})(\d{2})", meta["CreationDate"])
    return make_article(
        text, title=title, author=meta["Author"], origin=origin, date="-".join(made.groups()) if made else ""
    )


def _reflow(page: str) -> str:
    """PDF text comes in printed lines: join them into paragraphs, mend words hyphenated at a line end."""
    paragraphs = re.split(r"\n\s*\n", page)
    return "\n\n".join(" ".join(re.sub(r"(?<=[a-z])-\n(?=[a-z])", "", p).split()) for p in paragraphs)


def load_one(loader: Callable[..., Article], *args: object, origin: str) -> Loaded:
    """Run one single-article loader on data already in memory (a download); a failure is a LoadProblem."""
    try:
        return Loaded([loader(*args)], [])
    except _Skip as exc:
        return Loaded([], [LoadProblem(origin, str(exc))])


def _record_articles(record: object, origin: str, problems: list[LoadProblem]) -> Iterator[Article]:
    """A JSON record is one article, or a RealTimeQA `{search_result: [...]}` line of several."""
    if not isinstance(record, dict):
        raise _Skip("expected a JSON object")
    if isinstance(record.get("search_result"), list):
        for n, item in enumerate(record["search_result"]):
            try:
                yield from _record_articles(item, f"{origin}[{n}]", problems)
            except _Skip as exc:  # one bad search result must not drop the rest of its line
                problems.append(LoadProblem(f"{origin}[{n}]", str(exc)))
        return
    text = record.get("text") or record.get("content") or record.get("body") or record.get("article")
    if not isinstance(text, str) or not text.strip():
        raise _Skip("record has no text (expected a 'text' field)")
    authors = record.get("authors") or record.get("author") or ""
    if isinstance(authors, list):
        authors = ", ".join(str(a) for a in authors)
    date = record.get("date") or record.get("publish_date") or record.get("published") or ""
    article = make_article(
        text,
        title=str(record.get("title") or ""),
        source=str(record.get("source") or ""),
        date=date,
        url=str(record.get("url") or ""),
        author=str(authors),
        origin=origin,
    )
    yield dated(article, date, problems)


def _one_document(text: str) -> object:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return None  # JSON lines (several documents), or broken: read line by line


def load_json(text: str, origin: str, problems: list[LoadProblem]) -> list[Article]:
    stripped = text.strip()
    if stripped.startswith("["):
        try:
            records = json.loads(text)
        except json.JSONDecodeError as exc:
            raise _Skip(f"invalid JSON at line {exc.lineno}: {exc.msg}")
        numbered = [(f"{origin}#{i + 1}", r) for i, r in enumerate(records)]
    elif stripped.startswith("{") and "\n" in stripped and (whole := _one_document(stripped)) is not None:
        numbered = [(origin, whole)]  # one pretty-printed object
    else:
        numbered = []
        for lineno, line in enumerate(text.split("\n"), 1):
            if not line.strip():
                continue
            try:
                numbered.append((f"{origin}:{lineno}", json.loads(line)))
            except json.JSONDecodeError as exc:
                problems.append(LoadProblem(f"{origin}:{lineno}", f"line {lineno} is not valid JSON ({exc.msg})"))
        if not numbered and not any(p.origin.startswith(f"{origin}:") for p in problems):
            raise _Skip("no JSON records: the file holds only white space")
    articles: list[Article] = []
    for where, record in numbered:
        try:
            articles.extend(_record_articles(record, where, problems))
        except _Skip as exc:
            problems.append(LoadProblem(where, str(exc)))
    return articles


def load_file(path: Path, max_bytes: int = 20_000_000) -> Loaded:
    origin = str(path)
    problems: list[LoadProblem] = []
    try:
        if path.suffix.lower() == ".pdf":
            return Loaded([load_pdf(read_bytes(path, max_bytes), origin)], problems)
        text, warning = read_text(path, max_bytes)
        if warning:
            problems.append(LoadProblem(origin, warning, fatal=False))
        suffix = path.suffix.lower()
        if suffix in (".html", ".htm"):
            articles = [load_html(text, origin)]
        elif suffix in (".json", ".jsonl", ".ndjson"):
            articles = load_json(text, origin, problems)
        else:
            articles = [load_plain(text, origin, problems)]
    except _Skip as exc:
        return Loaded([], [LoadProblem(origin, str(exc))])
    # text made only of control or unassigned characters cleans down to nothing
    problems += [
        LoadProblem(a.origin, "no readable text (only control or unassigned characters)")
        for a in articles
        if not a.text
    ]
    return Loaded([a for a in articles if a.text], problems)


def _folder_files(folder: Path, problems: list[LoadProblem]) -> list[Path]:
    """The article files in a folder and its subfolders, hidden ones left out. A symbolic link that
    leads out of the folder is not followed (a link to a system file is no article); each is said."""
    root = folder.resolve()
    found = []
    for p in sorted(folder.rglob("*")):  # rglob does not descend into linked folders
        if any(part.startswith(".") for part in p.relative_to(folder).parts):
            continue
        article_file = p.is_file() and p.suffix.lower() in SUFFIXES
        if p.is_symlink() and not p.resolve().is_relative_to(root):
            if article_file or p.is_dir():
                problems.append(
                    LoadProblem(
                        str(p),
                        f"symbolic link to {p.resolve()}, outside the folder: not followed "
                        "(name it on the command line to ingest it)",
                        fatal=False,
                    )
                )
            continue
        if article_file:
            found.append(p)
    return found


def expand_paths(inputs: list[str]) -> tuple[list[Path], list[LoadProblem]]:
    """Files, folders (recursive, known suffixes only) and glob patterns, in a stable order."""
    files: list[Path] = []
    problems: list[LoadProblem] = []
    for raw in inputs:
        matches = sorted(glob.glob(raw, recursive=True)) if glob.has_magic(raw) else [raw]
        if not matches:
            problems.append(LoadProblem(raw, "no file matches this pattern"))
        for match in matches:
            path = Path(match)
            if path.is_dir():
                found = _folder_files(path, problems)
                if not found:
                    problems.append(LoadProblem(match, "folder has no .txt, .md, .html, .json or .pdf files"))
                files.extend(found)
            elif path.exists():
                files.append(path)
            else:
                problems.append(LoadProblem(raw, "no such file or folder"))
    seen: set[Path] = set()
    unique: list[Path] = []
    for f in files:  # the first mention of each file, in order
        if f.resolve() not in seen:
            seen.add(f.resolve())
            # absolute (links not resolved): an article's origin names its file from any folder later
            unique.append(Path(os.path.abspath(f)))
    return unique, problems
