"""Chat session logic without a terminal: follow-ups, carried evidence, commands, /open, /filter,
transcripts and persistence. Real store, tokenizer and embedder; fake or extractive LLM."""

import json
import os
import time
from dataclasses import replace
from pathlib import Path

import pytest

from qa.chat.commands import Command, open_passage, parse_command, parse_filters
from qa.chat.session import (
    Session,
    describe_filters,
    load_last_session,
    new_session,
    save_session,
    save_transcript,
    session_from_dict,
    session_to_dict,
    sessions_dir,
    transcript_markdown,
)
from qa.chat.turns import ask_turn, clean_rewrite, is_follow_up, key_terms, rewrite_messages, rule_rewrite
from qa.errors import QAError, UsageError
from qa.prompts import REFUSAL
from qa.search.retrieval import Filters
from tests.fakes import FakeLLM

SAMPLE = Path(__file__).resolve().parent.parent / "eval" / "sample" / "articles"
STRIKE = "What pay rise did Korvane's Brakemoor workers accept to end their strike?"
FOLLOW_UP = "How long did it last?"  # means nothing without the question before it


@pytest.fixture
def library(sample_library):
    """The twelve sample articles, ingested once for the module (conftest.py)."""
    return sample_library


def _ask(session, question, library, embedder, llm):
    return ask_turn(session, question, library=library, llm=llm)


def _valid(turn) -> None:
    """Every citation points at a passage the answer was given, and an extractive sentence is in it."""
    numbers = {p.number for p in turn.answer.passages}
    assert turn.answer.sentences
    for s in turn.answer.sentences:
        assert s.supported and s.citations and set(s.citations) <= numbers


# ---- follow-ups ----------------------------------------------------------------------------


def test_what_counts_as_a_follow_up():
    previous = object()  # any earlier answered turn
    for question in (
        "How long did it last?",
        "And the union?",
        "What did they discuss about AI?",
        "Why?",
        "What about Taiwan?",
        "Who signed that deal?",
        "What did she say about that?",
    ):
        assert is_follow_up(question, previous), question
    for question in ("Who did Brad Smith meet?", STRIKE, "When did the Riverside tram line open?"):
        assert not is_follow_up(question, previous), question
    assert not is_follow_up(FOLLOW_UP, None)  # the first question of a session stands on its own


def test_rule_rewrite_appends_the_key_words_of_the_previous_question():
    assert key_terms("Who did Brad Smith meet?") == ["Brad", "Smith", "meet"]
    assert key_terms(STRIKE)[:2] == ["Korvane", "Brakemoor"]  # names first, possessive dropped
    rewritten = rule_rewrite(FOLLOW_UP, STRIKE)
    assert rewritten.startswith(FOLLOW_UP)
    assert all(w in rewritten for w in ("Korvane", "Brakemoor", "strike"))
    assert (
        rule_rewrite("What did they discuss about AI?", "Who did Brad Smith meet?")
        == "What did they discuss about AI? (Brad Smith meet)"
    )
    assert rule_rewrite("Did Brad Smith meet him?", "Who did Brad Smith meet?") == "Did Brad Smith meet him?"


def test_extractive_follow_up_is_rewritten_and_answered_from_the_right_article(library, embedder):
    session = new_session()
    first = _ask(session, STRIKE, library, embedder, None)
    _valid(first)
    second = _ask(session, FOLLOW_UP, library, embedder, None)
    assert second.rewritten_by == "rule" and second.searched != FOLLOW_UP and "Korvane" in second.searched
    _valid(second)
    assert any("23-day strike" in p.text for p in second.answer.cited)
    assert all("Korvane" in p.title or "Strike" in p.title for p in second.answer.cited)
    assert [t.question for t in session.turns] == [STRIKE, FOLLOW_UP]


