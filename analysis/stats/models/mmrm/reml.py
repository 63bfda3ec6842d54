"""MMRM REML estimation: the REML objective -2 l_R(theta) with its analytic gradient (evaluated
by :mod:`~analysis.stats.models.mmrm.stacked`), the observed information, the gradient of
l' A^{-1} l used by the Satterthwaite df, and the optimiser (Newton's method under the observed
information from the moment estimates, BFGS when Newton cannot proceed) with its
identifiability and convergence checks.
"""

from __future__ import annotations

import dataclasses
import functools
import weakref

import numpy as np
from scipy import linalg, optimize

from analysis.core.errors import ModelError
from analysis.core.limits import Deadline
from analysis.stats.models.mmrm.covariance import (
    as_covariance,
    covariance_matrices,
    parameter_count,
    sigma_jacobian,
    start_theta,
    structure_label,
)
from analysis.stats.models.mmrm.design import Pattern, Problem, crossproducts
from analysis.stats.models.mmrm.stacked import evaluate

_LOG_2PI = float(np.log(2.0 * np.pi))


# --------------------------------------------------------------------------------------------
# REML objective, gradient, information
# --------------------------------------------------------------------------------------------


class NotPositiveDefinite(Exception):
    pass


# LAPACK's Cholesky factor and solve, called as scipy.linalg.cho_factor(lower=True) /
# cho_solve call them (same routines, same arguments, hence the same numbers) without the
# wrappers' checks, which cost more than the 3 x 3 factorisations themselves.
_POTRF, _POTRS = linalg.get_lapack_funcs(("potrf", "potrs"), (np.zeros((1, 1)),))


@functools.lru_cache(maxsize=32)
def _eye(n: int) -> np.ndarray:
    out = np.eye(n)
    out.setflags(write=False)
    return out


def _cho_factor(a: np.ndarray) -> np.ndarray:
    """Lower Cholesky factor (upper triangle not cleaned), as ``cho_factor(a, lower=True)``."""
    if not np.isfinite(a).all():
        raise NotPositiveDefinite
    factor, info = _POTRF(a, lower=1, clean=0)
    if info != 0:
        raise NotPositiveDefinite
    return factor


def _cho_inverse(factor: np.ndarray) -> np.ndarray:
    """The inverse from a lower Cholesky factor, as ``cho_solve((factor, True), eye)``."""
    inverse, info = _POTRS(factor, _eye(factor.shape[0]), lower=1)
    if info != 0:
        raise NotPositiveDefinite
    return inverse


def _block_index(pattern: Pattern) -> tuple[np.ndarray, np.ndarray]:
    """``np.ix_(pattern.visits, pattern.visits)``, computed once per pattern."""
    index = _BLOCK_INDEX.get(pattern)
    if index is None:
        index = _BLOCK_INDEX[pattern] = np.ix_(pattern.visits, pattern.visits)
    return index


_BLOCK_INDEX: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _pattern_inverses(sigma: np.ndarray, patterns: list[Pattern]) -> list[tuple[np.ndarray, float]]:
    out = []
    if sigma.ndim == 2:
        sigma = sigma[None]
    for pattern in patterns:
        block = sigma[pattern.group][_block_index(pattern)]
        factor = _cho_factor(block)
        inverse = _cho_inverse(factor)
        out.append((inverse, 2.0 * float(np.sum(np.log(np.diag(factor))))))
    return out


def gls_pieces(sigma: np.ndarray, problem: Problem):
    """GLS pieces at a given Sigma: (-2 l_R, beta, A^{-1}, per-pattern W)."""
    inverses = _pattern_inverses(sigma, problem.patterns)
    p = len(problem.terms)
    a = np.zeros((p, p))
    c = np.zeros(p)
    yvy = 0.0
    logdet_v = 0.0
    for pattern, (w, logdet) in zip(problem.patterns, inverses, strict=True):
        a += np.einsum("ab,abpq->pq", w, pattern.xx)
        c += np.einsum("ab,abp->p", w, pattern.xy)
        yvy += float(np.sum(w * pattern.yy))
        logdet_v += pattern.n * logdet
    factor = _cho_factor(a)  # NotPositiveDefinite when a holds inf or NaN or is singular
    beta = _POTRS(factor, c, lower=1)[0]
    a_inv = _cho_inverse(factor)
    logdet_a = 2.0 * float(np.sum(np.log(np.diag(factor))))
    if getattr(problem, "reml", True):
        m2ll = (problem.n_obs - p) * _LOG_2PI + logdet_v + logdet_a + yvy - float(c @ beta)
    else:  # maximum likelihood: no log|A| term
        m2ll = problem.n_obs * _LOG_2PI + logdet_v + yvy - float(c @ beta)
    return m2ll, beta, a_inv, [w for w, _ in inverses]


