"""Adapters (`qa eval --format`): read a gold set in its public format as EvalItems plus the
files of the corpora they run over.

- `gold`: our JSON-lines format (eval/README.md), over `--corpus` paths or the user's collection.
- `realtimeqa`: `*_qa.jsonl` questions, `*_gcs.jsonl` search results. `pool`: every article of
  the weeks in one collection; `own`: each question over its own search results only (none:
  unanswerable). `evidence` and `question_url` give the answer away and are never read.
- `rgb`: RGB `en*.json`. `noise` (ratio 0..0.8 of `negative` among `--passages` documents,
  the rest `positive`), `rejection` (`negative` only: the right reply is a refusal),
  `counterfactual` (`positive_wrong`: the planted `fakeanswer` is tracked).
- `squad`: the SQuAD sample (`queries.json` + `ground_truth.json`), paragraphs as articles.
- `summaries`: reference summaries of articles: the news-summary set (`writer_summaries.json`,
  several references per article) or JSON lines `{article, summary}` naming articles of `--corpus`.

Synthesised corpora are written as JSON lines into `workspace` and ingested like any file.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ..errors import QAError, UsageError
from ..ingest.articles import make_article, normalise_date
from .gold import EvalItem, EvalSet

FORMATS = ("gold", "realtimeqa", "rgb", "squad", "summaries")
MODES = {
    "gold": ("pool",),
    "realtimeqa": ("pool", "own"),
    "rgb": ("noise", "rejection", "counterfactual"),
    "squad": ("pool", "own"),
    "summaries": ("pool",),
}


def _read_json_lines(path: Path) -> Iterable[tuple[int, Any]]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise QAError(f"Cannot read {path} ({exc}); check the path.")
    for n, line in enumerate(lines, 1):
        if line.strip():
            try:
                yield n, json.loads(line)
            except json.JSONDecodeError as exc:
                raise QAError(f"{path}:{n} is not valid JSON ({exc.msg}); one JSON object per line is expected.")


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise QAError(f"Cannot read {path} ({exc}); check the path.")
    except json.JSONDecodeError as exc:
        raise QAError(f"{path} is not valid JSON (line {exc.lineno}: {exc.msg}).")


def _hash(*parts: object) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _write_records(path: Path, records: list[dict]) -> Path:
    """Write a synthesised corpus file once (same content, same file: collections are reused)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    body = "".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in records)
    if not path.is_file() or path.read_text(encoding="utf-8") != body:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(body, encoding="utf-8")
        tmp.replace(path)
    return path


