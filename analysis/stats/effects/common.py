"""Shared pieces of the effect-size engine: :class:`EffectSize`, the Wald interval, Hedges' ``J``.

Owns the measure and variance-type vocabularies (``MEASURES``, ``BETWEEN_MEASURES``,
``WITHIN_MEASURES``, ``SMD_VTYPES``, ``SMC_VTYPES``), the frozen :class:`EffectSize` result, the
Wald-interval constructor ``_wald``, the exact small-sample factor :func:`hedges_j` and the pooled
SD ``_pooled_sd`` used by the between-arm and pre-post modules.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from scipy import special

from analysis.core.tidy import check_ci_level, z_quantile

SMD_VTYPES = ("LS", "LS2", "LS3", "UB", "H0")
SMC_VTYPES = ("LS", "LS2", "UB", "H0")
BETWEEN_MEASURES = ("MD", "SMD", "SMDH", "ROM")
WITHIN_MEASURES = ("MC", "SMCC", "SMCR")
MEASURES = BETWEEN_MEASURES + WITHIN_MEASURES


@dataclass(frozen=True)
class EffectSize:
    """One effect size with its sampling variance and confidence interval.

    Attributes
    ----------
    measure : str
        metafor name (``MD``, ``SMD``, ``SMDH``, ``ROM``, ``MC``, ``SMCC``, ``SMCR``) or a trialkit
        name (``cohens_d``, ``glass_delta``, ``d_ppc2``, ``pct_change_of_means`` ...).
    estimate : float
        ``yi`` in metafor's vocabulary.
    variance : float
        ``vi``: the large-sample sampling variance used for the Wald interval.
    std_error : float
        ``sei = sqrt(vi)``.
    ci_low, ci_high : float
        Confidence limits.
    ci_level : float
        Confidence level.
    method : str
        Formula, variance type and interval type, spelled out.
    note : str or None
        Why a value is missing, if one is.
    """

    measure: str
    estimate: float
    variance: float
    std_error: float
    ci_low: float
    ci_high: float
    ci_level: float
    method: str
    note: str | None = None


def _wald(
    measure: str, yi: float, vi: float, ci_level: float, method: str, note: str | None = None
) -> EffectSize:
    check_ci_level(ci_level)
    sei = math.sqrt(vi) if vi >= 0 else math.nan
    z = z_quantile(ci_level)
    return EffectSize(
        measure, float(yi), float(vi), sei, yi - z * sei, yi + z * sei, ci_level, method, note
    )


def hedges_j(df: float) -> float:
    """Exact small-sample correction ``J(m) = Gamma(m/2) / (sqrt(m/2) Gamma((m-1)/2))``.

    Matches metafor's ``.cmicalc`` (``correct=TRUE``) and effectsize's ``hedges_g``. Computed as
    the Pochhammer symbol ``Gamma(a + 1/2)/Gamma(a)``, ``a = (m-1)/2`` (``scipy.special.poch``),
    which stays accurate for large ``m`` where a difference of log-gammas would cancel.

    Examples
    --------
    >>> round(hedges_j(10), 6)  # approximation 1 - 3/(4*10 - 1) = 0.923077
    0.922746
    """
    if df <= 1:
        return math.nan
    return float(special.poch((df - 1) / 2, 0.5)) / math.sqrt(df / 2)


def _pooled_sd(n1: float, sd1: float, n2: float, sd2: float) -> float:
    return math.sqrt(((n1 - 1) * sd1**2 + (n2 - 1) * sd2**2) / (n1 + n2 - 2))
