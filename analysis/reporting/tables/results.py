"""Reader-facing tables of a run's estimates: the primary and secondary analyses, responders (with
the NNT per Altman 1998), the missing-data sensitivity analyses and the effect sizes.

Each takes the tidy frame as the run wrote it (``tables/models.csv``, ``responders.csv``,
``effect_sizes.csv``, ``between_arms.csv``) and the plan. Estimates print as
``-4.04 (-6.28, -1.81)``, the CI level in the header; methods, df, covariance, imputation and seeds
go to the footnotes, each stated once.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import pandas as pd

from analysis.plan import Plan
from analysis.reporting.tables import formats as fmt
from analysis.reporting.tables.builders import (
    ARMS,
    arm_header,
    ci_text,
    ordered_outcomes,
    outcome_title,
    visit_label,
)
from analysis.reporting.tables.model import Column, Row, Spanner, Table


def _arm_label(plan: Plan, arm: str) -> str:
    return plan.arms.treatment.label if arm == "treatment" else plan.arms.control.label


def _note_parts(note: object) -> list[str]:
    return [] if pd.isna(note) else [part.strip() for part in str(note).split(";") if part.strip()]


def _unique(items: Sequence[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(i for i in items if i))


def _without_mcid(method: object) -> str:
    """A responder method without its ``(points MCID)`` tag: the row group already says which."""
    return re.sub(r" \((points|percent) MCID\)", "", str(method))


# ----------------------------------------------------------------------------------------------
# Primary and secondary analyses


def _model_label(row: pd.Series, plan: Plan) -> str:
    visit = visit_label(plan, str(row["visit"]))
    method = str(row["method"])
    measure = str(row["measure"])
    if measure == "adjusted mean difference" and "HC3" in method:
        return f"ANCOVA at {visit}, robust (HC3) SE"
    if measure == "adjusted mean difference":
        return f"ANCOVA at {visit}: adjusted mean difference"
    if measure == "standardised adjusted mean difference":
        return f"ANCOVA at {visit}: standardised difference"
    if measure == "LS-mean difference":
        return f"MMRM at {visit}: LS-mean difference"
    return f"{measure} at {visit}"


def _model_order(row: pd.Series, plan: Plan) -> tuple[int, int, int]:
    role = 0 if "primary model" in _note_parts(row["note"]) else 1
    kind = {"adjusted mean difference": 0, "standardised adjusted mean difference": 2}.get(str(row["measure"]), 3)
    if kind == 0 and "HC3" in str(row["method"]):
        kind = 1
    visits = plan.visits.labels
    return role, kind, visits.index(row["visit"]) if row["visit"] in visits else len(visits)


def analysis_table(models: pd.DataFrame, plan: Plan, outcomes: Sequence, decimals: Mapping[str, int],
                   sizes: Mapping[str, int], title: str, anchor: str) -> Table:
    """The fitted models of ``outcomes`` (primary and secondary model, not the sensitivity
    analyses): per arm n and adjusted mean (CI), the difference treatment minus control (CI), df
    and p (and the multiplicity-adjusted p when the run computed one)."""
    ci = ci_text(plan)
    adjusted = models["p_adjusted"].notna().any() if "p_adjusted" in models else False
    frame = models[models["outcome"].isin([o.name for o in outcomes])]
    if adjusted:
        adjusted = frame["p_adjusted"].notna().any()
    columns = [Column("label", "Analysis", "left")]
    spanners = []
    for arm in ARMS:
        columns += [Column(f"{arm}_n", "n"), Column(f"{arm}_est", f"Adjusted mean ({ci})")]
        spanners.append(Spanner(arm_header(plan, arm, sizes), (f"{arm}_n", f"{arm}_est")))
    columns += [Column("diff", f"Difference ({ci})"), Column("df", "df"), Column("p", "p-value")]
    if adjusted:
        columns.append(Column("p_adj", f"p-value ({plan.analysis.multiplicity.capitalize()}-adjusted)"))
    rows: list[Row] = []
    methods: list[str] = []
    notes: list[str] = []
    for outcome in outcomes:
        d = decimals.get(outcome.name, 2)
        part = frame[(frame["outcome"] == outcome.name)]
        means = part[part["measure"] == "adjusted mean"]
        fits = part[part["measure"].isin(["adjusted mean difference", "standardised adjusted mean difference", "LS-mean difference"])]
        fits = fits[~fits["note"].fillna("").str.contains("sensitivity analysis")]
        order = sorted(range(len(fits)), key=lambda i: _model_order(fits.iloc[i], plan))
        for i in order:
            r = fits.iloc[i]
            standardised = r["measure"] == "standardised adjusted mean difference"
            cells = {"label": _model_label(r, plan),
                     "diff": fmt.estimate_ci(r["estimate"], r["ci_low"], r["ci_high"], 2 if standardised else d),
                     "df": fmt.degrees_of_freedom(r["df"]), "p": fmt.p_value(r["p_value"])}
            if adjusted:
                cells["p_adj"] = fmt.p_value(r.get("p_adjusted"))
            if not standardised:
                for arm in ARMS:
                    cells[f"{arm}_n"] = fmt.integer(r[f"n_{arm}"])
            if r["measure"] == "adjusted mean difference" and "HC3" not in str(r["method"]):
                for arm in ARMS:
                    sel = means[(means["contrast"] == _arm_label(plan, arm)) & (means["visit"] == r["visit"])]
                    if not sel.empty:
                        m = sel.iloc[0]
                        cells[f"{arm}_est"] = fmt.estimate_ci(m["estimate"], m["ci_low"], m["ci_high"], d)
            rows.append(Row(cells, group=outcome_title(outcome) if len(outcomes) > 1 else ""))
            label = ("Standardised difference" if standardised else "Robust SE" if "HC3" in str(r["method"])
                     else str(r["method"]).split(",")[0].split(" (")[0])
            methods.append(f"{label}: {r['method']}.")
            extra = [p.replace("p_adjusted:", "adjusted p:") for p in _note_parts(r["note"])
                     if p not in ("primary outcome", "secondary outcome", "primary model", "secondary model")]
            if extra and "HC3" not in str(r["method"]) and not standardised:
                notes.append(f"{outcome.label}, {label}: " + "; ".join(extra) + ".")
    footnotes = [
        f"Differences are {plan.arms.treatment.label} minus {plan.arms.control.label}; {ci}: {100 * plan.analysis.ci_level:g}% confidence interval. "
        f"Primary model: {plan.analysis.primary_model.upper()}.",
        *_unique(methods),
        *_unique(notes),
    ]
    if adjusted:
        footnotes.append(f"p-values adjusted across the secondary outcomes ({plan.analysis.multiplicity}).")
    return Table(title=title, columns=tuple(columns), rows=tuple(rows), spanners=tuple(spanners),
                 footnotes=tuple(footnotes), anchor=anchor)


def primary_table(models: pd.DataFrame, plan: Plan, decimals: Mapping[str, int], sizes: Mapping[str, int]) -> Table:
    """Table 2: the primary outcome's primary (and secondary) model."""
    return analysis_table(models, plan, [plan.primary_outcome], decimals, sizes,
                          f"Table 2. Primary outcome: {outcome_title(plan.primary_outcome)}", "table-2")


