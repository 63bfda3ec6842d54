"""How every ``trialkit`` command presents itself: the order of ``trialkit --help``, usage lines,
flags.

* Commands are listed in the order of the work (:data:`COMMAND_ORDER`), by name, so a command
  module that registers later lands in its place; a command not in the list follows, in the order
  it registered.
* A flag takes no value, so its help row shows none (typer would show ``<bool>``); an argument or
  option that declares no metavar gets one in capitals (``FOLDER``, ``N``, ``PATH``) instead of
  typer's ``<int>``, ``<path>``.
* A usage line names arguments by their metavar as is (``trialkit run [OPTIONS] PLAN``; typer
  would write a required argument as ``{PLAN}``).

:class:`TrialkitTyper` gives every command registered on it these conventions; the rest (capital
metavars such as ``PLAN``, ``DIR``, ``FILE``, ``N``; defaults shown; choices in any case) is
declared with each option and checked by ``tests/cli/test_conventions.py``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import typer
from typer import _click
from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption

COMMAND_ORDER = (
    "init",
    "validate",
    "run",
    "verify",
    "escalc",
    "meta",
    "mmrm",
    "power",
    "grant-report",
    "replicate",
    "simulate",
    "plan-from-redcap",
    "export-adam",
)


# metavars of options that declare none, by type (each trialkit option names its own: DIR, FILE ...)
_TYPE_METAVARS = {int: "N", float: "NUMBER", str: "TEXT"}


class _NamedArgument(TyperArgument):
    """An argument whose help row shows its metavar (``PLAN``) and not also typer's ``<path>``."""

    def display_type_rich(self, ctx: _click.Context) -> str | None:
        return None


def _conventional_metavars(params: Iterable[_click.Parameter]) -> None:
    """Flags show no value; an argument or option that declares no metavar gets one in capitals."""
    for param in params:
        if type(param) is TyperArgument:
            param.__class__ = _NamedArgument
        if param.metavar is not None:
            continue
        if isinstance(param, TyperOption) and (param.is_flag or param.count):
            param.metavar = ""  # the options panel then shows no value after the flag
        elif isinstance(param, TyperArgument):
            param.metavar = (param.name or "value").upper()
        elif isinstance(param, TyperOption):
            descriptor = param.type_descriptor
            if descriptor.is_choice:
                param.metavar = "|".join(str(c) for c in descriptor.choices or ()).upper()
            elif descriptor.is_path:
                param.metavar = "PATH"
            else:
                param.metavar = _TYPE_METAVARS.get(descriptor.annotation, "VALUE")


class TrialkitCommand(TyperCommand):
    """A command whose metavars are in capitals, flags show no value, and whose usage line
    names arguments plainly."""

    def get_params(self, ctx: _click.Context) -> list[_click.Parameter]:
        params = super().get_params(ctx)
        _conventional_metavars(params)
        return params

    def collect_usage_pieces(self, ctx: _click.Context) -> list[str]:
        pieces = [self.options_metavar] if self.options_metavar else []
        for param in self.get_params(ctx):
            if isinstance(param, TyperArgument):
                name = param.display_name_raw + ("..." if param.nargs != 1 else "")
                pieces.append(name if param.required else f"[{name}]")
            else:
                pieces.extend(param.get_usage_pieces(ctx))
        return pieces


class TrialkitGroup(TyperGroup):
    """The ``trialkit`` group: commands in the order of the work, flags without a value."""

    def list_commands(self, ctx: _click.Context) -> list[str]:
        known = [name for name in COMMAND_ORDER if name in self.commands]
        return known + [name for name in self.commands if name not in COMMAND_ORDER]

    def get_params(self, ctx: _click.Context) -> list[_click.Parameter]:
        params = super().get_params(ctx)
        _conventional_metavars(params)
        return params


class TrialkitTyper(typer.Typer):
    """A ``typer.Typer`` whose commands are :class:`TrialkitCommand` unless told otherwise."""

    def command(self, name: str | None = None, *, cls: type[TyperCommand] | None = None, **kwargs: Any) -> Any:
        return super().command(name, cls=cls or TrialkitCommand, **kwargs)
