"""Reading a small summary table a user prepared (effects for a meta-analysis) as text.

Cells are read as text so that the stage that validates the table reports a bad cell as it was
found in the file.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from analysis.core.errors import DataError, UsageError, failure


def read_csv_text(path: str | Path, what: str = "effects") -> pd.DataFrame:
    """Read a CSV with every cell as text; the file must exist and parse.

    Raises
    ------
    UsageError
        The file does not exist (exit code 2).
    DataError
        The file is not a readable CSV table (exit code 1).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "effects.csv"
    >>> _ = path.write_text("study,yi,vi\\nA,0.5,0.04\\n")
    >>> read_csv_text(path)["yi"].tolist()
    ['0.5']
    """
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"{what} file '{path}' does not exist")
    try:
        return pd.read_csv(path, dtype=str, skipinitialspace=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: not a readable CSV table ({exc})", pd.DataFrame([failure(str(path), "", "", "readable CSV", "")])) from None
