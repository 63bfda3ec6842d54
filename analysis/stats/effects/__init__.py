"""Effect sizes, metafor-exact: one engine with two entry points (arm summaries, participant data).

Arm-summary functions take ``n, mean, sd`` per arm (group 1 = treatment) and return a frozen
:class:`EffectSize`; :func:`escalc` applies them row-wise to a metafor-style frame
(``n1i, m1i, sd1i, n2i, m2i, sd2i`` or ``ni, m1i, m2i, sd1i, sd2i, ri``) and returns
``yi, vi, sei, ci_low, ci_high, note``. :func:`effect_sizes_table` computes every applicable
measure from the long analysis dataset (DESIGN.md section 4) into the tidy result vocabulary.

Defaults (each named in the ``method`` string of every result):

* Hedges' small-sample factor is the exact ``J(m) = Gamma(m/2) / (sqrt(m/2) Gamma((m-1)/2))``
  (metafor ``correct=TRUE``), not the approximation ``1 - 3/(4m - 1)``.
* SMD sampling variance: metafor's default ``vtype="LS"``, ``1/n1 + 1/n2 + g^2 / (2(n1+n2))``;
  ``LS2``, ``LS3``, ``UB`` and ``H0`` are selectable, with metafor's formulas.
* Confidence intervals: Wald on the sampling variance, ``yi -/+ z sqrt(vi)`` (metafor's
  ``summary.escalc``); for d and g also the noncentral-t interval of R's effectsize
  (:func:`smd_noncentral_ci`); from participant data, stratified bootstrap (:mod:`analysis.stats.effects.bootstrap`).
* ROM is the plain ``log(m1/m2)`` (metafor ``correct=FALSE``, which the reference values use).
* Morris (2008) d_ppc2 uses Morris's own ``c_p = 1 - 3/(4(nT + nC - 2) - 1)`` and his eq. 25
  variance.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import optimize, special, stats

from analysis.core.errors import DataError, UsageError, failure
from analysis.core.tidy import (
    RESULT_COLUMNS,
    check_ci_level,
    contrast_label,
    tidy_frame,
    z_quantile,
)
from analysis.stats.effects.bootstrap import bootstrap_ci

SMD_VTYPES = ("LS", "LS2", "LS3", "UB", "H0")
SMC_VTYPES = ("LS", "LS2", "UB", "H0")
BETWEEN_MEASURES = ("MD", "SMD", "SMDH", "ROM")
WITHIN_MEASURES = ("MC", "SMCC", "SMCR")
MEASURES = BETWEEN_MEASURES + WITHIN_MEASURES
# Measures of the headline between-arm table (issue 2): MD and Hedges' g on follow-up values.
BETWEEN_ARM_HEADLINE = ("MD", "SMD")


@dataclass(frozen=True)
class EffectSize:
    """One effect size with its sampling variance and confidence interval.

    Attributes
    ----------
    measure : str
        metafor name (``MD``, ``SMD``, ``SMDH``, ``ROM``, ``MC``, ``SMCC``, ``SMCR``) or a trialkit
        name (``cohens_d``, ``glass_delta``, ``d_ppc2``, ``pct_change_of_means`` ...).
    estimate : float
        ``yi`` in metafor's vocabulary.
    variance : float
        ``vi``: the large-sample sampling variance used for the Wald interval.
    std_error : float
        ``sei = sqrt(vi)``.
    ci_low, ci_high : float
        Confidence limits.
    ci_level : float
        Confidence level.
    method : str
        Formula, variance type and interval type, spelled out.
    note : str or None
        Why a value is missing, if one is.
    """

    measure: str
    estimate: float
    variance: float
    std_error: float
    ci_low: float
    ci_high: float
    ci_level: float
    method: str
    note: str | None = None


def _wald(
    measure: str, yi: float, vi: float, ci_level: float, method: str, note: str | None = None
) -> EffectSize:
    check_ci_level(ci_level)
    sei = math.sqrt(vi) if vi >= 0 else math.nan
    z = z_quantile(ci_level)
    return EffectSize(
        measure, float(yi), float(vi), sei, yi - z * sei, yi + z * sei, ci_level, method, note
    )


def hedges_j(df: float) -> float:
    """Exact small-sample correction ``J(m) = Gamma(m/2) / (sqrt(m/2) Gamma((m-1)/2))``.

    Matches metafor's ``.cmicalc`` (``correct=TRUE``) and effectsize's ``hedges_g``. Computed as
    the Pochhammer symbol ``Gamma(a + 1/2)/Gamma(a)``, ``a = (m-1)/2`` (``scipy.special.poch``),
    which stays accurate for large ``m`` where a difference of log-gammas would cancel.

    Examples
    --------
    >>> round(hedges_j(10), 6)  # approximation 1 - 3/(4*10 - 1) = 0.923077
    0.922746
    """
    if df <= 1:
        return math.nan
    return float(special.poch((df - 1) / 2, 0.5)) / math.sqrt(df / 2)


def _pooled_sd(n1: float, sd1: float, n2: float, sd2: float) -> float:
    return math.sqrt(((n1 - 1) * sd1**2 + (n2 - 1) * sd2**2) / (n1 + n2 - 2))


# --------------------------------------------------------------------------------------------
# Between arms
# --------------------------------------------------------------------------------------------


def mean_difference(
    n1: float,
    m1: float,
    sd1: float,
    n2: float,
    m2: float,
    sd2: float,
    *,
    ci_level: float = 0.95,
    vtype: str = "LS",
) -> EffectSize:
    """Raw mean difference, metafor ``escalc("MD")``.

    ``yi = m1 - m2``; ``vi = sd1^2/n1 + sd2^2/n2`` (vtype ``"LS"``/``"UB"``, metafor's default,
    no equal-variance assumption) or ``sd_pooled^2 (1/n1 + 1/n2)`` (``"HO"``). Wald CI.

    Examples
    --------
    >>> mean_difference(29, 85.7, 8.35, 26, 81.1, 4.74).estimate
    4.6000000000000085
    """
    if vtype in ("LS", "UB"):
        vi = sd1**2 / n1 + sd2**2 / n2
    elif vtype == "HO":
        vi = _pooled_sd(n1, sd1, n2, sd2) ** 2 * (1 / n1 + 1 / n2)
    else:
        raise UsageError(f"vtype for MD must be 'LS', 'UB' or 'HO', got {vtype!r}")
    return _wald(
        "MD", m1 - m2, vi, ci_level, f"mean difference (metafor MD, vtype {vtype}), Wald CI"
    )


def _smd_variance(
    vtype: str, n1: float, n2: float, yi: float, di: float, cmi: float, mi: float, npi: float
) -> float:
    if vtype == "LS":  # Hedges & Olkin (1985) eq. 15
        return 1 / n1 + 1 / n2 + yi**2 / (2 * npi)
    if vtype == "LS2":  # Borenstein (2009) eq. 12.17
        return cmi**2 * (1 / n1 + 1 / n2 + di**2 / (2 * npi))
    if vtype == "LS3":  # RevMan
        return 1 / n1 + 1 / n2 + yi**2 / (2 * (npi - 3.94))
    if vtype == "UB":  # Hedges (1983) unbiased
        return 1 / n1 + 1 / n2 + (1 - (mi - 2) / (mi * cmi**2)) * yi**2
    if vtype == "H0":
        return cmi**2 * (1 / n1 + 1 / n2) * mi / (mi - 2) if mi > 2 else math.nan
    raise UsageError(f"vtype for SMD must be one of {', '.join(SMD_VTYPES)}, got {vtype!r}")


def standardized_mean_difference(
    n1: float,
    m1: float,
    sd1: float,
    n2: float,
    m2: float,
    sd2: float,
    *,
    ci_level: float = 0.95,
    vtype: str = "LS",
    correct: bool = True,
) -> EffectSize:
    """Standardised mean difference with pooled SD: Hedges' g (default) or Cohen's d.

    ``d = (m1 - m2) / s_p``, ``s_p^2 = ((n1-1) sd1^2 + (n2-1) sd2^2) / (n1 + n2 - 2)``;
    ``g = J(n1 + n2 - 2) d`` with the exact ``J`` (:func:`hedges_j`). Variance by ``vtype``
    (metafor ``escalc("SMD")``): ``"LS"`` (default) ``1/n1 + 1/n2 + g^2/(2(n1+n2))``; ``"LS2"``
    ``J^2 (1/n1 + 1/n2 + d^2/(2(n1+n2)))``; ``"LS3"`` ``... + g^2/(2(n1+n2-3.94))`` (RevMan);
    ``"UB"`` ``1/n1 + 1/n2 + (1 - (m-2)/(m J^2)) g^2``; ``"H0"`` ``J^2 (1/n1+1/n2) m/(m-2)``.
    ``correct=False`` gives Cohen's d (metafor ``correct=FALSE``). Wald CI; for the
    noncentral-t interval see :func:`smd_noncentral_ci`.

    Examples
    --------
    >>> round(standardized_mean_difference(29, 85.6966, 8.3519, 26, 81.1077, 4.7443).estimate, 4)
    0.6566
    """
    mi = n1 + n2 - 2
    di = (m1 - m2) / _pooled_sd(n1, sd1, n2, sd2)
    cmi = hedges_j(mi) if correct else 1.0
    yi = cmi * di
    vi = _smd_variance(vtype, n1, n2, yi, di, cmi, mi, n1 + n2)
    label = "Hedges' g (exact J)" if correct else "Cohen's d (pooled SD, uncorrected)"
    return _wald(
        "SMD" if correct else "cohens_d",
        yi,
        vi,
        ci_level,
        f"{label}, metafor SMD vtype {vtype}, Wald CI",
    )


def cohens_d(
    n1: float, m1: float, sd1: float, n2: float, m2: float, sd2: float, *, ci_level: float = 0.95
) -> EffectSize:
    """Cohen's d: ``(m1 - m2) / s_p`` without small-sample correction.

    Variance ``1/n1 + 1/n2 + d^2/(2(n1+n2))`` (metafor ``escalc("SMD", correct=FALSE)``). Wald CI.

    Examples
    --------
    >>> round(cohens_d(20, 1.0, 1.0, 20, 0.0, 1.0).estimate, 6)
    1.0
    """
    return standardized_mean_difference(n1, m1, sd1, n2, m2, sd2, ci_level=ci_level, correct=False)


def glass_delta(
    n1: float, m1: float, sd1: float, n2: float, m2: float, sd2: float, *, ci_level: float = 0.95
) -> EffectSize:
    """Glass's delta: ``(m1 - m2) / sd2``, standardised by the control arm's SD, uncorrected.

    Point estimate as R effectsize ``glass_delta``; variance ``1/n1 + 1/n2 + delta^2 / (2 n2)``
    (metafor ``escalc("SMD1", correct=FALSE)``). Wald CI. ``sd1`` is not used.

    Examples
    --------
    >>> glass_delta(20, 12.0, 3.0, 20, 10.0, 4.0).estimate
    0.5
    """
    di = (m1 - m2) / sd2
    vi = 1 / n1 + 1 / n2 + di**2 / (2 * n2)
    return _wald(
        "glass_delta",
        di,
        vi,
        ci_level,
        "Glass's delta (control SD, uncorrected), metafor SMD1 LS variance, Wald CI",
    )


def smd_heteroscedastic(
    n1: float,
    m1: float,
    sd1: float,
    n2: float,
    m2: float,
    sd2: float,
    *,
    ci_level: float = 0.95,
    vtype: str = "LS",
) -> EffectSize:
    """SMD without assuming equal variances (Bonett 2009), metafor ``escalc("SMDH")``.

    ``s = sqrt((sd1^2 + sd2^2)/2)``, ``yi = J(n1 + n2 - 2) (m1 - m2)/s``;
    ``vi = yi^2 (sd1^4/(n1-1) + sd2^4/(n2-1)) / (8 s^4) + (sd1^2/(n1-1) + sd2^2/(n2-1)) / s^2``
    (``"LS"``); ``"LS2"`` and ``"LS3"`` replace some ``n-1`` by ``n`` exactly as metafor.

    Examples
    --------
    >>> round(smd_heteroscedastic(20, 1.0, 1.0, 20, 0.0, 1.0).estimate, 6)
    0.98011
    """
    cmi = hedges_j(n1 + n2 - 2)
    s = math.sqrt((sd1**2 + sd2**2) / 2)
    yi = cmi * (m1 - m2) / s
    if vtype == "LS":
        vi = (
            yi**2 * (sd1**4 / (n1 - 1) + sd2**4 / (n2 - 1)) / (8 * s**4)
            + (sd1**2 / (n1 - 1) + sd2**2 / (n2 - 1)) / s**2
        )
    elif vtype == "LS2":
        vi = (
            sd1**2 / (n1 * s**2)
            + sd2**2 / (n2 * s**2)
            + yi**2 / (8 * s**4) * (sd1**4 / n1 + sd2**4 / n2)
        )
    elif vtype == "LS3":
        vi = (
            sd1**2 / (n1 * s**2)
            + sd2**2 / (n2 * s**2)
            + yi**2 / (8 * s**4) * (sd1**4 / (n1 - 1) + sd2**4 / (n2 - 1))
        )
    else:
        raise UsageError(f"vtype for SMDH must be 'LS', 'LS2' or 'LS3', got {vtype!r}")
    return _wald(
        "SMDH",
        yi,
        vi,
        ci_level,
        f"heteroscedastic SMD (Bonett 2009, exact J), metafor SMDH vtype {vtype}, Wald CI",
    )


def log_ratio_of_means(
    n1: float, m1: float, sd1: float, n2: float, m2: float, sd2: float, *, ci_level: float = 0.95
) -> EffectSize:
    """Log ratio of means (response ratio), metafor ``escalc("ROM")`` with ``correct=FALSE``.

    ``yi = log(m1/m2)``, ``vi = sd1^2/(n1 m1^2) + sd2^2/(n2 m2^2)`` (vtype ``"LS"``). Needs both
    means positive. The CI is on the log scale; exponentiate for the ratio.

    Examples
    --------
    >>> round(log_ratio_of_means(10, 20.0, 2.0, 10, 10.0, 1.0).estimate, 6)
    0.693147
    """
    if m1 <= 0 or m2 <= 0:
        raise UsageError(f"ROM needs positive means, got m1={m1}, m2={m2}")
    vi = sd1**2 / (n1 * m1**2) + sd2**2 / (n2 * m2**2)
    return _wald(
        "ROM",
        math.log(m1 / m2),
        vi,
        ci_level,
        "log ratio of means (metafor ROM, vtype LS, no bias correction), Wald CI",
    )


def _ncp_interval(t: float, df: float, ci_level: float) -> tuple[float, float]:
    """Noncentrality parameters whose t distributions put ``t`` at the upper/lower tail quantile."""
    alpha = (1 - ci_level) / 2

    def cdf(ncp: float) -> float:
        p = stats.nct.cdf(t, df, ncp)
        # far in the tails scipy can return NaN; the cdf is then 1 (ncp << t) or 0 (ncp >> t)
        return float(p) if np.isfinite(p) else (1.0 if ncp < t else 0.0)

    step = math.sqrt(1 + t**2 / (2 * df))  # approximate standard error of the ncp

    def solve(target: float) -> float:
        lo, hi = t - step, t + step
        while cdf(lo) - target < 0:
            lo -= step
        while cdf(hi) - target > 0:
            hi += step
        return optimize.brentq(lambda ncp: cdf(ncp) - target, lo, hi, xtol=1e-13, rtol=1e-15)

    return solve(1 - alpha), solve(alpha)


def smd_noncentral_ci(
    n1: float,
    m1: float,
    sd1: float,
    n2: float,
    m2: float,
    sd2: float,
    *,
    ci_level: float = 0.95,
    correct: bool = True,
) -> EffectSize:
    """Hedges' g (or Cohen's d) with the noncentral-t confidence interval of R's effectsize.

    ``t = d / sqrt(1/n1 + 1/n2)`` with ``df = n1 + n2 - 2``; the limits of the noncentrality
    parameter solve ``P(T_df,ncp <= t) = 1 - alpha/2`` and ``alpha/2``; they are rescaled by
    ``sqrt(1/n1 + 1/n2)`` (and multiplied by ``J(df)`` for g), as effectsize ``hedges_g`` /
    ``cohens_d`` do. ``variance`` is metafor's LS variance, for reference.

    Examples
    --------
    >>> r = smd_noncentral_ci(20, 1.0, 1.0, 20, 0.0, 1.0)
    >>> r.ci_low < r.estimate < r.ci_high
    True
    """
    check_ci_level(ci_level)
    wald = standardized_mean_difference(
        n1, m1, sd1, n2, m2, sd2, ci_level=ci_level, correct=correct
    )
    scale = math.sqrt(1 / n1 + 1 / n2)
    di = (m1 - m2) / _pooled_sd(n1, sd1, n2, sd2)
    lo, hi = _ncp_interval(di / scale, n1 + n2 - 2, ci_level)
    factor = hedges_j(n1 + n2 - 2) if correct else 1.0
    label = "Hedges' g (exact J)" if correct else "Cohen's d"
    return EffectSize(
        wald.measure,
        wald.estimate,
        wald.variance,
        wald.std_error,
        factor * lo * scale,
        factor * hi * scale,
        ci_level,
        f"{label}, noncentral-t CI (as R effectsize)",
    )


# --------------------------------------------------------------------------------------------
# Within an arm (pre -> post); metafor convention: 1 = post, 2 = pre, yi = m1 - m2
# --------------------------------------------------------------------------------------------


def _check_r(r: float) -> None:
    if not -1 <= r <= 1:
        raise UsageError(f"a correlation must lie in [-1, 1], got {r}")


def change_sd(sd_post: float, sd_pre: float, r: float) -> float:
    """SD of change scores, ``sqrt(sd_post^2 + sd_pre^2 - 2 r sd_post sd_pre)``."""
    return math.sqrt(sd_post**2 + sd_pre**2 - 2 * r * sd_post * sd_pre)


def mean_change(
    n: float,
    m_post: float,
    m_pre: float,
    sd_post: float,
    sd_pre: float,
    r: float,
    *,
    ci_level: float = 0.95,
) -> EffectSize:
    """Raw mean change, metafor ``escalc("MC")``: ``yi = m_post - m_pre``, ``vi = sd_change^2 / n``.

    Examples
    --------
    >>> mean_change(25, 12.0, 10.0, 3.0, 3.0, 0.5).variance
    0.36
    """
    _check_r(r)
    return _wald(
        "MC",
        m_post - m_pre,
        change_sd(sd_post, sd_pre, r) ** 2 / n,
        ci_level,
        "raw mean change (metafor MC), Wald CI",
    )


def _smc_variance(
    vtype: str, n: float, r: float, yi: float, di: float, cmi: float, rawscore: bool
) -> float:
    mi = n - 1
    base = 2 * (1 - r) if rawscore else 1.0
    if vtype == "LS":  # Becker (1988) eq. 13 for SMCR; Gibbons et al. (1993) for SMCC
        return base / n + yi**2 / (2 * n)
    if vtype == "LS2":
        return cmi**2 * (base / n + di**2 / (2 * n))
    if vtype in ("UB", "H0"):
        # unbiased estimate of rho (Olkin & Pratt) where metafor uses it (SMCR only)
        base_u = 2 * (1 - r * special.hyp2f1(0.5, 0.5, (n - 2) / 2, 1 - r**2)) if rawscore else 1.0
        if vtype == "UB":
            return base_u / n + (1 - (mi - 2) / (mi * cmi**2)) * yi**2
        return cmi**2 * base_u / n * mi / (mi - 2) if mi > 2 else math.nan
    raise UsageError(f"vtype for SMCC/SMCR must be one of {', '.join(SMC_VTYPES)}, got {vtype!r}")


def smcc(
    n: float,
    m_post: float,
    m_pre: float,
    sd_post: float,
    sd_pre: float,
    r: float,
    *,
    ci_level: float = 0.95,
    vtype: str = "LS",
) -> EffectSize:
    """Standardised mean change, change-score standardisation, metafor ``escalc("SMCC")``.

    ``yi = J(n-1) (m_post - m_pre) / sd_change``, ``sd_change`` from :func:`change_sd`;
    ``vi = 1/n + yi^2/(2n)`` (``"LS"``, default; ``LS2``, ``UB``, ``H0`` as metafor).

    Examples
    --------
    >>> round(smcc(29, 85.6966, 82.6897, 8.3519, 4.8455, 0.49197).estimate, 3)
    0.4
    """
    _check_r(r)
    di = (m_post - m_pre) / change_sd(sd_post, sd_pre, r)
    cmi = hedges_j(n - 1)
    yi = cmi * di
    vi = _smc_variance(vtype, n, r, yi, di, cmi, rawscore=False)
    return _wald(
        "SMCC",
        yi,
        vi,
        ci_level,
        f"standardised mean change, change-score SD (metafor SMCC, exact J, vtype {vtype}), Wald CI",
    )


def smcr(
    n: float,
    m_post: float,
    m_pre: float,
    sd_pre: float,
    r: float,
    *,
    ci_level: float = 0.95,
    vtype: str = "LS",
) -> EffectSize:
    """Standardised mean change, raw-score (pretest SD) standardisation, metafor ``escalc("SMCR")``.

    ``yi = J(n-1) (m_post - m_pre) / sd_pre``; ``vi = 2(1-r)/n + yi^2/(2n)`` (``"LS"``, Becker
    1988, default; ``LS2``, ``UB``, ``H0`` as metafor). In metafor's arguments ``sd_pre`` is
    ``sd1i`` (the standardiser), as in metafor's own Morris (2008) example.

    Examples
    --------
    >>> round(smcr(29, 85.6966, 82.6897, 4.8455, 0.49197).estimate, 3)
    0.604
    """
    _check_r(r)
    di = (m_post - m_pre) / sd_pre
    cmi = hedges_j(n - 1)
    yi = cmi * di
    vi = _smc_variance(vtype, n, r, yi, di, cmi, rawscore=True)
    return _wald(
        "SMCR",
        yi,
        vi,
        ci_level,
        f"standardised mean change, pretest SD (metafor SMCR, exact J, vtype {vtype}), Wald CI",
    )


def d_ppc2(
    n_t: float,
    pre_t: float,
    post_t: float,
    sd_pre_t: float,
    n_c: float,
    pre_c: float,
    post_c: float,
    sd_pre_c: float,
    r: float,
    *,
    ci_level: float = 0.95,
) -> EffectSize:
    """Morris (2008) pretest-posttest-control effect size ``d_ppc2`` and its eq. 25 variance.

    ``d = c_p [(post_t - pre_t) - (post_c - pre_c)] / s_pre``, ``s_pre`` the pooled pretest SD,
    ``c_p = 1 - 3/(4(n_t + n_c - 2) - 1)`` (Morris's approximation, as his paper). With
    ``N = n_t + n_c`` and ``k = N/(n_t n_c)``, eq. 25 with ``delta`` estimated by ``d``::

        vi = 2 c_p^2 (1 - r) k (N - 2)/(N - 4) [1 + d^2 / (2 (1 - r) k)] - d^2

    ``r`` is the pre-post correlation (assumed common to the arms). Wald CI.

    Examples
    --------
    >>> round(d_ppc2(29, 82.69, 85.70, 4.85, 26, 81.56, 81.11, 5.71, 0.2).estimate, 2)
    0.65
    """
    _check_r(r)
    big_n = n_t + n_c
    cp = 1 - 3 / (4 * (big_n - 2) - 1)
    sp = _pooled_sd(n_t, sd_pre_t, n_c, sd_pre_c)
    d = cp * ((post_t - pre_t) - (post_c - pre_c)) / sp
    k = big_n / (n_t * n_c)
    method = "Morris (2008) d_ppc2 (pooled pretest SD, c_p approximation), eq. 25 variance, Wald CI"
    if big_n <= 4 or r == 1:
        # eq. 25 has (N - 4) and (1 - r) in denominators: no variance, so no CI
        return _wald("d_ppc2", d, math.nan, ci_level, method, note="eq. 25 variance needs n_t + n_c > 4 and r < 1")
    vi = 2 * cp**2 * (1 - r) * k * (big_n - 2) / (big_n - 4) * (1 + d**2 / (2 * (1 - r) * k)) - d**2
    return _wald("d_ppc2", d, vi, ci_level, method)


# --------------------------------------------------------------------------------------------
# Percent change and ratio of improvements
# --------------------------------------------------------------------------------------------


def percent_change_of_means(
    n: float,
    m_pre: float,
    m_post: float,
    sd_pre: float,
    sd_post: float,
    r: float,
    *,
    ci_level: float = 0.95,
) -> EffectSize:
    """Percent change of the arm means, ``100 (m_post - m_pre) / m_pre``, delta-method CI.

    With ``R = m_post/m_pre``: ``Var(R) ~ (sd_post^2 + R^2 sd_pre^2 - 2 R r sd_pre sd_post) /
    (n m_pre^2)`` (delta method, pre and post means correlated through ``r``); the percent-scale
    variance is ``100^2 Var(R)``. Wald CI on the percent scale. This is *not* the mean of the
    participants' percent changes (see :func:`mean_of_percent_changes`).

    Examples
    --------
    >>> round(percent_change_of_means(30, 50.0, 40.0, 10.0, 10.0, 0.5).estimate, 6)
    -20.0
    """
    _check_r(r)
    if m_pre == 0:
        raise UsageError("percent change is undefined when the baseline mean is 0")
    ratio = m_post / m_pre
    var_ratio = (sd_post**2 + ratio**2 * sd_pre**2 - 2 * ratio * r * sd_pre * sd_post) / (
        n * m_pre**2
    )
    return _wald(
        "pct_change_of_means",
        100 * (ratio - 1),
        100**2 * var_ratio,
        ci_level,
        "percent change of the arm means 100*(mean_post - mean_pre)/mean_pre, delta-method Wald CI using the pre-post correlation",
    )


def mean_of_percent_changes(pct_changes: np.ndarray, *, ci_level: float = 0.95) -> EffectSize:
    """Mean of the participants' own percent changes, with a one-sample t interval.

    ``estimate = mean(100 (post_i - pre_i)/pre_i)``; ``std_error = sd/sqrt(n)``; CI
    ``mean -/+ t_{n-1} se`` (as R ``t.test``). Participant data only.

    Examples
    --------
    >>> mean_of_percent_changes(np.array([-10.0, -20.0, -30.0])).estimate
    -20.0
    """
    check_ci_level(ci_level)
    x = np.asarray(pct_changes, dtype=float)
    x = x[np.isfinite(x)]
    n = x.size
    if n < 2:
        return EffectSize(
            "mean_pct_change",
            math.nan,
            math.nan,
            math.nan,
            math.nan,
            math.nan,
            ci_level,
            "",
            "fewer than 2 participants",
        )
    mean, se = float(x.mean()), float(x.std(ddof=1) / math.sqrt(n))
    q = stats.t.ppf(0.5 + ci_level / 2, n - 1)
    return EffectSize(
        "mean_pct_change",
        mean,
        se**2,
        se,
        mean - q * se,
        mean + q * se,
        ci_level,
        "mean of individual percent changes 100*(post_i - pre_i)/pre_i, one-sample t CI",
    )


@dataclass(frozen=True)
class RatioResult:
    """Ratio of improvements (treatment change / control change) with a Fieller interval.

    ``bounded`` is False when the control change's own CI includes zero: then no finite interval
    exists (and ``estimate``, ``ci_low``, ``ci_high`` are NaN, ``note`` says why).
    """

    estimate: float
    ci_low: float
    ci_high: float
    ci_level: float
    bounded: bool
    method: str
    note: str | None = None


def ratio_of_improvements(
    change_t: float, se_t: float, change_c: float, se_c: float, *, ci_level: float = 0.95
) -> RatioResult:
    """``change_t / change_c`` (the "1.7-fold" of the seed study) with a Fieller interval.

    The arms are independent, so Fieller's set ``{theta : (a - theta b)^2 <= q^2 (va + theta^2 vb)}``
    with ``a = change_t``, ``b = change_c``, ``q = z_{(1+level)/2}`` has the limits
    ``[a b -/+ q sqrt(va b^2 + vb a^2 - q^2 va vb)] / (b^2 - q^2 vb)``. It is a finite interval
    only when ``b^2 > q^2 vb``, i.e. when the control change's Wald CI excludes zero; otherwise
    the ratio is unbounded and no number is reported.

    Examples
    --------
    >>> r = ratio_of_improvements(-17.0, 1.5, -10.0, 1.5)
    >>> round(r.estimate, 2), r.bounded
    (1.7, True)
    >>> ratio_of_improvements(-17.0, 1.5, -1.0, 1.5).bounded
    False
    """
    check_ci_level(ci_level)
    q = z_quantile(ci_level)
    a, b, va, vb = change_t, change_c, se_t**2, se_c**2
    method = (
        "ratio of mean changes (treatment/control), Fieller CI (independent arms, normal quantile)"
    )
    denom = b**2 - q**2 * vb
    if not denom > 0:
        return RatioResult(
            math.nan,
            math.nan,
            math.nan,
            ci_level,
            False,
            method,
            f"control change's {ci_level:.0%} CI includes zero: the ratio of improvements is unbounded, no estimate reported",
        )
    root = q * math.sqrt(va * b**2 + vb * a**2 - q**2 * va * vb)
    return RatioResult(
        a / b, (a * b - root) / denom, (a * b + root) / denom, ci_level, True, method
    )


# --------------------------------------------------------------------------------------------
# metafor-style frame entry point
# --------------------------------------------------------------------------------------------

REQUIRED_COLUMNS: dict[str, tuple[str, ...]] = {
    "MD": ("n1i", "m1i", "sd1i", "n2i", "m2i", "sd2i"),
    "SMD": ("n1i", "m1i", "sd1i", "n2i", "m2i", "sd2i"),
    "SMDH": ("n1i", "m1i", "sd1i", "n2i", "m2i", "sd2i"),
    "ROM": ("n1i", "m1i", "sd1i", "n2i", "m2i", "sd2i"),
    "MC": ("ni", "m1i", "m2i", "sd1i", "sd2i", "ri"),
    "SMCC": ("ni", "m1i", "m2i", "sd1i", "sd2i", "ri"),
    "SMCR": ("ni", "m1i", "m2i", "sd1i", "ri"),
}
OUTPUT_COLUMNS = ["yi", "vi", "sei", "ci_low", "ci_high", "note"]
MISSING_TEXT = {"", "na", "nan", "null", "none", "."}


def _one_row(measure: str, v: Mapping[str, float], ci_level: float, vtype: str) -> EffectSize:
    if measure in BETWEEN_MEASURES:
        args = (v["n1i"], v["m1i"], v["sd1i"], v["n2i"], v["m2i"], v["sd2i"])
        if measure == "MD":
            return mean_difference(*args, ci_level=ci_level, vtype=vtype)
        if measure == "SMD":
            return standardized_mean_difference(*args, ci_level=ci_level, vtype=vtype)
        if measure == "SMDH":
            return smd_heteroscedastic(*args, ci_level=ci_level, vtype=vtype)
        return log_ratio_of_means(*args, ci_level=ci_level)
    if measure == "MC":
        return mean_change(
            v["ni"], v["m1i"], v["m2i"], v["sd1i"], v["sd2i"], v["ri"], ci_level=ci_level
        )
    if measure == "SMCC":
        return smcc(
            v["ni"],
            v["m1i"],
            v["m2i"],
            v["sd1i"],
            v["sd2i"],
            v["ri"],
            ci_level=ci_level,
            vtype=vtype,
        )
    return smcr(v["ni"], v["m1i"], v["m2i"], v["sd1i"], v["ri"], ci_level=ci_level, vtype=vtype)


def _numeric(column: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Numbers, plus a mask of cells that are present but not numbers."""
    text = column.astype(object).where(column.notna(), "")
    text = text.map(lambda x: str(x).strip())
    missing = text.str.lower().isin(MISSING_TEXT)
    values = pd.to_numeric(text.where(~missing, None), errors="coerce")
    return values.astype(float), values.isna() & ~missing


def escalc(
    measure: str,
    data: pd.DataFrame,
    *,
    ci_level: float = 0.95,
    vtype: str = "LS",
    source: str = "<data>",
) -> pd.DataFrame:
    """Effect sizes from arm-level summaries, row by row, like metafor ``escalc`` + ``summary``.

    Parameters
    ----------
    measure
        ``MD``, ``SMD`` (Hedges' g, exact J), ``SMDH``, ``ROM`` (between arms; columns ``n1i, m1i,
        sd1i, n2i, m2i, sd2i``, group 1 = treatment) or ``MC``, ``SMCC``, ``SMCR`` (within an arm;
        columns ``ni, m1i, m2i, sd1i, sd2i, ri`` with 1 = post, 2 = pre; ``SMCR`` standardises by
        ``sd1i`` exactly as metafor does, so put the pretest SD there, and does not need ``sd2i``).
    data
        One row per study/arm. Other columns pass through unchanged.
    ci_level
        Level of the Wald interval ``yi -/+ z sqrt(vi)``.
    vtype
        Variance type, metafor's names; default ``"LS"`` (metafor's default).
    source
        File name used in error reports.

    Returns
    -------
    pandas.DataFrame
        ``data`` plus ``yi, vi, sei, ci_low, ci_high, note``. A row with a missing input keeps its
        place with empty results and a ``note`` naming the missing column(s).

    Raises
    ------
    DataError
        Impossible input (required column absent, a non-number, SD < 0, n < 2, |r| > 1, a
        non-positive mean for ROM), listing every offending cell (file, row, column, rule, value;
        row numbered as in a CSV file with a header, so the first data row is 2).

    Examples
    --------
    >>> d = pd.DataFrame({"n1i": [155], "m1i": [55], "sd1i": [47], "n2i": [156], "m2i": [75], "sd2i": [64]})
    >>> escalc("MD", d)[["yi", "vi"]].round(4).values.tolist()
    [[-20.0, 40.508]]
    """
    if measure not in MEASURES:
        raise UsageError(f"unknown measure {measure!r}; choose one of {', '.join(MEASURES)}")
    check_ci_level(ci_level)
    allowed = {
        "MD": ("LS", "UB", "HO"),
        "ROM": ("LS",),
        "SMD": SMD_VTYPES,
        "SMDH": ("LS", "LS2", "LS3"),
        "MC": ("LS",),
    }
    if vtype not in allowed.get(measure, SMC_VTYPES):
        raise UsageError(
            f"vtype {vtype!r} is not available for {measure}; choose one of {', '.join(allowed.get(measure, SMC_VTYPES))}"
        )
    required = REQUIRED_COLUMNS[measure]
    absent = [c for c in required if c not in data.columns]
    if absent:
        rows = [failure(source, 1, c, f"column required for {measure}", "") for c in absent]
        raise DataError(
            _failure_message(
                f"{source}: missing column(s) {', '.join(absent)} required for {measure}", rows
            ),
            pd.DataFrame(rows),
        )
    values: dict[str, pd.Series] = {}
    failures: list[dict[str, object]] = []
    for column in required:
        numbers, bad = _numeric(data[column])
        values[column] = numbers
        for i in np.flatnonzero(bad.to_numpy()):
            failures.append(
                failure(source, int(i) + 2, column, "must be a number", data[column].iloc[i])
            )
    for column, numbers in values.items():
        if column.startswith("sd"):
            rule, bad = "SD must be >= 0", numbers < 0
        elif column.startswith("n"):
            rule, bad = "n must be >= 2", numbers < 2
        elif column == "ri":
            rule, bad = "|r| must be <= 1", numbers.abs() > 1
        elif measure == "ROM":
            rule, bad = "mean must be > 0 for ROM", numbers <= 0
        else:
            continue
        for i in np.flatnonzero(bad.to_numpy()):
            failures.append(failure(source, int(i) + 2, column, rule, data[column].iloc[i]))
    if failures:
        failures.sort(key=lambda f: (f["row"], required.index(f["column"])))
        raise DataError(
            _failure_message(
                f"{source}: {len(failures)} impossible value(s) for {measure}", failures
            ),
            pd.DataFrame(failures),
        )
    results: dict[str, list[Any]] = {c: [] for c in OUTPUT_COLUMNS}
    for i in range(len(data)):
        row = {c: float(values[c].iloc[i]) for c in required}
        missing = [c for c in required if math.isnan(row[c])]
        if missing:
            es, note = None, f"not computed: missing {', '.join(missing)}"
        else:
            es, note = _safe_row(measure, row, ci_level, vtype)
        for c, v in zip(
            OUTPUT_COLUMNS,
            (es.estimate, es.variance, es.std_error, es.ci_low, es.ci_high)
            if es
            else (math.nan,) * 5,
            strict=False,
        ):
            results[c].append(v)
        results["note"].append(note)
    out = data.copy()
    for c in OUTPUT_COLUMNS:
        out[c] = pd.Series(results[c], index=out.index, dtype=object if c == "note" else float)
    return out


def _safe_row(
    measure: str, row: dict[str, float], ci_level: float, vtype: str
) -> tuple[EffectSize | None, str | None]:
    with np.errstate(divide="ignore", invalid="ignore"):
        try:
            es = _one_row(measure, row, ci_level, vtype)
        except ZeroDivisionError:
            return None, "not computed: a standard deviation (standardiser) is 0"
    if not (math.isfinite(es.estimate) and math.isfinite(es.variance)):
        return None, "not computed: a standard deviation (standardiser) is 0"
    return es, None


def _failure_message(summary: str, failures: list[dict[str, object]]) -> str:
    lines = [summary + ":"] + [
        f"  file {f['file']}, row {f['row']}, column {f['column']}: {f['rule']} (value: {f['value']!r})"
        for f in failures
    ]
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# Participant data: bootstrap statistics and the tidy table for `trialkit run`
# --------------------------------------------------------------------------------------------


def _hedges_g_batch(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Hedges' g (exact J) of each row pair of ``x`` (B, n1) and ``y`` (B, n2), vectorised.

    Uses sums and sums of squares (one pass each); callers centre the data first, which removes the
    cancellation that this form would otherwise suffer when the mean is large relative to the SD.
    """
    n1, n2 = x.shape[-1], y.shape[-1]
    s1, s2 = x.sum(axis=-1), y.sum(axis=-1)
    ss1 = np.einsum("...i,...i->...", x, x)
    ss2 = np.einsum("...i,...i->...", y, y)
    pooled_var = (ss1 - s1 * s1 / n1 + ss2 - s2 * s2 / n2) / (n1 + n2 - 2)
    return hedges_j(n1 + n2 - 2) * (s1 / n1 - s2 / n2) / np.sqrt(pooled_var)


def hedges_g_bootstrap(
    treatment: np.ndarray,
    control: np.ndarray,
    *,
    n_boot: int,
    seed: int,
    ci_level: float = 0.95,
    method: str = "bca",
):
    """Bootstrap CI (BCa by default, or percentile) of Hedges' g, resampling within each arm.

    The statistic is :func:`standardized_mean_difference`'s g (exact J), computed for all resamples
    at once; memory is bounded by chunking (:mod:`analysis.stats.effects.bootstrap`). Returns a
    :class:`analysis.stats.effects.bootstrap.BootstrapResult` with ``n_boot`` and ``seed``. Compare
    ``pingouin.compute_bootci(x, y, func="hedges")`` (which uses the approximate J).

    Examples
    --------
    >>> rng = np.random.default_rng(3)
    >>> r = hedges_g_bootstrap(rng.normal(0.5, 1, 50), rng.normal(0, 1, 50), n_boot=1000, seed=7)
    >>> r.ci_low < r.estimate < r.ci_high, r.n_boot, r.seed
    (True, 1000, 7)
    """
    x = np.asarray(treatment, dtype=float)
    y = np.asarray(control, dtype=float)
    centre = np.concatenate([x, y]).mean()  # g is shift invariant; centring keeps the sums exact
    return bootstrap_ci(
        [x - centre, y - centre],
        _hedges_g_batch,
        n_boot=n_boot,
        seed=seed,
        ci_level=ci_level,
        method=method,
    )


def _ratio_batch(t: np.ndarray, c: np.ndarray) -> np.ndarray:
    # A resample whose control change is exactly 0 has an unbounded ratio: +/-inf is its value.
    with np.errstate(divide="ignore", invalid="ignore"):
        return t.mean(axis=-1) / c.mean(axis=-1)


DATASET_COLUMNS = (
    "participant_id",
    "arm",
    "outcome",
    "visit",
    "value",
    "baseline",
    "change",
    "pct_change",
)


def _summary(values: np.ndarray) -> tuple[int, float, float]:
    return (
        values.size,
        float(values.mean()) if values.size else math.nan,
        float(values.std(ddof=1)) if values.size > 1 else math.nan,
    )


def _pooled_correlation(pairs: list[np.ndarray]) -> float:
    """Pooled within-arm pre-post correlation: sum (n-1) cov / sqrt(sum (n-1) var_pre * sum (n-1) var_post)."""
    sxy = sum(((p[:, 0] - p[:, 0].mean()) * (p[:, 1] - p[:, 1].mean())).sum() for p in pairs)
    sxx = sum(((p[:, 0] - p[:, 0].mean()) ** 2).sum() for p in pairs)
    syy = sum(((p[:, 1] - p[:, 1].mean()) ** 2).sum() for p in pairs)
    return float(sxy / math.sqrt(sxx * syy)) if sxx > 0 and syy > 0 else math.nan


class _Cell:
    """Rows for one outcome x follow-up visit; every row carries the cell's identifiers."""

    def __init__(self, outcome: str, visit: str, ci_level: float) -> None:
        self.outcome, self.visit, self.ci_level = outcome, visit, ci_level
        self.rows: list[dict[str, Any]] = []

    def add(
        self,
        contrast: str,
        measure: str,
        n_t: int | None,
        n_c: int | None,
        result: Any = None,
        **extra: Any,
    ) -> None:
        row: dict[str, Any] = {
            "outcome": self.outcome,
            "visit": self.visit,
            "contrast": contrast,
            "measure": measure,
            "ci_level": self.ci_level,
            "n_treatment": n_t,
            "n_control": n_c,
            "n_boot": None,
            "seed": None,
            "note": None,
        }
        if isinstance(result, EffectSize):
            row.update(
                estimate=result.estimate,
                std_error=result.std_error,
                ci_low=result.ci_low,
                ci_high=result.ci_high,
                method=result.method,
                note=result.note,
            )
        elif result is not None:  # BootstrapResult
            row.update(
                estimate=result.estimate,
                std_error=result.std_error,
                ci_low=result.ci_low,
                ci_high=result.ci_high,
                n_boot=result.n_boot,
                seed=result.seed,
                note=result.note,
            )
        row.update(extra)
        self.rows.append(row)


def _check_dataset(dataset: pd.DataFrame) -> None:
    absent = [c for c in DATASET_COLUMNS if c not in dataset.columns]
    if absent:
        raise UsageError(f"the analysis dataset lacks column(s) {', '.join(absent)}")


def _cells(dataset: pd.DataFrame, plan: Any):
    """Yield (outcome, visit, treatment rows, control rows) for every plan outcome x follow-up visit."""
    arm = dataset["arm"].astype(str)
    for outcome in plan.outcomes:
        of = dataset[dataset["outcome"].astype(str) == outcome.name]
        if of.empty:
            continue
        for followup in plan.visits.followup:
            cell = of[of["visit"].astype(str) == followup.label]
            yield (
                outcome.name,
                followup.label,
                cell[arm.loc[cell.index] == "treatment"],
                cell[arm.loc[cell.index] == "control"],
            )


def _between_rows(
    cell: _Cell,
    t: pd.DataFrame,
    c: pd.DataFrame,
    labels: tuple[str, str],
    boot: tuple[int, int] | None,
) -> None:
    yt = t["value"].to_numpy(dtype=float)
    yc = c["value"].to_numpy(dtype=float)
    yt, yc = yt[np.isfinite(yt)], yc[np.isfinite(yc)]
    n_t, m_t, s_t = _summary(yt)
    n_c, m_c, s_c = _summary(yc)
    diff = contrast_label(*labels)
    if min(n_t, n_c) < 2:
        for measure in ("MD", "SMD"):
            cell.add(
                diff,
                measure,
                n_t,
                n_c,
                note="fewer than 2 participants with a value in an arm at this visit",
            )
        return
    args = (n_t, m_t, s_t, n_c, m_c, s_c)
    cell.add(diff, "MD", n_t, n_c, mean_difference(*args, ci_level=cell.ci_level))
    if s_t == 0 and s_c == 0:
        cell.add(diff, "SMD", n_t, n_c, note="both arms have SD 0; SMD undefined")
        return
    cell.add(diff, "SMD", n_t, n_c, standardized_mean_difference(*args, ci_level=cell.ci_level))
    cell.add(diff, "SMD", n_t, n_c, smd_noncentral_ci(*args, ci_level=cell.ci_level))
    if boot is not None:
        result = hedges_g_bootstrap(yt, yc, n_boot=boot[0], seed=boot[1], ci_level=cell.ci_level)
        cell.add(
            diff,
            "SMD",
            n_t,
            n_c,
            result,
            method="Hedges' g (exact J), BCa bootstrap stratified by arm",
        )


def _prepost_rows(
    cell: _Cell,
    t: pd.DataFrame,
    c: pd.DataFrame,
    labels: tuple[str, str],
    baseline: str,
    boot: tuple[int, int] | None,
) -> None:
    def pairs_of(frame: pd.DataFrame) -> np.ndarray:
        p = frame[["baseline", "value"]].to_numpy(dtype=float)
        return p[np.isfinite(p).all(axis=1)]

    pt, pc = pairs_of(t), pairs_of(c)
    n_t, n_c = len(pt), len(pc)
    diff = contrast_label(*labels)
    if min(n_t, n_c) < 3:
        cell.add(
            diff,
            "MD_change",
            n_t,
            n_c,
            note="fewer than 3 participants with baseline and follow-up values in an arm",
        )
        return
    ct, cc = pt[:, 1] - pt[:, 0], pc[:, 1] - pc[:, 0]
    level = cell.ci_level
    md = mean_difference(
        n_t, ct.mean(), ct.std(ddof=1), n_c, cc.mean(), cc.std(ddof=1), ci_level=level
    )
    cell.add(
        diff,
        "MD_change",
        n_t,
        n_c,
        md,
        method="difference in mean change from baseline (metafor MD on change scores), Wald CI",
    )
    r_pool = _pooled_correlation([pt, pc])
    sd_pre_t, sd_pre_c = pt[:, 0].std(ddof=1), pc[:, 0].std(ddof=1)
    if math.isfinite(r_pool) and (sd_pre_t > 0 or sd_pre_c > 0):
        morris = d_ppc2(
            n_t,
            pt[:, 0].mean(),
            pt[:, 1].mean(),
            sd_pre_t,
            n_c,
            pc[:, 0].mean(),
            pc[:, 1].mean(),
            sd_pre_c,
            r_pool,
            ci_level=level,
        )
        cell.add(
            diff,
            "d_ppc2",
            n_t,
            n_c,
            morris,
            method=morris.method + f"; r = pooled within-arm pre-post correlation {r_pool:.4f}",
        )
    else:
        cell.add(
            diff,
            "d_ppc2",
            n_t,
            n_c,
            note="pretest SD is 0 in both arms or the pre-post correlation is undefined",
        )

    arm_pct: dict[str, EffectSize] = {}
    arm_mean_pct: dict[str, tuple[EffectSize, np.ndarray]] = {}
    for name, label, p, frame in (("treatment", labels[0], pt, t), ("control", labels[1], pc, c)):
        n = len(p)
        counts = (n, None) if name == "treatment" else (None, n)
        within = f"{label}: {cell.visit} - {baseline}"
        sd_pre, sd_post = p[:, 0].std(ddof=1), p[:, 1].std(ddof=1)
        r = float(np.corrcoef(p[:, 0], p[:, 1])[0, 1]) if sd_pre > 0 and sd_post > 0 else math.nan
        if sd_pre > 0 and math.isfinite(r):
            cell.add(
                within,
                "SMCR",
                *counts,
                smcr(n, p[:, 1].mean(), p[:, 0].mean(), sd_pre, r, ci_level=level),
            )
        else:
            cell.add(
                within,
                "SMCR",
                *counts,
                note="pretest SD is 0 or the pre-post correlation is undefined",
            )
        if p[:, 0].mean() != 0 and math.isfinite(r):
            pct = percent_change_of_means(
                n, p[:, 0].mean(), p[:, 1].mean(), sd_pre, sd_post, r, ci_level=level
            )
            arm_pct[name] = pct
            cell.add(within, "pct_change_of_means", *counts, pct)
        else:
            cell.add(
                within,
                "pct_change_of_means",
                *counts,
                note="baseline mean is 0 or the pre-post correlation is undefined",
            )
        complete = frame[
            np.isfinite(frame["baseline"].to_numpy(dtype=float))
            & np.isfinite(frame["value"].to_numpy(dtype=float))
        ]
        pcts = complete["pct_change"].to_numpy(dtype=float)
        dropped = int((~np.isfinite(pcts)).sum())
        pcts = pcts[np.isfinite(pcts)]
        mp = mean_of_percent_changes(pcts, ci_level=level)
        note = f"{dropped} participant(s) with baseline 0 excluded" if dropped else mp.note
        counts_pct = (pcts.size, None) if name == "treatment" else (None, pcts.size)
        cell.add(within, "mean_pct_change", *counts_pct, mp, note=note)
        arm_mean_pct[name] = (mp, pcts)

    if len(arm_pct) == 2:
        a, b = arm_pct["treatment"], arm_pct["control"]
        est, se = a.estimate - b.estimate, math.hypot(a.std_error, b.std_error)
        z = z_quantile(level)
        cell.add(
            diff,
            "diff_pct_change_of_means",
            n_t,
            n_c,
            estimate=est,
            std_error=se,
            ci_low=est - z * se,
            ci_high=est + z * se,
            method="difference in percent change of arm means (treatment - control), Wald CI from the per-arm delta-method SEs",
        )
    pct_t, pct_c = arm_mean_pct["treatment"][1], arm_mean_pct["control"][1]
    if min(pct_t.size, pct_c.size) >= 2:
        welch = stats.ttest_ind(pct_t, pct_c, equal_var=False)
        ci = welch.confidence_interval(confidence_level=level)
        est = float(pct_t.mean() - pct_c.mean())
        cell.add(
            diff,
            "diff_mean_pct_change",
            pct_t.size,
            pct_c.size,
            estimate=est,
            std_error=est / float(welch.statistic) if welch.statistic else math.nan,
            statistic=float(welch.statistic),
            df=float(welch.df),
            p_value=float(welch.pvalue),
            ci_low=float(ci.low),
            ci_high=float(ci.high),
            method="difference in mean of individual percent changes (treatment - control), Welch t-test and CI",
        )

    ratio_contrast = contrast_label(*labels, ratio=True)
    se_t, se_c = ct.std(ddof=1) / math.sqrt(n_t), cc.std(ddof=1) / math.sqrt(n_c)
    fieller = ratio_of_improvements(ct.mean(), se_t, cc.mean(), se_c, ci_level=level)
    cell.add(
        ratio_contrast,
        "ratio_of_improvements",
        n_t,
        n_c,
        estimate=fieller.estimate,
        ci_low=fieller.ci_low,
        ci_high=fieller.ci_high,
        method=fieller.method,
        note=fieller.note,
    )
    if boot is not None:
        method = "ratio of mean changes (treatment/control), percentile bootstrap stratified by arm"
        if fieller.bounded:
            result = bootstrap_ci(
                [ct, cc],
                _ratio_batch,
                n_boot=boot[0],
                seed=boot[1],
                ci_level=level,
                method="percentile",
            )
            cell.add(ratio_contrast, "ratio_of_improvements", n_t, n_c, result, method=method)
        else:
            cell.add(
                ratio_contrast,
                "ratio_of_improvements",
                n_t,
                n_c,
                method=method,
                n_boot=boot[0],
                seed=boot[1],
                note=fieller.note,
            )


def effect_sizes_table(
    dataset: pd.DataFrame, plan: Any, *, n_boot: int | None = None, seed: int | None = None
) -> pd.DataFrame:
    """Every applicable effect size for each outcome x follow-up visit, as a tidy frame.

    Per outcome x follow-up visit (participants without a value at that visit are left out of that
    visit; pre-post quantities use complete baseline/follow-up pairs; ``n_treatment``/``n_control``
    give the numbers used):

    * between arms on the follow-up values: ``MD`` (Wald), ``SMD`` Hedges' g with the Wald CI
      (metafor LS variance) and again with the noncentral-t CI (R effectsize), plus a BCa
      bootstrap row when ``n_boot`` is given; ``ROM`` (log scale) when every value is positive;
    * ``MD_change`` (difference in mean change) and Morris ``d_ppc2`` (pooled within-arm r);
    * per arm: ``SMCR``, ``pct_change_of_means`` (delta-method CI), ``mean_pct_change`` (t CI);
    * ``diff_pct_change_of_means`` (Wald) and ``diff_mean_pct_change`` (Welch);
    * ``ratio_of_improvements`` (treatment change / control change, Fieller CI; percentile
      bootstrap row when ``n_boot`` is given). When the control change's CI includes zero the
      ratio is unbounded: the row has no numbers and its ``note`` says so.

    Parameters
    ----------
    dataset
        The analysis dataset (DESIGN.md section 4).
    plan
        The study plan (:class:`analysis.plan.Plan`); uses ``arms``, ``visits``, ``outcomes`` and
        ``analysis.ci_level``.
    n_boot, seed
        Bootstrap resamples (None: no bootstrap rows) and seed (default ``plan.seed``); both are
        recorded on every resampled row.

    Returns
    -------
    pandas.DataFrame
        ``RESULT_COLUMNS`` + ``n_boot``, ``seed``, ``note``.

    Examples
    --------
    >>> from analysis.plan import load_plan
    >>> plan = load_plan("data/studies/example-precision-release.yaml").plan  # doctest: +SKIP
    >>> table = effect_sizes_table(dataset, plan, n_boot=2000)  # doctest: +SKIP
    >>> table.query("measure == 'SMD'")[["visit", "estimate", "ci_low", "ci_high", "method"]]  # doctest: +SKIP
    """
    _check_dataset(dataset)
    if n_boot is not None:
        seed = plan.seed if seed is None else seed
        boot: tuple[int, int] | None = (int(n_boot), int(seed))
    else:
        boot = None
    labels = (plan.arms.treatment.label, plan.arms.control.label)
    level = plan.analysis.ci_level
    rows: list[dict[str, Any]] = []
    for outcome, visit, t, c in _cells(dataset, plan):
        cell = _Cell(outcome, visit, level)
        _between_rows(cell, t, c, labels, boot)
        values = np.concatenate(
            [t["value"].to_numpy(dtype=float), c["value"].to_numpy(dtype=float)]
        )
        values = values[np.isfinite(values)]
        yt, yc = (f["value"].to_numpy(dtype=float) for f in (t, c))
        yt, yc = yt[np.isfinite(yt)], yc[np.isfinite(yc)]
        if values.size and (values > 0).all() and min(yt.size, yc.size) >= 2:
            rom = log_ratio_of_means(
                yt.size,
                yt.mean(),
                yt.std(ddof=1),
                yc.size,
                yc.mean(),
                yc.std(ddof=1),
                ci_level=level,
            )
            cell.add(contrast_label(*labels, ratio=True), "ROM", yt.size, yc.size, rom)
        _prepost_rows(cell, t, c, labels, plan.visits.baseline, boot)
        rows.extend(cell.rows)
    return _table(rows)


def between_arm_effects(dataset: pd.DataFrame, plan: Any) -> pd.DataFrame:
    """Between-arm MD and Hedges' g at every follow-up visit (Wald and noncentral-t rows).

    The subset of :func:`effect_sizes_table` that issue 2's visit-by-visit summary needs, without
    bootstrap rows. Same columns.
    """
    _check_dataset(dataset)
    labels = (plan.arms.treatment.label, plan.arms.control.label)
    rows: list[dict[str, Any]] = []
    for outcome, visit, t, c in _cells(dataset, plan):
        cell = _Cell(outcome, visit, plan.analysis.ci_level)
        _between_rows(cell, t, c, labels, None)
        rows.extend(cell.rows)
    return _table(rows)


def _table(rows: list[dict[str, Any]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=[*RESULT_COLUMNS, "n_boot", "seed", "note"])
    return tidy_frame(frame)
