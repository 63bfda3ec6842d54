"""The values of the commands' choice options, matched in any case: ``--measure smd`` is ``SMD``.

The vocabularies are written out here, free of NumPy and pandas, so that ``trialkit --help`` can
list them without loading the statistics; ``tests/cli/test_conventions.py`` checks that each
equals the library's. The value a command receives (and writes into its outputs) is always the
canonical spelling: metafor's upper-case measure names, ``REML``, ``knha``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import typer

MEASURES = ("MD", "SMD", "SMDH", "ROM", "MC", "SMCC", "SMCR")  # analysis.stats.effects.MEASURES
ARM_MEASURES = ("MD", "SMD", "SMDH", "ROM")  # analysis.stats.effects.BETWEEN_MEASURES
META_METHODS = ("REML", "DL", "PM", "ML", "FE")  # analysis.stats.meta.METHODS
META_TESTS = ("z", "knha")  # analysis.stats.meta.TESTS


def canonical(choices: Sequence[str]) -> Callable[[str | None], str | None]:
    """A typer callback that returns the canonical spelling of a value given in any case, or
    refuses it (exit code 2) naming the choices."""

    def callback(value: str | None) -> str | None:
        if value is None:
            return None
        for choice in choices:
            if choice.casefold() == value.casefold():
                return choice
        raise typer.BadParameter(f"{value!r} is not one of {', '.join(choices)} (in any case)")

    return callback


def upper_case(value: str | None) -> str | None:
    """A typer callback for a value whose spellings are all upper case (metafor's ``vtype``), checked
    by the library."""
    return value.upper() if value is not None else None


def completions(choices: Sequence[str]) -> Callable[[str], list[str]]:
    """Shell completion of a choice option: the choices that start with what was typed, in any case,
    completed in the case it was typed in (the shell keeps only completions that extend the word)."""

    def complete(incomplete: str) -> list[str]:
        matches = [choice for choice in choices if choice.casefold().startswith(incomplete.casefold())]
        if incomplete.islower():
            return [choice.lower() for choice in matches]
        if incomplete.isupper():
            return [choice.upper() for choice in matches]
        return [incomplete + choice[len(incomplete):] for choice in matches]

    return complete


def choice_option(default: Any, *names: str, choices: Sequence[str], metavar: str, help: str, **extra: Any) -> Any:
    """A ``typer.Option`` taking one of ``choices`` in any case (the command receives the canonical one)."""
    return typer.Option(
        default,
        *names,
        metavar=metavar,
        help=help,
        callback=canonical(choices),
        autocompletion=completions(choices),
        **extra,
    )
