"""Replicating a published trial from its headline figures (``trialkit replicate``).

A paper that prints "+41%", "1.7-fold" or "42% vs 18%" does not print arm means, SDs, the pre-post
correlation or dropout. This module makes explicit what such figures imply once those gaps are
filled by the assumptions of a published-results plan (:mod:`analysis.plan.published`), how fragile
that is, and draws participant-level data that reproduce the figures through the real pipeline.

Parts (each a plain function; :func:`replicate` orchestrates and writes):

1. **Readings.** A reported percent change ``p`` of an arm is read as the change of the arm mean
   (``change_of_means``: mean change ``m = mu0 p/100``) or as the mean of the participants' own
   percent changes (``mean_of_percent_changes``). For the latter, with ``B`` the baseline and
   ``D`` the change, pre and post bivariate normal (SDs ``sd0``, ``sd1``, correlation ``r``), the
   conditional mean of the change is linear, ``E[D | B] = m + beta (B - mu0)``, ``beta = r sd1/sd0 - 1``,
   so exactly::

       E[100 D/B] = 100 [ (m - beta mu0) E[1/B] + beta ],

   with ``E[1/B]`` by quadrature over the normal baseline truncated to the instrument's positive range.
   It is linear in ``m`` and solved for it (:func:`change_for_percent`). A fold comparison
   ``f`` gives the control arm from the treatment arm as a ratio of percent improvements
   (``p_C = p_T/f``), a ratio of mean changes (``m_C = m_T/f``) or a ratio of responder
   proportions (``pi_C = pi_T/f`` with ``pi = Phi((s m - MCID)/sd_change)``, normal changes,
   ``s`` = +1 if higher is better, else -1).
2. **Aggregate route.** The implied arm summaries (:class:`ImpliedArms`) go through the effect-size
   engine (:mod:`analysis.stats.effects`): MD, Hedges' g, ROM, MD of changes, Morris d_ppc2, percent
   change of means per arm (delta-method CI) and the ratio of improvements (Fieller CI).
   :func:`consistency_table` checks each combination of readings for feasibility.
3. **Sensitivity.** Each assumption is moved over its range with the others at their central value
   (:func:`sensitivity_table`); a baseline-SD x correlation grid feeds the figure; a 3-level
   factorial over every assumption gives the range of conclusions (:func:`conclusions_table`).
4. **Participant-level replication.** A generated, SIMULATED trial plan plus data drawn by
   :func:`analysis.replicate.simulate.simulate_trial`, then calibrated by construction
   (:func:`calibrate_trial`): per arm and outcome the complete cases' baseline values are mapped
   affinely to the assumed mean and SD, follow-up values are rebuilt with the assumed SD and
   correlation and shifted to the target statistic, and the rounding to the instrument's decimals
   is corrected with a largest-remainder step, so the sample statistics hit the printed figures
   to within half a rounding unit divided by the arm size.
5. **Single case.** Percent of lost range restored, ``100 (post - pre)/(normative - pre)``,
   against the minimal detectable change (:func:`case_restoration`).
"""

from __future__ import annotations

import functools
import itertools
import json
import math
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml
from scipy import integrate, optimize, stats

from analysis.core.errors import PlanError, UsageError
from analysis.core.tidy import OPTIONAL_COLUMNS, RESULT_COLUMNS, contrast_label, tidy_frame
from analysis.plan.published import (
    FOLD_READINGS,
    PERCENT_READINGS,
    Assumption,
    LoadedPublished,
    PublishedCase,
    PublishedOutcome,
    PublishedTrial,
    load_published,
)
from analysis.stats.effects import (
    change_sd,
    d_ppc2,
    log_ratio_of_means,
    mean_difference,
    percent_change_of_means,
    ratio_of_improvements,
    standardized_mean_difference,
)

REPORTED = "control_reported"
OUT_OF_RANGE_LIMIT = 0.05  # largest share of the implied follow-up distribution allowed outside the instrument's range
LEVELS = ("low", "value", "high")


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


def _values(plan: PublishedTrial | PublishedCase, overrides: dict[str, float] | None) -> dict[str, float]:
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
    v = _values(plan, values)
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


# --------------------------------------------------------------------------------------------
# Aggregate route: implied effects through the effect-size engine
# --------------------------------------------------------------------------------------------


