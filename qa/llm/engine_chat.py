"""The local model served by the background engine (qa/llm/engine.py), behind the `LLM` protocol.

Requests go to the engine's loopback port with its key, through the same `openai` client code as
any OpenAI-compatible server. When the engine turns out to be gone (it idled out, crashed or was
killed: the connection is refused or dropped before the first token), it is started again and the
request sent once more, so the caller never notices.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

from ..errors import QAError
from . import Messages, Usage
from .engine import EngineConfig, EngineState, ensure, log_path, state_path
from .local import cores, ensure_model, model_spec
from .openai_chat import OpenAIChat, ServerUnreachable, loopback_http_client


class EngineChat:
    """A chat model in the background engine; the engine is (re)started when needed."""

    def __init__(
        self,
        config: EngineConfig,
        engine_dir: Path,
        *,
        timeout: float = 300.0,
        on_starting: Callable[[], None] | None = None,
    ):
        self.config = config
        self.engine_dir = engine_dir
        self.name = f"local:{config.model}"
        self.timeout = timeout
        self.on_starting = on_starting
        self.state = ensure(config, engine_dir, on_starting)
        self._chat = self._connect(self.state)

    def _connect(self, state: EngineState) -> OpenAIChat:
        return OpenAIChat(
            self.config.model,
            base_url=state.url + "/v1",
            api_key=state.key,
            timeout=self.timeout,
            max_retries=0,
            http_client=loopback_http_client(),
            label=self.name,
        )

    def _restart(self) -> None:
        self.state = ensure(self.config, self.engine_dir, self.on_starting)
        self._chat = self._connect(self.state)

    def _gone(self) -> QAError:
        log = log_path(state_path(self.engine_dir, self.config.model))
        return QAError(f"The local engine stopped answering twice; see {log}, or run `qa engine stop` and try again.")

    @property
    def usage(self) -> Usage:
        return self._chat.usage

    def complete(self, messages: Messages, *, max_tokens: int = 320, temperature: float = 0.0) -> str:
        try:
            return self._chat.complete(messages, max_tokens=max_tokens, temperature=temperature)
        except ServerUnreachable:
            self._restart()
        try:
            return self._chat.complete(messages, max_tokens=max_tokens, temperature=temperature)
        except ServerUnreachable:
            raise self._gone() from None

    def stream(self, messages: Messages, *, max_tokens: int = 320, temperature: float = 0.0) -> Iterator[str]:
        # OpenAIChat.stream raises ServerUnreachable only before its first piece: after one, a
        # broken stream ends as a partial answer (usage.finished False), never retried twice over
        try:
            yield from self._chat.stream(messages, max_tokens=max_tokens, temperature=temperature)
            return
        except ServerUnreachable:
            self._restart()
        try:
            yield from self._chat.stream(messages, max_tokens=max_tokens, temperature=temperature)
        except ServerUnreachable:
            raise self._gone() from None


def engine_llm(
    model: str,
    models_dir: Path,
    engine_dir: Path,
    *,
    threads: int = 0,
    idle: float = 600.0,
    timeout: float = 300.0,
    on_progress: Callable[[int, int], None] | None = None,
    on_starting: Callable[[], None] | None = None,
) -> EngineChat:
    """The local model `model` (`qwen` or `smollm2`) in the background engine of `engine_dir`:
    the running one, or one started now (the model assembled first, with `on_progress`)."""
    spec = model_spec(model)
    path = ensure_model(spec, models_dir, on_progress)
    config = EngineConfig(
        model=spec.name,
        file=str(path.resolve()),
        sha256=spec.sha256,
        threads=threads or cores(),
        idle=idle,
    )
    return EngineChat(config, engine_dir, timeout=timeout, on_starting=on_starting)
