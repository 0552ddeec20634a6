"""Grounding decides what is shown: hand-made passages, the real verifier, a fake model's replies."""

from qa.answer import AskOptions, answer
from qa.grounding import ground
from qa.prompts import REFUSAL
from qa.records import Passage
from tests.fakes import FakeJudgingLLM, FakeLLM

DEAL = "Korvane workers accepted a 7 per cent pay rise over two years, ending the strike at Brakemoor."
PLANT = "The Brakemoor plant can produce about 9,000 wafers a month, Korvane says."
BOWL = "Official Super Bowl LVIII ticket packages: reserve your spot in Las Vegas for the big game."


def _passages(*texts: str, date: str = "2026-02-04") -> list[Passage]:
    return [Passage(i + 1, f"a{i}", t, 0, len(t), title=f"Story {i}", date=date) for i, t in enumerate(texts)]


def test_a_refusal_is_a_refusal_and_an_answer_followed_by_a_disclaimer_is_an_answer():
    passages = _passages(DEAL, PLANT)
    assert ground("What pay rise?", REFUSAL, passages).refused
    kept = ground("What pay rise?", "They accepted a 7 per cent pay rise [1]. The articles do not say more.", passages)
    assert not kept.refused and [s.text for s in kept.sentences] == ["They accepted a 7 per cent pay rise."]


def test_unstated_sentences_are_dropped_and_an_answer_left_with_none_is_refused():
    passages = _passages(DEAL, PLANT)
    mixed = ground("What pay rise?", "They accepted a 7 per cent pay rise [1]. They also got a free car [1].", passages)
    assert not mixed.refused and len(mixed.sentences) == 1 and len(mixed.dropped) == 1
    assert "car" in mixed.dropped[0].missing
    invented = ground("What pay rise?", "They accepted a 12 per cent rise and a bonus [1].", passages)
    assert invented.refused and not invented.sentences and invented.dropped
    assert "is stated by the passages" in invented.reason and "#12" in invented.reason


def test_passages_about_another_year_do_not_answer_the_question():
    # The model's sentence is stated by the passage; the question's year is not in it: another event
    out = ground("Super Bowl 2021 location", "The Super Bowl is in Las Vegas [1].", _passages(BOWL, date="2023-12-01"))
    assert out.refused and "2021" in out.reason


def test_the_models_own_check_refuses_below_the_threshold_and_says_when_it_could_not_run():
    passages = _passages(DEAL, PLANT)
    reply = "They accepted a 7 per cent pay rise over two years [1]."
    asked = []

    def doubtful(question: str, evidence: str) -> float:
        asked.append(evidence)
        return 0.2

    out = ground("What pay rise did Korvane workers accept?", reply, passages, judge=doubtful, threshold=0.5)
    assert out.refused and out.judge == 0.2 and "model check p=0.20" in out.checks
    assert asked == [DEAL]  # the check reads the sentence of the passage that states the answer
    sure = ground("What pay rise did Korvane workers accept?", reply, passages, judge=lambda q, e: 0.9, threshold=0.5)
    assert not sure.refused and sure.judge == 0.9
    blind = ground("What pay rise did Korvane workers accept?", reply, passages, judge=lambda q, e: None)
    assert not blind.refused and "model check: no probabilities from the server" in blind.checks
    assert "model check: not available" in ground("What pay rise?", reply, passages).checks


def test_answer_keeps_the_closest_passages_on_a_refusal_and_uses_the_backends_check(embedder):
    passages = _passages(DEAL, PLANT)
    checked = AskOptions(judge=True)
    model = FakeJudgingLLM(replies=["They accepted a 7 per cent pay rise [1]."], judgments=[0.1])
    result = answer(
        "What pay rise did Korvane workers accept?", passages, llm=model, embedder=embedder, options=checked
    )
    assert result.refused and result.text == REFUSAL and result.sentences == []
    assert result.passages == passages and result.dropped  # closest passages stay for the reader
    assert model.judged and "What pay rise did Korvane workers accept?" in model.judged[0][0]["content"]
    trusted = answer(
        "What pay rise did Korvane workers accept?",
        passages,
        llm=FakeJudgingLLM(replies=["They accepted a 7 per cent pay rise [1]."], judgments=[0.95]),
        embedder=embedder,
        options=checked,
    )
    assert not trusted.refused and trusted.text == "They accepted a 7 per cent pay rise [1]." and trusted.judge == 0.95
    unasked = FakeJudgingLLM(replies=["They accepted a 7 per cent pay rise [1]."], judgments=[0.1])
    off = answer("What pay rise did Korvane workers accept?", passages, llm=unasked, embedder=embedder)
    assert not off.refused and not unasked.judged and "model check: off" in off.checks  # off by default
    plain = FakeLLM(replies=["They accepted a 7 per cent pay rise [1]."])
    blind = answer("What pay rise?", passages, llm=plain, embedder=embedder, options=checked)
    assert "model check: not available" in blind.checks


FINALS = (
    "Elena Rybakina won the women's singles title at Wimbledon on Saturday, beating Ons Jabeur. "
    "The final was played in bright sun. Jabeur, the first Arab woman in a major final, was gracious. "
    "Angelique Kerber won the title in 2018."
)


def test_a_name_and_a_year_stated_apart_do_not_make_a_claim():
    """Rybakina and 2018 are both in the passage, three sentences apart: it does not say she won in 2018
    (the check with a window of two sentences; it is off by default, qa/claims.py WINDOW)."""
    question = "Who won the women's singles at Wimbledon in 2018?"
    passages = _passages(FINALS, date="")
    wrong = ground(question, "Elena Rybakina won the women's singles at Wimbledon in 2018 [1].", passages, window=2)
    assert not ground(question, "Elena Rybakina won the women's singles at Wimbledon in 2018 [1].", passages).refused
    assert wrong.refused and "together" in wrong.reason
    assert any(m.startswith("apart:") for m in wrong.dropped[0].missing)
    right = ground(question, "Angelique Kerber won the title in 2018 [1].", passages, window=2)
    assert not right.refused and right.sentences[0].citations == (1,)
    # a name in one sentence and the year in the next are one claim (a window of two sentences)
    spread = _passages("Tadej Pogacar attacked on the last climb. In 2021 he won the Tour by five minutes.", date="")
    assert not ground("Who won the 2021 Tour?", "Tadej Pogacar won the 2021 Tour [1].", spread, window=2).refused
