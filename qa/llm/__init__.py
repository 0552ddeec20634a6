"""LLM backends behind one small Protocol: `complete` and `stream`.

- `openai_chat.OpenAIChat` drives any OpenAI-compatible server, and the local model through
  its loopback server (`local.py`), so there is one code path for both.
- No model at all is `None` where an `LLM | None` is taken: answers, summaries and briefings
  are then the best cited sentences (`extractive`).
`qa.library.make_llm(settings)` is the only place that picks one.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

Messages = list[dict[str, str]]
EXTRACTIVE = "extractive"  # the name answers carry when no model wrote them (`--llm extractive`)


@dataclass
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    finished: bool = True  # False: the stream broke off before the model finished


class LLM(Protocol):
    name: str

    @property
    def usage(self) -> Usage:
        """Tokens of the last call, and whether it finished."""
        ...

    def complete(self, messages: Messages, *, max_tokens: int = 320, temperature: float = 0.0) -> str: ...

    def stream(self, messages: Messages, *, max_tokens: int = 320, temperature: float = 0.0) -> Iterator[str]: ...


@runtime_checkable
class Judges(Protocol):
    """A backend that can say how likely its answer to a yes/no question is "yes" (from token
    log-probabilities): the model's own check in qa/grounding.py. Not every server can."""

    def yes_probability(self, messages: Messages) -> float | None: ...


def model_name(llm: LLM | None) -> str:
    """The name a result records for the model that wrote it (`extractive` for none)."""
    return llm.name if llm is not None else EXTRACTIVE
