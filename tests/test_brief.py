"""`brief` and the `qa summarise` / `qa brief` commands on the sample articles: real store,
tokenizer and embedder; the fake LLM (a queue of replies plus the calls it received) or extractive."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from qa.brief import BriefOptions, brief, find_articles, parse_sections
from qa.chunking import sentence_spans
from qa.cli import app
from qa.cli.documents import briefing_markdown
from qa.ingest.pipeline import ingest
from qa.search import Library
from qa.search.bm25 import open_index
from qa.search.retrieval import Filters
from qa.store import Store
from tests.fakes import FakeLLM

SAMPLE = Path(__file__).resolve().parent.parent / "eval" / "sample" / "articles"
TRAM = "Riverside tram line cost"


@pytest.fixture(scope="module")
def shelf(tmp_path_factory, embedder):
    """The twelve sample articles in a real store, ingested once for the module (the tests only read)."""
    home = tmp_path_factory.mktemp("brief-home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("QA_HOME", str(home))
        mp.setenv("TIKTOKEN_CACHE_DIR", str(home / "tiktoken"))
        store = Store(home, "articles", embedder.name, embedder.dimension)
        report = ingest([str(SAMPLE)], library=Library(store, embedder, open_index(store)))
        assert report.count("new") == 12
        index = open_index(store)
    yield home, store, index
    store.close()


@pytest.fixture
def library(shelf, embedder):
    return Library(shelf[1], embedder, shelf[2])


def first_sentence(text: str) -> str:
    a, b = sentence_spans(text)[0]
    return text[a:b]


def cited_passages_hold(briefing, item) -> bool:
    numbers = {p.number: p for p in briefing.passages}
    return all(n in numbers for s in item for n in s.citations)


def test_extractive_briefing_is_diverse_dated_and_cited(library, embedder):
    b = brief(TRAM, library=library, llm=None)
    assert b.calls == 0 and not b.fallback
    assert len(b.sources) >= 3  # diverse across outlets
    dates = [e.date for e in b.timeline]
    assert dates == sorted(dates) and len(dates) >= 3  # ordered by article date
    for entry in b.timeline:  # each entry cites a passage of its own article
        numbers = {p.number: p for p in b.passages}
        assert all(numbers[n].article_id == entry.article_id for s in entry.sentences for n in s.citations)
    numbers = {p.number: p for p in b.passages}
    for s in b.sentences:  # extractive sentences are quotes of the passages they cite
        assert s.supported and s.citations and s.text in numbers[s.citations[0]].text
    assert b.overview and b.key_points
    said = " ".join(s.text for item in b.disagreements for s in item)
    assert "431 million euros" in said or "37 million euros apart" in said  # the auditor/council dispute
    assert any("not been confirmed" in s.text for item in b.open_questions for s in item)


def test_disagreement_between_sources_is_found(library, embedder):
    b = brief("Vantelle drought crop losses farmers", library=library, llm=None)
    said = " ".join(s.text for item in b.disagreements for s in item)
    assert "86 million euros" in said and "54 million euros" in said


def test_filters_restrict_the_briefing(library, embedder):
    b = brief(
        TRAM,
        library=library,
        llm=None,
        options=BriefOptions(filters=Filters(since="2026-01-01")),
    )
    assert b.articles and all(a.date >= "2026-01-01" for a in b.articles)
    assert all(e.date >= "2026-01-01" for e in b.timeline)


def test_model_briefing_claims_are_verified(library, embedder):
    options = BriefOptions(articles=3)
    articles, passages, _ = find_articles(TRAM, library=library, options=options)
    own = {a.id: [p for p in passages if p.article_id == a.id] for a in articles}
    # map: each article's notes cite its own passages as [1], [2]...; the second article's note is invented
    maps = [
        f"- {first_sentence(own[a.id][0].text)} [1]" if i != 1 else "- The trams are powered by goodwill [1]."
        for i, a in enumerate(articles)
    ]
    cost = next(p for p in passages if "468 million euros" in p.text)
    reduce = (
        f"Overview: {first_sentence(passages[0].text)} [{passages[0].number}]\n"
        "Key points:\n"
        f"- The city auditor estimated the final cost at 468 million euros [{cost.number}].\n"
        f"- The auditor estimated the final cost at 468 million euros [77].\n"
        "- The tram line was paid for entirely by a Martian mining consortium [1].\n"
        f"Disagreements:\n- {first_sentence(passages[0].text)} [{passages[0].number}]\n"
        "Open questions:\n- When will the Martian consortium be repaid [2]?"
    )
    fake = FakeLLM(replies=maps + [reduce])
    b = brief(TRAM, library=library, llm=fake, options=options)

    assert len(fake.calls) == len(articles) + 1 and b.calls == len(articles) + 1
    notes = fake.calls[-1][1]["content"]
    first = own[articles[0].id][0]
    assert f"[{first.number}]" in notes and first_sentence(first.text)[:-1] in notes  # renumbered to global
    assert "goodwill" not in notes and b.dropped == 1  # an unsupported note does not reach the merge
    # ...and that article is noted by its own key sentences instead
    assert b.timeline[1].sentences[0].supported and "goodwill" not in b.timeline[1].sentences[0].text

    supported, invented, martian = b.key_points
    assert supported[0].supported and supported[0].citations == (cost.number,)
    assert 77 not in invented[0].citations  # a passage that was not given is never cited
    assert invented[0].supported and invented[0].added_citation
    assert not martian[0].supported  # flagged, not silently kept or dropped
    assert b.overview[0].supported
    assert all(cited_passages_hold(b, item) for item in [b.overview, *b.key_points, *b.disagreements])
    markdown = briefing_markdown(b)
    assert "Martian mining consortium" in markdown and "⚠" in markdown
    flagged = [line for line in markdown.splitlines() if "Martian mining" in line][0]
    assert "not supported" in flagged
    # one article's account is no disagreement: set aside and counted; the dispute the articles state is reported
    assert b.set_aside == 1 and "cite one article" in markdown
    assert b.disagreements and all(first_sentence(passages[0].text) != s.text for i in b.disagreements for s in i)


def test_each_timeline_entry_is_its_articles_note_closest_to_the_topic(library, embedder):
    options = BriefOptions(articles=3)
    articles, passages, qvec = find_articles(TRAM, library=library, options=options)
    own = {a.id: [p for p in passages if p.article_id == a.id] for a in articles}
    maps, best = [], {}
    for a in articles:
        text = own[a.id][0].text
        sentences = [text[x:y] for x, y in sentence_spans(text)]
        scores = embedder.embed(sentences) @ qvec
        maps.append("\n".join(f"- {s} [1]" for s in sentences[::-1]))  # the closest note is not necessarily first
        best[a.id] = sentences[int(scores.argmax())]
    reduce = f"Overview: {first_sentence(passages[0].text)} [{passages[0].number}]"
    b = brief(TRAM, library=library, llm=FakeLLM(replies=maps + [reduce]), options=options)
    assert {e.article_id: e.sentences[0].text for e in b.timeline} == best


def test_unsupported_briefing_falls_back_to_key_sentences(library, embedder):
    fake = FakeLLM(
        replies=["Overview: Bananas are a good source of potassium [1].\nKey points:\n- Cats sleep a lot [2]."]
    )
    b = brief(TRAM, library=library, llm=fake, options=BriefOptions(articles=3))
    assert b.fallback and b.overview and all(s.supported for s in b.sentences)


def test_model_sections_are_read_in_the_shapes_small_models_write():
    raw = (
        "**Overview:** The line opened [1]. It was late [2].\n\n### Key points\n1. Cost rose [3].\n* Fares [4].\n"
        "**Disagreements:**\n- None.\nOpen questions:\n- What next? [5]"
    )
    sections = parse_sections(raw)
    assert sections == {
        "overview": ["The line opened [1]. It was late [2]."],
        "key_points": ["Cost rose [3].", "Fares [4]."],
        "disagreements": [],
        "open_questions": ["What next? [5]"],
    }
    # headers run into the previous line, as the 1.5B model wrote them once
    inline = parse_sections("Overview: The line opened [1]. Key points: - Cost rose [3]. Open questions: - Why? [2]")
    assert inline == {
        "overview": ["The line opened [1]."],
        "key_points": ["Cost rose [3]."],
        "disagreements": [],
        "open_questions": ["Why? [2]"],
    }


def test_a_briefing_without_supported_key_points_shows_the_articles_notes(library, embedder):
    options = BriefOptions(articles=3)
    articles, passages, _ = find_articles(TRAM, library=library, options=options)
    own = {a.id: [p for p in passages if p.article_id == a.id] for a in articles}
    maps = [f"- {first_sentence(own[a.id][0].text)} [1]" for a in articles]
    reduce = (
        f"Overview: {first_sentence(passages[0].text)} [{passages[0].number}]\nKey points:\n- Cats sleep a lot [2]."
    )
    b = brief(TRAM, library=library, llm=FakeLLM(replies=maps + [reduce]), options=options)
    assert b.overview[0].supported and "no supported key points" in b.fallback
    assert not b.key_points[0][0].supported  # the model's point is still shown, flagged
    notes = b.key_points[1:]
    assert notes and all(s.supported for item in notes for s in item)
    assert first_sentence(passages[0].text) not in [s.text for item in notes for s in item]  # not the overview again


# ---- the commands ---------------------------------------------------------------------------


@pytest.fixture
def qa(shelf, monkeypatch):
    monkeypatch.setenv("QA_HOME", str(shelf[0]))
    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(app, [str(a) for a in args])

    return invoke


def test_cli_summarise_extractive(qa, tmp_path):
    result = qa("summarise", "riverside line opens", "--llm", "extractive", "--bullets", "3")
    assert result.exit_code == 0, result.output
    assert (
        "# Summary: Riverside Line opens" in result.stdout and "[1]" in result.stdout and "## Sources" in result.stdout
    )
    data = json.loads(
        qa(
            "summarise",
            str(SAMPLE / "korvane-strike-ends.md"),
            "--llm",
            "extractive",
            "--json",
            "--style",
            "paragraph",
            "--words",
            "50",
        ).stdout
    )
    assert data["style"] == "paragraph" and data["support_rate"] == 1.0 and data["citations"]
    assert data["article"]["title"].startswith("Korvane strike ends")
    target = tmp_path / "summary.md"
    assert qa("summarise", "korvane strike ends", "--llm", "extractive", "-o", target).exit_code == 0
    assert target.read_text().startswith("# Summary: Korvane strike ends")


def test_cli_summarise_reports_bad_input_in_one_line(qa):
    unknown = qa("summarise", "moon landing", "--llm", "extractive")
    assert unknown.exit_code == 2 and "No article matches" in unknown.output and "Traceback" not in unknown.output
    ambiguous = qa("summarise", "Riverside", "--llm", "extractive")
    assert ambiguous.exit_code == 2 and "give the id" in ambiguous.output
    assert qa("summarise", "korvane strike ends", "--style", "haiku").exit_code == 2
    assert qa("summarise", "korvane strike ends", "--style", "paragraph", "--bullets", "3").exit_code == 2


def test_cli_brief_extractive(qa, tmp_path):
    target = tmp_path / "brief.md"
    result = qa("brief", TRAM, "--llm", "extractive", "-o", target)
    assert result.exit_code == 0, result.output
    text = target.read_text()
    for heading in (
        "# Briefing: Riverside tram line cost",
        "## Overview",
        "## Key points",
        "## Timeline",
        "## Where sources disagree",
        "## Open questions",
        "## Sources",
    ):
        assert heading in text
    data = json.loads(qa("brief", TRAM, "--llm", "extractive", "--json", "--until", "2026-03-01").stdout)
    dates = [e["date"] for e in data["timeline"]]
    assert dates == sorted(dates) and all(d <= "2026-03-01" for d in dates)
    assert len(data["sources"]) >= 2 and all(c["text"] for c in data["citations"])
    assert qa("brief", TRAM, "--since", "yesterday-ish").exit_code == 2


def test_cli_brief_on_an_empty_store_says_what_to_do():
    result = CliRunner().invoke(app, ["brief", "anything", "--llm", "extractive"])
    assert result.exit_code == 1 and "qa ingest" in result.output
