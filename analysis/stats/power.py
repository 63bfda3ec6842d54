"""Power and sample size for a two-arm trial: analytic t-test and ANCOVA, attrition, simulation.

Analytic power uses the noncentral t distribution exactly as R's ``pwr::pwr.t.test`` does (both
tails counted for a two-sided test); we call statsmodels' :class:`TTestIndPower`, which matches
``pwr`` to better than 1e-6 (tests/reference/power_ref.json).

Simulation-based power is vectorised across simulated trials: every trial's least-squares fit is
one slice of a batched normal-equations solve in NumPy, never a loop of model fits.

Conventions: ``n_per_arm`` is the number *analysed* per arm (1:1 allocation); ``d`` is the
standardised mean difference (treatment minus control, in outcome SD units); ``r`` is the
correlation between baseline and follow-up.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.stats.power import TTestIndPower

from analysis.core.errors import UsageError
from analysis.core.limits import Deadline, check_memory, rows_per_chunk
from analysis.core.progress import ProgressCallback, loop_progress
from analysis.stats.noncentral import power_or_limit, solve_n

_TT = TTestIndPower()
_ALTERNATIVES = ("two-sided", "larger", "smaller")
# Simulations draw outcomes in SD units; beyond this effect every trial is significant and the
# sums of squares of the batched fits would lose all precision.
MAX_SIMULATED_EFFECT = 1e3


def _check(name: str, value: float, low: float, high: float, *, low_open: bool = True, high_open: bool = True) -> None:
    bad_low = value <= low if low_open else value < low
    bad_high = value >= high if high_open else value > high
    if not np.isfinite(value) or bad_low or bad_high:
        lo = "(" if low_open else "["
        hi = ")" if high_open else "]"
        raise UsageError(f"{name} must be in {lo}{low}, {high}{hi}, found {value}")


def _check_alternative(alternative: str) -> None:
    if alternative not in _ALTERNATIVES:
        raise UsageError(f"alternative must be one of {', '.join(_ALTERNATIVES)}, found '{alternative}'")


def ttest_power(d: float, n_per_arm: float, alpha: float = 0.05, alternative: str = "two-sided") -> float:
    """Power of the two-sample t-test with ``n_per_arm`` participants per arm.

    power = P(|T| > t_{1-alpha/2, 2n-2}) with T ~ noncentral t(df = 2n - 2, ncp = d sqrt(n/2)).
    Matches ``pwr::pwr.t.test(n, d, sig.level, type = "two.sample")$power``.

    Examples
    --------
    >>> round(ttest_power(0.5, 64), 4)
    0.8015
    """
    _check("d", d, -np.inf, np.inf)
    _check("n_per_arm", n_per_arm, 1, np.inf)
    _check("alpha", alpha, 0, 1)
    _check_alternative(alternative)
    return power_or_limit(_TT, d, n_per_arm, alpha, alternative)


def ttest_n(d: float, power: float = 0.8, alpha: float = 0.05, alternative: str = "two-sided") -> float:
    """Participants per arm (not rounded) for the two-sample t-test to reach ``power``.

    Solves :func:`ttest_power` = power for n; matches ``pwr::pwr.t.test(d, power)$n``.

    Examples
    --------
    >>> round(ttest_n(0.5, 0.9), 2)
    85.03
    """
    _check("d", d, 0, np.inf) if alternative != "smaller" else _check("d", -d, 0, np.inf)
    _check("power", power, alpha, 1)
    _check("alpha", alpha, 0, 1)
    _check_alternative(alternative)
    import warnings

    # statsmodels' solver warns (and returns NaN) when it fails; its answer is checked below instead
    with warnings.catch_warnings(record=True), np.errstate(all="ignore"):
        warnings.simplefilter("always")
        try:
            n = float(_TT.solve_power(effect_size=d, power=power, alpha=alpha, ratio=1.0, alternative=alternative))
        except (ValueError, TypeError, RuntimeError, ArithmeticError):
            n = math.nan
    if math.isfinite(n) and n > 1 and abs(ttest_power(d, n, alpha, alternative) - power) < 1e-6:
        return n
    # statsmodels' solver failed (an extreme d): a bounded search of our own
    return solve_n(lambda m: ttest_power(d, m, alpha, alternative), power, 2.0, f"d = {d}")


def ancova_power(d: float, n_per_arm: float, r: float, alpha: float = 0.05) -> float:
    """Two-sided power of ANCOVA (follow-up ~ arm + baseline) with baseline correlation ``r``.

    Adjusting for baseline shrinks the residual variance by the design factor 1 - r^2 (Borm,
    Fransen & Lemmens 2007), so the effect in residual-SD units is d / sqrt(1 - r^2); one more
    parameter is estimated, so df = 2n - 3. power = P(|T| > t_{1-alpha/2, 2n-3}),
    T ~ noncentral t(2n - 3, d sqrt(n/2) / sqrt(1 - r^2)). With r = 0 it differs from the t-test
    only through the lost degree of freedom.

    Examples
    --------
    >>> ancova_power(0.5, 64, 0.5) > ttest_power(0.5, 64)
    True
    """
    _check("d", d, -np.inf, np.inf)
    _check("r", r, -1, 1)
    _check("n_per_arm", n_per_arm, 2, np.inf)
    _check("alpha", alpha, 0, 1)
    effect = d / math.sqrt(1.0 - r * r)
    return power_or_limit(_TT, effect, n_per_arm, alpha, "two-sided", df=2 * n_per_arm - 3)


def ancova_n(d: float, r: float, power: float = 0.8, alpha: float = 0.05) -> float:
    """Participants per arm (not rounded) for ANCOVA to reach ``power``; see :func:`ancova_power`.

    Solves ``ancova_power(d, n, r, alpha) = power`` for n with Brent's method, i.e. the noncentral
    t power with df = 2n - 3 and ncp = d sqrt(n/2) / sqrt(1 - r^2) (Borm, Fransen & Lemmens 2007).
    For large n this tends to the t-test n times the design factor 1 - r^2.

    Parameters
    ----------
    d
        Standardised mean difference (treatment minus control, in outcome SD units).
    r
        Correlation between baseline and follow-up.
    power, alpha
        Target power and two-sided significance level.

    Returns
    -------
    float
        Participants analysed per arm; round up, then :func:`inflate_for_attrition`.

    Examples
    --------
    >>> import math
    >>> n = ancova_n(0.5, r=0.5)
    >>> round(n, 2), round(ancova_power(0.5, n, 0.5), 4)
    (48.08, 0.8)

    The t-test needs 63.77 per arm; times the design factor 1 - 0.5^2 = 0.75 that is 47.82, and
    the ANCOVA's lost degree of freedom adds a fraction of a participant:

    >>> round(ttest_n(0.5) * (1 - 0.5**2), 2)
    47.82
    >>> inflate_for_attrition(math.ceil(n), 0.1)
    55
    """
    _check("d", abs(d), 0, np.inf)
    _check("r", r, -1, 1)
    _check("power", power, alpha, 1)
    _check("alpha", alpha, 0, 1)
    return solve_n(lambda n: ancova_power(d, n, r, alpha), power, 2.0 + 1e-9, f"d = {d} and r = {r}")


def inflate_for_attrition(n_analysed: float, attrition: float) -> int:
    """Participants to enrol per arm so that ``n_analysed`` remain after ``attrition`` (a fraction).

    n_enrol = ceil(n_analysed / (1 - attrition)) (not n (1 + attrition), which under-enrols).

    Examples
    --------
    >>> inflate_for_attrition(64, 0.2)
    80
    """
    _check("attrition", attrition, 0, 1, low_open=False)
    _check("n_analysed", n_analysed, 0, np.inf)
    # Round away float noise such as 63.99999999 before the ceiling.
    return int(math.ceil(round(n_analysed / (1.0 - attrition), 9)))


@dataclass(frozen=True)
class SimulatedPower:
    """Result of a simulation-based power calculation.

    Attributes
    ----------
    power : share of simulated trials with p < alpha.
    mc_se : Monte-Carlo standard error, sqrt(power (1 - power) / n_sims).
    n_sims, seed : the simulation size and the NumPy seed (``default_rng(seed)``).
    method : what was simulated and how it was analysed.
    mean_estimate : mean treatment-effect estimate across simulated trials (a bias check).
    """

    power: float
    mc_se: float
    n_sims: int
    seed: int
    method: str
    mean_estimate: float


def batched_ancova(arm: np.ndarray, baseline: np.ndarray, followup: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """OLS of followup ~ 1 + arm + baseline for a batch of trials sharing one allocation.

    ``arm`` (n,) of 0/1; ``baseline`` and ``followup`` (S, n). Each trial's normal equations are
    built from its sufficient statistics (sums, cross-products: one matrix-vector product per
    statistic over all trials), solved as one batched 3 x 3 system, and the residual sum of
    squares is y'y - b'X'y. Returns the arm coefficient, its SE (sigma^2 (X'X)^-1) and the
    residual df n - 3, each of shape (S,). Equals ``statsmodels`` OLS per trial (tested).
    """
    n_sims, n = baseline.shape
    arm = np.asarray(arm, dtype=float)
    n_arm = arm.sum()
    s_b = baseline.sum(axis=1)
    s_ab = baseline @ arm
    s_bb = np.einsum("ij,ij->i", baseline, baseline)
    xtx = np.empty((n_sims, 3, 3))
    xtx[:, 0, 0], xtx[:, 0, 1], xtx[:, 1, 1] = n, n_arm, (arm * arm).sum()
    xtx[:, 0, 2] = xtx[:, 2, 0] = s_b
    xtx[:, 1, 2] = xtx[:, 2, 1] = s_ab
    xtx[:, 1, 0] = n_arm
    xtx[:, 2, 2] = s_bb
    xty = np.stack([followup.sum(axis=1), followup @ arm, np.einsum("ij,ij->i", baseline, followup)], axis=1)
    inverse = np.linalg.inv(xtx)
    beta = np.einsum("spq,sq->sp", inverse, xty)
    yy = np.einsum("ij,ij->i", followup, followup)
    rss = yy - np.einsum("sp,sp->s", beta, xty)
    exact = rss <= 1e-8 * yy  # y'y - b'X'y cancels for a near-perfect fit (r near +-1): use residuals
    if exact.any():
        fitted = beta[exact, 0, None] + beta[exact, 1, None] * arm + beta[exact, 2, None] * baseline[exact]
        rss[exact] = np.einsum("ij,ij->i", followup[exact] - fitted, followup[exact] - fitted)
    df = float(n - 3)
    se = np.sqrt(rss / df * inverse[:, 1, 1])
    return beta[:, 1], se, np.full(n_sims, df)


def simulate_ancova_trials(d: float, n_per_arm: int, r: float, n_sims: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Draw ``n_sims`` two-arm trials: baseline ~ N(0, 1), follow-up = r baseline + sqrt(1-r^2) e + d arm.

    Returns ``arm`` (2n,) with the first n participants in control, and ``(baseline, followup)``
    stacked as an array of shape (2, n_sims, 2n).
    """
    check_memory(
        32.0 * n_sims * 2 * n_per_arm,
        f"{n_sims:,} simulated trials of {2 * n_per_arm:,} participants",
        "use fewer simulations",
    )
    rng = np.random.default_rng(seed)
    arm = np.repeat([0.0, 1.0], n_per_arm)
    base = rng.standard_normal((n_sims, 2 * n_per_arm))
    noise = rng.standard_normal((n_sims, 2 * n_per_arm))
    follow = r * base + math.sqrt(1.0 - r * r) * noise + d * arm
    return arm, np.stack([base, follow])


