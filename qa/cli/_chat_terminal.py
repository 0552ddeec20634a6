"""`qa chat` in a terminal: a prompt_toolkit prompt with history (kept in QA_HOME), multi-line input
and completion of /commands, and answers that stream in a Live region and are then replaced by
their verified form, a compact sources panel and a status line."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from rich.live import Live
from rich.markdown import Markdown
from rich.spinner import Spinner
from rich.text import Text

from ..chat.commands import HELP
from ..chat.session import Turn, describe_filters
from ..chat.turns import ask_turn, is_follow_up
from ..errors import QAError
from . import views
from ._chat_state import ChatState
from ._shared import err


def spinner(message: str) -> Spinner:
    return Spinner("dots", Text(message, style="dim"), style="cyan")


def answer_live(chat: ChatState, question: str) -> None:
    """Stream the answer in a Live region, then replace it with the verified answer and its sources."""
    c = chat.console
    streamed: list[str] = []
    turn: Turn | None = None
    with Live(spinner("…"), console=c, refresh_per_second=12, transient=True) as live:
        try:
            if not chat.loader.ready:
                live.update(spinner(f"Loading {chat.loader.spec} (it loads once, in the background)…"))
            llm = chat.loader.get()
            follow_up = is_follow_up(question, chat.session.last_answered())
            live.update(spinner("Rewriting the follow-up…" if follow_up and llm is not None else "Searching…"))

            def on_rewrite(searched: str) -> None:
                live.console.print(Text(f"↳ {searched}", style="dim"))
                live.update(spinner("Searching…"))

            def on_token(piece: str) -> None:
                streamed.append(piece)
                live.update(Markdown("".join(streamed)))

            turn = ask_turn(
                chat.session,
                question,
                library=chat.library,
                llm=llm,
                options=chat.options,
                on_token=on_token,
                on_rewrite=on_rewrite,
            )
        except KeyboardInterrupt:
            pass
    chat.save()
    if turn is None or turn.answer is None:
        if streamed:
            c.print(Text("".join(streamed).strip(), style="dim"))
        c.print(
            Text("Stopped. (The partial answer above was not verified.)" if streamed else "Stopped.", style="yellow")
        )
        return
    for part in views.answer_parts(turn.answer, views.compact_sources):
        c.print(part)
    c.print(views.status_line(turn, turn.answer))


def _prompt_session(chat: ChatState) -> Any:
    from prompt_toolkit import PromptSession
    from prompt_toolkit.completion import CompleteEvent, Completer, Completion
    from prompt_toolkit.document import Document
    from prompt_toolkit.history import FileHistory
    from prompt_toolkit.key_binding import KeyBindings, KeyPressEvent

    keys = KeyBindings()

    @keys.add("escape", "enter")
    def _newline(event: KeyPressEvent) -> None:
        event.current_buffer.insert_text("\n")

    @keys.add("enter")
    def _submit(event: KeyPressEvent) -> None:
        buffer = event.current_buffer
        if buffer.document.text_before_cursor.endswith("\\"):
            buffer.delete_before_cursor(1)
            buffer.insert_text("\n")
        else:
            buffer.validate_and_handle()

    class Commands(Completer):
        def get_completions(self, document: Document, complete_event: CompleteEvent) -> Iterator[Completion]:
            text = document.text_before_cursor
            if text.startswith("/") and " " not in text:
                for usage, what in HELP:
                    name = usage.split()[0]
                    if name.startswith(text):
                        yield Completion(name, -len(text), display_meta=what)

    def toolbar() -> str:
        last = chat.session.turns[-1] if chat.session.turns else None
        took = f" · last answer {last.seconds:.1f} s" if last and not last.stopped else ""
        return (
            f" {chat.loader.label} · {chat.session.collection} · filters: "
            f"{describe_filters(chat.session.filters)}{took} · /help"
        )

    history = chat.settings.home / "chat" / "history"
    history.parent.mkdir(parents=True, exist_ok=True)
    return PromptSession(
        history=FileHistory(str(history)),
        key_bindings=keys,
        multiline=True,
        prompt_continuation=lambda width, line, wrap: "… ".rjust(width),
        completer=Commands(),
        complete_while_typing=True,
        bottom_toolbar=toolbar,
    )


def interactive(chat: ChatState, handle: Callable[[ChatState, str], None]) -> None:
    """Read lines at the prompt until /quit or Ctrl-D; `handle` runs each (a question or a /command)."""
    from prompt_toolkit.patch_stdout import patch_stdout

    prompt = _prompt_session(chat)
    chat.loader.on_done = prompt.app.invalidate  # thread-safe: the status bar shows the model once loaded
    c = chat.console
    articles = len(chat.library.store.articles())
    c.print(
        Text.assemble(
            ("qa chat", "bold"),
            f" · {chat.session.collection} ({articles} articles) · ",
            (chat.loader.label, "cyan"),
            " · /help for commands, Ctrl-D to quit",
        )
    )
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
            handle(chat, line)
        except QAError as exc:
            views.error(err, str(exc))
        except KeyboardInterrupt:
            c.print(Text("Stopped.", style="yellow"))
