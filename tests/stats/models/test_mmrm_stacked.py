"""The stacked REML/ML objective of the MMRM (analysis/stats/models/mmrm/stacked.py) and the
fitted optimum, against a likelihood written out here participant by participant (dense
covariance blocks, no missingness patterns, no padding) and its finite-difference gradient; and
the tidy layout of the contrasts built column-wise against :func:`analysis.core.tidy.tidy_frame`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis.core.tidy import tidy_frame
from analysis.stats.models.mmrm import fit_mmrm
from analysis.stats.models.mmrm.formula import _build_formula_problem
from analysis.stats.models.mmrm.reml import _fit_structure
from analysis.stats.models.mmrm.stacked import evaluate

T = 3


@pytest.fixture(scope="module")
def long() -> pd.DataFrame:
    rng = np.random.default_rng(11)
    n = 60
    arm = np.where(np.arange(n) < n // 2, "control", "treatment")
    baseline = rng.normal(10, 2, n)
    y = (0.5 * baseline[:, None] + np.array([0.0, 1.0, 1.5])
         + (arm == "treatment")[:, None] * np.array([0.5, 1.0, 2.0])
         + rng.multivariate_normal(np.zeros(T), [[4, 2, 1.5], [2, 5, 3], [1.5, 3, 6]], n))
    y[rng.random(n) < 0.2, 2] = np.nan
    y[rng.random(n) < 0.1, 1:] = np.nan
    y[rng.random(n) < 0.05, 0] = np.nan  # a few miss the first visit only
    return pd.DataFrame({
        "id": np.repeat([f"S{i:02d}" for i in range(n)], T), "arm": np.repeat(arm, T),
        "baseline": np.repeat(baseline, T), "visit": np.tile(["v1", "v2", "v3"], n),
        "value": y.ravel(),
    })


def _unstructured(theta):
    low = np.zeros((T, T))
    low[np.tril_indices(T)] = theta
    low[np.diag_indices(T)] = np.exp(np.diag(low))
    return low @ low.T


def _ar1(theta):
    lag = np.abs(np.subtract.outer(np.arange(T), np.arange(T)))
    return np.exp(theta[0]) * np.tanh(theta[1]) ** lag


def _dense_m2ll(theta, sigma_of, problem, reml, groups=1):
    """-2 l at theta, beta at its GLS value, one participant at a time."""
    per = theta.size // groups
    sigmas = [sigma_of(theta[g * per:(g + 1) * per]) for g in range(groups)]
    codes, x, y = problem.subject_codes, problem.x, problem.y
    group_of = problem.group_codes if problem.group_codes is not None else np.zeros(codes.max() + 1, int)
    p = x.shape[1]
    a, c, logdet, blocks = np.zeros((p, p)), np.zeros(p), 0.0, []
    for i in range(codes.max() + 1):
        rows = np.flatnonzero(codes == i)
        visits = problem.visit_codes[rows]
        block = sigmas[group_of[i]][np.ix_(visits, visits)]
        inverse = np.linalg.inv(block)
        blocks.append((rows, inverse))
        logdet += np.linalg.slogdet(block)[1]
        a += x[rows].T @ inverse @ x[rows]
        c += x[rows].T @ inverse @ y[rows]
    beta = np.linalg.solve(a, c)
    r = y - x @ beta
    quad = sum(r[rows] @ inverse @ r[rows] for rows, inverse in blocks)
    if reml:
        return (len(y) - p) * np.log(2 * np.pi) + logdet + np.linalg.slogdet(a)[1] + quad
    return len(y) * np.log(2 * np.pi) + logdet + quad


def _fd_gradient(f, theta, h=1e-5):
    return np.array([(f(theta + h * e) - f(theta - h * e)) / (2 * h) for e in np.eye(theta.size)])


CASES = [
    ("value ~ baseline + arm * visit + us(visit | id)", _unstructured, 1, True),
    ("value ~ baseline + arm * visit + us(visit | id)", _unstructured, 1, False),
    ("value ~ arm * (baseline + visit) + us(visit | arm / id)", _unstructured, 2, True),
    ("value ~ baseline + arm * visit + ar1(visit | id)", _ar1, 1, True),
]


@pytest.mark.parametrize(("formula", "sigma_of", "groups", "reml"), CASES)
def test_stacked_objective_and_gradient_equal_the_dense_likelihood(long, formula, sigma_of,
                                                                   groups, reml):
    fp = _build_formula_problem(formula, long, reml=reml, visit_order=None, reference=None)
    rng = np.random.default_rng(5)
    k = {_unstructured: 6, _ar1: 2}[sigma_of] * groups
    thetas = rng.normal(0.0, 0.3, (3, k)) + (np.tile([1.0, 0.3, 0.7, 0.2, 0.1, 0.8], groups)
                                             if sigma_of is _unstructured else [1.5, 0.4])
    m2ll, gradient = evaluate(thetas, fp.covariance, fp.problem)
    for j, theta in enumerate(thetas):
        dense = lambda th: _dense_m2ll(th, sigma_of, fp.problem, reml, groups)  # noqa: E731
        assert m2ll[j] == pytest.approx(dense(theta), rel=1e-12)
        assert np.allclose(gradient[j], _fd_gradient(dense, theta), rtol=1e-6, atol=1e-6)


def test_a_covariance_that_is_not_positive_definite_gives_an_infinite_objective(long):
    fp = _build_formula_problem("value ~ baseline + arm * visit + us(visit | id)", long,
                                reml=True, visit_order=None, reference=None)
    good = np.array([1.0, 0.3, 0.7, 0.2, 0.1, 0.8])
    bad = good.copy()
    bad[0] = 800.0  # exp overflows
    m2ll, gradient = evaluate(np.stack([bad, good]), fp.covariance, fp.problem)
    assert m2ll[0] == np.inf and not gradient[0].any()
    assert m2ll[1] == pytest.approx(_dense_m2ll(good, _unstructured, fp.problem, True), rel=1e-12)


@pytest.mark.parametrize("reml", [True, False])
def test_fit_is_the_maximum_of_the_dense_likelihood(long, reml):
    fp = _build_formula_problem("value ~ baseline + arm * visit + us(visit | id)", long,
                                reml=reml, visit_order=None, reference=None)
    fit = _fit_structure(fp.covariance, fp.problem, 200)
    dense = lambda th: _dense_m2ll(th, _unstructured, fp.problem, reml)  # noqa: E731
    # the gradient vanishes to finite-difference accuracy, and no nearby point is higher
    assert np.max(np.abs(_fd_gradient(dense, fit.theta))) < 1e-5
    assert fit.m2ll == pytest.approx(dense(fit.theta), rel=1e-12)
    rng = np.random.default_rng(1)
    for direction in rng.normal(size=(10, fit.theta.size)):
        assert dense(fit.theta + 1e-3 * direction) > fit.m2ll


def test_contrasts_have_the_tidy_layout(long):
    for options in ({}, {"covariance": "ar1", "df": "kenward-roger"}):
        fit = fit_mmrm(long, subject="id", visit_order=["v1", "v2", "v3"], **options)
        pd.testing.assert_frame_equal(tidy_frame(fit.contrasts), fit.contrasts, check_exact=True)
