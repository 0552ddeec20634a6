"""Every metric on hand-made cases whose values were worked out by hand."""

import pytest

from qa.eval import metrics as m


def test_normalise_is_squad_style():
    assert m.normalise("The  Buffalo Bills!") == "buffalo bills"
    assert m.normalise("An apple, a pear and the plum.") == "apple pear and plum"
    assert m.normalise("21,500 passengers") == "21500 passengers"
    assert m.normalise("“Quoted” — text…") == "quoted text"


def test_exact_match_strict():
    assert m.exact_match("the 7 per cent.", ["7 per cent"]) == 1.0
    assert m.exact_match("7 per cent pay rise", ["7 per cent"]) == 0.0
    assert m.exact_match("anything", []) == 0.0
    assert m.exact_match("Caldeira", ["Rui Caldeira", "Caldeira"]) == 1.0  # any gold answer counts


def test_exact_match_lenient_takes_whole_word_spans_of_short_answers():
    assert m.lenient_match("a 7 per cent pay rise", ["7 per cent"]) == 1.0
    assert m.lenient_match("17 per cent", ["7 per cent"]) == 0.0  # not a whole-word span
    long = "The workers accepted what the union had long asked for, a rise of 7 per cent over two years"
    assert m.lenient_match(long, ["7 per cent"]) == 0.0  # longer than a short answer
    assert m.lenient_match("", ["7 per cent"]) == 0.0


def test_token_f1_by_hand():
    # prediction "buffalo bills player" vs gold "buffalo bills": 2 shared, P = 2/3, R = 1, F1 = 0.8
    assert m.token_f1("Buffalo Bills player", ["The Buffalo Bills"]) == pytest.approx(0.8)
    # repeated tokens count once each side: "a a b" -> [b] after article removal ("a" is an article)
    assert m.token_f1("x y y", ["y z"]) == pytest.approx(2 * (1 / 3) * (1 / 2) / (1 / 3 + 1 / 2))
    assert m.token_f1("nothing shared", ["other words"]) == 0.0
    assert m.token_f1("", ["gold"]) == 0.0
    assert m.token_f1("x", ["x y", "x"]) == 1.0  # best over the gold answers


def test_contains_span_on_whole_words():
    assert m.contains_span("They paid 468 million euros in total.", ["468 million"])
    assert not m.contains_span("They paid 1468 million euros.", ["468 million"])
    assert not m.contains_span("anything", [""])


CHOICES = ["Pittsburgh Steelers", "Cincinnati Bengals", "Buffalo Bills", "Cleveland Browns"]


@pytest.mark.parametrize(
    "reply, expected",
    [
        ("C", 2),
        ("c", 2),
        ("(C)", 2),
        ("C.", 2),
        ("C) Buffalo Bills", 2),
        ("**C. Buffalo Bills**", 2),
        ("Answer: C", 2),
        ("The answer is C because the passages say so.", 2),
        ("The correct answer is (c).", 2),
        ("3", 2),
        ("Option 3", 2),
        ("Buffalo Bills", 2),
        ("The Buffalo Bills [2].", 2),
        ("It is C.", 2),
        ("Bengals", 1),
        ("B [1]", 1),
        ("A man was hurt.", None),
        ("I don't know.", None),
        ("", None),
        ("Steelers or Browns", None),
        ("E", None),
    ],
)
def test_parse_choice(reply, expected):
    assert m.parse_choice(reply, CHOICES) == expected


def test_parse_choice_prefers_choice_text_over_numbers_and_nested_names():
    assert m.parse_choice("1,140", ["840", "1,140", "1,420", "9,000"]) == 1
    assert m.parse_choice("2", ["840", "1,140", "1,420", "9,000"]) == 1  # not a choice text: the 2nd choice
    popes = ["Pope John Paul II", "Pope Paul VI", "Pope Pius XII", "Pope Benedict XVI"]
    assert m.parse_choice("It was Pope Benedict XVI.", popes) == 3
    assert m.parse_choice("Paul", ["Paul", "Paul Smith"]) == 0


def test_hit_at_k_and_reciprocal_rank():
    ranked = ["a", "b", "c", "d"]
    assert m.hit_at_k(ranked, {"c"}, 2) == 0.0
    assert m.hit_at_k(ranked, {"c"}, 3) == 1.0
    assert m.reciprocal_rank(ranked, {"c", "d"}) == pytest.approx(1 / 3)
    assert m.reciprocal_rank(ranked, {"z"}) == 0.0


def test_citation_validity():
    assert m.citation_validity([1, 2, 2, 7], given=3) == 0.75
    assert m.citation_validity([], given=3) is None
    assert m.citation_validity([0], given=3) == 0.0


def test_rouge_by_hand():
    ref, pred = "the cat sat on the mat", "the cat on the mat"
    # ROUGE-1: 5 of 5 predicted unigrams match, 5 of 6 reference: F = 2 * 1 * 5/6 / (1 + 5/6) = 10/11
    assert m.rouge_n(pred, ref, 1) == pytest.approx(10 / 11)
    # ROUGE-2: bigrams (the cat, on the, the mat) shared: P = 3/4, R = 3/5, F = 2/3
    assert m.rouge_n(pred, ref, 2) == pytest.approx(2 / 3)
    # ROUGE-L: LCS "the cat on the mat" = 5 tokens, as for ROUGE-1 here
    assert m.rouge_l(pred, ref) == pytest.approx(10 / 11)
    # LCS differs from unigram overlap when order differs: "mat the on cat the" vs ref
    assert m.rouge_n("mat the on cat the", ref, 1) == pytest.approx(10 / 11)
    # its LCS with the reference is 3 ("the on the", or "the cat the"): F = 2 * 3/5 * 3/6 / (3/5 + 3/6) = 6/11
    assert m.rouge_l("mat the on cat the", ref) == pytest.approx(6 / 11)
    assert m.rouge_n("", ref, 1) == 0.0 and m.rouge_l("", ref) == 0.0
    assert m.rouge_n(ref, ref, 2) == 1.0 and m.rouge_l(ref, ref) == 1.0


def test_bootstrap_is_seeded_and_brackets_the_mean():
    values = [1, 0, 1, 1, 0, 1, 0, 1, 1, 1]
    first = m.bootstrap(values, seed=3)
    assert first == m.bootstrap(values, seed=3)
    mean, low, high = first
    assert mean == pytest.approx(0.7) and low <= mean <= high and 0.0 <= low < high <= 1.0
    assert m.bootstrap([1.0, 1.0, 1.0]) == (1.0, 1.0, 1.0)
    assert m.bootstrap([0.5]) == (0.5, 0.5, 0.5)
    assert m.bootstrap([]) is None
    assert m.bootstrap([None, 1.0]) == (1.0, 1.0, 1.0)  # items without the metric are left out


def test_paired_bootstrap_of_a_clear_improvement_excludes_zero():
    before = [0] * 20 + [1] * 10
    after = [1] * 20 + [1] * 10
    delta, low, high = m.paired_bootstrap(before, after)
    assert delta == pytest.approx(20 / 30) and low > 0
    with pytest.raises(ValueError):
        m.paired_bootstrap([1], [1, 0])


def test_percentile():
    assert m.percentile([1, 2, 3, 4], 50) == 2.5
    assert m.percentile([], 50) is None
