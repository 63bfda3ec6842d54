"""Rubin's rules: :func:`rubin_pool` combines per-imputation estimates with Rubin's rules and the
Barnard-Rubin (1999) small-sample degrees of freedom (as R ``mice::pool``) into a
:class:`RubinResult`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from analysis.core.errors import UsageError
from analysis.core.tidy import check_ci_level

# --------------------------------------------------------------------------------------------
# Rubin's rules
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RubinResult:
    """Rubin's rules for one scalar estimate over ``m`` imputations.

    Attributes
    ----------
    estimate
        Pooled estimate, the mean of the per-imputation estimates (Q-bar).
    within, between, total
        Within-imputation variance U-bar (mean of the variances), between-imputation variance
        B (sample variance of the estimates, divisor m - 1), total T = U-bar + (1 + 1/m) B.
    std_error
        sqrt(T).
    df
        Barnard-Rubin degrees of freedom.
    riv, lambda_, fmi
        Relative increase in variance (1 + 1/m) B / U-bar, the proportion of variance due to
        missingness lambda = (1 + 1/m) B / T, and the fraction of missing information
        (riv + 2 / (df + 3)) / (1 + riv), as mice reports them.
    statistic, p_value, ci_low, ci_high, ci_level
        t = estimate / std_error on ``df``; two-sided p; t-based CI.
    m, df_complete
        Number of imputations and the complete-data residual df.
    note
        Why a statistic is missing, if one is: with total variance 0 (every imputation gives the
        same estimate with SE 0) t and p are NaN and the interval has zero width; with
        within-imputation variance 0 but between-imputation variance > 0 the Barnard-Rubin df is 0
        and there is no test or interval.
    """

    estimate: float
    within: float
    between: float
    total: float
    std_error: float
    df: float
    riv: float
    lambda_: float
    fmi: float
    statistic: float
    p_value: float
    ci_low: float
    ci_high: float
    ci_level: float
    m: int
    df_complete: float
    note: str | None = None


# Rubin's rules square the estimates: their magnitudes (and SEs) must stay below this.
MAGNITUDE_LIMIT = 1e150


def _barnard_rubin_df(m: int, lam: np.ndarray, df_complete: float) -> np.ndarray:
    # nu_old = (m - 1) / lambda^2 (Rubin 1987); nu_obs = (nu_com + 1) / (nu_com + 3) nu_com (1 - lambda);
    # nu = nu_old nu_obs / (nu_old + nu_obs) (Barnard & Rubin 1999), written as the harmonic form
    # 1 / (1/nu_old + 1/nu_obs) so that lambda = 0 (no between-imputation variance) gives nu_obs.
    nu_obs = (df_complete + 1.0) / (df_complete + 3.0) * df_complete * (1.0 - lam)
    inv_old = lam**2 / (m - 1.0)
    with np.errstate(over="ignore", divide="ignore"):  # nu_obs ~ 0: 1/nu_obs = inf, df = 0 (rubin_pool says so)
        return 1.0 / (inv_old + 1.0 / nu_obs)


def rubin_pool(
    estimates: Sequence[float] | np.ndarray,
    variances: Sequence[float] | np.ndarray,
    df_complete: float,
    ci_level: float = 0.95,
) -> RubinResult:
    """Pool per-imputation estimates and their squared SEs with Rubin's rules.

    Q-bar = mean(q_j); U-bar = mean(u_j); B = sum (q_j - Q-bar)^2 / (m - 1);
    T = U-bar + (1 + 1/m) B; lambda = (1 + 1/m) B / T; df by Barnard & Rubin (1999):
    nu = nu_old nu_obs / (nu_old + nu_obs), nu_old = (m - 1) / lambda^2,
    nu_obs = (nu_com + 1) / (nu_com + 3) nu_com (1 - lambda). Matches ``mice::pool`` (which floors
    lambda at 1e-4; here lambda = 0 gives nu = nu_obs exactly).

    Parameters
    ----------
    estimates, variances
        One estimate and one variance (SE squared) per imputation; m >= 2.
    df_complete
        Residual degrees of freedom of the complete-data analysis (nu_com).
    ci_level
        Confidence level of the t-based interval.

    Examples
    --------
    >>> r = rubin_pool([1.0, 1.2, 1.4], [0.04, 0.05, 0.06], df_complete=50)
    >>> round(r.estimate, 6), round(r.total, 6)
    (1.2, 0.103333)
    """
    q = np.asarray(estimates, dtype=float)
    u = np.asarray(variances, dtype=float)
    if q.ndim != 1 or q.shape != u.shape:
        raise UsageError("estimates and variances must be one-dimensional and of equal length")
    m = q.size
    if m < 2:
        raise UsageError(f"Rubin's rules need at least 2 imputations, found {m}")
    if not (np.all(np.isfinite(q)) and np.all(np.isfinite(u)) and np.all(u >= 0)):
        raise UsageError("estimates must be finite and variances finite and non-negative")
    if np.max(np.abs(q)) > MAGNITUDE_LIMIT or np.max(u) > MAGNITUDE_LIMIT**2:
        raise UsageError(
            f"estimates or SEs above {MAGNITUDE_LIMIT:.0e} in magnitude cannot be pooled in double "
            "precision (their squares overflow); rescale the outcome"
        )
    if not (df_complete > 0 and np.isfinite(df_complete)):
        raise UsageError(f"df_complete must be a positive finite number, found {df_complete}")
    check_ci_level(ci_level)
    qbar = float(q.mean())
    ubar = float(u.mean())
    b = float(q.var(ddof=1))
    t = ubar + (1.0 + 1.0 / m) * b
    note = None
    if t == 0:  # every imputation gives the same estimate with SE 0
        lam, riv = 0.0, 0.0
        note = ("total variance 0 (every imputation gives the same estimate with SE 0): "
                "SE 0, no t test, zero-width interval")
    else:
        lam = (1.0 + 1.0 / m) * b / t
        riv = (1.0 + 1.0 / m) * b / ubar if ubar > 0 else np.inf
    if lam >= 1.0:  # within-imputation variance 0: nu_obs = 0, so the Barnard-Rubin df is 0
        df = 0.0
        note = ("within-imputation variance 0 with between-imputation variance > 0: Barnard-Rubin "
                "df 0, no t test or interval")
    else:
        df = float(_barnard_rubin_df(m, np.asarray(lam), float(df_complete)))
    se = float(np.sqrt(t))
    crit = stats.t.ppf(0.5 + ci_level / 2.0, df) if df > 0 else np.nan
    if not np.isfinite(crit) and note is None:
        note = (f"Barnard-Rubin df {df:.3g} (complete-data df {df_complete:.3g}) is too small for a "
                "t quantile: no t test or interval")
    stat = qbar / se if se > 0 and np.isfinite(crit) else np.nan
    half = crit * se if se > 0 else 0.0
    fmi = 1.0 if np.isinf(riv) else (riv + 2.0 / (df + 3.0)) / (1.0 + riv)
    return RubinResult(
        estimate=qbar,
        within=ubar,
        between=b,
        total=t,
        std_error=se,
        df=df,
        riv=float(riv),
        lambda_=float(lam),
        fmi=float(fmi),
        statistic=float(stat),
        p_value=float(2.0 * stats.t.sf(abs(stat), df)) if np.isfinite(stat) else np.nan,
        ci_low=qbar - half,
        ci_high=qbar + half,
        ci_level=ci_level,
        m=m,
        df_complete=float(df_complete),
        note=note,
    )
