"""Evaluation metrics: plain functions of plain values, each checked on hand-made cases.

Answers: SQuAD-style normalisation (lower case, no punctuation, no articles a/an/the,
single spaces), exact match (strict, and lenient: a gold answer inside a short prediction
as a whole-word span), token F1. Multiple choice: the model's reply parsed as a letter,
a number or the text of a choice. Retrieval: answer recall in the context, hit@k, MRR.
Summaries: ROUGE-1/2/L F-measures. Aggregates: means with seeded bootstrap intervals.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Iterable, Sequence

import numpy as np

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = set(string.punctuation) | set("‘’“”–—…«»")
LENIENT_MAX_WORDS = 10  # a "short answer": longer predictions must match exactly


def normalise(text: str) -> str:
    """SQuAD normalisation: lower case, punctuation removed, articles removed, spaces collapsed."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCT)
    return " ".join(_ARTICLES.sub(" ", text).split())


def answer_tokens(text: str) -> list[str]:
    return normalise(text).split()


def exact_match(prediction: str, golds: Sequence[str]) -> float:
    """1.0 when the normalised prediction equals one normalised gold answer."""
    pred = normalise(prediction)
    return float(any(pred == normalise(g) for g in golds if normalise(g)))


def contains_span(text: str, golds: Sequence[str]) -> bool:
    """A normalised gold answer occurs in the normalised text as a run of whole words."""
    padded = f" {normalise(text)} "
    return any(f" {g} " in padded for g in (normalise(x) for x in golds) if g)


def lenient_match(prediction: str, golds: Sequence[str], max_words: int = LENIENT_MAX_WORDS) -> float:
    """Exact match, or a gold answer as a whole-word span of a prediction of at most `max_words` words."""
    if exact_match(prediction, golds):
        return 1.0
    return float(0 < len(answer_tokens(prediction)) <= max_words and contains_span(prediction, golds))


def token_f1(prediction: str, golds: Sequence[str]) -> float:
    """SQuAD token F1, the best over the gold answers."""
    pred = answer_tokens(prediction)
    best = 0.0
    for gold in golds:
        ref = answer_tokens(gold)
        if not ref and not pred:
            best = max(best, 1.0)
            continue
        same = sum((Counter(pred) & Counter(ref)).values())
        if same == 0:
            continue
        precision, recall = same / len(pred), same / len(ref)
        best = max(best, 2 * precision * recall / (precision + recall))
    return best


# ---- multiple choice --------------------------------------------------------------------

LETTERS = "ABCDEFGHIJ"
_CITATION = re.compile(r"\[\s*\d+\s*(?:[,;]\s*\d+\s*)*\]")
_LEAD = re.compile(
    r"^\W*(?:(?:the\s+)?(?:correct\s+)?(?:answer|choice|option)\s*(?:is|:)?\s*)?"
    r"\(?([A-J])(?:[).:\]]|$)",
    re.I,
)
_NAMED = re.compile(r"\b(?:answer|choice|option)\s*(?:is|would be|:)?\s*\(?([A-J])\)?(?![\w'])", re.I)
_NUMBER = re.compile(r"^\W*(?:(?:answer|choice|option)\s*(?:is|:)?\s*)?\(?(\d{1,2})\)?\W*$", re.I)
_LAST = re.compile(r"(?<![\w'])\(?([A-J])\)?[.!]?$")  # "... so it is B." (capital letters only)


