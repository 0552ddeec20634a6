"""`qa chat`: the terminal view of qa/chat.py (prompt-toolkit reads, rich renders).

In a terminal: a prompt with history (kept in QA_HOME) and multi-line input, answers that
stream in and are then replaced by their verified form, a compact sources panel and a status
line. With stdin not a terminal: one question (or command) per line, plain text out.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sys
import threading
import time
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Callable, Iterable, Iterator, Optional

import typer
from rich.console import Console, Group
from rich.live import Live
from rich.markdown import Markdown
from rich.panel import Panel
from rich.spinner import Spinner
from rich.table import Table
from rich.text import Text

from . import views
from ..chat import (HELP, Session, Turn, ask_turn, describe_filters, is_follow_up, load_last_session, new_session,
                   open_passage, parse_command, parse_filters, save_session, save_transcript,
                   sessions_dir, turn_markdown)
from . import _as_of, _library, _llm, app, err, out, reported
from ..errors import QAError, UsageError
from ..llm import LLM, FakeLLM
from ..records import Passage
from ..settings import Settings

if TYPE_CHECKING:
    from ..answer import AskOptions
    from ..embeddings import Embedder
    from ..search.bm25 import LexicalIndex
    from ..store import Store

_SPEC = re.compile(r"^(local(:[\w.\-]+)?|extractive|fake|openai:.+)$")


@dataclass
class _SlowFake(FakeLLM):
    delay: float = 0.0

    def stream(self, messages, *, max_tokens: int = 320, temperature: float = 0.0) -> Iterator[str]:
        for piece in super().stream(messages, max_tokens=max_tokens, temperature=temperature):
            time.sleep(self.delay)
            yield piece


def _fake() -> FakeLLM:
    """`--llm fake`, for the pseudo-terminal test: replies from QA_FAKE_REPLIES (a JSON list), streamed
    one word per QA_FAKE_DELAY seconds, so that Ctrl-C can land in the middle of an answer."""
    replies = json.loads(os.environ.get("QA_FAKE_REPLIES") or "[]")
    fake = _SlowFake(delay=float(os.environ.get("QA_FAKE_DELAY") or 0))
    if replies:
        fake.replies = [str(r) for r in replies]
    return fake


class ModelLoader:
    """Builds the LLM in a background thread, started once the prompt is up.

    The engine (xllamacpp) holds the GIL while it loads, so the main thread pauses for that
    time whenever it happens; started after the prompt is drawn, keystrokes typed meanwhile
    are kept by the terminal and appear when it is done, and the model is ready sooner."""

    def __init__(self, spec: str, build: Callable[[], LLM], on_done: Callable[[], None] | None = None):
        self.spec = spec
        self.on_done = on_done  # e.g. redraw the prompt's status bar
        self.seconds = 0.0
        self._build = build
        self._llm: LLM | None = None
        self._error: BaseException | None = None
        self._done = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, delay: float = 0.0) -> "ModelLoader":
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, args=(delay,), name="qa-model-loader", daemon=True)
            self._thread.start()
        return self

    def _run(self, delay: float) -> None:
        time.sleep(delay)
        t0 = time.perf_counter()
        try:
            self._llm = self._build()
        except BaseException as exc:  # handed to the main thread by get()
            self._error = exc
        finally:
            self.seconds = time.perf_counter() - t0
            self._done.set()
            if self.on_done:
                self.on_done()

    @property
    def ready(self) -> bool:
        return self._done.is_set()

    @property
    def label(self) -> str:
        if not self.ready:
            return f"{self.spec} (loading…)"
        return f"{self.spec} (failed)" if self._error else self._llm.name

    def get(self) -> LLM:
        self.start()
        while not self._done.wait(0.1):  # short waits: Ctrl-C stays responsive
            pass
        if self._error is not None:
            raise self._error
        return self._llm


def _loader(settings: Settings, spec: str, on_done: Callable[[], None] | None = None) -> ModelLoader:
    settings = replace(settings, llm=spec)
    return ModelLoader(spec, _fake if spec == "fake" else lambda: _llm(settings), on_done)


@dataclass
class _Chat:
    """What the loops share: the session, the pieces built once, the model loader, the console."""

    settings: Settings
    session: Session
    store: Store
    embedder: Embedder
    index: LexicalIndex
    loader: ModelLoader
    console: Console
    options: AskOptions
    interactive: bool = True
    quit: bool = False
    notes: list[str] = field(default_factory=list)

    def load_model(self, spec: str) -> None:
        self.loader = _loader(self.settings, spec, self.loader.on_done).start()

    def save(self) -> None:
        if self.session.turns:
            save_session(self.session, sessions_dir(self.settings.home, self.session.collection))


# ---- rendering -----------------------------------------------------------------------------


def _spinner(message: str) -> Spinner:
    return Spinner("dots", Text(message, style="dim"), style="cyan")


def compact_sources(passages: list[Passage]) -> Panel:
    """One line per cited passage: number, title, source and date (/open N shows it in full)."""
    table = Table(show_header=False, show_edge=False, box=None, padding=(0, 1), expand=True)
    table.add_column(style="bold cyan", no_wrap=True)
    table.add_column(ratio=1, no_wrap=True, overflow="ellipsis")
    table.add_column(style="dim", no_wrap=True)
    for p in passages:
        table.add_row(f"[{p.number}]", Text(p.title or "(untitled)", style="bold"),
                      f"{p.source or '-'}  {p.date or 'undated'}")
    return Panel(table, title="Sources", title_align="left", subtitle="/open N for the passage",
                 subtitle_align="right", border_style="cyan")


def status_line(turn: Turn) -> Text:
    t = turn.answer.timings
    bits = [f"retrieval {t.retrieval_ms:.0f} ms"]
    if turn.rewritten_by:
        bits.insert(0, f"rewrite ({turn.rewritten_by}) {turn.rewrite_ms / 1000:.1f} s")
    if t.prompt_tokens:
        bits += [f"first token {t.first_token_ms / 1000:.1f} s", f"{t.tokens_per_s:.1f} tok/s"]
    return Text.assemble((turn.answer.model, "bold dim"), (f" · answered in {turn.seconds:.1f} s", "dim"),
                         (f" ({', '.join(bits)})", "dim"))


def help_table() -> Table:
    table = Table(show_header=False, show_edge=False, box=None, padding=(0, 2))
    table.add_column(style="bold cyan", no_wrap=True)
    table.add_column()
    for usage, what in HELP:
        table.add_row(usage, what)
    table.add_row("", "")
    for keys, what in (("Enter", "ask; Alt-Enter (or Esc Enter), or a line ending in \\, starts a new line"),
                       ("Up / Down", "earlier questions, kept across sessions"),
                       ("Ctrl-C", "stop the answer being written (at the prompt: clear the line)"),
                       ("Ctrl-D", "quit")):
        table.add_row(keys, what)
    return table


def opened_view(opened) -> Panel:
    a, p = opened.article, opened.passage
    meta = Table(show_header=False, show_edge=False, box=None, padding=(0, 1))
    meta.add_column(style="dim", no_wrap=True)
    meta.add_column(overflow="fold")
    for name, value in (("title", a.title), ("source", a.source), ("date", a.date or "undated"), ("author", a.author),
                        ("url", a.url), ("from", a.origin), ("article", a.id),
                        ("characters", f"{p.start}–{p.end} of {len(a.text)}")):
        if value:
            meta.add_row(name, value)
    parts: list = [meta, Text(""), Text(p.text)]
    if opened.citing:
        parts += [Text(""), Text("Cited by:", style="dim")]
        parts += [Text(f"  “{s.text}”", style="dim italic") for s in opened.citing]
    return Panel(Group(*parts), title=f"[{p.number}] {a.title}", title_align="left", border_style="cyan")


def _show_turn(console: Console, turn: Turn) -> None:
    result = turn.answer
    console.print(views.answer_view(result))
    if result.cited:
        console.print(compact_sources(result.cited))
    elif result.refused and result.passages:
        console.print(views.sources_panel(result.passages[:3], title="Closest passages (they do not answer it)"))
    console.print(status_line(turn))


# ---- commands ------------------------------------------------------------------------------


def _run_command(chat: _Chat, name: str, arg: str) -> None:
    c = chat.console
    session = chat.session
    if name == "quit":
        chat.quit = True
    elif name == "help":
        c.print(help_table())
    elif name == "unknown":
        c.print(Text(f"Unknown command {arg}. The commands are:", style="yellow"))
        c.print(help_table())
    elif name == "sources":
        turn = session.last_answered()
        if turn is None or not turn.answer.passages:
            raise UsageError("There is no answer with passages yet: ask a question first.")
        cited = ", ".join(str(p.number) for p in turn.answer.cited) or "none"
        c.print(views.sources_panel(turn.answer.passages,
                                    title=f"Passages given for “{turn.searched}” (cited: {cited})"))
    elif name == "open":
        c.print(opened_view(open_passage(session, arg, chat.store)))
    elif name == "filter":
        if arg:
            sources = [a.article.source for a in chat.store.articles()]
            session.filters = parse_filters(arg, session.filters, sources)
            chat.save()
        c.print(f"Filters: {describe_filters(session.filters)}")
    elif name == "model":
        if arg:
            if not _SPEC.match(arg):
                raise UsageError(f"Unknown model {arg!r}; use local, local:smollm2, extractive or openai:MODEL.")
            chat.load_model(arg)
            c.print(f"Switching to {arg}" + ("" if chat.loader.ready else " (loading in the background)") + ".")
        else:
            s = chat.settings
            c.print(f"Model: {chat.loader.label}" + (f", loaded in {chat.loader.seconds:.1f} s" if chat.loader.ready
                                                     else ""))
            c.print(Text(f"budget {s.budget} tokens · k {s.k} · per article {s.per_article} · max answer "
                         f"{s.max_answer_tokens} tokens · temperature {s.temperature}", style="dim"))
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


def _working(chat: _Chat, message: str):
    """A spinner while a long command runs (nothing when the output is plain text)."""
    if chat.interactive:
        return Live(_spinner(message), console=chat.console, refresh_per_second=12, transient=True)
    return contextlib.nullcontext()


def _markdown(chat: _Chat, text: str) -> None:
    if chat.interactive:
        chat.console.print(Markdown(text))
    else:
        chat.console.print(text, markup=False, highlight=False, soft_wrap=True)


def _summarise(chat: _Chat, arg: str) -> None:
    """/summarise N (the article of passage N of the last answer), or an article id or title."""
    from ..summarise import SummaryOptions, find_article, summarise
    from .summarise import summary_markdown

    if not arg:
        raise UsageError("/summarise needs a passage number of the last answer (or an article id or title).")
    article = open_passage(chat.session, arg, chat.store).article if arg.strip("[]").isdigit() \
        else find_article(arg, chat.store).article
    with _working(chat, f"Summarising “{article.title[:60]}”…"):
        result = summarise(article, llm=chat.loader.get(), embedder=chat.embedder,
                           options=SummaryOptions(budget=chat.settings.budget, temperature=chat.settings.temperature))
    _markdown(chat, summary_markdown(result))


def _brief(chat: _Chat, arg: str) -> None:
    """/brief TOPIC: a briefing across the articles the session's filters admit."""
    from ..brief import BriefOptions, brief
    from .summarise import briefing_markdown

    if not arg:
        raise UsageError("/brief needs a topic: /brief the Korvane strike")
    with _working(chat, f"Briefing on “{arg[:60]}”…"):
        result = brief(arg, store=chat.store, embedder=chat.embedder, index=chat.index, llm=chat.loader.get(),
                       options=BriefOptions(filters=chat.session.filters, temperature=chat.settings.temperature))
    if not result.articles:
        raise QAError(f"No articles on {arg!r} were found (with the filters: {describe_filters(chat.session.filters)}).")
    _markdown(chat, briefing_markdown(result))


