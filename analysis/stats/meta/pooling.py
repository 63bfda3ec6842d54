"""The fit: :func:`pool` (fixed or random effects, z or Knapp-Hartung test, prediction interval,
Q, I^2, H^2), its result :class:`MetaResult`, and :func:`leave_one_out` refits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
from scipy import stats

from analysis.core.errors import UsageError
from analysis.core.tidy import check_ci_level
from analysis.stats.meta.tau2 import (
    METHODS,
    Method,
    arrays,
    estimate_tau2,
    inverse_variance,
    scaled_arrays,
    tau2_confint,
)

Test = Literal["z", "knha"]
TESTS: tuple[str, ...] = ("z", "knha")


@dataclass(frozen=True)
class MetaResult:
    """A fitted meta-analysis (one outcome, one model), on the analysis scale.

    Attributes
    ----------
    method, test, ci_level
        As requested (``method`` one of REML, DL, PM, ML, FE; ``test`` z or knha).
    studies, yi, vi
        The input, in input order.
    weights
        Per-study weights in percent (sum 100), ``w_i = 1 / (v_i + tau^2)`` normalised.
    k
        Number of studies.
    estimate, std_error, statistic, df, p_value, ci_low, ci_high
        Pooled estimate, its standard error (Knapp-Hartung-adjusted when ``test = "knha"``), z or t
        statistic, t degrees of freedom (``k - 1``; NaN for z), two-sided p-value and CI.
    pi_low, pi_high
        Prediction interval for the true effect in a new study (NaN for the fixed-effect model).
    tau2, tau2_ci_low, tau2_ci_high, tau
        Between-study variance, its Q-profile CI (NaN for FE and for k = 1), its square root.
    i2, h2
        I^2 (percent) and H^2 as metafor defines them for the fitted model.
    q, q_df, q_p_value
        Cochran's Q, its degrees of freedom ``k - 1`` and chi-square p-value.
    note
        Why a statistic is missing or degenerate, if one is (for example a Knapp-Hartung SE of 0
        when every study has the same effect: no test, zero-width interval).
    """

    method: str
    test: str
    ci_level: float
    studies: tuple[str, ...]
    yi: tuple[float, ...]
    vi: tuple[float, ...]
    weights: tuple[float, ...]
    k: int
    estimate: float
    std_error: float
    statistic: float
    df: float
    p_value: float
    ci_low: float
    ci_high: float
    pi_low: float
    pi_high: float
    tau2: float
    tau2_ci_low: float
    tau2_ci_high: float
    tau: float
    i2: float
    h2: float
    q: float
    q_df: int
    q_p_value: float
    note: str | None = None


def pool(
    yi: Sequence[float] | np.ndarray,
    vi: Sequence[float] | np.ndarray,
    *,
    studies: Sequence[str] | None = None,
    method: Method = "REML",
    test: Test = "z",
    ci_level: float = 0.95,
    tau2: float | None = None,
) -> MetaResult:
    """Pool effect sizes by a fixed-effect or random-effects model (metafor ``rma.uni``).

    Parameters
    ----------
    yi, vi
        Effect sizes and their sampling variances (``vi > 0``), on the analysis scale (log scale
        for ratio measures).
    studies
        Study labels (default ``"1"``, ``"2"``, ...).
    method
        ``"REML"`` (default), ``"DL"``, ``"PM"``, ``"ML"`` or ``"FE"`` (fixed effect).
    test
        ``"z"`` (normal) or ``"knha"``: Knapp-Hartung / HKSJ, ``Var(mu) = s^2 / sum w`` with
        ``s^2 = sum w (y - mu)^2 / (k - 1)`` (not truncated at 1, as metafor's default) and
        t with ``k - 1`` df.
    ci_level
        Confidence level of the CI, the prediction interval and the ``tau^2`` CI.
    tau2
        Fix ``tau^2`` at this value instead of estimating it (metafor's ``rma(tau2=...)``); a
        random-effects ``method`` is still required.

    Returns
    -------
    MetaResult
        ``estimate = sum w y / sum w``, ``SE = sqrt(1 / sum w)``, ``w = 1/(v + tau^2)``;
        prediction interval ``estimate -/+ crit sqrt(SE^2 + tau^2)`` with crit the normal (z) or
        ``t_{k-1}`` (knha) quantile, as metafor's ``predict.rma``; ``I^2 = 100 tau^2/(tau^2 + s^2)``
        and ``H^2 = (tau^2 + s^2)/s^2`` with ``s^2 = (k-1) sum w / ((sum w)^2 - sum w^2)``,
        ``w = 1/v`` (random effects), or ``I^2 = 100 max(0, (Q - (k-1))/Q)``, ``H^2 = Q/(k-1)``
        (fixed effect), as metafor.

    Examples
    --------
    >>> fit = pool([-0.2, 0.1, -0.4], [0.01, 0.02, 0.015], method="DL")
    >>> round(fit.estimate, 4), fit.k
    (-0.1756, 3)
    """
    y_in, v_in = arrays(yi, vi)
    # fitted on y / scale, v / scale^2 (scale a power of two, 1 unless the inputs are extreme);
    # estimates, SEs and limits are scaled back, tau^2 by scale^2
    y, v, scale = scaled_arrays(y_in, v_in)
    if method not in METHODS:
        raise UsageError(f"method must be one of {', '.join(METHODS)} (found {method!r})")
    if test not in TESTS:
        raise UsageError(f"test must be 'z' or 'knha' (found {test!r})")
    check_ci_level(ci_level)
    k = y.size
    if test == "knha" and k < 2:
        raise UsageError("the Knapp-Hartung test needs at least two studies")
    labels = tuple(str(s) for s in studies) if studies is not None else tuple(str(i + 1) for i in range(k))
    if len(labels) != k:
        raise UsageError(f"{len(labels)} study labels for {k} studies")

    if tau2 is None:
        tau2 = estimate_tau2(y, v, method)
    elif method == "FE" or not (np.isfinite(tau2) and tau2 >= 0):
        raise UsageError(f"a fixed tau2 must be a number >= 0 with a random-effects method (found {tau2!r}, {method})")
    else:
        tau2 = float(tau2) / scale**2
    notes = []
    fixed = inverse_variance(y, v)
    fit = inverse_variance(y, v + tau2)
    estimate = float(fit.mean_effect_fe)
    if test == "knha":
        std_error = float(np.sqrt(fit.var_hksj_fe))
        df = float(k - 1)
        crit = float(stats.t.isf((1 - ci_level) / 2, df))
        statistic = _ratio(estimate, std_error)
        p_value = float(2 * stats.t.sf(abs(statistic), df))
        if std_error == 0 or y.max() == y.min():  # identical effects: Q = 0 (up to rounding), so SE 0
            std_error = 0.0
            statistic = p_value = float("nan")
            notes.append(
                "the Knapp-Hartung scale is 0 (every study has the same effect, Q = 0): SE 0, "
                "no t test, zero-width interval"
            )
    else:
        std_error = float(np.sqrt(fit.var_eff_w_fe))
        df = float("nan")
        crit = float(stats.norm.isf((1 - ci_level) / 2))
        statistic = _ratio(estimate, std_error)
        p_value = float(2 * stats.norm.sf(abs(statistic)))

    q = float(fixed.q) if k > 1 else 0.0
    q_df = k - 1
    q_p = float(stats.chi2.sf(q, q_df)) if k > 1 else float("nan")
    if method == "FE" or k == 1:
        i2 = 100.0 * max(0.0, (q - q_df) / q) if k > 1 and q > 0 else (0.0 if k > 1 else float("nan"))
        h2 = q / q_df if k > 1 else float("nan")
        pi = (float("nan"), float("nan")) if method == "FE" else (estimate - crit * std_error, estimate + crit * std_error)
        tau_ci = (float("nan"), float("nan"))
    else:
        typical = _typical_variance(v)
        i2 = 100.0 * tau2 / (typical + tau2)
        h2 = (typical + tau2) / typical
        half = crit * np.sqrt(std_error**2 + tau2)
        pi = (estimate - half, estimate + half)
        tau_ci = tau2_confint(y, v, ci_level)
        if not all(np.isfinite(tau_ci)):
            notes.append("a bound of the tau^2 Q-profile CI lies beyond the floating-point range")

    return MetaResult(
        method=method,
        test=test,
        ci_level=float(ci_level),
        studies=labels,
        yi=tuple(float(x) for x in y_in),
        vi=tuple(float(x) for x in v_in),
        weights=tuple(float(x) for x in 100.0 * fit.weights_rel_fe),
        k=k,
        estimate=estimate * scale,
        std_error=std_error * scale,
        statistic=float(statistic),
        df=df,
        p_value=p_value,
        ci_low=(estimate - crit * std_error) * scale,
        ci_high=(estimate + crit * std_error) * scale,
        pi_low=float(pi[0]) * scale,
        pi_high=float(pi[1]) * scale,
        tau2=float(tau2) * scale**2,
        tau2_ci_low=float(tau_ci[0]) * scale**2,
        tau2_ci_high=float(tau_ci[1]) * scale**2,
        tau=float(np.sqrt(tau2)) * scale,
        i2=float(i2),
        h2=float(h2),
        q=q,
        q_df=q_df,
        q_p_value=q_p,
        note="; ".join(notes) or None,
    )


def _typical_variance(v: np.ndarray) -> float:
    """Higgins-Thompson typical within-study variance ``(k-1) sum w / ((sum w)^2 - sum w^2)``, ``w = 1/v``.

    When one study dominates the weights, ``(sum w)^2 - sum w^2`` cancels catastrophically; it is then
    computed as ``sum_i w_i sum_{j != i} w_j`` on weights normalised by the largest.
    """
    k = v.size
    w = 1.0 / v
    denom = w.sum() ** 2 - (w**2).sum()
    if denom > 1e-8 * w.sum() ** 2:
        return float((k - 1) * w.sum() / denom)
    top = w.max()
    wn = w / top
    before = np.concatenate([[0.0], np.cumsum(wn)[:-1]])
    after = np.concatenate([np.cumsum(wn[::-1])[::-1][1:], [0.0]])
    return float((k - 1) * wn.sum() / np.sum(wn * (before + after)) / top)


def leave_one_out(result: MetaResult) -> pd.DataFrame:
    """Refit the model leaving out each study in turn (metafor ``leave1out``).

    Returns one row per omitted study with columns ``study`` (the omitted one), ``k``,
    ``estimate``, ``std_error``, ``statistic``, ``p_value``, ``ci_low``, ``ci_high``, ``tau2``,
    ``i2``, ``h2``, ``q``, ``q_p_value``, on the analysis scale, same method, test and level.

    Examples
    --------
    >>> fit = pool([0.1, 0.3, 0.2], [0.01, 0.02, 0.01], studies=["A", "B", "C"], method="FE")
    >>> leave_one_out(fit)["study"].tolist()
    ['A', 'B', 'C']
    """
    if result.k < 2:
        raise UsageError("leave-one-out needs at least two studies")
    rows = []
    for j, label in enumerate(result.studies):
        keep = [i for i in range(result.k) if i != j]
        fit = pool(
            [result.yi[i] for i in keep],
            [result.vi[i] for i in keep],
            studies=[result.studies[i] for i in keep],
            method=result.method,  # type: ignore[arg-type]
            test=result.test if len(keep) > 1 else "z",  # type: ignore[arg-type]
            ci_level=result.ci_level,
        )
        rows.append(
            {
                "study": label,
                "k": fit.k,
                "estimate": fit.estimate,
                "std_error": fit.std_error,
                "statistic": fit.statistic,
                "p_value": fit.p_value,
                "ci_low": fit.ci_low,
                "ci_high": fit.ci_high,
                "tau2": fit.tau2,
                "i2": fit.i2,
                "h2": fit.h2,
                "q": fit.q,
                "q_p_value": fit.q_p_value,
            }
        )
    return pd.DataFrame(rows)


def _ratio(estimate: float, std_error: float) -> float:
    """``estimate / std_error``; NaN or inf (not an exception) when a Knapp-Hartung SE is 0."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(np.float64(estimate) / std_error)
