"""The LLM call cache of eval runs: replies kept on disk, so re-running or resuming a run costs nothing."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

from ..llm import LLM, Judges, Messages, Usage


class CachedLLM:
    """An LLM whose replies are kept on disk, keyed by model, messages and parameters.

    A repeated call returns the stored reply (and its token counts) without running the
    model, so re-running or resuming an eval costs nothing and gives the same answers."""

    def __init__(self, llm: LLM, path: Path):
        self.inner = llm
        self.name = llm.name
        self.usage = Usage()
        self.hits = self.misses = 0
        path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(path, timeout=30, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS calls (key TEXT PRIMARY KEY, model TEXT, reply TEXT, "
            "prompt_tokens INTEGER, completion_tokens INTEGER, created REAL)"
        )

    def key(self, messages: Messages, max_tokens: int, temperature: float) -> str:
        blob = json.dumps(
            {"model": self.name, "messages": messages, "max_tokens": max_tokens, "temperature": temperature},
            sort_keys=True,
            ensure_ascii=False,
        )
        return hashlib.sha256(blob.encode()).hexdigest()

    def _get(self, key: str) -> str | None:
        row = self.db.execute(
            "SELECT reply, prompt_tokens, completion_tokens FROM calls WHERE key=?", (key,)
        ).fetchone()
        if row is None:
            self.misses += 1
            return None
        self.hits += 1
        self.usage = Usage(row[1], row[2], True)
        return row[0]

    def _put(self, key: str, reply: str) -> None:
        self.usage = self.inner.usage
        if self.usage.finished:  # a reply cut off by an error is not worth replaying
            self.db.execute(
                "INSERT OR REPLACE INTO calls VALUES (?,?,?,?,?,?)",
                (key, self.name, reply, self.usage.prompt_tokens, self.usage.completion_tokens, time.time()),
            )

    def complete(self, messages: Messages, *, max_tokens: int = 320, temperature: float = 0.0) -> str:
        key = self.key(messages, max_tokens, temperature)
        reply = self._get(key)
        if reply is None:
            reply = self.inner.complete(messages, max_tokens=max_tokens, temperature=temperature)
            self._put(key, reply)
        return reply

    def stream(self, messages: Messages, *, max_tokens: int = 320, temperature: float = 0.0) -> Iterator[str]:
        key = self.key(messages, max_tokens, temperature)
        reply = self._get(key)
        if reply is not None:
            yield reply
            return
        pieces = []
        for piece in self.inner.stream(messages, max_tokens=max_tokens, temperature=temperature):
            pieces.append(piece)
            yield piece
        self._put(key, "".join(pieces))

    def close(self) -> None:
        self.db.close()

    def yes_probability(self, messages: Messages) -> float | None:
        """The model's own yes/no check, kept like a reply (None: the backend gives no probabilities)."""
        if not isinstance(self.inner, Judges):
            return None
        key = self.key(messages, -1, 0.0)  # -1: not a reply of max_tokens, the check's probability
        stored = self._get(key)
        if stored is not None:
            return json.loads(stored)
        p = self.inner.yes_probability(messages)
        self._put(key, json.dumps(p))
        return p
