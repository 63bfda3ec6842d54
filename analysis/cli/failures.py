"""The one failure report of the command line: every command that meets invalid data (exit code 1)
prints the same summary (counts per rule, then the first failures: file, row, column, rule, value)
and writes the full failure table as CSV.

Where the CSV goes is declared by the command before it starts (:func:`failures_go_to`):

* ``validate --failures F.csv``: ``F.csv`` (default: beside the folder ``run`` would write,
  ``reports/<study id>.validation_failures.csv``);
* commands with an output folder (``run``, ``grant-report``, ``export-adam``, ``replicate``,
  ``simulate --out``): ``<out>.validation_failures.csv`` beside it, never inside it;
* ``verify MANIFEST``: beside the recorded run's folder (``<run>.validation_failures.csv``);
* commands that write one file or standard output (``escalc``, ``meta``, ``plan-from-redcap``):
  the table is printed in full (up to 200 rows) and no file is written, so that a failed command
  leaves nothing behind; their inputs are small tables a user prepared.

:func:`analysis.cli.run_cli` calls :func:`show_failures` for every :class:`DataError` that ends a
command, so no command handles one itself.
"""

from __future__ import annotations

from pathlib import Path

from rich.markup import escape
from rich.table import Table

from analysis.cli import console
from analysis.core.errors import DataError

SUFFIX = ".validation_failures.csv"
FIRST = 20  # failures listed on the terminal when the CSV has all of them
ALL = 200  # failures listed when there is no CSV

_target: list[Path | None] = [None]


def failures_go_to(path: Path | None) -> None:
    """Declare where the running command writes the full failure table (None: print only)."""
    _target[0] = path


def failures_target() -> Path | None:
    """Where the running command writes the full failure table, as declared."""
    return _target[0]


def beside_output(out: Path) -> Path:
    """``<out>.validation_failures.csv`` next to an output folder or file (never inside it)."""
    from analysis.core.output import beside

    return beside(out, SUFFIX)


def show_failures(error: DataError, failures_csv: Path | None = None) -> None:
    """Readable summary: counts per rule, then the first failures, then where the full table is.

    ``failures_csv`` defaults to the path the command declared with :func:`failures_go_to`.
    """
    from analysis.checks.contracts import summarise_failures
    from analysis.core.output import write_table

    failures_csv = failures_csv if failures_csv is not None else failures_target()
    failures = error.failures
    # every cell quotes user data: escape it so that brackets in it are not read as console markup
    console.print(f"[bold red]invalid data:[/] {escape(str(error))}", soft_wrap=True)
    if failures.empty:
        return
    counts = Table(title="Failures per rule", show_lines=False)
    for column in ("file", "column", "rule", "failures"):
        counts.add_column(column)
    for row in summarise_failures(failures).itertuples(index=False):
        counts.add_row(*(escape(str(v)) for v in (Path(str(row.file)).name, row.column, row.rule, row.failures)))
    console.print(counts)
    shown = FIRST if failures_csv is not None else ALL
    title = "Failures" if len(failures) <= shown else "First failures"
    title = f"{title} (row as numbered in the file, header = row 1)"
    first = Table(title=title, min_width=len(title))  # a narrow table must not wrap its title
    for column in ("file", "row", "column", "rule", "value"):
        first.add_column(column)
    for row in failures.head(shown).itertuples(index=False):
        first.add_row(*(escape(str(v)) for v in (Path(str(row.file)).name, row.row, row.column, row.rule, row.value)))
    console.print(first)
    if failures_csv is None:
        if len(failures) > shown:
            console.print(f"{len(failures) - shown} more failure(s) not shown")
        return
    try:
        write_table(failures, failures_csv)
    except Exception as exc:  # the report must not hide the data problem behind a file-system one
        console.print(f"[red]could not write the failure table to {escape(str(failures_csv))}:[/] {escape(str(exc))}")
        return
    console.print(f"all {len(failures)} failure(s) written to {escape(str(failures_csv))}")
