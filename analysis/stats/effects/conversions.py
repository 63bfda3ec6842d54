"""Conversions for published summaries (Cochrane Handbook ch. 6, section 6.5.2; Wan et al. 2014).

Each function works on scalars or NumPy arrays (element-wise) and raises :class:`UsageError`
naming the argument when an input is impossible (negative SD, n < 2, |r| > 1, upper < lower).

References
----------
Higgins JPT, Li T, Deeks JJ (editors). Chapter 6: Choosing effect measures and computing estimates
of effect. Cochrane Handbook for Systematic Reviews of Interventions, version 6, section 6.5.2.
Wan X, Wang W, Liu J, Tong T (2014). Estimating the sample mean and standard deviation from the
sample size, median, range and/or interquartile range. BMC Med Res Methodol 14:135.
"""

from __future__ import annotations

import numpy as np
from scipy import special, stats

from analysis.core.errors import UsageError
from analysis.core.tidy import check_ci_level

ArrayLike = float | np.ndarray


def _arr(
    name: str, value: ArrayLike, *, minimum: float | None = None, strict: bool = False
) -> np.ndarray:
    try:
        a = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise UsageError(f"{name} must be a number or an array of numbers, got {value!r}") from None
    if not np.all(np.isfinite(a)):
        raise UsageError(f"{name} must be a finite number, got {float(a[~np.isfinite(a)].ravel()[0])!r}")
    if minimum is not None:
        bad = (a <= minimum) if strict else (a < minimum)
        if np.any(bad):
            op = ">" if strict else ">="
            raise UsageError(f"{name} must be {op} {minimum}, got {float(a[bad].ravel()[0])!r}")
    return a


def _out(a: np.ndarray) -> ArrayLike:
    if not np.all(np.isfinite(a)):
        raise UsageError("the converted value is outside the floating-point range for these inputs")
    return float(a) if a.ndim == 0 else a


