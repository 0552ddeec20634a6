"""What every command shares: the consoles, error reporting, the settings of this invocation,
common options, progress bars, and loading the model with its first-use progress.

Command modules import this module, `views`, `documents` and library code; never each other,
nor `qa/cli/__init__.py`, which registers them.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated
from urllib.parse import urlparse

import typer
from rich.console import Console
from rich.markdown import Markdown
from rich.markup import escape
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from ..errors import QAError, UsageError
from ..ingest.pipeline import Progress as IngestProgress
from ..library import checked_date, is_known_llm, make_llm
from ..llm import LLM
from ..search.options import Filters
from ..settings import Settings, load_settings, make_home, prepare_environment
from . import views

_IMPORTED = time.perf_counter()

out = Console()
err = Console(stderr=True)

# options several commands take, with the same words
LlmOption = Annotated[
    str | None,
    typer.Option("--llm", help="local | openai:MODEL | extractive (default: local, or openai when configured)."),
]
BudgetOption = Annotated[int | None, typer.Option("--budget", help="Context tokens sent to the model (default: 1000).")]
SourceOption = Annotated[str, typer.Option("--source", help="Only articles from this source.")]
SinceOption = Annotated[str, typer.Option("--since", help="Only articles dated on or after YYYY-MM-DD.")]
UntilOption = Annotated[str, typer.Option("--until", help="Only articles dated on or before YYYY-MM-DD.")]


_SECRETS: set[str] = set()  # what an error line must never show: the Chroma URL's password, its token


def _scrubbed(message: str) -> str:
    for secret in _SECRETS:
        message = message.replace(secret, "***")
    return message


@dataclass
class Context:
    """The global options of this invocation; `settings()` reads the settings with a command's own flags."""

    overrides: dict[str, object]

    def settings(self, **more: object) -> Settings:
        """The settings, checked: the data directory is a folder (created private), and a command that
        takes --llm names a model that exists."""
        settings = load_settings({**self.overrides, **{k: v for k, v in more.items() if v is not None}})
        _SECRETS.update(filter(None, (urlparse(settings.chroma_url).password, settings.chroma_token)))
        if make_home(settings.home):
            os.umask(0o077)  # what qa writes in a private data directory (catalogue, vectors, chat) stays private
        prepare_environment(settings)
        if "llm" in more and not is_known_llm(settings, settings.resolved_llm()):
            raise UsageError(f"Unknown LLM {settings.resolved_llm()!r}; use local, openai:MODEL or extractive.")
        for name in ("budget", "k"):
            if name in more and getattr(settings, name) < 1:
                raise UsageError(f"--{name} must be a positive number, not {getattr(settings, name)}.")
        return settings


@contextmanager
def reported() -> Iterator[None]:
    """Turn QAError into one red line and an exit code; Ctrl-C into exit 130."""
    try:
        yield
    except QAError as exc:
        views.error(err, _scrubbed(str(exc)))
        raise typer.Exit(exc.exit_code) from None
    except KeyboardInterrupt:
        err.print("[yellow]Interrupted.[/yellow]")
        raise typer.Exit(130) from None
    except (typer.Exit, typer.Abort, SystemExit):
        raise
    except Exception as exc:  # a bug or a library failure: one line, the traceback only on request
        if os.environ.get("QA_DEBUG"):
            raise
        views.error(
            err,
            _scrubbed(
                f"unexpected {exc.__class__.__name__}: {exc}. Run `qa doctor`; "
                "set QA_DEBUG=1 to see the traceback and please report it."
            ),
        )
        raise typer.Exit(1) from None


def filters(source: str, since: str, until: str) -> Filters:
    """--source/--since/--until as retrieval filters; --since after --until is a usage error."""
    chosen = Filters(source, checked_date("--since", since), checked_date("--until", until))
    if chosen.since and chosen.until and chosen.since > chosen.until:
        raise UsageError(f"--since {chosen.since} is after --until {chosen.until}: no article can match.")
    return chosen


class _Notices(logging.Handler):
    """What the library says on the `qa` logger (a long index build, a sync from the server), on stderr."""

    def emit(self, record: logging.LogRecord) -> None:
        err.print(f"[yellow]{record.getMessage()}[/yellow]", highlight=False)


def show_notices() -> None:
    """Print the library's notices (INFO and above on the `qa` logger) for this invocation."""
    logger = logging.getLogger("qa")
    if not any(isinstance(h, _Notices) for h in logger.handlers):
        logger.addHandler(_Notices())
        logger.setLevel(logging.INFO)


def waiting(message: str) -> None:
    """Said while another qa process holds the collection's write lock."""
    err.print(f"[yellow]{message}[/yellow]")


def since_start_ms() -> float:
    """Milliseconds since this process started (Linux: from /proc), else since qa.cli was imported:
    what a user waits from pressing Enter, interpreter start and imports included."""
    try:
        ticks = os.sysconf("SC_CLK_TCK")
        with open("/proc/self/stat", encoding="ascii") as stat:
            started = int(stat.read().rsplit(")", 1)[1].split()[19]) / ticks
        with open("/proc/uptime", encoding="ascii") as uptime:
            now = float(uptime.read().split()[0])
        return max(0.0, (now - started) * 1000)
    except (OSError, ValueError, IndexError):
        return (time.perf_counter() - _IMPORTED) * 1000


