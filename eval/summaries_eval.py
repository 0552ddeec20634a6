"""Summaries against human-written ones: ROUGE-1/2/L, length and citation support.

    .venv/bin/python eval/summaries_eval.py --llm extractive --writers
    .venv/bin/python eval/summaries_eval.py --llm local --limit 20      # resumable: run it again to go on
    .venv/bin/python eval/summaries_eval.py --report ROWS.jsonl         # the table of a (partial) run
    .venv/bin/python eval/summaries_eval.py --compare BASE.jsonl OTHER.jsonl   # paired, same articles

Data: `writer_summaries.json` of the news-summarisation benchmark (Zhang et al. 2023, dev half:
59 CNN/DM and BBC articles, 161 summaries by paid writers), read from ../shared/eval (never
copied into the repository). Each article is summarised once by `qa.summarise` (no store
needed: the article text is summarised as given), as one paragraph of about the writers'
average length. ROUGE F-measures (qa/metrics.py, no stemming) are averaged over an article's
writer summaries, then over articles, with seeded bootstrap 95% intervals. Support rate: the
share of summary sentences that `qa.verify.verify` found supported by the passages they
cite (an extractive sentence is a quote of its passage). Every row carries the hash of the
settings, prompts and summariser code that produced it.
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


def table(rows: list[dict], name: str) -> None:
    """The results as a Markdown table row (with its header)."""
    from qa.eval.metrics import bootstrap

    def ci(key: str) -> str:
        mean, low, high = bootstrap([r[key] for r in rows])
        return f"{mean:.3f} [{low:.3f}, {high:.3f}]"

    sentences = sum(r["sentences"] for r in rows)
    supported = sum(r["supported"] for r in rows)
    print(
        "| backend | articles | ROUGE-1 | ROUGE-2 | ROUGE-L | avg words | support rate | fallbacks | map-reduced "
        "| s/article |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    print(
        f"| {name} | {len(rows)} | {ci('rouge1')} | {ci('rouge2')} | {ci('rougeL')} | "
        f"{statistics.mean(r['words'] for r in rows):.1f} | {supported / max(1, sentences):.3f} ({supported}/"
        f"{sentences}) | {sum(r['fallback'] for r in rows)} | {sum(r['parts'] > 1 for r in rows)} | "
        f"{statistics.mean(r['seconds'] for r in rows):.1f} |"
    )


def compare(base_path: Path, other_path: Path) -> int:
    """OTHER minus BASE per metric over the articles both runs have, with paired bootstrap intervals."""
    from qa.eval.metrics import paired_bootstrap

    def rows(path: Path) -> dict[str, dict]:
        return {r["article_id"]: r for r in map(json.loads, path.read_text().splitlines())}

    base, other = rows(base_path), rows(other_path)
    common = [a for a in other if a in base]
    print(f"{other_path.name} minus {base_path.name}, {len(common)} articles in both\n")
    print("| metric | base | other | other - base [95% interval] |\n|---|---|---|---|")
    for key in ("rouge1", "rouge2", "rougeL", "words"):
        before, after = [base[a][key] for a in common], [other[a][key] for a in common]
        mean, low, high = paired_bootstrap(before, after)
        print(
            f"| {key} | {statistics.mean(before):.3f} | {statistics.mean(after):.3f} | "
            f"{mean:+.3f} [{low:+.3f}, {high:+.3f}] |"
        )
    for name, r in (("base", base), ("other", other)):
        sentences = sum(r[a]["sentences"] for a in common)
        print(f"\nsupport rate, {name}: {sum(r[a]['supported'] for a in common) / max(1, sentences):.3f}", end="")
    print()
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--llm", default="extractive", help="extractive | local | openai:MODEL")
    parser.add_argument("--limit", type=int, default=0, help="only the first N articles (0: all)")
    parser.add_argument("--words", type=int, default=50, help="summary length asked for (writers average 47)")
    parser.add_argument("--style", default="paragraph", choices=("paragraph", "bullets"))
    parser.add_argument("--budget", type=int, default=1500, help="passage tokens per model call")
    parser.add_argument("--out", type=Path, default=Path("/tmp/qa-summaries-eval"), help="folder for per-article rows")
    parser.add_argument(
        "--writers",
        action="store_true",
        help="also score each writer's summary against the other writers' (a human reference point)",
    )
    parser.add_argument("--report", type=Path, metavar="ROWS.jsonl", help="print the table of a run's rows, then exit")
    parser.add_argument(
        "--compare",
        nargs=2,
        type=Path,
        metavar=("BASE.jsonl", "OTHER.jsonl"),
        help="compare two runs' rows on the articles both have (paired bootstrap), then exit",
    )
    args = parser.parse_args()
    if args.compare:
        return compare(*args.compare)
    if args.report:
        table([json.loads(line) for line in args.report.read_text().splitlines()], args.report.stem)
        return 0

    from qa.eval.metrics import bootstrap, rouge_l, rouge_n  # ROUGE from the shared metrics module
    from qa.ingest.articles import clean_text
    from qa.prompts import prompts_hash
    from qa.records import Article
    from qa.settings import load_settings, prepare_environment

    settings = load_settings({"llm": args.llm})
    prepare_environment(settings)
    from dataclasses import replace

    from qa.library import make_embedder, make_llm
    from qa.llm import model_name
    from qa.summarise import SummaryOptions, summarise

    if not args.data.is_file():
        print(f"No data at {args.data}; pass --data PATH/writer_summaries.json", file=sys.stderr)
        return 1
    items = load(args.data)[: args.limit or None]
    embedder = make_embedder(settings)
    llm = make_llm(replace(settings, timeout=max(settings.timeout, 1800)))
    name = model_name(llm)
    options = SummaryOptions(style=args.style, words=args.words, budget=args.budget, temperature=settings.temperature)
    code = hashlib.sha256(b"".join((REPO / "qa" / f).read_bytes() for f in ("summarise.py", "notes.py", "verify.py")))
    config = {
        "llm": name,
        "options": repr(options),
        "embedder": embedder.name,
        "prompts": prompts_hash(),
        "code": code.hexdigest()[:12],
    }  # a change to the summariser or the checks is a new run
    config_hash = hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:12]
    args.out.mkdir(parents=True, exist_ok=True)
    out_path = args.out / f"{name.replace(':', '-')}-{config_hash}.jsonl"
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
            row = {
                "article_id": aid,
                "summary": prediction,
                "words": len(prediction.split()),
                "sentences": len(summary.sentences),
                "supported": sum(s.supported for s in summary.sentences),
                "rouge1": statistics.mean(rouge_n(prediction, r, 1) for r in refs),
                "rouge2": statistics.mean(rouge_n(prediction, r, 2) for r in refs),
                "rougeL": statistics.mean(rouge_l(prediction, r) for r in refs),
                "references": len(refs),
                "parts": summary.parts,
                "calls": summary.calls,
                "fallback": bool(summary.fallback),
                "seconds": round(seconds, 2),
                "prompt_tokens": summary.timings.prompt_tokens,
                "config_hash": config_hash,
            }
            sink.write(json.dumps(row) + "\n")
            sink.flush()
            rows.append(row)
            print(
                f"{n}/{len(items)} {aid} R1 {row['rouge1']:.3f} R2 {row['rouge2']:.3f} RL {row['rougeL']:.3f} "
                f"{row['words']} words, {row['supported']}/{row['sentences']} supported, {seconds:.1f} s",
                file=sys.stderr,
                flush=True,
            )

    print(f"\nconfig {config_hash}: {json.dumps(config)}\nrows: {out_path}\n")
    table(rows, name)
    if args.writers:
        scores = {k: [] for k in ("rouge1", "rouge2", "rougeL")}
        lengths = []
        for _, _, refs in items:
            for i, mine in enumerate(refs):
                others = refs[:i] + refs[i + 1 :]
                if not others:
                    continue
                lengths.append(len(mine.split()))
                scores["rouge1"].append(statistics.mean(rouge_n(mine, r, 1) for r in others))
                scores["rouge2"].append(statistics.mean(rouge_n(mine, r, 2) for r in others))
                scores["rougeL"].append(statistics.mean(rouge_l(mine, r) for r in others))
        cells = " | ".join("{:.3f} [{:.3f}, {:.3f}]".format(*bootstrap(scores[k])) for k in scores)
        print(
            f"| a writer vs the other writers | {len(lengths)} summaries | {cells} | "
            f"{statistics.mean(lengths):.1f} | - | - | - | - |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
