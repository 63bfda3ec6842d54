"""The between-study variance: input checks, inverse-variance pooling (statsmodels), the generalised Q
statistic, the (restricted) likelihood, the ``tau^2`` estimators (:func:`estimate_tau2`: DL, PM,
ML, REML) and the Q-profile confidence interval for ``tau^2`` (:func:`tau2_confint`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
from scipy import optimize, stats
from statsmodels.stats.meta_analysis import combine_effects

from analysis.core.errors import ModelError, UsageError
from analysis.core.tidy import check_ci_level

Method = Literal["REML", "DL", "PM", "ML", "FE"]
METHODS: tuple[str, ...] = ("REML", "DL", "PM", "ML", "FE")
METHOD_NAMES = {
    "REML": "random effects, tau^2 by REML",
    "DL": "random effects, tau^2 by DerSimonian-Laird",
    "PM": "random effects, tau^2 by Paule-Mandel",
    "ML": "random effects, tau^2 by ML",
    "FE": "fixed effect (inverse variance)",
}


def arrays(yi: Sequence[float] | np.ndarray, vi: Sequence[float] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(yi, dtype=float).ravel()
    v = np.asarray(vi, dtype=float).ravel()
    if y.shape != v.shape:
        raise UsageError(f"yi and vi must have the same length (found {y.size} and {v.size})")
    if y.size == 0:
        raise UsageError("a meta-analysis needs at least one study (found none)")
    if not (np.all(np.isfinite(y)) and np.all(np.isfinite(v))):
        raise UsageError("yi and vi must be finite numbers (found a missing or infinite value)")
    if np.any(v <= 0):
        raise UsageError(f"every sampling variance vi must be > 0 (found {v[v <= 0][0]!r})")
    return y, v


# Inputs whose |yi| and sqrt(vi) lie within [1 / MODERATE, MODERATE] are used as they are; others
# are divided by a power of two s (yi / s, vi / s^2, exact in binary floating point), which the
# model is equivariant to, and must then lie within [1 / LIMIT, LIMIT] for Q, the likelihood and
# their squares to stay finite.
MODERATE = 1e50
LIMIT = 1e100
# Widenings of a root bracket (factor 10 each) before a tau^2 search gives up.
MAX_BRACKET_STEPS = 200


def scaled_arrays(
    yi: Sequence[float] | np.ndarray, vi: Sequence[float] | np.ndarray
) -> tuple[np.ndarray, np.ndarray, float]:
    """Checked ``y``, ``v`` and a power-of-two scale ``s``: the model is fitted to ``y/s``, ``v/s^2``.

    ``s = 1`` (the inputs unchanged) unless an effect or a standard error is beyond 1e50 or below
    1e-50 in magnitude; then ``s`` brings the median standard error near 1.

    Raises
    ------
    UsageError
        Even after scaling the effects or variances span too many orders of magnitude for Q and
        tau^2 to be computed in double precision.
    """
    y, v = arrays(yi, vi)
    root = np.sqrt(v)
    top = max(float(np.abs(y).max()), float(root.max()))
    if top <= MODERATE and float(root.min()) >= 1.0 / MODERATE:
        return y, v, 1.0
    scale = float(np.ldexp(1.0, int(np.round(np.log2(np.median(root))))))
    with np.errstate(over="ignore", under="ignore"):  # out-of-range values are refused just below
        ys, vs = y / scale, v / (scale * scale)
    if not (np.abs(ys).max() <= LIMIT and vs.max() <= LIMIT and vs.min() >= 1.0 / LIMIT):
        raise UsageError(
            "yi and vi span too many orders of magnitude for a meta-analysis in double precision "
            f"(|yi| up to {np.abs(y).max():.3g}, vi from {v.min():.3g} to {v.max():.3g}); check "
            "their units"
        )
    return ys, vs, scale


def inverse_variance(y: np.ndarray, v: np.ndarray):
    """statsmodels' inverse-variance pooling of ``y`` with variances ``v`` (its fixed-effect part).

    ``combine_effects`` also computes an untruncated DL random-effects fit and HKSJ scales that
    divide by ``k - 1``; those parts are unused here and may divide by zero or overflow (k = 1, a
    negative raw DL tau^2, Q near 0), so their floating-point warnings are silenced.
    """
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        return combine_effects(y, v, method_re="dl")


def generalized_q(yi: Sequence[float], vi: Sequence[float], tau2: float) -> float:
    """Generalised Q statistic ``Q(tau^2) = sum_i w_i (y_i - mu_w)^2``, ``w_i = 1/(v_i + tau^2)``.

    ``Q(0)`` is Cochran's Q. ``Q(tau^2)`` decreases in ``tau^2``; Paule-Mandel solves
    ``Q(tau^2) = k - 1`` and the Q-profile CI solves it at chi-square quantiles (Viechtbauer 2007).

    Examples
    --------
    >>> round(generalized_q([0.0, 1.0], [1.0, 1.0], 0.0), 6)
    0.5
    """
    y, v, scale = scaled_arrays(yi, vi)
    w = 1.0 / (v + tau2 / scale**2)
    mu = np.sum(w * y) / np.sum(w)
    return float(np.sum(w * (y - mu) ** 2))


def log_likelihood(yi: Sequence[float], vi: Sequence[float], tau2: float, *, reml: bool = True) -> float:
    """(Restricted) log-likelihood of the random-effects model at ``tau^2``, ``mu`` profiled out.

    ``ll_ML = -1/2 [k log(2 pi) + sum log(v_i + tau^2) + sum w_i (y_i - mu_w)^2]`` and
    ``ll_REML = ll_ML + 1/2 log(2 pi) - 1/2 log(sum w_i)``, as in metafor's ``logLik.rma``
    (which adds the constant ``1/2 log|X'X| = 0`` for the intercept-only model).

    Examples
    --------
    >>> round(log_likelihood([0.0], [1.0], 0.0, reml=False), 6)
    -0.918939
    """
    y, v, scale = scaled_arrays(yi, vi)
    tau2 = tau2 / scale**2
    w = 1.0 / (v + tau2)
    mu = np.sum(w * y) / np.sum(w)
    ll = -0.5 * (y.size * np.log(2 * np.pi) + np.sum(np.log(v + tau2)) + np.sum(w * (y - mu) ** 2))
    if reml:
        ll += 0.5 * np.log(2 * np.pi) - 0.5 * np.log(np.sum(w))
    if scale != 1.0:  # the likelihood of y = s y' has the Jacobian term -(k - reml) log s
        ll -= (y.size - (1 if reml else 0)) * np.log(scale)
    return float(ll)


def _score(y: np.ndarray, v: np.ndarray, tau2: np.ndarray, reml: bool) -> np.ndarray:
    """d ll / d tau^2 (times 2), vectorised over a grid of tau^2 values."""
    w = 1.0 / (v[None, :] + np.atleast_1d(tau2)[:, None])
    sw = w.sum(axis=1)
    mu = (w * y).sum(axis=1) / sw
    score = (w**2 * (y - mu[:, None]) ** 2).sum(axis=1) - sw
    if reml:
        score += (w**2).sum(axis=1) / sw
    return score


def _tau2_likelihood(y: np.ndarray, v: np.ndarray, reml: bool) -> float:
    """Global maximiser of the (restricted) likelihood over ``tau^2 >= 0``.

    The score is evaluated on a log-spaced grid; every sign change from + to - brackets a local
    maximum that is solved to machine precision with Brent's method, and the best of those and the
    boundary ``tau^2 = 0`` is returned (metafor reaches the same point by Fisher scoring from a
    moment estimate, truncating at 0).
    """
    if y.size == 1:
        return 0.0
    upper = 10.0 * (np.ptp(y) ** 2 + v.max())
    for _ in range(MAX_BRACKET_STEPS):
        if _score(y, v, np.array([upper]), reml)[0] < 0:
            break
        upper *= 10.0
    else:
        raise ModelError("the likelihood of tau^2 has no maximum within the floating-point range")
    grid = np.concatenate([[0.0], upper * np.logspace(-12, 0, 481)])
    score = _score(y, v, grid, reml)
    candidates = [0.0]
    for j in np.flatnonzero((score[:-1] > 0) & (score[1:] <= 0)):
        if score[j + 1] == 0:
            candidates.append(float(grid[j + 1]))
            continue
        root, info = optimize.brentq(
            lambda t: _score(y, v, np.array([t]), reml)[0], grid[j], grid[j + 1], xtol=1e-300, rtol=4 * np.finfo(float).eps, maxiter=500,
            full_output=True, disp=False,
        )
        if not info.converged:
            raise ModelError("the (restricted) likelihood of tau^2 could not be maximised in 500 iterations")
        candidates.append(float(root))
    return max(candidates, key=lambda t: log_likelihood(y, v, t, reml=reml))


def estimate_tau2(yi: Sequence[float], vi: Sequence[float], method: Method = "REML") -> float:
    """Between-study variance ``tau^2`` by REML, ML, DerSimonian-Laird or Paule-Mandel (0 for FE).

    * DL: ``max(0, (Q - (k - 1)) / (sum w - sum w^2 / sum w))``, ``w = 1/v`` (statsmodels'
      ``combine_effects(method_re="dl")``, truncated at 0 as metafor does).
    * PM: root of ``Q(tau^2) = k - 1``, 0 when ``Q(0) <= k - 1``, solved by Brent's method on the
      monotone generalised Q. (statsmodels' PM iteration is not used: once it is close to the root,
      rounding can make ``Q - (k - 1)`` slightly negative and it then returns 0.)
    * ML / REML: maximiser of the (restricted) likelihood over ``tau^2 >= 0``; at an interior
      maximum ``sum w^2 (y - mu)^2 = sum w`` (ML) or ``sum w - sum w^2 / sum w`` (REML).

    Matches metafor's ``rma(yi, vi, method=...)$tau2`` (see tests for the tolerances reached).

    Examples
    --------
    >>> round(estimate_tau2([0.0, 2.0], [1.0, 1.0], "DL"), 6)
    1.0
    """
    y, v, scale = scaled_arrays(yi, vi)
    if method not in METHODS:
        raise UsageError(f"method must be one of {', '.join(METHODS)} (found {method!r})")
    if method == "FE" or y.size == 1:
        return 0.0
    if method == "DL":
        tau2 = max(0.0, float(inverse_variance(y, v).tau2))
    elif method == "PM":
        tau2 = _q_root(y, v, float(y.size - 1))
        if not np.isfinite(tau2):
            raise ModelError("the Paule-Mandel equation Q(tau^2) = k - 1 has no root within the floating-point range")
    else:
        tau2 = _tau2_likelihood(y, v, reml=(method == "REML"))
    if not np.isfinite(tau2 * scale**2):
        raise UsageError(
            f"tau^2 ({tau2:.3g} x {scale:.3g}^2) lies beyond the floating-point range; rescale yi and vi"
        )
    return tau2 * scale**2


def _q_root(y: np.ndarray, v: np.ndarray, target: float) -> float:
    """``tau^2 >= 0`` with ``Q(tau^2) = target``; 0 when ``Q(0) <= target`` (Q decreases in tau^2).

    NaN when the root lies beyond the floating-point range (a target near 0) or the search does not
    converge; the search is bounded in bracket widenings and Brent iterations.
    """
    if generalized_q(y, v, 0.0) <= target:
        return 0.0
    upper = 10.0 * (np.ptp(y) ** 2 + v.max())
    for _ in range(MAX_BRACKET_STEPS):
        if not np.isfinite(upper):
            return float("nan")
        if generalized_q(y, v, upper) < target:
            break
        upper *= 10.0
    else:
        return float("nan")
    root, info = optimize.brentq(
        lambda t: generalized_q(y, v, t) - target, 0.0, upper, xtol=1e-300, rtol=4 * np.finfo(float).eps, maxiter=500,
        full_output=True, disp=False,
    )
    return float(root) if info.converged else float("nan")


def tau2_confint(yi: Sequence[float], vi: Sequence[float], ci_level: float = 0.95) -> tuple[float, float]:
    """Q-profile confidence interval for ``tau^2`` (Viechtbauer 2007; metafor ``confint.rma.uni``).

    The bounds solve ``Q(tau^2) = chi2_{(1+level)/2, k-1}`` (lower) and
    ``Q(tau^2) = chi2_{(1-level)/2, k-1}`` (upper), where ``Q(tau^2)`` is :func:`generalized_q`;
    a bound is 0 when ``Q(0)`` is already below its quantile. Independent of the ``tau^2``
    estimator, as in metafor. NaN for a single study.

    Examples
    --------
    >>> tau2_confint([0.0, 0.0], [1.0, 1.0])
    (0.0, 0.0)
    """
    y, v, scale = scaled_arrays(yi, vi)
    check_ci_level(ci_level)
    k = y.size
    if k < 2:
        return (float("nan"), float("nan"))
    alpha = 1.0 - ci_level
    targets = (stats.chi2.isf(alpha / 2, k - 1), stats.chi2.isf(1 - alpha / 2, k - 1))
    bounds = [_q_root(y, v, float(target)) * scale**2 for target in targets]
    # a bound beyond the floating-point range is reported as NaN (pool's note says why)
    return tuple(b if np.isfinite(b) else float("nan") for b in bounds)  # type: ignore[return-value]