def secondary_table(models: pd.DataFrame, plan: Plan, decimals: Mapping[str, int], sizes: Mapping[str, int]) -> Table:
    """Table 3: every secondary outcome, in plan order."""
    return analysis_table(models, plan, ordered_outcomes(plan)[1:], decimals, sizes,
                          "Table 3. Secondary outcomes", "table-3")


# ----------------------------------------------------------------------------------------------
# Missing-data sensitivity


def sensitivity_table(models: pd.DataFrame, plan: Plan, decimals: Mapping[str, int]) -> Table:
    """The primary outcome at the primary visit under each handling of missing data: complete
    cases (the ANCOVA), MMRM (missing at random, all visits), multiple imputation, and the tipping
    point of the delta-adjusted imputation."""
    outcome = plan.primary_outcome
    d = decimals.get(outcome.name, 2)
    ci = ci_text(plan)
    visit = plan.visits.primary
    part = models[(models["outcome"] == outcome.name) & (models["visit"] == visit)]
    rows: list[Row] = []
    methods: list[str] = []
    wanted = [
        ("Complete cases (ANCOVA)", (part["measure"] == "adjusted mean difference") & ~part["method"].str.contains("HC3")
         & ~part["note"].fillna("").str.contains("sensitivity analysis")),
        ("All observed visits, missing at random (MMRM)", part["measure"] == "LS-mean difference"),
        ("Multiple imputation, missing at random", (part["measure"] == "adjusted mean difference")
         & part["method"].str.startswith("multiple imputation")),
    ]
    for label, mask in wanted:
        sel = part[mask]
        if sel.empty:
            continue
        r = sel.iloc[0]
        extra = [p for p in _note_parts(r["note"]) if p not in ("primary outcome", "primary model", "secondary model", "sensitivity analysis")
                 and not p.startswith("n_boot holds")]  # a remark about the CSV's columns, not the analysis
        rows.append(Row({"label": label, "n": f"{fmt.integer(r['n_treatment'])} / {fmt.integer(r['n_control'])}",
                         "est": fmt.estimate_ci(r["estimate"], r["ci_low"], r["ci_high"], d), "p": fmt.p_value(r["p_value"])}))
        seed = f" Seed {fmt.integer(r['seed'])}." if "seed" in r and not pd.isna(r["seed"]) else ""
        methods.append(f"{label}: {r['method']}" + (f"; {'; '.join(extra)}" if extra else "") + "." + seed)
    tipping = part[part["measure"] == "tipping point delta"]
    for _, r in tipping.iterrows():
        shift = fmt.number(r["estimate"], d)
        rows.append(Row({"label": "Tipping point: shift to the treatment arm's imputed values at which p reaches 0.05",
                         "est": f"+{shift} {outcome.unit}" if not shift.startswith("-") else f"{shift} {outcome.unit}"}))
        extra = [p for p in _note_parts(r["note"]) if p not in ("primary outcome", "sensitivity analysis")]
        seed = f" Seed {fmt.integer(r['seed'])}." if "seed" in r and not pd.isna(r["seed"]) else ""
        methods.append(f"Tipping point: {r['method']}" + (f"; {'; '.join(extra)}" if extra else "") + "." + seed)
    columns = (Column("label", "Handling of missing data", "left"), Column("n", "n analysed (T / C)"),
               Column("est", f"Difference ({ci})"), Column("p", "p-value"))
    return Table(title=f"Table 5. Missing-data sensitivity analyses: {outcome_title(outcome)} at {visit_label(plan, visit)}",
                 columns=columns, rows=tuple(rows),
                 footnotes=(f"Differences are {plan.arms.treatment.label} minus {plan.arms.control.label}.", *_unique(methods)),
                 anchor="table-5")


