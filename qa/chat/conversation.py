"""What the model has read in a chat, kept in order so the next turn's prompt starts with all of it.

A local engine keeps the tokens of its last prompt (and a cache of earlier ones); a prompt that
starts with exactly those tokens is read from the point where it differs. So a follow-up does
not resend the passages: it appends the ones retrieval found that the conversation does not hold
yet, numbered after the others, then the question. A passage the model read two turns ago can
still be cited by number, and is verified like any other. When the conversation grows past
`MAX_TOKENS` (the engine's context is 4,096 per request) or a question is not a follow-up, it
starts again from the system prompt, which the engine still has cached.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from ..answer import user_message
from ..llm import Messages
from ..prompts import fill, format_passages
from ..records import Passage
from ..tokens import count_tokens

MAX_TOKENS = 2600  # leaves room for one more turn's passages, question and answer in 4,096


@dataclass
class Conversation:
    messages: Messages = field(default_factory=list)  # system, then user/assistant turns
    passages: list[Passage] = field(default_factory=list)  # every passage sent, numbered 1..n

    @property
    def tokens(self) -> int:
        return sum(count_tokens(m["content"]) for m in self.messages)


def _overlaps(a: Passage, b: Passage) -> bool:
    return a.article_id == b.article_id and a.start < b.end and b.start < a.end


def unseen(found: Sequence[Passage], held: Sequence[Passage]) -> list[Passage]:
    """The retrieved passages the conversation does not hold yet, numbered after the ones it does."""
    new = [p for p in found if not any(_overlaps(p, h) for h in held)]
    return [replace(p, number=len(held) + i + 1) for i, p in enumerate(new)]


def turn_message(question: str, new: Sequence[Passage], today: str = "") -> dict[str, str]:
    """The user message of one turn: the new passages (if any), then the question."""
    tag, blocks = format_passages(new, salt=question) if new else ("doc", fill("no_new_passages"))
    return user_message(question, tag, blocks, today)


def next_prompt(
    conversation: Conversation, question: str, found: Sequence[Passage], system: dict[str, str], today: str = ""
) -> tuple[Messages, list[Passage]]:
    """(the messages of this turn's prompt, every passage in it). Starts over when the conversation
    is empty or too long to take another turn."""
    if not conversation.messages or conversation.tokens > MAX_TOKENS:
        conversation.messages, conversation.passages = [system], []
    new = unseen(found, conversation.passages)
    return [*conversation.messages, turn_message(question, new, today)], [*conversation.passages, *new]


def record(conversation: Conversation, prompt: Messages, passages: Sequence[Passage], reply: str) -> None:
    """Keep what the model read and wrote, so the next turn's prompt starts with it."""
    conversation.messages = [*prompt, {"role": "assistant", "content": reply}]
    conversation.passages = list(passages)
