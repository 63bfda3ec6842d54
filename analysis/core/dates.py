"""Dates written as text: a value can look like a date (``2023-02-30``) and name no day at all.

Contracts check the form of a date with a pattern; :func:`impossible_dates` finds the values that
have the form but not a calendar day (or a clock time), which ``pandas.to_datetime(...,
errors="coerce")`` would otherwise turn into a missing value without a word.
"""

from __future__ import annotations

import re
from datetime import datetime

import pandas as pd

ISO_DATE = "%Y-%m-%d"
# strptime format -> the pattern of its form (the form itself is checked by the contracts)
FORMS = {
    "%Y-%m-%d": r"\d{4}-\d{2}-\d{2}",
    "%Y-%m-%d %H:%M": r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}",
    "%Y-%m-%d %H:%M:%S": r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}",
    "%H:%M": r"\d{2}:\d{2}",
}


def _names_no_moment(text: str, fmt: str) -> bool:
    try:
        datetime.strptime(text, fmt)
    except ValueError:
        return True
    return False


def impossible_dates(values: pd.Series, fmt: str = ISO_DATE) -> pd.Series:
    """True where a value has the form of ``fmt`` but names no real day or time
    (``2023-02-30``, ``2023-13-01``, ``2023-04-31``, ``24:00``); False elsewhere, including
    missing values and values of another form (those fail the form check instead).

    Examples
    --------
    >>> impossible_dates(pd.Series(["2023-02-28", "2023-02-30", "2023-13-01", None, "09/01/2023"])).tolist()
    [False, True, True, False, False]
    """
    pattern = re.compile(FORMS[fmt])
    text = values.astype(object)
    return text.map(
        lambda v: isinstance(v, str) and pattern.fullmatch(v) is not None and _names_no_moment(v, fmt)
    ).astype(bool)