def _check_simulation(d: float, n_per_arm: float, n_sims: float, seed: object) -> None:
    """The arguments every power simulation shares; a simulation too large to finish is refused."""
    _check("d", d, -MAX_SIMULATED_EFFECT, MAX_SIMULATED_EFFECT, low_open=False, high_open=False)
    if not (np.isfinite(n_per_arm) and int(n_per_arm) == n_per_arm and n_per_arm >= 3):
        raise UsageError(f"n_per_arm must be a whole number >= 3 for simulation, found {n_per_arm}")
    if not (np.isfinite(n_sims) and int(n_sims) == n_sims and n_sims >= 1):
        raise UsageError(f"n_sims must be a whole number >= 1, found {n_sims}")
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise UsageError(f"seed must be a non-negative integer, found {seed!r}")
    # every trial's estimate and p-value are kept
    check_memory(16.0 * n_sims, f"{int(n_sims):,} simulated trials", "use fewer simulations")


def _paired_streams(seed: int, first_shape: tuple[int, ...], n_sims: int, chunk: int, deadline: Deadline):
    """Two generators giving, chunk by chunk, the draws ``default_rng(seed)`` would give for an
    ``(n_sims, *first_shape)`` block and for the block after it: the second stream is advanced past
    the first block by drawing (and discarding) it in chunks, so memory stays bounded and the
    values are exactly those of the unchunked draw."""
    first = np.random.default_rng(seed)
    second = np.random.default_rng(seed)
    for start in range(0, n_sims, chunk):
        deadline.check()
        second.standard_normal((min(chunk, n_sims - start), *first_shape))
    return first, second


