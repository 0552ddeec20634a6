"""Finding a stored article by what a user calls it: its id (or a unique prefix), the path or URL it
was ingested from, or its title (exact, contained, or containing every word given)."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path

from ..errors import UsageError
from . import Store, StoredArticle


def find_article(ref: str, store: Store) -> StoredArticle:
    """An article by id (or unique prefix), ingested path or URL, or title (exact, contained, or
    containing every word given)."""
    ref = ref.strip()
    if not ref:
        raise UsageError(
            "Name the article: an id from `qa sources`, the path or URL it was ingested from, or its title."
        )
    everything = store.articles()
    resolved = str(Path(ref).expanduser().resolve()) if "://" not in ref else ref
    path = os.path.abspath(os.path.expanduser(ref)) if "://" not in ref else ref  # from the current folder
    tests: list[Callable[[StoredArticle], bool]] = [
        lambda a: a.article.id == ref,
        lambda a: ref in (a.article.url, a.article.origin, a.key) or a.key == resolved or a.article.origin == path,
        lambda a: len(ref) >= 4 and a.article.id.startswith(ref),
        lambda a: (
            a.key.startswith(resolved + ":")
            or a.article.origin.startswith((ref + ":", ref + "#", path + ":", path + "#"))
        ),  # one record of a JSON file
        lambda a: a.article.title.casefold() == ref.casefold(),
        lambda a: ref.casefold() in a.article.title.casefold(),
        lambda a: set(ref.casefold().split()) <= set(re.findall(r"\w+", a.article.title.casefold())),
    ]
    for test in tests:
        found = [a for a in everything if test(a)]
        if len(found) == 1:
            return found[0]
        if len(found) > 1:
            listed = "; ".join(f"{a.article.id[:10]} {a.article.title[:60]!r}" for a in found[:5])
            raise UsageError(
                f"{ref!r} matches {len(found)} articles ({listed}{' …' if len(found) > 5 else ''}); "
                "give the id instead (see `qa sources`)."
            )
    raise UsageError(f"No article matches {ref!r}; see `qa sources` for ids and titles, or `qa ingest` it first.")
