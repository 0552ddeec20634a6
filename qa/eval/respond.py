"""What the system says to one gold item: the cited answer, then (with a model) a short answer and a
choice as follow-up turns of the answer's own conversation, so the engine reuses its cached prompt
(the passages are read once); the short answer is asked before the choices are shown. With no
model, the short answer is the first extracted sentence and the choice the one the context supports best.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from ..answer import answer, build_messages
from ..chunking import sentence_spans
from ..embeddings import Embedder
from ..llm import LLM, Judges, Messages, Usage
from ..prompts import CITATION, REFUSAL, fill
from ..records import Answer, Passage
from ..terms import terms
from ..verify import is_refusal
from . import metrics
from .gold import EvalItem, EvalOptions


class Recorder:
    """Wraps an LLM: remembers the last reply and adds up usage over an item's calls."""

    def __init__(self, llm: LLM):
        self.inner = llm
        self.name = llm.name
        self.last_reply = ""
        self.prompt_tokens = self.completion_tokens = self.calls = 0
        self.call_ms: list[float] = []  # wall time of each call: the follow-ups should be cheap

    @property
    def usage(self) -> Usage:
        return self.inner.usage

    def _count(self, started: float) -> None:
        self.calls += 1
        self.call_ms.append(round((time.perf_counter() - started) * 1000, 1))
        self.prompt_tokens += self.inner.usage.prompt_tokens
        self.completion_tokens += self.inner.usage.completion_tokens

    def complete(self, messages: Messages, *, max_tokens: int = 320, temperature: float = 0.0) -> str:
        started = time.perf_counter()
        self.last_reply = self.inner.complete(messages, max_tokens=max_tokens, temperature=temperature)
        self._count(started)
        return self.last_reply

    def yes_probability(self, messages: Messages) -> float | None:
        """The model's own check, counted like a call; None when the backend cannot give it."""
        if not isinstance(self.inner, Judges):
            return None
        started = time.perf_counter()
        p = self.inner.yes_probability(messages)
        self._count(started)
        return p

    def stream(self, messages: Messages, *, max_tokens: int = 320, temperature: float = 0.0) -> Iterator[str]:
        started = time.perf_counter()
        pieces: list[str] = []
        for piece in self.inner.stream(messages, max_tokens=max_tokens, temperature=temperature):
            pieces.append(piece)
            yield piece
        self.last_reply = "".join(pieces)
        self._count(started)


def lettered(choices: Sequence[str]) -> str:
    return "\n".join(f"{metrics.LETTERS[i]}. {c}" for i, c in enumerate(choices))


def _clean_short(text: str) -> str:
    text = " ".join(CITATION.sub(" ", text).split())
    text = re.sub(r"^(short answer|answer)\s*:\s*", "", text, flags=re.I)
    return text.strip().rstrip(".").strip()


_TOKEN = re.compile(r"\w+(?:[.,'’-]\w+)*")


def _is_name_word(word: str) -> bool:
    return word[:1].isupper() or word[:1].isdigit()


def snap_to_passages(short: str, passages: Sequence[Passage]) -> str:
    """The short answer as the passages write it: found verbatim (case and spacing aside), the
    passage's own words; a partial name ("Benedict XVI") completed to the capitalised run it sits in
    ("Pope Benedict XVI": only where the passage writes it capitalised, over words joined by single
    spaces, so "sesame" is not completed to "Starting January 1, sesame"); otherwise the passage
    span of at least its length with the best token F1 (0.6 or more, its numbers kept: a span never
    drops the model's words), else the model's words unchanged. Exact match scores spans of the source."""
    words = _TOKEN.findall(re.sub(r"^(?:the|a|an)\s+", "", short, flags=re.I))
    if not words or not passages:
        return short
    digits = {w for w in words if any(c.isdigit() for c in w)}
    want = [w.lower() for w in words]
    best, best_f1 = short, 0.0
    for p in passages:
        tokens = list(_TOKEN.finditer(p.text))
        lowered = [t.group(0).lower() for t in tokens]

        for i in range(len(tokens)):
            if lowered[i : i + len(want)] == want:
                a, b = i, i + len(want) - 1
                written = [tokens[j].group(0) for j in range(a, b + 1)]
                if all(_is_name_word(w) for w in written if w.lower() not in ("of", "the", "de")):
                    while (
                        a > 0
                        and tokens[a - 1].group(0)[:1].isupper()
                        and _joined(p.text, tokens, a - 1)
                        and not _starts_sentence(p.text, tokens[a - 1].start())
                    ):
                        a -= 1
                    while b + 1 < len(tokens) and tokens[b + 1].group(0)[:1].isupper() and _joined(p.text, tokens, b):
                        b += 1
                return p.text[tokens[a].start() : tokens[b].end()]
        for size in range(len(want), len(want) + 3):
            for i in range(len(tokens) - size + 1):
                f1 = metrics.token_f1(" ".join(lowered[i : i + size]), [" ".join(want)])
                if f1 > best_f1 and digits <= {t.group(0) for t in tokens[i : i + size]}:
                    best, best_f1 = p.text[tokens[i].start() : tokens[i + size - 1].end()], f1
    return best if best_f1 >= 0.6 else short


