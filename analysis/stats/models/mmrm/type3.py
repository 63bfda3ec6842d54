"""Type III F tests of the MMRM's fixed effects (SAS PROC MIXED's "Type 3 Tests of Fixed
Effects"): one joint Wald test per model term, with the denominator df of the fit's df method.

A term's hypothesis is built on a grid over every variable of the fixed effects: the term's
factors contrasted (each level minus the reference, as SAS's rows are), its numeric variables
by their slope, the other factors averaged with equal weights and the other numeric variables
held at 0, as SAS holds a covariate. A factor whose margin the model lacks (``a:x`` without
``x``) enters with all its levels, as R codes it and SAS tests it. The F statistic and
Kenward-Roger's test do not depend on which rows span the hypothesis; Satterthwaite's
multi-row df (Fai & Cornelius 1996) do, and follow SAS's rows.

Checked against SAS (AR(1), Satterthwaite; tests/reference/sas_type3_fev.json), R lmerTest and
pbkrtest (tests/reference/mmrm_type3.R).

Examples
--------
>>> import numpy as np, pandas as pd
>>> from analysis.stats.models.mmrm import fit_mmrm
>>> rng = np.random.default_rng(2)
>>> long = pd.DataFrame({"id": np.repeat(np.arange(40), 3), "visit": np.tile(["v1", "v2", "v3"], 40),
...                      "arm": np.repeat(np.where(np.arange(40) % 2, "TRT", "PBO"), 3)})
>>> long["y"] = rng.normal(size=120) + np.repeat(rng.normal(size=40), 3)
>>> fit = fit_mmrm("y ~ arm * visit + cs(visit | id)", long, type3=True)
>>> fit.type3[["term", "num_df"]].values.tolist()
[['arm', 1], ['visit', 2], ['arm:visit', 2]]
"""

from __future__ import annotations

import functools
import itertools

import numpy as np
import pandas as pd
from scipy import linalg, stats

from analysis.stats.models.mmrm.formula import FormulaProblem, factor_variables

TYPE3_COLUMNS = ["term", "num_df", "den_df", "statistic", "p_value", "method"]


def term_hypotheses(fp: FormulaProblem) -> list[tuple[str, np.ndarray, list[int]]]:
    """(term as R names it, L with full row rank, the term's design columns) for every term of
    the fixed effects but the intercept.

    L = C X_grid: X_grid the design rows of a grid over every variable (factors at their levels,
    numeric variables at z and z + 1; last variable fastest), C the Kronecker product over the
    variables of: for the term's variables, each level minus the reference (the last level, or
    the ``reference`` asked for; a numeric variable: its slope), or every level where the model
    has no term for the rest of the term (as R codes a factor without its margin: ``a:x``
    without ``x`` tests every level's slope, as SAS does); for the others, equal-weight means
    over a factor's levels, and the value z of a numeric variable. Dependent rows are dropped;
    the others are kept as they are. z is 0, where SAS holds a covariate outside the term, or
    the variable's mean when the formula transforms it (so that ``center(x)`` is held at its
    centre, and ``log(x)`` stays finite)."""
    spec = fp.model_spec
    transformed = _transformed_variables(spec, set(fp.numeric))
    variables = list(fp.factors) + list(fp.numeric)
    levels = [fp.factors[v] if v in fp.factors
              else [fp.numeric[v], fp.numeric[v] + 1.0] if v in transformed else [0.0, 1.0]
              for v in variables]
    codes = np.array(list(itertools.product(*(range(len(lv)) for lv in levels))), dtype=np.int64)
    grid = pd.DataFrame({
        v: (pd.Categorical.from_codes(codes[:, j], categories=levels[j]) if v in fp.factors
            else np.asarray(levels[j], dtype=float)[codes[:, j]])
        for j, v in enumerate(variables)}, copy=False)
    x_grid = np.asarray(spec.get_model_matrix(grid), dtype=float)
    present = {frozenset(_term_variables(term, variables)) for term in spec.terms}
    out = []
    for term, columns in spec.term_indices.items():
        named = _term_variables(term, variables)
        if not named:  # the intercept
            continue
        c = functools.reduce(np.kron, [
            _margin(v, lv, named, present, v in fp.factors, fp.reference)
            for v, lv in zip(variables, levels, strict=True)])
        hypothesis = c @ x_grid
        rank = np.linalg.matrix_rank(hypothesis, tol=1e-10 * max(np.abs(hypothesis).max(), 1e-300))
        if rank:
            # independent rows kept as they are: the Satterthwaite F's df depend on them
            _, _, pivots = linalg.qr(hypothesis.T, pivoting=True, mode="economic")
            out.append((_r_term(term), hypothesis[np.sort(pivots[:rank])], list(columns)))
    return out


