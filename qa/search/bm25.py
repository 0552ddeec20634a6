"""BM25 keyword search over a store's lexical index.

The index lives in the store's catalogue and is written with it (qa/store/lexicon.py): adding or
removing an article updates it in the same transaction, so there is nothing to build or refresh
here; this is the view retrieval and context selection read it through.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from ..store.lexicon import idf
from ..terms import terms

if TYPE_CHECKING:
    from ..store import Store


class BM25Index:
    """Keyword search and term weights (idf) of one store."""

    def __init__(self, store: Store):
        self.store = store

    @property
    def size(self) -> int:
        """Chunks in the index (the visible ones)."""
        return self.store.document_frequencies([])[0]

    def search(self, query: str, k: int) -> list[tuple[str, float]]:
        """(chunk id, score) of the best `k` chunks for the words of `query`, best first."""
        return self.store.lexical_search(terms(query), k)

    def idfs(self, words: Iterable[str]) -> dict[str, float]:
        """Each term's inverse document frequency (BM25's, as the search weighs it)."""
        unique = sorted(set(words))
        n, df = self.store.document_frequencies(unique)
        return {w: idf(max(n, 1), df[w]) for w in unique}


def open_index(store: Store) -> BM25Index:
    """The BM25 index of a store (kept up to date by the store itself)."""
    return BM25Index(store)
