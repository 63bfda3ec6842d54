"""Single case (part 5 of :mod:`analysis.replicate`): percent of lost range restored against the MDC."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from analysis.core.errors import UsageError
from analysis.plan.published import PublishedCase
from analysis.replicate.claims import assumption_values

# --------------------------------------------------------------------------------------------
# Single case
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CaseResult:
    """Percent of lost range restored, with what it implies and the measurement-error band.

    ``lost = normative - pre``; ``change = percent/100 * lost``; ``post = pre + change``; the
    change is compared with the minimal detectable change: ``threshold_percent = 100 mdc/lost`` is
    the smallest percent restored that exceeds measurement noise; the band is
    ``percent -/+ threshold_percent`` (the MDC is a 95% bound on the difference of two measurements).
    """

    normative: float
    pre: float
    percent_restored: float
    mdc: float
    lost: float
    change: float
    post: float
    threshold_percent: float
    band_low: float
    band_high: float
    exceeds_mdc: bool


def case_restoration(normative: float, pre: float, percent_restored: float, mdc: float) -> CaseResult:
    """What "restored ``percent`` of lost range" implies, against the measurement error.

    Examples
    --------
    >>> r = case_restoration(25.0, 12.0, 68.0, 4.2)
    >>> round(r.change, 2), round(r.threshold_percent, 2), r.exceeds_mdc
    (8.84, 32.31, True)
    """
    if not normative > pre:
        raise UsageError(f"the normative value ({normative}) must exceed the pre-treatment value ({pre})")
    if not mdc > 0:
        raise UsageError(f"the minimal detectable change must be positive, got {mdc}")
    lost = normative - pre
    change = percent_restored / 100 * lost
    threshold = 100 * mdc / lost
    return CaseResult(normative, pre, percent_restored, mdc, lost, change, pre + change, threshold,
                      percent_restored - threshold, percent_restored + threshold, change > mdc)


def case_table(plan: PublishedCase, values: dict[str, float] | None = None) -> pd.DataFrame:
    """The case result at the central assumptions (or ``values``) as a one-row table."""
    v = assumption_values(plan, values)
    return pd.DataFrame([asdict(case_restoration(v["normative"], v["pre"], plan.restored.value, v["mdc"]))])


def case_sensitivity(plan: PublishedCase, points: int = 7) -> pd.DataFrame:
    """The case result over a grid of normative x pre x MDC values within their ranges."""
    a = plan.assumptions
    rows = []
    for normative in np.linspace(a.normative.low, a.normative.high, points):
        for pre in np.linspace(a.pre.low, a.pre.high, points):
            for mdc in np.linspace(a.mdc.low, a.mdc.high, points):
                rows.append(asdict(case_restoration(float(normative), float(pre), plan.restored.value, float(mdc))))
    return pd.DataFrame(rows)


def case_sensitivity_summary(sensitivity: pd.DataFrame) -> pd.DataFrame:
    """Per assumed MDC: share of normative x pre combinations in which the claimed gain exceeds it,
    and the range of the smallest detectable percent restored."""
    grouped = sensitivity.groupby("mdc", sort=True)
    return pd.DataFrame({
        "combinations": grouped.size(),
        "share_exceeding_mdc": grouped["exceeds_mdc"].mean(),
        "threshold_percent_min": grouped["threshold_percent"].min(),
        "threshold_percent_max": grouped["threshold_percent"].max(),
        "implied_change_min": grouped["change"].min(),
        "implied_change_max": grouped["change"].max(),
    }).reset_index()


def case_figure(plan: PublishedCase):
    """Smallest detectable percent restored against the lost range, for low/central/high MDC, with the claim."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    a, claim = plan.assumptions, plan.restored.value
    spec = plan.outcome(plan.restored.outcome)
    lo, hi = a.normative.low - a.pre.high, a.normative.high - a.pre.low
    lost = np.linspace(max(lo * 0.5, 0.5), hi * 1.1, 200)
    fig, ax = plt.subplots(figsize=(9.6, 5.0))  # 960 CSS px at 2x (analysis.reporting.figures.WIDTH)
    for colour, mdc in zip(("#009E73", "#0072B2", "#D55E00"), (a.mdc.low, a.mdc.value, a.mdc.high), strict=True):
        ax.plot(lost, np.minimum(100 * mdc / lost, 200), color=colour, label=f"smallest detectable, MDC = {mdc:g} {spec.unit}")
    ax.axhline(claim, color="black", linewidth=1.2, label=f"reported: {claim:g}% restored")
    ax.axvspan(lo, hi, color="grey", alpha=0.12, label=f"plausible lost range ({lo:g}-{hi:g} {spec.unit})")
    central = case_restoration(a.normative.value, a.pre.value, claim, a.mdc.value)
    ax.errorbar([central.lost], [claim], yerr=[[claim - central.band_low], [central.band_high - claim]], fmt="o", color="black",
                capsize=4, label=f"central assumptions: {claim:g}% +/- {central.threshold_percent:.0f}% (MDC band)")
    ax.set_ylim(0, 150)
    ax.set_xlabel(f"lost range = normative - pre ({spec.unit})")
    ax.set_ylabel("percent of lost range restored")
    ax.set_title(f"{spec.label}: does {claim:g}% exceed measurement noise?\n(above a curve = yes)", fontsize=10)
    ax.legend(frameon=False, fontsize=8)
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    return fig