def effect_rows(plan: PublishedTrial, arms: ImpliedArms, ci_level: float = 0.95, **keys: Any) -> list[dict[str, Any]]:
    """The rows of :func:`implied_effects` as dicts (plus ``percent_reading``, ``fold_reading`` and ``keys``).

    Building dicts and tidying once is what keeps the sensitivity grids fast.
    """
    spec = plan.outcome(arms.outcome)
    t_label, c_label = plan.arms.treatment.label, plan.arms.control.label
    diff, ratio = contrast_label(t_label, c_label), contrast_label(t_label, c_label, ratio=True)
    visit = plan.followup.label
    n_t, n_c = arms.n_treatment, arms.n_control
    rows: list[dict[str, Any]] = []

    def add(contrast: str, measure: str, result: Any = None, nt: int | None = n_t, nc: int | None = n_c, **extra: Any) -> None:
        row = {**keys, "percent_reading": arms.percent_reading, "fold_reading": arms.fold_reading, "outcome": arms.outcome,
               "visit": visit, "contrast": contrast, "measure": measure, "ci_level": ci_level, "n_treatment": nt, "n_control": nc}
        if result is not None:
            row.update(estimate=result.estimate, std_error=getattr(result, "std_error", math.nan), ci_low=result.ci_low,
                       ci_high=result.ci_high, method=result.method, note=result.note)
        row.update(extra)
        rows.append(row)

    if not math.isfinite(arms.change_control):
        add(diff, "MD", note="this reading has no solution for the control arm (responder proportion outside 0-1)")
        return rows
    post = (n_t, arms.post_treatment, arms.sd_post, n_c, arms.post_control, arms.sd_post)
    add(diff, "MD", mean_difference(*post, ci_level=ci_level))
    add(diff, "SMD", standardized_mean_difference(*post, ci_level=ci_level))
    if arms.post_treatment > 0 and arms.post_control > 0:
        add(ratio, "ROM", log_ratio_of_means(*post, ci_level=ci_level))
    change = (n_t, arms.change_treatment, arms.sd_change, n_c, arms.change_control, arms.sd_change)
    add(diff, "MD_change", mean_difference(*change, ci_level=ci_level),
        method="difference in mean change from baseline (metafor MD on change scores), Wald CI")
    add(diff, "d_ppc2", d_ppc2(n_t, arms.mean_pre, arms.post_treatment, arms.sd_pre, n_c, arms.mean_pre, arms.post_control,
                               arms.sd_pre, arms.r, ci_level=ci_level))
    fieller = ratio_of_improvements(arms.change_treatment, arms.sd_change / math.sqrt(n_t), arms.change_control,
                                    arms.sd_change / math.sqrt(n_c), ci_level=ci_level)
    add(ratio, "ratio_of_improvements", fieller)
    for arm, label, nt, nc in (("treatment", t_label, n_t, None), ("control", c_label, None, n_c)):
        within = f"{label}: {visit} - baseline"
        n = nt or nc
        post_mean = arms.mean_pre + getattr(arms, f"change_{arm}")
        add(within, "pct_change_of_means", percent_change_of_means(n, arms.mean_pre, post_mean, arms.sd_pre, arms.sd_post, arms.r,
                                                                   ci_level=ci_level), nt=nt, nc=nc)
        add(within, "mean_pct_change", nt=nt, nc=nc, estimate=arms.mean_percent(arm),
            method="mean of individual percent changes implied under bivariate normal pre/post (exact given E[1/B] by quadrature; no CI)")
    pct_t, pct_c = arms.percent_of_means("treatment"), arms.percent_of_means("control")
    add(ratio, "ratio_of_percent_improvements", estimate=pct_t / pct_c if pct_c else math.nan,
        method="percent change of treatment mean / percent change of control mean (equals the ratio of mean changes with a shared baseline mean)")
    if spec.mcid is not None and spec.mcid.points is not None:
        props = {arm: responder_proportion(getattr(arms, f"change_{arm}"), arms.sd_change, spec.mcid.points, spec.improvement_sign)
                 for arm in ("treatment", "control")}
        method = f"share improving by >= {spec.mcid.points:g} {spec.unit}, normal model of change (no CI)"
        add(f"{t_label}: {visit} - baseline", "responder_proportion", nt=n_t, nc=None, estimate=props["treatment"], method=method)
        add(f"{c_label}: {visit} - baseline", "responder_proportion", nt=None, nc=n_c, estimate=props["control"], method=method)
        add(ratio, "responder_ratio", estimate=props["treatment"] / props["control"] if props["control"] > 0 else math.nan, method=method)
    return rows


