"""Ante-dependence covariances of the MMRM (``ad``, ``adh`` = SAS ANTE(1)) against independent
computations written here; nlme has no such structure, so there is no R reference.

* ``adh`` by ML with complete data and a mean model with its own coefficients at every visit: the
  likelihood factorises into the regressions of visit 1 on X and of visit t on [X, y_{t-1}]
  (first-order ante-dependence is a Markov chain), each maximised by least squares with variance
  RSS / n. The covariance, visit means and -2 log-likelihood are rebuilt from those regressions.
* ``ad`` by ML and REML with missing visits: brute-force maximisation (scipy.optimize) of a
  multivariate normal likelihood written out per participant.

Data: ``HSAUR3::BtheB`` (tests/reference/btheb_wide.csv), Beck Depression Inventory at 2, 3, 5
and 8 months.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import optimize

from analysis.stats.models.mmrm import fit_mmrm
from tests.conftest import REFERENCE

MONTHS = ["2", "3", "5", "8"]


def rel(actual, expected):
    actual, expected = np.asarray(actual, float), np.asarray(expected, float)
    return float(np.max(np.abs(actual - expected) / np.abs(expected)))


@pytest.fixture(scope="module")
def wide() -> pd.DataFrame:
    frame = pd.read_csv(REFERENCE / "btheb_wide.csv")
    return frame.rename(columns={"bdi.pre": "bdi_pre", **{f"bdi.{m}m": f"m{m}" for m in MONTHS}})


def to_long(wide: pd.DataFrame) -> pd.DataFrame:
    long = wide.melt(id_vars=["id", "treatment", "bdi_pre"], value_vars=[f"m{m}" for m in MONTHS],
                     var_name="month", value_name="bdi")
    long["month"] = pd.Categorical(long["month"].str[1:], categories=MONTHS)
    return long.dropna(subset=["bdi"]).sort_values(["id", "month"]).reset_index(drop=True)


def test_adh_ml_equals_the_conditional_regressions(wide):
    complete = wide.dropna(subset=[f"m{m}" for m in MONTHS]).reset_index(drop=True)
    n = len(complete)
    x = np.column_stack([np.ones(n), (complete["treatment"] == "BtheB").to_numpy(float),
                         complete["bdi_pre"].to_numpy(float)])
    y = complete[[f"m{m}" for m in MONTHS]].to_numpy(float)
    t = y.shape[1]
    # visit 1: y1 ~ X; visit t: y_t ~ [X, y_{t-1}] -> y_t = X c_t + phi_t y_{t-1} + e_t
    coef = np.linalg.lstsq(x, y[:, 0], rcond=None)[0]
    d = [np.sum((y[:, 0] - x @ coef) ** 2) / n]
    means = [coef]  # E(y_t | X) = X b_t, b_t = c_t + phi_t b_{t-1}
    phi = [0.0]
    for k in range(1, t):
        design = np.column_stack([x, y[:, k - 1]])
        coef = np.linalg.lstsq(design, y[:, k], rcond=None)[0]
        d.append(np.sum((y[:, k] - design @ coef) ** 2) / n)
        phi.append(coef[-1])
        means.append(coef[:-1] + coef[-1] * means[-1])
    sigma = np.zeros((t, t))
    sigma[0, 0] = d[0]
    for k in range(1, t):
        sigma[k, :k] = phi[k] * sigma[k - 1, :k]
        sigma[:k, k] = sigma[k, :k]
        sigma[k, k] = phi[k] ** 2 * sigma[k - 1, k - 1] + d[k]
    m2ll = n * sum(np.log(2 * np.pi) + np.log(dk) + 1.0 for dk in d)

    fit = fit_mmrm("bdi ~ month * (treatment + bdi_pre) + adh(month | id)", to_long(complete),
                   ml=True, emmeans="treatment | month", reference="TAU")
    assert fit.n_participants == n and fit.n_obs == n * t
    assert rel(fit.m2ll, m2ll) < 1e-6
    assert rel(fit.covariance.to_numpy(), sigma) < 1e-6
    lsmeans = fit.rows("lsmean")
    mean_pre = complete["bdi_pre"].mean()
    expected = [means[MONTHS.index(month)] @ [1.0, float(arm == "BtheB"), mean_pre]
                for arm, month in zip(lsmeans["term"], lsmeans["visit"], strict=True)]
    assert sorted(set(lsmeans["term"])) == ["BtheB", "TAU"] and len(lsmeans) == 2 * t
    assert rel(lsmeans["estimate"], expected) < 1e-6


def _ad_sigma(par: np.ndarray, t: int) -> np.ndarray:
    """sigma^2 * prod_{l=j}^{k-1} rho_l with rho_l = tanh(par[1 + l])."""
    rho = np.tanh(par[1:])
    corr = np.eye(t)
    for j in range(t):
        for k in range(j + 1, t):
            corr[j, k] = corr[k, j] = np.prod(rho[j:k])
    return np.exp(par[0]) * corr


def _dense_m2ll(par, people, t, reml):
    """-2 log-likelihood with beta at its GLS value, participant by participant (dense)."""
    sigma = _ad_sigma(par, t)
    p = people[0][1].shape[1]
    a = np.zeros((p, p))
    c = np.zeros(p)
    inverses, logdet = [], 0.0
    for visits, x, y in people:
        block = sigma[np.ix_(visits, visits)]
        inverse = np.linalg.inv(block)
        inverses.append(inverse)
        logdet += np.linalg.slogdet(block)[1]
        a += x.T @ inverse @ x
        c += x.T @ inverse @ y
    beta = np.linalg.solve(a, c)
    quad = sum(float((y - x @ beta) @ inverse @ (y - x @ beta))
               for (_, x, y), inverse in zip(people, inverses, strict=True))
    n_obs = sum(len(y) for _, _, y in people)
    if reml:
        return (n_obs - p) * np.log(2 * np.pi) + logdet + np.linalg.slogdet(a)[1] + quad, beta
    return n_obs * np.log(2 * np.pi) + logdet + quad, beta


@pytest.mark.parametrize("ml", [True, False])
def test_ad_matches_brute_force_likelihood_maximisation(wide, ml):
    long = to_long(wide)
    t = len(MONTHS)
    # bdi ~ bdi_pre + treatment * month, built by hand: intercept, bdi_pre, BtheB, month 3/5/8,
    # BtheB x month 3/5/8
    treated = (long["treatment"] == "BtheB").to_numpy(float)
    month = long["month"].cat.codes.to_numpy()
    dummies = np.column_stack([(month == k).astype(float) for k in range(1, t)])
    x_all = np.column_stack([np.ones(len(long)), long["bdi_pre"].to_numpy(float), treated,
                             dummies, treated[:, None] * dummies])
    people = [(month[rows], x_all[rows], long["bdi"].to_numpy(float)[rows])
              for rows in long.groupby("id", sort=True).indices.values()]
    assert any(len(v) < t for v, _, _ in people)  # missing visits
    start = np.array([np.log(np.var(long["bdi"])), 0.5, 0.5, 0.5])
    # from a naive start (not trialkit's), numerical gradients; gtol far below the tolerances
    result = optimize.minimize(lambda par: _dense_m2ll(par, people, t, not ml)[0], start,
                               method="BFGS", options={"gtol": 1e-9, "maxiter": 2000})
    m2ll, beta = _dense_m2ll(result.x, people, t, not ml)

    fit = fit_mmrm("bdi ~ bdi_pre + treatment * month + ad(month | id)", long, ml=ml,
                   reference="TAU")
    assert fit.n_obs == len(long)
    assert rel(fit.m2ll, m2ll) < 1e-5
    assert fit.m2ll <= m2ll + 1e-6  # trialkit's maximum is at least as high as the brute force's
    assert rel(fit.covariance.to_numpy(), _ad_sigma(result.x, t)) < 1e-5
    assert rel(fit.estimates, beta) < 1e-5