def parse_choice(reply: str, choices: Sequence[str]) -> int | None:
    """The 0-based choice a reply names: a letter ("B", "(b)", "Answer: B"), a number ("2"),
    or the text of exactly one choice; None when it names none.

    Order: the whole reply is a choice's text (so "840" is not read as a number); a leading
    letter; "answer/option/choice X"; a lone number; the earliest choice text in the reply
    (a choice contained in another matching choice yields to it); a capital letter at the end;
    in a short reply, the one choice sharing the most of its words with it.
    """
    n = len(choices)
    text = " ".join(_CITATION.sub(" ", reply).replace("*", " ").split())
    if not text or n == 0:
        return None
    whole = normalise(text)
    norm = [normalise(c) for c in choices]
    for i, choice in enumerate(norm):
        if whole and whole == choice:
            return i
    for pattern, search in ((_LEAD, False), (_NAMED, True)):
        m = pattern.search(text) if search else pattern.match(text)
        if m and LETTERS.index(m.group(1).upper()) < n:
            return LETTERS.index(m.group(1).upper())
    m = _NUMBER.match(text)
    if m and 1 <= int(m.group(1)) <= n:
        return int(m.group(1)) - 1
    padded = f" {whole} "
    found = {i: padded.find(f" {c} ") for i, c in enumerate(norm) if c}
    found = {i: pos for i, pos in found.items() if pos >= 0}
    found = {i: pos for i, pos in found.items() if not any(j != i and norm[i] in norm[j] for j in found)}
    if found:
        return min(found, key=lambda i: (found[i], i))
    m = _LAST.search(text)
    if m and LETTERS.index(m.group(1)) < n:
        return LETTERS.index(m.group(1))
    words = set(whole.split())
    if len(words) <= 8:  # a short reply naming part of one choice only ("Bengals")
        shared = [len(words & set(c.split())) / max(1, len(c.split())) for c in norm]
        best = max(shared)
        if best > 0 and shared.count(best) == 1:
            return shared.index(best)
    return None


# ---- retrieval ----------------------------------------------------------------------------


def hit_at_k(ranked: Sequence[str], gold: Iterable[str], k: int) -> float:
    gold = set(gold)
    return float(any(r in gold for r in ranked[:k]))


def reciprocal_rank(ranked: Sequence[str], gold: Iterable[str]) -> float:
    gold = set(gold)
    for rank, r in enumerate(ranked, 1):
        if r in gold:
            return 1.0 / rank
    return 0.0


def citation_validity(cited: Sequence[int], given: int) -> float | None:
    """Share of citation markers that point at a passage that was given (1..given); None if none."""
    if not cited:
        return None
    return sum(1 for n in cited if 1 <= n <= given) / len(cited)


# ---- summaries ----------------------------------------------------------------------------


def _rouge_tokens(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


def _prf(overlap: int, predicted: int, reference: int) -> float:
    if overlap == 0:
        return 0.0
    p, r = overlap / predicted, overlap / reference
    return 2 * p * r / (p + r)


def rouge_n(prediction: str, reference: str, n: int) -> float:
    """ROUGE-N F-measure over lower-cased alphanumeric tokens (no stemming)."""

    def grams(tokens: list[str]) -> Counter:
        return Counter(tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))

    pred, ref = grams(_rouge_tokens(prediction)), grams(_rouge_tokens(reference))
    return _prf(sum((pred & ref).values()), sum(pred.values()), sum(ref.values()))


def rouge_l(prediction: str, reference: str) -> float:
    """ROUGE-L F-measure: longest common subsequence of tokens."""
    a, b = _rouge_tokens(prediction), _rouge_tokens(reference)
    if not a or not b:
        return 0.0
    row = [0] * (len(b) + 1)
    for x in a:
        prev = 0
        for j, y in enumerate(b, 1):
            keep = row[j]
            row[j] = prev + 1 if x == y else max(row[j], row[j - 1])
            prev = keep
    return _prf(row[-1], len(a), len(b))


# ---- aggregates ---------------------------------------------------------------------------

BOOTSTRAP_RESAMPLES = 1000


def bootstrap(
    values: Sequence[float], *, seed: int = 0, resamples: int = BOOTSTRAP_RESAMPLES, level: float = 0.95
) -> tuple[float, float, float] | None:
    """(mean, low, high): the mean and its percentile bootstrap interval; seeded, so repeatable."""
    data = np.asarray([v for v in values if v is not None], dtype=float)
    if data.size == 0:
        return None
    mean = float(data.mean())
    if data.size == 1:
        return mean, mean, mean
    rng = np.random.default_rng(seed)
    means = data[rng.integers(0, data.size, size=(resamples, data.size))].mean(axis=1)
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return mean, float(low), float(high)


def paired_bootstrap(
    before: Sequence[float], after: Sequence[float], *, seed: int = 0, resamples: int = BOOTSTRAP_RESAMPLES
) -> tuple[float, float, float] | None:
    """Mean of after - before over paired items, with its bootstrap interval."""
    if len(before) != len(after):
        raise ValueError("paired_bootstrap needs two lists of the same items")
    return bootstrap([b - a for a, b in zip(before, after, strict=True)], seed=seed, resamples=resamples)


def percentile(values: Sequence[float], q: float) -> float | None:
    data = [v for v in values if v is not None]
    return float(np.percentile(data, q)) if data else None
