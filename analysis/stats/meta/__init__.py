"""Meta-analysis of per-study effect sizes: fixed effect and random effects (REML, DL, PM, ML).

The model is metafor's ``rma.uni`` without moderators: ``y_i = mu + u_i + e_i`` with
``e_i ~ N(0, v_i)`` (``v_i`` known) and ``u_i ~ N(0, tau^2)`` (``tau^2 = 0`` for the fixed-effect
model). Given ``tau^2``, the pooled estimate is the inverse-variance mean with weights
``w_i = 1 / (v_i + tau^2)``; that step and Cochran's Q come from statsmodels'
:func:`statsmodels.stats.meta_analysis.combine_effects` (its fixed-effect part applied to the
variances ``v_i + tau^2``), as does the DerSimonian-Laird ``tau^2``. REML and ML, which statsmodels
does not offer, Paule-Mandel (statsmodels' iteration can return 0 near convergence, see
:func:`estimate_tau2`) and the Q-profile confidence interval for ``tau^2`` are solved here.

Every number matches metafor 4 (``rma``, ``predict``, ``confint``) as documented in the functions
below; ``tests/test_meta.py`` compares against ``tests/reference/normand1999_ref.json``.

The tidy table (:func:`meta_table`) stacks one row per study (``type = "study"``), one summary row
(``type = "summary"``) and one row of heterogeneity statistics (``type = "heterogeneity"``) in the
fixed columns :data:`META_COLUMNS`.

The code is in :mod:`analysis.stats.meta.tau2` (``tau^2`` estimators, Q-profile CI),
:mod:`analysis.stats.meta.pooling` (the fit), :mod:`analysis.stats.meta.tables` (the tidy table)
and :mod:`analysis.stats.meta.inputs` (effects tables); this module re-exports their public names.
"""

from analysis.stats.meta.inputs import (
    ARM_COLUMNS,
    EFFECT_COLUMNS,
    effects_from_table,
    meta_analyse,
)
from analysis.stats.meta.pooling import (
    TESTS,
    MetaResult,
    Test,
    leave_one_out,
    pool,
)
from analysis.stats.meta.tables import (
    META_COLUMNS,
    RATIO_MEASURES,
    describe_heterogeneity,
    meta_table,
)
from analysis.stats.meta.tau2 import (
    METHOD_NAMES,
    METHODS,
    Method,
    estimate_tau2,
    generalized_q,
    log_likelihood,
    tau2_confint,
)

__all__ = [
    "ARM_COLUMNS",
    "EFFECT_COLUMNS",
    "META_COLUMNS",
    "METHODS",
    "METHOD_NAMES",
    "MetaResult",
    "Method",
    "RATIO_MEASURES",
    "TESTS",
    "Test",
    "describe_heterogeneity",
    "effects_from_table",
    "estimate_tau2",
    "generalized_q",
    "leave_one_out",
    "log_likelihood",
    "meta_analyse",
    "meta_table",
    "pool",
    "tau2_confint",
]