def load_llm(settings: Settings, *, fallback: bool = True) -> LLM | None:
    """The model the settings name, its first-use assembly shown as a progress bar and the start of
    the background engine as one line; a local model that is not available falls back to answering
    with no model (extractive), and says so (with `fallback`; else the error stands)."""
    progress = Progress(
        TextColumn("Assembling the local model (first use only)"),
        BarColumn(),
        DownloadColumn(),
        console=err,
        transient=True,
    )
    task = None

    def on_progress(done: int, total: int) -> None:
        nonlocal task
        if task is None:
            progress.start()
            task = progress.add_task("model", total=total)
        progress.update(task, completed=done)

    def on_starting() -> None:
        if task is not None:
            progress.stop()  # the assembly is done
        # stderr only: --json output on stdout stays clean
        err.print("[dim]Starting the local engine (model load, first use only)…[/dim]")

    spec = settings.resolved_llm()
    try:
        return make_llm(settings, on_progress=on_progress, on_starting=on_starting)
    except QAError as exc:
        if not fallback or not (spec == "local" or spec.startswith("local:")):
            raise
        err.print(
            f"[yellow]The local model is not available: {escape(str(exc))}\nAnswering with the extractive backend "
            "(cited sentences, no model).[/yellow]",
            soft_wrap=True,
        )
        return None
    finally:
        if task is not None:
            progress.stop()


def _eta(seconds: float) -> str:
    return f"{int(seconds // 60)}:{int(seconds % 60):02d}"


def progress_line(progress: IngestProgress, elapsed: float, embedding_since: float) -> str:
    """One plain line of where an ingest is, with an estimate of the time left once it can tell."""
    line = f"{progress.done}/{progress.total} articles · {progress.what}"
    if progress.of_sentences:
        line += f" · embedding sentences {progress.sentences}/{progress.of_sentences}"
        if progress.sentences:
            rate = progress.sentences / max(embedding_since, 1e-6)
            line += f", about {_eta((progress.of_sentences - progress.sentences) / rate)} left"
    elif progress.done and progress.total > progress.done:
        line += f" · about {_eta(elapsed / progress.done * (progress.total - progress.done))} left"
    return line


INPUT_EVERY, LINE_EVERY = 1.0, 5.0  # seconds at least between two progress lines: a new input, the same one


def progress_mode(as_json: bool) -> str:
    """How ingest progress is shown: nothing with --json, a bar on a terminal, lines otherwise."""
    return "off" if as_json else "bar" if err.is_terminal else "lines"


@contextmanager
def article_progress(title: str, mode: str) -> Iterator[Callable[[IngestProgress], None]]:
    """Progress over articles on stderr: a bar with an estimate of the time left on a terminal
    (`mode` "bar"), a plain line per input or every few seconds otherwise ("lines"), or nothing ("off")."""
    started = time.monotonic()
    last_line, last_what, embedding = 0.0, "", 0.0

    def plain(p: IngestProgress) -> None:
        nonlocal last_line, last_what, embedding
        now = time.monotonic()
        if p.of_sentences and not p.sentences:
            embedding = now
        if p.what == "done" or now - last_line < (INPUT_EVERY if p.what != last_what else LINE_EVERY):
            return  # a line per input (at most one a second), or every five seconds within one
        last_line, last_what = now, p.what
        err.print(f"{title}: {progress_line(p, now - started, now - embedding)}", soft_wrap=True, highlight=False)

    if mode != "bar":
        yield plain if mode == "lines" else (lambda p: None)
        return
    bar = Progress(
        TextColumn(f"[bold]{title}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("articles"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.description}"),
        console=err,
    )
    with bar:
        task = bar.add_task("", total=None)

        def update(p: IngestProgress) -> None:
            what = p.what[-40:] + (f"  sentences {p.sentences}/{p.of_sentences}" if p.of_sentences else "")
            bar.update(task, completed=p.done, total=max(p.total, p.done), description=what)

        yield update


@contextmanager
def call_progress(enabled: bool) -> Iterator[Callable[[int, int, str], None]]:
    """A progress bar over model calls on stderr (`on_progress(done, planned, what)`); a no-op when disabled."""
    bar = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
        disable=not enabled,
    )
    with bar:
        task = bar.add_task("", total=None)

        def on_progress(done: int, total: int, what: str) -> None:
            bar.update(task, completed=done, total=max(total, done), description=what[:50])

        yield on_progress


def emit(markdown: str, data: dict, as_json: bool, output: str | None) -> None:
    """A document as Markdown (rendered on a terminal, plain when piped) or JSON, to stdout or `output`."""
    text = json.dumps(data, indent=2, ensure_ascii=False) + "\n" if as_json else markdown
    if output:
        try:
            Path(output).expanduser().write_text(text, encoding="utf-8")
        except OSError as exc:
            raise QAError(f"Cannot write {output} ({exc.strerror}); choose another path with -o.") from None
        err.print(f"Wrote {output}")
    elif as_json:
        out.print_json(json.dumps(data))
    elif out.is_terminal:
        out.print(Markdown(markdown))
    else:
        out.file.write(markdown)