def _margin(variable: str, levels: list, named: set[str], present: set[frozenset],
            is_factor: bool, reference: str | None) -> np.ndarray:
    """One variable's part of a term's C: averaged over (a factor) or held at z (a numeric
    variable) outside the term; in it, contrasts when the model has the rest of the term (as R
    codes a term), else every level."""
    if variable not in named:
        return np.full((1, len(levels)), 1 / len(levels)) if is_factor else np.eye(2)[:1]
    if frozenset(named - {variable}) in present:
        first_is_reference = not is_factor or levels[0] == reference  # a slope: (z + 1) - z
        return _minus_reference(len(levels), 0 if first_is_reference else len(levels) - 1)
    return np.eye(len(levels))


def _minus_reference(k: int, reference: int) -> np.ndarray:
    """Rows e_j - e_reference for every level j but the reference: SAS's Type III rows (its
    reference is the last level unless CLASS ref= names one)."""
    rows = np.eye(k)[[j for j in range(k) if j != reference]]
    rows[:, reference] = -1.0
    return rows


def _transformed_variables(spec, numeric: set[str]) -> set[str]:
    """The numeric variables the formula uses inside a transform (``center(x)``, ``log(x)``)."""
    from formulaic.parser.types import Factor

    found: set[str] = set()
    for term in spec.terms:
        for factor in term.factors:
            if factor.eval_method == Factor.EvalMethod.PYTHON:
                found |= factor_variables(factor, numeric)
    return found


def _term_variables(term, variables: list[str]) -> set[str]:
    return set().union(*(factor_variables(factor, variables) for factor in term.factors))


def _r_term(term) -> str:
    return ":".join(str(factor.expr) for factor in term.factors)


def fai_cornelius_df(nu: np.ndarray) -> float:
    """Denominator df of a q-row F from the q one-row Satterthwaite df of the eigen-directions
    of L cov(beta) L' (Fai & Cornelius 1996, as SAS computes it): E = sum over nu_m > 2 of
    nu_m / (nu_m - 2); 2E / (E - q) when E > q, else 0 (no df: no p-value)."""
    q = nu.size
    if q == 1:
        return float(nu[0])
    keep = nu > 2
    e = float(np.sum(nu[keep] / (nu[keep] - 2)))
    return 2 * e / (e - q) if e > q else 0.0


def kenward_roger_f(phi_beta: np.ndarray, phi_a: np.ndarray, big_p: np.ndarray, w: np.ndarray,
                    hypothesis: np.ndarray, beta: np.ndarray) -> tuple[float, float]:
    """(scaled F, denominator df m) of Kenward & Roger (1997, section 4) for H0: L beta = 0,
    L with q independent rows: Theta = L'(L Phi L')^{-1} L,
    A1 = sum_ij W_ij tr(Theta Phi P_i Phi) tr(Theta Phi P_j Phi),
    A2 = sum_ij W_ij tr(Theta Phi P_i Phi Theta Phi P_j Phi), B = (A1 + 6 A2) / (2q),
    g = ((q + 1) A1 - (q + 4) A2) / ((q + 2) A2), c1, c2, c3 = (g, q - g, q + 2 - g) / (3q + 2(1 - g)),
    E* = 1 / (1 - A2 / q), V* = (2 / q)(1 + c1 B) / ((1 - c2 B)^2 (1 - c3 B)),
    rho = V* / (2 E*^2), m = 4 + (q + 2) / (q rho - 1), lambda = m / (E* (m - 2));
    F = lambda (L beta)'(L Phi_A L')^{-1}(L beta) / q."""
    q = hypothesis.shape[0]
    theta = hypothesis.T @ np.linalg.solve(hypothesis @ phi_beta @ hypothesis.T, hypothesis)
    m_i = np.einsum("pq,qr,irs,st->ipt", theta, phi_beta, big_p, phi_beta)  # Theta Phi P_i Phi
    traces = np.einsum("ipp->i", m_i)
    a1 = float(traces @ w @ traces)
    a2 = float(np.einsum("ij,ipq,jqp->", w, m_i, m_i))
    b = (a1 + 6 * a2) / (2 * q)
    g = ((q + 1) * a1 - (q + 4) * a2) / ((q + 2) * a2) if a2 > 0 else 0.0
    denominator = 3 * q + 2 * (1 - g)
    c1, c2, c3 = g / denominator, (q - g) / denominator, (q + 2 - g) / denominator
    e_star = 1.0 / (1.0 - a2 / q)
    v_star = (2.0 / q) * (1 + c1 * b) / ((1 - c2 * b) ** 2 * (1 - c3 * b))
    rho = v_star / (2.0 * e_star**2)
    m = 4.0 + (q + 2) / (q * rho - 1) if q * rho > 1 else np.inf
    scale = m / (e_star * (m - 2)) if np.isfinite(m) else 1.0 / e_star
    estimate = hypothesis @ beta
    f = float(estimate @ np.linalg.solve(hypothesis @ phi_a @ hypothesis.T, estimate)) / q
    return scale * f, m