def _strings(value: object, what: str, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise QAError(f"{where}: {what!r} must be a list of strings.")


def _date(value: object, where: str) -> str:
    if value in (None, ""):
        return ""
    date = normalise_date(value)
    if not date:
        raise QAError(f"{where}: 'date' must be a date like 2024-02-26, not {value!r}.")
    return date


# ---- gold ------------------------------------------------------------------------------------


def load_gold(path: Path, corpus: list[str]) -> EvalSet:
    """Our format: one object per line with id, question, answers, and optional choices +
    answer_index, gold_articles, unanswerable, summary."""
    items, seen = [], set()
    for n, row in _read_json_lines(path):
        where = f"{path}:{n}"
        if (
            not isinstance(row, dict)
            or not isinstance(row.get("question", ""), str)
            or not (str(row.get("question", "")).strip() or row.get("summary"))
        ):
            raise QAError(f"{where}: each line needs a 'question' (or a 'summary'), and an 'id'; see eval/README.md.")
        item_id = str(row.get("id") or f"line{n}")
        if item_id in seen:
            raise QAError(f"{where}: the id {item_id!r} is used twice; ids must be unique.")
        seen.add(item_id)
        choices = _strings(row.get("choices"), "choices", where)
        index = row.get("answer_index")
        if index is not None and (not isinstance(index, int) or not 0 <= index < len(choices)):
            raise QAError(f"{where}: 'answer_index' must be a 0-based index into 'choices'.")
        answers = _strings(row.get("answers"), "answers", where)
        if not answers and index is not None:
            answers = (choices[index],)
        unanswerable = bool(row.get("unanswerable", False))
        if not answers and not unanswerable and not row.get("summary"):
            raise QAError(f"{where}: give 'answers', or mark the question \"unanswerable\": true.")
        items.append(
            EvalItem(
                item_id,
                str(row.get("question", "")).strip(),
                answers,
                choices,
                index,
                _strings(row.get("gold_articles"), "gold_articles", where),
                unanswerable,
                str(row.get("summary") or ""),
                _strings(row.get("wrong_answers"), "wrong_answers", where),
                date=_date(row.get("date"), where),
            )
        )
    if not items:
        raise QAError(f"{path} holds no questions.")
    corpora: dict[str, list[Path]] = {}
    if corpus:
        from ..ingest.loaders import expand_paths

        files, problems = expand_paths(corpus)
        if problems:
            raise QAError(f"--corpus: {problems[0].origin}: {problems[0].reason}.")
        corpora[""] = files
    return EvalSet(path.stem, "gold", items, corpora, {}, _hash(path.read_bytes().decode("utf-8", "replace")))


# ---- RealTimeQA ---------------------------------------------------------------------------------

_RESULT_FIELDS = ("url", "title", "text", "authors", "publish_date")


def load_realtimeqa(path: Path, mode: str, workspace: Path) -> EvalSet:
    qa_files = [path] if path.is_file() else sorted(p for p in path.glob("*_qa.jsonl"))
    if not qa_files:
        raise QAError(f"No RealTimeQA *_qa.jsonl file in {path}.")
    items: list[EvalItem] = []
    corpora: dict[str, list[Path]] = {}
    pool: list[Path] = []
    for qa_file in qa_files:
        gcs = qa_file.with_name(qa_file.name.replace("_qa.jsonl", "_gcs.jsonl"))
        results: dict[str, list[dict]] = {}
        if gcs.is_file():
            pool.append(gcs)
            for _, row in _read_json_lines(gcs):
                # only the article fields: nothing else of the record reaches the system
                results[str(row.get("question_id"))] = [
                    {k: r.get(k) for k in _RESULT_FIELDS if r.get(k)}
                    for r in row.get("search_result") or []
                    if isinstance(r, dict)
                ]
        for _, row in _read_json_lines(qa_file):
            # question_sentence, choices and answer only: `evidence` and `question_url` give it away
            qid = str(row["question_id"])
            choices = tuple(str(c) for c in row["choices"])
            index = int(row["answer"][0]) if row.get("answer") else None
            answers = (choices[index],) if index is not None else ()
            own = results.get(qid, [])
            if mode == "own":
                corpora[qid] = [_write_records(workspace / "realtimeqa" / f"{qid}.jsonl", own)] if own else []
            items.append(
                EvalItem(
                    qid,
                    str(row["question_sentence"]).strip(),
                    answers,
                    choices,
                    index,
                    unanswerable=mode == "own" and not own,
                    corpus=qid if mode == "own" else "",
                    date=normalise_date(row.get("question_date")),
                )
            )
    if mode == "pool":
        if not pool:
            raise QAError(f"No *_gcs.jsonl search results next to the questions in {path}: the pool is empty.")
        corpora[""] = pool
    return EvalSet(
        path.name if path.is_dir() else path.stem,
        "realtimeqa",
        items,
        corpora,
        {"mode": mode},
        _hash([f.read_text() for f in qa_files], [p.name for p in pool]),
    )


# ---- RGB -------------------------------------------------------------------------------------------


def _rgb_answers(answer: object) -> tuple[str, ...]:
    """RGB answers: a string, a list of alternatives, or a list of lists (all parts needed; only a
    single part, the usual case, is scored: its alternatives each count)."""
    if isinstance(answer, str):
        return (answer,)
    if isinstance(answer, list) and answer and all(isinstance(a, list) for a in answer):
        if len(answer) == 1:
            return tuple(str(a) for a in answer[0])
        return (" ".join(str(part[0]) for part in answer),)
    if isinstance(answer, list):
        return tuple(str(a) for a in answer)
    return ()


def rgb_documents(row: dict, mode: str, noise: float, passages: int, seed: int) -> list[str]:
    """The documents of one RGB question, chosen as RGB does: ceil(passages x noise) from
    `negative`, the rest from `positive` (or `positive_wrong`), topped up from the other list
    when one runs short, in a shuffled (seeded) order."""
    positive = list(row.get("positive_wrong" if mode == "counterfactual" else "positive") or [])
    negative = list(row.get("negative") or [])
    if mode == "rejection":
        docs = negative[:passages]
    else:
        neg = min(math.ceil(passages * noise), len(negative))
        pos = min(passages - neg, len(positive))
        neg = min(passages - pos, len(negative))
        docs = positive[:pos] + negative[:neg]
    random.Random(f"{seed}:{row.get('id')}").shuffle(docs)
    return docs


def load_rgb(path: Path, mode: str, workspace: Path, noise: float, passages: int, seed: int) -> EvalSet:
    if not 0.0 <= noise <= 1.0:
        raise UsageError("--noise is a ratio between 0 and 1 (RGB uses 0, 0.2, 0.4, 0.6, 0.8).")
    items, corpora = [], {}
    tag = f"{mode}-{noise:g}-{passages}-{seed}"
    for n, row in _read_json_lines(path):
        if not isinstance(row, dict) or "query" not in row:
            raise QAError(f"{path}:{n}: an RGB record needs 'query', 'answer', 'positive' and 'negative'.")
        key = f"rgb-{row.get('id', n)}"
        docs = rgb_documents(row, mode, noise, passages, seed)
        records = [{"title": f"Search result {i + 1}", "text": d} for i, d in enumerate(docs)]
        corpora[key] = [_write_records(workspace / "rgb" / tag / f"{key}.jsonl", records)] if records else []
        answers = _rgb_answers(row.get("answer"))
        wrong = (str(row["fakeanswer"]),) if mode == "counterfactual" and row.get("fakeanswer") else ()
        items.append(
            EvalItem(
                str(row.get("id", n)),
                str(row["query"]).strip(),
                answers,
                unanswerable=mode == "rejection",
                wrong_answers=wrong,
                corpus=key,
            )
        )
    params = {"mode": mode, "noise": noise if mode == "noise" else None, "passages": passages, "seed": seed}
    return EvalSet(path.stem, "rgb", items, corpora, params, _hash(path.read_text(encoding="utf-8")))


# ---- SQuAD sample ------------------------------------------------------------------------------------


def load_squad(path: Path, mode: str, workspace: Path) -> EvalSet:
    folder = path if path.is_dir() else path.parent
    queries = _read_json(folder / "queries.json")
    truth = _read_json(folder / "ground_truth.json")
    rows = queries.get("queries", []) if isinstance(queries, dict) else queries
    items: list[EvalItem] = []
    corpora: dict[str, list[Path]] = {}
    paragraphs: dict[str, dict[str, str]] = {}  # text -> the record written for it
    for q in rows:
        context = str(q["context"])
        title = f"Paragraph {len(paragraphs) + 1}" if context not in paragraphs else paragraphs[context]["title"]
        paragraphs.setdefault(context, {"title": title, "text": context})
        gold = (make_article(context, title=title).id,)
        answers = tuple(dict.fromkeys(truth.get(q["id"], {}).get("answers", [])))
        key = f"squad-{q['id']}" if mode == "own" else ""
        if mode == "own":
            corpora[key] = [_write_records(workspace / "squad" / f"{q['id']}.jsonl", [paragraphs[context]])]
        items.append(
            EvalItem(
                str(q["id"]),
                str(q["question"]).strip(),
                answers,
                gold_articles=gold,
                unanswerable=not answers,
                corpus=key,
            )
        )
    if mode == "pool":
        corpora[""] = [
            _write_records(workspace / "squad" / f"pool-{_hash(list(paragraphs))}.jsonl", list(paragraphs.values()))
        ]
    return EvalSet(folder.name, "squad", items, corpora, {"mode": mode}, _hash(list(paragraphs), truth))


# ---- summaries ------------------------------------------------------------------------------------


def load_summaries(path: Path, workspace: Path, corpus: list[str]) -> EvalSet:
    """One item per article, its reference summaries joined by a blank line (ROUGE takes the
    best reference). `writer_summaries.json` brings its articles; JSON lines name files of --corpus."""
    if path.suffix == ".json":
        rows = _read_json(path)
        if not isinstance(rows, list):
            raise QAError(f"{path}: expected a list of {{article_id, article, summary}}.")
        refs: dict[str, list[str]] = {}
        texts: dict[str, str] = {}
        for row in rows:
            key = str(row["article_id"])
            texts.setdefault(key, str(row["article"]))
            refs.setdefault(key, []).append(" ".join(str(row["summary"]).split()))
        records = [{"title": f"Article {key}", "text": texts[key], "url": f"summaries://{key}"} for key in texts]
        corpora = {"": [_write_records(workspace / "summaries" / f"{_hash(records)}.jsonl", records)]}
        items = [
            EvalItem(key, "", gold_articles=(f"summaries://{key}",), summary="\n\n".join(refs[key])) for key in texts
        ]
    else:
        items = []
        for n, row in _read_json_lines(path):
            if not isinstance(row, dict) or not row.get("article") or not row.get("summary"):
                raise QAError(f"{path}:{n}: each line needs 'article' (a file name, id or url) and 'summary'.")
            items.append(
                EvalItem(f"{n}:{row['article']}", "", gold_articles=(str(row["article"]),), summary=str(row["summary"]))
            )
        corpora = {}
        if corpus:
            from ..ingest.loaders import expand_paths

            corpora[""] = expand_paths(corpus)[0]
    return EvalSet(path.stem, "summaries", items, corpora, {}, _hash(path.read_bytes().decode("utf-8", "replace")))


def load_set(
    fmt: str,
    path: Path,
    *,
    workspace: Path,
    corpus: list[str] | None = None,
    mode: str = "",
    noise: float = 0.0,
    passages: int = 5,
    seed: int = 0,
) -> EvalSet:
    """The eval set at `path` in format `fmt` (see FORMATS); `mode` defaults to the first of MODES[fmt]."""
    if fmt not in FORMATS:
        raise UsageError(f"--format must be one of {', '.join(FORMATS)}, not {fmt!r}.")
    mode = mode or MODES[fmt][0]
    if mode not in MODES[fmt]:
        raise UsageError(f"--mode for {fmt} must be one of {', '.join(MODES[fmt])}, not {mode!r}.")
    if not path.exists():
        raise UsageError(f"{path} does not exist; give a gold file (or the folder of a public set).")
    if corpus and fmt not in ("gold", "summaries"):
        raise UsageError(f"--corpus is for --format gold or summaries; the {fmt} adapter brings its own articles.")
    if fmt == "gold":
        return load_gold(path, corpus or [])
    if fmt == "realtimeqa":
        return load_realtimeqa(path, mode, workspace)
    if fmt == "rgb":
        return load_rgb(path, mode, workspace, noise, passages, seed)
    if fmt == "summaries":
        return load_summaries(path, workspace, corpus or [])
    return load_squad(path, mode, workspace)
