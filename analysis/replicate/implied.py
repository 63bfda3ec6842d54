"""The aggregate route and the sensitivity to the assumptions (parts 2 and 3 of :mod:`analysis.replicate`).

Implied arm summaries through the effect-size engine, the feasibility checks of each pair of
readings, one-at-a-time sensitivity, the baseline-SD x correlation grid and its figure, and the
range of conclusions over the factorial box of the assumptions.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from analysis.core.errors import UsageError
from analysis.core.tidy import OPTIONAL_COLUMNS, RESULT_COLUMNS, contrast_label, tidy_frame
from analysis.plan.published import PublishedOutcome, PublishedTrial
from analysis.replicate.claims import (
    REPORTED,
    ImpliedArms,
    assumptions_of,
    implied_arms,
    main_scenario,
    responder_proportion,
    scenarios,
)
from analysis.stats.effects import (
    d_ppc2,
    log_ratio_of_means,
    mean_difference,
    percent_change_of_means,
    ratio_of_improvements,
    standardized_mean_difference,
)

OUT_OF_RANGE_LIMIT = 0.05  # largest share of the implied follow-up distribution allowed outside the instrument's range
LEVELS = ("low", "value", "high")


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
    """Effect sizes implied by one :class:`~analysis.replicate.claims.ImpliedArms`, in the tidy vocabulary.

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
    """The consistency checks of one :class:`~analysis.replicate.claims.ImpliedArms` (see :func:`consistency_table`)."""
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
