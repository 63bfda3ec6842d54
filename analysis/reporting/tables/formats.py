"""Pure formatters for reader-facing tables: numbers in, the text a published trial table prints out.

Conventions (CONSORT-style trial reports; Cole 2015, *Statistics in Medicine* 34:3139 on
decimals; Altman 1998, *BMJ* 317:1309 on the number needed to treat):

* p-values: ``<0.001`` below 0.001, otherwise rounded to three decimals, which is three
  significant figures for p >= 0.1 and fewer below (``0.00123`` -> ``0.001``, ``0.0123`` ->
  ``0.012``, ``0.049999`` -> ``0.050``, ``0.5`` -> ``0.500``, ``1`` -> ``1.000``). Three decimals at
  most because more digits than that claim a precision the model does not have; three significant
  figures at most because the third decimal is already the third figure above 0.1.
* an estimate with its interval: ``-4.04 (-6.28, -1.81)``; the interval's level is stated once, in
  the column header or a footnote, never per row.
* integers (counts, degrees of freedom of an OLS fit, a visit week) print as integers.
* means, SDs and estimates of an outcome get one more decimal than the data were recorded with
  (:func:`default_decimals`), unless the plan says otherwise (``outcomes[].decimals``).
* the minus sign is ASCII ``-`` so that the HTML, the Word file and the CSV say the same thing.

Every function returns ``""`` for a missing value.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

INFINITY = "\u221e"
LESS_THAN_0001 = "<0.001"


def _missing(value: object) -> bool:
    if value is None:
        return True
    try:
        return math.isnan(float(value))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False


def _fixed(value: float, decimals: int) -> str:
    text = f"{value:.{decimals}f}"
    # -0.00 reads as a sign where there is none
    if text.startswith("-") and float(text) == 0:
        text = text[1:]
    return text


def number(value: object, decimals: int) -> str:
    """``value`` with ``decimals`` decimals; integers stay integers when ``decimals`` is 0.

    Examples
    --------
    >>> number(-4.04235, 2), number(6.0, 0), number(-0.001, 2), number(float("nan"), 2)
    ('-4.04', '6', '0.00', '')
    """
    if _missing(value):
        return ""
    return _fixed(float(value), decimals)  # type: ignore[arg-type]


def is_integer(value: object, tolerance: float = 1e-9) -> bool:
    """Whether ``value`` is a whole number (``102.0`` yes, ``110.9`` no; missing no).

    Examples
    --------
    >>> is_integer(102.0), is_integer(110.9), is_integer(float("nan"))
    (True, False, False)
    """
    if _missing(value):
        return False
    x = float(value)  # type: ignore[arg-type]
    return math.isfinite(x) and abs(x - round(x)) <= tolerance * max(1.0, abs(x))


def integer(value: object) -> str:
    """A count as an integer (``57.0`` -> ``57``).

    Examples
    --------
    >>> integer(57.0), integer(None)
    ('57', '')
    """
    if _missing(value):
        return ""
    return str(int(round(float(value))))  # type: ignore[arg-type]


def degrees_of_freedom(value: object) -> str:
    """An exact df as an integer (OLS ``102``), a Satterthwaite/Kenward-Roger df with one decimal.

    Examples
    --------
    >>> degrees_of_freedom(102.0), degrees_of_freedom(110.903673)
    ('102', '110.9')
    """
    if _missing(value):
        return ""
    return integer(value) if is_integer(value) else number(value, 1)


def p_value(p: object) -> str:
    """A p-value: ``<0.001`` below 0.001, otherwise three decimals (see the module docstring).

    Examples
    --------
    >>> [p_value(p) for p in (0.0004, 0.00123, 0.0123, 0.049999, 0.05, 0.456, 1.0)]
    ['<0.001', '0.001', '0.012', '0.050', '0.050', '0.456', '1.000']
    """
    if _missing(p):
        return ""
    x = float(p)  # type: ignore[arg-type]
    if not 0.0 <= x <= 1.0:
        raise ValueError(f"a p-value must be between 0 and 1, found {x!r}")
    if x < 0.001:
        return LESS_THAN_0001
    return f"{x:.3f}"


def estimate_ci(estimate: object, low: object, high: object, decimals: int) -> str:
    """``estimate (low, high)`` with ``decimals`` decimals; the estimate alone if a limit is missing.

    Examples
    --------
    >>> estimate_ci(-4.042349, -6.280004, -1.804694, 2)
    '-4.04 (-6.28, -1.80)'
    >>> estimate_ci(0.5, None, None, 1)
    '0.5'
    """
    if _missing(estimate):
        return ""
    text = number(estimate, decimals)
    if _missing(low) or _missing(high):
        return text
    return f"{text} ({number(low, decimals)}, {number(high, decimals)})"


def mean_sd(mean: object, sd: object, decimals: int) -> str:
    """``mean (SD)``.

    Examples
    --------
    >>> mean_sd(53.3886, 7.7451, 1)
    '53.4 (7.7)'
    """
    if _missing(mean):
        return ""
    return number(mean, decimals) if _missing(sd) else f"{number(mean, decimals)} ({number(sd, decimals)})"


def median_iqr(median: object, q1: object, q3: object, decimals: int) -> str:
    """``median [Q1, Q3]``.

    Examples
    --------
    >>> median_iqr(-5.2, -7.7, -0.9, 1)
    '-5.2 [-7.7, -0.9]'
    """
    if _missing(median):
        return ""
    return f"{number(median, decimals)} [{number(q1, decimals)}, {number(q3, decimals)}]"


def n_percent(n: object, denominator: object, decimals: int = 1) -> str:
    """``n (%)``, the percentage of ``denominator``; ``n`` alone when the denominator is 0 or missing.

    Examples
    --------
    >>> n_percent(22, 60), n_percent(0, 0)
    ('22 (36.7%)', '0')
    """
    if _missing(n):
        return ""
    if _missing(denominator) or float(denominator) == 0:  # type: ignore[arg-type]
        return integer(n)
    return f"{integer(n)} ({number(100.0 * float(n) / float(denominator), decimals)}%)"  # type: ignore[arg-type]


def n_of_total(n: object, total: object, decimals: int = 1) -> str:
    """``n/N (%)``.

    Examples
    --------
    >>> n_of_total(22, 60)
    '22/60 (36.7%)'
    """
    if _missing(n) or _missing(total):
        return ""
    if float(total) == 0:  # type: ignore[arg-type]
        return f"{integer(n)}/0"
    return f"{integer(n)}/{integer(total)} ({number(100.0 * float(n) / float(total), decimals)}%)"  # type: ignore[arg-type]


def percent_ci(proportion: object, low: object, high: object, decimals: int = 1) -> str:
    """A proportion and its interval as percentages: ``36.7% (25.6, 49.3)``.

    Examples
    --------
    >>> percent_ci(0.366667, 0.256209, 0.493170)
    '36.7% (25.6, 49.3)'
    """
    if _missing(proportion):
        return ""
    text = f"{number(100.0 * float(proportion), decimals)}%"  # type: ignore[arg-type]
    if _missing(low) or _missing(high):
        return text
    return f"{text} ({number(100.0 * float(low), decimals)}, {number(100.0 * float(high), decimals)})"  # type: ignore[arg-type]


def _nnt_limit(rd: float, decimals: int) -> str:
    """One NNT value from one risk difference (benefit positive): ``NNTB 7.3``, ``NNTH 5.0``, ``∞``."""
    if rd == 0:
        return INFINITY
    return f"{'NNTB' if rd > 0 else 'NNTH'} {number(1.0 / abs(rd), decimals)}"


def nnt(rd: object, rd_low: object, rd_high: object, decimals: int = 1) -> str:
    """The number needed to treat and its interval from a risk difference, Altman (1998).

    ``rd`` is the risk difference of a good outcome (treatment minus control; positive = benefit),
    ``rd_low, rd_high`` its confidence limits. NNT = 1 / |rd|, labelled NNTB (benefit, rd > 0) or
    NNTH (harm, rd < 0); ``∞`` when rd = 0. The interval inverts and exchanges the limits of the
    interval of rd. When that interval excludes 0 it is ``NNTB 1/rd_high to 1/rd_low`` (or the NNTH
    equivalent); when it includes 0 the NNT interval is not an interval of finite numbers but runs
    from the benefit limit through infinity to the harm limit, written as Altman (1998, figure 4;
    Newcombe's reply, BMJ 1999) does: ``NNTB 1/rd_high to ∞ to NNTH 1/|rd_low|``. Never ``inf``.

    Examples
    --------
    Benefit, interval excluding 0 (rd = 0.2167, Newcombe CI 0.0450 to 0.3715):

    >>> nnt(0.216667, 0.045041, 0.371529)
    'NNTB 4.6 (NNTB 2.7 to 22.2)'

    The interval crosses 0 (rd = -0.0333, CI -0.2012 to 0.1372):

    >>> nnt(-0.033333, -0.201150, 0.137162)
    'NNTH 30.0 (NNTB 7.3 to \u221e to NNTH 5.0)'
    """
    if _missing(rd):
        return ""
    x = float(rd)  # type: ignore[arg-type]
    point = _nnt_limit(x, decimals)
    if _missing(rd_low) or _missing(rd_high):
        return point
    low, high = float(rd_low), float(rd_high)  # type: ignore[arg-type]
    if low > high:
        raise ValueError(f"the risk difference's lower limit {low!r} is above its upper limit {high!r}")
    if low > 0 or high < 0:
        # same side of zero: the limits invert and exchange (the larger |rd| gives the smaller NNT)
        near, far = (high, low) if low > 0 else (low, high)
        kind = "NNTB" if low > 0 else "NNTH"
        interval = f"{kind} {number(1.0 / abs(near), decimals)} to {number(1.0 / abs(far), decimals)}"
    elif low == 0 and high == 0:
        interval = INFINITY
    else:
        parts = [_nnt_limit(high, decimals) if high > 0 else "", INFINITY, _nnt_limit(low, decimals) if low < 0 else ""]
        interval = " to ".join(part for part in parts if part)
    return f"{point} ({interval})"


def decimals_of(values: Iterable[object], max_decimals: int = 4) -> int:
    """How many decimals the data were recorded with: the fewest ``d`` such that every finite value
    times 10**d is a whole number (to 1e-6), capped at ``max_decimals``; 0 for no values.

    Examples
    --------
    >>> decimals_of([6, 7, 3]), decimals_of([62.3, 55.0, 70.1]), decimals_of([1.25, 2.5])
    (0, 1, 2)
    """
    import numpy as np

    array = np.asarray(list(values), dtype=float)  # None reads as NaN
    finite = array[np.isfinite(array)]
    for d in range(max_decimals + 1):
        scaled = finite * 10.0**d
        if np.all(np.abs(scaled - np.round(scaled)) <= 1e-6 * np.maximum(1.0, np.abs(scaled))):
            return d
    return max_decimals


def default_decimals(values: Iterable[object]) -> int:
    """Decimals for an outcome's means, SDs and estimates: one more than the data's own (Cole 2015),
    at most 3.

    Examples
    --------
    >>> default_decimals([6, 7, 3]), default_decimals([62.3, 55.0])
    (1, 2)
    """
    return min(decimals_of(values) + 1, 3)
