"""MMRM covariance structures: names and labels, the map from the unconstrained parameters
theta to the T x T covariance matrix Sigma, its complex-step Jacobian d Sigma / d theta, the
parameter count and the starting values (formulas in the :mod:`analysis.stats.models.mmrm`
docstring).
"""

from __future__ import annotations

from typing import Literal

import numpy as np

Structure = Literal["unstructured", "compound_symmetry", "ar1", "toeplitz"]
STRUCTURES: tuple[str, ...] = ("unstructured", "compound_symmetry", "ar1", "toeplitz")
_STRUCTURE_LABEL = {
    "unstructured": "unstructured",
    "compound_symmetry": "compound symmetry",
    "ar1": "AR(1)",
    "toeplitz": "Toeplitz",
    "random_intercept": "random intercept",
}


# --------------------------------------------------------------------------------------------
# Covariance structures: theta (unconstrained) -> Sigma (T x T); written with operations that
# accept complex input so that d Sigma / d theta comes from the complex step.
# --------------------------------------------------------------------------------------------


def _n_params(structure: str, n_visits: int) -> int:
    if structure == "unstructured":
        return n_visits * (n_visits + 1) // 2
    if structure == "random_intercept":
        return 2
    if n_visits == 1:
        return 1
    return {"compound_symmetry": 2, "ar1": 2, "toeplitz": n_visits}[structure]


def _sigma(structure: str, theta: np.ndarray, n_visits: int) -> np.ndarray:
    """Covariance matrix for parameters ``theta`` (works for complex ``theta``)."""
    t = n_visits
    if structure == "unstructured":
        chol = np.zeros((t, t), dtype=theta.dtype)
        rows, cols = np.tril_indices(t)
        chol[rows, cols] = theta
        diag = np.arange(t)
        chol[diag, diag] = np.exp(theta[_diag_positions(t)])
        return chol @ chol.T
    if structure == "random_intercept":  # exp(theta0) I + exp(theta1) J
        return np.exp(theta[0]) * np.eye(t) + np.exp(theta[1]) * np.ones((t, t))
    variance = np.exp(theta[0])
    if t == 1:
        return variance * np.ones((1, 1), dtype=theta.dtype)
    lag = np.abs(np.subtract.outer(np.arange(t), np.arange(t)))
    if structure == "compound_symmetry":
        low = -1.0 / (t - 1)
        rho = low + (1.0 - low) / (1.0 + np.exp(-theta[1]))
        corr = np.where(lag == 0, 1.0 + 0 * rho, rho)
    elif structure == "ar1":
        rho = np.tanh(theta[1])
        corr = rho ** lag
    else:  # toeplitz: Durbin-Levinson from partial autocorrelations tanh(theta[1:])
        pacf = np.tanh(theta[1:])
        acf = [1.0 + 0 * pacf[0]]
        coef: list = []
        for k in range(1, t):
            phi = pacf[k - 1]
            explained = sum(coef[j] * acf[k - 1 - j] for j in range(k - 1))
            unexplained = 1.0 - sum(coef[j] * acf[j + 1] for j in range(k - 1))
            acf.append(explained + phi * unexplained)
            coef = [coef[j] - phi * coef[k - 2 - j] for j in range(k - 1)] + [phi]
        corr = np.stack(acf)[lag]
    return variance * corr


def _diag_positions(t: int) -> np.ndarray:
    """Positions of the diagonal of L within the row-major lower-triangle vector."""
    rows, cols = np.tril_indices(t)
    return np.flatnonzero(rows == cols)


def _sigma_jacobian(structure: str, theta: np.ndarray, n_visits: int) -> np.ndarray:
    """d Sigma / d theta_k, shape (k, T, T), by complex-step differentiation (step 1e-30)."""
    step = 1e-30
    out = np.empty((theta.size, n_visits, n_visits))
    for k in range(theta.size):
        shifted = theta.astype(complex)
        shifted[k] += 1j * step
        out[k] = _sigma(structure, shifted, n_visits).imag / step
    return out


def _start_theta(structure: str, sigma0: np.ndarray) -> np.ndarray:
    """Starting parameters from a positive-definite moment estimate ``sigma0``."""
    t = sigma0.shape[0]
    if structure == "unstructured":
        chol = np.linalg.cholesky(sigma0)
        theta = chol[np.tril_indices(t)].copy()
        theta[_diag_positions(t)] = np.log(np.diag(chol))
        return theta
    variance = float(np.mean(np.diag(sigma0)))
    if structure == "random_intercept":
        off = float(np.mean(sigma0[np.triu_indices(t, 1)])) if t > 1 else 0.0
        between = min(max(off, 0.05 * variance), 0.95 * variance)
        return np.array([np.log(variance - between), np.log(between)])
    if t == 1:
        return np.array([np.log(variance)])
    sd = np.sqrt(np.diag(sigma0))
    corr = sigma0 / np.outer(sd, sd)
    lag1 = float(np.clip(np.mean(np.diag(corr, 1)), -0.5, 0.9))
    if structure == "compound_symmetry":
        low = -1.0 / (t - 1)
        rho = float(np.clip(np.mean(corr[np.triu_indices(t, 1)]), low + 0.05, 0.9))
        share = (rho - low) / (1.0 - low)
        return np.array([np.log(variance), np.log(share / (1.0 - share))])
    if structure == "ar1":
        return np.array([np.log(variance), np.arctanh(lag1)])
    return np.concatenate([[np.log(variance), np.arctanh(lag1)], np.zeros(t - 2)])
