"""Word roots for matching a question's words with a sentence's in any of their forms: "demand",
"demands", "demanded" and "demanding" share the root "demand". Cruder than a stemmer and enough for
that: it only ever compares words with each other, never shows a root."""

from __future__ import annotations

from functools import lru_cache

from .terms import terms

_SUFFIXES = ("ing", "ed", "es", "s", "e")


@lru_cache(maxsize=1 << 16)
def root(term: str) -> str:
    """The root of one term (as `terms` gives it): a suffix dropped when at least four letters remain."""
    for suffix in _SUFFIXES:
        if term.endswith(suffix) and len(term) - len(suffix) >= 4:
            term = term[: -len(suffix)]
            break
    return term[:-1] if len(term) > 4 and term[-1] == term[-2] else term  # "planned" -> "plann" -> "plan"


def roots(text: str) -> set[str]:
    """The roots of a text's content words (stopwords left out, as `terms` leaves them)."""
    return {root(t) for t in terms(text)}