# ----------------------------------------------------------------------------------------------
# Responders


def _definition(note: object) -> str:
    for part in _note_parts(note):
        if part.startswith("responder:"):
            return part.removeprefix("responder:").strip()
    return ""


def responder_table(responders: pd.DataFrame, plan: Plan) -> Table:
    """Responders by outcome (primary first), definition and visit: n/N (%) per arm, risk
    difference (percentage points, Newcombe interval), risk ratio, odds ratio, NNT (Altman 1998)
    and the p-value of the z test."""
    ci = ci_text(plan)
    columns = [Column("label", "Visit", "left")]
    for arm in ARMS:
        columns.append(Column(arm, f"{_arm_label(plan, arm)}\nn/N (%)"))
    columns += [Column("rd", f"Risk difference, % points ({ci})"), Column("rr", f"Risk ratio ({ci})"),
                Column("or", f"Odds ratio ({ci})"), Column("nnt", f"NNT ({ci})"), Column("p", "p-value")]
    rows: list[Row] = []
    methods: list[str] = []
    frame = responders.assign(_kind=responders["method"].str.extract(r"\((\w+) MCID\)", expand=False).fillna(""))
    for outcome in ordered_outcomes(plan):
        part = frame[frame["outcome"] == outcome.name]
        for kind in dict.fromkeys(part["_kind"]):
            sub = part[part["_kind"] == kind]
            definition = _definition(sub["note"].iloc[0]) or f"{kind} MCID"
            group = f"{outcome_title(outcome)}: {definition}"
            for visit in plan.visits.labels:
                at = sub[sub["visit"] == visit]
                if at.empty:
                    continue
                cells = {"label": visit_label(plan, visit)}
                for arm in ARMS:
                    sel = at[(at["measure"] == "responder proportion") & (at["contrast"] == _arm_label(plan, arm))]
                    if not sel.empty:
                        r = sel.iloc[0]
                        events, n = r[f"events_{arm}"], r[f"n_{arm}"]
                        cells[arm] = fmt.n_of_total(events, n, 1)
                rd = at[at["measure"] == "risk difference"]
                newcombe = rd[rd["method"].str.contains("Newcombe")]
                wald = rd[rd["method"].str.contains("Wald")]
                use = newcombe if not newcombe.empty else rd
                if not use.empty:
                    r = use.iloc[0]
                    cells["rd"] = fmt.estimate_ci(100 * r["estimate"], 100 * r["ci_low"], 100 * r["ci_high"], 1)
                    cells["nnt"] = fmt.nnt(r["estimate"], r["ci_low"], r["ci_high"], 1)
                    methods.append(f"Risk difference and NNT: {_without_mcid(r['method'])}.")
                if not wald.empty:
                    cells["p"] = fmt.p_value(wald.iloc[0]["p_value"])
                    methods.append(f"p-value: {_without_mcid(wald.iloc[0]['method'])}.")
                for key, measure in (("rr", "risk ratio"), ("or", "odds ratio")):
                    sel = at[at["measure"] == measure]
                    if not sel.empty:
                        r = sel.iloc[0]
                        cells[key] = fmt.estimate_ci(r["estimate"], r["ci_low"], r["ci_high"], 2)
                        methods.append(f"{measure.capitalize()}: {_without_mcid(r['method'])}.")
                rows.append(Row(cells, group=group))
            missing = [p for p in _note_parts(sub["note"].iloc[0]) if p.startswith("missing counted") or p.startswith("missing:")]
            if missing:
                methods.append(f"{outcome.label} ({kind} MCID): " + "; ".join(missing) + ".")
    footnotes = (
        f"Treatment effects are {plan.arms.treatment.label} minus (or over) {plan.arms.control.label}.",
        "NNT = 1 / risk difference: NNTB, number needed to treat for one more responder (benefit); NNTH, for one fewer "
        "(harm). When the interval of the risk difference includes 0 the NNT's interval runs from the NNTB limit through "
        "infinity (\u221e) to the NNTH limit (Altman 1998, BMJ 317:1309).",
        *_unique(methods),
    )
    return Table(title="Table 4. Responders", columns=tuple(columns), rows=tuple(rows), footnotes=footnotes, anchor="table-4")


