"""`qa chat`: the terminal view of qa/chat/ (prompt-toolkit reads, rich renders).

In a terminal: see _chat_terminal.py. With stdin not a terminal: one question (or /command)
per line, plain text out.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.live import Live
from rich.markdown import Markdown
from rich.text import Text

from ..chat.commands import open_passage, parse_command, parse_filters
from ..chat.conversation import Conversation
from ..chat.session import (
    describe_filters,
    load_last_session,
    new_session,
    save_transcript,
    sessions_dir,
    turn_markdown,
)
from ..chat.turns import ask_turn
from ..errors import QAError, UsageError
from ..library import ask_options, is_known_llm, open_library
from . import documents, views
from ._chat_state import ChatState, ModelLoader
from ._chat_terminal import answer_live, interactive, spinner
from ._help import Command
from ._shared import BudgetOption, LlmOption, SinceOption, UntilOption, out, reported


def _run_command(chat: ChatState, name: str, arg: str) -> None:
    c = chat.console
    session = chat.session
    store = chat.library.store
    if name == "quit":
        chat.quit = True
    elif name == "help":
        c.print(views.help_table())
    elif name == "unknown":
        c.print(Text(f"Unknown command {arg}. The commands are:", style="yellow"))
        c.print(views.help_table())
    elif name == "sources":
        turn = session.last_answered()
        if turn is None or turn.answer is None or not turn.answer.passages:
            raise UsageError("There is no answer with passages yet: ask a question first.")
        cited = ", ".join(str(p.number) for p in turn.answer.cited) or "none"
        c.print(
            views.sources_panel(turn.answer.passages, title=f"Passages given for “{turn.searched}” (cited: {cited})")
        )
    elif name == "open":
        c.print(views.opened_view(open_passage(session, arg, store)))
    elif name == "filter":
        if arg:
            sources = [a.article.source for a in store.articles()]
            session.filters = parse_filters(arg, session.filters, sources)
            session.conversation = Conversation()  # passages read under other filters must not be cited
            chat.save()
        c.print(f"Filters: {describe_filters(session.filters)}")
    elif name == "model":
        if arg:
            if not is_known_llm(chat.settings, arg):
                raise UsageError(f"Unknown model {arg!r}; use local, local:smollm2, extractive or openai:MODEL.")
            chat.load_model(arg)
            c.print(f"Switching to {arg}" + ("" if chat.loader.ready else " (loading in the background)") + ".")
        else:
            s = chat.settings
            c.print(
                f"Model: {chat.loader.label}"
                + (f", loaded in {chat.loader.seconds:.1f} s" if chat.loader.ready else "")
            )
            c.print(
                Text(
                    f"budget {s.budget} tokens · k {s.k} · per article {s.per_article} · max answer "
                    f"{s.max_answer_tokens} tokens · temperature {s.temperature}",
                    style="dim",
                )
            )
    elif name == "reset":
        chat.session = new_session(session.collection, session.filters)
        c.print(f"New conversation (filters: {describe_filters(session.filters)}).")
    elif name == "save":
        if not arg:
            raise UsageError("Name the file: /save chat.md")
        path = save_transcript(session, arg, chat.loader.label)
        c.print(f"Saved {len(session.turns)} turn(s) to {path}")
    elif name == "summarise":
        _summarise(chat, arg)
    elif name == "brief":
        _brief(chat, arg)


def _working(chat: ChatState, message: str) -> AbstractContextManager[Any]:
    """A spinner while a long command runs (nothing when the output is plain text)."""
    if chat.interactive:
        return Live(spinner(message), console=chat.console, refresh_per_second=12, transient=True)
    return contextlib.nullcontext()


def _markdown(chat: ChatState, text: str) -> None:
    if chat.interactive:
        chat.console.print(Markdown(text))
    else:
        chat.console.print(text, markup=False, highlight=False, soft_wrap=True)


def _summarise(chat: ChatState, arg: str) -> None:
    """/summarise N (the article of passage N of the last answer), or an article id or title."""
    from ..store.lookup import find_article
    from ..summarise import SummaryOptions, summarise

    if not arg:
        raise UsageError("/summarise needs a passage number of the last answer (or an article id or title).")
    store = chat.library.store
    article = (
        open_passage(chat.session, arg, store).article
        if arg.strip("[]").isdigit()
        else find_article(arg, store).article
    )
    with _working(chat, f"Summarising “{article.title[:60]}”…"):
        result = summarise(
            article,
            llm=chat.loader.get(),
            embedder=chat.library.embedder,
            options=SummaryOptions(budget=chat.settings.budget, temperature=chat.settings.temperature),
        )
    _markdown(chat, documents.summary_markdown(result))


def _brief(chat: ChatState, arg: str) -> None:
    """/brief TOPIC: a briefing across the articles the session's filters admit."""
    from ..brief import BriefOptions, brief

    if not arg:
        raise UsageError("/brief needs a topic: /brief the Korvane strike")
    with _working(chat, f"Briefing on “{arg[:60]}”…"):
        result = brief(
            arg,
            library=chat.library,
            llm=chat.loader.get(),
            options=BriefOptions(filters=chat.session.filters, temperature=chat.settings.temperature),
        )
    if not result.articles:
        raise QAError(
            f"No articles on {arg!r} were found (with the filters: {describe_filters(chat.session.filters)})."
        )
    _markdown(chat, documents.briefing_markdown(result))