def test_the_model_rewrites_a_follow_up_from_the_prompt_files(library, embedder):
    standalone = "How long did the strike at Korvane's Brakemoor plant last?"
    fake = FakeLLM(
        replies=[
            "The workers accepted a 7 per cent pay rise spread over two years [1].",
            f'Rewritten question: "{standalone}"',
            "The strike lasted 23 days [1].",
        ]
    )
    session = new_session()
    _ask(session, STRIKE, library, embedder, fake)
    seen = []
    turn = ask_turn(session, FOLLOW_UP, library=library, llm=fake, on_rewrite=seen.append)
    assert turn.rewritten_by == "model" and turn.searched == standalone and seen == [standalone]
    first_prompt, rewrite_prompt, answer_prompt = fake.calls
    # the rewrite is one more short turn of the conversation the model has read: its prompt starts
    # with the first prompt and the first answer, byte for byte, so the engine's cache covers them
    assert rewrite_prompt[:2] == first_prompt and rewrite_prompt[2]["content"].startswith("The workers accepted")
    ask = rewrite_prompt[-1]["content"]
    assert "$" not in ask and FOLLOW_UP in ask and "Reply with the rewritten question only" in ask
    assert answer_prompt[:3] == rewrite_prompt[:3]  # the answer continues the conversation, not the rewrite
    assert standalone in answer_prompt[-1]["content"]  # the answer prompt uses the standalone question
    _valid(turn)


def test_a_follow_up_sends_only_the_passages_the_conversation_does_not_hold(library, embedder):
    fake = FakeLLM(
        replies=[
            "The workers accepted a 7 per cent pay rise spread over two years [1].",
            "How long did the Korvane strike last?",
            "The strike lasted 23 days [1].",
        ]
    )
    session = new_session()
    first = _ask(session, STRIKE, library, embedder, fake)
    turn = ask_turn(session, FOLLOW_UP, library=library, llm=fake)
    answer_prompt = fake.calls[-1]
    assert answer_prompt[: len(fake.calls[0])] == fake.calls[0]  # the first prompt, unchanged, comes first
    sent_before = fake.calls[0][1]["content"]
    new_part = answer_prompt[-1]["content"]
    held = len(first.answer.passages)
    assert [p.number for p in turn.answer.passages] == list(range(1, len(turn.answer.passages) + 1))
    assert turn.answer.passages[:held] == first.answer.passages  # old passages keep their numbers
    for p in turn.answer.passages[held:]:  # only the new ones are sent, numbered after the old
        assert f"[{p.number}] " in new_part and " ".join(p.text.split()) not in sent_before
    for p in first.answer.passages:
        assert " ".join(p.text.split()) not in new_part
    assert not turn.answer.refused and turn.answer.sentences[0].citations == (1,)  # cites what it read before


def test_an_unusable_model_rewrite_falls_back_to_the_rule(library, embedder):
    fake = FakeLLM(
        replies=[
            "The workers accepted a 7 per cent pay rise spread over two years [1].",
            REFUSAL,
            "The strike lasted 23 days [1].",
        ]
    )
    session = new_session()
    _ask(session, STRIKE, library, embedder, fake)
    turn = _ask(session, FOLLOW_UP, library, embedder, fake)
    assert turn.rewritten_by == "rule" and turn.searched == rule_rewrite(FOLLOW_UP, STRIKE)
    assert clean_rewrite("", "q?") is None
    assert clean_rewrite("It lasted 23 days [1].", "q?") is None
    assert clean_rewrite("  'Who met Wang Wentao?'\nextra", "Who did he meet?") == "Who met Wang Wentao?"


def test_a_follow_up_keeps_the_previous_turns_evidence(library, embedder):
    fake = FakeLLM(
        replies=[
            "The workers accepted a 7 per cent pay rise spread over two years [1].",
            "What was the Riverside tram line's budget?",
            REFUSAL,
        ]
    )
    session = new_session()
    first = _ask(session, STRIKE, library, embedder, fake)
    cited = first.answer.cited[0]
    # a follow-up whose rewrite goes elsewhere still has the passage it builds on
    turn = _ask(session, "And what did that cost them?", library, embedder, fake)
    carried = [p for p in turn.answer.passages if p.article_id == cited.article_id and p.start <= cited.start < p.end]
    assert carried, "the cited passage of the previous turn is in the follow-up's context"
    assert [p.number for p in turn.answer.passages] == list(range(1, len(turn.answer.passages) + 1))
    assert " ".join(cited.text.split()) in fake.calls[-1][1]["content"]  # as the prompt lays it out
    # a question that is not a follow-up starts from fresh evidence only
    fresh = _ask(session, "When did the Riverside tram line open?", library, embedder, fake)
    assert all("Korvane" not in p.title for p in fresh.answer.passages)


