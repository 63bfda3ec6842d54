"""Baseline-adjusted ANCOVA: the primary analysis of a single follow-up visit.

ANCOVA (Vickers & Altman, BMJ 2001): ``value ~ arm + baseline (+ covariates)`` fitted by ordinary
least squares (statsmodels ``OLS``), with control as the reference arm so the ``arm`` coefficient
is treatment minus control. Adjusted (least-squares) means follow emmeans' default reference grid:
numeric covariates at their mean over the analysed participants, categorical covariates averaged
with equal weight over their levels. The plan's ``models.csv`` table, which stacks this ANCOVA with
the MMRM and the missing-data sensitivity analyses, is built by
:mod:`analysis.stats.models.plan_models`.
"""
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy import stats
from statsmodels.stats.multitest import multipletests

from analysis.core.errors import ModelError, UsageError
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
    note: str | None = None


# R's summary.lm calls a fit "essentially perfect" when the residual variance is below this share
# of mean(fitted)^2 + var(fitted); its t statistics are then meaningless.
PERFECT_FIT = 1e-30


def _t_row(estimate: float, se: float, df: float, ci_level: float) -> dict[str, float]:
    """Estimate, SE, t statistic, df, two-sided p and t-based CI.

    With ``se == 0`` (a perfect fit) t and p are NaN and the interval has zero width.
    """
    t = estimate / se if se > 0 else math.nan
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

    Degenerate data give R's answers, with a ``note``: an "essentially perfect fit" (residual
    variance below 1e-30 (mean(fitted)^2 + var(fitted)), R ``summary.lm``'s test; e.g. a floor
    effect, every participant at 0) keeps its estimate with ``std_error`` 0, NaN ``statistic`` and
    ``p_value`` and a zero-width interval (also in ``AncovaResult.note``); a constant baseline is
    aliased and dropped as R's ``lm`` drops it; a standardiser of 0 and an HC3 SE with a leverage-1
    participant are "not estimable" in ``method``. Too few participants, infinite values or
    magnitudes beyond 1e75 raise :class:`~analysis.core.errors.ModelError`.

    Examples
    --------
    Four participants per arm with the same baselines, so the adjusted difference equals the raw
    difference of the follow-up means, 4.5 - 6.25 = -1.75:

    >>> import pandas as pd
    >>> data = pd.DataFrame({
    ...     "participant_id": ["t1", "t2", "t3", "t4", "c1", "c2", "c3", "c4"],
    ...     "arm": ["treatment"] * 4 + ["control"] * 4,
    ...     "outcome": "pain", "visit": "week8",
    ...     "baseline": [6.0, 7.0, 8.0, 9.0, 6.0, 7.0, 8.0, 9.0],
    ...     "value": [3.0, 5.0, 4.0, 6.0, 5.0, 6.0, 7.0, 7.0]})
    >>> res = ancova(data, outcome="pain", visit="week8")
    >>> res.formula, res.residual_df
    ('value ~ arm + baseline', 5.0)
    >>> cols = ["measure", "estimate", "std_error", "p_value", "ci_low", "ci_high"]
    >>> print(res.effect[cols].round(3).to_string(index=False))
                                  measure  estimate  std_error  p_value  ci_low  ci_high
                 adjusted mean difference     -1.75      0.461    0.013  -2.935   -0.565
    standardised adjusted mean difference     -1.54      0.406      NaN  -2.582   -0.497
    >>> res.adjusted_means[["arm", "estimate", "std_error"]].round(3)
             arm  estimate  std_error
    0  treatment      4.50      0.326
    1    control      6.25      0.326

    The standardised row divides by the pooled within-arm SD of the follow-up values,
    sqrt((1.667 + 0.917) / 2) = 1.137, so -1.75 / 1.137 = -1.54.
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
        raise ModelError(
            f"too few complete participants for the ANCOVA of '{outcome}' at '{visit}' "
            f"({len(design.y)} for {design.x.shape[1]} coefficients)"
        )
    perfect = _perfect_fit(fit, df_resid)
    labels = dict(labels or {"treatment": "treatment", "control": "control"})
    contrast = contrast_label(labels["treatment"], labels["control"])
    n_t = int((design.arm == "treatment").sum())
    n_c = int((design.arm == "control").sum())
    excl = design.excluded
    note = (
        f"complete cases; excluded for missing value, baseline or covariate: "
        f"treatment {excl['treatment']}, control {excl['control']}"
    )
    degenerate = (
        "essentially perfect fit (residual variance 0, e.g. every participant at the same value, "
        "as in a floor effect): SE 0, no t test, zero-width interval (R lm warns likewise)"
        if perfect
        else None
    )
    if design.aliased:
        note = (
            f"{note}; baseline is constant (or collinear with arm), so it is aliased and dropped as R's "
            "lm does (coefficient NA): the estimate is not baseline-adjusted"
        )
    if degenerate:
        note = f"{note}; {degenerate}"
    common = {
        "outcome": outcome,
        "visit": visit,
        "contrast": contrast,
        "n_treatment": n_t,
        "n_control": n_c,
        "note": note,
    }
    estimate = float(fit.params[1])
    se_model = 0.0 if perfect else float(fit.bse[1])
    model_row = {
        **common,
        "measure": "adjusted mean difference",
        **_t_row(estimate, se_model, df_resid, ci_level),
        "method": f"ANCOVA (OLS) {design.formula}; model-based SE",
    }
    effect_rows = [model_row]
    if robust:
        hc3_method = f"ANCOVA (OLS) {design.formula}; HC3 robust SE"
        leverage = np.sum(design.x * np.asarray(fit.model.pinv_wexog).T, axis=1)
        if perfect:
            hc3_row = _t_row(estimate, 0.0, df_resid, ci_level)
        elif np.max(leverage) > 1.0 - 1e-8:
            hc3_row = {**_t_row(estimate, math.nan, df_resid, ci_level), "ci_low": np.nan, "ci_high": np.nan}
            hc3_method += (
                "; not estimable: a participant has leverage 1 (for example the only one in a "
                "covariate level), so the HC3 weight 1/(1 - h)^2 is undefined"
            )
        else:
            hc3_row = _t_row(estimate, float(fit.get_robustcov_results(cov_type="HC3", use_t=True).bse[1]), df_resid, ci_level)
        effect_rows.append({**common, "measure": "adjusted mean difference", **hc3_row, "method": hc3_method})
    if standardiser == "pooled_sd":
        sd = _pooled_sd(design.y, design.arm)
        sd_name = f"pooled within-arm SD of {outcome} at {visit} (unadjusted)"
    else:
        sd = 0.0 if perfect else float(np.sqrt(fit.scale))
        sd_name = "ANCOVA residual SD (root mean squared error)"
    std_method = f"ANCOVA adjusted mean difference / {sd_name} = {sd:.6g}; CI treats the SD as known"
    if sd > 0:
        std = _t_row(estimate / sd, se_model / sd, df_resid, ci_level)
    else:
        std = {"estimate": np.nan, "std_error": np.nan, "df": df_resid, "ci_level": ci_level}
        std_method += (
            "; not estimable: fewer than two analysed participants in an arm"
            if math.isnan(sd)
            else "; not estimable: the SD is 0 (no variation), so the standardised difference is undefined"
        )
    effect_rows.append(
        {
            **common,
            "measure": "standardised adjusted mean difference",
            **std,
            "statistic": np.nan,
            "p_value": np.nan,
            "method": std_method,
        }
    )
    cov = np.zeros((design.x.shape[1],) * 2) if perfect else np.asarray(fit.cov_params())
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
        note=degenerate,
    )


