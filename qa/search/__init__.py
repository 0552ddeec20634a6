"""Search: the BM25 index (bm25.py), hybrid retrieval with reciprocal-rank fusion (retrieval.py),
context selection at sentence grain (context.py), and their options (options.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..embeddings import Embedder
    from ..store import Store
    from .bm25 import BM25Index


@dataclass
class Library:
    """A collection opened for work: its store, the embedder it was built with, its BM25 index.
    `qa.library.open_library(settings)` makes one; ingest, retrieval, answers, chat and briefings take it."""

    store: Store
    embedder: Embedder
    index: BM25Index

    def close(self) -> None:
        self.store.close()
