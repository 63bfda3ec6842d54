"""The public MMRM entry point: :func:`fit_mmrm` (structure and fallback handling) and its
result, :class:`MmrmResult`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
import pandas as pd

from analysis.core.errors import ModelError, UsageError
from analysis.core.limits import Deadline
from analysis.core.tidy import check_ci_level
from analysis.stats.models.mmrm.covariance import (
    STRUCTURE_LABEL,
    STRUCTURES,
    Covariance,
    Structure,
    as_covariance,
    structure_name,
)
from analysis.stats.models.mmrm.design import Problem, build_problem
from analysis.stats.models.mmrm.inference import inference_tables
from analysis.stats.models.mmrm.reml import fit_structure

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


def fit_mmrm(data, formula_data: pd.DataFrame | None = None, /, **options):
    """Fit an MMRM, two ways.

    * ``fit_mmrm(formula, data, df=..., ml=..., vcov=..., emmeans=..., reference=...,
      visit_order=..., ci_level=...)``: R mmrm syntax, any fixed effects and covariance
      structure (:func:`~analysis.stats.models.mmrm.formula_fit.fit_mmrm_formula`, returns
      :class:`~analysis.stats.models.mmrm.formula_fit.MmrmFit`);
    * ``fit_mmrm(long_frame, response=..., arm=..., ...)``: the two-arm trial model
      (:func:`fit_trial_mmrm`, returns :class:`MmrmResult`).

    Parameters
    ----------
    data
        The formula (a string), or the long analysis frame for the trial model.
    formula_data
        With a formula: the long data frame, one row per subject x time.
    **options
        The keyword options of the function the call goes to (misspelled names are refused).

    Returns
    -------
    MmrmFit or MmrmResult
        With a formula, ``.table`` holds the tidy rows (``type`` coefficient, lsmean, contrast,
        covariance, fit).

    Examples
    --------
    With complete, balanced data and an unstructured covariance, the LS-mean difference at each
    visit is the difference of the arm means and its SE the two-sample one, with n - 2 df:

    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(1)
    >>> rows = []
    >>> for i in range(40):
    ...     arm = "TRT" if i % 2 else "PBO"
    ...     b = rng.normal()
    ...     for v, visit in enumerate(["V1", "V2", "V3"]):
    ...         rows.append({"USUBJID": f"S{i:02d}", "ARMCD": arm, "AVISIT": visit,
    ...                      "FEV1": 2 + 0.3 * v + (0.5 * v if arm == "TRT" else 0) + b + rng.normal(scale=0.5)})
    >>> fit = fit_mmrm("FEV1 ~ ARMCD * AVISIT + us(AVISIT | USUBJID)", pd.DataFrame(rows),
    ...                emmeans="ARMCD | AVISIT", reference="PBO")
    >>> fit.rows("contrast")[["visit", "contrast", "estimate", "std_error", "df"]].round(3)
      visit   contrast  estimate  std_error    df
    0    V1  TRT - PBO     0.020      0.345  38.0
    1    V2  TRT - PBO     0.690      0.312  38.0
    2    V3  TRT - PBO     0.965      0.332  38.0
    """
    if isinstance(data, str):
        from analysis.stats.models.mmrm.formula_fit import fit_mmrm_formula

        return fit_mmrm_formula(data, formula_data, **options)
    if formula_data is not None:
        raise UsageError("fit_mmrm(formula, data, ...): the formula comes first, as a string.")
    return fit_trial_mmrm(data, **options)


def fit_trial_mmrm(
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
    df: str = "satterthwaite",
    by_visit: Sequence[str] = (),
    visit_times: Sequence[float] | None = None,
) -> MmrmResult:
    """Fit an MMRM by REML and return per-visit treatment contrasts and LS-means.

    Model: ``response ~ baseline + covariates + arm + visit + arm:visit`` (``+ baseline:visit``
    when ``baseline_by_visit``), a ``covariance``-structured within-participant covariance across
    visits, REML; formulas in the package docstring.

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
    df
        Degrees of freedom of the LS-means and contrasts: ``"satterthwaite"`` (default),
        ``"kenward-roger"`` / ``"kenward-roger-linear"`` (these also adjust the SEs),
        ``"between-within"`` or ``"residual"``
        (:mod:`~analysis.stats.models.mmrm.kenward`).
    by_visit
        Numeric covariates (or the baseline) given one slope per visit (``x:visit`` terms);
        ``baseline_by_visit=True`` is ``by_visit=[baseline]``.
    visit_times
        The time of each visit of ``visit_order`` (e.g. weeks since baseline), the distances of
        ``spatial_exponential`` (SAS ``SP(EXP)``): :math:`\\sigma^2 \\rho^{|t_j - t_k|}`.
        Default 0, 1, 2, ... (equally spaced visits). Other structures do not use it; the
        plan's MMRM passes the follow-up visits' ``time``.

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
    whose rounding error is of that size on these data; ours are exact (package docstring).

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
    covariance, fallback, df = fit_options(covariance, fallback, ci_level, max_iterations, df)
    if visit_times is not None and visit_order is None:
        raise UsageError("visit_times gives the time of each visit of visit_order; give both.")
    problem = build_problem(
        data, response=response, subject=subject, arm=arm, visit=visit, baseline=baseline,
        covariates=covariates, visit_order=visit_order, treatment=treatment, control=control,
        baseline_by_visit=baseline_by_visit, by_visit=by_visit,
    )
    return fit_problem(problem, covariance, fallback, float(ci_level), int(max_iterations), df,
                       visit_times)


