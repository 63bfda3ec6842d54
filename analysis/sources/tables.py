"""Reading a small summary table a user prepared (effects for a meta-analysis) as text.

Cells are read as text so that the stage that validates the table reports a bad cell as it was
found in the file.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pandas as pd

from analysis.core.errors import DataError, UsageError, failure
from analysis.core.filesystem import check_readable, read_input
from analysis.sources.files import duplicate_columns_error, empty_file_error


def read_csv_text(
    path: str | Path, what: str = "effects", *, keep_default_na: bool = True, skipinitialspace: bool = True
) -> pd.DataFrame:
    """Read a CSV with every cell as text; the file must exist, parse and hold data.

    ``keep_default_na=False`` keeps cells such as ``NA`` as written (only empty cells are missing
    then), for tables whose other columns pass through unchanged.

    Raises
    ------
    UsageError
        The file does not exist (exit code 2).
    DataError
        The file is empty or holds only a header (rule ``file is empty``), repeats a column name
        (``column names must be unique``) or is not a readable CSV table (exit code 1), reported
        as for the trial's data files (file, row, column, rule, value).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "effects.csv"
    >>> _ = path.write_text("study,yi,vi\\nA,0.5,0.04\\n")
    >>> read_csv_text(path)["yi"].tolist()
    ['0.5']
    """
    path = Path(path)
    check_readable(path, f"the {what} file")  # a folder or an unreadable file: exit 2 naming it
    if not path.is_file():
        raise UsageError(f"{what} file '{path}' does not exist")
    raw = read_input(path, f"the {what} file")
    if not raw.strip():
        raise empty_file_error(path)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise DataError(
            f"{path}: byte {exc.start} (line {line}) is not valid UTF-8; re-save the file as UTF-8 CSV",
            pd.DataFrame([failure(str(path), line, "", "text encoding is utf-8", repr(raw[exc.start : exc.start + 4]))]),
        ) from None
    repeated = duplicate_columns_error(path, next(csv.reader(io.StringIO(text)), []))
    if repeated is not None:  # pandas would rename the second 'x' to 'x.1' and it would go unread
        raise repeated
    try:
        frame = pd.read_csv(
            io.StringIO(text), dtype=str, keep_default_na=keep_default_na, skipinitialspace=skipinitialspace
        )
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise DataError(f"{path}: not a readable CSV table ({exc})", pd.DataFrame([failure(str(path), "", "", "readable CSV", "")])) from None
    if frame.empty:
        raise empty_file_error(path, header_only=True)
    return frame