# ---- answering -----------------------------------------------------------------------------


def _answer_live(chat: _Chat, question: str) -> None:
    """Stream the answer in a Live region, then replace it with the verified answer and its sources."""
    c = chat.console
    streamed: list[str] = []
    turn = None
    with Live(_spinner("…"), console=c, refresh_per_second=12, transient=True) as live:
        try:
            if not chat.loader.ready:
                live.update(_spinner(f"Loading {chat.loader.spec} (it loads once, in the background)…"))
            llm = chat.loader.get()
            follow_up = is_follow_up(question, chat.session.last_answered())
            live.update(_spinner("Rewriting the follow-up…" if follow_up and llm.name != "extractive"
                                 else "Searching…"))

            def on_rewrite(searched: str) -> None:
                live.console.print(Text(f"↳ {searched}", style="dim"))
                live.update(_spinner("Searching…"))

            def on_token(piece: str) -> None:
                streamed.append(piece)
                live.update(Markdown("".join(streamed)))

            turn = ask_turn(chat.session, question, store=chat.store, embedder=chat.embedder, index=chat.index,
                            llm=llm, options=chat.options, on_token=on_token, on_rewrite=on_rewrite)
        except KeyboardInterrupt:
            pass
    chat.save()
    if turn is None:
        if streamed:
            c.print(Text("".join(streamed).strip(), style="dim"))
        c.print(Text("Stopped. (The partial answer above was not verified.)" if streamed else "Stopped.",
                     style="yellow"))
        return
    _show_turn(c, turn)


