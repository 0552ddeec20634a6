"""The verifier reads the claim: hand-made passages, the real claim checks (qa/claims.py, qa/verify.py)."""

from qa.claims import check_claim, question_terms_missing
from qa.prompts import REFUSAL
from qa.records import Passage
from qa.verify import cited_text, is_refusal, split_answer, verify

STRIKE = (
    "Korvane workers accepted a 7 per cent pay rise over two years. About 1,140 workers had walked out on 12 January."
)
HAWAII = "A tourist was bitten by a shark off Maui, Hawaii, on Tuesday and taken to hospital, officials said."
GLOBES = "Emma Stone was nominated for the Golden Globe for best actress in a comedy for her role in Poor Things."


def _passages():
    return [
        Passage(1, "a1", STRIKE, 0, len(STRIKE), title="Strike ends", source="Meridian", date="2026-02-04"),
        Passage(2, "a2", "The Riverside tram line is 9.4 kilometres long and has 14 stops.", 0, 64, title="Tram"),
    ]


def test_split_answer_reads_markers_in_and_after_sentences():
    parts = split_answer("Workers got 7 per cent [1]. The line is 9.4 kilometres long.[2][1] Done [3, 4].")
    assert parts == [("Workers got 7 per cent.", (1,)), ("The line is 9.4 kilometres long.", (2, 1)), ("Done.", (3, 4))]


def test_split_answer_keeps_an_abbreviation_inside_its_sentence():
    assert split_answer("Novak Djokovic won the men's singles U.S. Open in 2020 [2].") == [
        ("Novak Djokovic won the men's singles U.S. Open in 2020.", (2,))
    ]
    assert split_answer("Coco Gauff won the U. S. Open in 2019. [3] Dr. Lee agreed [1].") == [
        ("Coco Gauff won the U. S. Open in 2019.", (3,)),
        ("Dr. Lee agreed.", (1,)),
    ]


def test_nominated_is_not_support_for_won():
    check = check_claim("Emma Stone won the Golden Globe for best actress in a comedy.", GLOBES)
    assert not check.stated and "win" in check.missing
    assert check_claim("Emma Stone was nominated for the Golden Globe for best actress.", GLOBES).stated


def test_a_place_a_count_and_an_action_the_passage_never_mentions_are_rejected():
    [s] = verify(
        "Portugal closed its beaches after three shark attacks [1].",
        [Passage(1, "h", HAWAII, 0, len(HAWAII), title="Shark bites tourist in Hawaii")],
    )
    assert not s.supported
    assert {"#3", "close", "beach", "attack"} <= set(s.missing)
    assert any(m.startswith("portug") for m in s.missing)


def test_a_right_answer_whose_numbers_are_in_its_passage_is_accepted_with_its_quote():
    [s] = verify("About 1,140 workers walked out on 12 January [1].", _passages())
    assert s.supported and s.citations == (1,) and not s.missing
    number, start, end = s.evidence
    assert number == 1 and STRIKE[start:end] == "About 1,140 workers had walked out on 12 January."


def test_a_quote_that_is_not_verbatim_is_rejected():
    text = 'Ilse Marchetti called the deal "a fair outcome won on the picket line", the union said.'
    passage = [Passage(1, "q", text, 0, len(text))]
    [exact] = verify('Marchetti called it "a fair outcome won on the picket line" [1].', passage)
    assert exact.supported
    # every word is in the passage, in another order: only the quotation marks make it a false claim
    [reworded] = verify('Marchetti called it "a fair outcome on the picket line won" [1].', passage)
    assert not reworded.supported and reworded.missing == ('"a fair outcome on the picket line won"',)


def test_a_negation_the_passage_does_not_make_is_rejected():
    [s] = verify("Korvane workers did not accept the pay rise [1].", _passages())
    assert not s.supported and "!not" in s.missing


