"""BM25 over chunk texts (bm25s), persisted beside the store and rebuilt when the store moves on.

The index records the store generation it was built from; a mismatch means an ingest or
removal happened since, and the index is rebuilt from the catalogue before it is used.
"""

from __future__ import annotations

import json
import math
import re
import shutil
from collections import Counter
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..records import Chunk

if TYPE_CHECKING:
    from ..store import Store

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

# Bumped whenever `terms` changes, so an index saved by an older version is rebuilt, not misread.
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
    building the index calls this for every word of every chunk."""
    word = word.removesuffix("'s").replace("'", "")
    if word in STOPWORDS:
        return ""  # before stemming too, else "this" and "does" survive as "thi" and "doe"
    if len(word) > 4 and word.endswith("ies"):
        word = word[:-3] + "y"
    elif len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        word = word[:-1]
    return "" if word in STOPWORDS else word


class BM25Index:
    """BM25 over chunk texts, saved in `directory` (None: kept in memory only); `generation` is the
    store generation it was built from."""

    def __init__(self, directory: Path | None = None):
        self.directory = directory
        self.ids: list[str] = []
        self.doc_freq: Counter[str] = Counter()
        self.generation = -1
        self._bm25: Any = None

    @property
    def size(self) -> int:
        return len(self.ids)

    def build(self, chunks: Sequence[Chunk], generation: int) -> None:
        import bm25s

        self.ids = [c.id for c in chunks]
        corpus = [terms(c.text) or ["_empty_"] for c in chunks]
        self.doc_freq = Counter(t for doc in corpus for t in set(doc))
        self.generation = generation
        self._bm25 = None
        if corpus:
            self._bm25 = bm25s.BM25()
            self._bm25.index(corpus, show_progress=False)
        self._save()

    def _save(self) -> None:
        if self.directory is None:
            return
        tmp = self.directory.with_name(self.directory.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        if self._bm25 is not None:
            self._bm25.save(str(tmp / "bm25"))
        (tmp / "state.json").write_text(
            json.dumps(
                {"analyzer": ANALYZER, "generation": self.generation, "ids": self.ids, "doc_freq": self.doc_freq}
            )
        )
        old = self.directory.with_name(self.directory.name + ".old")
        shutil.rmtree(old, ignore_errors=True)
        if self.directory.exists():
            self.directory.rename(old)
        tmp.rename(self.directory)  # the swap is the commit point
        shutil.rmtree(old, ignore_errors=True)

    def load(self) -> bool:
        """Read the saved index; False when there is none, it is unreadable or from another analyzer."""
        import bm25s

        if self.directory is None:
            return False
        try:
            state = json.loads((self.directory / "state.json").read_text())
            if state.get("analyzer") != ANALYZER:
                return False  # built by another version of `terms`
            self.ids, self.generation = state["ids"], state["generation"]
            self.doc_freq = Counter(state["doc_freq"])
            self._bm25 = bm25s.BM25.load(str(self.directory / "bm25")) if self.ids else None
            return True
        except (OSError, ValueError, KeyError):
            return False

    def idf(self, term: str) -> float:
        n = max(1, len(self.ids))
        df = self.doc_freq.get(term, 0)
        return math.log(1 + (n - df + 0.5) / (df + 0.5))

    def search(self, query: str, k: int) -> list[tuple[str, float]]:
        if self._bm25 is None or not self.ids:
            return []
        q = [t for t in terms(query) if t in self.doc_freq]
        if not q:
            return []
        scores = self._bm25.get_scores(q)
        k = min(k, len(self.ids))
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top])]
        return [(self.ids[i], float(scores[i])) for i in top if scores[i] > 0]


def open_index(store: Store, *, refresh: bool = True) -> BM25Index:
    """The BM25 index of a store, from where it is kept beside the store (the one place that says
    where). With `refresh`, rebuilt first when the store changed since it was saved; without, as
    saved (ingest brings it up to date when it finishes; `qa doctor --check` reports it stale)."""
    index = BM25Index(store.home / "bm25" / store.name)
    loaded = index.load()
    if refresh and (not loaded or index.generation != store.generation):
        index.build(store.chunks(), store.generation)
    return index
