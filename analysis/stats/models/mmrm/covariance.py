"""MMRM covariance structures: names and labels, the map from the unconstrained parameters
theta to the T x T covariance matrix Sigma (one per group for grouped structures), its
complex-step Jacobian d Sigma / d theta, the parameter count and the starting values (formulas in
the :mod:`analysis.stats.models.mmrm` docstring).

A structure is named by a string (``"unstructured"``, R mmrm's ``"us"``, SAS's ``"UN"``, ...) or
given as a :class:`Covariance` (a structure per group of participants, or spatial times).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Literal

import numpy as np

Structure = Literal[
    "unstructured", "compound_symmetry", "ar1", "toeplitz", "cs_heterogeneous",
    "ar1_heterogeneous", "toeplitz_heterogeneous", "antedependence",
    "antedependence_heterogeneous", "spatial_exponential",
]
STRUCTURES: tuple[str, ...] = (
    "unstructured", "compound_symmetry", "ar1", "toeplitz", "cs_heterogeneous",
    "ar1_heterogeneous", "toeplitz_heterogeneous", "antedependence",
    "antedependence_heterogeneous", "spatial_exponential",
)
# R mmrm's names and SAS PROC MIXED's TYPE= names of the same structures
ALIASES: dict[str, str] = {
    "us": "unstructured", "cs": "compound_symmetry", "ar1": "ar1", "toep": "toeplitz",
    "csh": "cs_heterogeneous", "ar1h": "ar1_heterogeneous", "toeph": "toeplitz_heterogeneous",
    "ad": "antedependence", "adh": "antedependence_heterogeneous",
    "sp_exp": "spatial_exponential",
    "un": "unstructured", "arh(1)": "ar1_heterogeneous", "ar(1)": "ar1",
    "ante(1)": "antedependence_heterogeneous", "sp(exp)": "spatial_exponential",
}
STRUCTURE_LABEL = {
    "unstructured": "unstructured",
    "compound_symmetry": "compound symmetry",
    "ar1": "AR(1)",
    "toeplitz": "Toeplitz",
    "cs_heterogeneous": "heterogeneous compound symmetry",
    "ar1_heterogeneous": "heterogeneous AR(1)",
    "toeplitz_heterogeneous": "heterogeneous Toeplitz",
    "antedependence": "antedependence",
    "antedependence_heterogeneous": "heterogeneous antedependence (ANTE(1))",
    "spatial_exponential": "spatial exponential",
    "random_intercept": "random intercept",
}
HETEROGENEOUS = {"cs_heterogeneous": "compound_symmetry", "ar1_heterogeneous": "ar1",
                  "toeplitz_heterogeneous": "toeplitz",
                  "antedependence_heterogeneous": "antedependence"}


def structure_name(name: str) -> str:
    """The canonical name of a structure given by its trialkit, R mmrm or SAS name."""
    key = str(name).strip()
    if key in STRUCTURES:
        return key
    lowered = key.lower()
    if lowered in ALIASES:
        return ALIASES[lowered]
    raise ValueError(name)


@dataclasses.dataclass(frozen=True)
class Covariance:
    """A covariance structure with its options: ``groups`` (labels of the participant groups, one
    covariance matrix each; empty: one for all) and ``times`` (the numeric time of each visit, for
    the spatial structure; default 0, 1, 2, ...)."""

    kind: str
    groups: tuple[str, ...] = ()
    times: tuple[float, ...] | None = None

    @property
    def n_groups(self) -> int:
        return max(1, len(self.groups))


def as_covariance(structure) -> Covariance:
    return structure if isinstance(structure, Covariance) else Covariance(str(structure))


def structure_label(structure) -> str:
    cov = as_covariance(structure)
    label = STRUCTURE_LABEL[cov.kind]
    return f"{label} per {len(cov.groups)} groups" if cov.groups else label


# --------------------------------------------------------------------------------------------
# Covariance structures: theta (unconstrained) -> Sigma (T x T); written with operations that
# accept complex input so that d Sigma / d theta comes from the complex step.
# --------------------------------------------------------------------------------------------


def group_parameter_count(kind: str, t: int) -> int:
    if kind == "unstructured":
        return t * (t + 1) // 2
    if kind == "random_intercept":
        return 2
    n_var = t if kind in HETEROGENEOUS else 1
    if t == 1:
        return 1
    base = HETEROGENEOUS.get(kind, kind)
    return n_var + {"compound_symmetry": 1, "ar1": 1, "toeplitz": t - 1, "antedependence": t - 1,
                    "spatial_exponential": 1}[base]


def parameter_count(structure, n_visits: int) -> int:
    cov = as_covariance(structure)
    return cov.n_groups * group_parameter_count(cov.kind, n_visits)


def _correlation(kind: str, par, t: int, times) -> np.ndarray:
    lag = np.abs(np.subtract.outer(np.arange(t), np.arange(t)))
    if kind == "compound_symmetry":
        low = -1.0 / (t - 1)
        rho = low + (1.0 - low) / (1.0 + np.exp(-par[0]))
        return np.where(lag == 0, 1.0 + 0 * rho, rho)
    if kind == "ar1":
        return np.tanh(par[0]) ** lag
    if kind == "spatial_exponential":  # rho ** |t_j - t_k|, rho in (0, 1)
        rho = 1.0 / (1.0 + np.exp(-par[0]))
        position = np.arange(t, dtype=float) if times is None else np.asarray(times, float)
        return rho ** np.abs(np.subtract.outer(position, position))
    if kind == "antedependence":  # corr(j, k) = prod_{l=j}^{k-1} rho_l
        rho = np.tanh(par)
        rows = []
        for j in range(t):
            row = []
            for k in range(t):
                value = 1.0 + 0 * rho[0]
                for m in range(min(j, k), max(j, k)):
                    value = value * rho[m]
                row.append(value)
            rows.append(row)
        return np.array(rows)
    # toeplitz: Durbin-Levinson from partial autocorrelations tanh(par)
    pacf = np.tanh(par)
    acf = [1.0 + 0 * pacf[0]]
    coef: list = []
    for k in range(1, t):
        phi = pacf[k - 1]
        explained = sum(coef[j] * acf[k - 1 - j] for j in range(k - 1))
        unexplained = 1.0 - sum(coef[j] * acf[j + 1] for j in range(k - 1))
        acf.append(explained + phi * unexplained)
        coef = [coef[j] - phi * coef[k - 2 - j] for j in range(k - 1)] + [phi]
    return np.stack(acf)[lag]


def group_sigma(kind: str, theta: np.ndarray, t: int, times=None) -> np.ndarray:
    if kind == "unstructured":
        chol = np.zeros((t, t), dtype=theta.dtype)
        rows, cols = lower_triangle(t)
        chol[rows, cols] = theta
        diag = np.arange(t)
        chol[diag, diag] = np.exp(theta[diagonal_positions(t)])
        return chol @ chol.T
    if kind == "random_intercept":  # exp(theta0) I + exp(theta1) J
        return np.exp(theta[0]) * np.eye(t) + np.exp(theta[1]) * np.ones((t, t))
    if t == 1:
        return np.exp(theta[0]) * np.ones((1, 1), dtype=theta.dtype)
    if kind in HETEROGENEOUS:
        sd = np.exp(0.5 * theta[:t])
        return np.outer(sd, sd) * _correlation(HETEROGENEOUS[kind], theta[t:], t, times)
    return np.exp(theta[0]) * _correlation(kind, theta[1:], t, times)


def covariance_matrices(structure, theta: np.ndarray, n_visits: int) -> np.ndarray:
    """Covariance matrices per group, shape (G, T, T) (works for complex ``theta``)."""
    cov = as_covariance(structure)
    k = group_parameter_count(cov.kind, n_visits)
    return np.stack([group_sigma(cov.kind, theta[g * k:(g + 1) * k], n_visits, cov.times)
                     for g in range(cov.n_groups)])


def covariance_matrix(structure, theta: np.ndarray, n_visits: int) -> np.ndarray:
    """Covariance matrix for parameters ``theta`` (first group; works for complex ``theta``)."""
    return covariance_matrices(structure, theta, n_visits)[0]


@functools.lru_cache(maxsize=64)
def lower_triangle(t: int) -> tuple[np.ndarray, np.ndarray]:
    """``np.tril_indices(t)``, computed once per t (read-only)."""
    rows, cols = np.tril_indices(t)
    rows.setflags(write=False)
    cols.setflags(write=False)
    return rows, cols


@functools.lru_cache(maxsize=64)
def diagonal_positions(t: int) -> np.ndarray:
    """Positions of the diagonal of L within the row-major lower-triangle vector (read-only)."""
    rows, cols = lower_triangle(t)
    out = np.flatnonzero(rows == cols)
    out.setflags(write=False)
    return out


def sigma_jacobian(structure, theta: np.ndarray, n_visits: int) -> np.ndarray:
    """d Sigma_g / d theta_k, shape (k, G, T, T), by complex-step differentiation (step 1e-30);
    the parameters of group g move only Sigma_g."""
    cov = as_covariance(structure)
    step = 1e-30
    per = group_parameter_count(cov.kind, n_visits)
    out = np.zeros((theta.size, cov.n_groups, n_visits, n_visits))
    if cov.kind == "unstructured":
        for g in range(cov.n_groups):
            out[g * per:(g + 1) * per, g] = _unstructured_jacobian(theta[g * per:(g + 1) * per],
                                                                   n_visits, step)
        return out
    for k in range(theta.size):
        g = k // per
        shifted = theta[g * per:(g + 1) * per].astype(complex)
        shifted[k - g * per] += 1j * step
        out[k, g] = group_sigma(cov.kind, shifted, n_visits, cov.times).imag / step
    return out


def _unstructured_jacobian(theta: np.ndarray, t: int, step: float) -> np.ndarray:
    """The complex-step Jacobian of Sigma = LL' for the unstructured structure, without complex
    arithmetic: the same products and the same division by ``step``, so the same numbers.

    Shifting theta_k (L's entry (r, c)) by i*step leaves Im L zero except Im L_rc (``step``, or
    Im exp(theta + i step) = exp(theta) sin(step) on the diagonal), so
    Im (LL')_rj = Im L_rc Re L_jc (j != r), Im (LL')_rr = 2 Re L_rc Im L_rc.
    """
    rows, cols = lower_triangle(t)
    diag = diagonal_positions(t)
    chol = np.zeros((t, t))
    chol[rows, cols] = theta
    shifted_diag = np.exp(theta[diag] + 1j * step)  # exp of a complex, as the complex step has it
    chol[np.arange(t), np.arange(t)] = shifted_diag.real
    im = np.full(theta.size, step)
    im[diag] = shifted_diag.imag
    k = np.arange(theta.size)
    out = np.zeros((theta.size, t, t))
    products = chol[:, cols].T * im[:, None]  # products[k, j] = Re L_j,c(k) Im L_r(k),c(k)
    out[k, rows, :] = products
    out[k, :, rows] = products
    out[k, rows, rows] = products[k, rows] + products[k, rows]
    return out / step


def _start_group_theta(kind: str, sigma0: np.ndarray, times=None) -> np.ndarray:
    t = sigma0.shape[0]
    if kind == "unstructured":
        chol = np.linalg.cholesky(sigma0)
        theta = chol[np.tril_indices(t)].copy()
        theta[diagonal_positions(t)] = np.log(np.diag(chol))
        return theta
    variance = float(np.mean(np.diag(sigma0)))
    if kind == "random_intercept":
        off = float(np.mean(sigma0[np.triu_indices(t, 1)])) if t > 1 else 0.0
        between = min(max(off, 0.05 * variance), 0.95 * variance)
        return np.array([np.log(variance - between), np.log(between)])
    if t == 1:
        return np.array([np.log(variance)])
    sd = np.sqrt(np.diag(sigma0))
    corr = sigma0 / np.outer(sd, sd)
    lag1 = float(np.clip(np.mean(np.diag(corr, 1)), -0.5, 0.9))
    if kind in HETEROGENEOUS:
        variances, kind = np.log(np.diag(sigma0)), HETEROGENEOUS[kind]
    else:
        variances = np.array([np.log(variance)])
    if kind == "compound_symmetry":
        low = -1.0 / (t - 1)
        rho = float(np.clip(np.mean(corr[np.triu_indices(t, 1)]), low + 0.05, 0.9))
        share = (rho - low) / (1.0 - low)
        par = [np.log(share / (1.0 - share))]
    elif kind == "ar1":
        par = [np.arctanh(lag1)]
    elif kind == "antedependence":
        par = list(np.arctanh(np.clip(np.diag(corr, 1), -0.5, 0.9)))
    elif kind == "spatial_exponential":
        position = np.arange(t, dtype=float) if times is None else np.asarray(times, float)
        gap = float(np.min(np.diff(np.sort(position))))
        rho = float(np.clip(lag1, 0.05, 0.9)) ** (1.0 / gap)
        par = [np.log(rho / (1.0 - rho))]
    else:
        par = [np.arctanh(lag1)] + [0.0] * (t - 2)
    return np.concatenate([variances, np.asarray(par, float)])


def start_theta(structure, sigma0) -> np.ndarray:
    """Starting parameters from positive-definite moment estimates ``sigma0`` (one T x T matrix,
    or one per group)."""
    cov = as_covariance(structure)
    sigma0 = np.asarray(sigma0)
    per_group = sigma0 if sigma0.ndim == 3 else np.repeat(sigma0[None], cov.n_groups, axis=0)
    return np.concatenate([_start_group_theta(cov.kind, s, cov.times) for s in per_group])