def wald_f(hypothesis: np.ndarray, beta: np.ndarray, cov_beta: np.ndarray) -> float:
    """(L beta)'(L V L')^{-1}(L beta) / q."""
    estimate = hypothesis @ beta
    return float(estimate @ np.linalg.solve(hypothesis @ cov_beta @ hypothesis.T, estimate)) / (
        hypothesis.shape[0])


def f_p_value(f: float, num_df: int, den_df: float) -> float:
    return float(stats.f.sf(f, num_df, den_df)) if den_df > 0 else float("nan")


def type3_table(fp: FormulaProblem, fit, cov_beta: np.ndarray, df: str, method: str,
                information: str = "observed") -> pd.DataFrame:
    """The Type III table (columns ``TYPE3_COLUMNS``; ``statistic`` is F, Kenward-Roger's scaled
    F with its df methods) of a fit of ``fp`` whose inference used ``cov_beta`` and ``df``.

    Satterthwaite: F = sum_m (p_m' L beta)^2 / (q d_m) over the eigenpairs (d_m, p_m) of
    L cov(beta) L', each direction's Satterthwaite df nu_m combined by :func:`fai_cornelius_df`;
    Kenward-Roger (-linear): :func:`kenward_roger_f`; between-within: the smallest df of the
    term's columns (SAS: the between-participant df when the term is constant within
    participants); residual: N - p. Matches R lmerTest ``anova(type = 3)`` (Satterthwaite) and
    pbkrtest ``KRmodcomp`` with ``information="expected"``
    (tests/reference/mmrm_type3.R)."""
    from analysis.stats.models.mmrm.kenward import _kr_pieces, between_within_df
    from analysis.stats.models.mmrm.reml import variance_gradient

    problem = fp.problem
    rows = []
    for term, hypothesis, columns in term_hypotheses(fp):
        q = hypothesis.shape[0]
        if df == "satterthwaite":
            d, vectors = np.linalg.eigh(hypothesis @ fit.cov_beta @ hypothesis.T)
            directions = vectors.T @ hypothesis
            f = float(np.sum((directions @ fit.beta) ** 2 / d)) / q
            grad = variance_gradient(directions, fit.theta, fit.structure, problem, fit.cov_beta,
                                     fit.ws)
            nu = 2.0 * d**2 / np.einsum("mk,kl,ml->m", grad, fit.theta_cov, grad)
            den = fai_cornelius_df(nu)
        elif df.startswith("kenward"):
            phi_a, big_p, w = _kr_pieces(fit, problem, df.endswith("linear"), information)
            f, den = kenward_roger_f(fit.cov_beta, phi_a, big_p, w, hypothesis, fit.beta)
        else:
            f = wald_f(hypothesis, fit.beta, cov_beta)
            if df == "between-within":
                indicator = np.zeros(len(problem.terms))
                indicator[columns] = 1.0
                den = float(between_within_df(problem, fp.between, indicator)[0])
            else:
                den = float(problem.n_obs - len(problem.terms))
        rows.append({"term": term, "num_df": q, "den_df": den, "statistic": f,
                     "p_value": f_p_value(f, q, den), "method": method})
    return pd.DataFrame(rows, columns=TYPE3_COLUMNS)
