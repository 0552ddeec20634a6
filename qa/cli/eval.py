"""`qa eval GOLD ...` (run an evaluation) and `qa eval compare A B`: the eval commands.

Registered on the main app by one import at the bottom of cli.py.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import List, Optional

import typer
from rich.table import Table
from typer.core import TyperGroup

from . import _as_of, _embedder, _llm, _store, app, err, out, reported
from ..errors import QAError, UsageError


class _RunByDefault(TyperGroup):
    """`qa eval GOLD` means `qa eval run GOLD`; `qa eval compare A B` stays a subcommand."""

    def parse_args(self, ctx, args):
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h"):
            args = ["run", *args]
        return super().parse_args(ctx, args)


eval_app = typer.Typer(cls=_RunByDefault, no_args_is_help=True, add_completion=False,
                       help="Evaluate answers against a gold set: `qa eval GOLD`, `qa eval compare A B`.")
app.add_typer(eval_app, name="eval")


def summary_table(summary: dict) -> Table:
    from ..eval.evaluate import LABELS

    table = Table(title=f"qa eval · {summary['name']}", show_edge=False, title_justify="left")
    for name, justify in (("metric", "left"), ("value", "right"), ("95% interval", "right"), ("n", "right")):
        table.add_column(name, justify=justify)
    for name, entry in summary["metrics"].items():
        digits = 1 if name.endswith("tokens") or name == "summary_words" else 3
        interval = f"{entry['low']:.{digits}f} – {entry['high']:.{digits}f}"
        if name == "latency_s":
            interval += f"  (p50 {entry['p50']:.1f}, p95 {entry['p95']:.1f})"
        table.add_row(LABELS.get(name, name), f"{entry['mean']:.{digits}f}", interval, str(entry["n"]))
    return table


@eval_app.command("run")
def run(
    ctx: typer.Context,
    gold: Path = typer.Argument(..., help="Gold set: a .jsonl file in our format, or the file/folder of a public set."),
    fmt: str = typer.Option("gold", "--format", "-f", help="gold | realtimeqa | rgb | squad | summaries."),
    corpus: Optional[List[str]] = typer.Option(
        None, "--corpus", help="Articles to evaluate over (files, folders, globs), ingested into an isolated "
                               "collection. Default: your collection."),
    mode: str = typer.Option("", "--mode", help="realtimeqa/squad: pool (default) | own; rgb: noise (default) | "
                                                "rejection | counterfactual."),
    noise: float = typer.Option(0.0, "--noise", help="rgb noise mode: share of unrelated documents, 0 to 0.8."),
    passages: int = typer.Option(5, "--passages", help="rgb: documents per question."),
    llm: Optional[str] = typer.Option(None, "--llm", help="local | openai:MODEL | extractive (default: as for ask)."),
    budget: Optional[int] = typer.Option(None, "--budget", help="Context tokens sent to the model (default: 1000)."),
    k: Optional[int] = typer.Option(None, "--k", help="Candidates from each retriever (default: 40)."),
    retrieval: str = typer.Option("hybrid", "--retrieval", help="hybrid | dense | bm25."),
    limit: Optional[int] = typer.Option(None, "--limit", help="Only the first N items."),
    resume: bool = typer.Option(False, "--resume",
                                help="Continue the latest run of the same name, skipping done items."),
    name: str = typer.Option("", "--name", help="Run name (default: gold set, mode and model)."),
    runs: Path = typer.Option(Path("eval/runs"), "--runs", help="Where run folders go."),
    cache: bool = typer.Option(True, "--cache/--no-cache", help="Reuse stored replies to identical model calls."),
    seed: int = typer.Option(0, "--seed", help="Seed for bootstrap intervals and RGB document order."),
    as_json: bool = typer.Option(False, "--json", help="Print summary.json instead of the table."),
) -> None:
    """Run the pipeline over a gold set; write eval/runs/<time>-<name>/ and print the metrics."""
    from dataclasses import asdict

    from ..answer import AskOptions
    from ..eval.adapters import load_set
    from ..eval.runs import CachedLLM, RunDir, used_prompts_hash
    from ..eval.evaluate import Corpora, EvalOptions, evaluate
    from ..ingest.pipeline import open_index
    from ..llm import Extractive

    with reported():
        if retrieval not in ("hybrid", "dense", "bm25"):
            raise UsageError(f"--retrieval must be hybrid, dense or bm25, not {retrieval!r}.")
        if limit is not None and limit < 1:
            raise UsageError("--limit must be at least 1.")
        settings = ctx.obj.settings(llm=llm, budget=budget, k=k)
        workspace = settings.home / "eval"
        evalset = load_set(fmt, gold, workspace=workspace / "files", corpus=list(corpus or []), mode=mode,
                           noise=noise, passages=passages, seed=seed)
        embedder = _embedder(settings)
        default = None
        if "" not in evalset.corpora and any(i.corpus == "" for i in evalset.items):
            store = _store(settings, embedder)
            if store.chunk_count() == 0:
                raise QAError(f"The collection {settings.collection!r} is empty: pass --corpus PATH with the "
                              "articles the gold set is about, or ingest them first.")
            default = (store, open_index(store))
        model = _llm(settings)
        options = EvalOptions(ask=AskOptions(budget=settings.budget, k=settings.k, per_article=settings.per_article,
                                             mode=retrieval, max_tokens=settings.max_answer_tokens,
                                             temperature=settings.temperature, today=_as_of(settings)))
        described = {
            "format": fmt, "gold": str(gold), "mode": evalset.params.get("mode", ""), "params": evalset.params,
            "data_hash": evalset.data_hash, "corpus": list(corpus or []) or (None if default is None else
                                                                            f"collection:{settings.collection}"),
            "llm": model.name, "embedder": embedder.name, "chunk_tokens": settings.chunk_tokens,
            "chunk_overlap": settings.chunk_overlap, "options": asdict(options), "seed": seed,
            "prompts_hash": used_prompts_hash(summaries=any(i.summary for i in evalset.items)),
        }
        shown_mode = evalset.params.get("mode", "")
        if shown_mode == "noise":
            shown_mode = f"noise{noise:g}"
        run_name = name or "-".join(x for x in (gold.stem if gold.is_file() else gold.name, shown_mode,
                                                model.name.split(":")[0]) if x)
        rundir = RunDir.latest(runs, run_name) if resume else None
        if resume and rundir is None:
            err.print(f"[yellow]No earlier run named {run_name!r} in {runs}: starting a new one.[/yellow]")
        if rundir is not None:
            from ..eval.runs import changed_settings, settings_hash

            if settings_hash(described) != rundir.settings["hash"]:
                diff = changed_settings(rundir.settings, described)
                raise QAError(f"Cannot resume {rundir.path}: its settings differ ({', '.join(diff)}). "
                              "Run without --resume, or with the same options.")
        else:
            rundir = RunDir.create(runs, run_name, {**described, "created": time.strftime("%Y-%m-%dT%H:%M:%S")})
        done_rows = rundir.rows()
        done = {r["id"] for r in done_rows}
        cached = None
        if cache and not isinstance(model, Extractive):
            cached = CachedLLM(model, workspace / "llm-cache.sqlite")
        corpora = Corpora(evalset, home=workspace / "stores", embedder=embedder, chunk_tokens=settings.chunk_tokens,
                          overlap=settings.chunk_overlap, default=default,
                          on_ingest=lambda n, files: err.print(f"Ingesting {files} file(s) into {n} (once)…"))
        todo = [i for i in evalset.items[:limit] if i.id not in done]
        err.print(f"[bold]{rundir.path}[/bold]: {len(todo)} item(s) to run"
                  + (f", {len(done)} already done" if done else "") + f" · {model.name} · budget {settings.budget}")
        failures = 0
        rows = list(done_rows)
        try:
            corpora.prepare()
            items = iter(evaluate(evalset, corpora=corpora, embedder=embedder, llm=cached or model, options=options,
                                  skip=done, limit=limit))
            for n in range(1, len(todo) + 1):
                try:
                    row = next(items)
                except StopIteration:
                    break
                except QAError as exc:  # e.g. the model server timed out: keep going, resume retries it
                    failures += 1
                    err.print(f"[red]item {n}: {exc}[/red]")
                    continue
                rundir.append(row)
                rows.append(row)
                marks = " ".join(f"{m}={row['metrics'][m]:.2f}" for m in ("mc", "em", "f1", "refusal")
                                 if m in row["metrics"])
                err.print(f"[dim]{n}/{len(todo)} {row['id']} {row['timings']['total_ms'] / 1000:.1f}s "
                          f"{marks}[/dim]")
        finally:
            corpora.close()
            if cached:
                cached.close()
        summary = rundir.write_summary(rows, seed=seed, extra={"errors": failures, "limit": limit})
        if as_json:
            out.print_json(json.dumps(summary))
        else:
            out.print(summary_table(summary))
            out.print(f"[dim]{rundir.path} · settings {summary['settings_hash']} · prompts "
                      f"{summary['prompts_hash']} · {summary['cached_items']} item(s) from the LLM cache[/dim]")
        if failures:
            err.print(f"[yellow]{failures} item(s) failed; run again with --resume to retry them.[/yellow]")
            raise typer.Exit(1)


@eval_app.command("compare")
def compare_runs(
    a: Path = typer.Argument(..., help="The baseline run folder (eval/runs/...)."),
    b: Path = typer.Argument(..., help="The run to compare with it."),
    html: Optional[Path] = typer.Option(None, "--html",
                                        help="Also write an HTML report with charts (needs matplotlib)."),
    as_json: bool = typer.Option(False, "--json", help="Print the comparison as JSON."),
    seed: int = typer.Option(0, "--seed", help="Seed for the paired bootstrap."),
) -> None:
    """Per-metric deltas (B - A) with 95% intervals over the shared items, and the items that flipped."""
    from ..eval.runs import RunDir, compare
    from ..eval.evaluate import LABELS

    with reported():
        result = compare(RunDir.open(a), RunDir.open(b), seed=seed)
        if html:
            from ..eval.report import write_html

            write_html(result, RunDir.open(a), RunDir.open(b), html)
        if as_json:
            out.print_json(json.dumps(result, default=str))
            return
        table = Table(title=f"{result['a']}  →  {result['b']}  ({result['items']} shared items)", show_edge=False,
                      title_justify="left")
        for col, justify in (("metric", "left"), ("A", "right"), ("B", "right"), ("B − A", "right"),
                             ("95% interval", "right"), ("n", "right")):
            table.add_column(col, justify=justify)
        for d in result["deltas"]:
            significant = d["low"] > 0 or d["high"] < 0
            style = "" if not significant or d["timing"] else ("green" if d["delta"] > 0 else "red")
            table.add_row(LABELS.get(d["metric"], d["metric"]), f"{d['a']:.3f}", f"{d['b']:.3f}",
                          f"[{style}]{d['delta']:+.3f}[/{style}]" if style else f"{d['delta']:+.3f}",
                          f"{d['low']:+.3f} – {d['high']:+.3f}", str(d["n"]))
        out.print(table)
        if result["settings_changed"]:
            out.print("[bold]Settings that differ:[/bold] " + ", ".join(result["settings_changed"]))
        if result["flips"]:
            flips = Table(title="Items that flipped", show_edge=False, title_justify="left")
            for col in ("id", "metric", "A→B", "question", "answer A", "answer B"):
                flips.add_column(col, overflow="fold")
            for f in result["flips"]:
                flips.add_row(f["id"], f["metric"], f"{f['a']:g}→{f['b']:g}", f["question"][:70],
                              str(f["answer_a"])[:40], str(f["answer_b"])[:40])
            out.print(flips)
        if html:
            out.print(f"[dim]HTML report: {html}[/dim]")
