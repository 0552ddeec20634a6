"""Evaluate: run the real pipeline (retrieve -> answer -> verify) over a gold set and score it.

Per item: retrieval (answer recall in the context actually sent, gold-article hit@k, MRR),
the cited answer (citation validity, support rate, refusal), a short answer for exact match
and F1, and for multiple-choice items the model's choice. With a model, the short answer
and the choice are follow-up turns of the answer's own conversation, so the engine reuses
its cached prompt (the passages are read once); the short answer is asked before the
choices are shown. The extractive backend picks the choice best supported by the context.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np

from . import metrics
from ..answer import AskOptions, answer, build_messages
from ..chunking import sentence_spans
from ..verify import is_refusal, split_answer
from ..embeddings import Embedder
from ..errors import QAError
from ..ingest.pipeline import STORE_FORMAT, ingest, open_index
from ..search.bm25 import LexicalIndex, terms
from ..llm import LLM, Extractive, Messages
from ..prompts import REFUSAL, render as render_prompt
from ..records import Answer, Passage
from ..search.retrieval import retrieve
from ..store import Store
from ..tokens import count_tokens

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


# ---- corpora -----------------------------------------------------------------------------

def files_digest(paths: Sequence[Path], *salt: object) -> str:
    """A content hash of files (names and bytes) plus settings that change what is stored."""
    digest = hashlib.sha256(json.dumps([str(s) for s in salt]).encode())
    for path in sorted(paths, key=lambda p: (p.name, str(p))):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


class Corpora:
    """Each corpus of an eval set in its own isolated collection under `home`, ingested once.

    The collection name is a hash of the files' contents and the chunking settings, so a
    changed corpus gets a fresh collection and an unchanged one is reused across runs.
    """

    def __init__(self, evalset: EvalSet, *, home: Path, embedder: Embedder, chunk_tokens: int = 300,
                 overlap: int = 45, default: tuple[Store, LexicalIndex] | None = None,
                 on_ingest: Callable[[str, int], None] | None = None):
        self.evalset, self.home, self.embedder = evalset, home, embedder
        self.chunk_tokens, self.overlap = chunk_tokens, overlap
        self.default = default
        self.on_ingest = on_ingest or (lambda name, files: None)
        self._open: dict[str, tuple[Store, LexicalIndex]] = {}
        self._texts: dict[str, list[str]] = {}

    def get(self, key: str) -> tuple[Store, LexicalIndex] | None:
        if key in self._open:
            return self._open[key]
        files = self.evalset.corpora.get(key)
        if files is None:
            return self.default if key == "" else None
        if not files:
            return None  # an item with no documents at all
        name = "eval-" + files_digest(files, self.embedder.name, self.chunk_tokens, self.overlap, STORE_FORMAT)
        store = Store(self.home, name, self.embedder.name, self.embedder.dimension)
        done = self.home / f"{name}.ingested"
        if not done.is_file():
            if key == "":
                self.on_ingest(name, len(files))
            index = LexicalIndex(self.home / "bm25" / name)
            index.load()
            report = ingest([str(f) for f in files], store=store, embedder=self.embedder, index=index,
                            chunk_tokens=self.chunk_tokens, overlap=self.overlap)
            if report.interrupted:
                raise KeyboardInterrupt
            done.write_text(json.dumps({"articles": len(store.articles()), "failed": len(report.failed)}))
        if key != "":  # items' own corpora: keep only the shared one open
            for other in [k for k in self._open if k != ""]:
                self._open.pop(other)[0].close()
                self._texts.pop(other, None)
        self._open[key] = (store, open_index(store))
        return self._open[key]

    def prepare(self) -> None:
        """Ingest the shared corpus now, so its one-time cost is not counted in an item's latency."""
        if "" in self.evalset.corpora:
            self.get("")

    def texts(self, key: str) -> list[str]:
        """Normalised texts of every article of a corpus (for 'is the answer anywhere in it')."""
        if key not in self._texts:
            opened = self.get(key)
            self._texts[key] = ([f" {metrics.normalise(a.article.text)} " for a in opened[0].articles()]
                                if opened else [])
        return self._texts[key]

    def close(self) -> None:
        for store, _ in self._open.values():
            if self.default is None or store is not self.default[0]:
                store.close()
        self._open.clear()


