"""Reader-facing tables of a run's descriptive side: Table 1, the CONSORT counts, missing values,
descriptive statistics by arm and visit; and what every builder shares (arm headers, outcome
titles, decimals per outcome).

Builders take tidy frames as the run wrote them (``RunOutputs.table(...)``) and the plan, and
return a :class:`~analysis.reporting.tables.model.Table` of formatted text; nothing here rounds a
number that is written to a CSV.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd

from analysis.plan import Plan
from analysis.reporting.tables import formats as fmt
from analysis.reporting.tables.model import Column, Row, Spanner, Table

ARMS = ("treatment", "control")


# ----------------------------------------------------------------------------------------------
# Shared


def ci_text(plan: Plan) -> str:
    """``95% CI`` for the plan's CI level (stated in headers, never as a column of 0.95).

    Examples
    --------
    >>> from types import SimpleNamespace as NS
    >>> ci_text(NS(analysis=NS(ci_level=0.9)))
    '90% CI'
    """
    return f"{100 * plan.analysis.ci_level:g}% CI"


def outcome_title(outcome) -> str:
    """The outcome's label with its unit in parentheses, unless the label already names the unit
    or already ends with a parenthesis (``Pain intensity (NRS 0-10)``): never a doubled unit.

    Examples
    --------
    >>> from types import SimpleNamespace as O
    >>> outcome_title(O(label="PROMIS Pain Interference (T-score)", unit="T-score"))
    'PROMIS Pain Interference (T-score)'
    >>> outcome_title(O(label="Trunk rotation range of motion", unit="degrees"))
    'Trunk rotation range of motion (degrees)'
    >>> outcome_title(O(label="Pain intensity (NRS 0-10)", unit="points"))
    'Pain intensity (NRS 0-10)'
    """
    label = outcome.label.rstrip()
    if outcome.unit and outcome.unit.lower() not in label.lower() and not label.endswith(")"):
        return f"{label} ({outcome.unit})"
    return label


def ordered_outcomes(plan: Plan) -> list:
    """The plan's outcomes, the primary first (every table and figure follows this order)."""
    primary = plan.primary_outcome
    return [primary] + [o for o in plan.outcomes if o.name != primary.name]


def outcome_decimals(plan: Plan, dataset: pd.DataFrame | None) -> dict[str, int]:
    """Decimals of each outcome's means, SDs and estimates: the plan's ``outcomes[].decimals``, or
    one more than the data's own precision (:func:`~analysis.reporting.tables.formats.default_decimals`)."""
    out = {}
    for outcome in plan.outcomes:
        chosen = getattr(outcome, "decimals", None)
        if chosen is None:
            values = [] if dataset is None else dataset.loc[dataset["outcome"] == outcome.name, "value"]
            chosen = fmt.default_decimals(values)
        out[outcome.name] = int(chosen)
    return out


def arm_sizes(missing: pd.DataFrame) -> dict[str, int]:
    """Randomised participants per arm: ``n_expected`` of ``tables/missing.csv`` (every visit
    expects every randomised participant).

    Examples
    --------
    >>> missing = pd.DataFrame({"arm": ["treatment", "control", "treatment"], "n_expected": [60, 58, 60]})
    >>> arm_sizes(missing)
    {'treatment': 60, 'control': 58}
    """
    sizes = missing.groupby("arm")["n_expected"].max()
    return {arm: int(sizes[arm]) for arm in ARMS if arm in sizes.index}


def arm_header(plan: Plan, arm: str, sizes: Mapping[str, int]) -> str:
    """``<plan label>\\nN = n`` (the newline is a line break in HTML and Word).

    Examples
    --------
    >>> from types import SimpleNamespace as NS
    >>> plan = NS(arms=NS(treatment=NS(label="Drug"), control=NS(label="Placebo")))
    >>> arm_header(plan, "control", {"control": 58})
    'Placebo\\nN = 58'
    """
    label = plan.arms.treatment.label if arm == "treatment" else plan.arms.control.label
    return f"{label}\nN = {sizes[arm]}" if arm in sizes else label


def visit_label(plan: Plan, visit: str) -> str:
    """The visit as the plan names it, with its time when the label does not say it.

    Examples
    --------
    >>> from types import SimpleNamespace as NS
    >>> plan = NS(visits=NS(time_unit="weeks", followup=[NS(label="w8", time=8.0), NS(label="week12", time=12.0)]))
    >>> visit_label(plan, "w8"), visit_label(plan, "week12"), visit_label(plan, "baseline")
    ('w8 (week 8)', 'week12', 'baseline')
    """
    for followup in plan.visits.followup:
        if followup.label == visit:
            time = getattr(followup, "time", None)
            unit = getattr(plan.visits, "time_unit", "weeks")
            if time is None:
                return visit
            number = fmt.integer(time) if fmt.is_integer(time) else f"{time:g}"
            word = unit.rstrip("s")
            text = f"{word} {number}"
            return visit if text.replace(" ", "") == visit.replace(" ", "").lower() else f"{visit} ({text})"
    return visit