def simulate_power_ancova(
    d: float,
    n_per_arm: int,
    r: float = 0.0,
    n_sims: int = 2000,
    seed: int = 0,
    alpha: float = 0.05,
    progress: ProgressCallback | None = None,
) -> SimulatedPower:
    """Simulation-based power of ANCOVA (follow-up ~ 1 + arm + baseline), vectorised across trials.

    Each simulated trial is drawn by :func:`simulate_ancova_trials` and analysed by ordinary least
    squares with a two-sided t-test on the arm coefficient (df = 2n - 3), exactly as
    ``statsmodels.formula.api.ols("followup ~ arm + baseline")`` would, but all trials are solved
    at once by :func:`batched_ancova`. Monte-Carlo SE = sqrt(p (1 - p) / n_sims). ``progress`` is
    called as ``progress(done, n_sims)`` after each chunk of trials (default: the callback installed
    with :func:`analysis.core.progress.reporting_progress`, if any); it does not change the result.

    Examples
    --------
    >>> sim = simulate_power_ancova(0.5, 64, r=0.5, n_sims=500, seed=1)
    >>> abs(sim.power - ancova_power(0.5, 64, 0.5)) < 4 * sim.mc_se
    True
    """
    _check("r", r, -1, 1)
    _check("alpha", alpha, 0, 1)
    _check_simulation(d, n_per_arm, n_sims, seed)
    n, n_sims = int(n_per_arm), int(n_sims)
    report = loop_progress("simulated trials", n_sims, progress)
    per_trial = 8.0 * 2 * n * 8  # baseline, noise, follow-up, their stack and the fits' temporaries
    chunk = rows_per_chunk(per_trial)
    if chunk >= n_sims:
        arm, (base, follow) = simulate_ancova_trials(d, n, r, n_sims, seed)
        est, se, df = batched_ancova(arm, base, follow)
        p = 2 * stats.t.sf(np.abs(est / se), df)
        report(n_sims, n_sims)
    else:  # the same draws, a chunk of trials at a time
        deadline = Deadline(f"a simulation of {n_sims:,} trials", UsageError, "use fewer simulations")
        first, second = _paired_streams(seed, (2 * n,), n_sims, chunk, deadline)
        arm = np.repeat([0.0, 1.0], n)
        est, p = np.empty(n_sims), np.empty(n_sims)
        for start in range(0, n_sims, chunk):
            deadline.check()
            b = min(chunk, n_sims - start)
            base = first.standard_normal((b, 2 * n))
            follow = r * base + math.sqrt(1.0 - r * r) * second.standard_normal((b, 2 * n)) + d * arm
            e, se, df = batched_ancova(arm, base, follow)
            est[start : start + b], p[start : start + b] = e, 2 * stats.t.sf(np.abs(e / se), df)
            report(start + b, n_sims)
    power = float(np.mean(p < alpha))
    return SimulatedPower(
        power=power,
        mc_se=math.sqrt(power * (1 - power) / n_sims),
        n_sims=int(n_sims),
        seed=int(seed),
        method=f"ANCOVA (follow-up ~ arm + baseline), OLS, r = {r}",
        mean_estimate=float(est.mean()),
    )


