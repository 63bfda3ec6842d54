"""Cells as a plan reads them: missing-value codes (the plan's ``na_values``) and coded values
(numeric codes and the value labels SPSS, Stata and SAS store beside them).

Both apply only to the columns the plan reads, each in the way its role asks:

* **number columns** (measurement values, ``age``, ``enrolled_on``): a cell whose text is one of the
  ``na_values`` (default: empty, R's ``NA``, SAS's ``.``) is a missing value; a code that is a number
  (``-99``) also matches the same number written otherwise (``-99.0``, or a number in an Excel,
  SPSS or Stata column). Every such cell is counted in a note, so ``accounting.csv`` says how many
  values were read as missing and why.
* **columns of either kind** (covariates, ``sex``, ``race``, ``ethnicity``, ``site``): treated as
  number columns when every other value in them is a number; otherwise they are text and a
  missing-value code in them stays text (a site called ``NA`` is a site), which trialkit says in a
  ``note:``.
* **identifier and code columns** (``participant_id``, ``arm``, ``disposition``, ``visit``,
  ``outcome``): never read as missing; their numbers are written as text the way a person writes
  them (``1``, never ``1.0``), and a value with a value label is read as its label.

Value labels never replace numbers in number columns (an outcome's scale anchors stay numbers), and
apply to a covariate (which then is a factor whose levels are the labels) only when the file labels
it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd

from analysis.core.notices import notice

Note = tuple[str, int, str]
MISSING_REASON = "read as a missing value (na_values)"


def code_text(value: object) -> object:
    """A code as text: integral numbers without a decimal part (``1.0`` -> ``'1'``); missing stays
    missing (None); text as it is.

    Examples
    --------
    >>> [code_text(v) for v in (1.0, 2, 2.5, "A", float("nan"), None, True)]
    ['1', '2', '2.5', 'A', None, None, 'True']
    """
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return None
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        return str(int(value)) if float(value).is_integer() else repr(float(value))
    return str(value)


def label_maps(labels: Mapping[str, Mapping[object, object]]) -> dict[str, dict[str, str]]:
    """pyreadstat's ``variable_value_labels`` with each code written as :func:`code_text` writes it."""
    return {
        str(column): {str(code_text(code)): str(label) for code, label in mapping.items() if code_text(code) is not None}
        for column, mapping in labels.items()
    }


def coded_column(series: pd.Series, labels: Mapping[str, str] | None = None) -> pd.Series:
    """A code column as text: each value's label when it has one, else the code as
    :func:`code_text` writes it. Missing values stay missing.

    Examples
    --------
    >>> coded_column(pd.Series([1.0, 2.0, 3.0, None]), {"1": "TAU", "2": "BtheB"}).tolist()
    ['TAU', 'BtheB', '3', None]
    """
    labels = labels or {}
    values = [code_text(v) for v in series.tolist()]
    out = [labels.get(v, v) if v is not None else None for v in values]
    return pd.Series(out, index=series.index, dtype=object, name=series.name)


def _number(text: str) -> float | None:
    try:
        number = float(text)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _token_mask(series: pd.Series, tokens: Iterable[str]) -> tuple[np.ndarray, list[str]]:
    """Which cells hold a missing-value code, and the code each one matched ('' where none)."""
    texts = {t.strip() for t in tokens if t.strip()}
    numbers = {n: t for t in texts if (n := _number(t)) is not None}
    matched: list[str] = []
    for value in series.tolist():
        code = ""
        if isinstance(value, str):
            stripped = value.strip()
            if stripped in texts:
                code = stripped
            elif numbers and (n := _number(stripped)) is not None and n in numbers:
                code = numbers[n]
        elif isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_)):
            if numbers and float(value) in numbers:
                code = numbers[float(value)]
        matched.append(code)
    codes = np.array(matched, dtype=object)
    return codes != "", matched


def _numbers_otherwise(series: pd.Series, mask: np.ndarray) -> bool:
    """Every present value that is not a missing-value code is a number."""
    rest = series[~mask]
    rest = rest[rest.notna()]
    if pd.api.types.is_numeric_dtype(rest) and not pd.api.types.is_bool_dtype(rest):
        return True
    for value in rest.tolist():
        if isinstance(value, str):
            if value.strip() and _number(value.strip()) is None:
                return False
        elif isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
            return False
    return True


def read_missing_codes(
    frame: pd.DataFrame,
    tokens: Iterable[str],
    numbers: Iterable[str],
    either: Iterable[str] = (),
    what: str = "the file",
    names: Mapping[str, str] | None = None,
) -> tuple[pd.DataFrame, list[Note]]:
    """Read the plan's missing-value codes as missing values in the frame's number columns.

    Parameters
    ----------
    frame
        The file's frame (columns as in the file).
    tokens
        The plan's ``na_values`` for the file.
    numbers
        Columns that hold numbers: a code in them is always a missing value.
    either
        Columns that are number columns when all their other values are numbers, else text.
    what
        The file, for the note about codes kept as text.
    names
        Column -> the name to report (the file's name of a canonical column); default: as is.

    Returns
    -------
    (frame, notes)
        A copy with the codes replaced by missing values (the frame itself when none was found),
        and one ``(item, count, reason)`` note per column and code, for the accounting table.

    Examples
    --------
    >>> frame = pd.DataFrame({"bdi.3m": ["2", "NA", ".", "16"], "site": ["A", "NA", "B", "B"]})
    >>> out, notes = read_missing_codes(frame, ["", "NA", "."], numbers=["bdi.3m"], either=["site"])
    >>> out["bdi.3m"].tolist(), out["site"].tolist()
    (['2', nan, nan, '16'], ['A', 'NA', 'B', 'B'])
    >>> notes
    [("'NA' in bdi.3m", 1, 'read as a missing value (na_values)'), ("'.' in bdi.3m", 1, 'read as a missing value (na_values)')]
    """
    tokens = list(tokens)
    numbers = list(dict.fromkeys(numbers))
    names = names or {}
    out = frame
    notes: list[Note] = []
    kept: list[str] = []
    for column in dict.fromkeys([*numbers, *either]):
        if column not in frame.columns:
            continue
        series = frame[column]
        mask, matched = _token_mask(series, tokens)
        if not mask.any():
            continue
        if column not in numbers and not _numbers_otherwise(series, mask):
            kept.append(f"'{names.get(column, column)}' ({int(mask.sum())} cell(s))")
            continue
        if out is frame:
            out = frame.copy()
        if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
            out[column] = series.where(~mask)
        else:
            out[column] = series.astype(object).where(~mask, np.nan)
        for code, count in pd.Series([m for m in matched if m]).value_counts(sort=False).items():
            notes.append((f"'{code}' in {names.get(column, column)}", int(count), MISSING_REASON))
    if kept:
        notice(
            f"{what}: the text column(s) {', '.join(kept)} hold a missing-value code (na_values); kept as "
            "text, since na_values apply to number columns"
        )
    return out, notes
