"""Shared pieces of the effect-size engine: :class:`EffectSize`, the Wald interval, Hedges' ``J``.

Owns the measure and variance-type vocabularies (``MEASURES``, ``BETWEEN_MEASURES``,
``WITHIN_MEASURES``, ``SMD_VTYPES``, ``SMC_VTYPES``), the frozen :class:`EffectSize` result, the
Wald-interval constructor ``wald_effect``, the exact small-sample factor :func:`hedges_j` and the pooled
SD ``pooled_sd_of_arms`` used by the between-arm and pre-post modules.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
from scipy import special

from analysis.core.errors import UsageError
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


def wald_effect(
    measure: str, yi: float, vi: float, ci_level: float, method: str, note: str | None = None
) -> EffectSize:
    """``yi -/+ z sqrt(vi)``; a non-finite estimate or variance gives NaN with a ``note`` saying why."""
    check_ci_level(ci_level)
    if not math.isfinite(yi):
        return not_estimable(
            measure, ci_level, method,
            note or "not computed: the estimate is not a finite number (outside the floating-point range)",
        )
    sei = math.sqrt(vi) if vi >= 0 else math.nan
    z = z_quantile(ci_level)
    low, high = yi - z * sei, yi + z * sei
    if note is None:
        if math.isnan(vi):
            note = "the sampling variance is not defined for these sample sizes: no interval"
        elif vi < 0:
            note = "the sampling variance formula is negative for these inputs: no interval"
        elif math.isinf(vi) or not (math.isfinite(low) and math.isfinite(high)):
            note = "the sampling variance is outside the floating-point range (overflow): no interval"
        elif vi == 0:
            note = "the sampling variance is 0 (no variation in the data): the interval has zero width"
    if not (math.isfinite(low) and math.isfinite(high)):
        low = high = math.nan
    if not math.isfinite(vi):  # infinite either way: no usable variance (the note says why)
        sei = vi = math.nan
    return EffectSize(measure, float(yi), float(vi), sei, low, high, ci_level, method, note)


def not_estimable(measure: str, ci_level: float, method: str, note: str) -> EffectSize:
    """An :class:`EffectSize` whose numbers are all NaN, with ``note`` saying why."""
    nan = math.nan
    return EffectSize(measure, nan, nan, nan, nan, nan, ci_level, method, note)


def input_problem(**values: float) -> str | None:
    """Check arm summaries: a note when one is not a finite number, else None.

    Names starting with ``n`` are sample sizes (must be >= 1), with ``sd`` or ``se`` standard
    deviations or errors (must be >= 0); an impossible value raises :class:`UsageError` naming
    the argument.
    """
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
            raise UsageError(f"{name} must be a number, got {value!r}")
        if not math.isfinite(value):
            return f"not computed: {name} is {float(value)!r}, not a finite number"
        if name.startswith("n") and value < 1:
            raise UsageError(f"{name} (a sample size) must be >= 1, got {value!r}")
        if name.startswith(("sd", "se")) and value < 0:
            kind = "a standard deviation" if name.startswith("sd") else "a standard error"
            raise UsageError(f"{name} ({kind}) must be >= 0, got {value!r}")
    return None


def square(x: float) -> float:
    """``x**2`` (Python or NumPy float, computed as before), ``inf`` when it overflows."""
    try:
        with np.errstate(over="ignore"):
            return x**2
    except OverflowError:
        return math.inf


def overflow_checked(function):
    """Run an arm-summary estimator with NumPy's overflow warnings off.

    The estimators take Python or NumPy floats; with values near the float limits a difference or
    a square can overflow. No such value is returned as it is: :func:`wald_effect`, :func:`not_estimable`
    and the explicit checks of each estimator turn a result outside the floating-point range into
    NaN with a ``note`` saying so, so NumPy's warning would only repeat it to the user.
    """

    @functools.wraps(function)
    def checked(*args, **kwargs):
        with np.errstate(over="ignore", invalid="ignore"):
            return function(*args, **kwargs)

    return checked


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
    if math.isnan(df) or df <= 1:
        return math.nan
    if math.isinf(df):
        return 1.0
    return min(1.0, float(special.poch((df - 1) / 2, 0.5)) / math.sqrt(df / 2))  # J < 1; rounding at df ~ 1e308


def pooled_sd_of_arms(n1: float, sd1: float, n2: float, sd2: float) -> float:
    """``sqrt(((n1-1) sd1^2 + (n2-1) sd2^2) / (n1+n2-2))``; NaN when ``n1 + n2 <= 2``.

    SDs whose squares overflow or underflow (1e300, 1e-300) are rescaled by the larger SD first,
    so the result is exact wherever it is representable.
    """
    if not n1 + n2 - 2 > 0:
        return math.nan
    value = math.sqrt(((n1 - 1) * square(sd1) + (n2 - 1) * square(sd2)) / (n1 + n2 - 2))
    scale = max(sd1, sd2)
    if (value == 0 or math.isinf(value)) and 0 < scale < math.inf:
        a, b = sd1 / scale, sd2 / scale
        value = scale * math.sqrt(((n1 - 1) * a * a + (n2 - 1) * b * b) / (n1 + n2 - 2))
    return value
