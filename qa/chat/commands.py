"""Chat /commands as data: parsing a command line and its filters, and opening a cited passage."""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from ..errors import QAError, UsageError
from ..ingest.articles import normalise_date
from ..records import Answer, Article, Passage, Sentence
from ..search.options import Filters
from ..store import Store
from .session import Session

HELP: tuple[tuple[str, str], ...] = (
    ("/help", "this list"),
    ("/sources", "every passage the last answer was given, cited or not"),
    ("/open N", "passage N of the last answer in full, with its article's details"),
    ("/summarise N", "a cited summary of the article of passage N (or an article id or title)"),
    ("/brief TOPIC", "a cited briefing on a topic across articles"),
    ("/filter source=... since=... until=...", "limit the articles searched; /filter alone shows, /filter clear"),
    ("/model [NAME]", "the model in use; with a name (local, extractive, openai:MODEL) switch to it"),
    ("/reset", "start a new conversation (the filters stay)"),
    ("/save FILE", "the transcript as Markdown, with every citation's passage"),
    ("/quit", "leave (Ctrl-D too); /resume next time with `qa chat --resume`"),
)
COMMANDS = tuple(usage.split()[0][1:] for usage, _ in HELP)
ALIASES = {
    "?": "help",
    "h": "help",
    "exit": "quit",
    "q": "quit",
    "bye": "quit",
    "summarize": "summarise",
    "summary": "summarise",
    "filters": "filter",
    "new": "reset",
    "clear": "reset",
}


@dataclass(frozen=True)
class Command:
    name: str  # one of COMMANDS, or "unknown"
    arg: str = ""


def parse_command(line: str) -> Command | None:
    """A `/command` line as a Command (unique prefixes and a few aliases accepted); None for a question."""
    text = line.strip()
    if not text.startswith("/"):
        return None
    head, _, arg = text[1:].partition(" ")
    head = head.lower()
    name = ALIASES.get(head, head)
    if name not in COMMANDS:
        matches = [c for c in COMMANDS if head and c.startswith(head)]
        if len(matches) != 1:
            return Command("unknown", "/" + head)
        name = matches[0]
    return Command(name, arg.strip())


FILTER_KEYS = ("source", "since", "until")


def parse_filters(arg: str, current: Filters, sources: Sequence[str] | None = None) -> Filters:
    """`source=Capital Wire since=2026-01-01 until=...` on top of the current filters; `clear` drops
    them all and `key=` one. A source is matched without regard to case against `sources`."""
    try:
        tokens = shlex.split(arg)
    except ValueError:
        raise UsageError('A quote is not closed; write /filter source="Capital Wire".')
    if [t.lower() for t in tokens] in (["clear"], ["off"], ["none"]):
        return Filters()
    values = asdict(current)
    key = ""
    for token in tokens:
        name, sep, value = token.partition("=")
        if not sep:
            if not key:
                raise UsageError(f"/filter takes key=value pairs ({', '.join(FILTER_KEYS)}), not {token!r}.")
            values[key] = f"{values[key]} {token}".strip()  # source=Capital Wire, unquoted
            continue
        key = name.lower()
        if key not in FILTER_KEYS:
            raise UsageError(f"Unknown filter {name!r}; use {', '.join(FILTER_KEYS)} (or /filter clear).")
        values[key] = value
    for key in ("since", "until"):
        if values[key]:
            date = normalise_date(values[key])
            if not date:
                raise UsageError(f"{key}= needs a date like 2024-02-26, not {values[key]!r}.")
            values[key] = date
    if values["since"] and values["until"] and values["since"] > values["until"]:
        raise UsageError(f"since={values['since']} is after until={values['until']}: no article can match.")
    if values["source"] and sources is not None:
        match = [s for s in sources if s.casefold() == values["source"].casefold()]
        if not match:
            known = ", ".join(sorted(set(s for s in sources if s))) or "none"
            raise UsageError(f"No article comes from {values['source']!r}; the sources are: {known}.")
        values["source"] = match[0]
    return Filters(**values)


@dataclass(frozen=True)
class Opened:
    """A passage of the last answer in full, with its article and the answer sentences citing it."""

    passage: Passage
    article: Article
    citing: tuple[Sentence, ...]


def pick_passage(session: Session, arg: str) -> tuple[Answer, Passage]:
    """The last answer and its passage `arg` (a number, or [number])."""
    turn = session.last_answered()
    answer = turn.answer if turn is not None else None
    if answer is None or not answer.passages:
        raise UsageError("There is no answer with passages yet: ask a question first.")
    passages = answer.passages
    try:
        number = int(arg.strip().strip("[]"))
    except ValueError:
        raise UsageError(f"Give a passage number of the last answer, 1 to {len(passages)}: e.g. /open 1.")
    for p in passages:
        if p.number == number:
            return answer, p
    raise UsageError(f"The last answer has passages 1 to {len(passages)}, not {number}.")


def open_passage(session: Session, arg: str, store: Store) -> Opened:
    answer, passage = pick_passage(session, arg)
    stored = store.find_by_id(passage.article_id)
    if stored is None:
        raise QAError(f"The article of passage [{passage.number}] has been removed from the store since.")
    citing = tuple(s for s in answer.sentences if passage.number in s.citations)
    return Opened(passage, stored.article, citing)