# ----------------------------------------------------------------------------------------------
# Effect sizes

_MEASURES = {
    "MD": "Mean difference",
    "MD_change": "Difference in mean change from baseline",
    "SMD": "Hedges' g",
    "ROM": "Log ratio of means",
    "d_ppc2": "Morris d (pre-post-control)",
    "SMCR": "Standardised mean change (pretest SD)",
    "pct_change_of_means": "% change of the arm mean",
    "mean_pct_change": "Mean of individual % changes",
    "diff_pct_change_of_means": "Difference in % change of arm means",
    "diff_mean_pct_change": "Difference in mean individual % change",
    "ratio_of_improvements": "Ratio of mean changes",
}
_INTERVALS = (
    ("BCa bootstrap", "BCa bootstrap CI"),
    ("percentile bootstrap", "percentile bootstrap CI"),
    ("noncentral-t", "noncentral-t CI"),
    ("Fieller", "Fieller CI"),
    ("Welch", "Welch t CI"),
    ("one-sample t", "t CI"),
    ("delta-method", "delta-method CI"),
    ("Wald", "Wald CI"),
)


def effect_label(measure: str, method: str) -> str:
    """A readable name for an effect size: the measure and its interval method, so that rows of the
    same measure (Hedges' g with Wald, noncentral-t and bootstrap intervals) can be told apart.

    Examples
    --------
    >>> effect_label("SMD", "Hedges' g (exact J), BCa bootstrap stratified by arm")
    "Hedges' g, BCa bootstrap CI"
    >>> effect_label("MD", "mean difference (metafor MD, vtype LS), Wald CI")
    'Mean difference, Wald CI'
    """
    name = _MEASURES.get(measure, measure)
    for key, interval in _INTERVALS:
        if key in method:
            return f"{name}, {interval}"
    return name


