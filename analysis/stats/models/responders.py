"""Responder analysis: per-arm responder proportions and their comparison.

A participant responds at a visit when the improvement from baseline reaches the outcome's MCID:
``sign * change >= points`` and/or ``sign * pct_change >= percent`` with ``sign = +1`` when higher
is better and ``-1`` when lower is better (so a 30% fall in pain is a 30% improvement). Each
definition the plan gives is analysed separately. A missing outcome is a non-responder or left
out, as ``plan.analysis.responder_missing`` says; the row's note states which, with the counts.

Measures (treatment vs control; the responder is the good event, so a positive risk difference
favours treatment):

* per-arm responder proportion with the Wilson score interval;
* risk difference with the Wald interval and with Newcombe's (1998) hybrid score interval
  (method 10), both from statsmodels ``confint_proportions_2indep``;
* risk ratio and odds ratio with log-scale (Katz / Woolf) intervals, from statsmodels
  ``Table2x2``; when a cell is zero, 0.5 is added to all four cells (Haldane-Anscombe), as stated
  in ``method``;
* number needed to treat, 1 / RD, with the interval obtained by inverting the Newcombe RD limits
  (Altman 1998; Bender 2001): positive values are NNT to benefit (NNTB), negative ones NNT to harm
  (NNTH). When the RD interval includes 0 the NNT interval passes through infinity; then
  ``ci_low`` is the NNTB limit, ``ci_high`` the (negative) NNTH limit, and ``note`` spells out
  "NNTB a to infinity to NNTH b".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.stats.contingency_tables import Table2x2
from statsmodels.stats.proportion import confint_proportions_2indep, proportion_confint

from analysis.core.errors import UsageError
from analysis.core.tidy import check_ci_level, contrast_label, tidy_frame
from analysis.derive.dataset import derive_responders
from analysis.stats.models.design import ARMS, require_columns

if TYPE_CHECKING:
    from analysis.plan import Outcome, Plan


@dataclass(frozen=True)
class NntInterval:
    """NNT and its interval from a risk difference and its interval (Altman 1998).

    Attributes
    ----------
    estimate
        1 / rd (positive: NNTB; negative: NNTH; infinite when rd = 0).
    ci_low, ci_high
        When the RD interval excludes 0: the NNT interval (1 / rd_high, 1 / rd_low). When it
        includes 0: ci_low = 1 / rd_high (the NNTB limit) and ci_high = 1 / rd_low (the NNTH limit,
        negative): the interval is [NNTB ci_low, infinity] joined to [-infinity, NNTH |ci_high|].
    crosses_zero
        Whether the RD interval includes 0.
    text
        The interval as Altman writes it, e.g. "NNTB 4.0 to infinity to NNTH 20.0".
    """

    estimate: float
    ci_low: float
    ci_high: float
    crosses_zero: bool
    text: str


def _nnt_label(value: float) -> str:
    if np.isinf(value):
        return "infinity"
    return f"NNTB {value:.1f}" if value > 0 else f"NNTH {abs(value):.1f}"


def nnt_interval(rd: float, rd_low: float, rd_high: float) -> NntInterval:
    """Invert a risk difference (benefit positive) and its CI into an NNT and its CI.

    Examples
    --------
    >>> nnt_interval(0.10, -0.05, 0.25).text
    'NNT 10.0 (NNTB 4.0 to infinity to NNTH 20.0)'
    """
    if not all(np.isfinite(v) and abs(v) <= 1.0 + 1e-9 for v in (rd, rd_low, rd_high)):  # rounding
        raise UsageError(
            f"a risk difference and its limits must be numbers in [-1, 1], got {rd}, ({rd_low}, {rd_high})"
        )
    if not rd_low <= rd <= rd_high:
        raise UsageError(
            f"the risk difference {rd} is not inside its interval ({rd_low}, {rd_high})"
        )
    with np.errstate(divide="ignore", over="ignore"):  # 1/0 (or 1/denormal) is the NNT's infinity
        estimate = float(np.divide(1.0, rd))
        low = float(np.divide(1.0, rd_high))
        high = float(np.divide(1.0, rd_low))
    crosses = rd_low <= 0.0 <= rd_high
    head = f"NNT {abs(estimate):.1f}" if np.isfinite(estimate) else "NNT infinity"
    if crosses:
        text = f"{head} ({_nnt_label(low)} to infinity to {_nnt_label(high)})"
    else:
        text = f"{head} ({_nnt_label(low)} to {_nnt_label(high)})"
    return NntInterval(estimate=estimate, ci_low=low, ci_high=high, crosses_zero=crosses, text=text)


def compare_proportions(
    events_treatment: int,
    n_treatment: int,
    events_control: int,
    n_control: int,
    *,
    ci_level: float = 0.95,
) -> list[dict[str, object]]:
    """Risk difference (Wald, Newcombe), risk ratio, odds ratio and NNT of two proportions.

    Returns tidy rows (without outcome/visit/contrast) in the order: RD Wald, RD Newcombe, RR,
    OR, NNT. Ratios are treatment / control; ``std_error`` of a ratio is on the log scale.

    Examples
    --------
    >>> rows = compare_proportions(56, 70, 48, 80)
    >>> [round(r["ci_low"], 4) for r in rows[:2]]
    [0.0575, 0.0524]
    """
    counts_in = (events_treatment, n_treatment, events_control, n_control)
    if not all(
        isinstance(v, int | float | np.integer | np.floating) and not isinstance(v, bool)
        and np.isfinite(v) and float(v) == int(v)
        for v in counts_in
    ):
        raise UsageError(f"event counts and arm sizes must be whole numbers, got {counts_in}")
    a, n1, c, n2 = (int(v) for v in counts_in)
    if min(n1, n2) < 1 or not (0 <= a <= n1 and 0 <= c <= n2):
        raise UsageError(f"invalid counts: {a}/{n1} vs {c}/{n2}")
    check_ci_level(ci_level)
    alpha = 1.0 - ci_level
    p1, p2 = a / n1, c / n2
    rd = p1 - p2
    counts = {
        "n_treatment": n1,
        "n_control": n2,
        "events_treatment": a,
        "events_control": c,
        "ci_level": ci_level,
    }
    se_rd = float(np.sqrt(p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2))
    wald = confint_proportions_2indep(a, n1, c, n2, method="wald", compare="diff", alpha=alpha)
    newcombe = confint_proportions_2indep(
        a, n1, c, n2, method="newcomb", compare="diff", alpha=alpha
    )
    stat = rd / se_rd if se_rd > 0 else np.nan
    rows: list[dict[str, object]] = [
        {
            **counts,
            "measure": "risk difference",
            "estimate": rd,
            "std_error": se_rd,
            "statistic": stat,
            "p_value": float(2.0 * stats.norm.sf(abs(stat))) if se_rd > 0 else np.nan,
            "ci_low": float(wald[0]),
            "ci_high": float(wald[1]),
            "method": "risk difference, Wald interval and z test",
            **(
                {"note": "every participant of each arm has the same response (proportions 0 or 1): "
                         "Wald SE 0, no z test, zero-width interval; see the Newcombe interval"}
                if se_rd == 0
                else {}
            ),
        },
        {
            **counts,
            "measure": "risk difference",
            "estimate": rd,
            "ci_low": float(newcombe[0]),
            "ci_high": float(newcombe[1]),
            "method": "risk difference, Newcombe (1998) hybrid score interval (method 10)",
        },
    ]
    table = np.array([[a, n1 - a], [c, n2 - c]], dtype=float)
    corrected = bool((table == 0).any())
    if corrected:
        table = table + 0.5
    t22 = Table2x2(table, shift_zeros=False)
    suffix = "; 0.5 added to every cell (a cell was zero)" if corrected else ""
    rr_low, rr_high = t22.riskratio_confint(alpha=alpha)
    or_low, or_high = t22.oddsratio_confint(alpha=alpha)
    rows.append(
        {
            **counts,
            "measure": "risk ratio",
            "estimate": float(t22.riskratio),
            "std_error": float(t22.log_riskratio_se),
            "statistic": float(t22.log_riskratio / t22.log_riskratio_se),
            "p_value": float(t22.log_riskratio_pvalue()),
            "ci_low": float(rr_low),
            "ci_high": float(rr_high),
            "method": "risk ratio, log-scale (Katz) interval; std_error on the log scale" + suffix,
        }
    )
    rows.append(
        {
            **counts,
            "measure": "odds ratio",
            "estimate": float(t22.oddsratio),
            "std_error": float(t22.log_oddsratio_se),
            "statistic": float(t22.log_oddsratio / t22.log_oddsratio_se),
            "p_value": float(t22.log_oddsratio_pvalue()),
            "ci_low": float(or_low),
            "ci_high": float(or_high),
            "method": "odds ratio, log-scale (Woolf) interval; std_error on the log scale" + suffix,
        }
    )
    nnt = nnt_interval(rd, float(newcombe[0]), float(newcombe[1]))
    rows.append(
        {
            **counts,
            "measure": "NNT",
            "estimate": nnt.estimate,
            "ci_low": nnt.ci_low,
            "ci_high": nnt.ci_high,
            "method": (
                "number needed to treat = 1 / risk difference (positive: benefit, NNTB; negative: harm, NNTH); "
                "interval inverts the Newcombe RD limits (Altman 1998)"
            ),
            "note": nnt.text,
        }
    )
    return rows


def _definitions(outcome: Outcome) -> list[tuple[str, str, float]]:
    """(definition name, responder flag column, threshold) for each MCID the plan gives."""
    if outcome.mcid is None:
        return []
    found = []
    if outcome.mcid.points is not None:
        found.append(("points", "responder_points", outcome.mcid.points))
    if outcome.mcid.percent is not None:
        found.append(("percent", "responder_percent", outcome.mcid.percent))
    return found


def responders_table(dataset: pd.DataFrame, plan: Plan) -> pd.DataFrame:
    """Responder analysis for every outcome with an MCID, at every follow-up visit.

    For each outcome x follow-up visit x MCID definition (points, percent): two per-arm rows
    (``measure`` "responder proportion", Wilson interval, ``contrast`` naming the arm), then risk
    difference (Wald; Newcombe), risk ratio, odds ratio and NNT (see the module docstring).
    Missing outcomes follow ``plan.analysis.responder_missing``: ``non_responder`` counts them as
    non-responders (denominator: every participant of the arm), ``complete_case`` leaves them out.
    Responder flags are the dataset's ``responder_points`` / ``responder_percent`` (improvement
    ``>=`` MCID, :func:`analysis.derive.dataset.derive_responders`); when the dataset lacks them they are
    derived here with that same function.

    Parameters
    ----------
    dataset
        The long analysis dataset (``participant_id, arm, outcome, visit, value, change,
        pct_change``, and the responder flags when present).
    plan
        The study plan: outcomes with their MCID and direction, follow-up visits, arm labels,
        ``analysis.ci_level`` and ``analysis.responder_missing``.

    Returns
    -------
    pandas.DataFrame
        Tidy columns plus ``events_treatment``, ``events_control`` and ``note``.

    Examples
    --------
    Lower pain is better and the MCID is 2 points, so 3 of 4 treatment and 1 of 4 control
    participants respond (changes -3, -4, -2.5 and -2):

    >>> import pandas as pd
    >>> from analysis.plan import parse_plan
    >>> plan = parse_plan('''
    ... study: {id: demo, title: Demo trial}
    ... seed: 1
    ... data: {participants: {path: participants.csv}, measurements: {path: measurements.csv}}
    ... arms: {treatment: {label: Drug, codes: [D]}, control: {label: Placebo, codes: [P]}}
    ... visits: {baseline: baseline, followup: [{label: week8, week: 8}], primary: week8}
    ... outcomes:
    ... - {name: pain, label: Pain, unit: points, range: [0, 10], better: lower, mcid: {points: 2}}
    ... ''')
    >>> change = [-3.0, -4.0, -1.0, -2.5, -1.0, -2.0, 0.0, -0.5]
    >>> dataset = pd.DataFrame({
    ...     "participant_id": ["t1", "t2", "t3", "t4", "c1", "c2", "c3", "c4"],
    ...     "arm": ["treatment"] * 4 + ["control"] * 4, "outcome": "pain", "visit": "week8",
    ...     "value": [7.0 + c for c in change], "change": change,
    ...     "pct_change": [100 * c / 7.0 for c in change]})
    >>> table = responders_table(dataset, plan)
    >>> print(table[["contrast", "measure", "estimate", "ci_low", "ci_high"]].round(3).to_string(index=False))
          contrast              measure  estimate  ci_low  ci_high
              Drug responder proportion      0.75   0.301    0.954
           Placebo responder proportion      0.25   0.046    0.699
    Drug - Placebo      risk difference      0.50  -0.100    1.100
    Drug - Placebo      risk difference      0.50  -0.135    0.789
    Drug / Placebo           risk ratio      3.00   0.501   17.954
    Drug / Placebo           odds ratio      9.00   0.367  220.927
    Drug - Placebo                  NNT      2.00   1.267   -7.381

    RD = 0.75 - 0.25, RR = 0.75 / 0.25, OR = (3 x 3) / (1 x 1), NNT = 1 / RD. The first risk
    difference interval is Wald's (here beyond 1), the second Newcombe's; the NNT interval
    inverts Newcombe's limits and passes through infinity:

    >>> print(table["note"].iloc[-1])
    NNT 2.0 (NNTB 1.3 to infinity to NNTH 7.4); responder: improvement >= 2 points (lower is
    better); missing counted as non-responders; missing: treatment 0, control 0
    """
    require_columns(
        dataset,
        ["participant_id", "arm", "outcome", "visit", "value", "change", "pct_change"],
        "the analysis dataset",
    )
    if not {"responder_points", "responder_percent"} <= set(dataset.columns):
        dataset = derive_responders(dataset, plan.outcomes)
    ci_level = plan.analysis.ci_level
    policy = plan.analysis.responder_missing
    labels = {"treatment": plan.arms.treatment.label, "control": plan.arms.control.label}
    contrast = contrast_label(labels["treatment"], labels["control"])
    ratio_contrast = contrast_label(labels["treatment"], labels["control"], ratio=True)
    rows: list[dict[str, object]] = []
    for outcome in plan.outcomes:
        definitions = _definitions(outcome)
        part = dataset.loc[dataset["outcome"] == outcome.name]
        if not definitions or part.empty:
            continue
        for visit in [v.label for v in plan.visits.followup]:
            at_visit = part.loc[part["visit"].astype(str) == visit]
            if at_visit.empty:
                continue
            for name, column, threshold in definitions:
                flags = at_visit[column].astype("boolean")
                counts = {}
                for arm in ARMS:
                    in_arm = (at_visit["arm"] == arm).to_numpy()
                    arm_flags = flags[in_arm]
                    missing = int(arm_flags.isna().sum())
                    events = int(arm_flags.fillna(False).sum())
                    total = (
                        int(in_arm.sum())
                        if policy == "non_responder"
                        else int(in_arm.sum()) - missing
                    )
                    counts[arm] = (events, total, missing)
                unit = "%" if name == "percent" else f" {outcome.unit}"
                definition = (
                    f"responder: improvement >= {threshold:g}{unit} "
                    f"({'lower' if outcome.better == 'lower' else 'higher'} is better)"
                )
                handling = (
                    "missing counted as non-responders"
                    if policy == "non_responder"
                    else "complete cases (missing excluded)"
                )
                note = (
                    f"{definition}; {handling}; missing: treatment {counts['treatment'][2]}, "
                    f"control {counts['control'][2]}"
                )
                base = {"outcome": outcome.name, "visit": visit}
                for arm in ARMS:
                    events, total, _missing = counts[arm]
                    low, high = (
                        proportion_confint(events, total, alpha=1 - ci_level, method="wilson")
                        if total
                        else (np.nan, np.nan)
                    )
                    rows.append(
                        {
                            **base,
                            "contrast": labels[arm],
                            "measure": "responder proportion",
                            "estimate": events / total if total else np.nan,
                            "ci_low": float(low),
                            "ci_high": float(high),
                            "ci_level": ci_level,
                            "method": f"responder proportion ({name} MCID), Wilson score interval",
                            "n_treatment": total if arm == "treatment" else None,
                            "n_control": total if arm == "control" else None,
                            "events_treatment": events if arm == "treatment" else None,
                            "events_control": events if arm == "control" else None,
                            "note": note,
                        }
                    )
                (a, n1, _), (c, n2, _) = counts["treatment"], counts["control"]
                if min(n1, n2) == 0:
                    rows.append(
                        {
                            **base,
                            "contrast": contrast,
                            "measure": "risk difference",
                            "ci_level": ci_level,
                            "method": f"not estimable ({name} MCID)",
                            "n_treatment": n1,
                            "n_control": n2,
                            "events_treatment": a,
                            "events_control": c,
                            "note": f"an arm has no analysable participant; {note}",
                        }
                    )
                    continue
                for row in compare_proportions(a, n1, c, n2, ci_level=ci_level):
                    ratio = row["measure"] in ("risk ratio", "odds ratio")
                    row_note = f"{row['note']}; {note}" if "note" in row else note
                    rows.append(
                        {
                            **base,
                            **row,
                            "contrast": ratio_contrast if ratio else contrast,
                            "method": f"{row['method']} ({name} MCID)",
                            "note": row_note,
                        }
                    )
    return tidy_frame(rows)
