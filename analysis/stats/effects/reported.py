"""One arm's mean and SD from what a paper reports: the rules shared by both published-summary
entry points, :func:`analysis.stats.effects.summaries.convert_published` (one row per arm) and
``trialkit escalc`` (:func:`analysis.stats.effects.escalc`, metafor's wide layout).

The vocabulary is that of ``data/schemas/published_summaries.md``: ``n, mean, sd, se, ci_low,
ci_high, ci_level, median, q1, q3, minimum, maximum``. In escalc's wide layout each name takes
metafor's arm suffix (:func:`arm_column`): ``mean`` and ``sd`` are metafor's own ``m1i``, ``sd1i``,
the others ``se1i``, ``ci_low1i``, ``ci_high1i``, ``ci_level1i``, ``median1i``, ``q1_1i``,
``q3_1i``, ``minimum1i``, ``maximum1i`` (and ``...2i`` for group 2).

Mean and SD are chosen independently (:func:`mean_sd`), each from the first source available:

* mean: as reported; from median and quartiles, ``(q1 + median + q3) / 3``; from median and
  range, ``(min + 2 median + max) / 4`` (Wan et al. 2014);
* SD: as reported; from the SE, ``SE sqrt(n)``; from a CI of the mean,
  ``sqrt(n) (upper - lower) / (2 q)`` with ``q`` the t quantile with n - 1 df (the Cochrane
  Handbook's small-sample rule, used for every n; 3.92 = 2 x 1.96 is its large-n limit) or, on
  request, the normal quantile; from the IQR, ``(q3 - q1) / eta(n)``; from the range,
  ``(max - min) / xi(n)`` (Wan et al. 2014).

So a reported SD always wins over an SE, a CI or quantiles given beside it, and a reported mean over
a median. The formulas are those of :mod:`analysis.stats.effects.conversions`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from analysis.core.errors import UsageError
from analysis.stats.effects import conversions as convert

STEMS = ("mean", "sd", "se", "ci_low", "ci_high", "ci_level", "median", "q1", "q3", "minimum", "maximum")
SUMMARY_STEMS = STEMS[2:]  # what a paper gives instead of a mean and an SD
DISTRIBUTIONS = ("t", "z")

_SD_LABELS = {
    "se": "SD from SE (Cochrane 6.5.2.2)",
    "ci": "SD from CI, t quantile (Cochrane 6.5.2.2)",
    "ci_z": "SD from CI, normal quantile (Cochrane 6.5.2.2)",
    "iqr": "SD from IQR (Wan et al. 2014)",
    "range": "SD from range (Wan et al. 2014)",
}
_MEAN_LABELS = {
    "iqr": "mean from median and IQR (Wan et al. 2014)",
    "range": "mean from median and range (Wan et al. 2014)",
}
_BOTH_LABELS = {
    "iqr": "mean and SD from median and IQR (Wan et al. 2014)",
    "range": "mean and SD from median and range (Wan et al. 2014)",
}
_MEAN_STEMS = {"reported": ("mean",), "iqr": ("median", "q1", "q3"), "range": ("median", "minimum", "maximum")}
_SD_STEMS = {"reported": ("sd",), "se": ("se",), "ci": ("ci_low", "ci_high", "ci_level"), "iqr": ("q1", "q3"),
             "range": ("minimum", "maximum")}


def arm_column(stem: str, slot: int) -> str:
    """The escalc (metafor-style) column of a summary for group ``slot`` (1 or 2).

    Examples
    --------
    >>> [arm_column(s, 1) for s in ("mean", "sd", "se", "ci_low", "median", "q1", "minimum")]
    ['m1i', 'sd1i', 'se1i', 'ci_low1i', 'median1i', 'q1_1i', 'minimum1i']
    """
    base = "m" if stem == "mean" else stem
    return f"{base}{'_' if base[-1].isdigit() else ''}{slot}i"


@dataclass(frozen=True)
class ArmMeanSd:
    """One arm's mean and SD and where they came from.

    ``mean_from`` is ``"reported"``, ``"iqr"`` or ``"range"``; ``sd_from`` is ``"reported"``,
    ``"se"``, ``"ci"``, ``"iqr"`` or ``"range"`` (``None``: not available). ``unused`` lists the
    given summaries that were not used (a source earlier in the order won, or a partner is
    missing: ``ci_low`` without ``ci_high``, ``q1`` without ``q3``, ...).
    """

    mean: float
    sd: float
    mean_from: str | None
    sd_from: str | None
    ci_level: float
    distribution: str
    unused: tuple[str, ...]

    @property
    def conversion(self) -> str:
        """How mean and SD were obtained, e.g. ``"SD from SE (Cochrane 6.5.2.2)"`` or ``"reported"``."""
        return conversion_label(self.mean_from, self.sd_from, self.distribution)


def conversion_label(mean_from: str | None, sd_from: str | None, distribution: str = "t") -> str:
    """The words for a pair of sources (``""`` when neither mean nor SD was found).

    Examples
    --------
    >>> conversion_label("reported", "se")
    'SD from SE (Cochrane 6.5.2.2)'
    >>> conversion_label("iqr", "reported")
    'mean from median and IQR (Wan et al. 2014); SD reported'
    """
    if mean_from == sd_from and mean_from in _BOTH_LABELS:
        return _BOTH_LABELS[mean_from]
    if mean_from == sd_from == "reported":
        return "reported"
    sd_key = "ci_z" if sd_from == "ci" and distribution == "z" else sd_from
    parts = [_MEAN_LABELS[mean_from] if mean_from in _MEAN_LABELS else ("mean reported" if mean_from else "")]
    parts.append(_SD_LABELS[sd_key] if sd_key in _SD_LABELS else ("SD reported" if sd_from else ""))
    if mean_from == "reported" and sd_key in _SD_LABELS:
        return parts[1]  # the mean as reported goes without saying, as in convert_published's labels
    return "; ".join(p for p in parts if p)


def _given(cells: Mapping[str, float], stem: str) -> bool:
    value = cells.get(stem)
    return value is not None and math.isfinite(value)


def mean_sd(n: float, cells: Mapping[str, float], *, ci_level: float = 0.95, distribution: str = "t") -> ArmMeanSd:
    """One arm's mean and SD from the summaries given (missing ones absent or NaN).

    ``cells`` maps the stems of :data:`STEMS` to numbers; a ``ci_level`` cell overrides the
    ``ci_level`` argument for this arm. SD conversions need ``n`` (>= 2); without it the SD is NaN
    unless reported. The inputs must already be checked (:func:`problems`): impossible values
    raise :class:`UsageError` from the conversion functions.

    Examples
    --------
    >>> r = mean_sd(25, {"mean": 4.0, "se": 0.5})
    >>> (r.mean, r.sd, r.conversion)
    (4.0, 2.5, 'SD from SE (Cochrane 6.5.2.2)')
    >>> r = mean_sd(30, {"median": 20.0, "minimum": 10.0, "maximum": 50.0})
    >>> (r.mean, round(r.sd, 4), r.conversion)
    (25.0, 9.8026, 'mean and SD from median and range (Wan et al. 2014)')
    """
    if distribution not in DISTRIBUTIONS:
        raise UsageError(f"the quantile of a reported CI must be 't' or 'z', got {distribution!r}")
    has = {stem: _given(cells, stem) for stem in STEMS}
    level = float(cells["ci_level"]) if has["ci_level"] else ci_level
    sized = math.isfinite(n) and n >= 2
    mean, mean_from = math.nan, None
    if has["mean"]:
        mean, mean_from = float(cells["mean"]), "reported"
    elif has["median"] and has["q1"] and has["q3"]:
        mean, mean_from = float(convert.mean_from_median_iqr(cells["q1"], cells["median"], cells["q3"])), "iqr"
    elif has["median"] and has["minimum"] and has["maximum"]:
        mean, mean_from = float(convert.mean_from_median_range(cells["minimum"], cells["median"], cells["maximum"])), "range"
    sd, sd_from = math.nan, None
    if has["sd"]:
        sd, sd_from = float(cells["sd"]), "reported"
    elif has["se"] and sized:
        sd, sd_from = float(convert.sd_from_se(cells["se"], n)), "se"
    elif has["ci_low"] and has["ci_high"] and sized:
        sd = float(convert.sd_from_ci(cells["ci_low"], cells["ci_high"], n, ci_level=level, distribution=distribution))
        sd_from = "ci"
    elif has["q1"] and has["q3"] and sized:
        sd, sd_from = float(convert.sd_from_iqr(cells["q1"], cells["q3"], n)), "iqr"
    elif has["minimum"] and has["maximum"] and sized:
        sd, sd_from = float(convert.sd_from_range(cells["minimum"], cells["maximum"], n)), "range"
    used = set(_MEAN_STEMS.get(mean_from or "", ())) | set(_SD_STEMS.get(sd_from or "", ()))
    unused = tuple(stem for stem in STEMS if has[stem] and stem not in used)
    return ArmMeanSd(mean, sd, mean_from, sd_from, level, distribution, unused)


def problems(cells: Mapping[str, float]) -> list[tuple[str, str]]:
    """Impossible summaries of one arm as ``(stem, rule)`` pairs, ``{stem}`` in each rule standing for
    another stem's column name (callers format it): a negative SE, a CI or quantiles out of order,
    a confidence level outside (0, 1).

    Examples
    --------
    >>> problems({"q1": 5.0, "median": 4.0, "q3": 6.0, "se": -1.0})
    [('se', 'SE must be >= 0'), ('median', 'must be >= {q1}')]
    """
    has = {stem: _given(cells, stem) for stem in STEMS}
    found = []
    if has["se"] and cells["se"] < 0:
        found.append(("se", "SE must be >= 0"))
    if has["ci_level"] and not 0 < cells["ci_level"] < 1:
        found.append(("ci_level", "confidence level must be strictly between 0 and 1"))
    for low, high in (("ci_low", "ci_high"), ("q1", "median"), ("median", "q3"), ("q1", "q3"),
                      ("minimum", "median"), ("median", "maximum"), ("minimum", "maximum")):
        if has[low] and has[high] and cells[high] < cells[low]:
            if (low, high) in (("q1", "q3"), ("minimum", "maximum")) and has["median"]:
                continue  # already reported against the median
            found.append((high, f"must be >= {{{low}}}"))
    return found


_LONE = {"ci_low": ("ci_high",), "ci_high": ("ci_low",), "q1": ("q3",), "q3": ("q1",), "minimum": ("maximum",),
         "maximum": ("minimum",), "ci_level": ("ci_low", "ci_high")}


def notes(result: ArmMeanSd, n: float, column) -> list[str]:
    """Plain-words notes on one arm's conversion, columns named by ``column(stem)``: which given
    summaries were not used and why, and the level and quantile of a CI turned into an SD.

    Examples
    --------
    >>> r = mean_sd(16, {"mean": 10.0, "sd": 2.0, "se": 0.5})
    >>> notes(r, 16, lambda stem: arm_column(stem, 1))
    ['sd1i given, so se1i not used']
    """
    said = []
    lone = [s for s in result.unused if s in _LONE and not any(p in result.unused for p in _LONE[s])]
    if "median" in result.unused and result.mean_from != "reported":
        lone.append("median")
    for stem in lone:
        partners = " and ".join(column(p) for p in _LONE.get(stem, ())) or (
            f"{column('q1')} and {column('q3')} or {column('minimum')} and {column('maximum')}")
        said.append(f"{column(stem)} not used without {partners}")
    if "median" in result.unused and result.mean_from == "reported":
        said.append(f"{column('mean')} given, so {column('median')} not used")
    rest = [s for s in result.unused if s not in lone and s != "median"]
    if rest:
        cols = ", ".join(column(s) for s in rest)
        if result.sd_from == "reported":
            said.append(f"{column('sd')} given, so {cols} not used")
        elif result.sd_from is not None:
            source = column(_SD_STEMS[result.sd_from][0])
            said.append(f"{column('sd')} from {source}, so {cols} not used")
        else:
            said.append(f"{cols} not used")
    if result.sd_from == "ci":
        quantile = f"t quantile with {n - 1:g} df" if result.distribution == "t" else "normal quantile"
        said.append(f"{column('sd')} from a {100 * result.ci_level:g}% CI of the mean, {quantile}")
    return said