def _effect_decimals(measure: str, outcome_decimals: int) -> int:
    if "pct" in measure:
        return 1
    if measure in ("MD", "MD_change"):
        return outcome_decimals
    return 2


def effect_size_table(effects: pd.DataFrame, plan: Plan, decimals: Mapping[str, int], title: str, anchor: str) -> Table:
    """Every effect size by outcome (primary first) and visit, one row per measure, interval method
    and comparison, the method as a readable label (:func:`effect_label`)."""
    ci = ci_text(plan)
    # one comparison throughout (treatment - control) is said once, in a footnote, not on every row
    contrasts = effects["contrast"].dropna().unique()
    columns = (Column("label", "Measure", "left"),
               *((Column("contrast", "Comparison", "left"),) if len(contrasts) > 1 else ()),
               Column("est", f"Estimate ({ci})"), Column("n_t", f"n {plan.arms.treatment.label}"),
               Column("n_c", f"n {plan.arms.control.label}"))
    rows: list[Row] = []
    methods: list[str] = []
    for outcome in ordered_outcomes(plan):
        part = effects[effects["outcome"] == outcome.name]
        for visit in plan.visits.labels:
            at = part[part["visit"] == visit]
            for _, r in at.iterrows():
                measure, method = str(r["measure"]), str(r["method"])
                label = effect_label(measure, method)
                seed = ""
                if "seed" in r and not pd.isna(r["seed"]):
                    seed = f" ({fmt.integer(r['n_boot'])} resamples, seed {fmt.integer(r['seed'])})"
                methods.append(f"{label}: {method}{seed}.")
                cells = {"label": label,
                         "est": fmt.estimate_ci(r["estimate"], r["ci_low"], r["ci_high"],
                                                _effect_decimals(measure, decimals.get(outcome.name, 2))),
                         "n_t": fmt.integer(r["n_treatment"]), "n_c": fmt.integer(r["n_control"])}
                if len(contrasts) > 1:
                    cells["contrast"] = str(r["contrast"])
                rows.append(Row(cells, group=f"{outcome_title(outcome)}, {visit_label(plan, visit)}"))
    footnotes = ((f"Every estimate compares {contrasts[0]}." if len(contrasts) == 1 else
                  f"Between-arm measures are {plan.arms.treatment.label} minus (or over) {plan.arms.control.label}."),
                 *sorted(_unique(methods)))
    return Table(title=title, columns=columns, rows=tuple(rows), footnotes=footnotes, anchor=anchor)
