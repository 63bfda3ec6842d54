"""Effect sizes, metafor-exact: one engine with two entry points (arm summaries, participant data).

Arm-summary functions take ``n, mean, sd`` per arm (group 1 = treatment) and return a frozen
:class:`EffectSize`; :func:`escalc` applies them row-wise to a metafor-style frame
(``n1i, m1i, sd1i, n2i, m2i, sd2i`` or ``ni, m1i, m2i, sd1i, sd2i, ri``) and returns
``yi, vi, sei, ci_low, ci_high, note``. :func:`effect_sizes_table` computes every applicable
measure from the long analysis dataset (docs/architecture.md, contracts) into the tidy result vocabulary.

Defaults (each named in the ``method`` string of every result):

* Hedges' small-sample factor is the exact ``J(m) = Gamma(m/2) / (sqrt(m/2) Gamma((m-1)/2))``
  (metafor ``correct=TRUE``), not the approximation ``1 - 3/(4m - 1)``.
* SMD sampling variance: metafor's default ``vtype="LS"``, ``1/n1 + 1/n2 + g^2 / (2(n1+n2))``;
  ``LS2``, ``LS3``, ``UB`` and ``H0`` are selectable, with metafor's formulas.
* Confidence intervals: Wald on the sampling variance, ``yi -/+ z sqrt(vi)`` (metafor's
  ``summary.escalc``); for d and g also the noncentral-t interval of R's effectsize
  (:func:`smd_noncentral_ci`); from participant data, stratified bootstrap (:mod:`analysis.stats.effects.bootstrap`).
* ROM is the plain ``log(m1/m2)`` (metafor ``correct=FALSE``, which the reference values use).
* Morris (2008) d_ppc2 uses Morris's own ``c_p = 1 - 3/(4(nT + nC - 2) - 1)`` and his eq. 25
  variance.

Submodules:

* :mod:`~analysis.stats.effects.common`: :class:`EffectSize`, the Wald interval, :func:`hedges_j`,
  the pooled SD and the measure/vtype vocabularies (``MEASURES``, ``SMD_VTYPES`` ...).
* :mod:`~analysis.stats.effects.between_arm`: MD, SMD (g and d), Glass's delta, SMDH, ROM and
  :func:`smd_noncentral_ci`.
* :mod:`~analysis.stats.effects.prepost`: within-arm change (:func:`change_sd`, MC, SMCC, SMCR)
  and Morris's :func:`d_ppc2`.
* :mod:`~analysis.stats.effects.ratios`: percent change of means, mean of percent changes and the
  ratio of improvements (:class:`RatioResult`, Fieller CI).
* :mod:`~analysis.stats.effects.escalc_frame`: :func:`escalc`, the metafor-style frame entry point
  (``REQUIRED_COLUMNS``, ``OUTPUT_COLUMNS``, ``MISSING_TEXT``).
* :mod:`~analysis.stats.effects.participant_bootstrap`: bootstrap statistics on participant data
  (:func:`hedges_g_bootstrap`).
* :mod:`~analysis.stats.effects.trial_table`: :func:`effect_sizes_table` and
  :func:`between_arm_effects` for `trialkit run` (``BETWEEN_ARM_HEADLINE``, ``DATASET_COLUMNS``).
* :mod:`~analysis.stats.effects.reported`: one arm's mean and SD from published summaries (SE, CI,
  median with IQR or range), the rules shared by :func:`escalc` and ``summaries.convert_published``.
* :mod:`~analysis.stats.effects.bootstrap`, :mod:`~analysis.stats.effects.conversions`,
  :mod:`~analysis.stats.effects.summaries`: the bootstrap engine, summary-statistic conversions
  and the meta-analysis exports.
"""

from analysis.stats.effects.between_arm import (
    cohens_d,
    glass_delta,
    log_ratio_of_means,
    mean_difference,
    smd_heteroscedastic,
    smd_noncentral_ci,
    standardized_mean_difference,
)
from analysis.stats.effects.common import (
    BETWEEN_MEASURES,
    MEASURES,
    SMC_VTYPES,
    SMD_VTYPES,
    WITHIN_MEASURES,
    EffectSize,
    hedges_j,
)
from analysis.stats.effects.escalc_frame import (
    MISSING_TEXT,
    OUTPUT_COLUMNS,
    REQUIRED_COLUMNS,
    escalc,
)
from analysis.stats.effects.participant_bootstrap import hedges_g_bootstrap
from analysis.stats.effects.prepost import change_sd, d_ppc2, mean_change, smcc, smcr
from analysis.stats.effects.ratios import (
    RatioResult,
    mean_of_percent_changes,
    percent_change_of_means,
    ratio_of_improvements,
)
from analysis.stats.effects.trial_table import (
    BETWEEN_ARM_HEADLINE,
    DATASET_COLUMNS,
    between_arm_effects,
    effect_sizes_table,
)

__all__ = [
    "BETWEEN_ARM_HEADLINE",
    "BETWEEN_MEASURES",
    "DATASET_COLUMNS",
    "MEASURES",
    "MISSING_TEXT",
    "OUTPUT_COLUMNS",
    "REQUIRED_COLUMNS",
    "SMC_VTYPES",
    "SMD_VTYPES",
    "WITHIN_MEASURES",
    "EffectSize",
    "RatioResult",
    "between_arm_effects",
    "change_sd",
    "cohens_d",
    "d_ppc2",
    "effect_sizes_table",
    "escalc",
    "glass_delta",
    "hedges_g_bootstrap",
    "hedges_j",
    "log_ratio_of_means",
    "mean_change",
    "mean_difference",
    "mean_of_percent_changes",
    "percent_change_of_means",
    "ratio_of_improvements",
    "smcc",
    "smcr",
    "smd_heteroscedastic",
    "smd_noncentral_ci",
    "standardized_mean_difference",
]