def test_ctrl_c_during_generation_records_a_stopped_turn(library, embedder):
    class Interrupted(FakeLLM):
        def stream(self, messages, **kwargs):
            yield "The workers "
            raise KeyboardInterrupt

    session = new_session()
    first = _ask(session, STRIKE, library, embedder, None)
    with pytest.raises(KeyboardInterrupt):
        _ask(session, "When did the Riverside tram line open?", library, embedder, Interrupted())
    assert session.turns[-1].stopped and session.last_answered() is first
    again = _ask(session, FOLLOW_UP, library, embedder, None)  # the follow-up skips the stopped turn
    assert "Korvane" in again.searched


# ---- commands ------------------------------------------------------------------------------


def test_commands_are_parsed_with_prefixes_and_aliases():
    assert parse_command("When did it open?") is None
    assert parse_command("/open 3") == Command("open", "3")
    assert parse_command("  /OPEN   2 ") == Command("open", "2")
    assert parse_command("/o 1") == Command("open", "1")  # a unique prefix
    assert parse_command("/s") == Command("unknown", "/s")  # sources, summarise or save?
    assert parse_command("/summarize 2") == Command("summarise", "2")
    assert parse_command("/exit") == Command("quit")
    assert parse_command("/filter source=Capital Wire") == Command("filter", "source=Capital Wire")
    assert parse_command("/frobnicate now") == Command("unknown", "/frobnicate")
    assert parse_command("/") == Command("unknown", "/")


def test_filters_are_parsed_checked_and_cleared():
    sources = ["Capital Wire", "Harrowfield Courier", "Meridian Business Review"]
    f = parse_filters("source=capital wire since=2026/1/5", Filters(), sources)
    assert f == Filters(source="Capital Wire", since="2026-01-05")
    assert describe_filters(f) == 'source="Capital Wire" since=2026-01-05'
    assert parse_filters("until=2026-02-28", f, sources) == replace(f, until="2026-02-28")  # adds to the current
    assert parse_filters("source=", f, sources) == Filters(since="2026-01-05")
    assert parse_filters("clear", f, sources) == Filters() and describe_filters(Filters()) == "none"
    for bad, message in (
        ("colour=red", "Unknown filter"),
        ("since=yesterday-ish", "needs a date"),
        ("since=2026-03-01 until=2026-01-01", "after"),
        ("source=Daily Planet", "Capital Wire"),
        ("Capital", "key=value"),
        ('source="Capital', "quote"),
    ):
        with pytest.raises(UsageError, match=message):
            parse_filters(bad, Filters(), sources)


def test_filters_apply_to_the_turns_of_the_session(library, embedder):
    session = new_session(filters=Filters(source="Capital Wire"))
    turn = _ask(session, STRIKE, library, embedder, None)
    assert turn.answer.passages and {p.source for p in turn.answer.passages} == {"Capital Wire"}


def test_open_shows_the_passage_in_full_with_its_article(library, embedder):
    store = library.store
    session = new_session()
    with pytest.raises(UsageError, match="ask a question first"):
        open_passage(session, "1", store)
    turn = _ask(session, STRIKE, library, embedder, None)
    number = turn.answer.sentences[0].citations[0]
    opened = open_passage(session, f"[{number}]", store)
    assert opened.passage == turn.answer.passages[number - 1]
    assert opened.article.text[opened.passage.start : opened.passage.end] == opened.passage.text
    assert opened.article.title == opened.passage.title and opened.article.url and opened.article.author
    assert turn.answer.sentences[0] in opened.citing
    with pytest.raises(UsageError, match="passages 1 to"):
        open_passage(session, "99", store)
    with pytest.raises(UsageError, match="passage number"):
        open_passage(session, "first", store)


# ---- transcripts and persistence -----------------------------------------------------------


def test_save_writes_the_transcript_with_its_citations(library, embedder, tmp_path):
    session = new_session()
    first = _ask(session, STRIKE, library, embedder, None)
    second = _ask(session, FOLLOW_UP, library, embedder, None)
    session.turns.append(replace(second, question="Who won the cup?", answer=None))  # a stopped turn
    with pytest.raises(
        UsageError, match=r"does not exist; make it first \(mkdir -p .*notes\) or save here: /save chat.md"
    ):
        save_transcript(session, tmp_path / "notes" / "chat", model="extractive")
    assert not (tmp_path / "notes").exists()  # no folder made without asking
    (tmp_path / "notes").mkdir()
    path = save_transcript(session, tmp_path / "notes" / "chat", model="extractive")
    assert path == tmp_path / "notes" / "chat.md"
    text = path.read_text()
    assert text == transcript_markdown(session, "extractive")
    assert f"## 1. {STRIKE}" in text and f"## 2. {FOLLOW_UP}" in text
    assert f"*Searched:* {second.searched}" in text
    assert first.answer.text in text and second.answer.text in text  # the answers with their [n] markers
    for turn in (first, second):
        for p in turn.answer.cited:
            assert f"- [{p.number}] *{p.title}*" in text and p.url in text
            assert p.text.splitlines()[0] in text  # the cited passage itself, quoted
    assert "## 3. Who won the cup?" in text and "Stopped before the answer was finished" in text
    with pytest.raises(QAError, match="Cannot write"):
        save_transcript(session, tmp_path / "notes" / "chat.md" / "x.md")


