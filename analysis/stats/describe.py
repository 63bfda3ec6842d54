"""Descriptive statistics per outcome x visit x arm (the first table every reader looks at)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from analysis.core.errors import UsageError
from analysis.core.tidy import check_ci_level

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
    check_ci_level(ci_level)
    for variable in variables:
        infinite = int(np.isinf(pd.to_numeric(dataset[variable], errors="coerce").astype(float)).sum())
        if infinite:
            raise UsageError(f"'{variable}' holds {infinite} infinite value(s); describe needs numbers or missing values")
        subset = dataset if variable != "change" else dataset[~dataset["baseline_flag"]]
        grouped = subset.groupby(keys, sort=False, observed=True)[variable]
        # sums of values near the float limits overflow (and squares of tiny ones underflow);
        # such groups are recomputed on rescaled values below (_rescaled_moments)
        with np.errstate(over="ignore", under="ignore", invalid="ignore"):
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
        _rescaled_moments(table, grouped)
        table.insert(4, "variable", variable)
        pieces.append(table)
    table = pd.concat(pieces, ignore_index=True)
    with np.errstate(over="ignore", invalid="ignore"):  # checked just below
        half = stats.t.ppf(0.5 + ci_level / 2, table["n"] - 1) * table["sd"] / np.sqrt(table["n"])
        table["ci_low"] = table["mean"] - half
        table["ci_high"] = table["mean"] + half
    limits = [pd.to_numeric(table[c], errors="coerce").astype(float) for c in ("ci_low", "ci_high")]
    beyond = np.isinf(limits[0]) | np.isinf(limits[1])
    if beyond.any():  # limits beyond the float range
        table.loc[beyond, ["ci_low", "ci_high"]] = np.nan
    table["ci_level"] = ci_level
    table["n"] = table["n"].astype(int)
    table["n_missing"] = table["n_missing"].astype(int)
    return table.sort_values(["variable", "outcome", "visit_week", "arm"], kind="stable")[DESCRIPTIVE_COLUMNS].reset_index(drop=True)


def _rescaled_moments(table: pd.DataFrame, grouped) -> None:
    """Mean, SD and quartiles of the groups where they over- or underflowed (values near the float
    limits), recomputed from the values divided by their largest magnitude (exact wherever the
    result is representable); NaN where it is not."""
    columns = ("mean", "sd", "median", "q1", "q3")
    number = {c: pd.to_numeric(table[c], errors="coerce").astype(float) for c in (*columns, "min", "max")}
    spread = number["max"] > number["min"]
    present = table["n"] > 0
    bad = ~np.isfinite(number["mean"]) | ~np.isfinite(number["median"]) | ~np.isfinite(number["q1"])
    bad |= ~np.isfinite(number["q3"])
    bad |= (table["n"] > 1) & (~np.isfinite(number["sd"]) | (number["sd"] == 0) & spread)
    suspect = bad & present
    if not suspect.any():
        return
    groups = list(grouped)
    for i in np.flatnonzero(suspect.to_numpy()):
        values = groups[i][1].dropna().to_numpy(dtype=float)
        scale = float(np.abs(values).max()) or 1.0
        scaled = values / scale
        with np.errstate(over="ignore"):  # a result beyond the float range becomes NaN below
            found = {
                "mean": scale * float(scaled.mean()),
                "sd": scale * float(scaled.std(ddof=1)) if values.size > 1 else np.nan,
                "median": scale * float(np.quantile(scaled, 0.5)),
                "q1": scale * float(np.quantile(scaled, 0.25)),
                "q3": scale * float(np.quantile(scaled, 0.75)),
            }
        for column, value in found.items():
            table.loc[table.index[i], column] = value if np.isfinite(value) else np.nan
