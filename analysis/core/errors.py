"""Errors a user can cause, each mapped to a documented exit code.

Exit codes (docs/architecture.md, contracts):

* 0 success;
* 1 invalid data (a validation report names file, row, column, rule and value);
* 2 bad usage or a bad plan (one clear sentence).

Anything else that escapes is a bug in trialkit, not a user mistake.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pandas is imported when a DataError is made, so `trialkit --help` does not load it
    import pandas as pd

EXIT_OK = 0
EXIT_INVALID_DATA = 1
EXIT_USAGE = 2

FAILURE_COLUMNS = ["file", "row", "column", "rule", "value"]


class TrialkitError(Exception):
    """Base class of every error caused by the user's input; never shown as a traceback."""

    exit_code = EXIT_USAGE


class PlanError(TrialkitError):
    """The study plan is malformed: unknown key, missing key, or a value outside what is allowed."""

    exit_code = EXIT_USAGE


class UsageError(TrialkitError):
    """The command line or a function argument is wrong."""

    exit_code = EXIT_USAGE


class ModelError(TrialkitError):
    """A model cannot be fitted to these data (non-convergence, singular design, too few
    participants, an unobserved visit); the message says which and what to try."""

    exit_code = EXIT_INVALID_DATA


class DataError(TrialkitError):
    """Input data is invalid; carries every failure at once.

    Parameters
    ----------
    message
        One-sentence summary.
    failures
        Table with columns ``file, row, column, rule, value`` (row as numbered in the file,
        counting the header as row 1, so data start at row 2 for delimited text).
    """

    exit_code = EXIT_INVALID_DATA

    def __init__(self, message: str, failures: pd.DataFrame | None = None) -> None:
        super().__init__(message)
        if failures is None:
            import pandas as pd

            failures = pd.DataFrame(columns=FAILURE_COLUMNS)
        self.failures = failures.reindex(columns=FAILURE_COLUMNS)


def failure(file: str, row: object, column: str, rule: str, value: object) -> dict[str, object]:
    """One row of a failure table, in the fixed column order."""
    return {"file": file, "row": row, "column": column, "rule": rule, "value": value}
