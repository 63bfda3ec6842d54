"""The REML (or ML) objective -2 l(theta) and its analytic gradient for a stack of parameter
vectors at once, on the missingness patterns padded to T x T and stacked into NumPy arrays.

Why: the Newton optimiser and the observed information (central differences of the gradient,
2k points) evaluate the objective at many nearby parameter vectors; one set of batched LAPACK
and matrix-product calls for all of them costs about what one evaluation pattern by pattern
costs.

Padding: the block of pattern g (visits S_g) is embedded as
:math:`B_g = \\Sigma \\circ M_g + (I - \\operatorname{diag} m_g)`, :math:`M_g = m_g m_g'`,
:math:`m_g` the 0/1 indicator of S_g. :math:`B_g` is :math:`\\Sigma_{S_g S_g}` plus an identity on
the unobserved visits, so :math:`\\log|B_g| = \\log|\\Sigma_{S_g S_g}|` and
:math:`B_g^{-1} \\circ M_g` is :math:`\\Sigma_{S_g S_g}^{-1}` scattered into T x T (zeros
elsewhere). With the per-pattern sufficient statistics padded the same way and flattened to
``(G T T, p p)``, ``(G T T, p)`` and ``(G T T,)``, every sum over patterns is one matrix product:
:math:`A = \\sum_g \\sum_{ab} W_{g,ab} XX_{g,ab}` is ``W.reshape(m, -1) @ XX``. The formulas are
those of the :mod:`analysis.stats.models.mmrm` docstring.

For the unstructured covariance, :math:`\\Sigma = LL'`, the chain rule is done in closed form:
:math:`\\partial F/\\partial L = (D + D')L` with :math:`D = \\partial F/\\partial \\Sigma`, times
:math:`L_{rr}` for the log-diagonal entries; other structures use the complex-step Jacobian of
:mod:`~analysis.stats.models.mmrm.covariance`.

Examples
--------
>>> import numpy as np, pandas as pd
>>> from analysis.stats.models.mmrm.design import build_problem
>>> from analysis.stats.models.mmrm.reml import reml_objective
>>> rng = np.random.default_rng(0)
>>> long = pd.DataFrame({"participant_id": np.repeat(np.arange(30), 2).astype(str),
...     "arm": np.repeat(np.where(np.arange(30) < 15, "control", "treatment"), 2),
...     "visit": np.tile(["a", "b"], 30), "baseline": np.repeat(rng.normal(size=30), 2),
...     "value": rng.normal(size=60)})
>>> problem = build_problem(long, response="value", subject="participant_id", arm="arm",
...     visit="visit", baseline="baseline", covariates=(), visit_order=None,
...     treatment="treatment", control="control", baseline_by_visit=False)
>>> thetas = np.array([[0.0, 0.1, 0.0], [0.1, 0.0, -0.1]])
>>> m2ll, gradient = evaluate(thetas, "unstructured", problem)
>>> bool(np.allclose(m2ll[1], reml_objective(thetas[1], "unstructured", problem)[0], rtol=1e-12))
True
"""

from __future__ import annotations

import dataclasses
import weakref

import numpy as np

from analysis.stats.models.mmrm.covariance import (
    as_covariance,
    covariance_matrices,
    diagonal_positions,
    lower_triangle,
    sigma_jacobian,
)

_LOG_2PI = float(np.log(2.0 * np.pi))


@dataclasses.dataclass(frozen=True, eq=False)
class PaddedPatterns:
    """The missingness patterns of a problem padded to T x T and stacked (G patterns)."""

    n: np.ndarray  # (G,) participants per pattern
    mask: np.ndarray  # (G, T, T): 1 where both visits are observed in the pattern
    fill: np.ndarray  # (G, T, T): identity on the visits the pattern misses
    group: np.ndarray  # (G,) covariance group of the pattern
    onehot: np.ndarray  # (G, n_groups): pattern -> covariance group
    xx: np.ndarray  # (G T T, p p)
    xy: np.ndarray  # (G T T, p)
    yy: np.ndarray  # (G, T, T)
    n_obs: int
    n_terms: int
    reml: bool


_PADDED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def padded_patterns(problem) -> PaddedPatterns:
    """The padded, stacked patterns of ``problem`` (computed once per problem)."""
    found = _PADDED.get(problem)
    if found is not None:
        return found
    t = len(problem.visits)
    p = len(problem.terms)
    patterns = problem.patterns
    g_count = len(patterns)
    n_groups = max(int(max(pattern.group for pattern in patterns)) + 1, 1)
    present = np.zeros((g_count, t))
    xx = np.zeros((g_count, t, t, p, p))
    xy = np.zeros((g_count, t, t, p))
    yy = np.zeros((g_count, t, t))
    for g, pattern in enumerate(patterns):
        present[g, pattern.visits] = 1.0
        index = np.ix_(pattern.visits, pattern.visits)
        xx[g][index] = pattern.xx
        xy[g][index] = pattern.xy
        yy[g][index] = pattern.yy
    group = np.array([pattern.group for pattern in patterns], dtype=int)
    out = PaddedPatterns(
        n=np.array([pattern.n for pattern in patterns], dtype=float),
        mask=present[:, :, None] * present[:, None, :],
        fill=np.eye(t)[None] * (1.0 - present)[:, None, :],
        group=group, onehot=np.eye(n_groups)[group],
        xx=xx.reshape(g_count * t * t, p * p), xy=xy.reshape(g_count * t * t, p), yy=yy,
        n_obs=int(problem.n_obs), n_terms=p, reml=bool(getattr(problem, "reml", True)),
    )
    _PADDED[problem] = out
    return out


