"""The analyser of keyword search: the terms of a text (lower-cased words minus stopwords, with a
light plural/possessive stem). The lexical index (store/lexicon.py), context selection, answers
and verification all count words through it, so they agree on what a word is."""

from __future__ import annotations

import re
from functools import lru_cache

STOPWORDS = frozenset(
    """
a about above after again against all am an and any are as at be because been before being below between both
but by can could did do does doing down during each few for from further had has have having he her here hers
herself him himself his how i if in into is it its itself just me more most my myself no nor not now of off on
once only or other our ours ourselves out over own same she should so some such than that the their theirs them
themselves then there these they this those through to too under until up very was we were what when where which
while who whom why will with would you your yours yourself yourselves said says also one new year years week
""".split()
)

# Bumped whenever `terms` changes, so a lexical index built by an older version is rebuilt, not misread.
ANALYZER = 2

_WORD = re.compile(r"[a-z0-9]+(?:[.'][a-z0-9]+)*")


def terms(text: str) -> list[str]:
    """Lower-cased words minus stopwords, with a light plural/possessive stem."""
    out = []
    for word in _WORD.findall(text.lower().replace("’", "'")):
        term = _stem(word)
        if term:
            out.append(term)
    return out


@lru_cache(maxsize=1 << 18)
def _stem(word: str) -> str:
    """The term for one word, "" for a stopword. Cached: news reuses a small vocabulary, and
    indexing calls this for every word of every chunk."""
    word = word.removesuffix("'s").replace("'", "")
    if word in STOPWORDS:
        return ""  # before stemming too, else "this" and "does" survive as "thi" and "doe"
    if len(word) > 4 and word.endswith("ies"):
        word = word[:-3] + "y"
    elif len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        word = word[:-1]
    return "" if word in STOPWORDS else word