def test_a_transcript_labels_each_turn_with_its_own_filters(library, embedder, tmp_path):
    session = new_session()
    _ask(session, STRIKE, library, embedder, None)
    session.filters = Filters(source="Capital Wire", since="2026-01-01")
    _ask(session, "What did the union demand?", library, embedder, None)
    session.filters = Filters()
    _ask(session, "How long is the Riverside tram line?", library, embedder, None)
    text = save_transcript(session, tmp_path / "chat.md").read_text()
    turns = text.split("\n## ")[1:]
    assert [("*Filters:*" in t) for t in turns] == [False, True, False]
    assert '*Filters:* source="Capital Wire" since=2026-01-01' in turns[1]
    assert "filters:" not in text.split("\n## ")[0]  # the header no longer claims the filters of save time
    again = session_from_dict(json.loads(json.dumps(session_to_dict(session))))
    assert [t.filters for t in again.turns] == [t.filters for t in session.turns]


def test_the_extractive_backend_is_ready_at_once():
    from qa.cli._chat_state import ModelLoader

    def never():
        raise AssertionError("nothing to load")

    loader = ModelLoader("extractive", never)
    assert loader.ready and loader.label == "extractive" and loader.get() is None
    assert ModelLoader("local", lambda: None).label == "local (loading…)"


def test_sessions_persist_and_the_last_one_resumes(library, embedder, home):
    directory = sessions_dir(home, "articles")
    assert load_last_session(directory) is None
    session = new_session(filters=Filters(since="2026-01-01"))
    _ask(session, STRIKE, library, embedder, None)
    save_session(session, directory)
    again = load_last_session(directory)
    assert again == session  # turns, answers, passages, filters: all of it
    older = Session("older", turns=session.turns)
    newest = save_session(older, directory)
    os.utime(newest, ns=(time.time_ns() + 10**9,) * 2)
    (directory / "broken.json").write_text("{not json")
    assert load_last_session(directory).id == "older"  # the newest readable one
    json.loads((directory / f"{session.id}.json").read_text())  # plain JSON on disk


def test_rewrite_prompt_renders_with_what_the_code_passes(library, embedder):
    session = new_session()
    _ask(session, STRIKE, library, embedder, None)
    system, user = (m["content"] for m in rewrite_messages("And then?", session.turns))
    assert "$" not in system + user and "And then?" in user and STRIKE in user


def test_stopping_a_streamed_answer_hangs_up_on_the_server():
    """Ctrl-C lands inside the stream: the response must be closed, or a local server keeps
    generating the abandoned answer and the next question waits behind it."""
    import httpx

    from qa.llm.openai_chat import OpenAIChat

    class Endless(httpx.SyncByteStream):
        closed = False

        def __iter__(self):
            event = {
                "id": "x",
                "object": "chat.completion.chunk",
                "created": 0,
                "model": "m",
                "choices": [{"index": 0, "delta": {"content": "tram "}, "finish_reason": None}],
            }
            while True:
                yield f"data: {json.dumps(event)}\n\n".encode()

        def close(self):
            Endless.closed = True

    client = httpx.Client(
        transport=httpx.MockTransport(
            lambda request: httpx.Response(200, headers={"content-type": "text/event-stream"}, stream=Endless())
        )
    )
    llm = OpenAIChat("m", base_url="http://llm.test/v1", api_key="k", http_client=client, max_retries=0)
    pieces = llm.stream([{"role": "user", "content": "Go on."}])
    assert next(pieces) == "tram " and not Endless.closed
    with pytest.raises(KeyboardInterrupt):
        pieces.throw(KeyboardInterrupt)
    assert Endless.closed and not llm.usage.finished