def fit_options(covariance, fallback, ci_level, max_iterations, df) -> tuple[str, list[str], str]:
    """The checked covariance structure, fallbacks and df method of :func:`fit_trial_mmrm`."""
    try:
        covariance = structure_name(covariance)
        fallback = [structure_name(name) for name in fallback]
    except ValueError as error:
        raise UsageError(f"unknown covariance structure {str(error)!r}; choose from {STRUCTURES}.") from None
    check_ci_level(ci_level)
    from analysis.stats.models.mmrm.formula_fit import DF_METHODS

    df = str(df).lower()
    if df not in DF_METHODS:
        raise UsageError(f"unknown df method {df!r}; choose from {', '.join(DF_METHODS)}.")
    if int(max_iterations) < 1:
        raise UsageError(f"max_iterations must be at least 1, not {max_iterations!r}.")
    return covariance, fallback, df


def _spatial_times(visit_times: Sequence[float] | None, visits: Sequence[str],
                   ) -> tuple[float, ...] | None:
    if visit_times is None:
        return None
    times = tuple(float(t) for t in visit_times)
    if len(times) != len(visits) or not all(np.isfinite(times)) or len(set(times)) != len(times):
        raise UsageError(f"visit_times must give a distinct finite time to each of the visits "
                         f"{list(visits)}, not {list(visit_times)}.")
    return times


def fit_problem(problem: Problem, covariance: str, fallback: list[str], ci_level: float,
                max_iterations: int, df: str,
                visit_times: Sequence[float] | None = None) -> MmrmResult:
    """Fit a built problem (options checked by :func:`fit_options`): the structure, then the
    fallbacks in order, within one time limit; the inference tables. ``visit_times`` are the
    spatial structure's visit times (default 0, 1, 2, ...)."""
    treatment, control = problem.arm_labels
    times = _spatial_times(visit_times, problem.visits)
    failures: list[str] = []
    fit = None
    # one time limit for the whole fit, fallbacks included
    deadline = Deadline("the MMRM fit", ModelError, "try a simpler covariance structure")
    for structure in dict.fromkeys([covariance, *fallback]):
        try:
            spec = (Covariance(structure, times=times)
                    if structure == "spatial_exponential" and times is not None else structure)
            fit = fit_structure(spec, problem, int(max_iterations), deadline=deadline)
            break
        except ModelError as error:
            failures.append(str(error))
    if fit is None:
        if len(failures) == 1:
            raise ModelError(failures[0])
        raise ModelError("no covariance structure could be fitted: " + " ".join(
            f"({k + 1}) {message}" for k, message in enumerate(failures)))
    reason = " ".join(failures) if failures else None
    fitted = as_covariance(fit.structure).kind
    label = STRUCTURE_LABEL[fitted]
    df_label = {"satterthwaite": "Satterthwaite", "kenward-roger": "Kenward-Roger",
                "kenward-roger-linear": "Kenward-Roger (linear)",
                "between-within": "between-within", "residual": "residual"}[df]
    method = f"MMRM, {label} covariance, REML, {df_label} df"
    note = (f"fallback from {STRUCTURE_LABEL[covariance]} covariance: {reason}"
            if reason else None)
    contrasts, lsmeans = inference_tables(fit, problem, float(ci_level), method, note, df)
    return MmrmResult(
        terms=tuple(problem.terms), estimates=fit.beta, std_errors=np.sqrt(np.diag(fit.cov_beta)),
        cov_beta=fit.cov_beta,
        covariance=pd.DataFrame(fit.sigma, index=problem.visits, columns=problem.visits),
        covariance_structure=fitted, requested_structure=covariance,
        fallback_reason=reason, reml_loglik=fit.reml_loglik, converged=True,
        iterations=fit.iterations, method=method, visits=tuple(problem.visits),
        contrasts=contrasts, lsmeans=lsmeans, n_participants=problem.n_participants,
        n_treatment=problem.n_by_arm[treatment], n_control=problem.n_by_arm[control],
        n_obs=problem.n_obs, n_dropped_missing=problem.n_dropped_missing,
        n_dropped_covariate=problem.n_dropped_covariate,
    )
