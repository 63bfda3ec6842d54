"""Noncentral-t power with certified far tails, and the bounded sample-size search.

statsmodels' :class:`~statsmodels.stats.power.TTestIndPower` evaluates the power through scipy's
noncentral t, which returns NaN far in the tails (a large n or effect, where the power is 0 or 1 to
double precision). :func:`power_or_limit` keeps statsmodels' value whenever it is a number (so every
result that matched R's ``pwr`` still does) and otherwise replaces each NaN tail by the limit a
probability bound proves it equals. :func:`solve_n` solves power(n) = target with a bounded
bracket and a bounded number of Brent iterations.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
from scipy import optimize, stats

from analysis.core.errors import UsageError
from analysis.core.limits import Deadline

# A NaN term of the noncentral-t power is replaced by its limit (0 or 1) only when a bound proves
# it is within this much of that limit.
_CERTAIN = 1e-17
# Beyond this noncentrality scipy's noncentral t is slow (seconds per value) and mostly NaN: a tail
# whose limit is certified is then not evaluated at all.
_FAR = 1e4


def _tail_above(c: float, df: float, ncp: float) -> float:
    """P(T > c) for T ~ noncentral t(df, ncp); scipy's NaN far in the tails replaced by the limit it
    provably equals to double precision, else NaN."""
    p = float(stats.nct.sf(c, df, ncp)) if abs(ncp) <= _FAR else math.nan
    if math.isfinite(p):
        return p
    if ncp <= 0 and c >= 0 and stats.norm.cdf(ncp) < _CERTAIN:  # P(T > c) <= P(Z + ncp > 0)
        return 0.0
    if ncp > 0 and c > 0:
        # P(T <= c) <= P(Z <= -ncp/2) + P(chi2_df >= df (ncp / 2c)^2)
        try:
            threshold = df * (ncp / (2 * c)) ** 2
        except OverflowError:
            threshold = math.inf
        if stats.norm.cdf(-ncp / 2) + stats.chi2.sf(threshold, df) < _CERTAIN:
            return 1.0
    if ncp > 0 and c <= 0 and stats.norm.cdf(-ncp) < _CERTAIN:  # P(T <= c) <= P(Z + ncp <= 0)
        return 1.0
    return _tail_by_quadrature(c, df, ncp)


def _tail_by_quadrature(c: float, df: float, ncp: float) -> float:
    """P(T > c) = E[Phi(ncp - c sqrt(V/df))], V ~ chi2(df), integrated over the probability scale of
    V (u = F_chi2(V) in (0, 1)), with a break point where ``c sqrt(V/df) = ncp``; bounded adaptive
    quadrature (at most 200 subintervals); NaN if it does not converge."""
    from scipy import integrate

    def integrand(u: float) -> float:
        v = float(stats.chi2.ppf(u, df))
        return float(stats.norm.cdf(ncp - c * math.sqrt(v / df))) if math.isfinite(v) else 0.0

    points = []
    if ncp > 0 and c > 0:
        with np.errstate(all="ignore"):
            turn = float(stats.chi2.cdf(df * (ncp / c) ** 2, df)) if ncp / c < 1e150 else 1.0
        if 0 < turn < 1:
            points = [turn]
    with warnings.catch_warnings():
        warnings.simplefilter("error", integrate.IntegrationWarning)
        try:
            value, _error = integrate.quad(integrand, 0.0, 1.0, points=points or None, limit=200, epsabs=1e-15, epsrel=1e-10)
        except (integrate.IntegrationWarning, ValueError, ArithmeticError):
            return math.nan
    return min(max(float(value), 0.0), 1.0) if math.isfinite(value) else math.nan


def _nct_power(effect: float, n_per_arm: float, alpha: float, alternative: str, df: float) -> float:
    """Power of the two-sample t test (ncp = effect sqrt(n/2), ``df``) from :func:`_tail_above`."""
    ncp = effect * math.sqrt(n_per_arm / 2.0)
    tails = 2 if alternative == "two-sided" else 1
    c = float(stats.t.isf(alpha / tails, df))
    power = 0.0
    if alternative in ("two-sided", "larger"):
        power += _tail_above(c, df, ncp)
    if alternative in ("two-sided", "smaller"):
        power += _tail_above(c, df, -ncp)  # P(T < -c; ncp) = P(T > c; -ncp)
    return power


def power_or_limit(
    solver, effect: float, n_per_arm: float, alpha: float, alternative: str, df: float | None = None
) -> float:
    """``solver.power`` (statsmodels' :class:`TTestIndPower`, 1:1 allocation); where its noncentral t
    returns NaN (far tails: a large n or effect), the certified limit from :func:`_nct_power`; a
    power that cannot be computed is a :class:`UsageError`."""
    kwargs = {} if df is None else {"df": df}
    df = 2 * n_per_arm - 2 if df is None else df
    # far in the tails scipy's noncentral t warns and returns NaN; a NaN is replaced (or refused) below
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        if abs(effect) * math.sqrt(n_per_arm / 2.0) > _FAR:  # the limits, without scipy's slow tails
            value = _nct_power(effect, n_per_arm, alpha, alternative, df)
        else:
            value = float(solver.power(effect_size=effect, nobs1=n_per_arm, alpha=alpha, ratio=1.0, alternative=alternative, **kwargs))
            if not math.isfinite(value):
                value = _nct_power(effect, n_per_arm, alpha, alternative, df)
    if not math.isfinite(value):
        raise UsageError(
            f"the power for effect {effect:.4g} with {n_per_arm:g} per arm cannot be computed: the "
            "noncentral t distribution is beyond scipy's range there"
        )
    return value


def solve_n(power_at, target: float, lowest: float, what: str) -> float:
    """n in (lowest, 1e9] with ``power_at(n) = target``: a doubling bracket (at most ~27 steps),
    then Brent's method (at most 500 iterations); ``what`` names the design in messages."""
    deadline = Deadline(f"the sample-size search for {what}", UsageError)
    upper = 10.0
    while power_at(upper) < target:
        deadline.check()
        upper *= 2
        if upper > 1e9:
            raise UsageError(f"no sample size below 1e9 per arm reaches power {target} for {what}")
    if power_at(lowest) >= target:
        raise UsageError(
            f"with {what} even {lowest:g} participants per arm already reach power {target}; "
            "there is no sample size to solve for"
        )
    def gap(n: float) -> float:
        deadline.check()
        return power_at(n) - target

    root, info = optimize.brentq(gap, lowest, upper, xtol=1e-10, rtol=1e-14, maxiter=500, full_output=True, disp=False)
    if not info.converged:
        raise UsageError(f"the sample size for power {target} with {what} did not converge")
    return float(root)
