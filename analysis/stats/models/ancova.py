"""Model-based treatment effects: baseline-adjusted ANCOVA and the ``models.csv`` table.

The primary analysis of a single follow-up visit is ANCOVA (Vickers & Altman, BMJ 2001):
``value ~ arm + baseline (+ covariates)`` fitted by ordinary least squares (statsmodels ``OLS``),
with control as the reference arm so the ``arm`` coefficient is treatment minus control.
Adjusted (least-squares) means follow emmeans' default reference grid: numeric covariates at their
mean over the analysed participants, categorical covariates averaged with equal weight over their
levels. :func:`models_table` stacks, for every outcome, the ANCOVA at the plan's primary visit (with
an HC3 row and a standardised effect), per-arm adjusted means, MMRM contrasts when
:mod:`analysis.stats.models.mmrm` is available, Holm/Hochberg adjusted p-values across the secondary outcomes,
and the multiple-imputation ANCOVA with its tipping point for the primary outcome.
"""
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy import stats
from statsmodels.stats.multitest import multipletests

from analysis.core.errors import UsageError
from analysis.core.tidy import check_ci_level, contrast_label, tidy_frame
from analysis.stats.models.design import (
    ARMS,
    design_matrix,
    visit_rows,
)

STANDARDISERS = ("pooled_sd", "residual_sd")
MULTIPLICITY_METHODS = {"holm": "holm", "hochberg": "simes-hochberg"}


@dataclass(frozen=True)
class AncovaResult:
    """Baseline-adjusted ANCOVA at one visit.

    Attributes
    ----------
    effect
        Tidy rows (:data:`analysis.core.tidy.RESULT_COLUMNS`): the adjusted mean difference with the
        model-based SE; with ``robust=True`` a second row with HC3 SEs; then the standardised
        adjusted difference (the SD it divides by is named in ``method``).
    adjusted_means
        One row per arm: ``outcome, visit, arm, estimate, std_error, df, ci_low, ci_high, ci_level,
        n`` (emmeans' default reference grid).
    n_treatment, n_control
        Participants analysed per arm.
    n_excluded_missing
        Participants with a row for this outcome and visit who were left out because the
        follow-up value, the baseline or a covariate is missing (per arm in
        ``excluded_by_arm``).
    formula
        The fitted model, written in R/patsy notation.
    residual_df
        Residual degrees of freedom (n - number of coefficients).
    """

    effect: pd.DataFrame
    adjusted_means: pd.DataFrame
    n_treatment: int
    n_control: int
    n_excluded_missing: int
    excluded_by_arm: Mapping[str, int]
    formula: str
    residual_df: float

def _t_row(estimate: float, se: float, df: float, ci_level: float) -> dict[str, float]:
    """Estimate, SE, t statistic, df, two-sided p and t-based CI."""
    t = estimate / se
    q = stats.t.ppf(0.5 + ci_level / 2.0, df)
    return {
        "estimate": estimate,
        "std_error": se,
        "statistic": t,
        "df": df,
        "p_value": float(2.0 * stats.t.sf(abs(t), df)),
        "ci_low": estimate - q * se,
        "ci_high": estimate + q * se,
        "ci_level": ci_level,
    }


