"""Summaries against human-written ones: ROUGE-1/2/L, length and citation support.

    .venv/bin/python eval/summaries_eval.py --llm extractive
    .venv/bin/python eval/summaries_eval.py --llm local --limit 20

Data: `writer_summaries.json` of the news-summarisation benchmark (Zhang et al. 2023, dev half:
59 CNN/DM and BBC articles, 161 summaries by paid writers), read from ../shared/eval (never
copied into the repository). Each article is summarised once by `qa.summarise` (no store
needed: the article text is summarised as given), as one paragraph of about the writers'
average length. ROUGE F-measures (qa/metrics.py, no stemming) are averaged over an article's
writer summaries, then over articles, with seeded bootstrap 95% intervals. Support rate: the
share of summary sentences that `qa.citations.verify` found supported by the passages they
cite (an extractive sentence is a quote of its passage). Every row carries the hash of the
settings and prompts that produced it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
DATA = REPO.parent / "shared" / "eval" / "news-summaries-dev" / "writer_summaries.json"


def load(path: Path) -> list[tuple[str, str, list[str]]]:
    """(article id, article text, writer summaries), in file order of first appearance."""
    rows = json.loads(path.read_text(encoding="utf-8"))
    texts: dict[str, str] = {}
    refs: dict[str, list[str]] = defaultdict(list)
    for row in rows:
        texts.setdefault(row["article_id"], row["article"])
        refs[row["article_id"]].append(" ".join(row["summary"].split()))
    return [(aid, texts[aid], refs[aid]) for aid in texts]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--llm", default="extractive", help="extractive | local | openai:MODEL")
    parser.add_argument("--limit", type=int, default=0, help="only the first N articles (0: all)")
    parser.add_argument("--words", type=int, default=50, help="summary length asked for (writers average 47)")
    parser.add_argument("--style", default="paragraph", choices=("paragraph", "bullets"))
    parser.add_argument("--budget", type=int, default=1500, help="passage tokens per model call")
    parser.add_argument("--out", type=Path, default=Path("/tmp/qa-summaries-eval"), help="folder for per-article rows")
    parser.add_argument("--writers", action="store_true",
                        help="also score each writer's summary against the other writers' (a human reference point)")
    args = parser.parse_args()

    from qa.loaders import clean_text
    from qa.metrics import bootstrap, rouge_l, rouge_n
    from qa.prompts import prompts_hash
    from qa.records import Article
    from qa.settings import load_settings, prepare_environment

    settings = load_settings({"llm": args.llm})
    prepare_environment(settings)
    from qa.embeddings import make_embedder
    from qa.llm import make_llm
    from qa.summarise import SummaryOptions, summarise

    if not args.data.is_file():
        print(f"No data at {args.data}; pass --data PATH/writer_summaries.json", file=sys.stderr)
        return 1
    items = load(args.data)[: args.limit or None]
    embedder = make_embedder(settings.embedder, settings.threads)
    llm = make_llm(settings.resolved_llm(), models_dir=settings.models_dir, threads=settings.threads,
                   timeout=max(settings.timeout, 1800))
    options = SummaryOptions(style=args.style, words=args.words, budget=args.budget,
                             temperature=settings.temperature)
    code = hashlib.sha256(b"".join((REPO / "qa" / f).read_bytes() for f in ("summarise.py", "citations.py")))
    config = {"llm": llm.name, "options": repr(options), "embedder": embedder.name, "prompts": prompts_hash(),
              "code": code.hexdigest()[:12]}  # a change to the summariser or the checks is a new run
    config_hash = hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:12]
    args.out.mkdir(parents=True, exist_ok=True)
    out_path = args.out / f"{llm.name.replace(':', '-')}-{config_hash}.jsonl"
    done = {}
    if out_path.is_file():  # resume: an interrupted run keeps what it finished
        for line in out_path.read_text().splitlines():
            row = json.loads(line)
            done[row["article_id"]] = row
    rows = []
    with open(out_path, "a", encoding="utf-8") as sink:
        for n, (aid, text, refs) in enumerate(items, 1):
            if aid in done:
                rows.append(done[aid])
                continue
            body = clean_text(text)
            article = Article(id=aid, text=body, title=body.split("\n", 1)[0][:120])
            t0 = time.perf_counter()
            summary = summarise(article, llm=llm, embedder=embedder, options=options)
            seconds = time.perf_counter() - t0
            prediction = summary.text
            row = {"article_id": aid, "summary": prediction, "words": len(prediction.split()),
                   "sentences": len(summary.sentences), "supported": sum(s.supported for s in summary.sentences),
                   "rouge1": statistics.mean(rouge_n(prediction, r, 1) for r in refs),
                   "rouge2": statistics.mean(rouge_n(prediction, r, 2) for r in refs),
                   "rougeL": statistics.mean(rouge_l(prediction, r) for r in refs),
                   "references": len(refs), "parts": summary.parts, "calls": summary.calls,
                   "fallback": bool(summary.fallback), "seconds": round(seconds, 2),
                   "prompt_tokens": summary.timings.prompt_tokens, "config_hash": config_hash}
            sink.write(json.dumps(row) + "\n")
            sink.flush()
            rows.append(row)
            print(f"{n}/{len(items)} {aid} R1 {row['rouge1']:.3f} R2 {row['rouge2']:.3f} RL {row['rougeL']:.3f} "
                  f"{row['words']} words, {row['supported']}/{row['sentences']} supported, {seconds:.1f} s",
                  file=sys.stderr, flush=True)

    def ci(key: str) -> str:
        mean, low, high = bootstrap([r[key] for r in rows])
        return f"{mean:.3f} [{low:.3f}, {high:.3f}]"

    sentences = sum(r["sentences"] for r in rows)
    support = sum(r["supported"] for r in rows) / sentences if sentences else 0.0
    print(f"\nconfig {config_hash}: {json.dumps(config)}\nrows: {out_path}\n")
    print("| backend | articles | ROUGE-1 | ROUGE-2 | ROUGE-L | avg words | support rate | fallbacks | map-reduced | s/article |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    print(f"| {llm.name} | {len(rows)} | {ci('rouge1')} | {ci('rouge2')} | {ci('rougeL')} | "
          f"{statistics.mean(r['words'] for r in rows):.1f} | {support:.3f} ({sum(r['supported'] for r in rows)}/"
          f"{sentences}) | {sum(r['fallback'] for r in rows)} | {sum(r['parts'] > 1 for r in rows)} | "
          f"{statistics.mean(r['seconds'] for r in rows):.1f} |")
    if args.writers:
        scores = {k: [] for k in ("rouge1", "rouge2", "rougeL")}
        lengths = []
        for _, _, refs in items:
            for i, mine in enumerate(refs):
                others = refs[:i] + refs[i + 1:]
                if not others:
                    continue
                lengths.append(len(mine.split()))
                scores["rouge1"].append(statistics.mean(rouge_n(mine, r, 1) for r in others))
                scores["rouge2"].append(statistics.mean(rouge_n(mine, r, 2) for r in others))
                scores["rougeL"].append(statistics.mean(rouge_l(mine, r) for r in others))
        cells = " | ".join("{:.3f} [{:.3f}, {:.3f}]".format(*bootstrap(scores[k])) for k in scores)
        print(f"| a writer vs the other writers | {len(lengths)} summaries | {cells} | "
              f"{statistics.mean(lengths):.1f} | - | - | - | - |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