def effects_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Rows from :func:`effect_rows` as one frame: their identifying keys first, then the tidy columns."""
    frame = pd.DataFrame(rows)
    keys = [c for c in frame.columns if c not in RESULT_COLUMNS and c not in OPTIONAL_COLUMNS]
    table = tidy_frame(frame.drop(columns=keys))
    return pd.concat([frame[keys].reset_index(drop=True), table], axis=1)


def implied_effects(plan: PublishedTrial, arms: ImpliedArms, ci_level: float = 0.95) -> pd.DataFrame:
    """Effect sizes implied by one :class:`ImpliedArms`, in the tidy vocabulary.

    Rows: ``MD``, ``SMD`` (Hedges' g, exact J) and ``ROM`` (log scale) on the follow-up means;
    ``MD_change``; ``d_ppc2`` (Morris 2008, with the assumed r); ``ratio_of_improvements``
    (treatment change / control change, Fieller CI from the change SEs); per arm
    ``pct_change_of_means`` (delta-method CI) and ``mean_pct_change`` (bivariate-normal model, no
    CI); ``ratio_of_percent_improvements``; ``responder_proportion`` per arm and
    ``responder_ratio`` when the outcome has ``mcid.points`` (normal changes, no CI). The columns
    ``percent_reading`` and ``fold_reading`` come first.
    """
    return effects_frame(effect_rows(plan, arms, ci_level))


def implied_arms_table(plan: PublishedTrial, values: dict[str, float] | None = None) -> pd.DataFrame:
    """Implied arm-level means and SDs for every outcome and pair of readings."""
    rows = []
    for spec in plan.claimed_outcomes:
        for p, f in scenarios(plan, spec.name):
            a = implied_arms(plan, spec.name, p, f, values)
            for arm in ("treatment", "control"):
                change = getattr(a, f"change_{arm}")
                rows.append({
                    "outcome": a.outcome, "percent_reading": p, "fold_reading": f, "arm": arm,
                    "n_analysed": getattr(a, f"n_{arm}"), "mean_baseline": a.mean_pre, "sd_baseline": a.sd_pre,
                    "mean_followup": a.mean_pre + change, "sd_followup": a.sd_post, "mean_change": change,
                    "sd_change": a.sd_change, "pre_post_r": a.r, "pct_change_of_means": 100 * change / a.mean_pre,
                    "mean_pct_change": a.mean_percent(arm),
                })
    return pd.DataFrame(rows)


def aggregate_route(plan: PublishedTrial, values: dict[str, float] | None = None, ci_level: float = 0.95) -> pd.DataFrame:
    """Implied effect sizes for every outcome and every pair of readings (see :func:`implied_effects`)."""
    rows = [row for spec in plan.claimed_outcomes for p, f in scenarios(plan, spec.name)
            for row in effect_rows(plan, implied_arms(plan, spec.name, p, f, values), ci_level)]
    return effects_frame(rows)


def _checks(spec: PublishedOutcome, a: ImpliedArms, **keys: Any) -> list[dict[str, Any]]:
    """The consistency checks of one :class:`ImpliedArms` (see :func:`consistency_table`)."""
    low, high = spec.range
    rows: list[dict[str, Any]] = []

    def check(name: str, passed: bool, detail: str) -> None:
        rows.append({**keys, "outcome": spec.name, "percent_reading": a.percent_reading, "fold_reading": a.fold_reading,
                     "check": name, "passed": bool(passed), "detail": detail})

    solvable = math.isfinite(a.change_control)
    check("solvable", solvable, "the control arm is determined" if solvable else
          "no control arm satisfies this reading (implied responder proportion outside 0-1)")
    if not solvable:
        return rows
    means = (a.mean_pre, a.post_treatment, a.post_control)
    check("means_in_range", all(low <= m <= high for m in means),
          f"baseline {a.mean_pre:.2f}, follow-up {a.post_treatment:.2f} (treatment) and {a.post_control:.2f} (control); range {low:g}-{high:g}")
    outside = {arm: float(stats.norm.cdf((low - m) / a.sd_post) + stats.norm.sf((high - m) / a.sd_post))
               for arm, m in (("treatment", a.post_treatment), ("control", a.post_control))}
    check("followup_within_range", max(outside.values()) <= OUT_OF_RANGE_LIMIT,
          f"share of follow-up values outside {low:g}-{high:g} under a normal model: "
          f"{outside['treatment']:.1%} (treatment), {outside['control']:.1%} (control); limit {OUT_OF_RANGE_LIMIT:.0%}")
    if a.fold_reading != REPORTED:
        improves = spec.improvement_sign * a.change_control > 0
        check("control_improves", improves, f"implied control change {a.change_control:+.2f} {spec.unit} ({spec.better} is better)")
    return rows


CONSISTENCY_COLUMNS = ["outcome", "percent_reading", "fold_reading", "check", "passed", "detail"]


def consistency_table(plan: PublishedTrial, values: dict[str, float] | None = None) -> pd.DataFrame:
    """Feasibility checks of every pair of readings, per outcome.

    Checks: ``solvable`` (the reading gives a control arm at all); ``means_in_range`` (baseline and
    implied follow-up means inside the instrument's range); ``followup_within_range`` (under a
    normal model with the assumed follow-up SD, at most 5% of each arm's follow-up values fall
    outside the range: the printed change is reachable without piling participants on the floor or
    ceiling); ``control_improves`` (for a fold claim: the comparison "outperforming by f-fold"
    presupposes that the control arm improved too).
    """
    rows = [row for spec in plan.claimed_outcomes for p, f in scenarios(plan, spec.name)
            for row in _checks(spec, implied_arms(plan, spec.name, p, f, values))]
    return pd.DataFrame(rows, columns=CONSISTENCY_COLUMNS)


def readings_summary(plan: PublishedTrial, consistency: pd.DataFrame, box: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per pair of readings: do all reported numbers fit together at the central assumptions, and where not, why.

    With ``box`` (the ``consistent`` column of :func:`conclusions_table`'s factorial), also the share
    of the assumption box in which the pair is consistent.
    """
    rows = []
    keys = ["percent_reading", "fold_reading"]
    for (p, f), group in consistency.groupby(keys, sort=False):
        failed = group[~group["passed"]]
        row = {"percent_reading": p, "fold_reading": f, "outcomes": ", ".join(dict.fromkeys(group["outcome"])),
               "consistent": failed.empty,
               "failed_checks": "; ".join(f"{o}: {c}" for o, c in zip(failed["outcome"], failed["check"], strict=True))}
        if box is not None:
            sub = box[(box["percent_reading"] == p) & (box["fold_reading"] == f)]
            row["share_of_box_consistent"] = float(sub.groupby("point")["consistent"].all().mean()) if len(sub) else math.nan
        rows.append(row)
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------------------------
# Sensitivity
# --------------------------------------------------------------------------------------------

SENSITIVITY_COLUMNS = ["assumption", "assumed_value", "outcome", "percent_reading", "fold_reading", "measure", "contrast",
                       "estimate", "ci_low", "ci_high"]


def _relevant(plan: PublishedTrial, outcome: str) -> list[str]:
    return ["treatment_fraction", "dropout", f"{outcome}.baseline_mean", f"{outcome}.baseline_sd", f"{outcome}.pre_post_r"]


def sensitivity_table(plan: PublishedTrial, points: int = 7) -> pd.DataFrame:
    """One assumption at a time over ``points`` evenly spaced values of its range, the rest central.

    For each outcome only its own assumptions and the shared ones (allocation, dropout) move.
    Returns one row per assumption x value x outcome x readings x measure.
    """
    if points < 2:
        raise UsageError(f"points must be at least 2, got {points}")
    assumed = dict(assumptions_of(plan))
    rows = []
    for spec in plan.claimed_outcomes:
        for key in _relevant(plan, spec.name):
            a = assumed[key]
            for value in np.linspace(a.low, a.high, points):
                for p, f in scenarios(plan, spec.name):
                    arms = implied_arms(plan, spec.name, p, f, {key: float(value)})
                    rows += effect_rows(plan, arms, assumption=key, assumed_value=float(value))
    return effects_frame(rows)[SENSITIVITY_COLUMNS]


def sd_r_grid(plan: PublishedTrial, outcome: str, points: int = 9) -> pd.DataFrame:
    """Implied effects at the main readings over baseline SD x pre-post correlation, each over its range
    (``points`` values plus the central one)."""
    assumed = dict(assumptions_of(plan))
    sd_a, r_a = assumed[f"{outcome}.baseline_sd"], assumed[f"{outcome}.pre_post_r"]
    p, f = main_scenario(plan, outcome)
    rows = []
    sds = sorted(set(np.linspace(sd_a.low, sd_a.high, points).tolist()) | {sd_a.value})
    rs = sorted(set(np.linspace(r_a.low, r_a.high, points).tolist()) | {r_a.value})
    for sd in sds:
        for r in rs:
            arms = implied_arms(plan, outcome, p, f, {f"{outcome}.baseline_sd": sd, f"{outcome}.pre_post_r": r})
            rows += effect_rows(plan, arms, baseline_sd=sd, pre_post_r=r)
    return effects_frame(rows)


NULL_VALUE = {"MD": 0.0, "SMD": 0.0, "ROM": 0.0, "MD_change": 0.0, "d_ppc2": 0.0, "ratio_of_improvements": 1.0}


def factorial_box(plan: PublishedTrial) -> Iterator[tuple[str, int, dict[str, float]]]:
    """Every low/central/high combination of an outcome's relevant assumptions: (outcome, point, values)."""
    assumed = dict(assumptions_of(plan))
    for spec in plan.claimed_outcomes:
        keys = _relevant(plan, spec.name)
        for point, levels in enumerate(itertools.product(LEVELS, repeat=len(keys))):
            yield spec.name, point, {k: getattr(assumed[k], level) for k, level in zip(keys, levels, strict=True)}


def conclusions_table(plan: PublishedTrial) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Range of conclusions over the 3-level factorial box of the assumptions.

    Returns ``(conclusions, box)``. ``conclusions``: per outcome x readings x measure (those with a
    CI), the estimate at the central assumptions, its min and max over the box, the lowest CI
    limit and the highest, the share of the box in which the CI excludes no effect (0, or 1 for
    the ratio of improvements), and a one-phrase conclusion. ``box``: per outcome x readings x
    point, whether the readings pass every consistency check there.
    """
    est_rows, check_rows = [], []
    for outcome, point, values in factorial_box(plan):
        spec = plan.outcome(outcome)
        for p, f in scenarios(plan, outcome):
            arms = implied_arms(plan, outcome, p, f, values)
            check_rows += _checks(spec, arms, point=point)
            est_rows += [row for row in effect_rows(plan, arms, point=point) if row["measure"] in NULL_VALUE]
    checks = pd.DataFrame(check_rows)
    box = (checks.groupby(["outcome", "point", "percent_reading", "fold_reading"], sort=False)["passed"].all()
           .rename("consistent").reset_index())
    est = effects_frame(est_rows)
    central = aggregate_route(plan)
    rows = []
    for (outcome, p, f, measure, contrast), group in est.groupby(["outcome", "percent_reading", "fold_reading", "measure", "contrast"], sort=False):
        null = NULL_VALUE[measure]
        finite = group.dropna(subset=["ci_low", "ci_high"])
        excludes = ((finite["ci_low"] > null) | (finite["ci_high"] < null)).sum() / len(group)
        here = central[(central["outcome"] == outcome) & (central["percent_reading"] == p) & (central["fold_reading"] == f)
                       & (central["measure"] == measure) & (central["contrast"] == contrast)]
        if excludes == 1:
            verdict = "CI excludes no effect everywhere in the box"
        elif excludes == 0:
            verdict = "CI includes no effect everywhere in the box" if len(finite) == len(group) else "CI includes no effect or is unbounded everywhere"
        else:
            verdict = f"depends on the assumptions: CI excludes no effect in {excludes:.0%} of the box"
        rows.append({"outcome": outcome, "percent_reading": p, "fold_reading": f, "measure": measure, "contrast": contrast,
                     "estimate_central": float(here["estimate"].iloc[0]) if len(here) else math.nan,
                     "estimate_min": group["estimate"].min(), "estimate_max": group["estimate"].max(),
                     "ci_low_min": group["ci_low"].min(), "ci_high_max": group["ci_high"].max(),
                     "n_points": len(group), "share_ci_excludes_null": float(excludes), "conclusion": verdict})
    return pd.DataFrame(rows), box


def sensitivity_figure(plan: PublishedTrial, grids: dict[str, pd.DataFrame]):
    """Per outcome: d_ppc2 and Hedges' g (95% CI) against the assumed baseline SD, one line per r;
    and the ratio of improvements (Fieller CI) against r, one line per SD. Returns the Figure."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    outcomes = list(grids)
    fig, axes = plt.subplots(len(outcomes), 2, figsize=(11, 4.2 * len(outcomes)), squeeze=False)
    assumed = dict(assumptions_of(plan))
    colours = ("#0072B2", "#009E73", "#D55E00")
    for row, outcome in enumerate(outcomes):
        grid, spec = grids[outcome], plan.outcome(outcome)
        r_a, sd_a = assumed[f"{outcome}.pre_post_r"], assumed[f"{outcome}.baseline_sd"]
        p, f = main_scenario(plan, outcome)
        ax = axes[row, 0]
        for colour, r in zip(colours, (r_a.low, r_a.value, r_a.high), strict=True):
            rows = grid[(grid["measure"] == "d_ppc2") & np.isclose(grid["pre_post_r"], r)].sort_values("baseline_sd")
            ax.plot(rows["baseline_sd"], rows["ci_low"], color=colour, linewidth=1, label=f"d_ppc2 95% CI, r = {r:g}")
            ax.plot(rows["baseline_sd"], rows["ci_high"], color=colour, linewidth=1)
        central = grid[(grid["measure"] == "d_ppc2") & np.isclose(grid["pre_post_r"], r_a.value)].sort_values("baseline_sd")
        ax.plot(central["baseline_sd"], central["estimate"], color="black", linewidth=2, label="d_ppc2 estimate")
        g = grid[(grid["measure"] == "SMD") & np.isclose(grid["pre_post_r"], r_a.value)].sort_values("baseline_sd")
        ax.plot(g["baseline_sd"], g["estimate"], color="grey", linestyle="--", label="Hedges' g on follow-up values")
        ax.axvline(sd_a.value, color="grey", linewidth=0.8, linestyle=":")
        ax.axhline(0, color="grey", linewidth=0.8)
        ax.set_xlabel(f"assumed baseline SD ({spec.unit}); dotted = central assumption")
        ax.set_ylabel("standardised effect (treatment - control)")
        ax.set_title(f"{spec.label}:\neffect size vs assumed SD", fontsize=10)
        ax.legend(frameon=False, fontsize=8)
        ax = axes[row, 1]
        for colour, sd in zip(colours, (sd_a.low, sd_a.value, sd_a.high), strict=True):
            rows = grid[(grid["measure"] == "ratio_of_improvements") & np.isclose(grid["baseline_sd"], sd)].sort_values("pre_post_r")
            ax.plot(rows["pre_post_r"], rows["ci_low"], color=colour, linewidth=1, label=f"Fieller 95% CI, SD = {sd:g}")
            ax.plot(rows["pre_post_r"], rows["ci_high"], color=colour, linewidth=1)
        central = grid[(grid["measure"] == "ratio_of_improvements") & np.isclose(grid["baseline_sd"], sd_a.value)].sort_values("pre_post_r")
        ax.plot(central["pre_post_r"], central["estimate"], color="black", linewidth=2, label="ratio estimate")
        ax.axhline(1, color="grey", linewidth=0.8)
        ax.axvline(r_a.value, color="grey", linewidth=0.8, linestyle=":")
        ax.set_xlabel("assumed pre-post correlation r; dotted = central assumption")
        ax.set_ylabel("ratio of mean improvements (treatment / control)")
        ax.set_title(f"{spec.label}:\nratio of improvements vs assumed r", fontsize=10)
        ax.legend(frameon=False, fontsize=8)
        for a in axes[row]:
            a.spines[["top", "right"]].set_visible(False)
    fig.suptitle(f"{plan.study.id}: implied effects under the assumptions (readings: {p}; {f})", fontsize=11)
    fig.tight_layout()
    return fig


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
    v = _values(plan, values)
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
    fig, ax = plt.subplots(figsize=(7.5, 4.6))
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


# --------------------------------------------------------------------------------------------
# Participant-level replication: generated trial plan and calibration by construction
# --------------------------------------------------------------------------------------------

TREATMENT_CODE, CONTROL_CODE = "T", "C"


def trial_plan_document(plan: PublishedTrial, seed: int) -> dict[str, Any]:
    """A trial plan (:class:`analysis.plan.Plan` layout, ``simulated: true``) for the replication.

    Arms, baseline + the published follow-up visit, outcomes (range, direction, MCID) from the
    published plan; the ``simulation`` section from the central assumptions under the main readings.
    """
    v = central_values(plan)
    outcomes, simulation = [], {}
    for spec in plan.claimed_outcomes:
        entry: dict[str, Any] = {"name": spec.name, "label": spec.label, "unit": spec.unit, "range": list(spec.range),
                                 "better": spec.better}
        if spec.mcid is not None:
            entry["mcid"] = spec.mcid.model_dump(exclude_none=True)
        entry["primary"] = spec.primary
        outcomes.append(entry)
        a = implied_arms(plan, spec.name, *main_scenario(plan, spec.name))
        simulation[spec.name] = {
            "baseline_mean": a.mean_pre, "baseline_sd": a.sd_pre, "change_treatment": round(a.change_treatment, 6),
            "change_control": round(a.change_control, 6), "change_sd": round(a.sd_change, 6), "decimals": spec.decimals,
        }
    if not any(o["primary"] for o in outcomes):
        outcomes[0]["primary"] = True
    fu = plan.followup
    return {
        "study": {
            "id": f"{plan.study.id}-replication",
            "title": f"SIMULATED replication of: {plan.study.title}",
            "design": f"{plan.study.design_text}; participant data SIMULATED and calibrated to the published figures",
            "simulated": True,
            "description": (f"Synthetic participants drawn by trialkit replicate (seed {seed}) so that the run reproduces the "
                            f"published headline figures; no real participant data. Source: {plan.study.source}."),
        },
        "seed": seed,
        "target_enrollment": plan.sample_size,
        "data": {"participants": {"path": "participants.csv"}, "measurements": {"path": "measurements.csv", "layout": "long"}},
        "arms": {"treatment": {"label": plan.arms.treatment.label, "codes": [TREATMENT_CODE]},
                 "control": {"label": plan.arms.control.label, "codes": [CONTROL_CODE]}},
        "visits": {"baseline": "baseline", "followup": [{"label": fu.label, "week": fu.week}], "primary": fu.label},
        "outcomes": outcomes,
        "analysis": {"ci_level": 0.95, "n_boot": plan.replication.n_boot, "imputations": 5},
        "simulation": {"n_participants": plan.sample_size, "dropout": v["dropout"], "missing_value_rate": 0.0,
                       "enrollment_weeks": 26, "outcomes": simulation},
    }


def round_to_target(
    unrounded: np.ndarray, weights: np.ndarray, target: float, decimals: int, low: float, high: float
) -> np.ndarray:
    """Values on the instrument's grid whose weighted sum is as close to ``target`` as rounding allows.

    Shift ``x = clip(u + s)`` with ``s`` solving ``sum w clip(u + s) = target`` (monotone, Brent),
    round to ``decimals``, then move single values by one unit (largest rounding remainder first,
    within range) while that brings the weighted sum closer. Afterwards ``|sum w v - target|`` is
    at most half of the largest ``w`` times the unit, unless the range makes the target unreachable.
    """
    u, w = np.asarray(unrounded, dtype=float), np.asarray(weights, dtype=float)
    lo_total, hi_total = float((w * low).sum()), float((w * high).sum())
    if not lo_total < target < hi_total:
        raise PlanError(f"the published figure cannot be reached inside the instrument's range {low:g}-{high:g}")

    def total(s: float) -> float:
        return float((w * np.clip(u + s, low, high)).sum()) - target

    span = (high - low) + float(np.ptp(u)) + 1
    s = optimize.brentq(total, low - u.max() - span, high - u.min() + span, xtol=1e-12)
    x = np.clip(u + s, low, high)
    unit = 10.0 ** -decimals
    v = np.clip(np.round(x, decimals), low, high)
    for _ in range(len(v) + 1):
        deficit = target - float((w * v).sum())
        step = unit if deficit > 0 else -unit
        movable = (v + step <= high + 1e-9) & (v + step >= low - 1e-9) & (np.abs(w * unit) / 2 < abs(deficit))
        if not movable.any():
            break
        remainder = (x - v) * np.sign(step)  # how far rounding moved the value against the needed direction
        order = np.flatnonzero(movable)[np.argsort(-remainder[movable], kind="stable")]
        changed = False
        for i in order:
            if abs(deficit) > w[i] * unit / 2:
                v[i] = round(v[i] + step, decimals)
                deficit -= w[i] * step
                changed = True
        if not changed:
            break
    return v


def _standardise(x: np.ndarray) -> np.ndarray:
    sd = x.std(ddof=1)
    return (x - x.mean()) / sd if sd > 0 else np.zeros_like(x)


def calibrate_trial(plan: PublishedTrial, trial_plan: Any, draw: Any) -> Any:
    """Post-process a draw so that its sample statistics hit the published figures by construction.

    Per outcome and arm, over the complete cases (baseline and follow-up present): baselines are
    mapped affinely to the assumed mean and SD and rounded to a sum of ``n mu0``; follow-up values
    are rebuilt as ``target + r sd1 z_B + sqrt(1 - r^2) sd1 z_e`` (``z_B`` the standardised
    baseline, ``z_e`` the standardised residual of the drawn follow-up on the drawn baseline),
    then shifted and rounded (:func:`round_to_target`) so that the arm's percent statistic equals
    the target (``change_of_means``: ``sum post = (1 + p/100) sum pre``; ``mean_of_percent_changes``:
    ``sum post/pre = n (1 + p/100)``). Under a fold claim the control target follows the fold reading
    (``ratio_of_percent_improvements``: ``p_C = p_T/f``; ``ratio_of_mean_changes``: mean change of
    the calibrated treatment arm divided by ``f``). Baselines of participants without follow-up get
    the same affine map. Returns a :class:`analysis.replicate.simulate.SimulatedTrial`.
    """
    from analysis.replicate.simulate import SimulatedTrial

    v = central_values(plan)
    rep = plan.replication
    people = draw.participants
    arm_of = dict(zip(people["participant_id"], people["arm"], strict=True))
    m = draw.measurements.copy()
    base_label, fu_label = trial_plan.visits.baseline, plan.followup.label
    for spec in plan.claimed_outcomes:
        name = spec.name
        low, high = spec.range
        mu, sd, r = v[f"{name}.baseline_mean"], v[f"{name}.baseline_sd"], v[f"{name}.pre_post_r"]
        rows = m[m["outcome"] == name]
        base = rows[rows["visit"] == base_label].set_index("participant_id")["value"]
        post = rows[(rows["visit"] == fu_label) & (rows["value"] != "")].set_index("participant_id")["value"]
        claim = plan.percent_claim(name)
        achieved_change: dict[str, float] = {}
        for arm, code in (("treatment", TREATMENT_CODE), ("control", CONTROL_CODE)):
            ids = [pid for pid in base.index if arm_of[pid] == code]
            complete = [pid for pid in ids if pid in post.index]
            b_draw = base.loc[complete].astype(float).to_numpy()
            y_draw = post.loc[complete].astype(float).to_numpy()
            b_all = base.loc[ids].astype(float).to_numpy()
            scale = sd / b_draw.std(ddof=1)
            b_u = mu + (b_all - b_draw.mean()) * scale
            b_new = pd.Series(np.clip(np.round(b_u, spec.decimals), low, high), index=ids)
            cc = np.isin(ids, complete)
            b_cc = round_to_target(b_u[cc], np.ones(cc.sum()), mu * cc.sum(), spec.decimals, low, high)
            b_new.loc[complete] = b_cc
            slope = np.polyfit(b_draw, y_draw, 1)
            resid = y_draw - np.polyval(slope, b_draw)
            y_u = r * sd * _standardise(b_cc) + math.sqrt(1 - r**2) * sd * _standardise(resid)
            if arm == "treatment" or "control" in claim.values or rep.fold_reading == "ratio_of_percent_improvements":
                percent = claim.values[arm] if arm in claim.values else claim.values["treatment"] / plan.fold_claim(name).value
                if rep.percent_reading == "change_of_means":
                    weights, target = np.ones(len(b_cc)), (1 + percent / 100) * b_cc.sum()
                else:
                    if (b_cc <= 0).any():
                        raise PlanError(f"'{name}': a baseline value of 0 leaves an individual percent change undefined")
                    weights, target = 1 / b_cc, len(b_cc) * (1 + percent / 100)
            else:  # ratio of mean changes: control mean change = calibrated treatment mean change / f
                weights = np.ones(len(b_cc))
                target = b_cc.sum() + len(b_cc) * achieved_change["treatment"] / plan.fold_claim(name).value
            y_new = round_to_target(b_cc.mean() + y_u, weights, target, spec.decimals, low, high)
            achieved_change[arm] = float((y_new - b_cc).mean())
            text = [f"{x + 0.0:.{spec.decimals}f}" for x in b_new.to_numpy()]  # + 0.0 turns -0.0 into 0.0
            m.loc[(m["outcome"] == name) & (m["visit"] == base_label) & m["participant_id"].isin(ids), "value"] = (
                m.loc[(m["outcome"] == name) & (m["visit"] == base_label) & m["participant_id"].isin(ids), "participant_id"]
                .map(dict(zip(ids, text, strict=True))))
            fu_mask = (m["outcome"] == name) & (m["visit"] == fu_label) & m["participant_id"].isin(complete)
            m.loc[fu_mask, "value"] = m.loc[fu_mask, "participant_id"].map(
                dict(zip(complete, (f"{x + 0.0:.{spec.decimals}f}" for x in y_new), strict=True)))
    return SimulatedTrial(participants=people, measurements=m)


def write_replication_trial(plan: PublishedTrial, out_dir: Path, seed: int) -> Path:
    """Write the generated trial plan and the calibrated SIMULATED data into ``out_dir``; return the plan path."""
    from analysis.core.output import write_table, write_text
    from analysis.plan import parse_plan
    from analysis.replicate.simulate import simulate_trial

    document = trial_plan_document(plan, seed)
    header = (f"# SIMULATED trial plan generated by `trialkit replicate` from the published-results plan '{plan.study.id}'.\n"
              f"# The data beside it are synthetic (seed {seed}), calibrated to reproduce the published headline figures.\n")
    text = header + yaml.safe_dump(document, sort_keys=False, allow_unicode=True)
    trial_plan = parse_plan(text, "<generated trial plan>")
    trial = calibrate_trial(plan, trial_plan, simulate_trial(trial_plan, seed))
    out_dir.mkdir(parents=True, exist_ok=True)
    write_table(trial.participants, out_dir / "participants.csv")
    write_table(trial.measurements, out_dir / "measurements.csv")
    return write_text(out_dir / "plan.yaml", text)


def headline_check(plan: PublishedTrial, run_dir: Path) -> pd.DataFrame:
    """Compare the run's own tables with the published figures, within the plan's tolerances.

    Reads ``tables/effect_sizes.csv`` (percent statistic per arm: ``pct_change_of_means`` or
    ``mean_pct_change`` by the calibrated reading; ``ratio_of_improvements``), ``tables/descriptives.csv``
    (ratio of the arms' mean changes) and ``accounting.csv`` (participants randomised).
    """
    effects = pd.read_csv(run_dir / "tables" / "effect_sizes.csv")
    desc = pd.read_csv(run_dir / "tables" / "descriptives.csv")
    accounting = pd.read_csv(run_dir / "accounting.csv")
    rep, visit = plan.replication, plan.followup.label
    statistic = "pct_change_of_means" if rep.percent_reading == "change_of_means" else "mean_pct_change"
    rows = []

    def add(claim: Any, quantity: str, source: str, target: float, achieved: float, tolerance: float) -> None:
        rows.append({"claim": claim.id, "quote": claim.quote, "quantity": quantity, "source": source, "target": target,
                     "achieved": achieved, "difference": achieved - target, "tolerance": tolerance,
                     "within_tolerance": bool(abs(achieved - target) <= tolerance)})

    def pct(outcome: str, arm: str) -> float:
        other = "n_control" if arm == "treatment" else "n_treatment"
        sel = effects[(effects["outcome"] == outcome) & (effects["visit"] == visit) & (effects["measure"] == statistic)
                      & effects[f"n_{arm}"].notna() & effects[other].isna()]
        return float(sel["estimate"].iloc[0])

    def mean_change(outcome: str, arm: str) -> float:
        sel = desc[(desc["outcome"] == outcome) & (desc["visit"] == visit) & (desc["arm"] == arm) & (desc["variable"] == "change")]
        return float(sel["mean"].iloc[0])

    for claim in plan.claims("percent_change"):
        for arm, value in claim.values.items():
            add(claim, f"{claim.outcome} {arm} {statistic}", "tables/effect_sizes.csv", value, pct(claim.outcome, arm),
                rep.tolerance_percent_points)
    for claim in plan.claims("fold"):
        for outcome in claim.outcomes:
            if rep.fold_reading == "ratio_of_percent_improvements":
                achieved = pct(outcome, "treatment") / pct(outcome, "control")
                add(claim, f"{outcome} ratio of percent improvements", "tables/effect_sizes.csv", claim.value, achieved, rep.tolerance_fold)
            else:
                sel = effects[(effects["outcome"] == outcome) & (effects["measure"] == "ratio_of_improvements") & effects["n_boot"].isna()]
                add(claim, f"{outcome} ratio of mean changes", "tables/effect_sizes.csv", claim.value, float(sel["estimate"].iloc[0]),
                    rep.tolerance_fold)
            add(claim, f"{outcome} ratio of mean changes (cross-check)", "tables/descriptives.csv", claim.value,
                mean_change(outcome, "treatment") / mean_change(outcome, "control"), rep.tolerance_fold)
    n = accounting[accounting["item"] == "participants analysed (intention to treat)"]["count"]
    size = plan.claims("sample_size")[0]
    add(size, "participants randomised", "accounting.csv", size.value, float(n.iloc[0]), 0.0)
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------------------------
# Plain-language conclusion
# --------------------------------------------------------------------------------------------


def conclusion_text(plan: PublishedTrial | PublishedCase, tables: dict[str, pd.DataFrame]) -> str:
    """A plain-language paragraph on what can and cannot be concluded, from the computed tables."""
    if isinstance(plan, PublishedCase):
        case, sens = tables["case"].iloc[0], tables["case_sensitivity"]
        share = float(sens["exceeds_mdc"].mean())
        unit = plan.outcome(plan.restored.outcome).unit
        return (
            f"The case report printed only that {plan.restored.value:g}% of lost {plan.outcome(plan.restored.outcome).label.lower()} "
            f"was restored. With a normative value of {case['normative']:g} and a pre-treatment value of {case['pre']:g} "
            f"(both assumed, not reported), that is a gain of {case['change']:.1f} {unit}, against a minimal detectable change "
            f"of {case['mdc']:g} {unit}: {'larger than' if case['exceeds_mdc'] else 'within'} measurement noise, with a band of "
            f"{case['band_low']:.0f}% to {case['band_high']:.0f}% restored. Over the plausible ranges of the three unreported "
            f"values the gain exceeds measurement noise in {share:.0%} of combinations, so the claim is "
            f"{'robust to' if share == 1 else 'sensitive to'} what was not reported. One patient, without a control or repeated "
            "baseline measurements, cannot show that the treatment caused the change."
        )
    consistency, conclusions = tables["consistency"], tables["conclusions"]
    lines = [f"{plan.study.title}: the paper printed "
             + "; ".join(f'"{c.quote}"' for c in plan.reported if c.kind in ("percent_change", "fold"))
             + f" for n = {plan.sample_size}, and no arm means, SDs, correlations or dropout."]
    for spec in plan.claimed_outcomes:
        mine = consistency[consistency["outcome"] == spec.name]
        ok = mine.groupby(["percent_reading", "fold_reading"], sort=False)["passed"].all()
        n_ok, n_all = int(ok.sum()), len(ok)
        p, f = main_scenario(plan, spec.name)
        text = f"{spec.label}: the printed figures fit the assumptions under {n_ok} of {n_all} readings"
        failed = mine[(mine["percent_reading"] == p) & (mine["fold_reading"] == f) & ~mine["passed"]]
        if len(failed):
            text += f"; under the main reading ({p.replace('_', ' ')}, {f.replace('_', ' ')}) they fail: {failed['detail'].iloc[0]}"
        row = conclusions[(conclusions["outcome"] == spec.name) & (conclusions["percent_reading"] == p)
                          & (conclusions["fold_reading"] == f) & (conclusions["measure"] == "d_ppc2")]
        ratio = conclusions[(conclusions["outcome"] == spec.name) & (conclusions["percent_reading"] == p)
                            & (conclusions["fold_reading"] == f) & (conclusions["measure"] == "ratio_of_improvements")]
        if len(row):
            r0 = row.iloc[0]
            text += (f". The implied standardised effect (Morris d_ppc2) is {r0['estimate_central']:.2f} at the central assumptions "
                     f"and ranges from {r0['estimate_min']:.2f} to {r0['estimate_max']:.2f} over the assumption box ({r0['conclusion']})")
        if len(ratio):
            text += f"; for the ratio of improvements the {ratio.iloc[0]['conclusion'].replace('no effect', 'a ratio of 1')}"
        lines.append(text + ".")
    lines.append("What cannot be concluded: the effect sizes and their uncertainty depend on numbers the paper did not print; "
                 "the participant-level replication reproduces the printed figures by construction, so it shows that data "
                 "consistent with them exist, not that the trial found them.")
    return " ".join(lines)


# --------------------------------------------------------------------------------------------
# Orchestration
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReplicationOutputs:
    """The outputs of one ``trialkit replicate``, read back for the notebook."""

    out_dir: Path
    plan: PublishedTrial | PublishedCase

    @classmethod
    def load(cls, out_dir: str | Path) -> ReplicationOutputs:
        root = Path(out_dir)
        return cls(out_dir=root, plan=load_published(root / "published_plan.yaml").plan)

    def table(self, name: str) -> pd.DataFrame:
        return pd.read_csv(self.out_dir / name)

    def has(self, name: str) -> bool:
        return (self.out_dir / name).exists()

    def figure(self, stem: str) -> Path:
        return self.out_dir / "figures" / f"{stem}.png"

    def conclusion(self) -> str:
        return (self.out_dir / "conclusion.txt").read_text(encoding="utf-8")

    def conclusion_html(self) -> str:
        import html

        return html.escape(self.conclusion().strip())

    def run_figures(self) -> list[Path]:
        """The participant-level run's trajectory and change figures (PNG)."""
        return sorted((self.out_dir / "run" / "figures").glob("*.png"))

    def heading_html(self) -> str:
        import html

        p, e = self.plan, html.escape
        if isinstance(p, PublishedCase):
            arms = f"Patient: {e(p.patient)}; intervention: {e(p.intervention)}."
        else:
            arms = (f"Treatment: {e(p.arms.treatment.label)} ({e(p.arms.treatment.description)}); control: "
                    f"{e(p.arms.control.label)}. Follow-up: {e(p.followup.label)} (week {p.followup.week:g}).")
        return (f"<h1>Replicating: {e(p.study.title)}</h1><p>{e(p.study.design_text)}. Source: {e(p.study.source)}. {arms}</p>"
                "<p style='background:#fde68a;padding:6px'>Everything below the printed claims rests on ASSUMPTIONS (listed "
                "with their ranges); participant-level data, where shown, are SIMULATED.</p>")


def _save(fig: Any, stem: Path) -> list[Path]:
    from analysis.reporting.figures import save_figure

    return save_figure(fig, stem)


def replicate(
    plan_path: str | Path,
    out_dir: str | Path,
    *,
    seed: int | None = None,
    render_report: bool = True,
    progress: Callable[[str], None] = lambda _message: None,
) -> Path:
    """Run parts 2-5 for a published-results plan and write everything atomically into ``out_dir``.

    Output tree::

        published_plan.yaml   the plan, copied       claims.csv, assumptions.csv
        implied_arms.csv      arm means/SDs by reading          implied_effects.csv
        consistency.csv, readings.csv                            sensitivity.csv, sd_r_grid.csv
        conclusions.csv, box.csv                                 figures/sensitivity.png|svg
        trial/plan.yaml, participants.csv, measurements.csv     (SIMULATED, calibrated)
        run/                  `trialkit run` on the trial        headline_check.csv
        case.csv, case_sensitivity.csv  (single case)            conclusion.txt
        replication.html      the rendered notebook              manifest.json

    Parameters
    ----------
    plan_path
        A published-results plan (:func:`analysis.plan.published.load_published`).
    out_dir
        Output directory; replaced as a whole only when every step succeeded.
    seed
        Seed of the participant-level draw; the plan's ``replication.seed`` when omitted.
    render_report
        Render ``replication.html`` (and the run's ``report.html``).

    Raises
    ------
    PlanError
        The plan is malformed (exit code 2).
    """
    from analysis.core.output import staged_directory, write_table, write_text
    from analysis.core.provenance import package_versions, sha256_file

    loaded: LoadedPublished = load_published(plan_path)
    plan = loaded.plan
    out = Path(out_dir)
    tables: dict[str, pd.DataFrame] = {"claims": claims_table(plan), "assumptions": assumptions_table(plan)}
    manifest: dict[str, Any] = {"study": plan.study.id, "plan": {"path": str(loaded.path), "sha256": loaded.sha256},
                                "design": plan.design}
    with staged_directory(out) as staging:
        write_text(staging / "published_plan.yaml", loaded.path.read_text(encoding="utf-8-sig"))
        figures = staging / "figures"
        if isinstance(plan, PublishedCase):
            progress("single case: percent restored against measurement error")
            tables["case"] = case_table(plan)
            tables["case_sensitivity"] = case_sensitivity(plan)
            _save(case_figure(plan), figures / "case_restoration")
        else:
            progress("aggregate route: implied arms and effects")
            tables["implied_arms"] = implied_arms_table(plan)
            tables["implied_effects"] = aggregate_route(plan)
            tables["consistency"] = consistency_table(plan)
            progress("sensitivity over the assumptions")
            tables["sensitivity"] = sensitivity_table(plan)
            grids = {spec.name: sd_r_grid(plan, spec.name) for spec in plan.claimed_outcomes}
            tables["sd_r_grid"] = pd.concat([g for g in grids.values()], ignore_index=True)
            tables["conclusions"], tables["box"] = conclusions_table(plan)
            tables["readings"] = readings_summary(plan, tables["consistency"], tables["box"])
            _save(sensitivity_figure(plan, grids), figures / "sensitivity")
            seed = plan.replication.seed if seed is None else seed
            progress(f"participant-level replication (seed {seed})")
            trial_plan = write_replication_trial(plan, staging / "trial", seed)
            from analysis.pipeline import run

            run(trial_plan, staging / "run", seed=seed, render_report=render_report, command=["trialkit", "replicate", str(plan_path)])
            tables["headline_check"] = headline_check(plan, staging / "run")
            manifest["seed"] = seed
            manifest["trial_plan"] = "trial/plan.yaml"
        for name, frame in tables.items():
            write_table(frame, staging / f"{name}.csv")
        write_text(staging / "conclusion.txt", conclusion_text(plan, tables) + "\n")
        if render_report:
            progress("render notebook")
            from analysis.core.resources import notebook_path
            from analysis.reporting.notebook import render_notebook

            template = "replicate_case.ipynb" if isinstance(plan, PublishedCase) else "replicate_trial.ipynb"
            render_notebook(notebook_path(template), {"out_dir": str(staging)}, staging / "replication.html")
        files = sorted(p for p in staging.rglob("*") if p.is_file() and p.name != "manifest.json")
        manifest["packages"] = package_versions()
        manifest["files"] = [{"path": str(p.relative_to(staging)), "sha256": sha256_file(p)} for p in files]
        write_text(staging / "manifest.json", json.dumps(manifest, indent=2) + "\n")
    return out