def resolve_gold(refs: Sequence[str], store: Store) -> set[str]:
    """Stored article ids named by gold references: an id (or a prefix of 8+), a url or a file name."""
    if not refs:
        return set()
    found: set[str] = set()
    for stored in store.articles():
        a = stored.article
        origin = re.sub(r"(#\d+|\[\d+\])+$", "", a.origin)
        names = {a.id, a.url, origin, Path(origin).name} - {""}
        for ref in refs:
            if ref in names or (len(ref) >= 8 and a.id.startswith(ref)) or (origin and origin.endswith("/" + ref)):
                found.add(a.id)
    return found


# ---- the model's follow-up turns -------------------------------------------------------------

class Recorder:
    """Wraps an LLM: remembers the last reply and adds up usage over an item's calls."""

    def __init__(self, llm: LLM):
        self.inner = llm
        self.name = llm.name
        self.last_reply = ""
        self.prompt_tokens = self.completion_tokens = self.calls = 0
        self.call_ms: list[float] = []  # wall time of each call: the follow-ups should be cheap

    @property
    def usage(self):
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
    text = " ".join(re.sub(r"\[\s*\d+(?:\s*[,;]\s*\d+)*\s*\]", " ", text).split())
    text = re.sub(r"^(short answer|answer)\s*:\s*", "", text, flags=re.I)
    return text.strip().rstrip(".").strip()


def choose_by_support(question: str, choices: Sequence[str], passages: Sequence[Passage],
                      embedder: Embedder) -> int | None:
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
        [len(qterms & set(terms(s))) / max(1, len(qterms)) for s in sentences])
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


def respond(item: EvalItem, passages: Sequence[Passage], *, llm: LLM, embedder: Embedder,
            options: EvalOptions) -> Outcome:
    """The cited answer, then (with a model) a short answer and, for choices, a choice."""
    if isinstance(llm, Extractive):
        result = answer(item.question, passages, llm=llm, embedder=embedder, options=options.ask)
        short = "" if result.refused else _clean_short(" ".join(s.text for s in result.sentences[:1]))
        out = Outcome(result, short=short)
    else:
        recorder = llm if isinstance(llm, Recorder) else Recorder(llm)
        recorder.last_reply = ""
        ask = replace(options.ask, today=item.date or options.ask.today)
        result = answer(item.question, passages, llm=recorder, embedder=embedder, options=ask)
        out = Outcome(result, raw=recorder.last_reply)
        if passages:
            talk: Messages = build_messages(item.question, passages, ask.max_sentences, ask.today)
            talk = talk + [{"role": "assistant", "content": out.raw or REFUSAL}]
            if not result.refused:
                talk = talk + [{"role": "user", "content": render_prompt("short_user", question=item.question,
                                                                   refusal=REFUSAL)}]
                reply = recorder.complete(talk, max_tokens=options.short_tokens, temperature=options.ask.temperature)
                talk = talk + [{"role": "assistant", "content": reply}]
                out.short = "" if is_refusal(reply) else _clean_short(reply)
            if item.choices:
                talk = talk + [{"role": "user", "content": render_prompt("choose_user", question=item.question,
                                                                   choices=lettered(item.choices))}]
                out.choice_reply = recorder.complete(talk, max_tokens=options.choose_tokens,
                                                     temperature=options.ask.temperature)
                out.choice = metrics.parse_choice(out.choice_reply, item.choices)
                out.choice_source = "model" if out.choice is not None else ""
    if item.choices and out.choice is None and passages:
        out.choice = choose_by_support(item.question, item.choices, passages, embedder)
        out.choice_source = "support"
    return out


# ---- one item ------------------------------------------------------------------------------

def score(item: EvalItem, outcome: Outcome, *, ranked: Sequence[str], gold: set[str] | None,
          in_corpus: bool | None, hit_k: int = HIT_K) -> dict[str, float]:
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
    cited = [n for _, numbers in split_answer(outcome.raw) for n in numbers] if outcome.raw else \
        [n for s in result.sentences for n in s.citations]
    validity = metrics.citation_validity(cited, len(passages))
    if validity is not None:
        m["citation_validity"] = validity
    if not result.refused and result.sentences:
        m["support_rate"] = _support_rate(result.sentences, result.fallback)
    return m


def _support_rate(sentences: Sequence, fallback: str) -> float:
    """Share of sentences supported by their citations; 0 when none was and the text fell back to evidence."""
    return 0.0 if fallback else sum(s.supported for s in sentences) / len(sentences)


