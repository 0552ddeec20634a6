"""A chat session: its turns, their Markdown transcript, and the session saved as JSON in QA_HOME."""

from __future__ import annotations

import json
import os
import re
import secrets
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime
from pathlib import Path

from ..chunking import snippet
from ..errors import QAError, UsageError
from ..records import Answer, Passage, Sentence, Timings
from ..search.options import Filters
from .conversation import Conversation


@dataclass
class Turn:
    question: str  # as the user typed it
    searched: str  # the standalone question that retrieval and the answer used
    answer: Answer | None  # None: the user stopped it before it was finished
    rewritten_by: str = ""  # "", "model" or "rule"
    rewrite_ms: float = 0.0
    seconds: float = 0.0  # the whole turn: rewrite, retrieval, generation, verification
    at: str = ""
    filters: Filters = Filters()  # those in force when it was asked

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
    # what the model has read so far (qa/chat/conversation.py); not saved: a resumed chat starts afresh
    conversation: Conversation = field(default_factory=Conversation, compare=False, repr=False)

    def last_answered(self) -> Turn | None:
        return next((t for t in reversed(self.turns) if t.answer is not None), None)


def new_session(collection: str = "articles", filters: Filters = Filters()) -> Session:
    now = datetime.now()
    return Session(
        f"{now:%Y%m%d-%H%M%S}-{secrets.token_hex(2)}", collection, filters, [], now.isoformat(timespec="seconds")
    )


def describe_filters(filters: Filters) -> str:
    parts = [f'{k}="{v}"' if " " in v else f"{k}={v}" for k, v in asdict(filters).items() if v]
    return " ".join(parts) or "none"


def plain(text: str, limit: int = 400) -> str:
    """Answer text on one line without its citation markers, cut to about `limit` characters."""
    return snippet(re.sub(r"\s*\[\d+\]", "", text), limit)


def _quote(text: str) -> str:
    return "\n".join("> " + line if line.strip() else ">" for line in text.strip().splitlines())


def turn_markdown(turn: Turn, number: int | None = None, full_passages: bool = True) -> str:
    """One turn as Markdown: the question, what was searched, the verified answer, its sources."""
    question = " ".join(turn.question.split())
    head = f"## {number}. {question}" if number is not None else f"## {question}"
    lines = [head, ""]
    if turn.searched != turn.question:
        lines += [f"*Searched:* {turn.searched}", ""]
    if any(asdict(turn.filters).values()):
        lines += [f"*Filters:* {describe_filters(turn.filters)}", ""]
    result = turn.answer
    if result is None:
        return "\n".join(lines + ["*Stopped before the answer was finished.*", ""])
    lines += [result.text, ""]
    notes = [f"Why: {result.reason}."] if result.refused and result.reason else []
    if result.language_note:
        notes.append(result.language_note)
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
            text = p.text if full_passages else plain(p.text, 200)
            lines += ["", "  " + _quote(text).replace("\n", "\n  "), ""]
    return "\n".join(lines)


def transcript_markdown(session: Session, model: str = "") -> str:
    head = [
        f"# qa chat, {session.created.replace('T', ' ')}",
        "",
        f"Collection *{session.collection}*" + (f" · model *{model}*" if model else ""),
        "",
    ]
    body = [turn_markdown(t, i) for i, t in enumerate(session.turns, 1)]
    return "\n".join(head + body).rstrip() + "\n"


def save_transcript(session: Session, path: str | Path, model: str = "") -> Path:
    """Write the transcript as Markdown; a folder that does not exist is not made (a typo would
    scatter folders): the error says so and how to make it."""
    target = Path(path).expanduser()
    if target.suffix == "":
        target = target.with_suffix(".md")
    if not target.parent.exists():
        raise UsageError(
            f"The folder {target.parent} does not exist; make it first (mkdir -p {target.parent}) "
            f"or save here: /save {target.name}"
        )
    try:
        target.write_text(transcript_markdown(session, model), encoding="utf-8")
    except OSError as exc:
        raise QAError(f"Cannot write {target} ({exc.strerror}); choose another file.")
    return target


# ---- persistence ---------------------------------------------------------------------------


def sessions_dir(home: Path, collection: str) -> Path:
    return home / "chat" / collection


def _passage_from(d: dict) -> Passage:
    known = {f.name for f in fields(Passage)}
    p = {k: v for k, v in d.items() if k in known}  # sessions saved before may carry `chunk_id`
    if p.get("best") is not None:
        p["best"] = tuple(p["best"])
    return Passage(**p)


def _sentence_from(d: dict) -> Sentence:
    known = {f.name for f in fields(Sentence)}
    s = {k: v for k, v in d.items() if k in known}
    s["citations"] = tuple(s["citations"])
    if s.get("evidence") is not None:
        s["evidence"] = tuple(s["evidence"])
    s["missing"] = tuple(s.get("missing", ()))
    return Sentence(**s)


def _answer_from(d: dict) -> Answer:
    return Answer(
        question=d["question"],
        text=d["text"],
        sentences=[_sentence_from(s) for s in d["sentences"]],
        passages=[_passage_from(p) for p in d["passages"]],
        model=d["model"],
        refused=d["refused"],
        reason=d.get("reason") or d.get("fallback", ""),  # sessions saved before grounding kept "fallback"
        incomplete=d["incomplete"],
        timings=Timings(**d["timings"]),
        dropped=[_sentence_from(s) for s in d.get("dropped", [])],
        checks=list(d.get("checks", [])),
        judge=d.get("judge"),
        raw=d.get("raw", ""),
        language_note=d.get("language_note", ""),
    )


def session_to_dict(session: Session) -> dict:
    data = asdict(session)
    data.pop("conversation")
    return {"version": 1, **data}


def session_from_dict(data: dict) -> Session:
    turns = [
        Turn(
            **{
                **t,
                "answer": _answer_from(t["answer"]) if t["answer"] else None,
                "filters": Filters(**t.get("filters", {})),  # sessions saved before kept none per turn
            }
        )
        for t in data["turns"]
    ]
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
    paths = (
        sorted(directory.glob("*.json"), key=lambda p: (p.stat().st_mtime_ns, p.name), reverse=True)
        if directory.is_dir()
        else []
    )
    for path in paths:
        try:
            return session_from_dict(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError, KeyError, TypeError):
            continue  # damaged or from an incompatible version: try the one before
    return None
