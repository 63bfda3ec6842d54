"""Mixed model for repeated measures (MMRM) fitted by REML, in NumPy/SciPy.

Model
-----
For participant *i* with observed post-baseline visits :math:`S_i` (any subset, in visit order)

.. math::

    y_i = X_i \\beta + e_i, \\qquad e_i \\sim N(0, \\Sigma_{S_i S_i}(\\theta)),

with fixed effects ``response ~ baseline + covariates + arm + visit + arm:visit`` (optionally
``+ baseline:visit``), treatment coding (control and the first visit are the reference levels,
terms named as R names them: ``armtreatment``, ``visit8``, ``armtreatment:visit8``) and one
``T x T`` covariance matrix :math:`\\Sigma` across the T visits, of which every participant
contributes the block of the visits they attended. Every observed visit of every participant is
used, so the estimates are valid when data are missing at random.

REML log-likelihood (N observations, p fixed effects, V block-diagonal with blocks
:math:`\\Sigma_{S_i}`, :math:`A = X' V^{-1} X`, :math:`\\hat\\beta = A^{-1} X'V^{-1}y`)

.. math::

    -2\\ell_R(\\theta) = (N - p)\\log 2\\pi + \\sum_i \\log|\\Sigma_{S_i}| + \\log|A|
                         + (y - X\\hat\\beta)' V^{-1} (y - X\\hat\\beta).

This is the quantity R's ``nlme::gls(method = "REML")`` reports as ``logLik``. Participants are
grouped by missingness pattern, and per pattern the sufficient statistics
:math:`\\sum_i X_{i,a}' X_{i,b}`, :math:`\\sum_i X_{i,a}' y_{i,b}` and
:math:`\\sum_i y_{i,a} y_{i,b}` (a, b visits of the pattern) are formed once, so one evaluation
costs one small inverse per pattern, whatever the number of participants.

The analytic gradient with respect to :math:`\\Sigma` is
:math:`\\partial(-2\\ell_R)/\\partial\\Sigma_{S} = \\sum_{\\text{patterns}}
n_g W - W (Q_g + R_g) W` with :math:`W = \\Sigma_S^{-1}`,
:math:`Q_g[a,b] = \\operatorname{tr}(A^{-1} \\sum_i X_{i,a}'X_{i,b})` and
:math:`R_g[a,b] = \\sum_i r_{i,a} r_{i,b}` (GLS residuals), scattered into the T x T matrix; it is
chained to the unconstrained covariance parameters :math:`\\theta` through
:math:`\\partial\\Sigma/\\partial\\theta_k`, obtained by complex-step differentiation of the
(analytic) map :math:`\\theta \\mapsto \\Sigma` (exact to rounding error).

Covariance structures (``theta`` unconstrained, so any quasi-Newton optimiser applies):

* ``unstructured``: :math:`\\Sigma = LL'`, L lower-triangular with log-diagonal, T(T+1)/2
  parameters (R: ``corSymm`` + ``varIdent``, or ``mmrm::us``);
* ``compound_symmetry``: :math:`\\sigma^2[(1-\\rho)I + \\rho J]`,
  :math:`-1/(T-1) < \\rho < 1` (``mmrm::cs``);
* ``ar1``: :math:`\\sigma^2 \\rho^{|j-k|}` over visit positions (``mmrm::ar1``);
* ``toeplitz``: :math:`\\sigma^2 \\rho_{|j-k|}`, the correlations parameterised by their partial
  autocorrelations (``tanh``) so that every value is positive definite (``mmrm::toep``).

Inference
---------
``cov(beta) = A^{-1}`` at the REML estimate. LS-means are :math:`x_0'\\hat\\beta` on the grid
arm x visit with the baseline and numeric covariates at their mean over the rows used in the fit
(emmeans' default) and categorical covariates averaged with equal weights over their levels. The
treatment contrast at visit v is LS-mean(treatment, v) - LS-mean(control, v). Its degrees of
freedom are Satterthwaite's:

.. math::

    \\nu = \\frac{2\\,(l' A^{-1} l)^2}{g' H^{-1} g}, \\qquad
    g_k = \\frac{\\partial\\, l'A^{-1}(\\theta) l}{\\partial\\theta_k},

H the observed information of :math:`\\theta` (Hessian of :math:`-\\ell_R`, by central differences
of the analytic gradient) and g analytic:
:math:`g_k = \\sum_{\\text{patterns}} \\sum_{ab} (W J_k W)_{ab}\\, u' (\\textstyle\\sum_i
X_{i,a}'X_{i,b}) u` with :math:`u = A^{-1} l`, :math:`J_k = \\partial\\Sigma/\\partial\\theta_k`.
The value does not depend on how :math:`\\theta` is parameterised.

R computes the same quantity numerically, and the numerical error is what separates its df from
these. nlme's ``apVar`` is the inverse Hessian of the same REML log-likelihood (sigma free, not
profiled) in the parameters (``log((1 + rho)/(1 - rho))`` per correlation, log SD ratios, log
sigma); at the optimum it is our :math:`H^{-1}` up to the reparameterisation, but nlme takes the
Hessian with ``fdHess`` with steps ``max(|par|, 0.05) * eps^(1/3)``, i.e. 3e-7 for a log SD ratio
near 0, where a few units in the last place of the log-likelihood (about 1e-12) move a second
difference by several percent. emmeans' ``mode = "appx-satterthwaite"`` for ``gls`` estimates g by
regressing the change of ``vcov(beta)`` on the change of those parameters over refits to responses
perturbed by N(0, (0.01 sigma)^2). Replaying emmeans' refits with R's own random numbers (the
reference script's seed) moves the df by at most 0.2% from the exact ones; with g held fixed,
rounding noise of +-4 ulp in the log-likelihood alone spreads fdHess-based df by 2% (SD) at weeks 4
and 8 and 0.3% at week 12 of the reference data, where R's df differ from ours by -2.4%, -2.1% and
+0.2%. The exact df are therefore kept; R's are a noisy estimate of them. With one visit
the df reduce to the ANCOVA residual df n - p, and with complete data, an unstructured covariance
and ``baseline_by_visit`` to the per-visit ANCOVA's n - q (both tested).

Reference implementation matched: R ``nlme::gls(value ~ baseline + arm*visit,
correlation = corSymm(form = ~ t | id), weights = varIdent(form = ~ 1 | visit), method = "REML")``
with ``emmeans(fit, ~ arm | visit, mode = "appx-satterthwaite")`` (tests/reference/mmrm_open.R).

A random-intercept linear mixed model (statsmodels ``MixedLM``, REML; R ``nlme::lme``) is offered
as a named sensitivity model by :func:`fit_random_intercept`; it is not an MMRM.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Literal

import numpy as np
import pandas as pd
from scipy import linalg, optimize, stats

from analysis.core.errors import ModelError, UsageError
from analysis.core.tidy import check_ci_level, contrast_label, tidy_frame

Structure = Literal["unstructured", "compound_symmetry", "ar1", "toeplitz"]
STRUCTURES: tuple[str, ...] = ("unstructured", "compound_symmetry", "ar1", "toeplitz")
_STRUCTURE_LABEL = {
    "unstructured": "unstructured",
    "compound_symmetry": "compound symmetry",
    "ar1": "AR(1)",
    "toeplitz": "Toeplitz",
    "random_intercept": "random intercept",
}
_LOG_2PI = float(np.log(2.0 * np.pi))


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


# --------------------------------------------------------------------------------------------
# Data: long frame -> design matrix, patterns and their sufficient statistics
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, eq=False)
class _Pattern:
    visits: np.ndarray  # indices of the visits observed in this pattern
    n: int  # participants with this pattern
    xx: np.ndarray  # (s, s, p, p): sum_i X_ia' X_ib
    xy: np.ndarray  # (s, s, p):   sum_i X_ia' y_ib
    yy: np.ndarray  # (s, s):      sum_i y_ia y_ib


@dataclasses.dataclass(frozen=True, eq=False)
class _Problem:
    terms: list[str]
    visits: list[str]
    patterns: list[_Pattern]
    n_obs: int
    n_participants: int
    n_by_arm: dict[str, int]  # participants in the fit per arm label
    n_dropped_missing: int
    n_dropped_covariate: int
    x: np.ndarray
    y: np.ndarray
    subject_codes: np.ndarray
    grid: pd.DataFrame  # arm, visit + one column per term: the LS-mean rows x0
    n_by_arm_visit: dict[tuple[str, str], int]
    arm_labels: tuple[str, str]  # (treatment, control)


def _ordered_visits(values: pd.Series, visit_order: Sequence[str] | None) -> list[str]:
    if visit_order is not None:
        order = [str(v) for v in visit_order]
        if len(set(order)) != len(order):
            raise UsageError(f"visit_order repeats a visit: {order}.")
        return order
    if isinstance(values.dtype, pd.CategoricalDtype):  # categories present in the rows, in order
        present = set(values.dropna().astype(str))
        return [str(v) for v in values.cat.categories if str(v) in present]
    if pd.api.types.is_numeric_dtype(values):
        return [str(v) for v in np.sort(values.dropna().unique())]
    return [str(v) for v in pd.unique(values.dropna())]


def _build_problem(
    data: pd.DataFrame,
    *,
    response: str,
    subject: str,
    arm: str,
    visit: str,
    baseline: str | None,
    covariates: Sequence[str],
    visit_order: Sequence[str] | None,
    treatment: str,
    control: str,
    baseline_by_visit: bool,
) -> _Problem:
    if not isinstance(data, pd.DataFrame):
        raise UsageError(f"data must be a pandas DataFrame, not {type(data).__name__}.")
    covariates = list(covariates)
    if baseline_by_visit and baseline is None:
        raise UsageError("baseline_by_visit=True needs a baseline column (baseline is None).")
    predictors = ([baseline] if baseline is not None else []) + covariates
    needed = [response, subject, arm, visit, *predictors]
    missing = [c for c in dict.fromkeys(needed) if c not in data.columns]
    if missing:
        raise UsageError(f"the data have no column {missing!r} (needed by the MMRM).")
    if treatment == control:
        raise UsageError(f"treatment and control must differ (both are {treatment!r}).")
    if not pd.api.types.is_numeric_dtype(data[response]):
        raise UsageError(f"the response column {response!r} is not numeric.")
    if baseline is not None and not pd.api.types.is_numeric_dtype(data[baseline]):
        raise UsageError(f"the baseline column {baseline!r} is not numeric.")

    visits = _ordered_visits(data[visit], visit_order)
    frame = pd.DataFrame(
        {
            "_subject": data[subject].astype(str).to_numpy(),
            "_arm": data[arm].astype(str).to_numpy(),
            "_visit": data[visit].astype(str).to_numpy(),
            "_y": data[response].astype(float).to_numpy(),
        }
    )
    for column in predictors:
        frame[column] = data[column].to_numpy()
    unknown_visits = sorted(set(frame["_visit"]) - set(visits))
    if unknown_visits:
        raise UsageError(
            f"visit column {visit!r} holds {unknown_visits} outside visit_order {visits}; "
            "pass only post-baseline rows of one outcome, or list every visit."
        )
    unknown_arms = sorted(set(frame["_arm"]) - {treatment, control})
    if unknown_arms:
        raise UsageError(
            f"arm column {arm!r} holds {unknown_arms}; expected only {treatment!r} (treatment) "
            f"and {control!r} (control)."
        )
    duplicated = frame.duplicated(["_subject", "_visit"])
    if duplicated.any():
        first = frame.loc[duplicated, ["_subject", "_visit"]].iloc[0]
        raise ModelError(
            f"{int(duplicated.sum())} duplicated participant x visit rows (e.g. participant "
            f"{first['_subject']!r} at visit {first['_visit']!r}); pass one outcome at a time."
        )
    arms_per_subject = frame.groupby("_subject")["_arm"].nunique()
    if (arms_per_subject > 1).any():
        raise ModelError(
            f"participant {arms_per_subject[arms_per_subject > 1].index[0]!r} appears in both arms."
        )

    missing_y = frame["_y"].isna()
    n_dropped_missing = int(missing_y.sum())
    frame = frame.loc[~missing_y]
    missing_x = frame[predictors].isna().any(axis=1) if predictors else pd.Series(False, frame.index)
    n_dropped_covariate = int(missing_x.sum())
    frame = frame.loc[~missing_x]

    numeric = ["_y"] + [c for c in predictors if pd.api.types.is_numeric_dtype(frame[c])]
    for column in numeric:
        infinite = ~np.isfinite(frame[column].to_numpy(float))
        if infinite.any():
            name = response if column == "_y" else column
            raise ModelError(f"column {name!r} holds {int(infinite.sum())} infinite value(s).")
    counts = frame.groupby("_arm")["_subject"].nunique()
    for label in (treatment, control):
        if counts.get(label, 0) < 2:
            raise ModelError(
                f"arm {label!r} has {int(counts.get(label, 0))} participant(s) with an observed "
                "response; the MMRM needs at least 2 per arm."
            )
    observed = set(frame["_visit"])
    empty = [v for v in visits if v not in observed]
    if empty:
        raise ModelError(f"visit(s) {empty} have no observed response; drop them from visit_order.")

    visit_codes = pd.Categorical(frame["_visit"], categories=visits).codes.astype(int)
    frame = frame.assign(_code=visit_codes).sort_values(["_subject", "_code"], kind="stable")
    visit_codes = frame["_code"].to_numpy()

    # Design matrix, columns named as R's model.matrix names them.
    columns: dict[str, np.ndarray] = {"(Intercept)": np.ones(len(frame))}
    grid_values: dict[str, object] = {"(Intercept)": 1.0}
    if baseline is not None:
        columns[baseline] = frame[baseline].astype(float).to_numpy()
        grid_values[baseline] = float(columns[baseline].mean())
    for column in covariates:
        values = frame[column]
        if pd.api.types.is_numeric_dtype(values):
            columns[column] = values.astype(float).to_numpy()
            grid_values[column] = float(columns[column].mean())
        else:
            levels = sorted(pd.unique(values.astype(str)))
            for level in levels[1:]:
                columns[f"{column}{level}"] = (values.astype(str) == level).to_numpy(float)
                grid_values[f"{column}{level}"] = 1.0 / len(levels)  # emmeans: equal weights
    is_treated = (frame["_arm"] == treatment).to_numpy(float)
    columns[f"{arm}{treatment}"] = is_treated
    visit_dummies = {v: (visit_codes == k).astype(float) for k, v in enumerate(visits) if k > 0}
    for v, dummy in visit_dummies.items():
        columns[f"{visit}{v}"] = dummy
    for v, dummy in visit_dummies.items():
        columns[f"{arm}{treatment}:{visit}{v}"] = is_treated * dummy
    if baseline_by_visit:
        for v, dummy in visit_dummies.items():
            columns[f"{baseline}:{visit}{v}"] = columns[baseline] * dummy
    terms = list(columns)
    x = np.column_stack([columns[t] for t in terms])
    y = frame["_y"].to_numpy(float)

    # A column is aliased when it lies in the span of the columns before it (R's convention):
    # its diagonal entry in the unpivoted QR factor vanishes.
    r_diag = np.abs(np.diag(np.linalg.qr(x, mode="r")))
    aliased = [t for t, d, norm in zip(terms, r_diag, np.linalg.norm(x, axis=0), strict=True)
               if d <= 1e-9 * max(norm, 1e-300)]
    if aliased:
        raise ModelError(
            f"the design matrix is singular: {aliased} cannot be separated from the other terms "
            "(e.g. a visit without participants in one arm, or a constant or collinear covariate)."
        )

    grid_rows = []
    for arm_label in (control, treatment):
        for k, v in enumerate(visits):
            row: dict[str, object] = {"arm": arm_label, "visit": v}
            for term in terms:
                row[term] = grid_values.get(term, 0.0)
            row[f"{arm}{treatment}"] = float(arm_label == treatment)
            if k > 0:
                row[f"{visit}{v}"] = 1.0
                row[f"{arm}{treatment}:{visit}{v}"] = float(arm_label == treatment)
                if baseline_by_visit:
                    row[f"{baseline}:{visit}{v}"] = grid_values[baseline]
            grid_rows.append(row)
    grid = pd.DataFrame(grid_rows)

    subject_codes, subject_index = pd.factorize(frame["_subject"])
    n_subjects = len(subject_index)
    masks = np.zeros(n_subjects, dtype=np.int64)
    np.bitwise_or.at(masks, subject_codes, np.left_shift(1, visit_codes).astype(np.int64))
    row_mask = masks[subject_codes]
    patterns = []
    for mask in np.unique(masks):
        pattern_visits = np.array([k for k in range(len(visits)) if mask >> k & 1])
        s = pattern_visits.size
        take = row_mask == mask  # rows of these participants: contiguous, s rows each, in order
        xg = x[take].reshape(-1, s, x.shape[1])
        yg = y[take].reshape(-1, s)
        patterns.append(
            _Pattern(
                visits=pattern_visits,
                n=xg.shape[0],
                xx=np.einsum("iap,ibq->abpq", xg, xg),
                xy=np.einsum("iap,ib->abp", xg, yg),
                yy=yg.T @ yg,
            )
        )
    n_by = frame.groupby(["_arm", "_visit"])["_subject"].nunique()
    return _Problem(
        terms=terms,
        visits=visits,
        patterns=patterns,
        n_obs=len(frame),
        n_participants=n_subjects,
        n_by_arm={str(label): int(counts.get(label, 0)) for label in (treatment, control)},
        n_dropped_missing=n_dropped_missing,
        n_dropped_covariate=n_dropped_covariate,
        x=x,
        y=y,
        subject_codes=subject_codes,
        grid=grid,
        n_by_arm_visit={(str(a), str(v)): int(n) for (a, v), n in n_by.items()},
        arm_labels=(treatment, control),
    )


# --------------------------------------------------------------------------------------------
# REML objective, gradient, information
# --------------------------------------------------------------------------------------------


class _NotPositiveDefinite(Exception):
    pass


def _pattern_inverses(sigma: np.ndarray, patterns: list[_Pattern]) -> list[tuple[np.ndarray, float]]:
    out = []
    for pattern in patterns:
        block = sigma[np.ix_(pattern.visits, pattern.visits)]
        try:
            factor = linalg.cho_factor(block, lower=True, check_finite=True)
        except (linalg.LinAlgError, ValueError) as error:
            raise _NotPositiveDefinite from error
        inverse = linalg.cho_solve(factor, np.eye(block.shape[0]))
        out.append((inverse, 2.0 * float(np.sum(np.log(np.diag(factor[0]))))))
    return out


def _gls(sigma: np.ndarray, problem: _Problem):
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
    try:
        factor = linalg.cho_factor(a, lower=True)
    except linalg.LinAlgError as error:
        raise _NotPositiveDefinite from error
    beta = linalg.cho_solve(factor, c)
    a_inv = linalg.cho_solve(factor, np.eye(p))
    logdet_a = 2.0 * float(np.sum(np.log(np.diag(factor[0]))))
    m2ll = (problem.n_obs - p) * _LOG_2PI + logdet_v + logdet_a + yvy - float(c @ beta)
    return m2ll, beta, a_inv, [w for w, _ in inverses]


def _objective(theta: np.ndarray, structure: str, problem: _Problem) -> tuple[float, np.ndarray]:
    """-2 l_R(theta) and its analytic gradient (see the module docstring)."""
    t = len(problem.visits)
    try:
        sigma = _sigma(structure, theta, t)
        m2ll, beta, a_inv, ws = _gls(sigma, problem)
    except _NotPositiveDefinite:
        return np.inf, np.zeros_like(theta)
    d_sigma = np.zeros((t, t))
    for pattern, w in zip(problem.patterns, ws, strict=True):
        q = np.einsum("pq,abqp->ab", a_inv, pattern.xx)
        # R[a,b] = yy - sum_i (X_ia beta) y_ib - sum_i y_ia (X_ib beta) + beta' XX[a,b] beta;
        # xy[a,b,:] = sum_i X_ia' y_ib, so (xy @ beta)[a,b] = sum_i (X_ia beta) y_ib.
        xb = pattern.xy @ beta
        r = pattern.yy - xb - xb.T + np.einsum("p,abpq,q->ab", beta, pattern.xx, beta)
        d_sigma[np.ix_(pattern.visits, pattern.visits)] += pattern.n * w - w @ (q + r) @ w
    jacobian = _sigma_jacobian(structure, theta, t)
    return m2ll, np.einsum("kab,ab->k", jacobian, d_sigma)


def _information(theta: np.ndarray, structure: str, problem: _Problem) -> np.ndarray:
    """Observed information of theta: Hessian of -l_R by central differences of the gradient."""
    k = theta.size
    hessian = np.empty((k, k))
    for j in range(k):
        step = 1e-4 * max(1.0, abs(theta[j]))
        up, down = theta.copy(), theta.copy()
        up[j] += step
        down[j] -= step
        hessian[:, j] = (_objective(up, structure, problem)[1]
                         - _objective(down, structure, problem)[1]) / (2 * step)
    return 0.25 * (hessian + hessian.T)  # symmetrise; /2 turns -2 l_R into -l_R


def _variance_gradient(
    contrasts: np.ndarray, theta: np.ndarray, structure: str, problem: _Problem,
    a_inv: np.ndarray, ws: list[np.ndarray]
) -> np.ndarray:
    """g[m, k] = d (l_m' A^{-1} l_m) / d theta_k for each row l_m of ``contrasts``.

    With u = A^{-1} l: dA/dtheta_k = -sum_patterns sum_ab (W J_k W)[a,b] XX[a,b], hence
    g_k = sum_patterns sum_ab (W J_k W)[a,b] u' XX[a,b] u.
    """
    t = len(problem.visits)
    jacobian = _sigma_jacobian(structure, theta, t)
    u = contrasts @ a_inv
    out = np.zeros((contrasts.shape[0], theta.size))
    for pattern, w in zip(problem.patterns, ws, strict=True):
        quad = np.einsum("mp,abpq,mq->mab", u, pattern.xx, u)
        e = np.einsum("ab,mbc,cd->mad", w, quad, w)
        j_sub = jacobian[:, pattern.visits][:, :, pattern.visits]
        out += np.einsum("mab,kab->mk", e, j_sub)
    return out


# --------------------------------------------------------------------------------------------
# Fitting
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, eq=False)
class _Fit:
    structure: str
    theta: np.ndarray
    sigma: np.ndarray
    beta: np.ndarray
    cov_beta: np.ndarray
    reml_loglik: float
    theta_cov: np.ndarray
    ws: list
    iterations: int


def _starting_sigma(problem: _Problem) -> np.ndarray:
    """Pairwise moment estimate of Sigma from OLS residuals, made positive definite."""
    t = len(problem.visits)
    beta_ols = np.linalg.lstsq(problem.x, problem.y, rcond=None)[0]
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


def _check_identifiable(structure: str, problem: _Problem) -> None:
    t = len(problem.visits)
    k = _n_params(structure, t)
    p = len(problem.terms)
    if problem.n_obs - p < k:
        raise ModelError(
            f"{problem.n_obs} observations and {p} fixed effects leave too few degrees of freedom "
            f"for the {k} parameters of the {_STRUCTURE_LABEL[structure]} covariance."
        )
    if structure in ("unstructured", "toeplitz"):
        together = np.zeros((t, t), dtype=int)
        for pattern in problem.patterns:
            together[np.ix_(pattern.visits, pattern.visits)] += pattern.n
        if structure == "unstructured":
            bad = [(problem.visits[a], problem.visits[b])
                   for a, b in zip(*np.triu_indices(t, 1), strict=True) if together[a, b] == 0]
        else:  # each lag needs at least one participant observed at two visits that far apart
            bad = [f"lag {lag}" for lag in range(1, t)
                   if not any(together[a, a + lag] for a in range(t - lag))]
        if bad:
            raise ModelError(
                f"the {_STRUCTURE_LABEL[structure]} covariance is not identifiable: no participant "
                f"is observed at both visits of each of {bad}."
            )


def _fit_structure(structure: str, problem: _Problem, max_iterations: int,
                   theta0: np.ndarray | None = None) -> _Fit:
    label = _STRUCTURE_LABEL[structure]
    _check_identifiable(structure, problem)
    t = len(problem.visits)
    if theta0 is None:
        theta0 = _start_theta(structure, _starting_sigma(problem))
    f0, g0 = _objective(theta0, structure, problem)
    if not np.isfinite(f0) or not np.all(np.isfinite(g0)):
        raise ModelError(f"the REML log-likelihood of the {label} MMRM is not finite at the "
                         "starting values; check the response for extreme values.")
    with np.errstate(all="ignore"):
        result = optimize.minimize(
            _objective, theta0, args=(structure, problem), jac=True, method="BFGS",
            options={"maxiter": max_iterations, "gtol": 1e-6},
        )
    theta = result.x
    m2ll, grad = _objective(theta, structure, problem)
    if not np.isfinite(m2ll):
        raise ModelError(f"the {label} MMRM failed: the optimiser left the region where the "
                         "covariance matrix is positive definite.")
    # BFGS often stops with "precision loss" at the optimum: judge convergence ourselves, by the
    # Newton decrement under the observed information, and polish with Newton steps if needed.
    iterations = int(result.nit)
    for _ in range(20):
        info = _information(theta, structure, problem)
        try:
            step = np.linalg.solve(info, 0.5 * grad)
        except np.linalg.LinAlgError:
            step = np.full_like(theta, np.nan)
        decrement = float(0.5 * grad @ step) if np.all(np.isfinite(step)) else np.inf
        if 0 <= decrement < 1e-10:
            break
        if iterations >= max_iterations or not np.isfinite(decrement) or decrement < 0:
            break
        scale = 1.0
        while scale > 1e-4:
            trial = theta - scale * step
            f_trial, g_trial = _objective(trial, structure, problem)
            if f_trial <= m2ll + 1e-12:
                theta, m2ll, grad = trial, f_trial, g_trial
                break
            scale /= 2
        else:
            break
        iterations += 1
    eigen = np.linalg.eigvalsh(info) if np.all(np.isfinite(info)) else np.array([-np.inf])
    if iterations >= max_iterations and not (0 <= decrement < 1e-10):
        raise ModelError(
            f"the {label} MMRM did not converge within {max_iterations} iterations "
            f"(gradient norm {np.max(np.abs(grad)):.3g}; optimiser said: {result.message}). "
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
            f"(Newton decrement {decrement:.3g}; optimiser said: {result.message})."
        )
    sigma = _sigma(structure, theta, t)
    m2ll, beta, a_inv, ws = _gls(sigma, problem)
    return _Fit(structure=structure, theta=theta, sigma=sigma, beta=beta, cov_beta=a_inv,
                reml_loglik=-0.5 * m2ll, theta_cov=np.linalg.inv(info), ws=ws,
                iterations=iterations)


def _satterthwaite(fit: _Fit, problem: _Problem, rows: np.ndarray):
    """Estimate, SE and Satterthwaite df for each row l of ``rows``."""
    estimate = rows @ fit.beta
    variance = np.einsum("mp,pq,mq->m", rows, fit.cov_beta, rows)
    grad = _variance_gradient(rows, fit.theta, fit.structure, problem, fit.cov_beta, fit.ws)
    var_of_variance = np.einsum("mk,kl,ml->m", grad, fit.theta_cov, grad)
    df = 2.0 * variance**2 / var_of_variance
    return estimate, np.sqrt(variance), df


def _inference_tables(fit: _Fit, problem: _Problem, ci_level: float, method: str,
                      note: str | None) -> tuple[pd.DataFrame, pd.DataFrame]:
    treatment, control = problem.arm_labels
    grid = problem.grid
    x0 = grid[problem.terms].to_numpy(float)
    est, se, df = _satterthwaite(fit, problem, x0)
    quantile = stats.t.ppf(0.5 + ci_level / 2.0, df)
    lsmeans = pd.DataFrame({
        "arm": grid["arm"].to_numpy(object), "visit": grid["visit"].to_numpy(object),
        "estimate": est, "std_error": se, "df": df,
        "ci_low": est - quantile * se, "ci_high": est + quantile * se,
    })
    t = len(problem.visits)
    rows = x0[t:] - x0[:t]  # grid: control visits first, then treatment visits
    est, se, df = _satterthwaite(fit, problem, rows)
    statistic = est / se
    quantile = stats.t.ppf(0.5 + ci_level / 2.0, df)
    contrasts = tidy_frame([
        {
            "visit": v, "contrast": contrast_label(treatment, control),
            "measure": "LS-mean difference", "estimate": est[k], "std_error": se[k],
            "statistic": statistic[k], "df": df[k],
            "p_value": 2.0 * stats.t.sf(abs(statistic[k]), df[k]),
            "ci_low": est[k] - quantile[k] * se[k], "ci_high": est[k] + quantile[k] * se[k],
            "ci_level": ci_level, "method": method,
            "n_treatment": problem.n_by_arm_visit.get((treatment, v), 0),
            "n_control": problem.n_by_arm_visit.get((control, v), 0),
            **({"note": note} if note else {}),
        }
        for k, v in enumerate(problem.visits)
    ])
    return contrasts, lsmeans


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, eq=False)
class MmrmResult:
    """A fitted MMRM.

    Attributes
    ----------
    terms, estimates, std_errors, cov_beta
        Fixed effects in R's naming and order, their estimates, standard errors and covariance
        matrix ``(X' V^-1 X)^-1`` at the REML estimate.
    covariance
        Estimated within-participant covariance across visits (visits x visits), as R's
        ``getVarCov`` prints it for a participant observed at every visit.
    covariance_structure
        Structure actually fitted; ``requested_structure`` the one asked for, and
        ``fallback_reason`` why the fit fell back (None when it did not).
    reml_loglik, converged, iterations
        REML log-likelihood (R's ``logLik`` convention), convergence flag (always True: a fit
        that does not converge raises :class:`~analysis.core.errors.ModelError`) and optimiser
        iterations.
    contrasts
        Tidy frame (:mod:`analysis.core.tidy`): one row per visit, treatment minus control LS-mean
        difference with SE, t, Satterthwaite df, p, CI, and participants observed at that visit.
    lsmeans
        arm, visit, estimate, std_error, df, ci_low, ci_high.
    n_participants, n_obs
        Participants and observations used; ``n_dropped_missing`` rows dropped for a missing
        response, ``n_dropped_covariate`` for a missing baseline or covariate.
    """

    terms: tuple[str, ...]
    estimates: np.ndarray
    std_errors: np.ndarray
    cov_beta: np.ndarray
    covariance: pd.DataFrame
    covariance_structure: str
    requested_structure: str
    fallback_reason: str | None
    reml_loglik: float
    converged: bool
    iterations: int
    method: str
    visits: tuple[str, ...]
    contrasts: pd.DataFrame
    lsmeans: pd.DataFrame
    n_participants: int
    n_treatment: int  # participants with at least one observed visit in the fit, per arm
    n_control: int
    n_obs: int
    n_dropped_missing: int
    n_dropped_covariate: int

    @property
    def fixed_effects(self) -> pd.DataFrame:
        """term, estimate, std_error."""
        return pd.DataFrame({"term": list(self.terms), "estimate": self.estimates,
                             "std_error": self.std_errors})

    @property
    def fallback_taken(self) -> bool:
        return self.fallback_reason is not None


def fit_mmrm(
    data: pd.DataFrame,
    *,
    response: str = "value",
    subject: str = "participant_id",
    arm: str = "arm",
    visit: str = "visit",
    baseline: str | None = "baseline",
    covariates: Sequence[str] = (),
    visit_order: Sequence[str] | None = None,
    treatment: str = "treatment",
    control: str = "control",
    covariance: Structure = "unstructured",
    baseline_by_visit: bool = False,
    ci_level: float = 0.95,
    fallback: Sequence[str] = (),
    max_iterations: int = 200,
) -> MmrmResult:
    """Fit an MMRM by REML and return per-visit treatment contrasts and LS-means.

    Model: ``response ~ baseline + covariates + arm + visit + arm:visit`` (``+ baseline:visit``
    when ``baseline_by_visit``), a ``covariance``-structured within-participant covariance across
    visits, REML; formulas in the module docstring.

    Parameters
    ----------
    data
        Long frame, one row per participant x post-baseline visit of one outcome. Rows with a
        missing response are dropped and counted (``n_dropped_missing``); rows with a missing
        baseline or covariate likewise (``n_dropped_covariate``).
    response, subject, arm, visit, baseline
        Column names; ``baseline=None`` fits without a baseline covariate.
    covariates
        Further adjustment columns: numeric ones enter linearly (LS-means at their mean over the
        rows used), others as factors with treatment coding (LS-means average their levels with
        equal weights, as emmeans does).
    visit_order
        Visit labels in time order (first = reference). Default: the categories (present in the
        rows) of a categorical column, sorted values of a numeric one, else order of first appearance.
    treatment, control
        Labels of the two arms in ``arm``; contrasts are treatment minus control.
    covariance
        ``"unstructured"`` (default), ``"compound_symmetry"``, ``"ar1"`` or ``"toeplitz"``
        (the last three with a common variance across visits).
    ci_level
        Confidence level of the intervals.
    fallback
        Structures to try, in order, if the requested one cannot be fitted (not identifiable or
        not converged). Empty (default): such a failure raises. A fallback taken is recorded in
        ``covariance_structure``, ``fallback_reason``, ``method`` and the contrasts' ``note``.
    max_iterations
        Optimiser iterations allowed per structure.

    Returns
    -------
    MmrmResult

    Raises
    ------
    UsageError
        A column is missing, or the arm/visit labels do not match the arguments.
    ModelError
        Non-convergence, a singular design, fewer than 2 participants per arm, a visit without
        observations, duplicated participant x visit rows, a non-identifiable covariance.

    Notes
    -----
    Matches R ``nlme::gls(correlation = corSymm, weights = varIdent, method = "REML")`` with
    ``emmeans(mode = "appx-satterthwaite")``: REML log-likelihood, fixed effects, SEs,
    contrasts and LS-means to 1e-4 relative, covariance to 1e-3, Satterthwaite df within 2.5%
    (tests/test_mmrm.py): nlme/emmeans compute the df with a finite-difference Hessian (fdHess)
    whose rounding error is of that size on these data; ours are exact (module docstring).

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(1)
    >>> ids = np.repeat([f"P{i:02d}" for i in range(40)], 2)
    >>> long = pd.DataFrame({"participant_id": ids, "arm": np.where(np.arange(80) < 40,
    ...     "control", "treatment"), "visit": np.tile(["w4", "w8"], 40),
    ...     "baseline": np.repeat(rng.normal(50, 5, 40), 2)})
    >>> long["value"] = 0.5 * long["baseline"] + rng.normal(0, 3, 80)
    >>> fit = fit_mmrm(long, visit_order=["w4", "w8"])
    >>> fit.contrasts[["visit", "measure"]].values.tolist()
    [['w4', 'LS-mean difference'], ['w8', 'LS-mean difference']]
    """
    for name in (covariance, *fallback):
        if name not in STRUCTURES:
            raise UsageError(f"unknown covariance structure {name!r}; choose from {STRUCTURES}.")
    check_ci_level(ci_level)
    if int(max_iterations) < 1:
        raise UsageError(f"max_iterations must be at least 1, not {max_iterations!r}.")
    problem = _build_problem(
        data, response=response, subject=subject, arm=arm, visit=visit, baseline=baseline,
        covariates=covariates, visit_order=visit_order, treatment=treatment, control=control,
        baseline_by_visit=baseline_by_visit,
    )
    failures: list[str] = []
    fit = None
    for structure in dict.fromkeys([covariance, *fallback]):
        try:
            fit = _fit_structure(structure, problem, int(max_iterations))
            break
        except ModelError as error:
            failures.append(str(error))
    if fit is None:
        if len(failures) == 1:
            raise ModelError(failures[0])
        raise ModelError("no covariance structure could be fitted: " + " ".join(
            f"({k + 1}) {message}" for k, message in enumerate(failures)))
    reason = " ".join(failures) if failures else None
    label = _STRUCTURE_LABEL[fit.structure]
    method = f"MMRM, {label} covariance, REML, Satterthwaite df"
    note = (f"fallback from {_STRUCTURE_LABEL[covariance]} covariance: {reason}"
            if reason else None)
    contrasts, lsmeans = _inference_tables(fit, problem, float(ci_level), method, note)
    return MmrmResult(
        terms=tuple(problem.terms), estimates=fit.beta, std_errors=np.sqrt(np.diag(fit.cov_beta)),
        cov_beta=fit.cov_beta,
        covariance=pd.DataFrame(fit.sigma, index=problem.visits, columns=problem.visits),
        covariance_structure=fit.structure, requested_structure=covariance,
        fallback_reason=reason, reml_loglik=fit.reml_loglik, converged=True,
        iterations=fit.iterations, method=method, visits=tuple(problem.visits),
        contrasts=contrasts, lsmeans=lsmeans, n_participants=problem.n_participants,
        n_treatment=problem.n_by_arm[treatment], n_control=problem.n_by_arm[control],
        n_obs=problem.n_obs, n_dropped_missing=problem.n_dropped_missing,
        n_dropped_covariate=problem.n_dropped_covariate,
    )


@dataclasses.dataclass(frozen=True, eq=False)
class RandomInterceptResult:
    """A random-intercept LMM (sensitivity model; not an MMRM).

    ``sigma`` is the residual SD, ``sd_intercept`` the SD of the participant intercepts (R's
    ``lme`` names); contrasts and LS-means as in :class:`MmrmResult`, with Satterthwaite df from
    the REML information of (log sigma^2, log sd_intercept^2).
    """

    terms: tuple[str, ...]
    estimates: np.ndarray
    std_errors: np.ndarray
    cov_beta: np.ndarray
    sigma: float
    sd_intercept: float
    reml_loglik: float
    converged: bool
    method: str
    visits: tuple[str, ...]
    contrasts: pd.DataFrame
    lsmeans: pd.DataFrame
    n_participants: int
    n_obs: int
    n_dropped_missing: int
    n_dropped_covariate: int

    @property
    def fixed_effects(self) -> pd.DataFrame:
        return pd.DataFrame({"term": list(self.terms), "estimate": self.estimates,
                             "std_error": self.std_errors})


def fit_random_intercept(
    data: pd.DataFrame,
    *,
    response: str = "value",
    subject: str = "participant_id",
    arm: str = "arm",
    visit: str = "visit",
    baseline: str | None = "baseline",
    covariates: Sequence[str] = (),
    visit_order: Sequence[str] | None = None,
    treatment: str = "treatment",
    control: str = "control",
    baseline_by_visit: bool = False,
    ci_level: float = 0.95,
) -> RandomInterceptResult:
    """Random-intercept linear mixed model by REML via statsmodels ``MixedLM``.

    Model: same fixed effects as :func:`fit_mmrm`;
    :math:`y_{ij} = x_{ij}'\\beta + u_i + e_{ij}`, :math:`u_i \\sim N(0, \\tau^2)`,
    :math:`e_{ij} \\sim N(0, \\sigma^2)`; i.e. compound symmetry restricted to a non-negative
    covariance. Matches R ``nlme::lme(random = ~ 1 | id, method = "REML")`` (fixed effects, SEs,
    sigma, sd of the intercept to 1e-4). Offered as a named sensitivity model. Contrast df are
    Satterthwaite's, computed as for :func:`fit_mmrm` at the MixedLM estimate.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(2)
    >>> ids = np.repeat([f"P{i:02d}" for i in range(40)], 2)
    >>> long = pd.DataFrame({"participant_id": ids, "arm": np.where(np.arange(80) < 40,
    ...     "control", "treatment"), "visit": np.tile(["w4", "w8"], 40),
    ...     "baseline": np.repeat(rng.normal(50, 5, 40), 2)})
    >>> long["value"] = 0.5 * long["baseline"] + np.repeat(rng.normal(0, 2, 40), 2) \\
    ...     + rng.normal(0, 3, 80)
    >>> round(fit_random_intercept(long, visit_order=["w4", "w8"]).sigma, 1) > 0
    True
    """
    import warnings

    from statsmodels.regression.mixed_linear_model import MixedLM

    check_ci_level(ci_level)
    problem = _build_problem(
        data, response=response, subject=subject, arm=arm, visit=visit, baseline=baseline,
        covariates=covariates, visit_order=visit_order, treatment=treatment, control=control,
        baseline_by_visit=baseline_by_visit,
    )
    model = MixedLM(problem.y, problem.x, groups=problem.subject_codes,
                    exog_re=np.ones((problem.n_obs, 1)))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = model.fit(reml=True, method=["lbfgs", "bfgs", "cg"], gtol=1e-8)
    converged = bool(result.converged)
    boundary = [str(w.message) for w in caught if "boundary" in str(w.message).lower()]
    if not converged:
        raise ModelError("the random-intercept model (statsmodels MixedLM, REML) did not converge.")
    sigma2 = float(result.scale)
    tau2 = float(np.asarray(result.cov_re)[0, 0])
    if boundary or tau2 <= 1e-10 * sigma2:
        raise ModelError("the random-intercept variance is estimated at zero (boundary of the "
                         "parameter space); use the MMRM or an ordinary ANCOVA instead.")
    # cov(beta) = (X'V^-1 X)^-1 at the MixedLM variance components, as nlme's vcov(lme) (the
    # statsmodels bse_fe come from the joint Hessian and differ in the 4th digit); Satterthwaite
    # df and the nlme-convention REML log-likelihood through the MMRM machinery.
    theta = np.log([sigma2, tau2])
    t = len(problem.visits)
    sigma = _sigma("random_intercept", theta, t)
    m2ll, beta, a_inv, ws = _gls(sigma, problem)
    info = _information(theta, "random_intercept", problem)
    fit = _Fit(structure="random_intercept", theta=theta, sigma=sigma, beta=beta,
               cov_beta=a_inv, reml_loglik=-0.5 * m2ll, theta_cov=np.linalg.inv(info), ws=ws,
               iterations=0)
    method = "Random-intercept LMM (sensitivity), REML, Satterthwaite df"
    contrasts, lsmeans = _inference_tables(fit, problem, float(ci_level), method, None)
    return RandomInterceptResult(
        terms=tuple(problem.terms), estimates=np.asarray(result.fe_params, float),
        std_errors=np.sqrt(np.diag(a_inv)), cov_beta=a_inv,
        sigma=float(np.sqrt(sigma2)), sd_intercept=float(np.sqrt(tau2)),
        reml_loglik=-0.5 * m2ll, converged=converged, method=method,
        visits=tuple(problem.visits), contrasts=contrasts, lsmeans=lsmeans,
        n_participants=problem.n_participants, n_obs=problem.n_obs,
        n_dropped_missing=problem.n_dropped_missing,
        n_dropped_covariate=problem.n_dropped_covariate,
    )
