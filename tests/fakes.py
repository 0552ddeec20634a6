"""Test doubles: a fake LLM (a queue of replies plus the calls it received) and a deterministic
embedder. Registered as backends named `fake` for processes the tests start: the autouse fixture
in conftest.py sets QA_PLUGINS=tests.fakes, which only the composition root (qa/library.py) reads.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np

from qa.llm import Messages, Usage
from qa.prompts import REFUSAL


@dataclass
class FakeLLM:
    """Replies from a queue (the last one repeats), with the messages of every call kept; streamed
    one word per `delay` seconds, so that Ctrl-C can land in the middle of an answer."""

    replies: list[str] = field(default_factory=lambda: [REFUSAL])
    name: str = "fake"
    calls: list[Messages] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    delay: float = 0.0

    def _next(self, messages: Messages) -> str:
        self.calls.append(messages)
        reply = self.replies.pop(0) if len(self.replies) > 1 else self.replies[0]
        self.usage = Usage(sum(len(m["content"].split()) for m in messages), len(reply.split()))
        return reply

    def complete(self, messages: Messages, *, max_tokens: int = 320, temperature: float = 0.0) -> str:
        return self._next(messages)

    def stream(self, messages: Messages, *, max_tokens: int = 320, temperature: float = 0.0) -> Iterator[str]:
        reply = self._next(messages)
        for word in reply.split(" "):
            time.sleep(self.delay)
            yield word + " "


@dataclass
class FakeJudgingLLM(FakeLLM):
    """A fake that can also answer the model's own yes/no check: P(yes) from `judgments` in turn
    (the last repeats; None: the server gave no probabilities), with the check's messages kept."""

    judgments: list[float | None] = field(default_factory=lambda: [0.9])
    judged: list[Messages] = field(default_factory=list)

    def yes_probability(self, messages: Messages) -> float | None:
        self.judged.append(messages)
        return self.judgments.pop(0) if len(self.judgments) > 1 else self.judgments[0]


class FakeEmbedder:
    """Deterministic bag-of-words hashing embedder: shared words give similar vectors."""

    def __init__(self, dimension: int = 64, name: str = "fake"):
        self.name = name
        self.dimension = dimension

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in re.findall(r"\w+", text.lower()):
                h = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=4).digest(), "little")
                out[row, h % self.dimension] += 1.0
            if not out[row].any():
                out[row, 0] = 1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return (out / np.maximum(norms, 1e-12)).astype(np.float32)


def fake_llm_from_environment() -> FakeLLM:
    """`--llm fake` in a process a test started: replies from QA_FAKE_REPLIES (a JSON list),
    streamed one word per QA_FAKE_DELAY seconds."""
    replies = json.loads(os.environ.get("QA_FAKE_REPLIES") or "[]")
    fake = FakeLLM(delay=float(os.environ.get("QA_FAKE_DELAY") or 0))
    if replies:
        fake.replies = [str(r) for r in replies]
    return fake


def register(backends) -> None:
    """The plugin hook qa/library.py calls: backends named `fake`."""
    backends.embedders["fake"] = lambda settings: FakeEmbedder()
    backends.llms["fake"] = lambda settings: fake_llm_from_environment()