def reml_objective(theta: np.ndarray, structure: str, problem: Problem) -> tuple[float, np.ndarray]:
    """-2 l_R(theta) and its analytic gradient (see the package docstring); ``inf`` (a step the
    optimiser rejects) where the covariance is not positive definite or overflows."""
    m2ll, gradient = evaluate(theta[None], structure, problem)
    return float(m2ll[0]), gradient[0]


def observed_information(theta: np.ndarray, structure: str, problem: Problem) -> np.ndarray:
    """Observed information of theta: Hessian of -l_R by central differences of the gradient,
    the 2k gradients evaluated in one stacked call."""
    k = theta.size
    steps = 1e-4 * np.maximum(1.0, np.abs(theta))
    shifts = np.diag(steps)
    _, gradients = evaluate(np.concatenate([theta + shifts, theta - shifts]), structure, problem)
    hessian = ((gradients[:k] - gradients[k:]) / (2 * steps[:, None])).T
    return 0.25 * (hessian + hessian.T)  # symmetrise; /2 turns -2 l_R into -l_R


def variance_gradient(
    contrasts: np.ndarray, theta: np.ndarray, structure: str, problem: Problem,
    a_inv: np.ndarray, ws: list[np.ndarray]
) -> np.ndarray:
    """g[m, k] = d (l_m' A^{-1} l_m) / d theta_k for each row l_m of ``contrasts``.

    With u = A^{-1} l: dA/dtheta_k = -sum_patterns sum_ab (W J_k W)[a,b] XX[a,b], hence
    g_k = sum_patterns sum_ab (W J_k W)[a,b] u' XX[a,b] u.
    """
    t = len(problem.visits)
    jacobian = sigma_jacobian(structure, theta, t)
    u = contrasts @ a_inv
    out = np.zeros((contrasts.shape[0], theta.size))
    for pattern, w in zip(problem.patterns, ws, strict=True):
        quad = np.einsum("mp,abpq,mq->mab", u, pattern.xx, u)
        e = np.einsum("ab,mbc,cd->mad", w, quad, w)
        j_sub = jacobian[:, pattern.group][:, pattern.visits][:, :, pattern.visits]
        out += np.einsum("mab,kab->mk", e, j_sub)
    return out


# --------------------------------------------------------------------------------------------
# Fitting
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, eq=False)
class StructureFit:
    structure: str
    theta: np.ndarray
    sigma: np.ndarray
    beta: np.ndarray
    cov_beta: np.ndarray
    reml_loglik: float
    theta_cov: np.ndarray
    ws: list
    iterations: int
    sigmas: np.ndarray | None = None  # (G, T, T): one covariance per group
    m2ll: float | None = None  # -2 log-likelihood (REML or ML, as fitted)


