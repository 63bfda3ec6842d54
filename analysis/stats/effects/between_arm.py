"""Between arms, from arm summaries (group 1 = treatment): MD, SMD (Hedges' g / Cohen's d), Glass's
delta, SMDH, ROM, and the noncentral-t interval of d and g (:func:`smd_noncentral_ci`).
"""

from __future__ import annotations

import math

import numpy as np
from scipy import optimize, stats

from analysis.core.errors import UsageError
from analysis.core.limits import Deadline
from analysis.core.tidy import check_ci_level
from analysis.stats.effects.common import (
    SMD_VTYPES,
    EffectSize,
    hedges_j,
    input_problem,
    not_estimable,
    overflow_checked,
    pooled_sd_of_arms,
    square,
    wald_effect,
)


@overflow_checked
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
    if vtype not in ("LS", "UB", "HO"):
        raise UsageError(f"vtype for MD must be 'LS', 'UB' or 'HO', got {vtype!r}")
    method = f"mean difference (metafor MD, vtype {vtype}), Wald CI"
    problem = input_problem(n1=n1, m1=m1, sd1=sd1, n2=n2, m2=m2, sd2=sd2)
    if problem:
        return not_estimable("MD", check_ci_level(ci_level), method, problem)
    if vtype in ("LS", "UB"):
        vi = square(sd1) / n1 + square(sd2) / n2
    else:
        vi = square(pooled_sd_of_arms(n1, sd1, n2, sd2)) * (1 / n1 + 1 / n2)
    return wald_effect("MD", m1 - m2, vi, ci_level, method)


def _smd_variance(
    vtype: str, n1: float, n2: float, yi: float, di: float, cmi: float, mi: float, npi: float
) -> float:
    if vtype == "LS":  # Hedges & Olkin (1985) eq. 15
        return 1 / n1 + 1 / n2 + square(yi) / (2 * npi)
    if vtype == "LS2":  # Borenstein (2009) eq. 12.17
        return cmi**2 * (1 / n1 + 1 / n2 + square(di) / (2 * npi))
    if vtype == "LS3":  # RevMan
        return 1 / n1 + 1 / n2 + square(yi) / (2 * (npi - 3.94))
    if vtype == "UB":  # Hedges (1983) unbiased
        return 1 / n1 + 1 / n2 + (1 - (mi - 2) / (mi * cmi**2)) * square(yi)
    if vtype == "H0":
        return cmi**2 * (1 / n1 + 1 / n2) * mi / (mi - 2) if mi > 2 else math.nan
    raise UsageError(f"vtype for SMD must be one of {', '.join(SMD_VTYPES)}, got {vtype!r}")


@overflow_checked
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
    if vtype not in SMD_VTYPES:
        raise UsageError(f"vtype for SMD must be one of {', '.join(SMD_VTYPES)}, got {vtype!r}")
    label = "Hedges' g (exact J)" if correct else "Cohen's d (pooled SD, uncorrected)"
    measure = "SMD" if correct else "cohens_d"
    method = f"{label}, metafor SMD vtype {vtype}, Wald CI"
    mi = n1 + n2 - 2
    problem = input_problem(n1=n1, m1=m1, sd1=sd1, n2=n2, m2=m2, sd2=sd2) or _smd_problem(
        n1, sd1, n2, sd2
    )
    if not problem and correct and mi <= 1:
        problem = "not computed: Hedges' J(n1 + n2 - 2) needs n1 + n2 > 3"
    if problem:
        return not_estimable(measure, check_ci_level(ci_level), method, problem)
    di = (m1 - m2) / pooled_sd_of_arms(n1, sd1, n2, sd2)
    cmi = hedges_j(mi) if correct else 1.0
    yi = cmi * di
    if not math.isfinite(yi):
        return wald_effect(measure, yi, math.nan, ci_level, method)
    with np.errstate(over="ignore", invalid="ignore"):
        vi = _smd_variance(vtype, n1, n2, yi, di, cmi, mi, n1 + n2)
    return wald_effect(measure, yi, vi, ci_level, method)


