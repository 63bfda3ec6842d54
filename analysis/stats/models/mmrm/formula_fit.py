"""The MMRM from an R ``mmrm`` formula: :func:`fit_mmrm_formula` and its result
:class:`MmrmFit` with one tidy table (coefficients, LS-means, contrasts, covariance, fit).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from analysis.core.errors import ModelError, UsageError
from analysis.core.limits import Deadline
from analysis.core.tidy import check_ci_level
from analysis.stats.models.mmrm.covariance import parameter_count, structure_label
from analysis.stats.models.mmrm.formula import (
    build_formula_problem,
    emmeans_rows,
    parse_specs,
)
from analysis.stats.models.mmrm.kenward import between_within_df, empirical_vcov, kenward_roger
from analysis.stats.models.mmrm.reml import fit_structure, variance_gradient
from analysis.stats.models.mmrm.type3 import type3_table

DF_METHODS = ("satterthwaite", "kenward-roger", "kenward-roger-linear", "between-within",
              "residual")
VCOV_METHODS = ("model", "empirical")
TIDY_COLUMNS = ["type", "term", "visit", "contrast", "estimate", "std_error", "df", "statistic",
                "p_value", "ci_low", "ci_high", "ci_level", "method"]


@dataclasses.dataclass(frozen=True, eq=False)
class MmrmFit:
    """A fitted MMRM from a formula. ``table`` is the tidy result (columns ``TIDY_COLUMNS``,
    ``type`` one of coefficient, lsmean, contrast, covariance, fit); ``type3`` the Type III F
    tests (columns ``term, num_df, den_df, statistic, p_value, method``) when asked; ``terms``,
    ``estimates``,
    ``cov_beta`` (the covariance used for inference: Kenward-Roger adjusted or empirical when
    asked), ``covariance`` (visits x visits, one per group in ``covariances``), ``loglik``
    (REML or ML, R's convention), ``m2ll``, ``aic``, ``bic``, ``iterations``."""

    table: pd.DataFrame
    terms: tuple[str, ...]
    estimates: np.ndarray
    cov_beta: np.ndarray
    covariance: pd.DataFrame
    covariances: dict[str, pd.DataFrame]
    loglik: float
    m2ll: float
    aic: float
    bic: float
    iterations: int
    n_obs: int
    n_participants: int
    method: str
    type3: pd.DataFrame | None = None  # with ``type3=True``: one F test per term

    def rows(self, kind: str) -> pd.DataFrame:
        return self.table.loc[self.table["type"] == kind].reset_index(drop=True)


def fit_mmrm_formula(
    formula: str,
    data: pd.DataFrame,
    *,
    df: str = "satterthwaite",
    ml: bool = False,
    vcov: str = "model",
    emmeans: str | None = None,
    reference: str | None = None,
    visit_order: Sequence[str] | None = None,
    ci_level: float = 0.95,
    max_iterations: int = 200,
    type3: bool = False,
) -> MmrmFit:
    """Fit ``formula`` (R mmrm syntax, e.g. ``"FEV1 ~ RACE + ARMCD * AVISIT + us(AVISIT |
    USUBJID)"``) by REML (ML when ``ml``) and return coefficients, LS-means and contrasts
    (``emmeans`` specs such as ``"ARMCD | AVISIT"``; contrasts are every level of the first
    factor minus ``reference``, default its first level), covariance and fit statistics; with
    ``type3`` also SAS's Type III F tests of the terms, with the same df method
    (:func:`~analysis.stats.models.mmrm.type3.type3_table`)."""
    df = str(df).lower()
    vcov = str(vcov).lower()
    if df not in DF_METHODS:
        raise UsageError(f"unknown df method {df!r}; choose from {', '.join(DF_METHODS)}.")
    if vcov not in VCOV_METHODS:
        raise UsageError(f"unknown vcov {vcov!r}; choose from {', '.join(VCOV_METHODS)}.")
    if vcov == "empirical" and df not in ("residual", "between-within"):
        raise UsageError("the empirical covariance goes with --df residual or between-within.")
    if df.startswith("kenward") and ml:
        raise UsageError("Kenward-Roger df need a REML fit (drop --ml).")
    check_ci_level(ci_level)
    fp = build_formula_problem(formula, data, reml=not ml, visit_order=visit_order,
                               reference=reference, emmeans_grid=bool(emmeans))
    problem = fp.problem
    deadline = Deadline("the MMRM fit", ModelError, "try a simpler covariance structure")
    fit = fit_structure(fp.covariance, problem, int(max_iterations), deadline=deadline)
    p = len(problem.terms)
    cov_beta = fit.cov_beta
    if vcov == "empirical":
        cov_beta = empirical_vcov(fit, problem)
    if df.startswith("kenward"):
        cov_beta, _ = kenward_roger(fit, problem, np.eye(p), linear=df.endswith("linear"))

    def infer(rows: np.ndarray):
        rows = np.atleast_2d(rows)
        estimate = rows @ fit.beta
        variance = np.einsum("mp,pq,mq->m", rows, cov_beta, rows)
        if df == "satterthwaite":
            grad = variance_gradient(rows, fit.theta, fit.structure, problem, fit.cov_beta,
                                      fit.ws)
            vv = np.einsum("mk,kl,ml->m", grad, fit.theta_cov, grad)
            with np.errstate(divide="ignore", invalid="ignore"):
                dfs = np.where(vv > 0, 2.0 * variance**2 / vv, np.nan)
        elif df.startswith("kenward"):
            dfs = kenward_roger(fit, problem, rows, linear=df.endswith("linear"))[1]
        elif df == "between-within":
            dfs = between_within_df(problem, fp.between, rows)
        else:
            dfs = np.full(len(rows), float(problem.n_obs - p))
        return estimate, np.sqrt(variance), dfs

    method = (f"MMRM, {structure_label(fp.covariance)} covariance, {'ML' if ml else 'REML'}, "
              f"{df} df, {vcov} vcov")
    # the table column by column (a row-wise build costs more than the fit); a column a row does
    # not give is NaN, one given as None stays None (the dtypes of the row-wise build)
    table_columns: dict[str, list] = {column: [] for column in TIDY_COLUMNS}

    def extend(n: int, **values) -> None:
        for column, target in table_columns.items():
            value = values.get(column, np.nan)
            if value is None or isinstance(value, str | float | int):
                target.extend([value] * n)
            else:
                target.extend(value.tolist() if isinstance(value, np.ndarray) else value)

    blocks: list[tuple] = []  # (type, terms, L rows, visits, contrasts): inferred in one pass

    def add(kind, terms, rows, visits=None, contrasts=None):
        blocks.append((kind, list(terms), np.atleast_2d(rows), visits, contrasts))

    add("coefficient", problem.terms, np.eye(p))
    if emmeans:
        primary, by = parse_specs(emmeans, fp.factors)
        labels, rows = emmeans_rows(fp, primary, by)
        name = lambda label, keys: ":".join(label[k] for k in keys)  # noqa: E731
        add("lsmean", [name(lab, primary) for lab in labels], rows,
            visits=[name(lab, by) if by else None for lab in labels])
        first = primary[0]
        ref_level = reference if reference in fp.factors[first] else fp.factors[first][0]
        c_terms, c_rows, c_visits, c_labels = [], [], [], []
        for m, lab in enumerate(labels):
            if lab[first] == ref_level:
                continue
            match = [j for j, other in enumerate(labels)
                     if other[first] == ref_level
                     and all(other[k] == lab[k] for k in lab if k != first)]
            c_rows.append(rows[m] - rows[match[0]])
            c_terms.append(f"{first}")
            c_visits.append(name(lab, by) if by else None)
            c_labels.append(f"{name(lab, primary)} - {name(labels[match[0]], primary)}")
        if c_rows:
            add("contrast", c_terms, np.array(c_rows), visits=c_visits, contrasts=c_labels)
    est, se, dfs = infer(np.vstack([block[2] for block in blocks]))
    stat = est / se
    quantile = stats.t.ppf(0.5 + ci_level / 2.0, dfs)
    p_value = 2.0 * stats.t.sf(np.abs(stat), dfs)
    start = 0
    for kind, terms, rows, visits, contrasts in blocks:
        part = slice(start, start + len(rows))
        start += len(rows)
        extend(len(terms), type=kind, term=terms, visit=visits, contrast=contrasts,
               estimate=est[part], std_error=se[part], df=dfs[part], statistic=stat[part],
               p_value=p_value[part], ci_low=est[part] - quantile[part] * se[part],
               ci_high=est[part] + quantile[part] * se[part], ci_level=float(ci_level),
               method=method)
    sigmas = fit.sigmas if fit.sigmas is not None else fit.sigma[None]
    group_names = list(fp.covariance.groups) or [None]
    for g, group in enumerate(group_names):
        for a, va in enumerate(problem.visits):
            for b in range(a, len(problem.visits)):
                extend(1, type="covariance", term=[f"cov({va},{problem.visits[b]})"],
                       visit=[va], contrast=[group], estimate=[sigmas[g, a, b]], method=method)
    m2ll = float(fit.m2ll)
    k = parameter_count(fp.covariance, len(problem.visits)) + (p if ml else 0)
    aic = m2ll + 2 * k
    bic = m2ll + k * np.log(problem.n_participants)
    for term, value in (("deviance (-2 log-likelihood)", m2ll), ("AIC", aic), ("BIC", bic),
                        ("n obs", problem.n_obs), ("n subjects", problem.n_participants),
                        ("iterations", fit.iterations)):
        extend(1, type="fit", term=[term], estimate=[float(value)], method=method)
    table = pd.DataFrame(table_columns)
    return MmrmFit(
        table=table, terms=tuple(problem.terms), estimates=fit.beta, cov_beta=cov_beta,
        covariance=pd.DataFrame(sigmas[0], index=problem.visits, columns=problem.visits),
        covariances={str(g): pd.DataFrame(sigmas[i], index=problem.visits,
                                          columns=problem.visits)
                     for i, g in enumerate(group_names)},
        loglik=-0.5 * m2ll, m2ll=m2ll, aic=aic, bic=bic, iterations=fit.iterations,
        n_obs=problem.n_obs, n_participants=problem.n_participants, method=method,
        type3=type3_table(fp, fit, cov_beta, df, method) if type3 else None,
    )
