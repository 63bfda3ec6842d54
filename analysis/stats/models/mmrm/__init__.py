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
(analytic) map :math:`\\theta \\mapsto \\Sigma` (exact to rounding error), or for the
unstructured :math:`\\Sigma = LL'` in closed form,
:math:`\\partial F/\\partial L = (D + D')L` with :math:`D = \\partial F/\\partial\\Sigma`.

The optimiser is Newton's method under the observed information (central differences of the
analytic gradient, the 2k gradients evaluated in one stacked call) from the pairwise moment
estimate of :math:`\\Sigma`; BFGS takes over when the information is not positive definite far
from the optimum. Once the Newton decrement :math:`\\tfrac12 g'H^{-1}g` is below 1e-10 one more
Newton step is taken, so the estimate is the maximiser to rounding error.

Covariance structures (``theta`` unconstrained, so any quasi-Newton optimiser applies):

* ``unstructured``: :math:`\\Sigma = LL'`, L lower-triangular with log-diagonal, T(T+1)/2
  parameters (R: ``corSymm`` + ``varIdent``, or ``mmrm::us``);
* ``compound_symmetry``: :math:`\\sigma^2[(1-\\rho)I + \\rho J]`,
  :math:`-1/(T-1) < \\rho < 1` (``mmrm::cs``);
* ``ar1``: :math:`\\sigma^2 \\rho^{|j-k|}` over visit positions (``mmrm::ar1``);
* ``toeplitz``: :math:`\\sigma^2 \\rho_{|j-k|}`, the correlations parameterised by their partial
  autocorrelations (``tanh``) so that every value is positive definite (``mmrm::toep``);
* heterogeneous variants ``cs_heterogeneous`` (csh), ``ar1_heterogeneous`` (ar1h),
  ``toeplitz_heterogeneous`` (toeph): :math:`D R D` with one log-variance per visit in D;
* ``antedependence`` (ad) / ``antedependence_heterogeneous`` (adh, SAS ANTE(1)):
  :math:`\\operatorname{corr}(j,k) = \\prod_{l=j}^{k-1} \\tanh\\theta_l`;
* ``spatial_exponential`` (sp_exp): :math:`\\sigma^2 \\rho^{|t_j - t_k|}`, logistic rho, numeric
  times (SAS ``SP(EXP)`` with :math:`\\rho = e^{-1/\\phi}`): the formula's time variable, or
  in the trial model ``visit_times`` (the plan's follow-up ``time``), default 0, 1, 2, ...;
  every structure also per group (``STRUCT(TIME | GROUP / SUBJECT)``).

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
The other structures (REML, ML, per group) against nlme::gls (mmrm_structures.R, mmrm_grouped.R),
Kenward-Roger against pbkrtest and SAS PROC MIXED (sas_kr_fev.md), the empirical covariance
against clubSandwich's CR0 (mmrm_sandwich.R), all in tests/reference/.

A random-intercept linear mixed model (statsmodels ``MixedLM``, REML; R ``nlme::lme``) is offered
as a named sensitivity model by :func:`fit_random_intercept`; it is not an MMRM.

Submodules
----------
* :mod:`~analysis.stats.models.mmrm.covariance`: the covariance structures (theta -> Sigma, its
  Jacobian, parameter counts, starting values, labels);
* :mod:`~analysis.stats.models.mmrm.design`: building the problem from the long frame (checks,
  visit order, design matrix, LS-mean grid, missingness patterns and their sufficient statistics);
* :mod:`~analysis.stats.models.mmrm.reml`: the REML objective, its gradient and information, and
  the optimiser (Newton steps under the observed information, converged to rounding error) with
  its identifiability and convergence checks;
* :mod:`~analysis.stats.models.mmrm.stacked`: the objective and gradient for a stack of parameter
  vectors at once (the patterns padded to T x T; one batched LAPACK call for all of them);
* :mod:`~analysis.stats.models.mmrm.inference`: Satterthwaite df, LS-means and treatment contrasts;
* :mod:`~analysis.stats.models.mmrm.fit`: :func:`fit_mmrm` and :class:`MmrmResult`;
* :mod:`~analysis.stats.models.mmrm.formula`, :mod:`~analysis.stats.models.mmrm.formula_fit`:
  the R ``mmrm`` formula interface (``fit_mmrm(formula, data, ...)``; fixed effects by
  ``formulaic``), LS-means on emmeans' reference grid, the tidy table;
* :mod:`~analysis.stats.models.mmrm.kenward`: Kenward-Roger (and -linear) in SAS's covariance
  parameterisation, between-within and residual df, the empirical (sandwich) covariance;
* :mod:`~analysis.stats.models.mmrm.type3`: Type III F tests of the terms (``type3=True``);
* :mod:`~analysis.stats.models.mmrm.random_intercept`: :func:`fit_random_intercept` and
  :class:`RandomInterceptResult`;
* :mod:`~analysis.stats.models.mmrm.partitioned`: the trial MMRM from per-partition pattern
  statistics, merged (the Dask engine's MMRM).
"""

from analysis.stats.models.mmrm.covariance import STRUCTURES, Covariance, Structure
from analysis.stats.models.mmrm.fit import MmrmResult, fit_mmrm, fit_trial_mmrm
from analysis.stats.models.mmrm.formula_fit import MmrmFit, fit_mmrm_formula
from analysis.stats.models.mmrm.random_intercept import RandomInterceptResult, fit_random_intercept

__all__ = [
    "STRUCTURES",
    "Covariance",
    "MmrmFit",
    "MmrmResult",
    "RandomInterceptResult",
    "Structure",
    "fit_mmrm",
    "fit_mmrm_formula",
    "fit_random_intercept",
    "fit_trial_mmrm",
]
