"""Degrees of freedom and covariance of the fixed effects beyond Satterthwaite: Kenward-Roger
(full and linear, in SAS PROC MIXED's covariance parameterisation), between-within, residual,
and the empirical (sandwich) covariance.

Kenward & Roger (1997), with :math:`\\Phi = (X'V^{-1}X)^{-1}`, :math:`V_i = \\partial V/\\partial
\\phi_i`, :math:`P_i = -X'V^{-1}V_iV^{-1}X`, :math:`Q_{ij} = X'V^{-1}V_iV^{-1}V_jV^{-1}X`,
:math:`R_{ij} = X'V^{-1}(\\partial^2 V/\\partial\\phi_i\\partial\\phi_j)V^{-1}X` and W the
asymptotic covariance of :math:`\\hat\\phi` (inverse observed REML information, as SAS):

.. math::

    \\Phi_A = \\Phi + 2\\Phi\\Big[\\sum_{ij} W_{ij}(Q_{ij} - P_i\\Phi P_j - \\tfrac14 R_{ij})\\Big]\\Phi

and for one contrast l the denominator df m of their F approximation with q = 1. ``linear``
drops the :math:`R_{ij}` term, as SAS ``DDFM=KR(LINEAR)`` and R mmrm's ``Kenward-Roger-Linear``
do (checked against SAS's KR(LINEAR) output: tests/stats/models/test_mmrm_sas_kr.py). The parameters :math:`\\phi` are
SAS's: covariances for UN, CS and TOEP (linear: R = 0), variances and correlations for CSH,
ARH(1), TOEPH, ANTE(1), variance and correlation for AR(1), variance and range for SP(EXP).
"""

from __future__ import annotations

import weakref

import numpy as np

from analysis.core.errors import ModelError
from analysis.stats.models.mmrm.covariance import (
    HETEROGENEOUS,
    as_covariance,
    group_parameter_count,
)
from analysis.stats.models.mmrm.design import Problem, crossproducts


def _lags(t: int) -> np.ndarray:
    return np.abs(np.subtract.outer(np.arange(t), np.arange(t)))


def _natural_from_sigma(kind: str, s: np.ndarray, t: int, times) -> np.ndarray:
    """SAS's parameters of one covariance matrix (complex-step safe)."""
    if kind == "unstructured":
        return s[np.tril_indices(t)]
    if t == 1:
        return s[0, :1]
    if kind == "compound_symmetry":
        return np.stack([s[0, 1], s[0, 0] - s[0, 1]])
    if kind == "toeplitz":
        return s[0, :]
    d = np.sqrt(np.diag(s))
    if kind in ("ar1", "spatial_exponential"):
        rho = s[0, 1] / s[0, 0]
        if kind == "ar1":
            return np.stack([s[0, 0], rho])
        gap = (times[1] - times[0]) if times is not None else 1.0
        return np.stack([s[0, 0], -gap / np.log(rho)])
    variances = np.diag(s) if kind in HETEROGENEOUS else s[0, :1]
    base = HETEROGENEOUS.get(kind, kind)
    if base in ("compound_symmetry", "ar1"):
        corr = [s[0, 1] / (d[0] * d[1])]
    elif base == "toeplitz":
        corr = [s[0, k] / (d[0] * d[k]) for k in range(1, t)]
    else:  # antedependence
        corr = [s[k, k + 1] / (d[k] * d[k + 1]) for k in range(t - 1)]
    return np.concatenate([variances, np.stack(corr)])


def _natural_sigma(kind: str, phi: np.ndarray, t: int, times) -> np.ndarray:
    """Covariance matrix from SAS's parameters (complex-step safe)."""
    lag = _lags(t)
    if kind == "unstructured":
        low = np.zeros((t, t), dtype=phi.dtype)
        low[np.tril_indices(t)] = phi
        return low + low.T - np.diag(np.diag(low))
    if t == 1:
        return phi[0] * np.ones((1, 1), dtype=phi.dtype)
    if kind == "compound_symmetry":
        return phi[0] * np.ones((t, t)) + phi[1] * np.eye(t)
    if kind == "toeplitz":
        return phi[lag]
    if kind == "ar1":
        return phi[0] * phi[1] ** lag
    if kind == "spatial_exponential":
        position = np.arange(t, dtype=float) if times is None else np.asarray(times, float)
        return phi[0] * np.exp(-np.abs(np.subtract.outer(position, position)) / phi[1])
    het = kind in HETEROGENEOUS
    sd = np.sqrt(phi[:t]) if het else np.sqrt(phi[0]) * np.ones(t)
    rho = phi[t:] if het else phi[1:]
    base = HETEROGENEOUS.get(kind, kind)
    if base == "compound_symmetry":
        corr = np.where(lag == 0, 1.0 + 0 * rho[0], rho[0])
    elif base == "ar1":
        corr = rho[0] ** lag
    elif base == "toeplitz":
        corr = np.concatenate([[1.0 + 0 * rho[0]], rho])[lag]
    else:
        corr = np.array([[np.prod(rho[min(j, k):max(j, k)]) if j != k else 1.0 + 0 * rho[0]
                          for k in range(t)] for j in range(t)])
    return np.outer(sd, sd) * corr