def _perfect_fit(fit, df_resid: float) -> bool:
    """R's ``summary.lm`` test: residual variance below 1e-30 (mean(fitted)^2 + var(fitted)).

    Includes the all-zero case (every fitted value and residual exactly 0).
    """
    fitted = np.asarray(fit.fittedvalues, dtype=float)
    resvar = float(fit.ssr) / df_resid
    spread = float(np.mean(fitted)) ** 2 + (float(np.var(fitted, ddof=1)) if fitted.size > 1 else 0.0)
    return resvar <= spread * PERFECT_FIT


def _pooled_sd(y: np.ndarray, arm: np.ndarray) -> float:
    """sqrt(((n_t - 1) s_t^2 + (n_c - 1) s_c^2) / (n_t + n_c - 2))."""
    parts = [y[arm == a] for a in ARMS]
    if min(len(p) for p in parts) < 2:
        return math.nan  # each arm needs at least two analysed participants for a pooled SD
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

    With the m p-values sorted, p_(1) <= ... <= p_(m): Holm's adjusted p_(i) is
    ``max_{j <= i} min(1, (m - j + 1) p_(j))``; Hochberg's is ``min_{j >= i} min(1, (m - j + 1) p_(j))``.

    Parameters
    ----------
    p_values
        Unadjusted p-values (NaN for a missing one).
    method
        ``"holm"`` or ``"hochberg"``.

    Returns
    -------
    numpy.ndarray
        Adjusted p-values in the input order.

    Examples
    --------
    Sorted, 0.01, 0.03, 0.04 are multiplied by 3, 2, 1 (0.03, 0.06, 0.04); Holm then takes the
    running maximum, Hochberg the running minimum from the largest:

    >>> adjust_pvalues([0.01, 0.04, 0.03], "holm").round(4)
    array([0.03, 0.06, 0.06])
    >>> adjust_pvalues([0.01, 0.04, 0.03], "hochberg").round(4)
    array([0.03, 0.04, 0.04])
    >>> adjust_pvalues([0.01, float("nan"), 0.04], "holm").round(4)
    array([0.02,  nan, 0.04])
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