def test_a_number_or_a_name_the_passage_does_not_contain_is_rejected():
    [s] = verify("Korvane workers accepted a 9.5 per cent pay rise over two years [1].", _passages())
    assert not s.supported and "#9.5" in s.missing
    meta = "Meta's revenue declined for a second consecutive quarter, the company said in 2022."
    passage = [Passage(1, "m", meta, 0, len(meta), title="Meta results")]
    [other] = verify("Microsoft's revenue declined for a second consecutive quarter [1].", passage)
    assert not other.supported and "microsoft" in other.missing
    [ok] = verify("Meta's revenue declined for a second consecutive quarter [1].", passage)
    assert ok.supported


def test_citations_to_passages_not_given_are_removed_and_wrong_ones_moved():
    [s] = verify("Workers accepted a 7 per cent pay rise [1][7].", _passages())
    assert s.citations == (1,) and s.supported and not s.added_citation
    [moved] = verify("The tram line is 9.4 kilometres long [9].", _passages())
    assert moved.citations == (2,) and moved.added_citation and moved.supported
    [wrong] = verify("The tram line has 14 stops [1].", _passages())
    assert wrong.citations == (2,) and wrong.added_citation


def test_a_sentence_no_passage_states_keeps_its_citations_and_says_what_is_missing():
    sentences = verify(
        "Workers accepted a 7 per cent pay rise [1]. The mayor resigned over a bribery scandal [2].", _passages()
    )
    assert [s.supported for s in sentences] == [True, False]
    assert sentences[1].citations == (2,) and {"mayor", "resign"} <= set(sentences[1].missing)


def test_question_terms_missing_finds_another_year_or_another_subject():
    evidence = "Super Bowl LVIII tickets: reserve your spot in Las Vegas. (2023-12-01)"
    assert question_terms_missing("Where was the Super Bowl held in 2021?", evidence) == ("#2021",)
    assert question_terms_missing("Where was the Super Bowl held in 2024?", evidence + " The 2024 game") == ()
    assert "wimbledon" in question_terms_missing("Who won Wimbledon in 2019?", "Halep won the 2019 French Open.")


def test_render_puts_markers_before_the_full_stop():
    sentences = verify("Workers accepted a 7 per cent pay rise [1].", _passages())
    assert cited_text(sentences) == "Workers accepted a 7 per cent pay rise [1]."


def test_refusal_detection():
    assert is_refusal(REFUSAL)
    assert is_refusal("I do not know based on these passages.")
    assert not is_refusal("Workers accepted a 7 per cent rise [1].")


def test_words_repeated_from_the_question_are_given_but_an_outcome_is_not():
    bills = "Bills safety Damar Hamlin collapsed during Monday's game against the Bengals."
    asked = "Which team does Damar Hamlin play for?"
    assert check_claim("Damar Hamlin plays for the Bills.", bills, question=asked).stated
    assert not check_claim("Damar Hamlin plays for the Bills.", bills).stated  # "play": not in the passage
    final = "Nadal will face Medvedev in the final of the 2022 Australian Open on Sunday."
    won = check_claim("Nadal won the 2022 Australian Open.", final, question="Who won the 2022 Australian Open?")
    assert not won.stated and won.missing == ("win",)  # the question's own verb of outcome must be stated


def test_a_numbered_thing_is_not_a_negation_and_letters_beyond_ascii_are_words():
    text = "The refugees formed the Altpreußische Infantry Regiments No. 13 and No. 15."
    assert check_claim("The refugees formed the Altpreußische Infantry Regiments No. 13 and 15.", text).stated
    assert not check_claim("The refugees formed the Altpreussische regiments.", text).stated


def test_what_a_question_asks_for_is_read_from_its_opening():
    from qa.claims import asks_for, gives

    assert asks_for("Who has limited potential when faced with less education?") == "name"
    assert asks_for("In what year did the line open?") == "date" and asks_for("How many stops are there?") == "number"
    assert asks_for("What were the first two destinations?") == ""
    assert gives("J. F. D. Shrewsbury challenged it first.", "name") and not gives("the home side won", "name")
    assert question_terms_missing("What were the first two destinations of the emigres?", "They went to Kent.") == ()
