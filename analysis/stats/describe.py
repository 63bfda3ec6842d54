"""Descriptive statistics per outcome x visit x arm (the first table every reader looks at)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

DESCRIPTIVE_COLUMNS = [
    "outcome",
    "visit",
    "visit_week",
    "arm",
    "variable",
    "n",
    "n_missing",
    "mean",
    "sd",
    "median",
    "q1",
    "q3",
    "min",
    "max",
    "ci_low",
    "ci_high",
    "ci_level",
]


def describe(dataset: pd.DataFrame, variables: tuple[str, ...] = ("value", "change"), ci_level: float = 0.95) -> pd.DataFrame:
    """n, n missing, mean, SD, median, quartiles, range and a t-based CI of the mean.

    One row per outcome x visit x arm x variable (``value`` and ``change`` by default; ``change`` is
    skipped on baseline rows, where it is undefined). SD uses ``n - 1``; quartiles are pandas'
    linear interpolation (R ``quantile`` type 7); the CI is ``mean +/- t(1 - alpha/2, n - 1) *
    sd / sqrt(n)`` (R ``t.test``).

    Examples
    --------
    >>> import pandas as pd
    >>> d = pd.DataFrame({"outcome": "x", "visit": "w1", "visit_week": 1.0, "arm": "control",
    ...                   "value": [1.0, 2.0, 3.0, None], "change": [0.0, 1.0, 2.0, None],
    ...                   "baseline_flag": False})
    >>> describe(d, ("value",)).loc[0, ["n", "n_missing", "mean", "sd"]].to_dict()
    {'n': 3.0, 'n_missing': 1.0, 'mean': 2.0, 'sd': 1.0}
    """
    pieces = []
    keys = ["outcome", "visit", "visit_week", "arm"]
    for variable in variables:
        subset = dataset if variable != "change" else dataset[~dataset["baseline_flag"]]
        grouped = subset.groupby(keys, sort=False, observed=True)[variable]
        table = grouped.agg(
            n="count",
            n_missing=lambda s: int(s.isna().sum()),
            mean="mean",
            sd="std",
            median="median",
            q1=lambda s: s.quantile(0.25),
            q3=lambda s: s.quantile(0.75),
            min="min",
            max="max",
        ).reset_index()
        table.insert(4, "variable", variable)
        pieces.append(table)
    table = pd.concat(pieces, ignore_index=True)
    half = stats.t.ppf(0.5 + ci_level / 2, table["n"] - 1) * table["sd"] / np.sqrt(table["n"])
    table["ci_low"] = table["mean"] - half
    table["ci_high"] = table["mean"] + half
    table["ci_level"] = ci_level
    table["n"] = table["n"].astype(int)
    table["n_missing"] = table["n_missing"].astype(int)
    return table.sort_values(["variable", "outcome", "visit_week", "arm"], kind="stable")[DESCRIPTIVE_COLUMNS].reset_index(drop=True)
