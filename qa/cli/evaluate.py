"""`qa eval GOLD ...` (run an evaluation) and `qa eval compare A B`: the eval commands."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from ..errors import QAError, UsageError
from ..library import Library, ask_options, make_embedder, open_library
from . import views
from ._help import Command, Group
from ._shared import BudgetOption, err, load_llm, out, reported


class _RunByDefault(Group):
    """`qa eval GOLD` means `qa eval run GOLD`; `qa eval compare A B` stays a subcommand."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h"):
            args = ["run", *args]
        return super().parse_args(ctx, args)


eval_app = typer.Typer(
    cls=_RunByDefault,
    no_args_is_help=True,
    add_completion=False,
    help="Evaluate answers against a gold set: `qa eval GOLD`, `qa eval compare A B`.",
)


@eval_app.command("run", cls=Command)
def run(
    ctx: typer.Context,
    gold: Annotated[
        Path, typer.Argument(help="Gold set: a .jsonl file in our format, or the file/folder of a public set.")
    ],
    fmt: Annotated[str, typer.Option("--format", "-f", help="gold | realtimeqa | rgb | squad | summaries.")] = "gold",
    corpus: Annotated[
        list[str] | None,
        typer.Option(
            "--corpus",
            help="Articles to evaluate over (files, folders, globs), ingested into an isolated "
            "collection. Default: your collection.",
        ),
    ] = None,
    mode: Annotated[
        str,
        typer.Option(
            "--mode", help="realtimeqa/squad: pool (default) | own; rgb: noise (default) | rejection | counterfactual."
        ),
    ] = "",
    noise: Annotated[
        float, typer.Option("--noise", help="rgb noise mode: share of unrelated documents, 0 to 0.8.")
    ] = 0.0,
    passages: Annotated[int, typer.Option("--passages", help="rgb: documents per question.")] = 5,
    llm: Annotated[
        str | None, typer.Option("--llm", help="local | openai:MODEL | extractive (default: as for ask).")
    ] = None,
    budget: BudgetOption = None,
    k: Annotated[int | None, typer.Option("--k", help="Candidates from each retriever (default: 40).")] = None,
    retrieval: Annotated[str, typer.Option("--retrieval", help="hybrid | dense | bm25.")] = "hybrid",
    limit: Annotated[int | None, typer.Option("--limit", help="Only the first N items.")] = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue the latest run of the same name, skipping done items.")
    ] = False,
    name: Annotated[str, typer.Option("--name", help="Run name (default: gold set, mode and model).")] = "",
    runs: Annotated[Path, typer.Option("--runs", help="Where run folders go.")] = Path("eval/runs"),
    cache: Annotated[
        bool, typer.Option("--cache/--no-cache", help="Reuse stored replies to identical model calls.")
    ] = True,
    seed: Annotated[int, typer.Option("--seed", help="Seed for bootstrap intervals and RGB document order.")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print summary.json instead of the table.")] = False,
) -> None:
    """Run the pipeline over a gold set; write eval/runs/<time>-<name>/ and print the metrics."""
    from dataclasses import asdict

    from ..eval.adapters import load_set
    from ..eval.cache import CachedLLM
    from ..eval.corpora import Corpora
    from ..eval.evaluate import EvalOptions, evaluate
    from ..eval.runs import RunDir, changed_settings, settings_hash, used_prompts_hash
    from ..llm import model_name

    with reported():
        if retrieval not in ("hybrid", "dense", "bm25"):
            raise UsageError(f"--retrieval must be hybrid, dense or bm25, not {retrieval!r}.")
        if limit is not None and limit < 1:
            raise UsageError("--limit must be at least 1.")
        settings = ctx.obj.settings(llm=llm, budget=budget, k=k)
        workspace = settings.home / "eval"
        evalset = load_set(
            fmt,
            gold,
            workspace=workspace / "files",
            corpus=list(corpus or []),
            mode=mode,
            noise=noise,
            passages=passages,
            seed=seed,
        )
        embedder = make_embedder(settings)
        default: Library | None = None
        if "" not in evalset.corpora and any(i.corpus == "" for i in evalset.items):
            default = open_library(
                settings,
                embedder=embedder,
                empty=(
                    f"The collection {settings.collection!r} is empty: pass --corpus PATH with the "
                    "articles the gold set is about, or ingest them first."
                ),
            )
        model = load_llm(settings)
        options = EvalOptions(ask=ask_options(settings, mode=retrieval))
        described = {
            "format": fmt,
            "gold": str(gold),
            "mode": evalset.params.get("mode", ""),
            "params": evalset.params,
            "data_hash": evalset.data_hash,
            "corpus": list(corpus or []) or (None if default is None else f"collection:{settings.collection}"),
            "llm": model_name(model),
            "embedder": embedder.name,
            "chunk_tokens": settings.chunk_tokens,
            "chunk_overlap": settings.chunk_overlap,
            "options": asdict(options),
            "seed": seed,
            "prompts_hash": used_prompts_hash(summaries=any(i.summary for i in evalset.items)),
        }
        shown_mode = evalset.params.get("mode", "")
        if shown_mode == "noise":
            shown_mode = f"noise{noise:g}"
        run_name = name or "-".join(
            x for x in (gold.stem if gold.is_file() else gold.name, shown_mode, model_name(model).split(":")[0]) if x
        )
        rundir = RunDir.latest(runs, run_name) if resume else None
        if resume and rundir is None:
            err.print(f"[yellow]No earlier run named {run_name!r} in {runs}: starting a new one.[/yellow]")
        if rundir is not None:
            if settings_hash(described) != rundir.settings["hash"]:
                diff = changed_settings(rundir.settings, described)
                raise QAError(
                    f"Cannot resume {rundir.path}: its settings differ ({', '.join(diff)}). "
                    "Run without --resume, or with the same options."
                )
        else:
            rundir = RunDir.create(runs, run_name, {**described, "created": time.strftime("%Y-%m-%dT%H:%M:%S")})
        done_rows = rundir.rows()
        done = {r["id"] for r in done_rows}
        cached = CachedLLM(model, workspace / "llm-cache.sqlite") if cache and model is not None else None
        corpora = Corpora(
            evalset,
            home=workspace / "stores",
            embedder=embedder,
            chunk_tokens=settings.chunk_tokens,
            overlap=settings.chunk_overlap,
            default=default,
            on_ingest=lambda n, files: err.print(f"Ingesting {files} file(s) into {n} (once)…"),
        )
        todo = [i for i in evalset.items[:limit] if i.id not in done]
        err.print(
            f"[bold]{rundir.path}[/bold]: {len(todo)} item(s) to run"
            + (f", {len(done)} already done" if done else "")
            + f" · {model_name(model)} · budget {settings.budget}"
        )
        failures = 0
        rows = list(done_rows)
        try:
            corpora.prepare()
            items = iter(
                evaluate(
                    evalset,
                    corpora=corpora,
                    embedder=embedder,
                    llm=cached or model,
                    options=options,
                    skip=done,
                    limit=limit,
                )
            )
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
                marks = " ".join(
                    f"{m}={row['metrics'][m]:.2f}" for m in ("mc", "em", "f1", "refusal") if m in row["metrics"]
                )
                err.print(f"[dim]{n}/{len(todo)} {row['id']} {row['timings']['total_ms'] / 1000:.1f}s {marks}[/dim]")
        finally:
            corpora.close()
            if cached:
                cached.close()
        summary = rundir.write_summary(rows, seed=seed, extra={"errors": failures, "limit": limit})
        if as_json:
            out.print_json(json.dumps(summary))
        else:
            out.print(views.summary_table(summary))
            out.print(
                f"[dim]{rundir.path} · settings {summary['settings_hash']} · prompts "
                f"{summary['prompts_hash']} · {summary['cached_items']} item(s) from the LLM cache[/dim]"
            )
        if failures:
            err.print(f"[yellow]{failures} item(s) failed; run again with --resume to retry them.[/yellow]")
            raise typer.Exit(1)


@eval_app.command("compare", cls=Command)
def compare_runs(
    a: Annotated[Path, typer.Argument(help="The baseline run folder (eval/runs/...).")],
    b: Annotated[Path, typer.Argument(help="The run to compare with it.")],
    html: Annotated[
        Path | None, typer.Option("--html", help="Also write an HTML report with charts (needs matplotlib).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the comparison as JSON.")] = False,
    seed: Annotated[int, typer.Option("--seed", help="Seed for the paired bootstrap.")] = 0,
) -> None:
    """Per-metric deltas (B - A) with 95% intervals over the shared items, and the items that flipped."""
    from ..eval.runs import RunDir, compare

    with reported():
        result = compare(RunDir.open(a), RunDir.open(b), seed=seed)
        if html:
            from ..eval.report import write_html

            write_html(result, RunDir.open(a), RunDir.open(b), html)
        if as_json:
            out.print_json(json.dumps(result, default=str))
            return
        for part in views.comparison_tables(result):
            out.print(part)
        if html:
            out.print(f"[dim]HTML report: {html}[/dim]")


def register(app: typer.Typer) -> None:
    app.add_typer(eval_app, name="eval")
