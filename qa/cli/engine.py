"""`qa engine status|stop|start`: the background engine that keeps the local model loaded
between commands (qa/llm/engine.py)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer

from ..errors import UsageError
from ..llm.engine import EngineState, engines, log_path, state_path
from ..llm.engine import stop as stop_engines
from ._help import Command, Group
from ._shared import LlmOption, err, load_llm, out, reported

engine_app = typer.Typer(
    cls=Group, help="The background engine that keeps the local model loaded between commands.", no_args_is_help=True
)
JsonOption = Annotated[bool, typer.Option("--json", help="Print as JSON.")]


def _uptime(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


def _row(state: EngineState, running: bool, engine_dir: Path) -> dict:
    config = state.config
    return {
        "running": running,
        "pid": state.pid,
        "model": config.model,
        "url": state.url,  # the key stays in the state file (0600), never printed
        "threads": config.threads,
        "context_per_slot": config.n_ctx,
        "slots": config.n_parallel,
        "idle_timeout_s": config.idle,
        "uptime_s": round(time.time() - state.started, 1) if running else None,
        "state_file": str(state_path(engine_dir, config.model)),
    }


@engine_app.command("status", cls=Command)
def status(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Is an engine running: pid, model, loopback url (key hidden), idle timeout, uptime."""
    with reported():
        settings = ctx.obj.settings()
        rows = [_row(state, running, settings.engine_dir) for state, running in engines(settings.engine_dir)]
        if as_json:
            out.print_json(json.dumps({"engine": settings.engine, "engines": rows}))
            return
        if not rows:
            how = "in this process, per command" if settings.engine == "in-process" else "on first use"
            out.print(f"No engine is running; the local model starts {how} (engine = {settings.engine}).")
            return
        for row in rows:
            state = (
                f"[green]running[/green], pid {row['pid']}, up {_uptime(row['uptime_s'])}"
                if row["running"]
                else f"[yellow]not answering[/yellow] (pid {row['pid']}; replaced on next use)"
            )
            out.print(f"[bold]{row['model']}[/bold]: {state}")
            out.print(
                f"  {row['url']} (key ****), stops after {row['idle_timeout_s']:.0f} s idle; "
                f"{row['threads']} threads, {row['slots']} slots x {row['context_per_slot']} tokens"
            )


@engine_app.command("stop", cls=Command)
def stop(ctx: typer.Context) -> None:
    """Stop the engine (it would stop by itself after its idle timeout); nothing running is fine."""
    with reported():
        settings = ctx.obj.settings()
        stopped = stop_engines(settings.engine_dir)
        for state in stopped:
            out.print(f"Stopped the engine {state.pid} ({state.config.model}).")
        if not stopped:
            out.print("No engine was running.")


@engine_app.command("start", cls=Command)
def start(ctx: typer.Context, llm: LlmOption = None) -> None:
    """Start the engine and warm the model up now, so the next question does not wait for it."""
    from ..library import background_engine

    with reported():
        settings = ctx.obj.settings(llm=llm)
        spec = settings.resolved_llm()
        if not (spec == "local" or spec.startswith("local:")):
            raise UsageError(f"The engine runs the local model, not {spec!r}: pass --llm local (or local:smollm2).")
        if not background_engine(settings):
            raise UsageError("The engine setting is in-process: there is no background engine to start.")
        model = load_llm(settings, fallback=False)
        state = getattr(model, "state", None)
        if isinstance(state, EngineState):
            path = state_path(settings.engine_dir, state.config.model)
            out.print(
                f"The engine {state.pid} serves {state.config.model} on {state.url}; it stops after "
                f"{state.config.idle:.0f} s without requests. Log: {log_path(path)}"
            )
        else:
            err.print("No engine was started.")


def register(app: typer.Typer) -> None:
    app.add_typer(engine_app, name="engine")
