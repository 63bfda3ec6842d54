"""Claims, assumptions and readings: what the published figures say and what they imply per arm.

The reported figures and the plan's assumptions as tables, the central values of the assumptions,
and part 1 of :mod:`analysis.replicate`: reading a printed percent change or fold comparison as
arm-level mean changes (:class:`ImpliedArms`, :func:`implied_arms`) under each pair of readings.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterator
from dataclasses import dataclass

import pandas as pd
from scipy import integrate, stats

from analysis.core.errors import UsageError
from analysis.plan.published import (
    FOLD_READINGS,
    PERCENT_READINGS,
    Assumption,
    PublishedCase,
    PublishedOutcome,
    PublishedTrial,
)
from analysis.stats.effects import change_sd

REPORTED = "control_reported"


# --------------------------------------------------------------------------------------------
# Claims and assumptions as tables
# --------------------------------------------------------------------------------------------


def claims_table(plan: PublishedTrial | PublishedCase) -> pd.DataFrame:
    """The reported figures verbatim, one row per number: id, quote, where, kind, outcome, arm, value."""
    rows = []
    for claim in plan.reported:
        if claim.values is not None:
            for arm, value in claim.values.items():
                rows.append((claim.id, claim.quote, claim.where, claim.kind, claim.outcome, arm, value))
        else:
            outcome = claim.outcome or ", ".join(claim.outcomes or [])
            rows.append((claim.id, claim.quote, claim.where, claim.kind, outcome or None, None, claim.value))
    return pd.DataFrame(rows, columns=["claim", "quote", "where", "kind", "outcome", "arm", "value"])


def assumptions_of(plan: PublishedTrial | PublishedCase) -> Iterator[tuple[str, Assumption]]:
    """Every assumption with a flat key (``dropout``, ``trunk_rotation.baseline_sd``, ``pre`` ...)."""
    a = plan.assumptions
    if isinstance(plan, PublishedCase):
        yield from (("normative", a.normative), ("pre", a.pre), ("mdc", a.mdc))
        return
    yield from (("treatment_fraction", a.treatment_fraction), ("dropout", a.dropout))
    for name, oa in a.outcomes.items():
        for field in ("baseline_mean", "baseline_sd", "pre_post_r"):
            yield f"{name}.{field}", getattr(oa, field)


def assumptions_table(plan: PublishedTrial | PublishedCase) -> pd.DataFrame:
    """One row per assumption: key, central value, low, high, why, source."""
    rows = [(key, a.value, a.low, a.high, a.why, a.source) for key, a in assumptions_of(plan)]
    return pd.DataFrame(rows, columns=["assumption", "value", "low", "high", "why", "source"])


def central_values(plan: PublishedTrial | PublishedCase) -> dict[str, float]:
    """The central value of every assumption, keyed as :func:`assumptions_of`."""
    return {key: a.value for key, a in assumptions_of(plan)}


def assumption_values(plan: PublishedTrial | PublishedCase, overrides: dict[str, float] | None) -> dict[str, float]:
    values = central_values(plan)
    for key, value in (overrides or {}).items():
        if key not in values:
            raise UsageError(f"unknown assumption '{key}'; known: {', '.join(values)}")
        values[key] = float(value)
    return values


# --------------------------------------------------------------------------------------------
# Readings
# --------------------------------------------------------------------------------------------


def arm_sizes(n: int, treatment_fraction: float, dropout: float) -> tuple[int, int, int, int]:
    """Randomised and analysed arm sizes: ``(n_t, n_c, analysed_t, analysed_c)``.

    ``n_t = floor(n f + 1/2)``, ``n_c = n - n_t``; analysed = ``floor(n_arm (1 - dropout) + 1/2)``
    (complete cases at follow-up).

    Examples
    --------
    >>> arm_sizes(120, 0.5, 0.1)
    (60, 60, 54, 54)
    """
    n_t = math.floor(n * treatment_fraction + 0.5)
    n_c = n - n_t
    a_t, a_c = (math.floor(k * (1 - dropout) + 0.5) for k in (n_t, n_c))
    if min(a_t, a_c) < 2:
        raise UsageError(f"the assumptions leave fewer than 2 analysed participants in an arm (n = {n})")
    return n_t, n_c, a_t, a_c


@functools.lru_cache(maxsize=4096)
def mean_inverse_baseline(mean_pre: float, sd_pre: float, low: float, high: float) -> float:
    """``E[1/B]`` for a normal baseline ``N(mean_pre, sd_pre^2)`` truncated to ``[low, high]`` (``low > 0``).

    Numerical integration (``scipy.integrate.quad``). The truncation matters only where the range
    comes close to 0 (a percent change is undefined at a baseline of 0, so such participants drop
    out of a mean of individual percent changes; ``low`` is then the smallest positive value).
    """
    if not 0 < low < high:
        raise UsageError(f"the baseline support must be positive, got [{low}, {high}]")
    dist = stats.norm(mean_pre, sd_pre)
    mass = dist.cdf(high) - dist.cdf(low)
    value, _ = integrate.quad(lambda b: dist.pdf(b) / b, low, high, points=[mean_pre] if low < mean_pre < high else None, limit=200)
    return float(value / mass)


def _support(spec: PublishedOutcome) -> tuple[float, float]:
    low, high = spec.range
    return (low if low > 0 else 10.0 ** -spec.decimals), high


def mean_percent_from_change(
    change: float, mean_pre: float, sd_pre: float, sd_post: float, r: float, support: tuple[float, float]
) -> float:
    """Mean of individual percent changes for an arm with mean change ``change``.

    Baseline ``B`` and follow-up bivariate normal (SDs ``sd_pre``, ``sd_post``, correlation ``r``),
    so the change ``D`` has the linear conditional mean ``E[D | B] = m + beta (B - mu0)`` with
    ``beta = r sd_post/sd_pre - 1``, hence exactly ``E[D/B] = (m - beta mu0) E[1/B] + beta``;
    ``E[1/B]`` from :func:`mean_inverse_baseline` over ``support``. Checked against brute-force
    simulation in the tests.
    """
    beta = r * sd_post / sd_pre - 1
    return 100 * ((change - beta * mean_pre) * mean_inverse_baseline(mean_pre, sd_pre, *support) + beta)


def change_for_percent(
    percent: float, reading: str, mean_pre: float, sd_pre: float, sd_post: float, r: float, support: tuple[float, float]
) -> float:
    """Mean change implied by a reported percent change under a reading.

    ``change_of_means``: ``m = mu0 p/100``. ``mean_of_percent_changes``: the inverse of
    :func:`mean_percent_from_change`, ``m = (p/100 - beta)/E[1/B] + beta mu0``.

    Examples
    --------
    >>> change_for_percent(41, "change_of_means", 45.0, 10.0, 10.0, 0.6, (0.1, 180.0))
    18.45
    """
    if mean_pre <= 0:
        raise UsageError(f"percent changes need a positive baseline mean, got {mean_pre}")
    if reading == "change_of_means":
        return mean_pre * percent / 100
    if reading == "mean_of_percent_changes":
        beta = r * sd_post / sd_pre - 1
        return (percent / 100 - beta) / mean_inverse_baseline(mean_pre, sd_pre, *support) + beta * mean_pre
    raise UsageError(f"unknown percent reading {reading!r}; choose one of {', '.join(PERCENT_READINGS)}")


def responder_proportion(change: float, sd_change: float, mcid: float, sign: int) -> float:
    """Share of an arm improving by at least ``mcid``: ``Phi((sign m - mcid) / sd_change)`` (normal changes)."""
    return float(stats.norm.cdf((sign * change - mcid) / sd_change))


def change_for_responders(proportion: float, sd_change: float, mcid: float, sign: int) -> float:
    """Inverse of :func:`responder_proportion`: ``m = sign (mcid + sd_change Phi^-1(pi))``; NaN outside (0, 1)."""
    if not 0 < proportion < 1:
        return math.nan
    return sign * (mcid + sd_change * float(stats.norm.ppf(proportion)))


@dataclass(frozen=True)
class ImpliedArms:
    """Arm-level summaries implied by the claims for one outcome under one pair of readings.

    Both arms share the baseline mean and SD (randomisation); the follow-up SD equals the baseline
    SD; changes have SD ``sd_change = sqrt(sd_pre^2 + sd_post^2 - 2 r sd_pre sd_post)``.
    """

    outcome: str
    percent_reading: str
    fold_reading: str
    n_treatment: int
    n_control: int
    mean_pre: float
    sd_pre: float
    sd_post: float
    r: float
    change_treatment: float
    change_control: float
    sd_change: float
    support: tuple[float, float]

    @property
    def post_treatment(self) -> float:
        return self.mean_pre + self.change_treatment

    @property
    def post_control(self) -> float:
        return self.mean_pre + self.change_control

    def percent_of_means(self, arm: str) -> float:
        return 100 * getattr(self, f"change_{arm}") / self.mean_pre

    def mean_percent(self, arm: str) -> float:
        return mean_percent_from_change(getattr(self, f"change_{arm}"), self.mean_pre, self.sd_pre, self.sd_post, self.r, self.support)


def implied_arms(
    plan: PublishedTrial, outcome: str, percent_reading: str, fold_reading: str, values: dict[str, float] | None = None
) -> ImpliedArms:
    """Arm summaries for ``outcome`` under a percent reading and a fold reading.

    ``fold_reading`` is one of :data:`analysis.plan.published.FOLD_READINGS`, or ``"control_reported"``
    when the paper printed the control arm's percent change (then it is read like the treatment's).
    The control change may be NaN when a reading has no solution (responder proportion outside (0, 1)).
    """
    v = assumption_values(plan, values)
    spec = plan.outcome(outcome)
    _, _, n_t, n_c = arm_sizes(plan.sample_size, v["treatment_fraction"], v["dropout"])
    mu, sd, r = v[f"{outcome}.baseline_mean"], v[f"{outcome}.baseline_sd"], v[f"{outcome}.pre_post_r"]
    sd_delta = change_sd(sd, sd, r)
    support = _support(spec)
    claim = plan.percent_claim(outcome)
    m_t = change_for_percent(claim.values["treatment"], percent_reading, mu, sd, sd, r, support)
    if fold_reading == REPORTED:
        if "control" not in claim.values:
            raise UsageError(f"the control result of '{outcome}' was not reported; choose a fold reading")
        m_c = change_for_percent(claim.values["control"], percent_reading, mu, sd, sd, r, support)
    else:
        fold = plan.fold_claim(outcome)
        if fold is None:
            raise UsageError(f"no fold claim covers '{outcome}'; its control result was reported")
        f = fold.value
        if fold_reading == "ratio_of_percent_improvements":
            m_c = change_for_percent(claim.values["treatment"] / f, percent_reading, mu, sd, sd, r, support)
        elif fold_reading == "ratio_of_mean_changes":
            m_c = m_t / f
        elif fold_reading == "ratio_of_responder_proportions":
            mcid, sign = spec.mcid.points, spec.improvement_sign
            m_c = change_for_responders(responder_proportion(m_t, sd_delta, mcid, sign) / f, sd_delta, mcid, sign)
        else:
            raise UsageError(f"unknown fold reading {fold_reading!r}; choose one of {', '.join(FOLD_READINGS)}")
    return ImpliedArms(outcome, percent_reading, fold_reading, n_t, n_c, mu, sd, sd, r, m_t, m_c, sd_delta, support)


def scenarios(plan: PublishedTrial, outcome: str) -> list[tuple[str, str]]:
    """Every (percent reading, fold reading) pair that applies to ``outcome``."""
    folds = FOLD_READINGS if plan.fold_claim(outcome) is not None else (REPORTED,)
    return [(p, f) for p in PERCENT_READINGS for f in folds]


def main_scenario(plan: PublishedTrial, outcome: str) -> tuple[str, str]:
    """The readings the plan's ``replication`` section calibrates to."""
    rep = plan.replication
    return rep.percent_reading, rep.fold_reading if plan.fold_claim(outcome) is not None else REPORTED