def _starting_sigma(problem: Problem) -> np.ndarray:
    """Pairwise moment estimate of Sigma from OLS residuals, made positive definite. Without
    participant rows (a problem built from pattern statistics) the OLS coefficients solve the
    normal equations X'X b = X'y summed over the patterns."""
    t = len(problem.visits)
    if problem.x is not None:
        beta_ols = np.linalg.lstsq(problem.x, problem.y, rcond=None)[0]
    else:
        xtx, xty = crossproducts(problem.patterns)
        beta_ols = np.linalg.lstsq(xtx, xty, rcond=None)[0]
    total = np.zeros((t, t))
    count = np.zeros((t, t))
    for pattern in problem.patterns:
        xb = pattern.xy @ beta_ols
        r = pattern.yy - xb - xb.T + np.einsum("p,abpq,q->ab", beta_ols, pattern.xx, beta_ols)
        index = np.ix_(pattern.visits, pattern.visits)
        total[index] += r
        count[index] += pattern.n
    sigma = np.where(count > 0, total / np.maximum(count, 1), 0.0)
    sigma = 0.5 * (sigma + sigma.T)
    values, vectors = np.linalg.eigh(sigma)
    floor = 1e-3 * max(float(np.mean(np.diag(sigma))), 1e-12)
    if values.min() < floor:
        sigma = (vectors * np.maximum(values, floor)) @ vectors.T
    if not np.all(np.isfinite(sigma)) or np.mean(np.diag(sigma)) <= 0:
        raise ModelError("the response has no variation left after the fixed effects; "
                         "the covariance cannot be estimated.")
    return sigma


def _check_identifiable(structure: str, problem: Problem) -> None:
    t = len(problem.visits)
    k = parameter_count(structure, t)
    p = len(problem.terms)
    kind = as_covariance(structure).kind
    if problem.n_obs - p < k:
        raise ModelError(
            f"{problem.n_obs} observations and {p} fixed effects leave too few degrees of freedom "
            f"for the {k} parameters of the {structure_label(structure)} covariance."
        )
    if kind in ("unstructured", "toeplitz", "toeplitz_heterogeneous"):
        together = np.zeros((t, t), dtype=int)
        for pattern in problem.patterns:
            together[np.ix_(pattern.visits, pattern.visits)] += pattern.n
        if kind == "unstructured":
            bad = [(problem.visits[a], problem.visits[b])
                   for a, b in zip(*np.triu_indices(t, 1), strict=True) if together[a, b] == 0]
        else:  # each lag needs at least one participant observed at two visits that far apart
            bad = [f"lag {lag}" for lag in range(1, t)
                   if not any(together[a, a + lag] for a in range(t - lag))]
        if bad:
            raise ModelError(
                f"the {structure_label(structure)} covariance is not identifiable: no participant "
                f"is observed at both visits of each of {bad}."
            )


@dataclasses.dataclass
class _NewtonState:
    theta: np.ndarray
    m2ll: float
    grad: np.ndarray
    info: np.ndarray
    decrement: float
    step: np.ndarray
    iterations: int


def _newton(theta: np.ndarray, m2ll: float, grad: np.ndarray, structure, problem: Problem,
            iterations: int, max_iterations: int, max_steps: int,
            deadline: Deadline) -> _NewtonState:
    """Newton steps under the observed information, halving a step that does not decrease
    -2 l_R, until the Newton decrement is below 1e-10, the iteration budget is spent, or no
    step can be made (information not positive definite, no decrease along the step)."""
    for _ in range(max_steps + 1):
        deadline.check()
        info = observed_information(theta, structure, problem)
        try:
            step = np.linalg.solve(info, 0.5 * grad)
        except np.linalg.LinAlgError:
            step = np.full_like(theta, np.nan)
        decrement = float(0.5 * grad @ step) if np.all(np.isfinite(step)) else np.inf
        state = _NewtonState(theta, m2ll, grad, info, decrement, step, iterations)
        if 0 <= decrement < 1e-10:
            return state
        if iterations >= max_iterations or not np.isfinite(decrement) or decrement < 0:
            return state
        scale = 1.0
        while scale > 1e-4:
            trial = theta - scale * step
            f_trial, g_trial = reml_objective(trial, structure, problem)
            if f_trial <= m2ll + 1e-12:
                theta, m2ll, grad = trial, f_trial, g_trial
                break
            scale /= 2
        else:
            return state
        iterations += 1
    return state