def summary_scores(text: str, references: str) -> dict[str, float]:
    """ROUGE-1/2/L F of a summary: the best over its references (separated by blank lines)."""
    refs = [r for r in references.split("\n\n") if r.strip()]
    return {"rouge1": max(metrics.rouge_n(text, r, 1) for r in refs),
            "rouge2": max(metrics.rouge_n(text, r, 2) for r in refs),
            "rougeL": max(metrics.rouge_l(text, r) for r in refs),
            "summary_words": float(len(text.split()))}


def run_summary_item(item: EvalItem, *, corpora: "Corpora", embedder: Embedder, llm: LLM,
                     options: EvalOptions) -> dict:
    """Summarise the item's article (qa/summarise.py) and score it against the references."""
    from ..summarise import SummaryOptions, summarise

    t0 = time.perf_counter()
    hits_before = getattr(llm, "hits", 0)
    opened = corpora.get(item.corpus)
    ids = sorted(resolve_gold(item.gold_articles, opened[0])) if opened else []
    if len(ids) != 1:
        raise QAError(f"Summary item {item.id}: {item.gold_articles} names {len(ids)} stored articles, not one; "
                      "check the article name and --corpus.")
    article = opened[0].find_by_id(ids[0]).article
    recorder = Recorder(llm) if not isinstance(llm, Extractive) else llm
    result = summarise(article, llm=recorder, embedder=embedder,
                       options=SummaryOptions(style="paragraph", words=options.summary_words,
                                              budget=options.ask.budget, temperature=options.ask.temperature))
    text = result.text
    m = summary_scores(text, item.summary)
    if result.sentences:
        m["support_rate"] = _support_rate(result.sentences, result.fallback)
    elapsed = time.perf_counter() - t0
    tokens = recorder if isinstance(recorder, Recorder) else None
    m.update(latency_s=round(elapsed, 3), prompt_tokens=float(tokens.prompt_tokens if tokens else 0),
             completion_tokens=float(tokens.completion_tokens if tokens else 0))
    return {"id": item.id, "question": "", "article": ids[0], "answers": [], "choices": [], "answer_index": None,
            "unanswerable": False, "retrieved": [], "gold_ids": ids, "context": [], "answer": text,
            "refused": False, "fallback": result.fallback, "raw": "", "short": "", "choice": None,
            "choice_reply": "", "choice_source": "",
            "sentences": [{"text": s.text, "citations": list(s.citations), "supported": s.supported}
                          for s in result.sentences],
            "metrics": m, "timings": {"total_ms": round(elapsed * 1000, 1), "llm_calls": result.calls},
            "cached": getattr(llm, "hits", 0) > hits_before}


def run_item(item: EvalItem, *, corpora: Corpora, embedder: Embedder, llm: LLM,
             options: EvalOptions = EvalOptions()) -> dict:
    """Retrieve, answer and score one item: one row of results.jsonl."""
    t0 = time.perf_counter()
    hits_before = getattr(llm, "hits", 0)
    opened = corpora.get(item.corpus)
    if opened is not None:
        store, index = opened
        o = options.ask
        found = retrieve(item.question, store=store, embedder=embedder, index=index, budget=o.budget, k=o.k,
                         per_article=o.per_article, filters=o.filters, mode=o.mode)
        passages, hits, retrieval_ms = found.passages, found.hits, found.ms
    else:
        passages, hits, retrieval_ms = [], [], 0.0
    recorder = Recorder(llm) if not isinstance(llm, Extractive) else llm
    outcome = respond(item, passages, llm=recorder, embedder=embedder, options=options)
    ranked = list(dict.fromkeys(h.chunk.article_id for h in hits))
    gold = resolve_gold(item.gold_articles, opened[0]) if opened and item.gold_articles else None
    in_corpus = None
    if item.answers and opened is not None:
        needles = [f" {metrics.normalise(a)} " for a in item.answers if metrics.normalise(a)]
        in_corpus = any(n in text for text in corpora.texts(item.corpus) for n in needles)
    scores = score(item, outcome, ranked=ranked, gold=gold, in_corpus=in_corpus, hit_k=options.hit_k)
    elapsed = (time.perf_counter() - t0) * 1000
    result = outcome.answer
    tokens = recorder if isinstance(recorder, Recorder) else None
    scores["latency_s"] = round(elapsed / 1000, 3)
    scores["context_tokens"] = float(sum(count_tokens(p.text) for p in passages))
    scores["prompt_tokens"] = float(tokens.prompt_tokens if tokens else 0)
    scores["completion_tokens"] = float(tokens.completion_tokens if tokens else 0)
    return {
        "id": item.id, "question": item.question, "answers": list(item.answers), "choices": list(item.choices),
        "answer_index": item.answer_index, "unanswerable": item.unanswerable,
        "retrieved": ranked[:10], "gold_ids": sorted(gold) if gold else [],
        "context": [{"n": p.number, "article_id": p.article_id, "title": p.title, "start": p.start, "end": p.end}
                    for p in passages],
        "answer": result.text, "refused": result.refused, "fallback": result.fallback, "raw": outcome.raw,
        "short": outcome.short, "choice": outcome.choice, "choice_reply": outcome.choice_reply,
        "choice_source": outcome.choice_source,
        "sentences": [{"text": s.text, "citations": list(s.citations), "supported": s.supported}
                      for s in result.sentences],
        "metrics": scores,
        "timings": {"retrieval_ms": round(retrieval_ms, 1), "total_ms": round(elapsed, 1),
                    "llm_calls": tokens.calls if tokens else 0, "call_ms": tokens.call_ms if tokens else []},
        "cached": getattr(llm, "hits", 0) > hits_before,  # some replies came from the LLM cache
    }


