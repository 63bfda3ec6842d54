"""MMRM inference at a fitted model: estimates, standard errors and Satterthwaite df of linear
combinations of the fixed effects, and the tidy tables of LS-means and treatment contrasts.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from analysis.core.tidy import OPTIONAL_COLUMNS, RESULT_COLUMNS, TEXT_COLUMNS, contrast_label
from analysis.stats.models.mmrm.design import Problem
from analysis.stats.models.mmrm.reml import StructureFit, variance_gradient


def _satterthwaite(fit: StructureFit, problem: Problem, rows: np.ndarray):
    """Estimate, SE and Satterthwaite df for each row l of ``rows``."""
    estimate = rows @ fit.beta
    variance = np.einsum("mp,pq,mq->m", rows, fit.cov_beta, rows)
    grad = variance_gradient(rows, fit.theta, fit.structure, problem, fit.cov_beta, fit.ws)
    var_of_variance = np.einsum("mk,kl,ml->m", grad, fit.theta_cov, grad)
    # a combination whose variance does not depend on theta has no Satterthwaite df: NaN
    with np.errstate(divide="ignore", invalid="ignore"):
        df = np.where(var_of_variance > 0, 2.0 * variance**2 / var_of_variance, np.nan)
    return estimate, np.sqrt(variance), df


def _between_columns(problem: Problem) -> np.ndarray:
    """Columns of X constant within every participant (SAS's between-participant effects)."""
    codes = problem.subject_codes
    low = np.full((problem.n_participants, problem.x.shape[1]), np.inf)
    high = np.full_like(low, -np.inf)
    np.minimum.at(low, codes, problem.x)
    np.maximum.at(high, codes, problem.x)
    return np.all(high - low == 0, axis=0)


def _combinations(fit: StructureFit, problem: Problem, rows: np.ndarray, df_method: str):
    """Estimate, SE and df of each row of ``rows`` by ``df_method`` (Kenward-Roger methods
    also adjust the SE)."""
    if df_method == "satterthwaite":
        return _satterthwaite(fit, problem, rows)
    from analysis.stats.models.mmrm.kenward import between_within_df, kenward_roger

    estimate = rows @ fit.beta
    cov_beta = fit.cov_beta
    if df_method.startswith("kenward-roger"):
        cov_beta, df = kenward_roger(fit, problem, rows, linear=df_method.endswith("linear"))
    elif df_method == "between-within":
        between = _between_columns(problem) if problem.x is not None else problem.between
        df = between_within_df(problem, between, rows)
    else:  # residual
        df = np.full(len(rows), float(problem.n_obs - len(problem.terms)))
    return estimate, np.sqrt(np.einsum("mp,pq,mq->m", rows, cov_beta, rows)), df


def _tidy_columns(columns: dict[str, object], n: int) -> pd.DataFrame:
    """The tidy layout of :func:`analysis.core.tidy.tidy_frame` (its columns, order and dtypes:
    text as object with None, counts as Int64, the rest float), built column by column: the
    row-wise route costs more than the whole fit."""
    out: dict[str, object] = {}
    for column in RESULT_COLUMNS + [c for c in OPTIONAL_COLUMNS if c in columns]:
        value = columns.get(column)
        if column in TEXT_COLUMNS:
            values = [value] * n if value is None or isinstance(value, str) else list(value)
            out[column] = pd.Series(values, dtype=object)
        elif column in ("n_treatment", "n_control"):
            out[column] = pd.array(np.asarray(value, dtype=np.int64), dtype="Int64")
        else:
            out[column] = np.broadcast_to(np.asarray(value, dtype=float), (n,)).copy()
    return pd.DataFrame(out, copy=False)


def inference_tables(fit: StructureFit, problem: Problem, ci_level: float, method: str,
                      note: str | None, df_method: str = "satterthwaite",
                      ) -> tuple[pd.DataFrame, pd.DataFrame]:
    treatment, control = problem.arm_labels
    grid = problem.grid
    x0 = (problem.grid_matrix if problem.grid_matrix is not None
          else grid[problem.terms].to_numpy(float))
    est, se, df = _combinations(fit, problem, x0, df_method)
    quantile = stats.t.ppf(0.5 + ci_level / 2.0, df)
    lsmeans = pd.DataFrame({
        "arm": grid["arm"].to_numpy(object), "visit": grid["visit"].to_numpy(object),
        "estimate": est, "std_error": se, "df": df,
        "ci_low": est - quantile * se, "ci_high": est + quantile * se,
    })
    t = len(problem.visits)
    rows = x0[t:] - x0[:t]  # grid: control visits first, then treatment visits
    est, se, df = _combinations(fit, problem, rows, df_method)
    statistic = est / se
    quantile = stats.t.ppf(0.5 + ci_level / 2.0, df)
    visits = list(problem.visits)
    contrasts = _tidy_columns({
        "visit": visits, "contrast": contrast_label(treatment, control),
        "measure": "LS-mean difference", "estimate": est, "std_error": se,
        "statistic": statistic, "df": df, "p_value": 2.0 * stats.t.sf(np.abs(statistic), df),
        "ci_low": est - quantile * se, "ci_high": est + quantile * se,
        "ci_level": ci_level, "method": method,
        "n_treatment": [problem.n_by_arm_visit.get((treatment, v), 0) for v in visits],
        "n_control": [problem.n_by_arm_visit.get((control, v), 0) for v in visits],
        **({"note": note} if note else {}),
    }, len(visits))
    return contrasts, lsmeans
