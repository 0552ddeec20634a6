"""Each corpus of an eval set in its own isolated collection, ingested once and reused across runs."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Sequence
from pathlib import Path

from ..embeddings import Embedder
from ..ingest.pipeline import STORE_FORMAT, ingest
from ..search import Library
from ..search.bm25 import open_index
from ..store import Store
from . import metrics
from .gold import EvalSet


def files_digest(paths: Sequence[Path], *salt: object) -> str:
    """A content hash of files (names and bytes) plus settings that change what is stored."""
    digest = hashlib.sha256(json.dumps([str(s) for s in salt]).encode())
    for path in sorted(paths, key=lambda p: (p.name, str(p))):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


class Corpora:
    """Each corpus of an eval set in its own isolated collection under `home`, ingested once.

    The collection name is a hash of the files' contents and the chunking settings, so a
    changed corpus gets a fresh collection and an unchanged one is reused across runs.
    """

    def __init__(
        self,
        evalset: EvalSet,
        *,
        home: Path,
        embedder: Embedder,
        chunk_tokens: int = 300,
        overlap: int = 45,
        default: Library | None = None,
        on_ingest: Callable[[str, int], None] | None = None,
    ):
        self.evalset, self.home, self.embedder = evalset, home, embedder
        self.chunk_tokens, self.overlap = chunk_tokens, overlap
        self.default = default
        self.on_ingest = on_ingest or (lambda name, files: None)
        self._open: dict[str, Library] = {}
        self._texts: dict[str, list[str]] = {}

    def get(self, key: str) -> Library | None:
        """The opened collection of corpus `key` ("" the shared one), ingested on first use."""
        if key in self._open:
            return self._open[key]
        files = self.evalset.corpora.get(key)
        if files is None:
            return self.default if key == "" else None
        if not files:
            return None  # an item with no documents at all
        name = "eval-" + files_digest(files, self.embedder.name, self.chunk_tokens, self.overlap, STORE_FORMAT)
        store = Store(self.home, name, self.embedder.name, self.embedder.dimension)
        done = self.home / f"{name}.ingested"
        if not done.is_file():
            if key == "":
                self.on_ingest(name, len(files))
            report = ingest(
                [str(f) for f in files],
                library=Library(store, self.embedder, open_index(store)),
                chunk_tokens=self.chunk_tokens,
                overlap=self.overlap,
            )
            if report.interrupted:
                raise KeyboardInterrupt
            done.write_text(json.dumps({"articles": len(store.articles()), "failed": len(report.failed)}))
        if key != "":  # items' own corpora: keep only the shared one open
            for other in [k for k in self._open if k != ""]:
                self._open.pop(other).close()
                self._texts.pop(other, None)
        self._open[key] = Library(store, self.embedder, open_index(store))
        return self._open[key]

    def prepare(self) -> None:
        """Ingest the shared corpus now, so its one-time cost is not counted in an item's latency."""
        if "" in self.evalset.corpora:
            self.get("")

    def texts(self, key: str) -> list[str]:
        """Normalised texts of every article of a corpus (for 'is the answer anywhere in it')."""
        if key not in self._texts:
            opened = self.get(key)
            self._texts[key] = (
                [f" {metrics.normalise(a.article.text)} " for a in opened.store.articles()] if opened else []
            )
        return self._texts[key]

    def close(self) -> None:
        for library in self._open.values():
            if self.default is None or library.store is not self.default.store:
                library.close()
        self._open.clear()


def resolve_gold(refs: Sequence[str], store: Store) -> set[str]:
    """Stored article ids named by gold references: an id (or a prefix of 8+), a url or a file name."""
    if not refs:
        return set()
    found: set[str] = set()
    for stored in store.articles():
        a = stored.article
        origin = re.sub(r"(#\d+|\[\d+\])+$", "", a.origin)
        names = {a.id, a.url, origin, Path(origin).name} - {""}
        for ref in refs:
            if ref in names or (len(ref) >= 8 and a.id.startswith(ref)) or (origin and origin.endswith("/" + ref)):
                found.add(a.id)
    return found
