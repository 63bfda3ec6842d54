"""The random-intercept linear mixed model offered as a named sensitivity model (statsmodels
``MixedLM``, REML; not an MMRM): :func:`fit_random_intercept` and
:class:`RandomInterceptResult`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
import pandas as pd

from analysis.core.errors import ModelError
from analysis.core.tidy import check_ci_level
from analysis.stats.models.mmrm.covariance import covariance_matrix
from analysis.stats.models.mmrm.design import build_problem
from analysis.stats.models.mmrm.inference import inference_tables
from analysis.stats.models.mmrm.reml import (
    NotPositiveDefinite,
    StructureFit,
    gls_pieces,
    observed_information,
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
    problem = build_problem(
        data, response=response, subject=subject, arm=arm, visit=visit, baseline=baseline,
        covariates=covariates, visit_order=visit_order, treatment=treatment, control=control,
        baseline_by_visit=baseline_by_visit,
    )
    model = MixedLM(problem.y, problem.x, groups=problem.subject_codes,
                    exog_re=np.ones((problem.n_obs, 1)))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = None
        # L-BFGS-B can step onto a singular intercept variance (LinAlgError); the gradient methods
        # then start afresh. Each statsmodels optimiser is bounded by its own iteration limit.
        for methods in (["lbfgs", "bfgs", "cg"], ["bfgs", "cg"]):
            try:
                result = model.fit(reml=True, method=methods, gtol=1e-8)
                break
            except (np.linalg.LinAlgError, ValueError):
                continue
    if result is None:
        raise ModelError("the random-intercept model (statsmodels MixedLM, REML) failed: the optimiser "
                         "reached a singular covariance matrix.")
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
    sigma = covariance_matrix("random_intercept", theta, t)
    try:
        m2ll, beta, a_inv, ws = gls_pieces(sigma, problem)
        info = observed_information(theta, "random_intercept", problem)
        theta_cov = np.linalg.inv(info)
    except (NotPositiveDefinite, np.linalg.LinAlgError):
        raise ModelError("the random-intercept model's covariance or REML information matrix is "
                         "singular at the estimate; use the MMRM or an ordinary ANCOVA instead.") from None
    fit = StructureFit(structure="random_intercept", theta=theta, sigma=sigma, beta=beta,
               cov_beta=a_inv, reml_loglik=-0.5 * m2ll, theta_cov=theta_cov, ws=ws,
               iterations=0)
    method = "Random-intercept LMM (sensitivity), REML, Satterthwaite df"
    contrasts, lsmeans = inference_tables(fit, problem, float(ci_level), method, None)
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
