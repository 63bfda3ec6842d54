"""Missing data: counts, multiple imputation with Rubin's rules, delta-adjusted tipping point.

* :func:`missing_table` counts expected, observed and missing values per outcome x visit x arm.
* :func:`analysis.stats.models.imputation.impute_outcome` draws ``m`` proper imputations of one
  outcome's missing values within arm by sequential Bayesian linear regression in time order (the
  "norm" method of mice; Rubin 1987 p. 167), vectorised over imputations in NumPy.
* :func:`analysis.stats.models.rubin.rubin_pool` combines per-imputation estimates with Rubin's
  rules and the Barnard-Rubin (1999) small-sample degrees of freedom (as R ``mice::pool``).
* :func:`multiple_imputation_ancova` runs the baseline-adjusted ANCOVA of :mod:`analysis.stats.models.ancova`
  on each completed dataset and pools it.
* :func:`tipping_point` shifts the treatment arm's imputed values at the analysed visit by delta in
  the direction unfavourable to treatment and reports the smallest delta at which the pooled
  result stops being significant (a delta-adjusted, "tipping point" MNAR sensitivity analysis;
  Ratitch, O'Kelly & Tosiello 2013).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
from scipy import optimize

from analysis.core.errors import ModelError, UsageError
from analysis.core.limits import Deadline
from analysis.core.progress import ProgressCallback, loop_progress
from analysis.core.tidy import contrast_label, tidy_frame
from analysis.stats.models.design import ARMS, design_matrix, require_columns, visit_rows
from analysis.stats.models.imputation import impute_outcome
from analysis.stats.models.rubin import RubinResult, rubin_pool

MISSING_COLUMNS = ["outcome", "visit", "arm", "n_expected", "n_observed", "n_missing"]


# --------------------------------------------------------------------------------------------
# Counts
# --------------------------------------------------------------------------------------------


def _visit_order(dataset: pd.DataFrame) -> list[str]:
    """Visit labels in time order: by ``visit_week`` when present, else as first seen."""
    if isinstance(dataset["visit"].dtype, pd.CategoricalDtype):
        return [str(v) for v in dataset["visit"].cat.categories]
    if "visit_week" in dataset.columns:
        weeks = dataset.groupby("visit", sort=False)["visit_week"].min()
        return [str(v) for v in weeks.sort_values(kind="stable").index]
    return [str(v) for v in pd.unique(dataset["visit"])]


def missing_table(dataset: pd.DataFrame) -> pd.DataFrame:
    """Count missing values per outcome x visit x arm.

    ``n_expected`` is the number of participants of the arm with any row for the outcome (every
    randomised participant in the analysis dataset), ``n_observed`` those with a non-missing
    ``value`` at the visit, ``n_missing = n_expected - n_observed``.

    Parameters
    ----------
    dataset
        The long analysis dataset: ``participant_id, arm, outcome, visit, value`` (and
        ``visit_week``, which orders the visits when present).

    Returns
    -------
    pandas.DataFrame
        Columns ``outcome, visit, arm, n_expected, n_observed, n_missing``; outcomes in order of
        appearance, visits in time order, arms treatment then control.

    Examples
    --------
    >>> import pandas as pd
    >>> dataset = pd.DataFrame({
    ...     "participant_id": ["t1", "t1", "t2", "t2", "c1", "c1", "c2", "c2"],
    ...     "arm": ["treatment"] * 4 + ["control"] * 4,
    ...     "outcome": "pain",
    ...     "visit": ["baseline", "week8"] * 4,
    ...     "visit_week": [0, 8] * 4,
    ...     "value": [7.0, 4.0, 6.0, None, 8.0, None, 5.0, None]})
    >>> missing_table(dataset)
      outcome     visit        arm  n_expected  n_observed  n_missing
    0    pain  baseline  treatment           2           2          0
    1    pain  baseline    control           2           2          0
    2    pain     week8  treatment           2           1          1
    3    pain     week8    control           2           0          2
    """
    require_columns(
        dataset, ["participant_id", "arm", "outcome", "visit", "value"], "the analysis dataset"
    )
    visits = _visit_order(dataset)
    rows = []
    for outcome in pd.unique(dataset["outcome"]):
        part = dataset.loc[dataset["outcome"] == outcome]
        for visit in visits:
            at_visit = part.loc[part["visit"].astype(str) == visit]
            if at_visit.empty:
                continue
            for arm in ARMS:
                expected = part.loc[part["arm"] == arm, "participant_id"].nunique()
                observed = at_visit.loc[
                    (at_visit["arm"] == arm) & at_visit["value"].notna(), "participant_id"
                ].nunique()
                rows.append(
                    {
                        "outcome": str(outcome),
                        "visit": visit,
                        "arm": arm,
                        "n_expected": expected,
                        "n_observed": observed,
                        "n_missing": expected - observed,
                    }
                )
    frame = pd.DataFrame(rows, columns=MISSING_COLUMNS)
    for column in MISSING_COLUMNS[3:]:
        frame[column] = frame[column].astype("int64")
    return frame


# --------------------------------------------------------------------------------------------
# MI ANCOVA and tipping point
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _MiFits:
    """Per-imputation ANCOVA pieces from which the delta-shifted fit follows in closed form.

    With the design X fixed, shifting y by delta * s changes the coefficients to b + delta c,
    c = (X'X)^-1 X' s, and the residuals to e + delta r, r = s - X c.
    """

    b: np.ndarray  # (m,) arm coefficient
    c: np.ndarray  # (m,) d b / d delta
    rss0: np.ndarray  # (m,)
    e_r: np.ndarray  # (m,) e'r
    r_r: np.ndarray  # (m,) r'r
    v11: np.ndarray  # (m,) [(X'X)^-1] arm diagonal element
    df: float
    n_treatment: int
    n_control: int
    imputed: Mapping[str, int]
    formula: str

    def pooled(self, delta: float, ci_level: float) -> RubinResult:
        rss = self.rss0 + 2.0 * delta * self.e_r + delta**2 * self.r_r
        return rubin_pool(self.b + delta * self.c, rss / self.df * self.v11, self.df, ci_level)


def _batched_ols(x0: np.ndarray, y: np.ndarray, baseline: np.ndarray, s: np.ndarray) -> dict[str, np.ndarray]:
    """The ANCOVAs of all m imputations at once, from their normal equations.

    ``x0`` is the design ``[1, arm, baseline, covariates...]`` (n x p) of any imputation; the
    imputations differ only in the baseline column (``baseline``, n x m) and the response (``y``,
    n x m). Every column but the intercept is centred first (per imputation for baseline and y),
    which leaves the slopes, residuals and the slope block of ``(X'X)^-1`` unchanged and keeps the
    normal equations well conditioned. The m Gram matrices are assembled from the fixed columns'
    cross-products and solved together; ``s`` (n,) is regressed alongside ``y`` (the tipping-point
    shift). Returns per imputation ``b`` (arm coefficient), ``c`` (arm coefficient of s), ``rss0``,
    ``e_r``, ``r_r`` and ``v11`` (the arm element of ``(X'X)^-1``).
    """
    fixed = [1, *range(3, x0.shape[1])]  # arm and covariates; slot 1 of the slopes is baseline
    q = x0.shape[1] - 1
    slots = [0, *range(2, q)]
    z = x0[:, fixed] - x0[:, fixed].mean(axis=0)
    b = baseline - baseline.mean(axis=0)
    yc = y - y.mean(axis=0)
    sc = s - s.mean()
    m = y.shape[1]
    gram = np.empty((m, q, q))
    gram[:, np.array(slots)[:, None], slots] = z.T @ z
    zb = (z.T @ b).T  # (m, q - 1)
    gram[:, slots, 1] = zb
    gram[:, 1, slots] = zb
    gram[:, 1, 1] = np.einsum("ij,ij->j", b, b)
    rhs = np.empty((m, q, 2))
    rhs[:, slots, 0] = (z.T @ yc).T
    rhs[:, 1, 0] = np.einsum("ij,ij->j", b, yc)
    rhs[:, slots, 1] = z.T @ sc
    rhs[:, 1, 1] = b.T @ sc
    inverse = np.linalg.inv(gram)
    solution = inverse @ rhs
    beta, gamma = solution[:, :, 0], solution[:, :, 1]
    resid = yc - z @ beta[:, slots].T - b * beta[:, 1]
    resid_s = sc[:, None] - z @ gamma[:, slots].T - b * gamma[:, 1]
    return {
        "b": beta[:, 0],
        "c": gamma[:, 0],
        "rss0": np.einsum("ij,ij->j", resid, resid),
        "e_r": np.einsum("ij,ij->j", resid, resid_s),
        "r_r": np.einsum("ij,ij->j", resid_s, resid_s),
        "v11": inverse[:, 0, 0],
    }


def _mi_fits(
    dataset: pd.DataFrame,
    outcome: str,
    visit: str,
    visits: Sequence[str],
    m: int,
    seed: int,
    covariates: Sequence[str],
    participants: pd.DataFrame | None,
    progress: ProgressCallback | None = None,
) -> _MiFits:
    if visit not in visits:
        raise UsageError(f"visit '{visit}' is not one of the follow-up visits {list(visits)}")
    imp = impute_outcome(dataset, outcome=outcome, visits=visits, m=m, seed=seed)
    k = imp.columns.index(visit)
    base_rows = visit_rows(dataset, outcome, visit, covariates, participants).set_index(
        "participant_id"
    )
    base_rows = base_rows.reindex(imp.participant_id)
    shift = ((imp.arm == "treatment") & ~imp.observed[:, k]).astype(float)
    # every value and baseline is imputed, so the complete cases (participants with every covariate)
    # and the covariate columns are the same in all m designs: only baseline and response differ
    rows = base_rows.assign(arm=imp.arm, value=imp.values[0, :, k], baseline=imp.values[0, :, 0])
    rows = rows.rename_axis("participant_id").reset_index()
    design = design_matrix(rows, covariates)
    used = np.flatnonzero(rows[["value", "baseline", *covariates]].notna().all(axis=1).to_numpy())
    df = float(len(design.y) - design.x.shape[1])
    if df < 1:
        raise ModelError(
            f"too few complete participants for the ANCOVA of '{outcome}' at '{visit}' "
            f"({len(design.y)} for {design.x.shape[1]} coefficients)"
        )
    if design.aliased:
        raise ModelError(
            f"the imputed ANCOVA of '{outcome}' at '{visit}' cannot be fitted: the baseline is constant "
            "or collinear with arm in the complete cases"
        )
    deadline = Deadline(f"the ANCOVA of {m} imputed datasets", UsageError, "use fewer imputations")
    deadline.check()  # the imputations took their time; the fits are one linear pass
    report = loop_progress("imputed datasets", m, progress)
    try:
        out = _batched_ols(design.x, imp.values[:, used, k].T, imp.values[:, used, 0].T, shift[used])
    except np.linalg.LinAlgError:
        raise ModelError(
            f"the ANCOVA of an imputed dataset of '{outcome}' at '{visit}' is rank-deficient (an imputed "
            "baseline is collinear with the other terms)"
        ) from None
    for j in range(m):  # all m were analysed together; the callback still hears of each one
        report(j + 1, m)
    imputed = {a: int(((imp.arm == a) & ~imp.observed[:, k]).sum()) for a in ARMS}
    return _MiFits(
        df=df,
        n_treatment=int((design.arm == "treatment").sum()),
        n_control=int((design.arm == "control").sum()),
        imputed=imputed,
        formula=design.formula,
        **out,
    )


def _follow_up_visits(dataset: pd.DataFrame, outcome: str) -> list[str]:
    part = dataset.loc[dataset["outcome"] == outcome]
    if "baseline_flag" in part.columns:
        part = part.loc[~part["baseline_flag"].astype(bool)]
    elif "visit_week" in part.columns:
        part = part.loc[part["visit_week"] > 0]
    present = set(pd.unique(part["visit"]).astype(str))
    return [v for v in _visit_order(dataset) if v in present]


@dataclass(frozen=True)
class MiAncovaResult:
    """Multiple-imputation ANCOVA pooled by Rubin's rules.

    Attributes
    ----------
    pooled
        :class:`RubinResult` for the adjusted mean difference treatment - control.
    effect
        One tidy row (``n_boot`` holds m, the number of imputations, and ``seed`` the seed).
    imputed
        Number of imputed follow-up values at the analysed visit per arm.
    """

    pooled: RubinResult
    effect: pd.DataFrame
    imputed: Mapping[str, int]


def multiple_imputation_ancova(
    dataset: pd.DataFrame,
    *,
    outcome: str,
    visit: str,
    m: int = 20,
    seed: int,
    visits: Sequence[str] | None = None,
    covariates: Sequence[str] = (),
    participants: pd.DataFrame | None = None,
    ci_level: float = 0.95,
    labels: Mapping[str, str] | None = None,
    progress: ProgressCallback | None = None,
) -> MiAncovaResult:
    """ANCOVA at ``visit`` on ``m`` imputed datasets, pooled with Rubin's rules.

    Missing baseline and follow-up values of ``outcome`` are imputed within arm
    (:func:`impute_outcome`); each completed dataset is analysed by the same OLS ANCOVA as
    :func:`analysis.stats.models.ancova.ancova` (``value ~ arm + baseline + covariates``); the m arm
    coefficients and their squared SEs are pooled by :func:`rubin_pool` (Barnard-Rubin df).
    Participants missing a covariate are left out of every analysis (covariates are not imputed).
    Rubin's rules (Rubin 1987): the pooled estimate is the mean of the m estimates and its
    variance ``T = W + (1 + 1/m) B``, W the mean within-imputation variance and B the
    between-imputation variance of the estimates.

    Parameters
    ----------
    dataset
        The long analysis dataset (``participant_id, arm, outcome, visit, value, baseline``).
    outcome, visit
        Which outcome, and the follow-up visit analysed.
    m, seed
        Number of imputations and the seed; both are recorded in the result row.
    visits
        Follow-up visits in time order used by the imputation model; default: every follow-up
        visit of the outcome, ordered by ``visit_week``.
    covariates, participants
        Extra ANCOVA terms, taken from the participants table (as in
        :func:`analysis.stats.models.ancova.ancova`).
    ci_level
        Confidence level of the interval.
    labels
        ``{"treatment": ..., "control": ...}`` arm labels for the ``contrast`` column.
    progress
        Called as ``progress(done, m)`` after each imputed dataset is analysed (default: the
        callback installed with :func:`analysis.core.progress.reporting_progress`, if any); it does
        not change the result.

    Returns
    -------
    MiAncovaResult

    Examples
    --------
    Five participants per arm; ``t5`` has no week-8 value:

    >>> import pandas as pd
    >>> data = pd.DataFrame({
    ...     "participant_id": ["t1", "t2", "t3", "t4", "t5", "c1", "c2", "c3", "c4", "c5"],
    ...     "arm": ["treatment"] * 5 + ["control"] * 5,
    ...     "outcome": "pain", "visit": "week8",
    ...     "baseline": [6.0, 7.0, 8.0, 9.0, 7.0, 6.0, 7.0, 8.0, 9.0, 7.0],
    ...     "value": [3.0, 4.0, 4.0, 6.0, None, 6.0, 6.0, 7.0, 8.0, 6.0]})
    >>> res = multiple_imputation_ancova(data, outcome="pain", visit="week8", m=5, seed=1)
    >>> res.imputed
    {'treatment': 1, 'control': 0}
    >>> round(res.pooled.estimate, 3), round(res.pooled.std_error, 3), round(res.pooled.df, 1)
    (-2.456, 0.276, 5.3)
    >>> res.effect[["estimate", "ci_low", "ci_high", "n_treatment", "n_control", "n_boot"]].round(3)
       estimate  ci_low  ci_high  n_treatment  n_control  n_boot
    0    -2.456  -3.155   -1.756            5          5       5

    The complete-case :func:`~analysis.stats.models.ancova.ancova` on the same data gives -2.431
    (SE 0.300); the Barnard-Rubin df (5.3) is below the residual df of the completed data
    (10 - 3 = 7).
    """
    visits = list(visits) if visits is not None else _follow_up_visits(dataset, outcome)
    fits = _mi_fits(dataset, outcome, visit, visits, m, seed, list(covariates), participants, progress)
    pooled = fits.pooled(0.0, ci_level)
    labels = dict(labels or {"treatment": "treatment", "control": "control"})
    row = {
        "outcome": outcome,
        "visit": visit,
        "contrast": contrast_label(labels["treatment"], labels["control"]),
        "measure": "adjusted mean difference",
        "estimate": pooled.estimate,
        "std_error": pooled.std_error,
        "statistic": pooled.statistic,
        "df": pooled.df,
        "p_value": pooled.p_value,
        "ci_low": pooled.ci_low,
        "ci_high": pooled.ci_high,
        "ci_level": ci_level,
        "method": (
            f"multiple imputation (sequential Bayesian regression within arm, m = {m}) + ANCOVA "
            f"{fits.formula}; Rubin's rules, Barnard-Rubin df"
        ),
        "n_treatment": fits.n_treatment,
        "n_control": fits.n_control,
        "n_boot": m,
        "seed": seed,
        "note": (
            f"imputed at {visit}: treatment {fits.imputed['treatment']}, control {fits.imputed['control']}; "
            f"fraction of missing information {pooled.fmi:.3f}; n_boot holds the number of imputations"
            + (f"; {pooled.note}" if pooled.note else "")
        ),
    }
    return MiAncovaResult(pooled=pooled, effect=tidy_frame([row]), imputed=fits.imputed)


@dataclass(frozen=True)
class TippingPointResult:
    """Delta-adjusted tipping-point analysis.

    Attributes
    ----------
    delta
        Smallest shift (>= 0, in outcome units, applied in ``direction``) at which the pooled
        p-value reaches alpha, i.e. the conclusion "treatment is better" no longer holds; NaN
        when the unshifted analysis is not significant in favour of treatment, or when no
        treatment value was imputed (then no shift can change the result).
    direction
        +1 or -1: the sign of the shift added to the treatment arm's imputed values (the direction
        that makes treatment look worse).
    curve
        The pooled analysis along a grid of deltas: ``delta, shift, estimate, std_error, df,
        p_value, ci_low, ci_high``.
    effect
        One tidy row (``measure`` "tipping point delta"; ``estimate`` is delta).
    """

    delta: float
    direction: int
    curve: pd.DataFrame
    effect: pd.DataFrame


def tipping_point(
    dataset: pd.DataFrame,
    *,
    outcome: str,
    visit: str,
    better: Literal["lower", "higher"],
    m: int = 20,
    seed: int,
    visits: Sequence[str] | None = None,
    covariates: Sequence[str] = (),
    participants: pd.DataFrame | None = None,
    ci_level: float = 0.95,
    labels: Mapping[str, str] | None = None,
    grid_size: int = 101,
    progress: ProgressCallback | None = None,
) -> TippingPointResult:
    """Delta-adjusted tipping point of the multiple-imputation ANCOVA.

    After imputing as in :func:`multiple_imputation_ancova` (same ``m`` and ``seed``, hence the
    same imputations), the treatment arm's imputed values at ``visit`` are shifted by
    ``direction * delta`` with ``direction = +1`` when lower is better and ``-1`` when higher is
    better (the missing treatment participants are assumed to do worse than MAR predicts); control
    imputations are untouched. Because the ANCOVA is linear in the response, each imputation's
    coefficient and residual sum of squares are exact closed forms in delta, so the pooled p-value
    is a smooth function of delta; the tipping point is its first crossing of
    alpha = 1 - ci_level, found on a grid from 0 to the delta that moves the pooled estimate to
    zero and refined with Brent's method.

    Parameters
    ----------
    dataset, outcome, visit, m, seed, visits, covariates, participants, ci_level, labels, progress
        As in :func:`multiple_imputation_ancova`.
    better
        ``"lower"`` or ``"higher"``: which direction of the outcome is an improvement.
    grid_size
        Number of deltas in ``curve`` (at least 3).

    Returns
    -------
    TippingPointResult

    Examples
    --------
    The data of :func:`multiple_imputation_ancova`'s example (MI estimate -2.456, lower is
    better); only ``t5``'s imputed value is shifted:

    >>> import pandas as pd
    >>> data = pd.DataFrame({
    ...     "participant_id": ["t1", "t2", "t3", "t4", "t5", "c1", "c2", "c3", "c4", "c5"],
    ...     "arm": ["treatment"] * 5 + ["control"] * 5,
    ...     "outcome": "pain", "visit": "week8",
    ...     "baseline": [6.0, 7.0, 8.0, 9.0, 7.0, 6.0, 7.0, 8.0, 9.0, 7.0],
    ...     "value": [3.0, 4.0, 4.0, 6.0, None, 6.0, 6.0, 7.0, 8.0, 6.0]})
    >>> tp = tipping_point(data, outcome="pain", visit="week8", better="lower", m=5, seed=1)
    >>> tp.direction, round(tp.delta, 3)
    (1, 3.273)
    >>> i = int(tp.curve["delta"].searchsorted(tp.delta))
    >>> tp.curve.iloc[[i - 1, i]][["delta", "estimate", "p_value"]].round(3)
        delta  estimate  p_value
    26  3.192    -1.817    0.045
    27  3.315    -1.793    0.053

    Shifting one of five treatment values by delta moves the estimate by about delta / 5
    (-2.456 + 3.27 / 5 = -1.80), and the pooled p-value crosses 0.05 between the two grid points.
    """
    if better not in ("lower", "higher"):
        raise UsageError(f"better must be 'lower' or 'higher', found {better!r}")
    if grid_size < 3:
        raise UsageError(f"grid_size must be at least 3, found {grid_size}")
    visits = list(visits) if visits is not None else _follow_up_visits(dataset, outcome)
    fits = _mi_fits(dataset, outcome, visit, visits, m, seed, list(covariates), participants, progress)
    alpha = 1.0 - ci_level
    improvement = 1 if better == "higher" else -1
    direction = -improvement
    base = fits.pooled(0.0, ci_level)
    favourable = base.p_value < alpha and base.estimate * improvement > 0
    slope = float(np.mean(fits.c)) * direction  # d(pooled estimate)/d(delta)
    if favourable and slope * improvement < 0:
        # the delta at which the pooled estimate reaches 0; p = 1 there, so the crossing is below it
        upper = abs(base.estimate / slope)
        deltas = np.linspace(0.0, upper, grid_size)
    else:
        scale = max(abs(base.estimate), base.std_error)
        deltas = np.linspace(0.0, 4.0 * scale, grid_size)
    pooled = [fits.pooled(direction * d, ci_level) for d in deltas]
    curve = pd.DataFrame(
        {
            "delta": deltas,
            "shift": direction * deltas,
            "estimate": [p.estimate for p in pooled],
            "std_error": [p.std_error for p in pooled],
            "df": [p.df for p in pooled],
            "p_value": [p.p_value for p in pooled],
            "ci_low": [p.ci_low for p in pooled],
            "ci_high": [p.ci_high for p in pooled],
        }
    )
    delta = np.nan
    p = curve["p_value"].to_numpy()
    above = np.flatnonzero(p >= alpha)
    if not np.isfinite(base.p_value):
        why = f"the unshifted MI analysis has no test ({base.note}), so there is no tipping point"
    elif not favourable:
        why = "the unshifted MI analysis is not significant in favour of treatment, so there is no tipping point"
    elif fits.imputed["treatment"] == 0:
        why = "no treatment value was imputed at this visit, so no shift changes the result"
    elif above.size == 0 or above[0] == 0:
        why = "the pooled p-value does not reach alpha on the searched range of shifts, so no tipping point was found"
    else:
        i = int(above[0])

        def gap(d: float) -> float:
            return fits.pooled(direction * d, ci_level).p_value - alpha

        root, info = optimize.brentq(
            gap, deltas[i - 1], deltas[i], xtol=1e-10, rtol=1e-12, maxiter=200, full_output=True, disp=False
        )
        if info.converged:
            delta = float(root)
            why = (
                f"shift added to the treatment arm's {fits.imputed['treatment']} imputed value(s) at {visit} "
                f"({'+' if direction > 0 else '-'}delta, unfavourable to treatment) at which the pooled "
                f"p-value reaches {alpha:.3g}"
            )
        else:
            why = "the search for the tipping point did not converge in 200 iterations"
    labels = dict(labels or {"treatment": "treatment", "control": "control"})
    row = {
        "outcome": outcome,
        "visit": visit,
        "contrast": contrast_label(labels["treatment"], labels["control"]),
        "measure": "tipping point delta",
        "estimate": delta,
        "ci_level": ci_level,
        "method": f"delta-adjusted multiple imputation (m = {m}) + ANCOVA {fits.formula}; Rubin's rules",
        "n_treatment": fits.n_treatment,
        "n_control": fits.n_control,
        "n_boot": m,
        "seed": seed,
        "note": why,
    }
    return TippingPointResult(
        delta=delta, direction=direction, curve=curve, effect=tidy_frame([row])
    )
