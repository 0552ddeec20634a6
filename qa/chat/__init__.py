"""Chat sessions as plain data: turns, follow-up rewriting, carried evidence, commands, transcripts.

A follow-up ("and what did they say about AI?") is rewritten into a standalone question
before retrieval: by the model when there is one (prompts/rewrite_*.md), else by a rule that
appends the key words of the previous question. The cited passages of the previous turn are
carried into a follow-up's context, so the evidence it builds on stays in front of the model.
Nothing here prints or needs a terminal; `qa/chat_cli.py` is the view.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shlex
import time
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Callable, Sequence

from ..answer import AskOptions, answer
from ..verify import is_refusal
from ..embeddings import Embedder
from ..errors import QAError, UsageError
from ..search.bm25 import LexicalIndex, terms
from ..llm import LLM, Extractive
from ..prompts import render as render_prompt
from ..records import Answer, Article, Passage, Sentence, Timings
from ..search.retrieval import Filters, retrieve
from ..store import Store
from ..tokens import count_tokens

CARRIED = 2  # cited passages of the previous turn carried into a follow-up's context
HISTORY_TURNS = 2  # turns shown to the model when it rewrites a follow-up


@dataclass
class Turn:
    question: str  # as the user typed it
    searched: str  # the standalone question that retrieval and the answer used
    answer: Answer | None  # None: the user stopped it before it was finished
    rewritten_by: str = ""  # "", "model" or "rule"
    rewrite_ms: float = 0.0
    seconds: float = 0.0  # the whole turn: rewrite, retrieval, generation, verification
    at: str = ""

    @property
    def stopped(self) -> bool:
        return self.answer is None


@dataclass
class Session:
    id: str
    collection: str = "articles"
    filters: Filters = Filters()
    turns: list[Turn] = field(default_factory=list)
    created: str = ""

    def last_answered(self) -> Turn | None:
        return next((t for t in reversed(self.turns) if t.answer is not None), None)


def new_session(collection: str = "articles", filters: Filters = Filters()) -> Session:
    now = datetime.now()
    return Session(f"{now:%Y%m%d-%H%M%S}-{secrets.token_hex(2)}", collection, filters, [],
                   now.isoformat(timespec="seconds"))


# ---- follow-ups ----------------------------------------------------------------------------

_REFERENCE = re.compile(r"\b(he|she|it|its|they|them|their|theirs|his|her|hers|him|this|these|those|else)\b"
                        r"|\bthat\s*[?.!]*$|\b(the|that|this) (company|deal|man|woman|firm|person|group|plan)\b", re.I)
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
    return any(not _names(question[:m.start()]) for m in _REFERENCE.finditer(question))


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


def _plain(text: str, limit: int = 400) -> str:
    flat = " ".join(re.sub(r"\s*\[\d+\]", "", text).split())
    return flat if len(flat) <= limit else flat[:limit].rsplit(" ", 1)[0] + " …"


def rewrite_messages(question: str, turns: Sequence[Turn]) -> list[dict[str, str]]:
    answered = [t for t in turns if t.answer is not None][-HISTORY_TURNS:]
    history = "\n".join(f"User: {t.searched}\nAssistant: {_plain(t.answer.text)}" for t in answered)
    return [{"role": "system", "content": render_prompt("rewrite_system")},
            {"role": "user", "content": render_prompt("rewrite_user", history=history,
                                                      question=" ".join(question.split()))}]


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


def rewrite(question: str, turns: Sequence[Turn], llm: LLM) -> tuple[str, str]:
    """(standalone question, who rewrote it: "", "model" or "rule")."""
    previous = next((t for t in reversed(turns) if t.answer is not None), None)
    if not is_follow_up(question, previous):
        return question, ""
    if not isinstance(llm, Extractive):
        try:
            got = clean_rewrite(llm.complete(rewrite_messages(question, turns), max_tokens=80, temperature=0.0),
                                question)
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


def ask_turn(session: Session, question: str, *, store: Store, embedder: Embedder, index: LexicalIndex, llm: LLM,
             options: AskOptions = AskOptions(), on_token: Callable[[str], None] | None = None,
             on_rewrite: Callable[[str], None] | None = None) -> Turn:
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
            searched, how = rewrite(question, session.turns, llm)
            rewrite_ms = (time.perf_counter() - t0) * 1000
            if on_rewrite and searched != question:
                on_rewrite(searched)
        carried = previous.answer.cited[:CARRIED] if follow_up and previous else []
        budget = max(200, options.budget - sum(count_tokens(p.text) + 20 for p in carried))
        found = retrieve(searched, store=store, embedder=embedder, index=index, budget=budget, k=options.k,
                         per_article=options.per_article, filters=session.filters, mode=options.mode)
        passages = with_carried(found.passages, carried, session.filters)
        result = answer(searched, passages, llm=llm, embedder=embedder,
                        options=replace(options, filters=session.filters), on_token=on_token)
        result.timings.retrieval_ms = found.ms
    except KeyboardInterrupt:
        session.turns.append(Turn(question, searched, None, how, rewrite_ms, time.perf_counter() - t0, at))
        raise
    turn = Turn(question, searched, result, how, rewrite_ms, time.perf_counter() - t0, at)
    session.turns.append(turn)
    return turn


# ---- commands ------------------------------------------------------------------------------

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
ALIASES = {"?": "help", "h": "help", "exit": "quit", "q": "quit", "bye": "quit", "summarize": "summarise",
           "summary": "summarise", "filters": "filter", "new": "reset", "clear": "reset"}


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
    from ..ingest.loaders import normalise_date

    try:
        tokens = shlex.split(arg)
    except ValueError:
        raise UsageError("A quote is not closed; write /filter source=\"Capital Wire\".")
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


def describe_filters(filters: Filters) -> str:
    parts = [f'{k}="{v}"' if " " in v else f"{k}={v}" for k, v in asdict(filters).items() if v]
    return " ".join(parts) or "none"


@dataclass(frozen=True)
class Opened:
    """A passage of the last answer in full, with its article and the answer sentences citing it."""

    passage: Passage
    article: Article
    citing: tuple[Sentence, ...]


def pick_passage(session: Session, arg: str) -> tuple[Turn, Passage]:
    turn = session.last_answered()
    if turn is None or not turn.answer.passages:
        raise UsageError("There is no answer with passages yet: ask a question first.")
    passages = turn.answer.passages
    try:
        number = int(arg.strip().strip("[]"))
    except ValueError:
        raise UsageError(f"Give a passage number of the last answer, 1 to {len(passages)}: e.g. /open 1.")
    for p in passages:
        if p.number == number:
            return turn, p
    raise UsageError(f"The last answer has passages 1 to {len(passages)}, not {number}.")


def open_passage(session: Session, arg: str, store: Store) -> Opened:
    turn, passage = pick_passage(session, arg)
    stored = store.find_by_id(passage.article_id)
    if stored is None:
        raise QAError(f"The article of passage [{passage.number}] has been removed from the store since.")
    citing = tuple(s for s in turn.answer.sentences if passage.number in s.citations)
    return Opened(passage, stored.article, citing)


# ---- transcripts ---------------------------------------------------------------------------


def _quote(text: str) -> str:
    return "\n".join("> " + line if line.strip() else ">" for line in text.strip().splitlines())


def turn_markdown(turn: Turn, number: int | None = None, full_passages: bool = True) -> str:
    """One turn as Markdown: the question, what was searched, the verified answer, its sources."""
    question = " ".join(turn.question.split())
    head = f"## {number}. {question}" if number is not None else f"## {question}"
    lines = [head, ""]
    if turn.searched != turn.question:
        lines += [f"*Searched:* {turn.searched}", ""]
    result = turn.answer
    if result is None:
        return "\n".join(lines + ["*Stopped before the answer was finished.*", ""])
    lines += [result.text, ""]
    notes = [f"Note: {result.fallback}."] if result.fallback else []
    if result.incomplete:
        notes.append("The answer was cut off before the model finished (incomplete).")
    notes += [f"Not supported by the cited passages: “{s.text}”" for s in result.sentences if not s.supported]
    if notes:
        lines += [*(f"- ⚠ {n}" for n in notes), ""]
    if result.cited:
        lines += ["**Sources**", ""]
        for p in result.cited:
            where = ", ".join(x for x in (p.source, p.date or "undated") if x)
            lines.append(f"- [{p.number}] *{p.title or '(untitled)'}* — {where}" + (f" — <{p.url}>" if p.url else ""))
            text = p.text if full_passages else _plain(p.text, 200)
            lines += ["", "  " + _quote(text).replace("\n", "\n  "), ""]
    return "\n".join(lines)


def transcript_markdown(session: Session, model: str = "") -> str:
    head = [f"# qa chat, {session.created.replace('T', ' ')}", "",
            f"Collection *{session.collection}*" + (f" · model *{model}*" if model else "")
            + f" · filters: {describe_filters(session.filters)}", ""]
    body = [turn_markdown(t, i) for i, t in enumerate(session.turns, 1)]
    return "\n".join(head + body).rstrip() + "\n"


def save_transcript(session: Session, path: str | Path, model: str = "") -> Path:
    target = Path(path).expanduser()
    if target.suffix == "":
        target = target.with_suffix(".md")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(transcript_markdown(session, model), encoding="utf-8")
    except OSError as exc:
        raise QAError(f"Cannot write {target} ({exc.strerror}); choose another file.")
    return target


# ---- persistence ---------------------------------------------------------------------------


def sessions_dir(home: Path, collection: str) -> Path:
    return home / "chat" / collection


def _answer_from(d: dict) -> Answer:
    return Answer(question=d["question"], text=d["text"],
                  sentences=[Sentence(**{**s, "citations": tuple(s["citations"])}) for s in d["sentences"]],
                  passages=[Passage(**p) for p in d["passages"]], model=d["model"], refused=d["refused"],
                  fallback=d["fallback"], incomplete=d["incomplete"], timings=Timings(**d["timings"]))


def session_to_dict(session: Session) -> dict:
    return {"version": 1, **asdict(session)}


def session_from_dict(data: dict) -> Session:
    turns = [Turn(**{**t, "answer": _answer_from(t["answer"]) if t["answer"] else None}) for t in data["turns"]]
    return Session(data["id"], data["collection"], Filters(**data["filters"]), turns, data["created"])


def save_session(session: Session, directory: Path) -> Path:
    """Write the session as JSON, atomically (a crash leaves the previous version)."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{session.id}.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(session_to_dict(session), ensure_ascii=False), encoding="utf-8")
    os.replace(tmp, path)
    return path


def load_last_session(directory: Path) -> Session | None:
    """The most recently saved session that can be read, or None."""
    paths = sorted(directory.glob("*.json"), key=lambda p: (p.stat().st_mtime_ns, p.name),
                   reverse=True) \
        if directory.is_dir() else []
    for path in paths:
        try:
            return session_from_dict(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError, KeyError, TypeError):
            continue  # damaged or from an incompatible version: try the one before
    return None
