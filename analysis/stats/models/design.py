"""The per-visit design shared by the ANCOVA and the multiple-imputation ANCOVA.

One row per participant at one visit (:func:`visit_rows`), turned into the OLS design
``[1, arm, baseline, covariates...]`` (:func:`design_matrix`) with categorical covariates
treatment-coded against their first sorted level, as R's ``model.matrix`` does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from analysis.core.errors import ModelError, UsageError
from analysis.stats.numeric import SCALE_LIMIT, check_numeric  # noqa: F401  (re-exported)

ARMS = ("treatment", "control")
DATASET_COLUMNS = ("participant_id", "arm", "outcome", "visit", "value", "baseline")
@dataclass(frozen=True)
class Design:
    """Design matrix of an ANCOVA and the emmeans reference-grid rows for each arm."""

    y: np.ndarray
    x: np.ndarray
    names: list[str]
    grid: dict[str, np.ndarray]
    arm: np.ndarray  # 'treatment' / 'control' per analysed row
    ids: np.ndarray
    excluded: dict[str, int]
    formula: str
    aliased: tuple[str, ...] = ()  # terms dropped because they are in the span of the earlier ones


def require_columns(frame: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise UsageError(f"{what} lacks column(s) {missing}; it has {list(frame.columns)}")


def visit_rows(
    dataset: pd.DataFrame,
    outcome: str,
    visit: str,
    covariates: Sequence[str],
    participants: pd.DataFrame | None,
) -> pd.DataFrame:
    """The rows of one outcome at one visit, one per participant, with covariates merged in."""
    require_columns(dataset, DATASET_COLUMNS, "the analysis dataset")
    if outcome not in set(pd.unique(dataset["outcome"])):
        raise UsageError(f"outcome '{outcome}' is not in the analysis dataset")
    rows = dataset.loc[(dataset["outcome"] == outcome) & (dataset["visit"] == visit)]
    if rows.empty:
        raise UsageError(f"outcome '{outcome}' has no rows at visit '{visit}'")
    if rows["participant_id"].duplicated().any():
        dup = rows.loc[rows["participant_id"].duplicated(), "participant_id"].iloc[0]
        raise UsageError(
            f"participant '{dup}' has more than one '{outcome}' row at visit '{visit}'"
        )
    bad_arms = sorted(set(pd.unique(rows["arm"]).astype(str)) - set(ARMS))
    if bad_arms:
        raise UsageError(f"arm must be 'treatment' or 'control', found {bad_arms}")
    rows = rows[["participant_id", "arm", "value", "baseline"]].copy()
    rows["participant_id"] = rows["participant_id"].astype(str)
    rows["arm"] = rows["arm"].astype(str)
    if covariates:
        if participants is None:
            raise UsageError(
                f"covariates {list(covariates)} come from the participants table; pass participants="
            )
        require_columns(participants, ["participant_id", *covariates], "the participants table")
        clash = [c for c in covariates if c in {"value", "baseline", "arm", "participant_id"}]
        if clash:
            raise UsageError(f"covariate name(s) {clash} clash with analysis dataset columns")
        extra = participants[["participant_id", *covariates]].copy()
        extra["participant_id"] = extra["participant_id"].astype(str)
        if extra["participant_id"].duplicated().any():
            raise UsageError("the participants table lists a participant_id more than once")
        rows = rows.merge(extra, on="participant_id", how="left", validate="one_to_one")
    return rows


def is_categorical(series: pd.Series) -> bool:
    return not (pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series))


def design_matrix(rows: pd.DataFrame, covariates: Sequence[str]) -> Design:
    """Complete cases, the OLS design (intercept, arm, baseline, covariates) and emmeans grid."""
    needed = ["value", "baseline", *covariates]
    complete = rows[needed].notna().all(axis=1).to_numpy()
    excluded = {a: int(((rows["arm"] == a).to_numpy() & ~complete).sum()) for a in ARMS}
    used = rows.loc[complete]
    arm = used["arm"].to_numpy(dtype=object)
    for a in ARMS:
        if (arm == a).sum() == 0:
            raise ModelError(f"no {a} participant has complete data for this ANCOVA")
    for name in ("value", "baseline", *covariates):
        if not is_categorical(used[name]):
            check_numeric(used[name].to_numpy(float), name)
    columns = [
        np.ones(len(used)),
        (arm == "treatment").astype(float),
        used["baseline"].to_numpy(float),
    ]
    names = ["intercept", "arm[treatment]", "baseline"]
    # emmeans' reference grid: arm varies; numeric terms at their mean; a factor's dummies at
    # 1/k each, i.e. the equally weighted average over its k levels.
    grid_tail = [float(np.mean(columns[2]))]
    terms = ["baseline"]
    for cov in covariates:
        series = used[cov]
        if is_categorical(series):
            if isinstance(series.dtype, pd.CategoricalDtype):
                levels = [lv for lv in series.cat.categories if (series == lv).any()]
            else:
                levels = sorted(series.astype(str).unique())
            text = series.astype(str).to_numpy(dtype=object)
            for level in levels[1:]:
                columns.append((text == str(level)).astype(float))
                names.append(f"{cov}[{level}]")
                grid_tail.append(1.0 / len(levels))
            terms.append(f"C({cov})")
        else:
            values = series.to_numpy(float)
            columns.append(values)
            names.append(cov)
            grid_tail.append(float(values.mean()))
            terms.append(cov)
    x = np.column_stack(columns)
    aliased: tuple[str, ...] = ()
    if np.linalg.matrix_rank(x[:, :3]) < 3:
        # a constant baseline (everyone at the same score), or one collinear with arm, is aliased:
        # R's lm reports its coefficient as NA and estimates the rest; so do we (drop the column)
        x, names, grid_tail, aliased = np.delete(x, 2, axis=1), names[:2] + names[3:], grid_tail[1:], ("baseline",)
    if np.linalg.matrix_rank(x) < x.shape[1]:
        raise UsageError(
            "the ANCOVA design is rank-deficient (a covariate is constant or collinear with arm "
            f"or baseline); terms: {names}"
        )
    grid = {a: np.array([1.0, 1.0 if a == "treatment" else 0.0, *grid_tail]) for a in ARMS}
    return Design(
        y=used["value"].to_numpy(float),
        x=x,
        names=names,
        grid=grid,
        arm=arm,
        ids=used["participant_id"].to_numpy(dtype=object),
        excluded=excluded,
        formula="value ~ arm + " + " + ".join(terms),
        aliased=aliased,
    )