def evaluate(evalset: EvalSet, *, corpora: Corpora, embedder: Embedder, llm: LLM,
             options: EvalOptions = EvalOptions(), skip: set[str] = frozenset(), limit: int | None = None
             ) -> Iterator[dict]:
    """Rows for the items not in `skip`, in gold-set order (the first `limit` items of the set)."""
    for item in evalset.items[:limit]:
        if item.id in skip:
            continue
        if item.summary and not item.question:
            yield run_summary_item(item, corpora=corpora, embedder=embedder, llm=llm, options=options)
        else:
            yield run_item(item, corpora=corpora, embedder=embedder, llm=llm, options=options)


# ---- aggregates ------------------------------------------------------------------------------

ORDER = ["mc", "em", "em_lenient", "f1", "answer_recall", "answer_in_corpus", "hit@1", f"hit@{HIT_K}", "mrr",
         "context_hit", "refusal", "false_refusal", "misled", "citation_validity", "support_rate",
         "rouge1", "rouge2", "rougeL", "summary_words",
         "latency_s", "context_tokens", "prompt_tokens", "completion_tokens"]
LABELS = {
    "mc": "multiple-choice accuracy", "em": "exact match (strict)", "em_lenient": "exact match (lenient)",
    "f1": "token F1", "answer_recall": "answer in the context sent", "answer_in_corpus": "answer anywhere in corpus",
    "hit@1": "gold article hit@1", f"hit@{HIT_K}": f"gold article hit@{HIT_K}", "mrr": "gold article MRR",
    "context_hit": "gold article in context", "refusal": "refusal accuracy (unanswerable)",
    "false_refusal": "refused although answerable", "misled": "gave the planted wrong answer",
    "citation_validity": "citation validity", "support_rate": "support rate", "rouge1": "ROUGE-1 F",
    "rouge2": "ROUGE-2 F", "rougeL": "ROUGE-L F", "summary_words": "summary length (words)",
    "latency_s": "latency per item (s)",
    "context_tokens": "context tokens per item", "prompt_tokens": "prompt tokens per item",
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
        mean, low, high = metrics.bootstrap(values, seed=seed)
        entry = {"mean": round(mean, 4), "low": round(low, 4), "high": round(high, 4), "n": len(values)}
        if name == "latency_s":
            entry.update(p50=round(metrics.percentile(values, 50), 3), p95=round(metrics.percentile(values, 95), 3))
        out[name] = entry
        if name == "mc":  # how often it chose right with and without the answer in its context
            for label, want in (("mc|in_context", 1.0), ("mc|not_in_context", 0.0)):
                part = [r["metrics"]["mc"] for r in rows if "mc" in r["metrics"]
                        and r["metrics"].get("answer_recall") == want]
                if part:
                    m, lo, hi = metrics.bootstrap(part, seed=seed)
                    out[label] = {"mean": round(m, 4), "low": round(lo, 4), "high": round(hi, 4), "n": len(part)}
    return out
