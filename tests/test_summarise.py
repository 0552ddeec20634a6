"""`summarise` on the sample articles: real store, tokenizer and embedder; the fake or extractive LLM.

The map-reduce path runs on a real article longer than the context budget (the sample articles
joined into one digest), with the fake model's replies made from that article's own passages.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from qa.chunking import sentence_spans
from qa.errors import UsageError
from qa.ingest.loaders import load_file
from qa.ingest.pipeline import ingest
from qa.records import Sentence
from qa.search import Library
from qa.search.bm25 import open_index
from qa.store import Store
from qa.store.lookup import find_article
from qa.summarise import SummaryOptions, article_passages, parse_lines, split_parts, summarise, trim
from qa.tokens import count_tokens
from qa.verify import cited_text
from tests.fakes import FakeLLM

SAMPLE = Path(__file__).resolve().parent.parent / "eval" / "sample" / "articles"
OPENS = "tram-line-opens.md"


@pytest.fixture(scope="module")
def shelf(tmp_path_factory, embedder):
    """A real store, filled once for the module (the tests only read it): three sample articles,
    and one long article (every sample article's text, joined), far over the 1,000-token budget."""
    home = tmp_path_factory.mktemp("summarise-home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("QA_HOME", str(home))
        mp.setenv("TIKTOKEN_CACHE_DIR", str(home / "tiktoken"))
        bodies = [load_file(p).articles[0].text for p in sorted(SAMPLE.iterdir())]
        digest = home / "digest.txt"
        digest.write_text(
            "Harrowfield and Vantelle: the year in review\nSource: Test Digest\nDate: 2026-06-01\n\n"
            + "\n".join(bodies),
            encoding="utf-8",
        )
        store = Store(home, "articles", embedder.name, embedder.dimension)
        files = [SAMPLE / n for n in (OPENS, "tram-costs-auditor-report.txt", "korvane-strike-ends.md")]
        report = ingest([str(f) for f in files + [digest]], library=Library(store, embedder, open_index(store)))
        assert report.count("new") == 4
    yield store
    store.close()


@pytest.fixture
def opened(shelf):
    return shelf


@pytest.fixture
def digest(shelf):
    return find_article("the year in review", shelf).article


def first_sentence(text: str) -> str:
    a, b = sentence_spans(text)[0]
    return text[a:b]


def all_citations(summary) -> set[int]:
    return {n for s in summary.sentences for n in s.citations}


def test_passages_cover_the_article_in_order(opened):
    article = find_article("Riverside Line opens", opened).article
    passages = article_passages(article, max_tokens=80)
    assert [p.number for p in passages] == list(range(1, len(passages) + 1))
    assert len(passages) > 3
    for p in passages:
        assert article.text[p.start : p.end] == p.text and p.article_id == article.id
        assert count_tokens(p.text) <= 80 or len(sentence_spans(p.text)) == 1
    assert all(a.end <= b.start for a, b in zip(passages, passages[1:], strict=False))
    covered = "".join(article.text[p.start : p.end] for p in passages)
    assert covered.replace(" ", "").replace("\n", "") == article.text.replace(" ", "").replace("\n", "")


def test_find_article_by_id_path_url_or_title(opened):
    article = find_article("riverside line opens", opened).article  # every word of the title
    assert article.title.startswith("Riverside Line opens")
    assert find_article(article.id, opened).article == article
    assert find_article(article.id[:8], opened).article == article
    assert find_article(str(SAMPLE / OPENS), opened).article == article
    assert find_article(article.url, opened).article == article
    with pytest.raises(UsageError, match="matches 2 articles"):
        find_article("Riverside", opened)
    with pytest.raises(UsageError, match="No article matches"):
        find_article("moon landing", opened)


def test_one_call_summary_is_verified_like_an_answer(opened, embedder):
    article = find_article("Riverside Line opens", opened).article
    passages = article_passages(article)
    fake = FakeLLM(
        replies=[
            "**Headline:** Harrowfield's Riverside tram line opened to the public on 21 February 2026 [1].\n"
            f"- {first_sentence(passages[1].text)} [2]\n"
            "- The line was paid for by a Martian mining consortium [3].\n"
            "- The council estimates that 38,000 passengers took a ride on the first day [42]."
        ]
    )
    summary = summarise(article, llm=fake, embedder=embedder)
    assert len(fake.calls) == 1 and summary.parts == 1 and summary.calls == 1
    user = fake.calls[0][1]["content"]
    assert "<doc-" in user and "[1]" in user and "Summarise this article." in user
    assert summary.headline[0].supported and summary.headline[0].citations == (1,)
    second, renumbered = summary.points  # the invented point is not shown, as in answers
    assert second[0].supported and second[0].citations == (2,)
    assert summary.dropped == 1 and "Martian" not in summary.text
    assert 42 not in renumbered[0].citations  # a passage that was not given is not cited
    assert renumbered[0].supported and renumbered[0].added_citation
    assert all_citations(summary) <= {p.number for p in summary.passages}
    assert not summary.fallback


def test_long_article_is_map_reduced_with_global_citations(digest, embedder):
    passages = article_passages(digest)
    parts = split_parts(passages, 1000)
    assert len(parts) >= 3 and sum(count_tokens(p.text) for p in passages) > 3000
    # each part's notes cite its passages as [1], [2] (local numbers) and one invented [9]
    maps = [
        f"- {first_sentence(part[0].text)} [1]\n- {first_sentence(part[-1].text)} [{len(part)}]\n"
        f"- Something invented about dragons [9]."
        for part in parts
    ]
    first, last = parts[0][0], parts[-1][-1]
    reduce = (
        f"Headline: {first_sentence(first.text)} [{first.number}]\n"
        f"- {first_sentence(last.text)} [{last.number}]\n"
        f"- {first_sentence(parts[1][0].text)} [999]"
    )
    fake = FakeLLM(replies=maps + [reduce])
    seen: list[tuple[int, int, str]] = []
    summary = summarise(digest, llm=fake, embedder=embedder, on_progress=lambda *a: seen.append(a))

    assert len(fake.calls) == len(parts) + 1 and summary.parts == len(parts) and summary.calls == len(parts) + 1
    for call, part in zip(fake.calls, parts, strict=False):  # each map call sees only its part, numbered from 1
        user = call[1]["content"]
        assert f"[{len(part)}]" in user and f"[{len(part) + 1}]" not in user
        assert first_sentence(part[0].text)[:40] in user
    notes = fake.calls[-1][1]["content"]
    for part in parts:  # the merge sees the notes with their citations renumbered into the article's
        assert cited_text([Sentence(first_sentence(part[0].text), (part[0].number,), True)]) in notes
        assert cited_text([Sentence(first_sentence(part[-1].text), (part[-1].number,), True)]) in notes
    assert "dragons" not in notes and summary.dropped == len(parts)  # unsupported notes do not go on

    assert summary.headline[0].citations == (first.number,) and summary.headline[0].supported
    assert summary.points[0][0].citations == (last.number,) and summary.points[0][0].supported
    assert 999 not in all_citations(summary)
    numbers = {p.number: p for p in summary.passages}
    for s in summary.sentences:  # every citation points at a real passage of this article that holds the claim
        assert s.citations and all(numbers[n].article_id == digest.id for n in s.citations)
        assert s.text.rstrip(".") in " ".join(numbers[n].text for n in s.citations)
    assert seen[-1][0] == seen[-1][1] == len(parts) + 1  # progress reached every call
    assert [d for d, _, _ in seen] == sorted(d for d, _, _ in seen)


def test_extractive_summary_needs_no_model(opened, embedder):
    article = find_article("Riverside Line opens", opened).article
    bullets = summarise(article, llm=None, embedder=embedder, options=SummaryOptions(bullets=3))
    passages = {p.number: p for p in bullets.passages}
    assert bullets.headline[0].text == first_sentence(article.text)  # the lead
    assert len(bullets.points) == 3
    for s in bullets.sentences:
        assert s.supported and len(s.citations) == 1 and s.text in passages[s.citations[0]].text
    order = [article.text.index(s.text) for s in bullets.sentences]
    assert order == sorted(order)  # in article order
    paragraph = summarise(article, llm=None, embedder=embedder, options=SummaryOptions(style="paragraph", words=60))
    assert not paragraph.headline and len(paragraph.points) == 1
    assert paragraph.sentences[0].text == first_sentence(article.text)
    assert sum(len(s.text.split()) for s in paragraph.sentences) <= 60 * 1.15


def test_unsupported_model_summary_falls_back_to_extractive(opened, embedder):
    article = find_article("Riverside Line opens", opened).article
    summary = summarise(
        article,
        llm=FakeLLM(replies=["Bananas are a good source of potassium [1]."]),
        embedder=embedder,
        options=SummaryOptions(style="paragraph"),
    )
    assert summary.fallback and summary.calls == 1
    assert summary.sentences and all(s.supported and s.citations for s in summary.sentences)


def test_length_is_enforced_on_what_the_model_writes(opened, embedder):
    article = find_article("Riverside Line opens", opened).article
    sentences = [article.text[a:b] for a, b in sentence_spans(article.text)][:8]
    long_reply = " ".join(f"{s} [1]" for s in sentences)
    paragraph = summarise(
        article,
        llm=FakeLLM(replies=[long_reply]),
        embedder=embedder,
        options=SummaryOptions(style="paragraph", words=50),
    )
    assert 0 < sum(len(s.text.split()) for s in paragraph.sentences) <= 50 * 1.15 or len(paragraph.sentences) == 1
    bullets = summarise(
        article,
        llm=FakeLLM(replies=["\n".join(f"- {s} [1]" for s in sentences)]),
        embedder=embedder,
        options=SummaryOptions(bullets=2, words=400),
    )
    assert len(bullets.points) == 2


def test_model_text_is_read_in_the_shapes_small_models_write():
    assert parse_lines("Headline: A B [1]\n- one [2]\n* two [3]\n1. three [4]\nNone") == (
        "A B [1]",
        ["one [2]", "two [3]", "three [4]"],
    )
    assert parse_lines("## Summary:\n**Plain first line [1]**\n- point [2]") == ("Plain first line [1]", ["point [2]"])
    items = [[Sentence("one two three four five", (1,), True)], [Sentence("six seven eight nine ten", (2,), True)]]
    assert trim(items, 6) == items[:1] and trim(items, 10) == items and trim(items, 1) == items[:1]


def test_bad_style_is_a_usage_error(opened, embedder):
    article = find_article("Riverside Line opens", opened).article
    with pytest.raises(UsageError, match="--style"):
        summarise(article, llm=None, embedder=embedder, options=SummaryOptions(style="haiku"))
