"""Citations verified by code (the verifier): the model proposes `[n]`, this module checks every one.

- a citation to a passage that was not given is removed;
- each sentence is scored against its cited passages (lexical overlap plus embedding
  similarity with the passage's best sentence, halved when it states a number or a name the
  passage does not contain) and flagged when unsupported;
- a supported sentence without a citation gets the passage that supports it best.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from .chunking import sentence_spans
from .embeddings import Embedder
from .prompts import CITATION, REFUSAL
from .records import Passage, Sentence
from .terms import STOPWORDS, terms

SUPPORT_THRESHOLD = 0.55
_TRAILING = re.compile(r"([.!?])((?:\s*\[\s*\d+\s*(?:[,;]\s*\d+\s*)*\])+)")
_REFUSAL_HINTS = (
    "i don't know",
    "i do not know",
    "do not say",
    "don't say",
    "not mentioned in the passages",
    "passages do not",
    "no information",
)


def split_answer(text: str) -> list[tuple[str, tuple[int, ...]]]:
    """Sentences of an answer with the citation numbers written in or right after each."""
    # "... long.[2] Next" -> "... long [2]. Next": markers after the full stop belong before it
    text = _TRAILING.sub(lambda m: m.group(2) + m.group(1), text.strip())
    out: list[tuple[str, tuple[int, ...]]] = []
    for a, b in sentence_spans(text):
        piece = text[a:b]
        numbers = tuple(int(n) for group in CITATION.findall(piece) for n in re.split(r"[,;]", group))
        clean = " ".join(CITATION.sub("", piece).split())
        clean = re.sub(r"\s+([.,;:!?])", r"\1", clean)
        if not re.search(r"\w", clean):  # a lone "[2]." after a sentence: attach it to that sentence
            if out and numbers:
                out[-1] = (out[-1][0], out[-1][1] + numbers)
            continue
        out.append((clean, numbers))
    return out


def is_refusal(text: str) -> bool:
    low = text.lower().replace("’", "'")
    return REFUSAL.lower() in low or any(h in low[:160] for h in _REFUSAL_HINTS)


_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")


def numbers_match(sentence: str, passage: str) -> bool:
    """Every number in the sentence occurs in the passage: figures are where small models invent."""
    have = {n.replace(",", "") for n in _NUMBER.findall(passage)}
    return all(n.replace(",", "") in have for n in _NUMBER.findall(sentence))


_FIRST_NAME = re.compile(r"(?:^|[.!?]\s+)([A-Z][\w-]*[’']s|[A-Z][\w’'-]*(?:\s+[A-Z][\w’'-]*)+)")
_NAME = re.compile(r"(?<=[^\s.!?\"“(])\s+([A-Z][\w’'-]*(?:\s+[A-Z][\w’'-]*)*)")


def names(text: str) -> set[str]:
    """Capitalised words that name something: any not at the start of a sentence, and a
    sentence's first word when it is possessive ("Meta's") or starts a run of capitals."""
    found = set()
    spans = [m.group(1) for m in _NAME.finditer(text)]
    spans += [m.group(1) for m in _FIRST_NAME.finditer(text)]
    for span in spans:
        for word in span.split():
            word = re.sub(r"[’']s$", "", word).lower()
            if len(word) > 1 and word not in STOPWORDS:
                found.add(word)
    return found


def key_terms_missing(claim: str, passage: str) -> float:
    """Share of the claim's names and numbers that the passage does not contain."""
    needed = names(claim) | {n.replace(",", "") for n in _NUMBER.findall(claim)}
    if not needed:
        return 0.0
    low = passage.lower().replace(",", "")
    have = {w for w in needed if re.search(r"(?<!\w)" + re.escape(w), low)}
    return 1 - len(have) / len(needed)


def _lexical_support(sentence: str, passage: str) -> float:
    words = set(terms(sentence))
    if not words:
        return 1.0
    have = set(terms(passage))
    return len(words & have) / len(words)


class SupportScorer:
    """Scores how well a passage supports a sentence: mean of lexical coverage and the best
    embedding similarity between the sentence and any sentence of the passage."""

    def __init__(self, passages: Sequence[Passage], embedder: Embedder | None):
        self.passages = {p.number: p for p in passages}
        self.embedder = embedder
        self._units: dict[int, np.ndarray] = {}
        if embedder is not None and passages:
            texts, owners = [], []
            for p in passages:
                for a, b in sentence_spans(p.text):
                    texts.append(p.text[a:b])
                    owners.append(p.number)
            vectors = embedder.embed(texts)
            for number in self.passages:
                self._units[number] = vectors[[i for i, o in enumerate(owners) if o == number]]

    def scores(self, sentence: str, numbers: Sequence[int]) -> dict[int, float]:
        sims: dict[int, float] = {}
        vector = self.embedder.embed([sentence])[0] if self.embedder is not None else None
        for n in numbers:
            text = self.passages[n].text
            lexical = _lexical_support(sentence, text)
            if vector is not None and len(self._units.get(n, [])):
                dense = float(np.max(self._units[n] @ vector))
                sims[n] = 0.5 * lexical + 0.5 * dense
            else:
                sims[n] = lexical
            if not numbers_match(sentence, text) or key_terms_missing(sentence, text) > 0:
                sims[n] *= 0.5  # a figure or a name the passage does not contain is not supported by it
        return sims


def verify(
    text: str, passages: Sequence[Passage], embedder: Embedder | None, threshold: float = SUPPORT_THRESHOLD
) -> list[Sentence]:
    """Check every sentence of a model answer against the passages it was given."""
    given = {p.number for p in passages}
    scorer = SupportScorer(passages, embedder)
    out: list[Sentence] = []
    for sentence, numbers in split_answer(text):
        valid = tuple(dict.fromkeys(n for n in numbers if n in given))  # drop invented ids, keep order
        if valid:
            scores = scorer.scores(sentence, valid)
            best = max(scores.values())
            kept = tuple(n for n in valid if scores[n] >= threshold) or valid
            out.append(Sentence(sentence, kept, best >= threshold, round(best, 3)))
        elif given:
            scores = scorer.scores(sentence, sorted(given))
            number = max(scores, key=scores.__getitem__)
            if scores[number] >= threshold:
                out.append(Sentence(sentence, (number,), True, round(scores[number], 3), added_citation=True))
            else:
                out.append(Sentence(sentence, (), False, round(scores[number], 3)))
        else:
            out.append(Sentence(sentence, (), False, 0.0))
    return out


def cited_text(sentences: Sequence[Sentence]) -> str:
    """The verified answer as text with its citation markers."""
    parts = []
    for s in sentences:
        marks = "".join(f"[{n}]" for n in s.citations)
        body = s.text
        if marks and body[-1:] in ".!?":
            parts.append(f"{body[:-1]} {marks}{body[-1]}")
        else:
            parts.append(f"{body} {marks}".rstrip())
    return " ".join(parts)
