"""A gold set as data: its items, the files of its corpora, and the options a run uses."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..answer import AskOptions

HIT_K = 5


@dataclass(frozen=True)
class EvalItem:
    """One gold question. `corpus` names the item's own corpus ("" = the shared one)."""

    id: str
    question: str
    answers: tuple[str, ...] = ()
    choices: tuple[str, ...] = ()
    answer_index: int | None = None
    gold_articles: tuple[str, ...] = ()  # article ids, urls or file names
    unanswerable: bool = False
    summary: str = ""  # a reference summary (summary items)
    wrong_answers: tuple[str, ...] = ()  # answers planted by a counterfactual set
    corpus: str = ""
    date: str = ""  # ISO date the question was asked on, when the set says


@dataclass
class EvalSet:
    """Items plus the files of each corpus; no "" corpus means the user's own collection."""

    name: str
    format: str
    items: list[EvalItem]
    corpora: dict[str, list[Path]] = field(default_factory=dict)
    params: dict = field(default_factory=dict)  # adapter parameters, part of the settings hash
    data_hash: str = ""


@dataclass(frozen=True)
class EvalOptions:
    ask: AskOptions = AskOptions()
    short_tokens: int = 32
    choose_tokens: int = 12
    hit_k: int = HIT_K
    summary_words: int = 60  # summary items: one paragraph of about the references' length
