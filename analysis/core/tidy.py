"""The one column vocabulary every result table uses (docs/architecture.md, contracts).

Direction is always treatment minus control (or treatment / control for ratios), written in
``contrast``. The confidence level is a column, never part of a column name. Resampled quantities
add ``n_boot`` and ``seed``; other optional columns follow the fixed ones in a stable order.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd

RESULT_COLUMNS: list[str] = [
    "outcome",
    "visit",
    "contrast",
    "measure",
    "estimate",
    "std_error",
    "statistic",
    "df",
    "p_value",
    "ci_low",
    "ci_high",
    "ci_level",
    "method",
    "n_treatment",
    "n_control",
]

# Optional columns, in the order they appear after RESULT_COLUMNS when present.
OPTIONAL_COLUMNS: list[str] = [
    "p_adjusted",
    "n_boot",
    "seed",
    "events_treatment",
    "events_control",
    "note",
]

TEXT_COLUMNS = {"outcome", "visit", "contrast", "measure", "method", "note"}


def tidy_frame(rows: Iterable[Mapping[str, Any]] | pd.DataFrame) -> pd.DataFrame:
    """Arrange result rows into the fixed tidy layout.

    Missing fixed columns are added as NaN; optional columns are kept in their documented order
    after the fixed ones; any other column is a programming error.

    Examples
    --------
    >>> tidy_frame([{"outcome": "pain", "measure": "MD", "estimate": -3.0}]).columns[:5].tolist()
    ['outcome', 'visit', 'contrast', 'measure', 'estimate']
    """
    frame = rows.copy() if isinstance(rows, pd.DataFrame) else pd.DataFrame(list(rows))
    unknown = [c for c in frame.columns if c not in RESULT_COLUMNS and c not in OPTIONAL_COLUMNS]
    if unknown:
        raise ValueError(f"columns outside the tidy vocabulary: {unknown}")
    optional = [c for c in OPTIONAL_COLUMNS if c in frame.columns]
    frame = frame.reindex(columns=RESULT_COLUMNS + optional)
    for column in frame.columns:
        if column in TEXT_COLUMNS:
            frame[column] = frame[column].astype(object).where(frame[column].notna(), None)
        elif column in {"n_treatment", "n_control", "n_boot", "seed", "events_treatment", "events_control"}:
            frame[column] = pd.array(frame[column], dtype="Int64")
        else:
            frame[column] = pd.to_numeric(frame[column], errors="raise").astype(float)
    return frame.reset_index(drop=True)


def contrast_label(treatment: str, control: str, ratio: bool = False) -> str:
    """``'treatment - control'`` (or ``/`` for ratios), naming the arms as the plan labels them."""
    return f"{treatment} {'/' if ratio else '-'} {control}"


def check_ci_level(ci_level: object) -> float:
    """The one check of a confidence level: a number strictly between 0 and 1, else UsageError."""
    from analysis.core.errors import UsageError

    if isinstance(ci_level, bool) or not isinstance(ci_level, int | float) or not 0 < ci_level < 1:
        raise UsageError(f"ci_level must be a number strictly between 0 and 1, found {ci_level!r}")
    return float(ci_level)


def z_quantile(ci_level: float) -> float:
    """Two-sided normal quantile for a confidence level, e.g. 1.959964 for 0.95."""
    from scipy import stats

    return float(stats.norm.ppf(0.5 + check_ci_level(ci_level) / 2.0))


def is_missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value))