# ----------------------------------------------------------------------------------------------
# Table 1


def category_labels(plan: Plan, variable) -> dict[str, str]:
    """Code -> printed label for a categorical Table 1 variable: the variable's own ``labels``
    when the plan gives them, else the NIH mapping of sex/race/ethnicity, else none."""
    own = getattr(variable, "labels", None)
    if own:
        return {str(k): str(v) for k, v in dict(own).items()}
    nih = plan.reporting.nih if plan.reporting is not None else None
    if nih is not None and variable.name in ("sex", "race", "ethnicity"):
        return {str(k): str(v) for k, v in getattr(nih, variable.name).items() if k != ""}
    return {}


def baseline_table(stats: pd.DataFrame, plan: Plan, variables: Sequence, decimals: int = 1) -> Table:
    """Table 1: baseline characteristics by arm and overall, from :func:`analysis.reporting.table1.table1_stats`.

    Continuous variables: ``Mean (SD)`` and ``Median [Q1, Q3]``; categorical: ``n (%)`` per level
    (codes shown by label, :func:`category_labels`); ``Missing`` when any value is missing. One
    column per arm headed with its plan label and ``N = n``.
    """
    n_rows = stats[stats["row"] == "N"].groupby("group")["n"].first()
    sizes = {g: int(n_rows[g]) for g in n_rows.index}
    columns = [Column("label", "Characteristic", "left")]
    for group in ("treatment", "control", "overall"):
        title = "Overall" if group == "overall" else (plan.arms.treatment.label if group == "treatment" else plan.arms.control.label)
        columns.append(Column(group, f"{title}\nN = {sizes.get(group, 0)}"))
    rows: list[Row] = []
    for variable in variables:
        part = stats[stats["variable"] == variable.name]
        if part.empty:
            continue

        def cells(kind: str, level: str | None = None, part=part) -> dict[str, str]:
            out = {}
            for group in ("treatment", "control", "overall"):
                sel = part[(part["row"] == kind) & (part["group"] == group)]
                if level is not None:
                    sel = sel[sel["level"].astype(str) == level]
                if sel.empty:
                    out[group] = ""
                    continue
                r = sel.iloc[0]
                if kind == "summary":
                    out[group] = (r["mean"], r["sd"], r["median"], r["q1"], r["q3"])  # type: ignore[assignment]
                elif kind == "level":
                    out[group] = fmt.n_percent(r["n"], r["denominator"], 1)
                else:
                    out[group] = fmt.integer(r["n"])
            return out

        if variable.kind == "continuous":
            group_name = variable.label
            summary = cells("summary")
            rows.append(Row({"label": "Mean (SD)"} | {g: fmt.mean_sd(v[0], v[1], decimals) if v else "" for g, v in summary.items()},
                            group=group_name))
            rows.append(Row({"label": "Median [Q1, Q3]"} | {g: fmt.median_iqr(v[2], v[3], v[4], decimals) if v else ""
                                                            for g, v in summary.items()}, group=group_name))
        else:
            group_name = f"{variable.label}, n (%)"
            labels = category_labels(plan, variable)
            levels = list(dict.fromkeys(part.loc[part["row"] == "level", "level"].astype(str)))
            for level in levels:
                rows.append(Row({"label": labels.get(level, level)} | cells("level", level), group=group_name))
        missing = cells("missing")
        if any(text not in ("", "0") for text in missing.values()):
            rows.append(Row({"label": "Missing"} | missing, group=group_name))
    return Table(
        title="Table 1. Baseline characteristics by arm",
        columns=tuple(columns),
        rows=tuple(rows),
        footnotes=(
            "Continuous: mean (SD) and median [Q1, Q3] of participants with a value; categorical: n (%) of "
            "participants with a value. No p-values: differences at baseline are due to chance by randomisation (CONSORT).",
        ),
        anchor="table-1",
    )


# ----------------------------------------------------------------------------------------------
# CONSORT counts and missing values

_STAGES = {
    "assessed": "Assessed for eligibility",
    "excluded": "Excluded",
    "randomised": "Randomised",
    "allocated": "Allocated",
    "received": "Received allocated intervention",
    "lost_to_follow_up": "Lost to follow-up",
    "discontinued": "Discontinued intervention / withdrew",
    "analysed": "Analysed (primary analysis)",
    "excluded_from_analysis": "Excluded from analysis",
}


