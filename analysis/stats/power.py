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
from scipy import optimize, stats
from statsmodels.stats.power import TTestIndPower

from analysis.core.errors import UsageError

_TT = TTestIndPower()
_ALTERNATIVES = ("two-sided", "larger", "smaller")


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
    return float(_TT.power(effect_size=d, nobs1=n_per_arm, alpha=alpha, ratio=1.0, alternative=alternative))


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
    return float(_TT.solve_power(effect_size=d, power=power, alpha=alpha, ratio=1.0, alternative=alternative))


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
    _check("r", r, -1, 1)
    _check("n_per_arm", n_per_arm, 2, np.inf)
    _check("alpha", alpha, 0, 1)
    effect = d / math.sqrt(1.0 - r * r)
    return float(_TT.power(effect_size=effect, nobs1=n_per_arm, alpha=alpha, ratio=1.0, df=2 * n_per_arm - 3))


def ancova_n(d: float, r: float, power: float = 0.8, alpha: float = 0.05) -> float:
    """Participants per arm (not rounded) for ANCOVA to reach ``power``; see :func:`ancova_power`.

    For large n this tends to the t-test n times the design factor 1 - r^2.
    """
    _check("d", abs(d), 0, np.inf)
    _check("r", r, -1, 1)
    _check("power", power, alpha, 1)
    _check("alpha", alpha, 0, 1)
    upper = 10.0
    while ancova_power(d, upper, r, alpha) < power:
        upper *= 2
        if upper > 1e9:
            raise UsageError(f"no sample size below 1e9 per arm reaches power {power} for d = {d}")
    return float(optimize.brentq(lambda n: ancova_power(d, n, r, alpha) - power, 2.0 + 1e-9, upper, xtol=1e-10, rtol=1e-14))


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
    rss = np.einsum("ij,ij->i", followup, followup) - np.einsum("sp,sp->s", beta, xty)
    df = float(n - 3)
    se = np.sqrt(rss / df * inverse[:, 1, 1])
    return beta[:, 1], se, np.full(n_sims, df)


def simulate_ancova_trials(d: float, n_per_arm: int, r: float, n_sims: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Draw ``n_sims`` two-arm trials: baseline ~ N(0, 1), follow-up = r baseline + sqrt(1-r^2) e + d arm.

    Returns ``arm`` (2n,) with the first n participants in control, and ``(baseline, followup)``
    stacked as an array of shape (2, n_sims, 2n).
    """
    rng = np.random.default_rng(seed)
    arm = np.repeat([0.0, 1.0], n_per_arm)
    base = rng.standard_normal((n_sims, 2 * n_per_arm))
    noise = rng.standard_normal((n_sims, 2 * n_per_arm))
    follow = r * base + math.sqrt(1.0 - r * r) * noise + d * arm
    return arm, np.stack([base, follow])


def simulate_power_ancova(
    d: float, n_per_arm: int, r: float = 0.0, n_sims: int = 2000, seed: int = 0, alpha: float = 0.05
) -> SimulatedPower:
    """Simulation-based power of ANCOVA (follow-up ~ 1 + arm + baseline), vectorised across trials.

    Each simulated trial is drawn by :func:`simulate_ancova_trials` and analysed by ordinary least
    squares with a two-sided t-test on the arm coefficient (df = 2n - 3), exactly as
    ``statsmodels.formula.api.ols("followup ~ arm + baseline")`` would, but all trials are solved
    at once by :func:`batched_ancova`. Monte-Carlo SE = sqrt(p (1 - p) / n_sims).

    Examples
    --------
    >>> sim = simulate_power_ancova(0.5, 64, r=0.5, n_sims=500, seed=1)
    >>> abs(sim.power - ancova_power(0.5, 64, 0.5)) < 4 * sim.mc_se
    True
    """
    _check("r", r, -1, 1)
    _check("alpha", alpha, 0, 1)
    if int(n_per_arm) != n_per_arm or n_per_arm < 3:
        raise UsageError(f"n_per_arm must be a whole number >= 3 for simulation, found {n_per_arm}")
    if int(n_sims) != n_sims or n_sims < 1:
        raise UsageError(f"n_sims must be a whole number >= 1, found {n_sims}")
    arm, (base, follow) = simulate_ancova_trials(d, int(n_per_arm), r, int(n_sims), seed)
    est, se, df = batched_ancova(arm, base, follow)
    p = 2 * stats.t.sf(np.abs(est / se), df)
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
    rng = np.random.default_rng(seed)
    n_visits = len(effects)
    arm = np.repeat([0.0, 1.0], n_per_arm)
    chol = np.linalg.cholesky(corr)
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
    d : treatment effect at the primary (last) visit in SD units; earlier visits get d * j / J.
    corr : (J + 1) x (J + 1) correlation matrix of baseline and follow-up visits (unit SDs).
    dropout : length-J non-decreasing cumulative missing shares per follow-up visit.
    """
    corr = np.asarray(corr, dtype=float)
    dropout = np.asarray(dropout, dtype=float)
    n_visits = corr.shape[0] - 1
    if corr.shape != (n_visits + 1, n_visits + 1) or n_visits < 1 or not np.allclose(corr, corr.T):
        raise UsageError("corr must be a symmetric (J + 1) x (J + 1) correlation matrix with J >= 1")
    if np.any(np.linalg.eigvalsh(corr) <= 0) or not np.allclose(np.diag(corr), 1.0):
        raise UsageError("corr must be positive definite with ones on the diagonal")
    if dropout.shape != (n_visits,) or np.any(np.diff(dropout) < 0) or np.any((dropout < 0) | (dropout >= 1)):
        raise UsageError(f"dropout must be {n_visits} non-decreasing shares in [0, 1)")
    if int(n_sims) != n_sims or n_sims < 1 or int(n_per_arm) != n_per_arm or n_per_arm < 3:
        raise UsageError("n_sims must be >= 1 and n_per_arm >= 3, both whole numbers")
    effects = d * np.arange(1, n_visits + 1) / n_visits
    arm, values, observed = simulate_mmrm_trials(effects, int(n_per_arm), corr, dropout, int(n_sims), seed)
    est, se, n_primary = batched_gls_primary(arm, values, observed, corr)
    df = n_primary - 3.0
    p = 2 * stats.t.sf(np.abs(est / se), df)
    power = float(np.mean(p < alpha))
    return SimulatedPower(
        power=power,
        mc_se=math.sqrt(power * (1 - power) / n_sims),
        n_sims=int(n_sims),
        seed=int(seed),
        method="MMRM at primary visit approximated by GLS with the true unstructured covariance (MCAR dropout)",
        mean_estimate=float(est.mean()),
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
        raise ValueError("observed visits must be monotone (no return after a missed visit)")
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
    theta = np.linalg.solve(normal, rhs.reshape(n_sims, p, 1))[..., 0]
    col = 3 * (n_visits - 1) + 1
    unit = np.zeros((n_sims, p, 1))
    unit[:, col, 0] = 1.0
    var = np.linalg.solve(normal, unit)[:, col, 0]
    return theta[:, col], np.sqrt(var), observed[..., -1].sum(axis=-1).astype(float)


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