def _answer_plain(chat: ChatState, question: str) -> None:
    turn = ask_turn(
        chat.session,
        question,
        library=chat.library,
        llm=chat.loader.get(),
        options=chat.options,
    )
    chat.save()
    chat.console.print(
        turn_markdown(turn, len(chat.session.turns), full_passages=False), markup=False, highlight=False, soft_wrap=True
    )


def _handle(chat: ChatState, line: str) -> None:
    command = parse_command(line)
    if command is not None:
        _run_command(chat, command.name, command.arg)
    elif chat.interactive:
        answer_live(chat, line)
    else:
        _answer_plain(chat, line)


def _lines(stream: Iterable[str]) -> Iterator[str]:
    """Input lines, a line ending in a backslash joined with the next."""
    pending = ""
    for raw in stream:
        line = raw.rstrip("\n")
        if line.endswith("\\"):
            pending += line[:-1] + "\n"
            continue
        yield (pending + line).strip()
        pending = ""
    if pending.strip():
        yield pending.strip()


def _scripted(chat: ChatState, stream: Iterable[str]) -> int:
    failed = 0
    for line in _lines(stream):
        if not line:
            continue
        try:
            _handle(chat, line)
        except QAError as exc:
            print(f"error: {exc}", file=sys.stderr, flush=True)
            failed += 1
        if chat.quit:
            break
    return failed


def chat(
    ctx: typer.Context,
    llm: LlmOption = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue the last session of this collection.")] = False,
    budget: BudgetOption = None,
    source: Annotated[str, typer.Option("--source", help="Only articles from this source (/filter changes it).")] = "",
    since: SinceOption = "",
    until: UntilOption = "",
) -> None:
    """Chat with your articles: follow-up questions, streamed cited answers, /commands (/help).

    With stdin not a terminal, reads one question or /command per line and prints plain text."""
    with reported():
        settings = ctx.obj.settings(llm=llm, budget=budget)
        spec = settings.resolved_llm()
        if not is_known_llm(settings, spec):
            raise UsageError(f"Unknown LLM {spec!r}; use local, openai:MODEL or extractive.")
        loader = ModelLoader.for_settings(settings, spec)
        library = open_library(settings)
        interactive_mode = sys.stdin.isatty() and sys.stdout.isatty()
        console = (
            out
            if interactive_mode
            else Console(no_color=True, highlight=False, force_terminal=False, emoji=False, width=100)
        )
        notes: list[str] = []
        session = None
        if resume:
            session = load_last_session(sessions_dir(settings.home, settings.collection))
            if session is None:
                notes.append("No earlier session to resume: starting a new one.")
            else:
                notes.append(
                    f"Resumed the session of {session.created.replace('T', ' ')} "
                    f"({len(session.turns)} turn(s)); follow-ups build on it."
                )
        session = session or new_session(settings.collection)
        if source or since or until:
            arg = " ".join(f"{k}={v}" for k, v in (("source", source), ("since", since), ("until", until)) if v)
            session.filters = parse_filters(arg, session.filters, [a.article.source for a in library.store.articles()])
            session.conversation = Conversation()  # passages read under other filters must not be cited
        state = ChatState(
            settings, session, library, loader, console, ask_options(settings), interactive_mode, notes=notes
        )
        if interactive_mode:
            last = session.last_answered()
            if resume and last:
                notes.append(f"Last question: {last.question}")
            interactive(state, _handle)
            return
        for note in notes:
            print(note, file=sys.stderr)
        if _scripted(state, sys.stdin):
            raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command(cls=Command)(chat)