def _unstructured_factors(thetas: np.ndarray, n_groups: int, t: int) -> np.ndarray:
    """L per parameter vector and group, shape (m, n_groups, T, T), as covariance.py builds it."""
    m = thetas.shape[0]
    rows, cols = lower_triangle(t)
    diag = diagonal_positions(t)
    per = thetas.reshape(m, n_groups, -1)
    chol = np.zeros((m, n_groups, t, t))
    chol[:, :, rows, cols] = per
    chol[:, :, np.arange(t), np.arange(t)] = np.exp(per[:, :, diag])
    return chol


def evaluate(thetas: np.ndarray, structure, problem, *, gradient: bool = True):
    """-2 l(theta) (REML, or ML when ``problem.reml`` is False) and its gradient for each row of
    ``thetas`` (shape (m, k)): arrays of shape (m,) and (m, k). A parameter vector whose
    covariance (or X'V^-1X) is not positive definite or not finite gets ``inf`` and a zero
    gradient, as the optimisers expect."""
    thetas = np.atleast_2d(np.asarray(thetas, dtype=float))
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        try:
            return _evaluate(thetas, structure, problem, gradient)
        except np.linalg.LinAlgError:
            if thetas.shape[0] == 1:
                return np.array([np.inf]), np.zeros_like(thetas)
    # one failing parameter vector fails the batched factorisation: evaluate one by one
    parts = [evaluate(theta[None], structure, problem, gradient=gradient) for theta in thetas]
    return (np.concatenate([f for f, _ in parts]),
            np.concatenate([g for _, g in parts]) if gradient else None)


def _evaluate(thetas: np.ndarray, structure, problem, want_gradient: bool):
    pad = padded_patterns(problem)
    cov = as_covariance(structure)
    t = len(problem.visits)
    m, k = thetas.shape
    p = pad.n_terms
    unstructured = cov.kind == "unstructured"
    if unstructured:
        chol = _unstructured_factors(thetas, cov.n_groups, t)
        sigma = chol @ chol.swapaxes(-1, -2)
    else:
        sigma = np.stack([covariance_matrices(structure, theta, t) for theta in thetas])
    blocks = sigma[:, pad.group] * pad.mask + pad.fill  # (m, G, T, T)
    if not np.isfinite(blocks).all():
        raise np.linalg.LinAlgError
    factor = np.linalg.cholesky(blocks)
    logdet = 2.0 * np.log(np.diagonal(factor, axis1=-2, axis2=-1)).sum(axis=-1)  # (m, G)
    w = np.linalg.inv(blocks) * pad.mask
    w = 0.5 * (w + w.swapaxes(-1, -2))
    flat = w.reshape(m, -1)
    a = (flat @ pad.xx).reshape(m, p, p)
    c = flat @ pad.xy
    yvy = np.einsum("mgab,gab->m", w, pad.yy)
    if not np.isfinite(a).all():
        raise np.linalg.LinAlgError
    a_factor = np.linalg.cholesky(a)
    a_inv = np.linalg.inv(a)
    a_inv = 0.5 * (a_inv + a_inv.swapaxes(-1, -2))
    beta = np.einsum("mpq,mq->mp", a_inv, c)
    m2ll = logdet @ pad.n + yvy - np.einsum("mp,mp->m", c, beta)
    if pad.reml:
        logdet_a = 2.0 * np.log(np.diagonal(a_factor, axis1=-2, axis2=-1)).sum(axis=-1)
        m2ll = m2ll + (pad.n_obs - p) * _LOG_2PI + logdet_a
    else:
        m2ll = m2ll + pad.n_obs * _LOG_2PI
    if not want_gradient:
        return np.where(np.isfinite(m2ll), m2ll, np.inf), None
    # Q + R per pattern (see the package docstring), from one product with the flattened XX:
    # R[a,b] = yy - sum_i (X_ia beta) y_ib - sum_i y_ia (X_ib beta) + beta' XX[a,b] beta, and
    # xy[a,b,:] = sum_i X_ia' y_ib, so (xy @ beta)[a,b] = sum_i (X_ia beta) y_ib.
    weights = beta[:, :, None] * beta[:, None, :]
    if pad.reml:
        weights = weights + a_inv
    g_count = pad.n.size
    xb = (beta @ pad.xy.T).reshape(m, g_count, t, t)
    qr = (weights.reshape(m, p * p) @ pad.xx.T).reshape(m, g_count, t, t)
    qr = qr - xb - xb.swapaxes(-1, -2) + pad.yy
    d_blocks = pad.n[:, None, None] * w - w @ qr @ w
    onehot = (pad.onehot if pad.onehot.shape[1] == cov.n_groups
              else np.eye(cov.n_groups)[pad.group])  # a group without participants
    d_sigma = np.einsum("mgab,gc->mcab", d_blocks, onehot)  # (m, n_groups, T, T)
    if unstructured:
        d_chol = (d_sigma + d_sigma.swapaxes(-1, -2)) @ chol
        rows, cols = lower_triangle(t)
        grad = d_chol[:, :, rows, cols]  # (m, n_groups, T(T+1)/2)
        diag = diagonal_positions(t)
        grad[:, :, diag] *= chol[:, :, np.arange(t), np.arange(t)]
        grad = grad.reshape(m, k)
    else:
        jacobian = np.stack([sigma_jacobian(structure, theta, t) for theta in thetas])
        grad = np.einsum("mkgab,mgab->mk", jacobian, d_sigma)
    bad = ~(np.isfinite(m2ll) & np.isfinite(grad).all(axis=1))
    m2ll = np.where(bad, np.inf, m2ll)
    grad[bad] = 0.0
    return m2ll, grad