def ancova(
    dataset: pd.DataFrame,
    *,
    outcome: str,
    visit: str,
    covariates: Sequence[str] = (),
    participants: pd.DataFrame | None = None,
    robust: bool = False,
    ci_level: float = 0.95,
    labels: Mapping[str, str] | None = None,
    standardiser: Literal["pooled_sd", "residual_sd"] = "pooled_sd",
) -> AncovaResult:
    """Baseline-adjusted ANCOVA of one outcome at one visit (Vickers & Altman 2001).

    Fits ``value ~ arm + baseline + covariates`` by OLS (statsmodels) on the participants with a
    value, a baseline and every covariate (complete cases; the rest are counted in
    ``n_excluded_missing``). Control is the reference level, so the arm coefficient is the
    adjusted mean difference treatment - control.

    Parameters
    ----------
    dataset
        The long analysis dataset (``participant_id, arm, outcome, visit, value, baseline``...).
    outcome, visit
        Which outcome, and which follow-up visit label.
    covariates
        Extra adjustment terms, taken from ``participants`` (merged on ``participant_id``).
        Numeric columns enter linearly; text/categorical/boolean columns as treatment-coded
        factors (first level, sorted, is the reference).
    participants
        One row per participant with ``participant_id`` and the covariate columns.
    robust
        Add a row with heteroscedasticity-consistent HC3 SEs (MacKinnon & White 1985), tested
        with t on the residual df as R's ``lmtest::coeftest(fit, sandwich::vcovHC(fit, "HC3"))``.
    ci_level
        Confidence level of every interval.
    labels
        ``{"treatment": ..., "control": ...}`` arm labels for the ``contrast`` column.
    standardiser
        SD the standardised adjusted effect divides by: ``"pooled_sd"`` (default; the pooled
        within-arm SD of the outcome at this visit over the analysed participants, so the value is
        on the scale of an unadjusted Cohen's d, as the What Works Clearinghouse recommends for
        adjusted effects) or ``"residual_sd"`` (the ANCOVA root mean squared error). Its SE and CI
        treat that SD as known (the mean difference's SE and CI divided by it).

    Returns
    -------
    AncovaResult

    Notes
    -----
    Adjusted mean of arm a: ``x_a' b`` with SE ``sqrt(x_a' V x_a)`` and t on the residual df,
    where ``x_a`` is emmeans' default reference-grid row (numeric covariates at their mean;
    a factor's k levels weighted 1/k each). Matches R ``lm`` + ``emmeans::emmeans(fit, "arm")``
    (tests/reference/anorexia_ref.json, agreement better than 1e-10 relative).

    Examples
    --------
    >>> res = ancova(data, outcome="pain", visit="week12")  # doctest: +SKIP
    >>> res.effect[["estimate", "ci_low", "ci_high"]]  # doctest: +SKIP
    """
    check_ci_level(ci_level)
    if standardiser not in STANDARDISERS:
        raise UsageError(f"standardiser must be one of {STANDARDISERS}, found {standardiser!r}")
    covariates = list(covariates)
    rows = visit_rows(dataset, outcome, visit, covariates, participants)
    design = design_matrix(rows, covariates)
    fit = sm.OLS(design.y, design.x).fit()
    df_resid = float(fit.df_resid)
    if df_resid < 1:
        raise UsageError(
            f"too few complete participants for the ANCOVA of '{outcome}' at '{visit}'"
        )
    labels = dict(labels or {"treatment": "treatment", "control": "control"})
    contrast = contrast_label(labels["treatment"], labels["control"])
    n_t = int((design.arm == "treatment").sum())
    n_c = int((design.arm == "control").sum())
    excl = design.excluded
    note = (
        f"complete cases; excluded for missing value, baseline or covariate: "
        f"treatment {excl['treatment']}, control {excl['control']}"
    )
    common = {
        "outcome": outcome,
        "visit": visit,
        "contrast": contrast,
        "n_treatment": n_t,
        "n_control": n_c,
        "note": note,
    }
    estimate = float(fit.params[1])
    model_row = {
        **common,
        "measure": "adjusted mean difference",
        **_t_row(estimate, float(fit.bse[1]), df_resid, ci_level),
        "method": f"ANCOVA (OLS) {design.formula}; model-based SE",
    }
    effect_rows = [model_row]
    if robust:
        hc3 = fit.get_robustcov_results(cov_type="HC3", use_t=True)
        effect_rows.append(
            {
                **common,
                "measure": "adjusted mean difference",
                **_t_row(estimate, float(hc3.bse[1]), df_resid, ci_level),
                "method": f"ANCOVA (OLS) {design.formula}; HC3 robust SE",
            }
        )
    if standardiser == "pooled_sd":
        sd = _pooled_sd(design.y, design.arm)
        sd_name = f"pooled within-arm SD of {outcome} at {visit} (unadjusted)"
    else:
        sd = float(np.sqrt(fit.scale))
        sd_name = "ANCOVA residual SD (root mean squared error)"
    std = _t_row(estimate / sd, float(fit.bse[1]) / sd, df_resid, ci_level)
    effect_rows.append(
        {
            **common,
            "measure": "standardised adjusted mean difference",
            **std,
            "statistic": np.nan,
            "p_value": np.nan,
            "method": f"ANCOVA adjusted mean difference / {sd_name} = {sd:.6g}; CI treats the SD as known",
        }
    )
    cov = np.asarray(fit.cov_params())
    q = stats.t.ppf(0.5 + ci_level / 2.0, df_resid)
    means = []
    for a in ARMS:
        g = design.grid[a]
        est = float(g @ fit.params)
        se = float(np.sqrt(g @ cov @ g))
        means.append(
            {
                "outcome": outcome,
                "visit": visit,
                "arm": a,
                "label": labels[a],
                "estimate": est,
                "std_error": se,
                "df": df_resid,
                "ci_low": est - q * se,
                "ci_high": est + q * se,
                "ci_level": ci_level,
                "n": n_t if a == "treatment" else n_c,
            }
        )
    return AncovaResult(
        effect=tidy_frame(effect_rows),
        adjusted_means=pd.DataFrame(means),
        n_treatment=n_t,
        n_control=n_c,
        n_excluded_missing=excl["treatment"] + excl["control"],
        excluded_by_arm=excl,
        formula=design.formula,
        residual_df=df_resid,
    )


def _pooled_sd(y: np.ndarray, arm: np.ndarray) -> float:
    """sqrt(((n_t - 1) s_t^2 + (n_c - 1) s_c^2) / (n_t + n_c - 2))."""
    parts = [y[arm == a] for a in ARMS]
    if min(len(p) for p in parts) < 2:
        raise UsageError("each arm needs at least two analysed participants for a pooled SD")
    ss = sum((len(p) - 1) * np.var(p, ddof=1) for p in parts)
    return float(np.sqrt(ss / (sum(len(p) for p in parts) - 2)))


# --------------------------------------------------------------------------------------------
# The models table
# --------------------------------------------------------------------------------------------


def adjust_pvalues(p_values: Sequence[float], method: Literal["holm", "hochberg"]) -> np.ndarray:
    """Family-wise adjusted p-values: Holm (1979) step-down or Hochberg (1988) step-up.

    Thin name mapping onto statsmodels ``multipletests`` (``"holm"``, ``"simes-hochberg"``);
    matches R ``p.adjust(p, "holm" | "hochberg")``. Missing p-values stay missing and do not
    count towards the family size.
    """
    if method not in MULTIPLICITY_METHODS:
        raise UsageError(
            f"multiplicity method must be one of {list(MULTIPLICITY_METHODS)}, found {method!r}"
        )
    p = np.asarray(p_values, dtype=float)
    out = np.full(p.shape, np.nan)
    present = ~np.isnan(p)
    if present.any():
        out[present] = multipletests(p[present], method=MULTIPLICITY_METHODS[method])[1]
    return out
