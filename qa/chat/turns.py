"""One turn of a conversation: a follow-up rewritten into a standalone question (by the model,
or by a rule with no model), the previous turn's cited passages carried along, the answer."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime

from ..answer import AskOptions, answer, system_message
from ..errors import QAError
from ..language import language_note
from ..llm import LLM, Messages
from ..prompts import fill
from ..records import Passage
from ..search import Library
from ..search.options import Filters
from ..search.retrieval import retrieve
from ..terms import terms
from ..tokens import count_tokens
from ..verify import is_refusal
from .conversation import next_prompt, record
from .session import Session, Turn, plain

CARRIED = 2  # cited passages of the previous turn carried into a follow-up's context
HISTORY_TURNS = 2  # turns shown to the model when it rewrites a follow-up

_REFERENCE = re.compile(
    r"\b(he|she|it|its|they|them|their|theirs|his|her|hers|him|this|these|those|else)\b"
    r"|\bthat\s*[?.!]*$|\b(the|that|this) (company|deal|man|woman|firm|person|group|plan)\b",
    re.I,
)
_OPENER = re.compile(r"^\s*(and|but|also|so|or|what about|how about)\b", re.I)
_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9'’.\-]*[A-Za-z0-9]|[A-Za-z0-9]")


def _names(text: str) -> bool:
    """Whether `text` names something: a capitalised word other than the first."""
    return any(w[0].isupper() for w in _WORD.findall(text)[1:])


def is_follow_up(question: str, previous: Turn | None) -> bool:
    """True when the question leans on the conversation: an opener like "and", (almost) no words
    of its own, or a pronoun with no name before it in the question ("their" in "Korvane's
    workers ... their strike" has one). Without a previous answer nothing is a follow-up."""
    if previous is None:
        return False
    if _OPENER.match(question) or len(terms(question)) <= 1:
        return True
    return any(not _names(question[: m.start()]) for m in _REFERENCE.finditer(question))


def key_terms(text: str, limit: int = 8) -> list[str]:
    """The words of `text` worth carrying into a follow-up, as written: names first, then the
    other content words, without repeats or stopwords."""
    seen: set[str] = set()
    names: list[str] = []
    others: list[str] = []
    for i, word in enumerate(_WORD.findall(text)):
        word = re.sub(r"['’]s$", "", word)
        stem = terms(word)
        if not stem or stem[0] in seen:
            continue
        seen.add(stem[0])
        (names if i > 0 and word[0].isupper() else others).append(word)
    return (names + others)[:limit]


def rule_rewrite(question: str, previous: str) -> str:
    """The deterministic rewrite: the question plus the key words of the previous one it lacks."""
    have = set(terms(question))
    missing = [w for w in key_terms(previous) if terms(w)[0] not in have]
    return f"{question.rstrip()} ({' '.join(missing)})" if missing else question


def rewrite_messages(question: str, turns: Sequence[Turn]) -> list[dict[str, str]]:
    answered = [(t.searched, t.answer) for t in turns if t.answer is not None][-HISTORY_TURNS:]
    history = "\n".join(f"User: {searched}\nAssistant: {plain(answer.text)}" for searched, answer in answered)
    return [
        {"role": "system", "content": fill("rewrite_system")},
        {"role": "user", "content": fill("rewrite_user", history=history, question=" ".join(question.split()))},
    ]


def clean_rewrite(raw: str, question: str) -> str | None:
    """The model's rewrite, or None when it is not a usable question (empty, a refusal, an answer)."""
    lines = [line.strip() for line in raw.strip().splitlines() if line.strip()]
    if not lines:
        return None
    text = re.sub(r"^(rewritten|standalone)?\s*question\s*:\s*", "", lines[0], flags=re.I)
    text = text.strip().strip("\"'“”`").strip()
    if not text or is_refusal(text) or re.search(r"\[\d+\]", text) or len(text) > 2 * len(question) + 200:
        return None
    return text


def rewrite(
    question: str, turns: Sequence[Turn], llm: LLM | None, conversation: Messages | None = None
) -> tuple[str, str]:
    """(standalone question, who rewrote it: "", "model" or "rule"). With the conversation the model
    has read (its prompt cache), the rewrite is asked as one more short turn of it: a few dozen new
    tokens to read instead of the whole history."""
    previous = next((t for t in reversed(turns) if t.answer is not None), None)
    if previous is None or not is_follow_up(question, previous):
        return question, ""
    if llm is not None:
        if conversation:
            ask = [
                *conversation,
                {"role": "user", "content": fill("rewrite_turn", question=" ".join(question.split()))},
            ]
        else:
            ask = rewrite_messages(question, turns)
        try:
            got = clean_rewrite(llm.complete(ask, max_tokens=40, temperature=0.0), question)
        except QAError:
            got = None  # the rule below still gives retrieval something to work with
        if got:
            return got, "model"
    return rule_rewrite(question, previous.searched), "rule"


def _overlaps(a: Passage, b: Passage) -> bool:
    return a.article_id == b.article_id and a.start < b.end and b.start < a.end


def with_carried(found: Sequence[Passage], carried: Sequence[Passage], filters: Filters) -> list[Passage]:
    """The retrieved passages, then the carried ones they do not already cover, numbered 1..n."""
    kept = [p for p in carried if filters.admits(p.source, p.date) and not any(_overlaps(p, f) for f in found)]
    return [replace(p, number=i + 1) for i, p in enumerate([*found, *kept])]


def ask_turn(
    session: Session,
    question: str,
    *,
    library: Library,
    llm: LLM | None,
    options: AskOptions = AskOptions(),
    on_token: Callable[[str], None] | None = None,
    on_rewrite: Callable[[str], None] | None = None,
) -> Turn:
    """Answer one question of the conversation and append the turn to the session.

    A follow-up is rewritten first (`on_rewrite` gets the standalone question) and keeps the
    previous turn's cited passages in its context. Interrupted (Ctrl-C), the turn is recorded
    as stopped and the KeyboardInterrupt goes on to the caller."""
    t0 = time.perf_counter()
    at = datetime.now().isoformat(timespec="seconds")
    question = question.strip()
    searched, how, rewrite_ms = question, "", 0.0
    try:
        previous = session.last_answered()
        follow_up = is_follow_up(question, previous)
        if follow_up:
            searched, how = rewrite(question, session.turns, llm, session.conversation.messages)
            rewrite_ms = (time.perf_counter() - t0) * 1000
            if on_rewrite and searched != question:
                on_rewrite(searched)
        conversation = session.conversation
        if llm is not None and not follow_up:
            conversation.messages, conversation.passages = [], []  # a new subject: start again
        carried = previous.answer.cited[:CARRIED] if follow_up and previous and previous.answer else []
        if llm is not None:
            carried = []  # with a model, the conversation already holds every passage it read
        wanted = options.retrieval
        budget = max(200, wanted.budget - sum(count_tokens(p.text) + wanted.header_tokens for p in carried))
        found = retrieve(
            searched,
            library=library,
            options=replace(wanted, budget=budget, filters=session.filters),
        )
        if llm is None:
            passages = with_carried(found.passages, carried, session.filters)
            result = answer(searched, passages, llm=None, embedder=library.embedder, options=options)
        else:
            prompt, passages = next_prompt(
                conversation, searched, found.passages, system_message(options.max_sentences), options.today
            )
            result = answer(
                searched,
                passages,
                llm=llm,
                embedder=library.embedder,
                options=options,
                on_token=on_token,
                messages=prompt,
            )
            record(conversation, prompt, passages, result.raw)
        result.timings.retrieval_ms = found.ms
        # the note reads the user's own words, not the search they were rewritten into
        result.language_note = language_note(question, result.passages)
    except KeyboardInterrupt:
        session.turns.append(
            Turn(question, searched, None, how, rewrite_ms, time.perf_counter() - t0, at, session.filters)
        )
        raise
    turn = Turn(question, searched, result, how, rewrite_ms, time.perf_counter() - t0, at, session.filters)
    session.turns.append(turn)
    return turn