def _scaled(*arrays: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    """Element-wise scale (largest magnitude, 1 where it is 0 or moderate) and the scaled arrays,
    so that squares of SDs near the float limits neither overflow nor underflow."""
    top = np.max(np.abs(np.broadcast_arrays(*arrays)), axis=0)
    scale = np.where((top > 1e150) | ((top > 0) & (top < 1e-150)), top, 1.0)
    return scale, [a / scale for a in arrays]


def sd_from_se(se: ArrayLike, n: ArrayLike) -> ArrayLike:
    """SD of a group from the standard error of its mean: ``SD = SE sqrt(n)`` (Cochrane 6.5.2.2).

    Examples
    --------
    >>> sd_from_se(2.0, 25)
    10.0
    """
    with np.errstate(over="ignore"):  # an overflow is reported by _out
        return _out(_arr("se", se, minimum=0) * np.sqrt(_arr("n", n, minimum=2)))


def sd_from_ci(
    lower: ArrayLike,
    upper: ArrayLike,
    n: ArrayLike,
    *,
    ci_level: float = 0.95,
    distribution: str = "t",
) -> ArrayLike:
    """SD of a group from a confidence interval of its mean (Cochrane 6.5.2.2).

    ``SD = sqrt(n) (upper - lower) / (2 q)`` with ``q = t_{(1+level)/2, n-1}`` (``"t"``, default;
    the Handbook's advice for small groups) or ``q = z_{(1+level)/2}`` (``"z"``: 3.92 = 2 x 1.96
    for a 95% interval).

    Examples
    --------
    >>> round(sd_from_ci(48.0, 52.0, 100, distribution="z"), 4)
    10.2043
    """
    check_ci_level(ci_level)
    lo, hi = _arr("lower", lower), _arr("upper", upper)
    if np.any(hi < lo):
        raise UsageError("upper must be >= lower")
    size = _arr("n", n, minimum=2)
    if distribution == "t":
        q = stats.t.ppf(0.5 + ci_level / 2, size - 1)
    elif distribution == "z":
        q = special.ndtri(0.5 + ci_level / 2)
    else:
        raise UsageError(f"distribution must be 't' or 'z', got {distribution!r}")
    with np.errstate(over="ignore"):  # an overflow is reported by _out
        return _out(np.sqrt(size) * (hi - lo) / (2 * q))


def _xi(n: np.ndarray) -> np.ndarray:
    xi = 2 * special.ndtri((n - 0.375) / (n + 0.25))
    # beyond n ~ 1e16 the ratio rounds to 1 (xi = inf); 1 - ratio = 0.625 / (n + 0.25) keeps it exact
    return np.where(np.isinf(xi), -2 * special.ndtri(0.625 / (n + 0.25)), xi)


def _eta(n: np.ndarray) -> np.ndarray:
    return 2 * special.ndtri((0.75 * n - 0.125) / (n + 0.25))


def sd_from_range(minimum: ArrayLike, maximum: ArrayLike, n: ArrayLike) -> ArrayLike:
    """SD from the range (Wan et al. 2014, scenario C1): ``SD = (max - min) / xi(n)``.

    ``xi(n) = 2 Phi^-1((n - 0.375) / (n + 0.25))``.

    Examples
    --------
    >>> round(sd_from_range(10.0, 50.0, 30), 4)
    9.8026
    """
    a, b = _arr("minimum", minimum), _arr("maximum", maximum)
    if np.any(b < a):
        raise UsageError("maximum must be >= minimum")
    with np.errstate(over="ignore"):  # an overflow is reported by _out
        return _out((b - a) / _xi(_arr("n", n, minimum=2)))


def sd_from_iqr(q1: ArrayLike, q3: ArrayLike, n: ArrayLike) -> ArrayLike:
    """SD from the interquartile range (Wan et al. 2014, scenario C3): ``SD = (q3 - q1) / eta(n)``.

    ``eta(n) = 2 Phi^-1((0.75 n - 0.125) / (n + 0.25))``; for large n this tends to
    ``IQR / 1.35`` (Cochrane 6.5.2.5).

    Examples
    --------
    >>> round(sd_from_iqr(20.0, 33.5, 1_000_000), 3)
    10.008
    """
    lo, hi = _arr("q1", q1), _arr("q3", q3)
    if np.any(hi < lo):
        raise UsageError("q3 must be >= q1")
    with np.errstate(over="ignore"):  # an overflow is reported by _out
        return _out((hi - lo) / _eta(_arr("n", n, minimum=2)))


def mean_from_median_iqr(q1: ArrayLike, median: ArrayLike, q3: ArrayLike) -> ArrayLike:
    """Mean from median and quartiles (Wan et al. 2014, eq. 14): ``(q1 + median + q3) / 3``.

    Examples
    --------
    >>> mean_from_median_iqr(20.0, 24.0, 31.0)
    25.0
    """
    lo, m, hi = _arr("q1", q1), _arr("median", median), _arr("q3", q3)
    if np.any((m < lo) | (hi < m)):
        raise UsageError("quartiles must satisfy q1 <= median <= q3")
    with np.errstate(over="ignore"):  # an overflow is reported by _out
        return _out((lo + m + hi) / 3)


def mean_from_median_range(minimum: ArrayLike, median: ArrayLike, maximum: ArrayLike) -> ArrayLike:
    """Mean from median and range (Wan et al. 2014 / Hozo 2005): ``(min + 2 median + max) / 4``.

    Examples
    --------
    >>> mean_from_median_range(10.0, 20.0, 50.0)
    25.0
    """
    a, m, b = _arr("minimum", minimum), _arr("median", median), _arr("maximum", maximum)
    if np.any((m < a) | (b < m)):
        raise UsageError("values must satisfy minimum <= median <= maximum")
    with np.errstate(over="ignore"):  # an overflow is reported by _out
        return _out((a + 2 * m + b) / 4)


def check_correlation(r: np.ndarray) -> np.ndarray:
    if np.any(np.abs(r) > 1):
        raise UsageError("correlation must lie in [-1, 1]")
    return r


def sd_change_from_sds(sd_baseline: ArrayLike, sd_final: ArrayLike, r: ArrayLike) -> ArrayLike:
    """SD of change from baseline (Cochrane 6.5.2.8): ``sqrt(SD_B^2 + SD_F^2 - 2 r SD_B SD_F)``.

    Examples
    --------
    >>> sd_change_from_sds(3.0, 3.0, 0.5)
    3.0
    """
    sb, sf = _arr("sd_baseline", sd_baseline, minimum=0), _arr("sd_final", sd_final, minimum=0)
    rr = check_correlation(_arr("r", r))
    scale, (b, f) = _scaled(sb, sf)
    # rounding can make the radicand a hair below 0 (r = 1, equal SDs): that is 0
    return _out(scale * np.sqrt(np.maximum(b**2 + f**2 - 2 * rr * b * f, 0.0)))


def correlation_from_sds(
    sd_baseline: ArrayLike, sd_final: ArrayLike, sd_change: ArrayLike
) -> ArrayLike:
    """Pre-post correlation back-calculated from a study reporting all three SDs (Cochrane 6.5.2.8).

    ``r = (SD_B^2 + SD_F^2 - SD_change^2) / (2 SD_B SD_F)``. A result outside [-1, 1] means the
    three SDs are inconsistent and is an error.

    Examples
    --------
    >>> round(correlation_from_sds(6.4, 7.1, 4.5), 4)
    0.7826
    """
    sb = _arr("sd_baseline", sd_baseline, minimum=0, strict=True)
    sf = _arr("sd_final", sd_final, minimum=0, strict=True)
    sc = _arr("sd_change", sd_change, minimum=0)
    _, (b, f, c) = _scaled(sb, sf, sc)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore", under="ignore"):
        r = (b**2 + f**2 - c**2) / (2 * b * f)  # SDs 1e300 orders apart: not finite, reported by _out
    if np.any(np.abs(r) > 1):
        raise UsageError(
            "the three SDs are inconsistent: the implied correlation lies outside [-1, 1]"
        )
    return _out(r)