def _smd_problem(n1: float, sd1: float, n2: float, sd2: float) -> str | None:
    """Why a pooled-SD standardised difference cannot be computed, or None."""
    if n1 + n2 <= 2:
        return "not computed: n1 + n2 must exceed 2 for a pooled SD"
    if pooled_sd_of_arms(n1, sd1, n2, sd2) == 0:
        return "not computed: the pooled SD is 0 (no variation within either arm), so the SMD is undefined"
    return None


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


@overflow_checked
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
    method = "Glass's delta (control SD, uncorrected), metafor SMD1 LS variance, Wald CI"
    problem = input_problem(n1=n1, m1=m1, sd1=sd1, n2=n2, m2=m2, sd2=sd2)
    if not problem and sd2 == 0:
        problem = "not computed: the control SD is 0, so Glass's delta is undefined"
    if problem:
        return not_estimable("glass_delta", check_ci_level(ci_level), method, problem)
    di = (m1 - m2) / sd2
    vi = 1 / n1 + 1 / n2 + square(di) / (2 * n2)
    return wald_effect("glass_delta", di, vi, ci_level, method)


@overflow_checked
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
    if vtype not in ("LS", "LS2", "LS3"):
        raise UsageError(f"vtype for SMDH must be 'LS', 'LS2' or 'LS3', got {vtype!r}")
    method = f"heteroscedastic SMD (Bonett 2009, exact J), metafor SMDH vtype {vtype}, Wald CI"
    problem = input_problem(n1=n1, m1=m1, sd1=sd1, n2=n2, m2=m2, sd2=sd2)
    if not problem and min(n1, n2) <= 1:
        problem = "not computed: SMDH needs at least 2 participants per arm"
    if not problem and sd1 == 0 and sd2 == 0:
        problem = "not computed: both SDs are 0 (no variation within either arm), so SMDH is undefined"
    if problem:
        return not_estimable("SMDH", check_ci_level(ci_level), method, problem)
    scale = max(sd1, sd2)
    if not 1e-70 < scale < 1e70:  # sd^4 would under- or overflow: the formulas are scale-free
        sd1, sd2, m1, m2 = sd1 / scale, sd2 / scale, m1 / scale, m2 / scale
    cmi = hedges_j(n1 + n2 - 2)
    s = math.sqrt((sd1**2 + sd2**2) / 2)
    yi = cmi * (m1 - m2) / s
    if not math.isfinite(yi):
        return wald_effect("SMDH", yi, math.nan, ci_level, method)
    try:
        vi = _smdh_variance(vtype, n1, n2, sd1, sd2, s, yi)
    except OverflowError:
        vi = math.inf
    return wald_effect("SMDH", yi, vi, ci_level, method)


def _smdh_variance(vtype: str, n1: float, n2: float, sd1: float, sd2: float, s: float, yi: float) -> float:
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
    return vi


@overflow_checked
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
    method = "log ratio of means (metafor ROM, vtype LS, no bias correction), Wald CI"
    problem = input_problem(n1=n1, m1=m1, sd1=sd1, n2=n2, m2=m2, sd2=sd2)
    if problem:
        return not_estimable("ROM", check_ci_level(ci_level), method, problem)
    if m1 <= 0 or m2 <= 0:
        raise UsageError(f"ROM needs positive means, got m1={m1}, m2={m2}")
    ratio = m1 / m2
    yi = math.log(ratio) if 0 < ratio < math.inf else math.log(m1) - math.log(m2)
    vi = _relative_variance(sd1, m1, n1) + _relative_variance(sd2, m2, n2)
    return wald_effect("ROM", yi, vi, ci_level, method)


