"""Near-duplicate stories: the same wire story syndicated with small edits (a headline, a byline,
a dropped or added paragraph) is found by MinHash over word shingles and kept once.

Signatures are kept in the catalogue, so the LSH index is rebuilt from them when a store is opened;
candidates from the index are confirmed with the exact Jaccard similarity of the two texts.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

import numpy as np

from ..store import Store

NUM_PERM = 128
SHINGLE_WORDS = 5
MIN_SHINGLES = 20  # shorter texts are too small to call near-copies; exact duplicates still are caught


def shingles(text: str) -> set[bytes]:
    """Overlapping runs of SHINGLE_WORDS words, case and punctuation ignored."""
    words = re.findall(r"\w+", unicodedata.normalize("NFKC", text).lower())
    return {" ".join(words[i : i + SHINGLE_WORDS]).encode("utf-8") for i in range(len(words) - SHINGLE_WORDS + 1)}


def jaccard(a: set[bytes], b: set[bytes]) -> float:
    return len(a & b) / len(a | b) if a and b else 0.0


@lru_cache(maxsize=1)
def _permutations() -> Any:
    from datasketch import MinHash

    return MinHash(num_perm=NUM_PERM).permutations  # made from the default seed: the same in every process


def minhash(parts: Iterable[bytes]) -> Any:
    """A datasketch MinHash of the parts."""
    from datasketch import MinHash

    signature = MinHash(num_perm=NUM_PERM, permutations=_permutations())
    signature.update_batch(list(parts))
    return signature


def to_bytes(signature: Any) -> bytes:
    return signature.hashvalues.astype("<u8").tobytes()


def from_bytes(blob: bytes) -> Any:
    from datasketch import LeanMinHash  # no permutations to build: 20x faster to reopen a big store

    return LeanMinHash(seed=1, hashvalues=np.frombuffer(blob, dtype="<u8"))


class NearDuplicates:
    """The near-duplicate index of one store; open it inside the store's write lock."""

    def __init__(self, store: Store, threshold: float = 0.7):
        from datasketch import MinHashLSH

        self.store, self.threshold = store, threshold
        # the LSH band threshold sits below the exact one: candidates are confirmed on the texts
        self.lsh = MinHashLSH(threshold=max(0.1, threshold - 0.15), num_perm=NUM_PERM) if threshold > 0 else None
        self._shingles: dict[str, set[bytes]] = {}  # texts met in this run, by article id
        self._unsaved: dict[str, bytes] = {}
        if self.lsh is None:
            return
        made: list[tuple[str, bytes]] = []
        for article_id, blob in store.signatures():
            if blob is None:  # stored before signatures were kept (or a crash in between): make it now
                found = store.find_by_id(article_id)
                parts = shingles(found.article.text) if found else set()
                if len(parts) < MIN_SHINGLES:
                    continue
                blob = to_bytes(minhash(parts))
                made.append((article_id, blob))
                if len(made) >= 500:  # kept in batches: one transaction (and one server request) each
                    store.set_signatures(made)
                    made = []
            self.lsh.insert(article_id, from_bytes(blob))
        if made:
            store.set_signatures(made)

    def match(self, article_id: str, text: str, *, exclude: Iterable[str | None] = ()) -> tuple[str, float] | None:
        """The stored (or earlier in this run) article that `text` nearly copies, with its similarity;
        None if there is none. The text is then indexed under `article_id` for later arrivals."""
        if self.lsh is None:
            return None
        parts = shingles(text)
        if len(parts) < MIN_SHINGLES:
            return None
        signature = minhash(parts)
        skip = set(exclude)
        best: tuple[str, float] | None = None
        for candidate in self.lsh.query(signature):
            if candidate in skip or candidate == article_id:
                continue
            other = self._shingles_of(candidate)
            score = jaccard(parts, other)
            if score >= self.threshold and (best is None or score > best[1]):
                best = (candidate, score)
        if best is None and article_id not in self.lsh:
            self.lsh.insert(article_id, signature)
            self._shingles[article_id] = parts
            self._unsaved[article_id] = to_bytes(signature)
        return best

    def take_signature(self, article_id: str) -> bytes | None:
        """The signature made for an article about to be stored, to be written with it."""
        return self._unsaved.pop(article_id, None)

    def forget(self, article_id: str) -> None:
        """An article replaced by its new version is no longer a copy to match."""
        if self.lsh is not None and article_id in self.lsh:
            self.lsh.remove(article_id)
        self._shingles.pop(article_id, None)

    def _shingles_of(self, article_id: str) -> set[bytes]:
        if article_id not in self._shingles:
            found = self.store.find_by_id(article_id)
            self._shingles[article_id] = shingles(found.article.text) if found else set()
        return self._shingles[article_id]
