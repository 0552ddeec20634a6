"""What `qa chat`'s loops share: the session, the collection opened once, the model loaded in the
background, the console."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from rich.console import Console

from ..answer import AskOptions
from ..chat.session import Session, save_session, sessions_dir
from ..library import Library
from ..llm import EXTRACTIVE, LLM, model_name
from ..settings import Settings
from ._shared import load_llm


class ModelLoader:
    """Builds the LLM (None: no model, extractive) in a background thread, started once the prompt is up.

    The engine (xllamacpp) holds the GIL while it loads, so the main thread pauses for that
    time whenever it happens; started after the prompt is drawn, keystrokes typed meanwhile
    are kept by the terminal and appear when it is done, and the model is ready sooner."""

    def __init__(self, spec: str, build: Callable[[], LLM | None], on_done: Callable[[], None] | None = None):
        self.spec = spec
        self.on_done = on_done  # e.g. redraw the prompt's status bar
        self.seconds = 0.0
        self._build = build
        self._llm: LLM | None = None
        self._error: BaseException | None = None
        self._done = threading.Event()
        self._thread: threading.Thread | None = None
        if spec == EXTRACTIVE:  # no model to load: ready now, and the header says so
            self._done.set()

    @classmethod
    def for_settings(cls, settings: Settings, spec: str, on_done: Callable[[], None] | None = None) -> ModelLoader:
        chosen = replace(settings, llm=spec)
        return cls(spec, lambda: load_llm(chosen), on_done)

    def start(self, delay: float = 0.0) -> ModelLoader:
        if self._thread is None and not self._done.is_set():  # (extractive is ready from the start)
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
        return f"{self.spec} (failed)" if self._error else model_name(self._llm)

    def get(self) -> LLM | None:
        self.start()
        while not self._done.wait(0.1):  # short waits: Ctrl-C stays responsive
            pass
        if self._error is not None:
            raise self._error
        return self._llm


@dataclass
class ChatState:
    """The session, the pieces built once, the model loader, the console."""

    settings: Settings
    session: Session
    library: Library
    loader: ModelLoader
    console: Console
    options: AskOptions
    interactive: bool = True
    quit: bool = False
    notes: list[str] = field(default_factory=list)

    def load_model(self, spec: str) -> None:
        self.loader = ModelLoader.for_settings(self.settings, spec, self.loader.on_done).start()

    def save(self) -> None:
        if self.session.turns:
            save_session(self.session, sessions_dir(self.settings.home, self.session.collection))
