"""Within an arm (pre -> post); metafor convention: 1 = post, 2 = pre, yi = m1 - m2.

Owns :func:`change_sd`, MC (:func:`mean_change`), SMCC (:func:`smcc`), SMCR (:func:`smcr`), the
correlation check ``check_correlation`` and Morris (2008) :func:`d_ppc2` (pretest-posttest-control).
"""

from __future__ import annotations

import math

import numpy as np
from scipy import special

from analysis.core.errors import UsageError
from analysis.core.tidy import check_ci_level
from analysis.stats.effects.common import (
    SMC_VTYPES,
    EffectSize,
    hedges_j,
    input_problem,
    not_estimable,
    overflow_checked,
    pooled_sd_of_arms,
    square,
    wald_effect,
)


def check_correlation(r: float) -> None:
    if not -1 <= r <= 1:
        raise UsageError(f"a correlation must lie in [-1, 1], got {r}")


def change_sd(sd_post: float, sd_pre: float, r: float) -> float:
    """SD of change scores, ``sqrt(sd_post^2 + sd_pre^2 - 2 r sd_post sd_pre)``.

    Rounding cannot make the root negative (it is 0 then), and SDs whose squares under- or
    overflow are rescaled first; NaN when an input is not a finite number.

    Raises
    ------
    UsageError
        The SD of change is beyond the floating-point range (SDs near 1.8e308 with r < 0).
    """
    value = _change_sd(sd_post, sd_pre, r)
    if math.isinf(value):
        raise UsageError(
            f"the SD of change for SDs {sd_post:.3g} and {sd_pre:.3g} with r = {r} is beyond the "
            "floating-point range"
        )
    return value


@overflow_checked
def _change_sd(sd_post: float, sd_pre: float, r: float) -> float:
    """:func:`change_sd`, ``inf`` when the SD itself is beyond the floating-point range."""
    if not all(math.isfinite(v) for v in (sd_post, sd_pre, r)):
        return math.nan
    variance = square(sd_post) + square(sd_pre) - 2 * r * sd_post * sd_pre
    scale = max(abs(sd_post), abs(sd_pre))
    if (variance == 0 or not math.isfinite(variance)) and 0 < scale < math.inf:
        a, b = sd_post / scale, sd_pre / scale
        return scale * math.sqrt(max(0.0, a * a + b * b - 2 * r * a * b))
    return math.sqrt(max(0.0, variance))


@overflow_checked
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
    method = "raw mean change (metafor MC), Wald CI"
    problem = input_problem(n=n, m_post=m_post, m_pre=m_pre, sd_post=sd_post, sd_pre=sd_pre, r=r)
    if problem:
        return not_estimable("MC", check_ci_level(ci_level), method, problem)
    check_correlation(r)
    return wald_effect("MC", m_post - m_pre, square(_change_sd(sd_post, sd_pre, r)) / n, ci_level, method)


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


@overflow_checked
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
    _check_vtype(vtype)
    method = f"standardised mean change, change-score SD (metafor SMCC, exact J, vtype {vtype}), Wald CI"
    problem = input_problem(n=n, m_post=m_post, m_pre=m_pre, sd_post=sd_post, sd_pre=sd_pre, r=r)
    if not problem:
        check_correlation(r)
        if n <= 2:
            problem = "not computed: Hedges' J(n - 1) needs n > 2"
        elif _change_sd(sd_post, sd_pre, r) == 0:
            problem = "not computed: the SD of the change scores is 0, so SMCC is undefined"
    if problem:
        return not_estimable("SMCC", check_ci_level(ci_level), method, problem)
    di = (m_post - m_pre) / _change_sd(sd_post, sd_pre, r)
    cmi = hedges_j(n - 1)
    yi = cmi * di
    return wald_effect("SMCC", yi, _smc_variance_safe(vtype, n, r, yi, di, cmi, False), ci_level, method)


@overflow_checked
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
    _check_vtype(vtype)
    method = f"standardised mean change, pretest SD (metafor SMCR, exact J, vtype {vtype}), Wald CI"
    problem = input_problem(n=n, m_post=m_post, m_pre=m_pre, sd_pre=sd_pre, r=r)
    if not problem:
        check_correlation(r)
        if n <= 2:
            problem = "not computed: Hedges' J(n - 1) needs n > 2"
        elif sd_pre == 0:
            problem = "not computed: the pretest SD is 0, so SMCR is undefined"
    if problem:
        return not_estimable("SMCR", check_ci_level(ci_level), method, problem)
    di = (m_post - m_pre) / sd_pre
    cmi = hedges_j(n - 1)
    yi = cmi * di
    return wald_effect("SMCR", yi, _smc_variance_safe(vtype, n, r, yi, di, cmi, True), ci_level, method)


def _check_vtype(vtype: str) -> None:
    if vtype not in SMC_VTYPES:
        raise UsageError(
            f"vtype for SMCC/SMCR must be one of {', '.join(SMC_VTYPES)}, got {vtype!r}"
        )


def _smc_variance_safe(
    vtype: str, n: float, r: float, yi: float, di: float, cmi: float, rawscore: bool
) -> float:
    """:func:`_smc_variance`, NaN where it is undefined (n too small) or overflows."""
    if not math.isfinite(yi):
        return math.nan
    try:
        with np.errstate(all="ignore"):
            return float(_smc_variance(vtype, n, r, yi, di, cmi, rawscore=rawscore))
    except (OverflowError, ZeroDivisionError):
        return math.nan


@overflow_checked
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
    method = "Morris (2008) d_ppc2 (pooled pretest SD, c_p approximation), eq. 25 variance, Wald CI"
    problem = input_problem(
        n_t=n_t, pre_t=pre_t, post_t=post_t, sd_pre_t=sd_pre_t,
        n_c=n_c, pre_c=pre_c, post_c=post_c, sd_pre_c=sd_pre_c, r=r,
    )
    if not problem:
        check_correlation(r)
        if n_t + n_c <= 2:
            problem = "not computed: n_t + n_c must exceed 2 for a pooled pretest SD"
        elif pooled_sd_of_arms(n_t, sd_pre_t, n_c, sd_pre_c) == 0:
            problem = "not computed: the pooled pretest SD is 0, so d_ppc2 is undefined"
    if problem:
        return not_estimable("d_ppc2", check_ci_level(ci_level), method, problem)
    big_n = n_t + n_c
    if 4 * (big_n - 2) - 1 == 0:  # only for a fractional n_t + n_c = 2.25
        return not_estimable("d_ppc2", ci_level, method, "not computed: c_p is undefined for n_t + n_c = 2.25")
    cp = 1 - 3 / (4 * (big_n - 2) - 1)
    sp = pooled_sd_of_arms(n_t, sd_pre_t, n_c, sd_pre_c)
    d = cp * ((post_t - pre_t) - (post_c - pre_c)) / sp
    k = big_n / (n_t * n_c)
    if not math.isfinite(d):
        return wald_effect("d_ppc2", d, math.nan, ci_level, method)
    if big_n <= 4 or r == 1:
        # eq. 25 has (N - 4) and (1 - r) in denominators: no variance, so no CI
        return wald_effect("d_ppc2", d, math.nan, ci_level, method, note="eq. 25 variance needs n_t + n_c > 4 and r < 1")
    d2 = square(d)
    vi = 2 * cp**2 * (1 - r) * k * (big_n - 2) / (big_n - 4) * (1 + d2 / (2 * (1 - r) * k)) - d2
    return wald_effect("d_ppc2", d, vi, ci_level, method)