def _joined(text: str, tokens: Sequence[re.Match[str]], i: int) -> bool:
    """Tokens i and i + 1 are one run of a name: a single space between them."""
    return text[tokens[i].end() : tokens[i + 1].start()] == " "


def _starts_sentence(text: str, at: int) -> bool:
    before = text[:at].rstrip()
    return not before or before[-1] in '.!?"“:\n'


def choose_by_support(
    question: str, choices: Sequence[str], passages: Sequence[Passage], embedder: Embedder
) -> int | None:
    """The choice best supported by the context: for each choice, the best sentence score of
    (relevance of the sentence to the question) x (share of the choice's words it contains);
    relevance is 0.6 x embedding similarity + 0.4 x question-word overlap, as in `extract`.
    Ties and all-zero cases fall to embedding similarity between choice and relevant sentences."""
    sentences = [p.text[a:b] for p in passages for a, b in sentence_spans(p.text)]
    if not sentences or not choices:
        return None
    vectors = embedder.embed(sentences)
    qterms = set(terms(question))
    relevance = 0.6 * (vectors @ embedder.embed([question])[0]) + 0.4 * np.array(
        [len(qterms & set(terms(s))) / max(1, len(qterms)) for s in sentences]
    )
    relevance = np.clip(relevance, 0.0, None)
    words = [set(terms(s)) for s in sentences]
    dense = embedder.embed(list(choices)) @ vectors.T
    scores = []
    for i, choice in enumerate(choices):
        cterms = set(terms(choice)) or set(metrics.normalise(choice).split())
        cover = np.array([len(cterms & w) / max(1, len(cterms)) for w in words])
        scores.append(float(np.max(relevance * cover)) + 0.01 * float(np.max(relevance * dense[i])))
    return int(np.argmax(scores))


@dataclass
class Outcome:
    """What the system produced for one item, before scoring."""

    answer: Answer
    raw: str = ""
    short: str = ""
    choice: int | None = None
    choice_reply: str = ""
    choice_source: str = ""  # "model" or "support"
    calls: int = 0  # model calls, their wall time each, and their tokens
    call_ms: list[float] = field(default_factory=list)
    prompt_tokens: int = 0
    completion_tokens: int = 0


def respond(
    item: EvalItem, passages: Sequence[Passage], *, llm: LLM | None, embedder: Embedder, options: EvalOptions
) -> Outcome:
    """The cited answer, then (with a model) a short answer and, for choices, a choice."""
    if llm is None:
        result = answer(item.question, passages, llm=None, embedder=embedder, options=options.ask)
        short = "" if result.refused else _clean_short(" ".join(s.text for s in result.sentences[:1]))
        out = Outcome(result, short=short)
    else:
        recorder = Recorder(llm)
        ask = replace(options.ask, today=item.date or options.ask.today)
        result = answer(item.question, passages, llm=recorder, embedder=embedder, options=ask)
        out = Outcome(result, raw=recorder.last_reply)
        if passages:
            talk: Messages = build_messages(item.question, passages, ask.max_sentences, ask.today)
            # the short answer follows the answer as shown (left-out sentences are not something to quote);
            # after a refusal only the choice is asked, and it follows what the model wrote
            said = result.text if not result.refused else (out.raw or REFUSAL)
            talk = talk + [{"role": "assistant", "content": said}]
            if not result.refused:
                talk = talk + [{"role": "user", "content": fill("short_user", question=item.question, refusal=REFUSAL)}]
                reply = recorder.complete(talk, max_tokens=options.short_tokens, temperature=options.ask.temperature)
                talk = talk + [{"role": "assistant", "content": reply}]
                cited = result.cited or passages
                out.short = "" if is_refusal(reply) else snap_to_passages(_clean_short(reply), cited)
            if item.choices:
                talk = talk + [
                    {
                        "role": "user",
                        "content": fill("choose_user", question=item.question, choices=lettered(item.choices)),
                    }
                ]
                out.choice_reply = recorder.complete(
                    talk, max_tokens=options.choose_tokens, temperature=options.ask.temperature
                )
                out.choice = metrics.parse_choice(out.choice_reply, item.choices)
                out.choice_source = "model" if out.choice is not None else ""
        out.calls, out.call_ms = recorder.calls, recorder.call_ms
        out.prompt_tokens, out.completion_tokens = recorder.prompt_tokens, recorder.completion_tokens
    if item.choices and out.choice is None and passages:
        out.choice = choose_by_support(item.question, item.choices, passages, embedder)
        out.choice_source = "support"
    return out
