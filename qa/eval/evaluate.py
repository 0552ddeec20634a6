"""Evaluate: run the real pipeline (retrieve -> answer -> verify) over a gold set and score it.

Per item: retrieval (answer recall in the context actually sent, gold-article hit@k, MRR),
the cited answer (citation validity, support rate, refusal), a short answer for exact match
and F1, and for multiple-choice items the model's choice. With a model, the short answer
and the choice are follow-up turns of the answer's own conversation, so the engine reuses
its cached prompt (the passages are read once); the short answer is asked before the
choices are shown. With no model the choice is the one best supported by the context. Each part: the gold set
(gold.py), its corpora (corpora.py), what the system says (respond.py), scores (scoring.py).
"""

from __future__ import annotations

import time
from collections.abc import Iterator

from ..embeddings import Embedder
from ..errors import QAError
from ..llm import LLM
from ..records import sentence_json
from ..search.retrieval import retrieve
from ..tokens import count_tokens
from . import metrics
from .corpora import Corpora, resolve_gold
from .gold import EvalItem, EvalOptions, EvalSet
from .respond import respond
from .scoring import score, summary_scores

# one row of results.jsonl: every key, in this order, for every kind of item
_ROW: dict = {
    "id": "",
    "question": "",
    "answers": [],
    "choices": [],
    "answer_index": None,
    "unanswerable": False,
    "retrieved": [],
    "gold_ids": [],
    "context": [],
    "answer": "",
    "refused": False,
    "fallback": "",
    "reason": "",
    "dropped": [],
    "checks": [],
    "judge": None,
    "raw": "",
    "short": "",
    "choice": None,
    "choice_reply": "",
    "choice_source": "",
    "sentences": [],
    "metrics": {},
    "timings": {},
    "cached": False,
}


def _row(**fields: object) -> dict:
    unknown = fields.keys() - _ROW.keys() - {"article"}
    if unknown:
        raise ValueError(f"not a results.jsonl key: {sorted(unknown)}")
    return {**_ROW, **fields}


def run_summary_item(
    item: EvalItem, *, corpora: Corpora, embedder: Embedder, llm: LLM | None, options: EvalOptions
) -> dict:
    """Summarise the item's article (qa/summarise.py) and score it against the references."""
    from ..summarise import SummaryOptions, summarise

    t0 = time.perf_counter()
    hits_before = getattr(llm, "hits", 0)
    opened = corpora.get(item.corpus)
    ids = sorted(resolve_gold(item.gold_articles, opened.store)) if opened else []
    stored = opened.store.find_by_id(ids[0]) if opened and len(ids) == 1 else None
    if stored is None:
        raise QAError(
            f"Summary item {item.id}: {item.gold_articles} names {len(ids)} stored articles, not one; "
            "check the article name and --corpus."
        )
    result = summarise(
        stored.article,
        llm=llm,
        embedder=embedder,
        options=SummaryOptions(
            style="paragraph",
            words=options.summary_words,
            budget=options.ask.retrieval.budget,
            temperature=options.ask.temperature,
        ),
    )
    text = result.text
    m = summary_scores(text, item.summary)
    if result.sentences or result.dropped:  # the model's sentences the article states, the dropped ones counted
        supported = sum(s.supported for s in result.sentences) / (len(result.sentences) + result.dropped)
        m["support_rate"] = 0.0 if result.fallback else supported
    elapsed = time.perf_counter() - t0
    m.update(
        latency_s=round(elapsed, 3),
        prompt_tokens=float(result.timings.prompt_tokens),
        completion_tokens=float(result.timings.completion_tokens),
    )
    return _row(
        id=item.id,
        article=ids[0],
        gold_ids=ids,
        answer=text,
        fallback=result.fallback,
        sentences=[sentence_json(s, scores=False) for s in result.sentences],
        metrics=m,
        timings={"total_ms": round(elapsed * 1000, 1), "llm_calls": result.calls},
        cached=getattr(llm, "hits", 0) > hits_before,
    )


def run_item(
    item: EvalItem, *, corpora: Corpora, embedder: Embedder, llm: LLM | None, options: EvalOptions = EvalOptions()
) -> dict:
    """Retrieve, answer and score one item: one row of results.jsonl."""
    t0 = time.perf_counter()
    hits_before = getattr(llm, "hits", 0)
    opened = corpora.get(item.corpus)
    if opened is not None:
        found = retrieve(item.question, library=opened, options=options.ask.retrieval)
        passages, hits, retrieval_ms = found.passages, found.hits, found.ms
    else:
        passages, hits, retrieval_ms = [], [], 0.0
    outcome = respond(item, passages, llm=llm, embedder=embedder, options=options)
    ranked = list(dict.fromkeys(h.chunk.article_id for h in hits))
    gold = resolve_gold(item.gold_articles, opened.store) if opened and item.gold_articles else None
    in_corpus = None
    if item.answers and opened is not None:
        needles = [f" {metrics.normalise(a)} " for a in item.answers if metrics.normalise(a)]
        in_corpus = any(n in text for text in corpora.texts(item.corpus) for n in needles)
    scores = score(item, outcome, ranked=ranked, gold=gold, in_corpus=in_corpus, hit_k=options.hit_k)
    elapsed = (time.perf_counter() - t0) * 1000
    result = outcome.answer
    scores["latency_s"] = round(elapsed / 1000, 3)
    scores["context_tokens"] = float(sum(count_tokens(p.text) for p in passages))
    scores["prompt_tokens"] = float(outcome.prompt_tokens)
    scores["completion_tokens"] = float(outcome.completion_tokens)
    return _row(
        id=item.id,
        question=item.question,
        answers=list(item.answers),
        choices=list(item.choices),
        answer_index=item.answer_index,
        unanswerable=item.unanswerable,
        retrieved=ranked[:10],
        gold_ids=sorted(gold) if gold else [],
        context=[
            {"n": p.number, "article_id": p.article_id, "title": p.title, "start": p.start, "end": p.end}
            for p in passages
        ],
        answer=result.text,
        refused=result.refused,
        reason=result.reason,
        dropped=[sentence_json(s) for s in result.dropped],
        checks=result.checks,
        judge=result.judge,
        raw=outcome.raw,
        short=outcome.short,
        choice=outcome.choice,
        choice_reply=outcome.choice_reply,
        choice_source=outcome.choice_source,
        sentences=[sentence_json(s, scores=False) for s in result.sentences],
        metrics=scores,
        timings={
            "retrieval_ms": round(retrieval_ms, 1),
            "total_ms": round(elapsed, 1),
            "llm_calls": outcome.calls,
            "call_ms": outcome.call_ms,
        },
        cached=getattr(llm, "hits", 0) > hits_before,  # some replies came from the LLM cache
    )


def evaluate(
    evalset: EvalSet,
    *,
    corpora: Corpora,
    embedder: Embedder,
    llm: LLM | None,
    options: EvalOptions = EvalOptions(),
    skip: set[str] | frozenset[str] = frozenset(),
    limit: int | None = None,
) -> Iterator[dict]:
    """Rows for the items not in `skip`, in gold-set order (the first `limit` items of the set)."""
    for item in evalset.items[:limit]:
        if item.id in skip:
            continue
        if item.summary and not item.question:
            yield run_summary_item(item, corpora=corpora, embedder=embedder, llm=llm, options=options)
        else:
            yield run_item(item, corpora=corpora, embedder=embedder, llm=llm, options=options)
