"""Citations verified by code (the verifier): the model proposes `[n]`, this module checks every one.

- a citation to a passage that was not given is removed;
- each sentence is checked against its cited passages by reading the claim (qa/claims.py: the
  passage must state its names, numbers, negation and content words) and flagged when it is not
  stated, with what is missing;
- a sentence its citations do not state but another passage does is given that passage, and
  every supported sentence carries where in its passage it is stated (the quote shown to a reader).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from .chunking import sentence_spans
from .claims import ClaimCheck, check_claim, content_stems, numbers
from .prompts import CITATION, REFUSAL
from .records import Passage, Sentence

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


def _evidence(sentence: str, passage: Passage) -> tuple[int, int]:
    """Where in the passage the sentence is stated: the run of passage sentences (one, or two
    neighbours) that holds most of its content words, as offsets in the passage text."""
    spans = sentence_spans(passage.text) or [(0, len(passage.text))]
    wanted = content_stems(sentence) | {f"#{n}" for n in numbers(sentence)}

    def held(a: int, b: int) -> int:
        piece = passage.text[a:b]
        return len(wanted & (content_stems(piece) | {f"#{n}" for n in numbers(piece)}))

    runs = [(a, b) for a, b in spans] + [(spans[i][0], spans[i + 1][1]) for i in range(len(spans) - 1)]
    # most content words held; among equals the shortest run (a single sentence over a pair)
    return max(runs, key=lambda r: (held(*r), -(r[1] - r[0])))


def _check(sentence: str, passages: Sequence[Passage], question: str = "") -> ClaimCheck:
    """The sentence against the passages together (a sentence may join facts of two of them)."""
    text = "\n".join(p.text for p in passages)
    context = "\n".join(f"{p.title} {p.date}" for p in passages)
    return check_claim(sentence, text, context, question)


def verify(text: str, passages: Sequence[Passage], question: str = "") -> list[Sentence]:
    """Check every sentence of model text against the passages it was given (qa/claims.py):
    a sentence is supported when the passages it cites state it, names, numbers, negation and
    content words; a citation to a passage not given is dropped; a sentence its own citations do
    not state but one other passage does gets that passage (`added_citation`). `question`: what was
    asked, whose words an answer may repeat (qa/claims.py)."""
    by_number = {p.number: p for p in passages}
    out: list[Sentence] = []
    for sentence, numbers_ in split_answer(text):
        valid = tuple(dict.fromkeys(n for n in numbers_ if n in by_number))  # drop invented ids, keep order
        checks = {n: _check(sentence, [by_number[n]], question) for n in by_number}
        stating = [n for n in valid if checks[n].stated]
        if stating:
            cited, added = tuple(stating), False
        elif valid and _check(sentence, [by_number[n] for n in valid], question).stated:
            cited, added = valid, False  # stated by the cited passages together
        else:
            others = [n for n in by_number if checks[n].stated]
            cited, added = (tuple(others[:1]), True) if others else ((), False)
        if cited:
            first = by_number[cited[0]]
            a, b = _evidence(sentence, first)
            check = _check(sentence, [by_number[n] for n in cited], question)
            out.append(Sentence(sentence, cited, True, check.coverage, added, evidence=(first.number, a, b)))
            continue
        # not stated: keep the citations the model gave (they are shown with the flag) and say what is missing
        nearest = min(valid or tuple(by_number) or (0,), key=lambda n: len(checks[n].missing) if n in checks else 0)
        check = checks.get(nearest, ClaimCheck(False, ("no passage",), 0.0))
        out.append(Sentence(sentence, valid, False, check.coverage, missing=check.missing))
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
