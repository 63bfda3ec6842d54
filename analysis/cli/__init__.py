"""The ``trialkit`` command line: a thin layer that parses arguments and calls the library.

Each command lives in its own module in this package and registers itself on :data:`app`.
User mistakes end with a one-line message on stderr and a documented exit code (see
:mod:`analysis.core.errors`), never with a traceback.
"""

from __future__ import annotations

import os
import sys

import typer
from rich.console import Console
from rich.markup import escape
from typer.exceptions import TyperException

from analysis.cli.group import TrialkitGroup, TrialkitTyper
from analysis.core.errors import EXIT_USAGE, TrialkitError

# Nothing imported here or by the command modules at import time loads pandas, NumPy or SciPy:
# `trialkit --help`, `--version` and shell completion stay fast (tests/cli/test_conventions.py).
app = TrialkitTyper(
    name="trialkit",
    help="Clinical-trial outcome analysis from a declared study plan.",
    cls=TrialkitGroup,  # commands in the order of the work, flags shown without a value
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
)
# Wide enough when not on a terminal that failure tables do not wrap in logs and captured output.
console = Console(stderr=True, highlight=False, width=None if sys.stderr.isatty() else 200)

EXIT_INTERNAL = 70


def _print_version(requested: bool) -> None:
    if requested:
        from analysis import __version__

        typer.echo(f"trialkit {__version__}")
        raise typer.Exit()


@app.callback()
def _options(
    version: bool = typer.Option(False, "--version", callback=_print_version, is_eager=True, help="Print trialkit's version and exit."),
    quiet: bool = typer.Option(
        False, "--quiet", "-q", help="Show no progress (results, notes and errors are still printed)."
    ),
) -> None:
    """Clinical-trial outcome analysis from a declared study plan."""
    from analysis.cli.progress import set_quiet

    set_quiet(quiet)


def report_error(error: TrialkitError) -> None:
    """Print a user error as one readable message (and its failure table, if any) on stderr."""
    # escape: a message quotes user data, whose brackets must not be read as console markup
    console.print(f"[bold red]error:[/] {escape(str(error))}", markup=True, soft_wrap=True)


def show_notice(text: str) -> None:
    """Print a notice (a library warning in trialkit's words, or trialkit's own) as one line."""
    console.print(f"[yellow]note:[/] {escape(text)}", soft_wrap=True)


def run_cli(argv: list[str] | None = None) -> int:
    """Run ``trialkit`` with the given arguments and return its exit code (testable entry point)."""
    from analysis.cli import commands  # noqa: F401  (each command module registers itself on `app`)
    from analysis.cli import progress as display_progress
    from analysis.cli.failures import failures_go_to, show_failures
    from analysis.core.errors import DataError
    from analysis.core.notices import recording_warnings
    from analysis.core.progress import reporting_progress

    failures_go_to(None)  # each command declares where its failure table goes
    display = display_progress.start()  # what the command is doing, on stderr (--quiet: nothing)
    try:
        # no library warning reaches the terminal: each becomes a trialkit 'note:' (or is only recorded)
        with recording_warnings(forward=show_notice), reporting_progress(display_progress.loop_reporter):
            try:
                result = app(args=argv, prog_name="trialkit", standalone_mode=False)
            except BaseException:
                display.close(failed=True)
                raise
            display.close()
    except DataError as error:  # every command reports invalid data the same way
        show_failures(error)
        return error.exit_code
    except TrialkitError as error:
        report_error(error)
        return error.exit_code
    except typer.Exit as done:
        return int(done.exit_code or 0)
    except typer.Abort:
        console.print("aborted")
        return 130
    except TyperException as exc:  # usage errors: missing or malformed arguments, unknown commands
        exc.show()
        return int(getattr(exc, "exit_code", EXIT_USAGE) or EXIT_USAGE)
    except Exception as exc:
        from analysis.core.filesystem import error_from_os_error

        # a full disk, a denied permission ... met inside a library, where trialkit gave it no context
        user_error = error_from_os_error(exc) if isinstance(exc, OSError) else None
        if user_error is not None:
            report_error(user_error)
            return user_error.exit_code
        if os.environ.get("TRIALKIT_DEBUG"):
            raise
        console.print(
            f"[bold red]internal error[/] (a bug in trialkit, please report it): "
            f"{type(exc).__name__}: {escape(str(exc))}. Set TRIALKIT_DEBUG=1 for the traceback."
        )
        return EXIT_INTERNAL
    return int(result) if isinstance(result, int) else 0


def main() -> None:
    """Console-script entry point."""
    sys.exit(run_cli(sys.argv[1:]))
