"""Loaders and chunker under hypothesis: random bytes, random Unicode, huge lines, deep HTML.
They must never crash, and every input is either loaded or reported (never silently lost)."""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qa.chunking import chunk_article
from qa.ingest.articles import make_article
from qa.ingest.loaders import load_file

SUFFIXES = [".txt", ".md", ".html", ".json", ".jsonl"]
FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _check_loaded(path: Path) -> None:
    loaded = load_file(path, max_bytes=2_000_000)
    assert loaded.articles or loaded.problems, "an input must be loaded or reported"
    for problem in loaded.problems:
        assert problem.reason and "\n" not in problem.reason
    for article in loaded.articles:
        assert article.text.strip() and len(article.id) == 16


@FUZZ
@given(data=st.binary(max_size=4000), suffix=st.sampled_from(SUFFIXES))
def test_random_bytes_never_crash_a_loader(tmp_path, data, suffix):
    path = tmp_path / f"f{suffix}"
    path.write_bytes(data)
    _check_loaded(path)


@FUZZ
@given(text=st.text(max_size=3000), suffix=st.sampled_from(SUFFIXES))
def test_random_unicode_never_crashes_a_loader(tmp_path, text, suffix):
    path = tmp_path / f"f{suffix}"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    _check_loaded(path)


@FUZZ
@given(depth=st.integers(min_value=1, max_value=3000), word=st.sampled_from(["news", "ünïcödé", "東京", "🙂"]))
def test_deeply_nested_html_never_crashes(tmp_path, depth, word):
    html = "<html><body>" + "<div>" * depth + f"<p>{word} " * 50 + "</div>" * depth + "</body></html>"
    path = tmp_path / "deep.html"
    path.write_text(html, encoding="utf-8")
    _check_loaded(path)


@FUZZ
@given(text=st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=6000))
def test_chunker_covers_any_text_with_valid_offsets(text):
    article = make_article(text, title="t", origin="x")
    if not article.text:
        return
    chunks = chunk_article(article, max_tokens=60, overlap=10)
    assert chunks
    for c in chunks:
        assert article.text[c.start : c.end] == c.text
    covered = set()
    for c in chunks:
        covered.update(range(c.start, c.end))
    assert all(i in covered for i, ch in enumerate(article.text) if not ch.isspace())


def test_a_huge_single_line_is_chunked(tmp_path):
    path = tmp_path / "huge.txt"
    path.write_text("word " * 200_000, encoding="utf-8")  # 1 MB on one line, no punctuation
    [article] = load_file(path).articles
    chunks = chunk_article(article)
    assert len(chunks) > 100 and max(c.tokens for c in chunks) <= 300
