"""Answer a question from retrieved passages: prompt, generate (or, with no model, extract), verify."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from .chunking import sentence_spans
from .claims import names, numbers
from .embeddings import Embedder
from .grounding import JUDGE_THRESHOLD, Grounded, Judge, ground, ground_extract
from .language import language_note
from .llm import LLM, Judges, Messages, model_name
from .prompts import REFUSAL, fill, format_passages
from .records import Answer, Passage, Sentence, Timings
from .roots import roots
from .search import Library
from .search.retrieval import RetrievalOptions, retrieve
from .verify import cited_text

# Calibrated with eval/extractive_threshold.py on SQuAD and RGB (figures in eval/RESULTS.md):
EXTRACTIVE_THRESHOLD = 0.45  # below this, the best sentence does not answer the question
EXTRA_SENTENCE = 0.8  # a second sentence is given only when it scores at least this share of the best


@dataclass(frozen=True)
class AskOptions:
    retrieval: RetrievalOptions = RetrievalOptions()
    max_tokens: int = 320
    temperature: float = 0.0
    max_sentences: int = 3
    today: str = ""  # ISO date the question is asked on ("" = not said): "this week" is read from it
    judge: bool = False  # the model's own yes/no check (when the backend gives probabilities): off until
    # eval/calibrate.py shows it pays for its seconds
    judge_threshold: float = JUDGE_THRESHOLD


def system_message(max_sentences: int = 3) -> dict[str, str]:
    """The fixed instructions, byte for byte the same for every question, so an engine that keeps
    its prompt cache reads them once."""
    return {"role": "system", "content": fill("answer_system", refusal=REFUSAL, max_sentences=max_sentences)}


def user_message(question: str, tag: str, blocks: str, today: str = "") -> dict[str, str]:
    """The question after its passages (`blocks`, inside `tag`); with `today`, the date the question
    is asked on, so "this week" means the right week."""
    content = fill(
        "answer_user",
        tag=tag,
        passages=blocks,
        question=" ".join(question.split()),
        today=fill("today", date=today) + "\n\n" if today else "",
    )
    return {"role": "user", "content": content}


def build_messages(question: str, passages: Sequence[Passage], max_sentences: int = 3, today: str = "") -> Messages:
    """Numbered passages inside delimiters the articles cannot know (a per-request tag), then the question."""
    tag, blocks = format_passages(passages, salt=question)
    return [system_message(max_sentences), user_message(question, tag, blocks, today)]


def extract(
    question: str,
    passages: Sequence[Passage],
    embedder: Embedder,
    limit: int = 2,
    threshold: float = EXTRACTIVE_THRESHOLD,
) -> list[Sentence]:
    """The best supporting sentences, each cited; [] when none is relevant enough."""
    units = [(p.number, p.text[a:b]) for p in passages for a, b in sentence_spans(p.text)]
    units = [(n, s) for n, s in units if len(s.split()) >= 4]
    if not units:
        return []
    # the question's words in any of their forms ("demand" / "is demanding"): a sentence that has them
    # all states what is asked; one that shares a word with it in passing does not
    asked = roots(question)
    dense = embedder.embed([s for _, s in units]) @ embedder.embed([question])[0]
    lexical = np.array([len(asked & roots(s)) / max(1, len(asked)) for _, s in units])
    # a passage that lacks the names and numbers the question is about cannot answer it
    by_number = {p.number: p.text for p in passages}
    missing = np.array([_key_terms_missing(question, by_number[n]) for n, _ in units])
    score = (0.6 * dense + 0.4 * lexical) * (1 - 0.5 * missing)
    picked: list[Sentence] = []
    for j in np.argsort(-score)[:limit]:
        # a further sentence must answer nearly as well as the best one, not share a word with the question
        if score[j] < threshold or (picked and score[j] < EXTRA_SENTENCE * picked[0].support):
            break
        picked.append(Sentence(units[j][1], (units[j][0],), True, round(float(score[j]), 3)))
    return picked


def _key_terms_missing(question: str, passage: str) -> float:
    """Share of the question's names and numbers that the passage does not contain."""
    needed = names(question) | {f"#{n}" for n in numbers(question)}
    if not needed:
        return 0.0
    low, have = passage.lower(), {f"#{n}" for n in numbers(passage)}
    return sum(1 for w in needed if (w not in have if w.startswith("#") else w not in low)) / len(needed)