def consort_table(counts: pd.DataFrame, plan: Plan) -> Table:
    """The CONSORT flow counts (:func:`analysis.reporting.consort.consort_flow` ``.counts``): one
    row per stage and reason, one column per arm."""
    columns = (Column("label", "Stage", "left"), Column("treatment", plan.arms.treatment.label),
               Column("control", plan.arms.control.label), Column("all", "Total"))
    rows: list[Row] = []
    keys: list[tuple[str, str, str]] = []
    for level, stage, reason in counts[["level", "stage", "reason"]].astype(str).itertuples(index=False):
        key = (level, stage, reason)
        if key not in keys:
            keys.append(key)
    for level, stage, reason in keys:
        part = counts[(counts["level"].astype(str) == level) & (counts["stage"].astype(str) == stage)
                      & (counts["reason"].astype(str) == reason)]
        by_arm = {arm: fmt.integer(n) if not pd.isna(n) else "not recorded" for arm, n in zip(part["arm"], part["n"], strict=True)}
        if "all" not in by_arm:
            # a reason no one in an arm had is not listed for that arm: it is a zero
            by_arm = {arm: by_arm.get(arm, "0") for arm in ARMS}
            if all(by_arm[arm].isdigit() for arm in ARMS):
                by_arm["all"] = fmt.integer(int(by_arm["treatment"]) + int(by_arm["control"]))
            else:
                by_arm["all"] = "not recorded"
        indent = "\u00a0" * 4  # a reason sits under its stage (plain spaces would collapse in HTML)
        label = _STAGES.get(stage, stage) if reason in ("", "nan", "<NA>") else f"{indent}{reason}"
        rows.append(Row({"label": label} | by_arm, group=level))
    return Table(title="CONSORT flow: participants at each stage", columns=columns, rows=tuple(rows),
                 footnotes=(f"Analysed: the primary analysis of {plan.primary_outcome.label} at {plan.visits.primary} "
                            f"({plan.analysis.primary_model.upper()}).",), anchor="consort-counts")


def missing_table(missing: pd.DataFrame, plan: Plan) -> Table:
    """Observed and missing values by outcome (primary first), visit and arm."""
    sizes = arm_sizes(missing)
    columns = [Column("label", "Visit", "left")]
    spanners = []
    for arm in ARMS:
        columns += [Column(f"{arm}_obs", "Observed"), Column(f"{arm}_mis", "Missing, n (%)")]
        spanners.append(Spanner(arm_header(plan, arm, sizes), (f"{arm}_obs", f"{arm}_mis")))
    rows = []
    for outcome in ordered_outcomes(plan):
        part = missing[missing["outcome"] == outcome.name]
        for visit in plan.visits.labels:
            cells = {"label": visit_label(plan, visit)}
            for arm in ARMS:
                sel = part[(part["visit"] == visit) & (part["arm"] == arm)]
                if sel.empty:
                    continue
                r = sel.iloc[0]
                cells[f"{arm}_obs"] = fmt.integer(r["n_observed"])
                cells[f"{arm}_mis"] = fmt.n_percent(r["n_missing"], r["n_expected"], 1)
            rows.append(Row(cells, group=outcome_title(outcome)))
    return Table(title="Missing values by outcome, visit and arm", columns=tuple(columns), rows=tuple(rows),
                 spanners=tuple(spanners), footnotes=("Percentages of the randomised participants of the arm.",),
                 anchor="missing-values")


# ----------------------------------------------------------------------------------------------
# Descriptives


def descriptives_table(descriptives: pd.DataFrame, plan: Plan, outcome, decimals: int,
                       sizes: Mapping[str, int]) -> Table:
    """Observed values and change from baseline of one outcome by visit and arm: n, Mean (SD),
    Median [Q1, Q3]; ``sizes`` the randomised participants per arm (:func:`arm_sizes`)."""
    columns = [Column("label", "Visit", "left")]
    spanners = []
    for arm in ARMS:
        keys = (f"{arm}_n", f"{arm}_mean", f"{arm}_median")
        columns += [Column(keys[0], "n"), Column(keys[1], "Mean (SD)"), Column(keys[2], "Median [Q1, Q3]")]
        spanners.append(Spanner(arm_header(plan, arm, sizes), keys))
    part = descriptives[descriptives["outcome"] == outcome.name]
    rows = []
    for variable, group in (("value", "Observed value"), ("change", "Change from baseline")):
        for visit in plan.visits.labels:
            sel = part[(part["visit"] == visit) & (part["variable"] == variable)]
            if sel.empty:
                continue
            cells = {"label": visit_label(plan, visit)}
            for arm in ARMS:
                r = sel[sel["arm"] == arm]
                if r.empty:
                    continue
                r = r.iloc[0]
                cells[f"{arm}_n"] = fmt.integer(r["n"])
                cells[f"{arm}_mean"] = fmt.mean_sd(r["mean"], r["sd"], decimals)
                cells[f"{arm}_median"] = fmt.median_iqr(r["median"], r["q1"], r["q3"], decimals)
            rows.append(Row(cells, group=group))
    return Table(title=f"{outcome_title(outcome)}: observed values and change from baseline by arm",
                 columns=tuple(columns), rows=tuple(rows), spanners=tuple(spanners),
                 footnotes=("n: participants with a value. Change = visit value - baseline value.",),
                 anchor=f"descriptives-{outcome.name}")
