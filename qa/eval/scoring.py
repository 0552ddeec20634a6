"""Scores: every metric that applies to one item, and their aggregates over a run."""

from __future__ import annotations

from collections.abc import Sequence

from ..llm import EXTRACTIVE
from ..records import Answer
from ..verify import split_answer
from . import metrics
from .gold import HIT_K, EvalItem
from .respond import Outcome


def score(
    item: EvalItem,
    outcome: Outcome,
    *,
    ranked: Sequence[str],
    gold: set[str] | None,
    in_corpus: bool | None,
    hit_k: int = HIT_K,
) -> dict[str, float]:
    """Every metric that applies to the item (the others are left out, not zero)."""
    m: dict[str, float] = {}
    result, passages = outcome.answer, outcome.answer.passages
    context = " ".join(p.text for p in passages)
    if item.answers and not item.unanswerable:
        m["answer_recall"] = float(metrics.contains_span(context, item.answers))
        if in_corpus is not None:
            m["answer_in_corpus"] = float(in_corpus)
        m["em"] = metrics.exact_match(outcome.short, item.answers)
        m["em_lenient"] = metrics.lenient_match(outcome.short, item.answers)
        m["f1"] = metrics.token_f1(outcome.short, item.answers)
    if gold:
        m["hit@1"] = metrics.hit_at_k(ranked, gold, 1)
        m[f"hit@{hit_k}"] = metrics.hit_at_k(ranked, gold, hit_k)
        m["mrr"] = metrics.reciprocal_rank(ranked, gold)
        m["context_hit"] = float(any(p.article_id in gold for p in passages))
    if item.choices and item.answer_index is not None:
        m["mc"] = float(outcome.choice == item.answer_index)
    if item.unanswerable:
        m["refusal"] = float(result.refused)
    else:
        m["false_refusal"] = float(result.refused)
    if item.wrong_answers:
        said = outcome.short or result.text
        m["misled"] = float(not result.refused and metrics.contains_span(said, item.wrong_answers))
    cited = (
        [n for _, numbers in split_answer(outcome.raw) for n in numbers]
        if outcome.raw
        else [n for s in result.sentences for n in s.citations]
    )
    validity = metrics.citation_validity(cited, len(passages))
    if validity is not None:
        m["citation_validity"] = validity
    rate = support_rate(result)
    if rate is not None:
        m["support_rate"] = rate
    if not item.unanswerable and "answer_recall" in m:  # a refusal without the answer in context is right
        key = "refused_in_context" if m["answer_recall"] else "refused_not_in_context"
        m[key] = float(result.refused)
    return m


def support_rate(result: Answer) -> float | None:
    """Share of the sentences the model proposed that its cited passages state (qa/claims.py), counting
    the ones grounding dropped: what the model got right, not only what survived to be shown. None
    when it proposed none (it refused, or no model wrote the answer)."""
    if result.model == EXTRACTIVE or not result.proposed:
        return None
    return sum(s.supported for s in [*result.sentences, *result.dropped]) / result.proposed


def summary_scores(text: str, references: str) -> dict[str, float]:
    """ROUGE-1/2/L F of a summary: the best over its references (separated by blank lines)."""
    refs = [r for r in references.split("\n\n") if r.strip()]
    return {
        "rouge1": max(metrics.rouge_n(text, r, 1) for r in refs),
        "rouge2": max(metrics.rouge_n(text, r, 2) for r in refs),
        "rougeL": max(metrics.rouge_l(text, r) for r in refs),
        "summary_words": float(len(text.split())),
    }


ORDER = [
    "mc",
    "em",
    "em_lenient",
    "f1",
    "answer_recall",
    "answer_in_corpus",
    "hit@1",
    f"hit@{HIT_K}",
    "mrr",
    "context_hit",
    "refusal",
    "false_refusal",
    "refused_in_context",
    "refused_not_in_context",
    "misled",
    "citation_validity",
    "support_rate",
    "rouge1",
    "rouge2",
    "rougeL",
    "summary_words",
    "latency_s",
    "context_tokens",
    "prompt_tokens",
    "completion_tokens",
]
LABELS = {
    "mc": "multiple-choice accuracy",
    "em": "exact match (strict)",
    "em_lenient": "exact match (lenient)",
    "f1": "token F1",
    "answer_recall": "answer in the context sent",
    "answer_in_corpus": "answer anywhere in corpus",
    "hit@1": "gold article hit@1",
    f"hit@{HIT_K}": f"gold article hit@{HIT_K}",
    "mrr": "gold article MRR",
    "context_hit": "gold article in context",
    "refusal": "refusal accuracy (unanswerable)",
    "false_refusal": "refused although answerable",
    "refused_in_context": "refused, answer in the context (a loss)",
    "refused_not_in_context": "refused, answer not in the context (right)",
    "misled": "gave the planted wrong answer",
    "citation_validity": "citation validity",
    "support_rate": "support rate (model sentences stated by their passages)",
    "rouge1": "ROUGE-1 F",
    "rouge2": "ROUGE-2 F",
    "rougeL": "ROUGE-L F",
    "summary_words": "summary length (words)",
    "latency_s": "latency per item (s)",
    "context_tokens": "context tokens per item",
    "prompt_tokens": "prompt tokens per item",
    "completion_tokens": "completion tokens per item",
    "mc|in_context": "multiple choice, answer in context",
    "mc|not_in_context": "multiple choice, answer not in context",
}
TIMING = {"latency_s"}  # differs between runs; every other metric is deterministic


def aggregate(rows: Sequence[dict], *, seed: int = 0) -> dict[str, dict]:
    """Mean, 95% bootstrap interval and count of every metric over the rows that have it."""
    names = {k for r in rows for k in r["metrics"]}
    ordered = [n for n in ORDER if n in names] + sorted(names - set(ORDER))
    out: dict[str, dict] = {}
    for name in ordered:
        values = [r["metrics"][name] for r in rows if r["metrics"].get(name) is not None]
        interval = metrics.bootstrap(values, seed=seed)
        if interval is None:
            continue  # every row has it empty
        mean, low, high = interval
        entry = {"mean": round(mean, 4), "low": round(low, 4), "high": round(high, 4), "n": len(values)}
        if name == "latency_s":
            entry.update(
                p50=round(metrics.percentile(values, 50) or 0.0, 3), p95=round(metrics.percentile(values, 95) or 0.0, 3)
            )
        out[name] = entry
        if name == "mc":  # how often it chose right with and without the answer in its context
            for label, want in (("mc|in_context", 1.0), ("mc|not_in_context", 0.0)):
                part = [
                    r["metrics"]["mc"]
                    for r in rows
                    if "mc" in r["metrics"] and r["metrics"].get("answer_recall") == want
                ]
                part_interval = metrics.bootstrap(part, seed=seed)
                if part_interval is not None:
                    m, lo, hi = part_interval
                    out[label] = {"mean": round(m, 4), "low": round(lo, 4), "high": round(hi, 4), "n": len(part)}
    return out
