"""Percent change and ratio of improvements: :func:`percent_change_of_means` (delta method),
:func:`mean_of_percent_changes` (one-sample t) and :func:`ratio_of_improvements` (Fieller) with
its :class:`RatioResult`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

from analysis.core.errors import UsageError
from analysis.core.tidy import check_ci_level, z_quantile
from analysis.stats.effects.common import (
    EffectSize,
    input_problem,
    not_estimable,
    overflow_checked,
    square,
    wald_effect,
)
from analysis.stats.effects.prepost import check_correlation


@overflow_checked
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
    method = "percent change of the arm means 100*(mean_post - mean_pre)/mean_pre, delta-method Wald CI using the pre-post correlation"
    problem = input_problem(n=n, m_pre=m_pre, m_post=m_post, sd_pre=sd_pre, sd_post=sd_post, r=r)
    if problem:
        return not_estimable("pct_change_of_means", check_ci_level(ci_level), method, problem)
    check_correlation(r)
    if m_pre == 0:
        raise UsageError("percent change is undefined when the baseline mean is 0")
    ratio = m_post / m_pre
    try:
        var_ratio = (sd_post**2 + ratio**2 * sd_pre**2 - 2 * ratio * r * sd_pre * sd_post) / (
            n * m_pre**2
        )
    except (OverflowError, ZeroDivisionError):  # squares outside the float range: scale-free form
        var_ratio = math.nan
    if not math.isfinite(var_ratio):
        a, b = sd_post / m_pre, sd_pre / m_pre
        var_ratio = (square(a) + square(ratio * b) - 2 * ratio * r * a * b) / n
    return wald_effect("pct_change_of_means", 100 * (ratio - 1), 100**2 * var_ratio, ci_level, method)


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
    method = "mean of individual percent changes 100*(post_i - pre_i)/pre_i, one-sample t CI"
    with np.errstate(over="ignore", invalid="ignore"):
        mean, se = float(x.mean()), float(x.std(ddof=1) / math.sqrt(n))
    if not (math.isfinite(mean) and math.isfinite(se)):
        return not_estimable(
            "mean_pct_change", ci_level, method,
            "not computed: the percent changes are outside the floating-point range (overflow)",
        )
    q = stats.t.ppf(0.5 + ci_level / 2, n - 1)
    note = None
    if se == 0:
        note = "every participant has the same percent change: SE 0, the interval has zero width"
    return EffectSize(
        "mean_pct_change", mean, se**2, se, mean - q * se, mean + q * se, ci_level, method, note
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


@overflow_checked
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
    method = (
        "ratio of mean changes (treatment/control), Fieller CI (independent arms, normal quantile)"
    )
    problem = input_problem(change_t=change_t, se_t=se_t, change_c=change_c, se_c=se_c)
    if problem:
        return RatioResult(math.nan, math.nan, math.nan, ci_level, False, method, problem)
    scale = max(abs(change_t), abs(change_c), se_t, se_c)
    if scale > 0 and not 1e-100 < scale < 1e100:  # a ratio is scale-free: avoid squaring overflow
        change_t, change_c, se_t, se_c = change_t / scale, change_c / scale, se_t / scale, se_c / scale
    a, b, va, vb = change_t, change_c, se_t**2, se_c**2
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
    root = q * math.sqrt(max(0.0, va * b**2 + vb * a**2 - q**2 * va * vb))
    estimate, low, high = a / b, (a * b - root) / denom, (a * b + root) / denom
    if not all(math.isfinite(v) for v in (estimate, low, high)):
        return RatioResult(
            math.nan, math.nan, math.nan, ci_level, False, method,
            "the ratio of improvements is outside the floating-point range: no estimate reported",
        )
    return RatioResult(estimate, low, high, ci_level, True, method)