def _natural_pieces(fit, problem: Problem):
    """phi, J (k, G, T, T), H (k, k, G, T, T) and W = cov(phi) at the fit."""
    from analysis.stats.models.mmrm.covariance import group_sigma

    cov = as_covariance(fit.structure)
    t = len(problem.visits)
    per = group_parameter_count(cov.kind, t)
    k_all = fit.theta.size
    g_count = cov.n_groups
    jac_phi_theta = np.zeros((k_all, k_all))
    phis = []
    step = 1e-30
    for g in range(g_count):
        block = slice(g * per, (g + 1) * per)
        theta_g = fit.theta[block]
        phis.append(_natural_from_sigma(cov.kind, group_sigma(cov.kind, theta_g, t, cov.times),
                                        t, cov.times).real)
        for j in range(per):
            shifted = theta_g.astype(complex)
            shifted[j] += 1j * step
            s = group_sigma(cov.kind, shifted, t, cov.times)
            jac_phi_theta[block, g * per + j] = (
                _natural_from_sigma(cov.kind, s, t, cov.times).imag / step)
    phi = np.concatenate(phis)
    w = jac_phi_theta @ fit.theta_cov @ jac_phi_theta.T

    def jac_at(phi_g):
        out = np.zeros((per, t, t))
        for j in range(per):
            shifted = phi_g.astype(complex)
            shifted[j] += 1j * step
            out[j] = _natural_sigma(cov.kind, shifted, t, cov.times).imag / step
        return out

    jac = np.zeros((k_all, g_count, t, t))
    hess = np.zeros((k_all, k_all, g_count, t, t))
    for g in range(g_count):
        block = slice(g * per, (g + 1) * per)
        phi_g = phi[block]
        jac[block, g] = jac_at(phi_g)
        for j in range(per):
            h = 1e-5 * max(abs(phi_g[j]), 1e-3)
            up, down = phi_g.copy(), phi_g.copy()
            up[j] += h
            down[j] -= h
            hess[block, g * per + j, g] = (jac_at(up) - jac_at(down)) / (2 * h)
    return phi, jac, 0.5 * (hess + hess.transpose(1, 0, 2, 3, 4)), w


_KR_PIECES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _kr_pieces(fit, problem: Problem, linear: bool, information: str):
    """(Phi_A, P_i stacked, W) at a fit, computed once per fit and option (every table of a fit
    asks for them)."""
    cached = _KR_PIECES.setdefault(fit, {})
    key = (id(problem), linear, information)
    if key in cached:
        return cached[key]
    _phi, jac, hess, w = _natural_pieces(fit, problem)
    k = jac.shape[0]
    p = len(problem.terms)
    phi_beta = fit.cov_beta
    big_p = np.zeros((k, p, p))
    big_q = np.zeros((k, k, p, p))
    big_r = np.zeros((k, k, p, p))
    trace_vv = np.zeros((k, k))
    for pattern, wi in zip(problem.patterns, fit.ws, strict=True):
        index = np.ix_(pattern.visits, pattern.visits)
        j_sub = np.stack([jac[i, pattern.group][index] for i in range(k)])
        wj = np.einsum("ab,kbc->kac", wi, j_sub)  # W J_i
        wjw = np.einsum("kab,bc->kac", wj, wi)
        big_p -= np.einsum("kab,abpq->kpq", wjw, pattern.xx)
        wjwjw = np.einsum("iab,jbc->ijac", wj, wjw)
        big_q += np.einsum("ijab,abpq->ijpq", wjwjw, pattern.xx)
        trace_vv += pattern.n * np.einsum("iab,jba->ij", wj, wj)
        if not linear:
            h_sub = hess[:, :, pattern.group][:, :, pattern.visits][:, :, :, pattern.visits]
            whw = np.einsum("ab,ijbc,cd->ijad", wi, h_sub, wi)
            big_r += np.einsum("ijab,abpq->ijpq", whw, pattern.xx)
    if information == "expected":
        info = 0.5 * (trace_vv - 2 * np.einsum("pq,ijqp->ij", phi_beta, big_q)
                      + np.einsum("pq,iqr,rs,jsp->ij", phi_beta, big_p, phi_beta, big_p))
        w = np.linalg.inv(info)
    pp = np.einsum("ipq,qr,jrs->ijps", big_p, phi_beta, big_p)
    u = np.einsum("ij,ijpq->pq", w, big_q - pp - 0.25 * big_r)
    phi_a = phi_beta + 2.0 * phi_beta @ u @ phi_beta
    phi_a = 0.5 * (phi_a + phi_a.T)
    cached[key] = (phi_a, big_p, w)
    return cached[key]


