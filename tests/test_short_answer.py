"""The eval's short answer snapped to the passages' own words (qa/eval/respond.py): strict exact
match scores spans of the source, so a right answer is written as the passage writes it, and a
wrong completion never replaces the model's right words."""

from qa.eval.respond import snap_to_passages
from qa.records import Passage


def _one(text: str) -> list[Passage]:
    return [Passage(1, "a1", text, 0, len(text))]


def test_a_partial_name_is_completed_where_the_passage_writes_the_name():
    assert snap_to_passages("Benedict XVI", _one("Mourners saw Pope Benedict XVI laid to rest.")) == "Pope Benedict XVI"
    assert snap_to_passages("Bills", _one("The Buffalo Bills safety collapsed.")) == "Buffalo Bills"


def test_a_common_word_is_not_completed_over_a_date_and_a_comma():
    assert snap_to_passages("Sesame", _one("The FDA said: Starting January 1, sesame is an allergen.")) == "sesame"


def test_a_span_never_drops_the_models_words():
    """No span of the passage holds all of "San Francisco Bay Area": the model's words stand."""
    dateline = "SAN FRANCISCO – A storm hit the region on Monday. Rain fell for hours."
    assert snap_to_passages("San Francisco Bay Area", _one(dateline)) == "San Francisco Bay Area"
    assert snap_to_passages("7 per cent rise", _one("Workers won a 7 per cent pay rise.")) == "7 per cent pay rise"
