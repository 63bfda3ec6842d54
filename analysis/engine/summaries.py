"""Per-partition sufficient statistics (the map step; each function runs on a worker).

* :func:`cell_summaries`: per outcome x visit x arm x variable (``value``, ``change``) the
  :class:`~analysis.engine.moments.Moments` of the values, the count of missing ones, and the
  values themselves with their participant ids (gathered only for quantiles and for the
  participant-level bootstrap, see :mod:`analysis.engine.tables`).
* :func:`ancova_levels`, :func:`ancova_moments`, :func:`ancova_meat`: the three passes of the
  ANCOVA from cross-products (levels of the factor covariates; centred cross-products of
  ``[arm, baseline, covariates, value]``; the HC3 meat given the fitted slopes).
* :func:`mmrm_levels`, :func:`mmrm_statistics`: the two passes of the MMRM (factor levels; the
  per-missingness-pattern cross-products, :mod:`analysis.stats.models.mmrm.partitioned`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.engine.moments import Moments
from analysis.engine.partitions import Partition

VARIABLES = ("value", "change")


def cell_summaries(partition: Partition, keep_values: bool = True) -> dict:
    """``{"moments": {key: Moments}, "missing": {key: int}, "values": {key: (ids, values)},
    "expected": {(outcome, arm): participants}}``.

    ``key`` is ``(variable, outcome, visit, visit_week, arm)``; ``change`` skips baseline rows
    (as :func:`analysis.stats.describe.describe` does).
    """
    dataset = partition.dataset
    moments: dict = {}
    missing: dict = {}
    values: dict = {}
    for variable in VARIABLES:
        subset = dataset if variable != "change" else dataset[~dataset["baseline_flag"].astype(bool)]
        keys = ["outcome", "visit", "visit_week", "arm"]
        for key, group in subset.groupby(keys, sort=False, observed=True):
            x = group[variable].to_numpy(dtype=float)
            present = ~np.isnan(x)
            name = (variable, *(str(k) if i != 2 else float(k) for i, k in enumerate(key)))
            moments[name] = Moments.of(x[present, None])
            missing[name] = int((~present).sum())
            if keep_values:
                values[name] = (group["participant_id"].to_numpy(dtype=object)[present], x[present])
    expected = {(str(o), str(a)): int(n) for (o, a), n in
                dataset.groupby(["outcome", "arm"], sort=False, observed=True)["participant_id"].nunique().items()}
    return {"moments": moments, "missing": missing, "values": values, "expected": expected}


def _visit_rows(partition: Partition, outcome: str, visit: str, covariates: list[str]) -> pd.DataFrame:
    from analysis.stats.models.design import visit_rows

    dataset = partition.dataset
    if not ((dataset["outcome"] == outcome) & (dataset["visit"] == visit)).any():
        return pd.DataFrame(columns=["participant_id", "arm", "value", "baseline", *covariates])
    return visit_rows(dataset, outcome, visit, covariates, partition.participants)


def ancova_levels(partition: Partition, outcome: str, visit: str, covariates: list[str]) -> dict:
    """Pass 1: factor levels among the complete cases, which covariates are factors, exclusions."""
    from analysis.stats.models.design import is_categorical

    rows = _visit_rows(partition, outcome, visit, covariates)
    complete = rows[["value", "baseline", *covariates]].notna().all(axis=1).to_numpy()
    used = rows.loc[complete]
    factors = {c: is_categorical(rows[c]) for c in covariates if len(rows)}
    levels = {c: set(used[c].astype(str)) for c, f in factors.items() if f}
    arm = rows["arm"].astype(str).to_numpy()
    excluded = {a: int(((arm == a) & ~complete).sum()) for a in ("treatment", "control")}
    return {"factors": factors, "levels": levels, "excluded": excluded, "rows": len(rows)}


def _design(partition: Partition, outcome: str, visit: str, covariates: list[str], levels: dict) -> tuple:
    """Columns ``[arm, baseline, covariates...]`` (no intercept), ``y`` and arm of the complete cases."""
    rows = _visit_rows(partition, outcome, visit, covariates)
    complete = rows[["value", "baseline", *covariates]].notna().all(axis=1).to_numpy()
    used = rows.loc[complete]
    arm = used["arm"].astype(str).to_numpy()
    columns = [(arm == "treatment").astype(float), used["baseline"].to_numpy(float)]
    for cov in covariates:
        if cov in levels:
            text = used[cov].astype(str).to_numpy(dtype=object)
            columns += [(text == level).astype(float) for level in levels[cov][1:]]
        else:
            columns.append(used[cov].to_numpy(float))
    x = np.column_stack(columns) if len(used) else np.empty((0, len(columns)))
    return x, used["value"].to_numpy(float), arm


def ancova_moments(partition: Partition, outcome: str, visit: str, covariates: list[str], levels: dict) -> dict:
    """Pass 2: centred cross-products of ``[x, y]`` and the moments of ``y`` per arm."""
    x, y, arm = _design(partition, outcome, visit, covariates, levels)
    return {
        "xy": Moments.of(np.column_stack([x, y])) if len(y) else Moments.empty(x.shape[1] + 1),
        "arms": {a: Moments.of(y[arm == a, None]) for a in ("treatment", "control")},
    }


def ancova_meat(partition: Partition, outcome: str, visit: str, covariates: list[str], levels: dict,
                mean: np.ndarray, slopes: np.ndarray, inverse: np.ndarray, n: int) -> dict:
    """Pass 3: HC3 meat ``sum e^2 / (1 - h)^2 (x - mean)(x - mean)'`` and the largest leverage.

    ``mean`` is the mean of ``[x, y]``, ``inverse`` the inverse of the centred ``x`` cross-products.
    """
    x, y, _arm = _design(partition, outcome, visit, covariates, levels)
    k = x.shape[1]
    if not len(y):
        return {"meat": np.zeros((k, k)), "leverage": 0.0}
    centred = x - mean[:k]
    residual = (y - mean[k]) - centred @ slopes
    leverage = 1.0 / n + np.einsum("ij,jk,ik->i", centred, inverse, centred)
    with np.errstate(divide="ignore", invalid="ignore"):
        weight = residual**2 / (1.0 - leverage) ** 2
    return {"meat": (centred * weight[:, None]).T @ centred, "leverage": float(leverage.max())}


def dataset_rows(partition: Partition) -> pd.DataFrame:
    """The analysis dataset's columns the effect-size tables read (labels as text), for the tables
    that resample participants and are therefore gathered to the client (:mod:`analysis.engine.run`)."""
    from analysis.stats.effects.trial_table import DATASET_COLUMNS

    rows = partition.dataset[[*DATASET_COLUMNS, "visit_week", "baseline_flag"]]
    return rows.astype({c: str for c in ("participant_id", "arm", "outcome", "visit")}).reset_index(drop=True)


def _mmrm_frame(partition: Partition, plan, outcome: str) -> pd.DataFrame:
    from analysis.stats.models.plan_models import plan_mmrm_data

    return plan_mmrm_data(partition.dataset, plan, outcome, list(plan.covariates), partition.participants)


def mmrm_levels(partition: Partition, plan, outcome: str, design) -> dict:
    """MMRM pass 1: which covariates are factors and their levels among the rows the MMRM uses
    (:func:`analysis.stats.models.mmrm.partitioned.pattern_levels`)."""
    from analysis.stats.models.mmrm.partitioned import pattern_levels

    return pattern_levels(_mmrm_frame(partition, plan, outcome), design)


def mmrm_statistics(partition: Partition, plan, outcome: str, design):
    """MMRM pass 2: the partition's per-missingness-pattern cross-products and counts
    (:func:`analysis.stats.models.mmrm.partitioned.pattern_statistics`)."""
    from analysis.stats.models.mmrm.partitioned import pattern_statistics

    return pattern_statistics(_mmrm_frame(partition, plan, outcome), design)
