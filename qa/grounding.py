"""Grounding: what of a model's answer may be shown, and when to say "I don't know" instead.

The model proposes; code decides, in this order (each step can only take away):
1. a reply that opens with a refusal is a refusal;
2. each sentence is checked against the passages it cites (qa/verify.py, qa/claims.py): a sentence
   they do not state is dropped, not shown with a warning (no verbatim evidence, no claim);
3. (off by default, `window`) a sentence's names and numbers (and the question's year) must be
   stated together, within `window` consecutive sentences of one cited passage (qa/claims.py
   `apart`): a passage that names a winner in one place and the year asked about in another does
   not say who won that year;
4. the question's own numbers must occur in the evidence left (text, title or date of the cited
   passages), and at least half of its names: passages about another year, event or person do
   not answer it, however well the answer built from them is worded;
5. an answer to "how many", "when" or "who" must give a number, a date or a name;
6. the model's own yes/no check, when the backend gives token probabilities: asked whether the
   evidence answers the question, a probability of "yes" below the calibrated threshold is a
   refusal (eval/calibrate.py sets the threshold on a set that no reported figure comes from).
What ran is listed in `checks`, so a reader knows which guarantees an answer carries (an
OpenAI-compatible server without log-probabilities skips step 6, and says so).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from .claims import WINDOW, apart, asks_for, gives, names, question_terms_missing
from .records import Passage, Sentence
from .verify import is_refusal, split_answer, verify

JUDGE_THRESHOLD = 0.5  # not calibrated yet: the check is off by default (AskOptions.judge)

Judge = Callable[[str, str], float | None]  # (question, evidence) -> P(yes), None when not available


@dataclass
class Grounded:
    """The outcome of the checks: the sentences shown, those dropped, and why an answer was refused."""

    sentences: list[Sentence] = field(default_factory=list)
    dropped: list[Sentence] = field(default_factory=list)
    refused: bool = False
    reason: str = ""
    checks: list[str] = field(default_factory=list)
    judge: float | None = None

    @property
    def proposed(self) -> int:
        """Sentences the model proposed (shown or dropped)."""
        return len(self.sentences) + len(self.dropped)


def _substantive(raw: str) -> str:
    """The reply without sentences that only say the passages do not tell (a model that answers and
    then adds "The articles do not say." has still answered)."""
    kept = []
    for sentence, numbers in split_answer(raw):
        if numbers or not is_refusal(sentence):
            marks = "".join(f"[{n}]" for n in numbers)
            end = sentence[-1:] if sentence[-1:] in ".!?" else ""
            kept.append(f"{sentence[: len(sentence) - len(end)]} {marks}{end}" if marks else sentence)
    return " ".join(kept)


def opens_with_refusal(raw: str) -> bool:
    parts = split_answer(raw)
    return not parts or (is_refusal(parts[0][0]) and not parts[0][1])


def evidence_text(sentences: Sequence[Sentence], passages: Sequence[Passage]) -> str:
    """The passages the sentences cite, with their titles and dates: what the question is checked against."""
    cited = {n for s in sentences for n in s.citations}
    return "\n".join(f"{p.title} ({p.date})\n{p.text}" for p in passages if p.number in cited)


def quotes(sentences: Sequence[Sentence], passages: Sequence[Passage]) -> str:
    """Where the passages state the shown sentences: the words a reader (and the model's check) reads."""
    by_number = {p.number: p for p in passages}
    out: list[str] = []
    for s in sentences:
        if s.evidence and s.evidence[0] in by_number:
            n, a, b = s.evidence
            piece = " ".join(by_number[n].text[a:b].split())
            if piece not in out:
                out.append(piece)
    return " ".join(out)


def _question_check(question: str, sentences: Sequence[Sentence], passages: Sequence[Passage], out: Grounded) -> None:
    out.checks.append("question terms")
    missing = question_terms_missing(question, evidence_text(sentences, passages))
    missing_numbers = [m for m in missing if m.startswith("#")]
    missing_names = [m for m in missing if not m.startswith("#")]
    if missing_numbers or (missing_names and len(missing_names) * 2 > len(names(question))):
        out.refused = True
        out.reason = "the passages it cites do not mention " + ", ".join(m.lstrip("#") for m in missing)


def _together(question: str, out: Grounded, passages: Sequence[Passage], window: int) -> None:
    """Step 3: sentences whose anchors no cited passage states together are dropped."""
    out.checks.append("stated together")
    by_number = {p.number: p for p in passages}
    kept: list[Sentence] = []
    for s in out.sentences:
        cited = [by_number[n] for n in s.citations if n in by_number]
        gaps = [apart(s.text, p.text, f"{p.title} ({p.date})", question, window) for p in cited]
        if not gaps or any(not g for g in gaps):
            kept.append(s)
        else:
            lacking = min(gaps, key=len)
            out.dropped.append(replace(s, supported=False, missing=tuple(f"apart:{m.lstrip('#')}" for m in lacking)))
    out.sentences = kept
    if not kept:
        out.refused = True
        out.reason = "the passages do not state the answer's names and numbers together"


def _type_check(question: str, sentences: Sequence[Sentence], out: Grounded) -> None:
    kind = asks_for(question)
    if not kind:
        return
    out.checks.append("answer type")
    if not any(gives(s.text, kind) for s in sentences):
        out.refused = True
        out.reason = f"the question asks for a {kind} and the answer the passages support gives none"


def ground_extract(question: str, sentences: Sequence[Sentence], passages: Sequence[Passage]) -> Grounded:
    """The no-model answer (sentences quoted from the passages) under the question check."""
    out = Grounded(sentences=list(sentences), checks=["quoted"])
    if not sentences:
        out.refused, out.reason = True, "no sentence of the passages is close enough to the question"
        return out
    _question_check(question, out.sentences, passages, out)
    return out


def ground(
    question: str,
    raw: str,
    passages: Sequence[Passage],
    *,
    judge: Judge | None = None,
    threshold: float = JUDGE_THRESHOLD,
    without_judge: str = "model check: not available",
    window: int = WINDOW,
) -> Grounded:
    """Apply the checks to a model's reply; the result says what to show."""
    out = Grounded(checks=["citations", "claims"])
    if opens_with_refusal(raw):
        out.refused, out.reason = True, "the model found no answer in the passages"
        return out
    sentences = verify(_substantive(raw), passages, question)
    out.sentences = [s for s in sentences if s.supported]
    out.dropped = [s for s in sentences if not s.supported]
    if not out.sentences:
        what = sorted({m for s in out.dropped for m in s.missing})[:6]
        out.refused = True
        out.reason = "no sentence of the model's answer is stated by the passages" + (
            f" (they lack: {', '.join(what)})" if what else ""
        )
        return out
    if window:
        _together(question, out, passages, window)
        if out.refused:
            return out
    _question_check(question, out.sentences, passages, out)
    if out.refused:
        return out
    _type_check(question, out.sentences, out)
    if out.refused:
        return out
    if judge is None:
        out.checks.append(without_judge)
        return out
    p = judge(question, quotes(out.sentences, passages))
    if p is None:
        out.checks.append("model check: no probabilities from the server")
        return out
    out.judge = round(p, 3)
    out.checks.append(f"model check p={p:.2f}")
    if p < threshold:
        out.refused = True
        out.reason = f"the model's own check doubts that the passages answer the question (p={p:.2f})"
    return out
