"""`qa doctor`: each component of the offline stack, and with --check the store's consistency."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Annotated

import typer

from . import views
from ._shared import out, reported


def doctor(
    ctx: typer.Context,
    check: Annotated[bool, typer.Option("--check", help="Also check the store's consistency; exit 1 if not.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
) -> None:
    """Show each component of the offline stack: present, ready, version, where its data lives."""
    from ..doctor import stack_checks, store_checks
    from ..library import open_store
    from ..search.bm25 import open_index

    with reported():
        settings = ctx.obj.settings()
        results = {"stack": stack_checks(settings)}
        if check:
            store = open_store(settings)
            results["store"] = store_checks(store, open_index(store, refresh=False))
        if as_json:
            out.print_json(json.dumps({k: [asdict(c) for c in v] for k, v in results.items()}))
        else:
            for name, checks in results.items():
                out.print(views.checks_table(checks, f"{name}: {settings.collection}" if name == "store" else name))
        if check and not all(c.ok for c in results["store"]):
            raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command()(doctor)
