"""Any OpenAI-compatible chat server (OpenAI, vLLM, Ollama, llama.cpp server, LM Studio), and the
local engine's loopback server, through the `openai` client."""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from typing import Any

from ..errors import QAError
from . import Messages, Usage


class ServerUnreachable(QAError):
    """The server could not be reached, or hung up before the first token: nothing was answered,
    so the request may be sent again (the background engine restarts and retries once)."""


def loopback_http_client() -> Any:
    """The openai package's own httpx client, minus the environment's proxies: a server on
    loopback (the local engine) is reached directly, whatever HTTP_PROXY says."""
    from openai import DefaultHttpxClient

    return DefaultHttpxClient(trust_env=False)


def _wire(messages: Messages) -> Any:
    """Our role/content dicts, which are what the client's typed message params are on the wire."""
    return messages


class OpenAIChat:
    """A chat model behind an OpenAI-compatible server. `http_client` is an httpx.Client of the
    openai package's own (tests pass one with a mock transport). `engine`, when given, is the
    in-process engine serving `base_url` (the local model), kept alive as long as this client."""

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        timeout: float = 120.0,
        max_retries: int = 2,
        http_client: Any = None,
        label: str = "",
        engine: object | None = None,
    ):
        from openai import OpenAI

        key = api_key or os.environ.get("OPENAI_API_KEY")
        base = base_url or os.environ.get("OPENAI_BASE_URL")
        if not key and not base:
            raise QAError(
                "No OpenAI key or server is set. Set OPENAI_API_KEY (and OPENAI_BASE_URL for a "
                "compatible server such as vLLM, Ollama or llama.cpp), or use --llm local / extractive."
            )
        self.client = OpenAI(
            api_key=key or "not-needed",
            base_url=base,
            timeout=timeout,
            max_retries=max_retries,
            http_client=http_client,
        )
        self.model = model
        self.name = label or f"openai:{model}"
        self.usage = Usage()
        self.engine = engine

    def _error(self, exc: Exception) -> QAError:
        import openai

        where = str(self.client.base_url)
        if isinstance(exc, openai.AuthenticationError):
            return QAError(f"The server at {where} refused the API key; check OPENAI_API_KEY.")
        if isinstance(exc, openai.APITimeoutError):
            return QAError(f"The model server at {where} did not answer in time; try again, or raise QA_TIMEOUT.")
        if isinstance(exc, openai.APIConnectionError):
            return ServerUnreachable(
                f"Cannot reach the model server at {where}; check OPENAI_BASE_URL and that the server runs."
            )
        if isinstance(exc, openai.NotFoundError):
            return QAError(f"The server at {where} has no model {self.model!r}; pick one with --llm openai:MODEL.")
        if isinstance(exc, openai.APIStatusError):
            return QAError(f"The model server at {where} failed with HTTP {exc.status_code}; try again later.")
        return QAError(f"The model server at {where} sent a reply qa cannot read ({exc.__class__.__name__}).")

    def complete(self, messages: Messages, *, max_tokens: int = 320, temperature: float = 0.0) -> str:
        import openai

        try:
            response = self.client.chat.completions.create(
                model=self.model, messages=_wire(messages), max_tokens=max_tokens, temperature=temperature
            )
        except (openai.OpenAIError, ValueError) as exc:
            raise self._error(exc) from None
        usage = response.usage
        choice = response.choices[0]
        self.usage = Usage(
            usage.prompt_tokens if usage else 0,
            usage.completion_tokens if usage else 0,
            choice.finish_reason in ("stop", "length", None),
        )
        return choice.message.content or ""

    def stream(self, messages: Messages, *, max_tokens: int = 320, temperature: float = 0.0) -> Iterator[str]:
        import openai

        self.usage = Usage(finished=False)
        pieces = 0
        events = None
        try:
            events = self.client.chat.completions.create(
                model=self.model,
                messages=_wire(messages),
                max_tokens=max_tokens,
                temperature=temperature,
                stream=True,
                stream_options={"include_usage": True},
            )
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

    def yes_probability(self, messages: Messages) -> float | None:
        """P("yes") against P("no") for the reply's first token, from the server's log-probabilities;
        None when the server gives none (many OpenAI-compatible servers do not)."""
        import openai

        try:
            response = self.client.chat.completions.create(
                model=self.model,
                messages=_wire(messages),
                max_tokens=1,
                temperature=0.0,
                logprobs=True,
                top_logprobs=10,
            )
        except openai.BadRequestError:
            return None  # a server that refuses the logprobs parameter
        except (openai.OpenAIError, ValueError) as exc:
            raise self._error(exc) from None
        usage = response.usage
        self.usage = Usage(usage.prompt_tokens if usage else 0, usage.completion_tokens if usage else 0, True)
        return yes_share(response)


def yes_share(response: Any) -> float | None:
    """P(yes) / (P(yes) + P(no)) over the first token's alternatives; None without log-probabilities."""
    logprobs = response.choices[0].logprobs if response.choices else None
    content = getattr(logprobs, "content", None) if logprobs else None
    if not content:
        return None
    yes = no = 0.0
    for alternative in content[0].top_logprobs or []:
        word = alternative.token.strip().lower()
        if word == "yes":
            yes += math.exp(alternative.logprob)
        elif word == "no":
            no += math.exp(alternative.logprob)
    return yes / (yes + no) if yes + no > 0 else None