def judge_with(llm: LLM | None, enabled: bool = True) -> Judge | None:
    """The model's own yes/no check (prompts/judge.md) as qa/grounding.py calls it; None when the
    backend cannot give probabilities or the check is off."""
    if not enabled or not isinstance(llm, Judges):
        return None

    def judge(question: str, evidence: str) -> float | None:
        messages = [{"role": "user", "content": fill("judge", evidence=evidence, question=" ".join(question.split()))}]
        return llm.yes_probability(messages)

    return judge


def answer(
    question: str,
    passages: Sequence[Passage],
    *,
    llm: LLM | None,
    embedder: Embedder,
    options: AskOptions = AskOptions(),
    on_token: Callable[[str], None] | None = None,
    messages: Messages | None = None,
) -> Answer:
    """Generate an answer and ground it (qa/grounding.py): only sentences the passages state are
    shown, and a reply they do not support becomes "I don't know" with the closest passages kept.
    With no model (`llm` None), the best supporting sentences, cited, under the same question check.
    `messages`, when given, is the prompt to send (a chat's conversation, whose passages are all of
    `passages`); by default it is built from the question and the passages."""
    t0 = time.perf_counter()
    timings = Timings()
    passages = list(passages)
    name = model_name(llm)
    if not passages:
        return Answer(
            question,
            REFUSAL,
            [],
            [],
            name,
            refused=True,
            reason="no passage matched",
            timings=timings,
            language_note=language_note(question, []),
        )
    if llm is None:
        grounded = ground_extract(question, extract(question, passages, embedder), passages)
        timings.total_ms = (time.perf_counter() - t0) * 1000
        return _result(question, passages, name, grounded, timings)

    if messages is None:
        messages = build_messages(question, passages, options.max_sentences, options.today)
    pieces: list[str] = []
    first = None
    for piece in llm.stream(messages, max_tokens=options.max_tokens, temperature=options.temperature):
        if first is None:
            first = time.perf_counter()
        pieces.append(piece)
        if on_token:
            on_token(piece)
    end = time.perf_counter()
    raw = "".join(pieces)
    timings.prompt_tokens = llm.usage.prompt_tokens
    timings.completion_tokens = llm.usage.completion_tokens
    timings.first_token_ms = ((first or end) - t0) * 1000
    timings.generation_ms = (end - (first or end)) * 1000
    grounded = ground(
        question,
        raw,
        passages,
        judge=judge_with(llm, options.judge),
        threshold=options.judge_threshold,
        without_judge="model check: not available" if options.judge else "model check: off",
    )
    timings.checks_ms = (time.perf_counter() - end) * 1000
    timings.total_ms = (time.perf_counter() - t0) * 1000
    return _result(question, passages, name, grounded, timings, raw=raw, incomplete=not llm.usage.finished)


def _result(
    question: str,
    passages: list[Passage],
    name: str,
    grounded: Grounded,
    timings: Timings,
    *,
    raw: str = "",
    incomplete: bool = False,
) -> Answer:
    text = REFUSAL if grounded.refused else cited_text(grounded.sentences)
    return Answer(
        question,
        text,
        [] if grounded.refused else grounded.sentences,
        passages,
        name,
        refused=grounded.refused,
        reason=grounded.reason,
        incomplete=incomplete,
        timings=timings,
        dropped=grounded.dropped + (grounded.sentences if grounded.refused else []),
        checks=grounded.checks,
        judge=grounded.judge,
        raw=raw,
        language_note=language_note(question, passages),
    )


def ask(
    question: str,
    *,
    library: Library,
    llm: LLM | None,
    options: AskOptions = AskOptions(),
    on_token: Callable[[str], None] | None = None,
) -> Answer:
    """Retrieve, then answer: the whole `qa ask` pipeline."""
    found = retrieve(question, library=library, options=options.retrieval)
    result = answer(question, found.passages, llm=llm, embedder=library.embedder, options=options, on_token=on_token)
    result.timings.retrieval_ms = found.ms
    return result
