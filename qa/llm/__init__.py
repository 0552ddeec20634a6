"""LLM backends behind one small Protocol: `complete` and `stream`.

- `OpenAIChat` drives any OpenAI-compatible server, and the local model through its
  loopback server, so there is one code path for both.
- `Extractive` is no model at all: answers are the best supporting sentences (see answer.py).
- `FakeLLM` replays queued replies and records calls, for tests.
`make_llm(settings)` is the only place that picks one.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Iterator, Protocol

from ..errors import QAError

Messages = list[dict[str, str]]


@dataclass
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    finished: bool = True  # False: the stream broke off before the model finished


class LLM(Protocol):
    name: str
    usage: Usage

    def complete(self, messages: Messages, *, max_tokens: int = 320, temperature: float = 0.0) -> str: ...

    def stream(self, messages: Messages, *, max_tokens: int = 320, temperature: float = 0.0) -> Iterator[str]: ...


class OpenAIChat:
    def __init__(self, model: str, *, base_url: str | None = None, api_key: str | None = None,
                 timeout: float = 120.0, max_retries: int = 2, http_client=None, label: str = ""):
        from openai import OpenAI

        key = api_key or os.environ.get("OPENAI_API_KEY")
        base = base_url or os.environ.get("OPENAI_BASE_URL")
        if not key and not base:
            raise QAError("No OpenAI key or server is set. Set OPENAI_API_KEY (and OPENAI_BASE_URL for a "
                          "compatible server such as vLLM, Ollama or llama.cpp), or use --llm local / extractive.")
        self.client = OpenAI(api_key=key or "not-needed", base_url=base, timeout=timeout,
                             max_retries=max_retries, http_client=http_client)
        self.model = model
        self.name = label or f"openai:{model}"
        self.usage = Usage()

    def _error(self, exc: Exception) -> QAError:
        import openai

        where = str(self.client.base_url)
        if isinstance(exc, openai.AuthenticationError):
            return QAError(f"The server at {where} refused the API key; check OPENAI_API_KEY.")
        if isinstance(exc, openai.APITimeoutError):
            return QAError(f"The model server at {where} did not answer in time; try again, or raise QA_TIMEOUT.")
        if isinstance(exc, openai.APIConnectionError):
            return QAError(f"Cannot reach the model server at {where}; check OPENAI_BASE_URL and that the server runs.")
        if isinstance(exc, openai.NotFoundError):
            return QAError(f"The server at {where} has no model {self.model!r}; pick one with --llm openai:MODEL.")
        if isinstance(exc, openai.APIStatusError):
            return QAError(f"The model server at {where} failed with HTTP {exc.status_code}; try again later.")
        return QAError(f"The model server at {where} sent a reply qa cannot read ({exc.__class__.__name__}).")

    def complete(self, messages: Messages, *, max_tokens: int = 320, temperature: float = 0.0) -> str:
        import openai

        try:
            response = self.client.chat.completions.create(model=self.model, messages=messages,
                                                           max_tokens=max_tokens, temperature=temperature)
        except (openai.OpenAIError, ValueError) as exc:
            raise self._error(exc) from None
        usage = response.usage
        choice = response.choices[0]
        self.usage = Usage(usage.prompt_tokens if usage else 0, usage.completion_tokens if usage else 0,
                           choice.finish_reason in ("stop", "length", None))
        return choice.message.content or ""

    def stream(self, messages: Messages, *, max_tokens: int = 320, temperature: float = 0.0) -> Iterator[str]:
        import openai

        self.usage = Usage(finished=False)
        pieces = 0
        events = None
        try:
            events = self.client.chat.completions.create(
                model=self.model, messages=messages, max_tokens=max_tokens, temperature=temperature,
                stream=True, stream_options={"include_usage": True})
            for event in events:
                if event.usage:
                    self.usage.prompt_tokens = event.usage.prompt_tokens
                    self.usage.completion_tokens = event.usage.completion_tokens
                for choice in event.choices:
                    if choice.delta and choice.delta.content:
                        pieces += 1
                        yield choice.delta.content
                    if choice.finish_reason:
                        self.usage.finished = True
        except (openai.OpenAIError, ValueError) as exc:
            if pieces == 0:
                raise self._error(exc) from None
            return  # a partial answer: usage.finished stays False and the caller marks it
        finally:
            if events is not None:
                events.close()  # hang up when the caller stops early (Ctrl-C), or the server generates on
        if not self.usage.completion_tokens:
            self.usage.completion_tokens = pieces


class Extractive:
    """The no-model backend: answer.py answers with the best cited sentences instead."""

    name = "extractive"

    def __init__(self) -> None:
        self.usage = Usage()

    def complete(self, messages: Messages, *, max_tokens: int = 320, temperature: float = 0.0) -> str:
        raise QAError("The extractive backend does not generate text; it is handled by the answer step.")

    def stream(self, messages: Messages, *, max_tokens: int = 320, temperature: float = 0.0) -> Iterator[str]:
        raise QAError("The extractive backend does not generate text; it is handled by the answer step.")


@dataclass
class FakeLLM:
    """Replies from a queue (the last one repeats), with the messages of every call kept."""

    replies: list[str] = field(default_factory=lambda: ["I don't know: the articles do not say."])
    name: str = "fake"
    calls: list[Messages] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)

    def _next(self, messages: Messages) -> str:
        self.calls.append(messages)
        reply = self.replies.pop(0) if len(self.replies) > 1 else self.replies[0]
        self.usage = Usage(sum(len(m["content"].split()) for m in messages), len(reply.split()))
        return reply

    def complete(self, messages: Messages, *, max_tokens: int = 320, temperature: float = 0.0) -> str:
        return self._next(messages)

    def stream(self, messages: Messages, *, max_tokens: int = 320, temperature: float = 0.0) -> Iterator[str]:
        reply = self._next(messages)
        for word in reply.split(" "):
            yield word + " "


_LOCAL: dict[str, OpenAIChat] = {}


def local_llm(model: str, models_dir, threads: int = 0, timeout: float = 300.0, on_progress=None) -> OpenAIChat:
    """The in-process model, loaded once per process and then reused."""
    from .local import MODELS, LocalServer, ensure_model

    if model not in _LOCAL:
        spec = MODELS.get(model)
        if spec is None:
            raise QAError(f"Unknown local model {model!r}; choose one of: qwen, smollm2.")
        path = ensure_model(spec, models_dir, on_progress)
        server = LocalServer(path, threads=threads)
        chat = OpenAIChat(spec.name, base_url=server.base_url, api_key=server.api_key, timeout=timeout,
                          max_retries=0, label=f"local:{spec.name}")
        chat.server = server  # keep the engine alive as long as the client
        _LOCAL[model] = chat
    return _LOCAL[model]


def make_llm(spec: str, *, models_dir, threads: int = 0, timeout: float = 120.0, on_progress=None) -> LLM:
    """`local[:qwen|smollm2]`, `openai:MODEL`, `extractive` or `fake`."""
    if spec == "extractive":
        return Extractive()
    if spec == "fake":
        return FakeLLM()
    if spec == "local" or spec.startswith("local:"):
        return local_llm(spec.partition(":")[2] or "qwen", models_dir, threads, max(timeout, 300.0), on_progress)
    if spec.startswith("openai:") and spec[7:]:
        return OpenAIChat(spec[7:], timeout=timeout)
    raise QAError(f"Unknown LLM {spec!r}; use local, openai:MODEL or extractive.")