def _relative_variance(sd: float, m: float, n: float) -> float:
    """``sd^2 / (n m^2)``, computed as ``(sd/m)^2 / n`` when the squares under- or overflow."""
    try:
        v = square(sd) / (n * square(m))
    except ZeroDivisionError:
        v = math.nan
    return v if math.isfinite(v) else square(sd / m) / n


# Bracket widenings (steps of one approximate SE of the ncp) before the interval search gives up;
# the limits lie a few SEs from t, so this bound is never reached when the cdf can be evaluated.
_NCP_MAX_STEPS = 1000
# Largest |t| at which the noncentral t distribution is evaluated at all (see _ncp_interval).
_NCP_MAX_T = 1e5


def _ncp_interval(t: float, df: float, ci_level: float) -> tuple[float, float]:
    """Noncentrality parameters whose t distributions put ``t`` at the upper/lower tail quantile.

    ``(nan, nan)`` when scipy cannot evaluate the noncentral t distribution near ``t`` (|t| in
    the tens of thousands, or beyond ~25 for 2 df): the search is bounded in steps, Brent
    iterations and time (:class:`analysis.core.limits.Deadline`), and never hangs.
    """
    alpha = (1 - ci_level) / 2
    deadline = Deadline("the noncentral-t confidence interval")

    def raw(ncp: float) -> float:
        deadline.check()
        return float(stats.nct.cdf(t, df, ncp))

    def cdf(ncp: float) -> float:
        p = raw(ncp)
        # far in the tails scipy can return NaN; the cdf is then 1 (ncp << t) or 0 (ncp >> t)
        return p if np.isfinite(p) else (1.0 if ncp < t else 0.0)

    # beyond |t| ~ 1e5 scipy's noncentral t is NaN and takes seconds to minutes per value
    if not (abs(t) <= _NCP_MAX_T and df > 0 and math.isfinite(raw(t))):
        return math.nan, math.nan
    step = math.sqrt(1 + square(t) / (2 * df))  # approximate standard error of the ncp

    def solve(target: float) -> float:
        lo, hi = t - step, t + step
        for _ in range(_NCP_MAX_STEPS):
            if cdf(lo) - target >= 0:
                break
            lo -= step
        else:
            return math.nan
        for _ in range(_NCP_MAX_STEPS):
            if cdf(hi) - target <= 0:
                break
            hi += step
        else:
            return math.nan
        root, info = optimize.brentq(
            lambda ncp: cdf(ncp) - target, lo, hi, xtol=1e-13, rtol=1e-15, maxiter=200,
            full_output=True, disp=False,
        )
        # a root found on the NaN fallback is not a limit of the interval
        return float(root) if info.converged and math.isfinite(raw(root)) else math.nan

    low = solve(1 - alpha)
    high = solve(alpha) if math.isfinite(low) else math.nan
    return (low, high) if math.isfinite(high) else (math.nan, math.nan)


@overflow_checked
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
    label = "Hedges' g (exact J)" if correct else "Cohen's d"
    method = f"{label}, noncentral-t CI (as R effectsize)"
    if not math.isfinite(wald.estimate):
        return not_estimable(wald.measure, ci_level, method, wald.note or "not computed")
    scale = math.sqrt(1 / n1 + 1 / n2)
    di = (m1 - m2) / pooled_sd_of_arms(n1, sd1, n2, sd2)
    t = di / scale
    lo, hi = _ncp_interval(t, n1 + n2 - 2, ci_level)
    note = None
    if not (math.isfinite(lo) and math.isfinite(hi)):
        note = (
            f"noncentral-t interval not computed: the noncentral t distribution cannot be evaluated "
            f"at t = {t:.4g} with {n1 + n2 - 2:g} df (too far in the tail); use the Wald interval"
        )
    factor = hedges_j(n1 + n2 - 2) if correct else 1.0
    return EffectSize(
        wald.measure,
        wald.estimate,
        wald.variance,
        wald.std_error,
        factor * lo * scale,
        factor * hi * scale,
        ci_level,
        method,
        note,
    )
