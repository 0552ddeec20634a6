"""`qa doctor`: each component of the offline stack, and with --check the store's consistency."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Annotated

import typer

from . import views
from ._help import Command
from ._shared import out, reported


def doctor(
    ctx: typer.Context,
    check: Annotated[bool, typer.Option("--check", help="Also check the store's consistency.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
) -> None:
    """Show each component of the offline stack: present, ready, version, where its data lives; exit 1
    when one the commands need is missing or broken."""
    from ..doctor import VECTOR_STORE, stack_checks, store_checks
    from ..library import open_store

    with reported():
        settings = ctx.obj.settings()
        results = {"stack": stack_checks(settings)}
        server_down = not all(c.ok for c in results["stack"] if c.component == VECTOR_STORE)
        if check and not server_down:
            store = open_store(settings)
            results["store"] = store_checks(store)
        if as_json:
            out.print_json(json.dumps({k: [asdict(c) for c in v] for k, v in results.items()}))
        else:
            for name, checks in results.items():
                out.print(views.checks_table(checks, f"{name}: {settings.collection}" if name == "store" else name))
        if not all(c.ok for checks in results.values() for c in checks):
            raise typer.Exit(1)  # a part the commands need is missing or broken (or, with --check, the store)


def register(app: typer.Typer) -> None:
    app.command(cls=Command)(doctor)