def fit_structure(structure: str, problem: Problem, max_iterations: int,
                   theta0: np.ndarray | None = None, deadline: Deadline | None = None) -> StructureFit:
    """REML (or ML) fit of one covariance structure, within ``deadline`` (trialkit's time limit
    when None): Newton's method under the observed information from the moment estimates; if it
    cannot proceed (information not positive definite far from the optimum), BFGS from the same
    start polished by at most 20 Newton steps. At most ``max_iterations`` iterations in all.

    Once the Newton decrement is below 1e-10, one more Newton step is taken: convergence is
    quadratic there, so the estimate is the maximiser to rounding error whichever way it was
    reached."""
    label = structure_label(structure)
    if deadline is None:
        deadline = Deadline(f"the {label} MMRM fit", ModelError, "try a simpler covariance structure")
    _check_identifiable(structure, problem)
    t = len(problem.visits)
    if theta0 is None:
        theta0 = start_theta(structure, _starting_sigma(problem))
    f0, g0 = reml_objective(theta0, structure, problem)
    if not np.isfinite(f0) or not np.all(np.isfinite(g0)):
        raise ModelError(f"the REML log-likelihood of the {label} MMRM is not finite at the "
                         "starting values; check the response for extreme values.")
    message = "Newton steps under the observed information"
    state = _newton(theta0, f0, g0, structure, problem, 0, max_iterations, max_iterations,
                    deadline)
    if not (0 <= state.decrement < 1e-10) and state.iterations < max_iterations:
        with np.errstate(all="ignore"):
            result = optimize.minimize(
                reml_objective, theta0, args=(structure, problem), jac=True, method="BFGS",
                options={"maxiter": max_iterations, "gtol": 1e-6},
                callback=lambda _theta: deadline.check(),
            )
        message = result.message
        m2ll, grad = reml_objective(result.x, structure, problem)
        if not np.isfinite(m2ll):
            raise ModelError(f"the {label} MMRM failed: the optimiser left the region where the "
                             "covariance matrix is positive definite.")
        # BFGS often stops with "precision loss" at the optimum: judge convergence ourselves, by
        # the Newton decrement under the observed information, and polish with Newton steps.
        state = _newton(result.x, m2ll, grad, structure, problem, int(result.nit),
                        max_iterations, 20, deadline)
    if 0 <= state.decrement < 1e-10:
        trial = state.theta - state.step
        f_trial, g_trial = reml_objective(trial, structure, problem)
        if np.isfinite(f_trial) and f_trial <= state.m2ll + 1e-9 * max(1.0, abs(state.m2ll)):
            info = observed_information(trial, structure, problem)
            try:
                step = np.linalg.solve(info, 0.5 * g_trial)
                decrement = float(0.5 * g_trial @ step)
            except np.linalg.LinAlgError:
                decrement = np.inf
            if np.isfinite(decrement):
                state = _NewtonState(trial, f_trial, g_trial, info, decrement, step,
                                     state.iterations)
    theta, grad, info, decrement, iterations = (state.theta, state.grad, state.info,
                                                state.decrement, state.iterations)
    eigen = np.linalg.eigvalsh(info) if np.all(np.isfinite(info)) else np.array([-np.inf])
    if iterations >= max_iterations and not (0 <= decrement < 1e-10):
        raise ModelError(
            f"the {label} MMRM did not converge within {max_iterations} iterations "
            f"(gradient norm {np.max(np.abs(grad)):.3g}; optimiser said: {message}). "
            "Try a simpler covariance (fallback=...) or check the data."
        )
    if eigen.min() <= 1e-8 * max(1.0, eigen.max()):
        raise ModelError(
            f"the {label} MMRM did not converge to a proper maximum: the REML information matrix "
            "is singular or not positive definite (a variance near zero or a correlation near "
            "+-1, or too few participants per missingness pattern)."
        )
    if not (0 <= decrement < 1e-6):
        raise ModelError(
            f"the {label} MMRM did not converge: the optimiser stopped away from the maximum "
            f"(Newton decrement {decrement:.3g}; optimiser said: {message})."
        )
    sigmas = covariance_matrices(structure, theta, t)
    m2ll, beta, a_inv, ws = gls_pieces(sigmas, problem)
    return StructureFit(structure=structure, theta=theta, sigma=sigmas[0], beta=beta, cov_beta=a_inv,
                reml_loglik=-0.5 * m2ll, theta_cov=np.linalg.inv(info), ws=ws,
                iterations=iterations, sigmas=sigmas, m2ll=m2ll)


_fit_structure = fit_structure  # the name tests/stats/models/test_mmrm_formula.py imports
