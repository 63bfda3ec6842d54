"""Participant-level replication (part 4 of :mod:`analysis.replicate`).

The generated SIMULATED trial plan, the calibration by construction of a draw from
:mod:`analysis.replicate.simulate` to the published figures, writing that trial, and checking the
pipeline run on it against the published headline figures.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml
from scipy import optimize

from analysis.core.errors import PlanError
from analysis.plan.published import PublishedTrial
from analysis.replicate.claims import central_values, implied_arms, main_scenario

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
