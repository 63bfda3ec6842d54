"""The reduce and finish steps: result tables from merged sufficient statistics.

Each table is finished with the same functions and layout the pandas engine uses
(:func:`analysis.stats.effects.between_arm.mean_difference` and friends, the tidy vocabulary), so
the two engines agree to rounding (1e-10 relative).

What is gathered to the client rather than reduced (stated in the README, "Large data and
clusters"): the follow-up values of each outcome x visit x arm (8 bytes a participant and visit),
for the quantiles of the descriptives (median, quartiles: order statistics have no mergeable
summary) and for the participant-level bootstrap of Hedges' g when the plan asks for resamples.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats

from analysis.core.errors import ModelError
from analysis.core.tidy import RESULT_COLUMNS, contrast_label, tidy_frame
from analysis.engine.moments import Moments
from analysis.stats.describe import DESCRIPTIVE_COLUMNS

ARMS = ("treatment", "control")


def descriptives(cells: dict, ci_level: float) -> pd.DataFrame:
    """``tables/descriptives.csv`` from merged cell summaries (see :func:`analysis.stats.describe.describe`).

    Mean and SD from Chan-merged centred moments (SD divisor ``n - 1``); median and quartiles
    R type 7 (linear interpolation) on the gathered values; t-based CI of the mean.
    """
    rows = []
    for key, m in cells["moments"].items():
        variable, outcome, visit, week, arm = key
        values = np.sort(cells["values"][key][1]) if key in cells["values"] else np.array([])
        n = m.n
        quantiles = np.quantile(values, [0.5, 0.25, 0.75]) if values.size else [math.nan] * 3
        rows.append({
            "outcome": outcome, "visit": visit, "visit_week": week, "arm": arm, "variable": variable,
            "n": n, "n_missing": cells["missing"][key],
            "mean": float(m.mean[0]) if n else math.nan,
            "sd": math.sqrt(float(m.comoment[0, 0]) / (n - 1)) if n > 1 else math.nan,
            "median": float(quantiles[0]), "q1": float(quantiles[1]), "q3": float(quantiles[2]),
            "min": float(m.low[0]) if n else math.nan, "max": float(m.high[0]) if n else math.nan,
        })
    table = pd.DataFrame(rows)
    with np.errstate(invalid="ignore", divide="ignore"):
        half = stats.t.ppf(0.5 + ci_level / 2, table["n"] - 1) * table["sd"] / np.sqrt(table["n"])
    table["ci_low"] = table["mean"] - half
    table["ci_high"] = table["mean"] + half
    table["ci_level"] = ci_level
    return table.sort_values(["variable", "outcome", "visit_week", "arm"], kind="stable")[DESCRIPTIVE_COLUMNS].reset_index(drop=True)


def _ordered_values(cells: dict, key: tuple) -> np.ndarray:
    """The gathered values of a cell in participant-id order, the pandas engine's dataset order
    (the bootstrap draws by position, so the order must match for identical resamples)."""
    ids, values = cells["values"][key]
    order = np.argsort(ids.astype(str), kind="stable")
    return values[order]


def between_arms(cells: dict, plan, n_boot: int | None, seed: int) -> pd.DataFrame:
    """``tables/between_arms.csv``: MD and Hedges' g (Wald and noncentral-t CIs) per outcome x
    follow-up visit from the arm summaries, plus the BCa bootstrap row of g when ``n_boot``."""
    from analysis.stats.effects.between_arm import (
        mean_difference,
        smd_noncentral_ci,
        standardized_mean_difference,
    )
    from analysis.stats.effects.common import EffectSize
    from analysis.stats.effects.participant_bootstrap import hedges_g_bootstrap

    labels = (plan.arms.treatment.label, plan.arms.control.label)
    diff = contrast_label(*labels)
    level = plan.analysis.ci_level
    weeks = {key[1:3]: key[3] for key in cells["moments"]}
    rows: list[dict] = []

    def add(measure, n_t, n_c, result=None, **extra):
        row = {"outcome": outcome, "visit": visit, "contrast": diff, "measure": measure, "ci_level": level,
               "n_treatment": n_t, "n_control": n_c, "n_boot": None, "seed": None, "note": None}
        if result is not None:
            row.update(estimate=result.estimate, std_error=result.std_error, ci_low=result.ci_low,
                       ci_high=result.ci_high, note=result.note)
            if isinstance(result, EffectSize):
                row["method"] = result.method
            else:
                row.update(n_boot=result.n_boot, seed=result.seed)
        row.update(extra)
        rows.append(row)

    for outcome_spec in plan.outcomes:
        outcome = outcome_spec.name
        for followup in plan.visits.followup:
            visit = followup.label
            if (outcome, visit) not in weeks:
                continue
            week = weeks[(outcome, visit)]
            summary = {}
            for arm in ARMS:
                m = cells["moments"].get(("value", outcome, visit, week, arm), Moments.empty(1))
                summary[arm] = (m.n, float(m.mean[0]) if m.n else math.nan,
                                math.sqrt(float(m.comoment[0, 0]) / (m.n - 1)) if m.n > 1 else math.nan)
            (n_t, m_t, s_t), (n_c, m_c, s_c) = summary["treatment"], summary["control"]
            if min(n_t, n_c) < 2:
                for measure in ("MD", "SMD"):
                    add(measure, n_t, n_c, note="fewer than 2 participants with a value in an arm at this visit")
                continue
            args = (n_t, m_t, s_t, n_c, m_c, s_c)
            add("MD", n_t, n_c, mean_difference(*args, ci_level=level))
            if s_t == 0 and s_c == 0:
                add("SMD", n_t, n_c, note="both arms have SD 0; SMD undefined")
                continue
            add("SMD", n_t, n_c, standardized_mean_difference(*args, ci_level=level))
            add("SMD", n_t, n_c, smd_noncentral_ci(*args, ci_level=level))
            if n_boot is not None:
                yt = _ordered_values(cells, ("value", outcome, visit, week, "treatment"))
                yc = _ordered_values(cells, ("value", outcome, visit, week, "control"))
                result = hedges_g_bootstrap(yt, yc, n_boot=n_boot, seed=seed, ci_level=level)
                add("SMD", n_t, n_c, result, method="Hedges' g (exact J), BCa bootstrap stratified by arm")
    frame = pd.DataFrame(rows, columns=[*RESULT_COLUMNS, "n_boot", "seed", "note"])
    return tidy_frame(frame)


def t_row(estimate: float, se: float, df: float, ci_level: float) -> dict[str, float]:
    t = estimate / se if se > 0 else math.nan
    q = stats.t.ppf(0.5 + ci_level / 2.0, df)
    return {"estimate": estimate, "std_error": se, "statistic": t, "df": df,
            "p_value": float(2.0 * stats.t.sf(abs(t), df)), "ci_low": estimate - q * se,
            "ci_high": estimate + q * se, "ci_level": ci_level}


def ancova_fit(merged: Moments) -> dict:
    """Slopes, residual variance and the inverse of the centred cross-products from merged
    ``[x, y]`` moments (OLS with an intercept, by the Frisch-Waugh-Lovell theorem)."""
    k = merged.mean.size - 1
    cxx, cxy, cyy = merged.comoment[:k, :k], merged.comoment[:k, k], merged.comoment[k, k]
    if np.linalg.matrix_rank(cxx) < k:
        raise ModelError("the ANCOVA design is rank-deficient (a constant baseline or covariate, or one "
                         "collinear with arm); the dask engine does not drop aliased terms: use --engine pandas")
    inverse = np.linalg.inv(cxx)
    slopes = np.linalg.solve(cxx, cxy)
    df = merged.n - (k + 1)
    if df < 1:
        raise ModelError(f"too few complete participants for the ANCOVA ({merged.n} for {k + 1} coefficients)")
    rss = max(float(cyy - cxy @ slopes), 0.0)
    return {"slopes": slopes, "inverse": inverse, "df": float(df), "sigma2": rss / df, "k": k}


def missing_counts(cells: dict, plan) -> pd.DataFrame:
    """``tables/missing.csv`` (:func:`analysis.stats.models.missing.missing_table`): per outcome x
    visit x arm the participants of the arm, those with a value at the visit, and the difference."""
    from analysis.stats.models.missing import MISSING_COLUMNS

    weeks = {key[2]: key[3] for key in cells["moments"]}
    visits = sorted(weeks, key=lambda v: weeks[v])
    rows = []
    for outcome in plan.outcomes:
        for visit in visits:
            if ("value", outcome.name, visit, weeks[visit], "treatment") not in cells["moments"] and (
                "value", outcome.name, visit, weeks[visit], "control") not in cells["moments"]:
                continue
            for arm in ARMS:
                expected = cells["expected"].get((outcome.name, arm), 0)
                held = cells["moments"].get(("value", outcome.name, visit, weeks[visit], arm))
                observed = held.n if held is not None else 0
                rows.append({"outcome": outcome.name, "visit": visit, "arm": arm, "n_expected": expected,
                             "n_observed": observed, "n_missing": expected - observed})
    frame = pd.DataFrame(rows, columns=MISSING_COLUMNS)
    for column in MISSING_COLUMNS[3:]:
        frame[column] = frame[column].astype("int64")
    return frame
