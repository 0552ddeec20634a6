"""`--help` in a user's words: `Usage: qa ingest [OPTIONS] PATHS...`, options with TEXT / INTEGER /
NUMBER, flags with nothing; never the Python annotations typer shows by itself (`<bool>`,
`<list[str]>`, `{paths}...`). Every command and group is registered with these classes (`cls=`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption

_TYPES = {"int": "INTEGER", "float": "NUMBER", "bool": ""}  # by the annotation's name; anything else is TEXT


class _Argument(TyperArgument):
    """An argument shown by its metavar alone (typer adds its annotation, with no setting to stop it)."""

    def display_type_rich(self, ctx: Any) -> str | None:
        return None

    def display_type(self, ctx: Any) -> str:
        return ""


def _plain(params: Sequence[Any]) -> None:
    for p in params:
        if isinstance(p, TyperArgument):
            p.__class__ = _Argument  # the same object, shown without its annotation
            if p.metavar is None:
                p.metavar = (p.name or "").upper() + ("..." if p.nargs != 1 else "")
        elif p.metavar is None:
            kind = p.bare_type() if hasattr(p, "bare_type") else getattr(p.type, "name", "")
            p.metavar = "" if getattr(p, "is_flag", False) else _TYPES.get(kind.split(" | ")[0], "TEXT")


def _help_option(option: TyperOption | None) -> TyperOption | None:
    if option is not None:
        option.metavar = ""  # a flag, made apart from the other parameters
    return option


def _usage(command: TyperCommand | TyperGroup, ctx: Any) -> list[str]:
    pieces = [command.options_metavar] if command.options_metavar else []
    for p in command.get_params(ctx):
        if isinstance(p, TyperArgument):
            pieces.append((p.metavar or "") if p.required else f"[{p.metavar}]")
    return pieces


class Command(TyperCommand):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _plain(self.params)

    def get_help_option(self, ctx: Any) -> TyperOption | None:
        return _help_option(super().get_help_option(ctx))

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        return _usage(self, ctx)


class Group(TyperGroup):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _plain(self.params)

    def get_help_option(self, ctx: Any) -> TyperOption | None:
        return _help_option(super().get_help_option(ctx))

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        return [*_usage(self, ctx), self.subcommand_metavar]