def _answer_plain(chat: _Chat, question: str) -> None:
    turn = ask_turn(chat.session, question, store=chat.store, embedder=chat.embedder, index=chat.index,
                    llm=chat.loader.get(), options=chat.options)
    chat.save()
    chat.console.print(turn_markdown(turn, len(chat.session.turns), full_passages=False), markup=False,
                       highlight=False, soft_wrap=True)


def _handle(chat: _Chat, line: str) -> None:
    command = parse_command(line)
    if command is not None:
        _run_command(chat, command.name, command.arg)
    elif chat.interactive:
        _answer_live(chat, line)
    else:
        _answer_plain(chat, line)


# ---- the two loops -------------------------------------------------------------------------


def _prompt_session(chat: _Chat):
    from prompt_toolkit import PromptSession
    from prompt_toolkit.completion import Completer, Completion
    from prompt_toolkit.history import FileHistory
    from prompt_toolkit.key_binding import KeyBindings

    keys = KeyBindings()

    @keys.add("escape", "enter")
    def _newline(event) -> None:
        event.current_buffer.insert_text("\n")

    @keys.add("enter")
    def _submit(event) -> None:
        buffer = event.current_buffer
        if buffer.document.text_before_cursor.endswith("\\"):
            buffer.delete_before_cursor(1)
            buffer.insert_text("\n")
        else:
            buffer.validate_and_handle()

    class Commands(Completer):
        def get_completions(self, document, complete_event):
            text = document.text_before_cursor
            if text.startswith("/") and " " not in text:
                for usage, what in HELP:
                    name = usage.split()[0]
                    if name.startswith(text):
                        yield Completion(name, -len(text), display_meta=what)

    def toolbar():
        last = chat.session.turns[-1] if chat.session.turns else None
        took = f" · last answer {last.seconds:.1f} s" if last and not last.stopped else ""
        return (f" {chat.loader.label} · {chat.session.collection} · filters: "
                f"{describe_filters(chat.session.filters)}{took} · /help")

    history = chat.settings.home / "chat" / "history"
    history.parent.mkdir(parents=True, exist_ok=True)
    return PromptSession(history=FileHistory(str(history)), key_bindings=keys, multiline=True,
                         prompt_continuation=lambda width, line, wrap: "… ".rjust(width),
                         completer=Commands(), complete_while_typing=True, bottom_toolbar=toolbar)


