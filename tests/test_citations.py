"""Citation verification: the model proposes [n], the code checks every one."""

from qa.prompts import REFUSAL
from qa.records import Passage
from qa.verify import cited_text, is_refusal, numbers_match, split_answer, verify


def _passages():
    return [
        Passage(
            1,
            "a1",
            "Korvane workers accepted a 7 per cent pay rise over two years.",
            0,
            60,
            title="Strike ends",
            source="Meridian",
            date="2026-02-04",
        ),
        Passage(
            2,
            "a2",
            "The Riverside tram line is 9.4 kilometres long and has 14 stops.",
            0,
            64,
            title="Tram",
            source="Courier",
            date="2025-03-11",
        ),
    ]


def test_split_answer_reads_markers_in_and_after_sentences():
    parts = split_answer("Workers got 7 per cent [1]. The line is 9.4 kilometres long.[2][1] Done [3, 4].")
    assert parts == [("Workers got 7 per cent.", (1,)), ("The line is 9.4 kilometres long.", (2, 1)), ("Done.", (3, 4))]


def test_split_answer_keeps_an_abbreviation_inside_its_sentence():
    # "U.S. Open" used to be cut in two, the marker landing mid-name: "U.S [1]. Open in 2020 [2]"
    assert split_answer("Novak Djokovic won the men's singles U.S. Open in 2020 [2].") == [
        ("Novak Djokovic won the men's singles U.S. Open in 2020.", (2,))
    ]
    assert split_answer("Coco Gauff won the U. S. Open in 2019. [3] Dr. Lee agreed [1].") == [
        ("Coco Gauff won the U. S. Open in 2019.", (3,)),
        ("Dr. Lee agreed.", (1,)),
    ]


def test_citation_to_a_passage_not_given_is_removed(embedder):
    sentences = verify("Workers accepted a 7 per cent pay rise [1][7].", _passages(), embedder)
    assert len(sentences) == 1
    assert sentences[0].citations == (1,)
    assert sentences[0].supported


def test_only_invented_citations_leave_a_sentence_that_gets_a_real_one_if_supported(embedder):
    [s] = verify("The tram line is 9.4 kilometres long [9].", _passages(), embedder)
    assert s.citations == (2,) and s.added_citation and s.supported


def test_supported_sentence_without_citation_gets_one(embedder):
    [s] = verify("The Riverside tram line has 14 stops.", _passages(), embedder)
    assert s.citations == (2,)
    assert s.added_citation
    assert s.supported


def test_unsupported_sentence_is_flagged(embedder):
    sentences = verify(
        "Workers accepted a 7 per cent pay rise [1]. The mayor resigned over a bribery scandal [2].",
        _passages(),
        embedder,
    )
    assert [s.supported for s in sentences] == [True, False]


def test_a_number_the_passage_does_not_contain_is_not_supported(embedder):
    [s] = verify("Korvane workers accepted a 9.5 per cent pay rise over two years [1].", _passages(), embedder)
    assert not s.supported
    assert numbers_match("a 7 per cent rise", "accepted a 7 per cent pay rise")
    assert not numbers_match("a 1,500 dollar payment", "a one-off 1,200 dollar payment")
    assert numbers_match("1,500 dollars", "a payment of 1500 dollars")


def test_no_citations_and_no_support_gives_no_supported_sentence(embedder):
    sentences = verify("Bananas are yellow and grow in tropical places.", _passages(), embedder)
    assert sentences and not any(s.supported for s in sentences)
    assert all(s.citations == () for s in sentences)


def test_render_puts_markers_before_the_full_stop(embedder):
    sentences = verify("Workers accepted a 7 per cent pay rise [1].", _passages(), embedder)
    assert cited_text(sentences) == "Workers accepted a 7 per cent pay rise [1]."


def test_refusal_detection():
    assert is_refusal(REFUSAL)
    assert is_refusal("I do not know based on these passages.")
    assert not is_refusal("Workers accepted a 7 per cent rise [1].")


def test_a_name_the_passage_does_not_contain_is_not_supported(embedder):
    meta = Passage(
        1,
        "m",
        "Meta's revenue declined for a second consecutive quarter, the company said in 2022.",
        0,
        80,
        title="Meta layoffs",
    )
    [s] = verify("Microsoft's revenue declined for a second consecutive quarter [1].", [meta], embedder)
    assert not s.supported
    [ok] = verify("Meta's revenue declined for a second consecutive quarter [1].", [meta], embedder)
    assert ok.supported