def _unstructured(sd: np.ndarray, corr: np.ndarray) -> np.ndarray:
    return corr * np.outer(sd, sd)


def simulate_mmrm_trials(
    effects: np.ndarray,
    n_per_arm: int,
    corr: np.ndarray,
    dropout: np.ndarray,
    n_sims: int,
    seed: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Draw trials with a baseline and J follow-up visits and monotone, outcome-independent dropout.

    Values (baseline, visit 1..J) ~ N(mean, corr) with unit SDs; the treatment arm's mean at visit
    j is ``effects[j]``. ``dropout[j]`` is the cumulative share missing at visit j (non-decreasing);
    who drops out does not depend on the outcomes (MCAR).

    Returns ``arm`` (2n,), ``values`` (S, 2n, J + 1) and ``observed`` (S, 2n, J) booleans.
    """
    n_visits = len(effects)
    check_memory(
        24.0 * n_sims * 2 * n_per_arm * (n_visits + 1),
        f"{n_sims:,} simulated trials of {2 * n_per_arm:,} participants x {n_visits + 1} visits",
        "use fewer simulations",
    )
    rng = np.random.default_rng(seed)
    arm = np.repeat([0.0, 1.0], n_per_arm)
    try:
        chol = np.linalg.cholesky(corr)
    except np.linalg.LinAlgError:
        raise UsageError("corr must be positive definite") from None
    z = rng.standard_normal((n_sims, 2 * n_per_arm, n_visits + 1))
    values = z @ chol.T
    values[..., 1:] += arm[None, :, None] * effects[None, None, :]
    # Monotone MCAR dropout: a uniform draw decides the last visit each participant attends.
    u = rng.random((n_sims, 2 * n_per_arm, 1))
    observed = u >= np.asarray(dropout)[None, None, :]
    return arm, values, observed


def simulate_power_mmrm(
    d: float,
    n_per_arm: int,
    corr: np.ndarray,
    dropout: np.ndarray,
    n_sims: int = 1000,
    seed: int = 0,
    alpha: float = 0.05,
    progress: ProgressCallback | None = None,
) -> SimulatedPower:
    """Simulation-based power for the treatment effect at the last (primary) visit of an MMRM.

    **An approximation, stated honestly.** The MMRM (change ~ baseline x visit + arm x visit,
    unstructured covariance) is replaced by generalised least squares with the *true* conditional
    covariance of the follow-up visits given baseline, i.e. the estimator the MMRM converges to.
    Each trial's GLS fit uses all available visits of every participant (dropouts contribute
    their early visits, as in an MMRM under MAR). What it ignores: estimating the unstructured
    covariance (the MMRM's Satterthwaite/Kenward-Roger df and its small-sample variance inflation).
    The test uses a t reference with df = (number observed at the primary visit) - 3, so the
    power is slightly optimistic for small trials and indistinguishable for moderate ones. With
    no dropout the GLS estimate equals the ANCOVA at the primary visit exactly.

    Parameters
    ----------
    d : float
        Treatment effect at the primary (last) visit in SD units; earlier visits get d * j / J.
    n_per_arm : int
        Participants randomised per arm (before dropout).
    corr : array_like
        (J + 1) x (J + 1) correlation matrix of baseline and follow-up visits (unit SDs).
    dropout : array_like
        Length-J non-decreasing cumulative missing shares per follow-up visit.
    n_sims, seed : int
        Number of simulated trials and the seed of ``numpy.random.default_rng``.
    alpha : float
        Two-sided significance level.
    progress : callable, optional
        Called as ``progress(done, n_sims)`` after each chunk of trials (default: the callback
        installed with :func:`analysis.core.progress.reporting_progress`, if any); it does not
        change the result.

    Returns
    -------
    SimulatedPower
        Power (share of trials with p < alpha) with its Monte-Carlo SE
        sqrt(p (1 - p) / n_sims).

    Examples
    --------
    Without dropout the estimator is the ANCOVA at the last visit, so the simulated power agrees
    with :func:`ancova_power` (r = corr[0, J] = 0.5) within Monte-Carlo error:

    >>> import numpy as np
    >>> corr = np.array([[1.0, 0.6, 0.5], [0.6, 1.0, 0.6], [0.5, 0.6, 1.0]])
    >>> sim = simulate_power_mmrm(0.5, 64, corr, dropout=[0.0, 0.0], n_sims=1000, seed=1)
    >>> round(sim.power, 3), round(sim.mc_se, 3), round(ancova_power(0.5, 64, r=0.5), 3)
    (0.894, 0.01, 0.9)

    With 10% gone by the first and 20% by the last visit, power falls to about that of a
    complete-case ANCOVA on the 80% who remain:

    >>> sim = simulate_power_mmrm(0.5, 64, corr, dropout=[0.1, 0.2], n_sims=1000, seed=1)
    >>> round(sim.power, 3), round(ancova_power(0.5, 64 * 0.8, r=0.5), 3)
    (0.819, 0.825)
    """
    corr = np.asarray(corr, dtype=float)
    dropout = np.asarray(dropout, dtype=float)
    n_visits = corr.shape[0] - 1 if corr.ndim == 2 else 0
    if not (np.all(np.isfinite(corr)) and np.all(np.isfinite(dropout))):
        raise UsageError("corr and dropout must be finite numbers")
    if corr.shape != (n_visits + 1, n_visits + 1) or n_visits < 1 or not np.allclose(corr, corr.T):
        raise UsageError("corr must be a symmetric (J + 1) x (J + 1) correlation matrix with J >= 1")
    if np.any(np.linalg.eigvalsh(corr) <= 0) or not np.allclose(np.diag(corr), 1.0):
        raise UsageError("corr must be positive definite with ones on the diagonal")
    if dropout.shape != (n_visits,) or np.any(np.diff(dropout) < 0) or np.any((dropout < 0) | (dropout >= 1)):
        raise UsageError(f"dropout must be {n_visits} non-decreasing shares in [0, 1)")
    _check("alpha", alpha, 0, 1)
    _check_simulation(d, n_per_arm, n_sims, seed)
    n, n_sims = int(n_per_arm), int(n_sims)
    effects = d * np.arange(1, n_visits + 1) / n_visits
    # values, observed, the GLS design and weighted responses, and the normal equations
    per_trial = 8.0 * (2 * n * (4 * n_visits + 6) + 3 * (3 * n_visits) ** 2)
    chunk = rows_per_chunk(per_trial)
    report = loop_progress("simulated trials", n_sims, progress)
    if chunk >= n_sims:
        arm, values, observed = simulate_mmrm_trials(effects, n, corr, dropout, n_sims, seed)
        est, se, n_primary = batched_gls_primary(arm, values, observed, corr)
        report(n_sims, n_sims)
    else:  # the same draws, a chunk of trials at a time
        deadline = Deadline(f"a simulation of {n_sims:,} trials", UsageError, "use fewer simulations")
        first, second = _paired_streams(seed, (2 * n, n_visits + 1), n_sims, chunk, deadline)
        arm = np.repeat([0.0, 1.0], n)
        chol = np.linalg.cholesky(corr)
        est, se, n_primary = np.empty(n_sims), np.empty(n_sims), np.empty(n_sims)
        for start in range(0, n_sims, chunk):
            deadline.check()
            b = min(chunk, n_sims - start)
            values = first.standard_normal((b, 2 * n, n_visits + 1)) @ chol.T
            values[..., 1:] += arm[None, :, None] * effects[None, None, :]
            observed = second.random((b, 2 * n, 1)) >= dropout[None, None, :]
            part = batched_gls_primary(arm, values, observed, corr)
            est[start : start + b], se[start : start + b], n_primary[start : start + b] = part
            report(start + b, n_sims)
    df = n_primary - 3.0
    analysed = np.isfinite(est)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = np.where(analysed, 2 * stats.t.sf(np.abs(est / se), df), np.nan)
    power = float(np.mean(p < alpha))
    method = "MMRM at primary visit approximated by GLS with the true unstructured covariance (MCAR dropout)"
    if not analysed.all():
        method += (
            f"; {int((~analysed).sum())} of {n_sims} simulated trials had too few participants at a "
            "visit to be analysed (fewer than 3, or an arm empty) and count as not significant"
        )
    return SimulatedPower(
        power=power,
        mc_se=math.sqrt(power * (1 - power) / n_sims),
        n_sims=n_sims,
        seed=int(seed),
        method=method,
        mean_estimate=float(est.mean()) if analysed.all() else float(np.nanmean(est)) if analysed.any() else math.nan,
    )


def batched_gls_primary(
    arm: np.ndarray, values: np.ndarray, observed: np.ndarray, corr: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """GLS for y_ij = a_j + t_j arm_i + g_j baseline_i + e_ij with known covariance, batched over trials.

    Observations are monotone: participant i is seen at visits 1..k_i. With Sigma the covariance of
    the follow-ups given baseline and W_k the inverse of its leading k x k block, the normal matrix
    is sum_k (W_k (x) sum_{i: k_i = k} z_i z_i') with z_i = (1, arm_i, baseline_i), and the right side
    sum_i (W_{k_i} y_i) (x) z_i. Returns the last visit's arm coefficient, its SE and the number of
    participants observed at the last visit, each of shape (S,).
    """
    n_sims, n_part, n_cols = values.shape
    n_visits = n_cols - 1
    cov = np.asarray(corr, dtype=float)
    s_bb, s_by, s_yy = cov[0, 0], cov[0, 1:], cov[1:, 1:]
    cond = s_yy - np.outer(s_by, s_by) / s_bb
    z = np.stack([np.ones((n_sims, n_part)), np.broadcast_to(arm, (n_sims, n_part)), values[..., 0]], axis=-1)
    y = np.where(observed, values[..., 1:], 0.0)
    k_obs = observed.sum(axis=-1)
    if np.any(observed != (np.arange(n_visits)[None, None, :] < k_obs[..., None])):
        raise UsageError("observed visits must be monotone (no return after a missed visit)")
    # a trial's visit-j coefficients are estimable when both arms and >= 3 participants are
    # observed there (and >= 4 at the primary visit, for a t test with df >= 1); other trials get NaN
    treated = np.asarray(arm, dtype=float) == 1.0
    seen_t, seen_c = observed[:, treated, :].sum(axis=1), observed[:, ~treated, :].sum(axis=1)
    analysable = np.all((seen_t >= 1) & (seen_c >= 1) & (seen_t + seen_c >= 3), axis=1)
    analysable &= seen_t[:, -1] + seen_c[:, -1] >= 4
    p = 3 * n_visits
    normal = np.zeros((n_sims, p, p))
    rhs = np.zeros((n_sims, n_visits, 3))
    for k in range(1, n_visits + 1):  # one pass per dropout pattern (J of them), not per trial
        w = np.zeros((n_visits, n_visits))
        w[:k, :k] = np.linalg.inv(cond[:k, :k])
        mask = (k_obs == k).astype(float)
        zz = np.einsum("sn,sna,snb->sab", mask, z, z)
        normal += np.einsum("jl,sab->sjalb", w, zz).reshape(n_sims, p, p)
        wy = np.einsum("jl,snl->snj", w, y)
        rhs += np.einsum("sn,snj,sna->sja", mask, wy, z)
    if not analysable.all():
        normal[~analysable] = np.eye(p)  # placeholders, so the batched solve cannot fail
    theta = np.linalg.solve(normal, rhs.reshape(n_sims, p, 1))[..., 0]
    col = 3 * (n_visits - 1) + 1
    unit = np.zeros((n_sims, p, 1))
    unit[:, col, 0] = 1.0
    var = np.linalg.solve(normal, unit)[:, col, 0]
    estimate, std_error = theta[:, col], np.sqrt(var)
    if not analysable.all():
        estimate[~analysable] = std_error[~analysable] = np.nan
    return estimate, std_error, observed[..., -1].sum(axis=-1).astype(float)


def power_curve(
    effect_sizes: list[float],
    n_per_arm: list[int],
    r: float | None = None,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Analytic power over a grid: columns ``method, d, r, n_per_arm, alpha, power`` (t-test, and ANCOVA if r)."""
    rows = []
    for d in effect_sizes:
        for n in n_per_arm:
            rows.append({"method": "t-test", "d": d, "r": np.nan, "n_per_arm": n, "alpha": alpha, "power": ttest_power(d, n, alpha)})
            if r is not None:
                rows.append({"method": "ANCOVA", "d": d, "r": r, "n_per_arm": n, "alpha": alpha, "power": ancova_power(d, n, r, alpha)})
    return pd.DataFrame(rows)