def kenward_roger(fit, problem: Problem, rows: np.ndarray, *, linear: bool = False,
                  information: str = "observed"):
    """(adjusted covariance Phi_A, df m per row of ``rows``) of Kenward & Roger (1997).

    ``information="expected"`` takes W from the expected REML information (pbkrtest's choice)
    instead of the observed one (SAS's)."""
    phi_a, big_p, w = _kr_pieces(fit, problem, linear, information)
    phi_beta = fit.cov_beta
    rows = np.atleast_2d(rows)
    v0 = np.einsum("mp,pq,mq->m", rows, phi_beta, rows)
    left = rows @ phi_beta
    a = np.einsum("mp,ipq,mq->mi", left, big_p, left) / v0[:, None]
    a1 = np.einsum("mi,ij,mj->m", a, w, a)
    a2 = a1  # q = 1: tr(Theta Phi P_i Phi Theta Phi P_j Phi) = a_i a_j
    b = (a1 + 6 * a2) / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        g = np.where(a2 > 0, (2 * a1 - 5 * a2) / (3 * a2), 0.0)
        denominator = 3 + 2 * (1 - g)
        c1, c2, c3 = g / denominator, (1 - g) / denominator, (3 - g) / denominator
        e_star = 1.0 / (1.0 - a2)
        v_star = 2.0 * (1 + c1 * b) / ((1 - c2 * b) ** 2 * (1 - c3 * b))
        rho = v_star / (2.0 * e_star**2)
        dfs = np.where(rho > 1, 4.0 + 3.0 / (rho - 1.0), np.inf)
    return phi_a, dfs


def empirical_vcov(fit, problem: Problem) -> np.ndarray:
    """Sandwich covariance A^{-1} (sum_i X_i'V_i^{-1} r_i r_i' V_i^{-1} X_i) A^{-1} (no small-
    sample correction: SAS ``EMPIRICAL``, R mmrm ``vcov = "Empirical"``)."""
    from scipy import linalg

    if problem.x is None:
        raise ModelError("the empirical (sandwich) covariance needs each participant's rows (their "
                         "residuals); a fit from missingness-pattern statistics has none: use the "
                         "model-based covariance, or fit on the participant-level data.")
    sigmas = fit.sigmas if fit.sigmas is not None else fit.sigma[None]
    residual = problem.y - problem.x @ fit.beta
    codes = problem.subject_codes
    starts = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]])
    ends = np.r_[starts[1:], codes.size]
    visit_of_row = problem.visit_codes
    group_of_subject = (problem.group_codes if problem.group_codes is not None
                        else np.zeros(problem.n_participants, dtype=int))
    meat = np.zeros((len(problem.terms),) * 2)
    for s, e in zip(starts, ends, strict=True):
        v = visit_of_row[s:e]
        block = sigmas[group_of_subject[codes[s]]][np.ix_(v, v)]
        score = problem.x[s:e].T @ linalg.solve(block, residual[s:e], assume_a="pos")
        meat += np.outer(score, score)
    return fit.cov_beta @ meat @ fit.cov_beta


def between_within_df(problem: Problem, between: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """SAS ``DDFM=BETWITHIN``: between-participant df S - rank(X_between), within df
    N - S - (rank(X) - rank(X_between)); a combination gets the smallest df of the columns it
    uses."""
    s = problem.n_participants
    if not between.any():
        rank_b = 0
    elif problem.x is not None:
        rank_b = np.linalg.matrix_rank(problem.x[:, between])
    else:  # rank of X_b from X_b'X_b: eigenvalues are squared singular values, rounded at eps * max
        gram = crossproducts(problem.patterns)[0][np.ix_(between, between)]
        eigen = np.linalg.eigvalsh(gram)
        rank_b = int(np.sum(eigen > 1e-10 * max(float(eigen.max()), 1e-300)))
    df_between = s - rank_b
    df_within = problem.n_obs - s - (len(problem.terms) - rank_b)
    column_df = np.where(between, df_between, df_within).astype(float)
    return np.array([column_df[np.abs(row) > 1e-12].min() if np.any(np.abs(row) > 1e-12)
                     else np.nan for row in np.atleast_2d(rows)])