def _interactive(chat: _Chat) -> None:
    from prompt_toolkit.patch_stdout import patch_stdout

    prompt = _prompt_session(chat)
    chat.loader.on_done = prompt.app.invalidate  # thread-safe: the status bar shows the model once loaded
    c = chat.console
    articles = len(chat.store.articles())
    c.print(Text.assemble(("qa chat", "bold"), f" · {chat.session.collection} ({articles} articles) · ",
                          (chat.loader.label, "cyan"), " · /help for commands, Ctrl-D to quit"))
    for note in chat.notes:
        c.print(Text(note, style="dim"))
    while not chat.quit:
        try:
            with patch_stdout(raw=True):  # the model loader may print while the prompt is up
                line = prompt.prompt([("class:prompt", "❯ ")], pre_run=lambda: chat.loader.start(delay=0.3)).strip()
        except KeyboardInterrupt:
            continue
        except EOFError:
            break
        if not line:
            continue
        try:
            _handle(chat, line)
        except QAError as exc:
            views.error(err, str(exc))
        except KeyboardInterrupt:
            c.print(Text("Stopped.", style="yellow"))


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


def _scripted(chat: _Chat, stream: Iterable[str]) -> int:
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


@app.command()
def chat(
    ctx: typer.Context,
    llm: Optional[str] = typer.Option(None, "--llm", help="local | openai:MODEL | extractive (default: local, or openai when configured)."),
    resume: bool = typer.Option(False, "--resume", help="Continue the last session of this collection."),
    budget: Optional[int] = typer.Option(None, "--budget", help="Context tokens sent to the model (default: 1000)."),
    source: str = typer.Option("", "--source", help="Only articles from this source (/filter changes it)."),
    since: str = typer.Option("", "--since", help="Only articles dated on or after YYYY-MM-DD."),
    until: str = typer.Option("", "--until", help="Only articles dated on or before YYYY-MM-DD."),
) -> None:
    """Chat with your articles: follow-up questions, streamed cited answers, /commands (/help).

    With stdin not a terminal, reads one question or /command per line and prints plain text."""
    from ..answer import AskOptions

    with reported():
        settings = ctx.obj.settings(llm=llm, budget=budget)
        spec = settings.resolved_llm()
        if not _SPEC.match(spec):
            raise UsageError(f"Unknown LLM {spec!r}; use local, openai:MODEL or extractive.")
        loader = _loader(settings, spec)
        embedder, store, index = _library(settings)
        interactive = sys.stdin.isatty() and sys.stdout.isatty()
        console = out if interactive else Console(no_color=True, highlight=False, force_terminal=False,
                                                  emoji=False, width=100)
        notes: list[str] = []
        session = None
        if resume:
            session = load_last_session(sessions_dir(settings.home, settings.collection))
            if session is None:
                notes.append("No earlier session to resume: starting a new one.")
            else:
                notes.append(f"Resumed the session of {session.created.replace('T', ' ')} "
                             f"({len(session.turns)} turn(s)); follow-ups build on it.")
        session = session or new_session(settings.collection)
        if source or since or until:
            arg = " ".join(f"{k}={v}" for k, v in (("source", source), ("since", since), ("until", until)) if v)
            session.filters = parse_filters(arg, session.filters, [a.article.source for a in store.articles()])
        options = AskOptions(budget=settings.budget, k=settings.k, per_article=settings.per_article,
                             max_tokens=settings.max_answer_tokens, temperature=settings.temperature,
                             today=_as_of(settings))
        state = _Chat(settings, session, store, embedder, index, loader, console, options, interactive, notes=notes)
        if interactive:
            if resume and session.last_answered():
                notes.append(f"Last question: {session.last_answered().question}")
            _interactive(state)
            return
        for note in notes:
            print(note, file=sys.stderr)
        if _scripted(state, sys.stdin):
            raise typer.Exit(1)
