"""A user's cache of a shared archive (shared.py): the catalogue in QA_HOME, filled from the server
and brought up to date before a command reads it, asking only for records changed since the last
look. Deleting it loses nothing: the next command rebuilds it from the server.

Beside the catalogue's own tables: `synced` (the seq of the record each cached article came from)
and, in `meta`, `archive` (the server collection it mirrors) and `synced_to` (the server time of
the last look).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .catalogue import Catalogue
from .shared import OVERLAP_MS, Fetched, SharedArchive

log = logging.getLogger(__name__)

SCHEMA = "CREATE TABLE IF NOT EXISTS synced (article_id TEXT PRIMARY KEY, seq INTEGER NOT NULL) WITHOUT ROWID"
BATCH = 200  # articles fetched and written per step


@dataclass(frozen=True)
class Synced:
    """What one sync did."""

    fetched: int = 0
    dropped: int = 0
    seconds: float = 0.0
    full: bool = False


def prepare(catalogue: Catalogue) -> None:
    catalogue.db.execute(SCHEMA)


def meta(catalogue: Catalogue, name: str) -> str | None:
    row = catalogue.db.execute("SELECT value FROM meta WHERE name=?", (name,)).fetchone()
    return row[0] if row else None


def set_meta(catalogue: Catalogue, name: str, value: str) -> None:
    catalogue.db.execute("INSERT OR REPLACE INTO meta VALUES (?,?)", (name, value))


def also_rows(catalogue: Catalogue, article_id: str) -> list[tuple[str, ...]]:
    """Other reports of an article as cached: (key, source, url, title, date, origin)."""
    return catalogue.db.execute(
        "SELECT key, source, url, title, date, origin FROM also_reported WHERE article_id=? ORDER BY key",
        (article_id,),
    ).fetchall()


def sync(catalogue: Catalogue, archive: SharedArchive, chunks: Any, dimension: int) -> Synced:
    """Bring the cache up to date with the server: fetch the records changed since the last look
    (written or rewritten: fetched whole; removed: dropped); all of them on a first look or when
    the server's collection is not the one the cache was filled from."""
    started = time.perf_counter()
    prepare(catalogue)
    identity = archive.identity
    full = meta(catalogue, "archive") != identity
    if full:
        _wipe(catalogue)
        set_meta(catalogue, "archive", identity)
    if not identity:
        return Synced(full=full)
    since = int(meta(catalogue, "synced_to") or 0)
    now = archive.now()
    changes = list(archive.changes(since - OVERLAP_MS if since else 0))
    have = seqs(catalogue, [c.id for c in changes])
    gone = [c.id for c in changes if c.state != "ok" and c.id in have]
    wanted = {c.id: c.seq for c in changes if c.state == "ok" and have.get(c.id) != c.seq}
    if gone:
        drop(catalogue, gone)
    fetched, said = 0, False
    ids = sorted(wanted)
    for b in range(0, len(ids), BATCH):
        got = archive.fetch(ids[b : b + BATCH], chunks, dimension)
        apply(catalogue, got)
        fetched += len(got)
        for f in got:
            wanted.pop(f.item.article.id, None)
        if time.perf_counter() - started > 1 and not said:
            said = True
            log.info(f"Bringing the local copy of {archive.name!r} up to date: {len(ids):,} articles from the server…")
    # an article not complete on the server yet (a write or removal under way) is asked for again
    set_meta(catalogue, "synced_to", str(min([now, *(seq - 1 for seq in wanted.values())])))
    return Synced(fetched, len(gone), time.perf_counter() - started, full)


def apply(catalogue: Catalogue, fetched: Sequence[Fetched]) -> None:
    """Write articles as the server holds them (replacing the cached versions) and their seq."""
    if not fetched:
        return
    items = [f.item for f in fetched]
    catalogue.write_pending(items)
    catalogue.publish(items)
    with catalogue.transaction():
        db = catalogue.db
        db.executemany("INSERT OR REPLACE INTO synced VALUES (?,?)", [(f.item.article.id, f.seq) for f in fetched])
        for f in fetched:
            aid = f.item.article.id
            db.execute("DELETE FROM also_reported WHERE article_id=?", (aid,))
            db.executemany("INSERT OR REPLACE INTO also_reported VALUES (?,?,?,?,?,?,?)", [(aid, *r) for r in f.also])


def set_seq(catalogue: Catalogue, article_id: str, seq: int) -> None:
    prepare(catalogue)
    catalogue.db.execute("INSERT OR REPLACE INTO synced VALUES (?,?)", (article_id, seq))


def drop(catalogue: Catalogue, article_ids: Sequence[str]) -> None:
    """Remove articles from the cache only (the server has already removed them)."""
    catalogue.hide(article_ids)
    catalogue.delete(article_ids)
    with catalogue.transaction():
        catalogue.db.executemany("DELETE FROM synced WHERE article_id=?", [(a,) for a in article_ids])


def seqs(catalogue: Catalogue, article_ids: Sequence[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for b in range(0, len(article_ids), 30000):
        part = list(article_ids[b : b + 30000])
        marks = ",".join("?" * len(part))
        out.update(catalogue.db.execute(f"SELECT article_id, seq FROM synced WHERE article_id IN ({marks})", part))
    return out


def _wipe(catalogue: Catalogue) -> None:
    """Forget everything cached (the cache was filled from another server collection)."""
    ids = [r[0] for r in catalogue.db.execute("SELECT id FROM articles")]
    if ids:
        catalogue.hide(ids)
        catalogue.delete(ids)
    with catalogue.transaction():
        catalogue.db.execute("DELETE FROM synced")
        catalogue.db.execute("DELETE FROM meta WHERE name='synced_to'")
