"""Meta-analysis exports from a trial, and the contract for published summary tables.

* :func:`meta_exports` turns the analysis dataset into the two tables a meta-analyst needs:
  ``arm_summaries`` (RevMan's continuous-outcome entry: mean, SD and total per group, at baseline,
  follow-up and for the change) and ``effect_sizes`` (metafor ``escalc`` layout: ``n1i, m1i, sd1i,
  n2i, m2i, sd2i`` / ``ni, m1i, m2i, sd1i, ri`` with ``yi, vi, sei, ci_low, ci_high``), every effect
  size computed by the one engine, :func:`analysis.stats.effects.escalc`.
* :data:`PUBLISHED_SUMMARIES_SCHEMA` (pandera; documented in ``data/schemas/published_summaries.md``)
  checks a table of summaries taken from papers, and :func:`convert_published` fills mean and SD by
  the Cochrane Handbook / Wan et al. (2014) conversions of :mod:`analysis.stats.effects.conversions`;
  :func:`published_arms` lays the result out for ``trialkit meta --measure``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pandera.pandas as pa
from pandera.errors import SchemaErrors

from analysis.core.errors import DataError, failure
from analysis.core.tidy import contrast_label
from analysis.plan import Plan
from analysis.stats.effects import escalc
from analysis.stats.effects.reported import mean_sd

ARMS = ("treatment", "control")

ARM_SUMMARY_COLUMNS = [
    "outcome", "visit", "visit_week", "arm", "arm_label",
    "n_baseline", "mean_baseline", "sd_baseline",
    "n_followup", "mean_followup", "sd_followup",
    "n_change", "mean_change", "sd_change", "r_pre_post",
]
EFFECT_SIZE_COLUMNS = [
    "outcome", "visit", "visit_week", "basis", "measure", "arm", "contrast", "better",
    "n1i", "m1i", "sd1i", "n2i", "m2i", "sd2i", "ni", "ri",
    "yi", "vi", "sei", "ci_low", "ci_high", "ci_level", "note",
]
_DATASET_COLUMNS = ("participant_id", "arm", "outcome", "visit", "visit_week", "value", "baseline", "baseline_flag")


def _describe(values: pd.Series) -> tuple[int, float, float]:
    v = values.dropna().to_numpy(dtype=float)
    n = int(v.size)
    return n, (float(v.mean()) if n else np.nan), (float(v.std(ddof=1)) if n > 1 else np.nan)


def _correlation(x: np.ndarray, y: np.ndarray) -> float:
    if x.size < 3 or np.std(x) == 0 or np.std(y) == 0:
        return np.nan  # undefined for fewer than 3 pairs or a constant variable
    return float(np.corrcoef(x, y)[0, 1])


def arm_summaries(dataset: pd.DataFrame, plan: Plan) -> pd.DataFrame:
    """Per outcome x follow-up visit x arm: n, mean and SD at baseline, at follow-up and of the change.

    Baseline statistics use every participant of the arm with a baseline value; follow-up
    statistics every participant with a value at the visit; the change (``value - baseline``), its
    SD and the pre-post Pearson correlation ``r_pre_post`` use the participants with both (the
    complete pairs, ``n_change``). SDs have ``n - 1`` in the denominator. Columns:
    :data:`ARM_SUMMARY_COLUMNS`; rows ordered by plan outcome, plan visit, treatment then control.
    """
    _check_dataset(dataset)
    rows = []
    labels = {"treatment": plan.arms.treatment.label, "control": plan.arms.control.label}
    for outcome in plan.outcomes:
        of = dataset.loc[dataset["outcome"] == outcome.name]
        for visit in plan.visits.followup:
            for arm in ARMS:
                base = of.loc[(of["arm"] == arm) & of["baseline_flag"].astype(bool), "value"]
                follow = of.loc[(of["arm"] == arm) & (of["visit"] == visit.label) & ~of["baseline_flag"].astype(bool)]
                pairs = follow.loc[follow["value"].notna() & follow["baseline"].notna()]
                nb, mb, sb = _describe(base)
                nf, mf, sf = _describe(follow["value"])
                change = pairs["value"].to_numpy(float) - pairs["baseline"].to_numpy(float)
                nc, mc, sc = _describe(pd.Series(change, dtype=float))
                rows.append({
                    "outcome": outcome.name, "visit": visit.label, "visit_week": float(visit.week), "arm": arm,
                    "arm_label": labels[arm], "n_baseline": nb, "mean_baseline": mb, "sd_baseline": sb,
                    "n_followup": nf, "mean_followup": mf, "sd_followup": sf, "n_change": nc, "mean_change": mc,
                    "sd_change": sc,
                    "r_pre_post": _correlation(pairs["baseline"].to_numpy(float), pairs["value"].to_numpy(float)),
                })
    table = pd.DataFrame(rows, columns=ARM_SUMMARY_COLUMNS)
    for column in ("n_baseline", "n_followup", "n_change"):
        table[column] = table[column].astype("Int64")
    return table


def _check_dataset(dataset: pd.DataFrame) -> None:
    missing = [c for c in _DATASET_COLUMNS if c not in dataset.columns]
    if missing:
        raise DataError(
            f"the analysis dataset lacks column(s) {missing}",
            pd.DataFrame([failure("analysis dataset", "", c, "required column", "") for c in missing]),
        )


def _computable(measure: str, arms: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """Rows escalc can compute, and a note for the others (so one empty arm does not stop a run)."""
    if measure == "SMCR":
        inputs = arms[["ni", "m1i", "m2i", "sd1i", "ri"]]
        ok = inputs.notna().all(axis=1) & (arms["ni"] >= 3) & (arms["sd1i"] > 0)
        note = "not computed: needs >= 3 complete pairs, a pre-post correlation and a positive baseline SD"
    else:
        inputs = arms[["n1i", "m1i", "sd1i", "n2i", "m2i", "sd2i"]]
        ok = inputs.notna().all(axis=1) & (arms["n1i"] >= 2) & (arms["n2i"] >= 2) & (arms["sd1i"] > 0) & (arms["sd2i"] > 0)
        note = "not computed: needs >= 2 participants with an SD > 0 in each arm"
        if measure == "ROM":
            positive = (arms["m1i"] > 0) & (arms["m2i"] > 0)
            note_rom = "not computed: ROM needs positive means in both arms"
            notes = pd.Series(np.where(ok & ~positive, note_rom, np.where(ok, "", note)), index=arms.index)
            return ok & positive, notes
    return ok, pd.Series(np.where(ok, "", note), index=arms.index)


def _escalc(measure: str, arms: pd.DataFrame, ci_level: float) -> pd.DataFrame:
    ok, notes = _computable(measure, arms)
    out = arms.copy()
    for column in ("yi", "vi", "sei", "ci_low", "ci_high"):
        out[column] = np.nan
    out["note"] = notes.where(notes != "", None)
    if ok.any():
        done = escalc(measure, arms.loc[ok].reset_index(drop=True), ci_level=ci_level, source="analysis dataset")
        for column in ("yi", "vi", "sei", "ci_low", "ci_high"):
            out.loc[ok, column] = done[column].to_numpy(dtype=float)
    out["measure"] = measure
    out["ci_level"] = ci_level
    return out


def effect_sizes(dataset: pd.DataFrame, plan: Plan, summaries: pd.DataFrame | None = None) -> pd.DataFrame:
    """metafor-layout effect sizes per outcome x follow-up visit, from :func:`arm_summaries`.

    * ``basis = "followup"``: MD, SMD (Hedges' g, metafor's exact J and ``vtype="LS"``) and ROM
      (log ratio of means) of the follow-up values, treatment (group 1) vs control.
    * ``basis = "change"``: MD and SMD of the change from baseline (complete pairs).
    * ``basis = "change"``, ``measure = "SMCR"``, one row per arm: standardised mean change using
      the baseline SD (metafor: ``ni`` pairs, ``m1i`` follow-up mean, ``m2i`` baseline mean,
      ``sd1i`` baseline SD, ``ri`` pre-post correlation, all over the complete pairs).

    ``better`` repeats the plan's direction for the outcome so a reader can tell which sign is
    good. Rows that cannot be computed (an empty arm, ROM with a non-positive mean) keep their
    place with NaN results and a ``note``. Columns: :data:`EFFECT_SIZE_COLUMNS`.
    """
    _check_dataset(dataset)
    summaries = arm_summaries(dataset, plan) if summaries is None else summaries
    level = plan.analysis.ci_level
    tlabel, clabel = plan.arms.treatment.label, plan.arms.control.label
    keys = ["outcome", "visit", "visit_week"]
    t = summaries.loc[summaries["arm"] == "treatment"].set_index(keys)
    c = summaries.loc[summaries["arm"] == "control"].set_index(keys)
    frames = []
    for basis, stem in (("followup", "followup"), ("change", "change")):
        n_col = f"n_{stem}"
        arms = pd.DataFrame({
            "n1i": t[n_col].astype(float), "m1i": t[f"mean_{stem}"], "sd1i": t[f"sd_{stem}"],
            "n2i": c[n_col].astype(float), "m2i": c[f"mean_{stem}"], "sd2i": c[f"sd_{stem}"],
        }).reset_index()
        for measure in (("MD", "SMD", "ROM") if basis == "followup" else ("MD", "SMD")):
            out = _escalc(measure, arms, level)
            out["basis"] = basis
            out["arm"] = None
            out["contrast"] = contrast_label(tlabel, clabel, ratio=(measure == "ROM"))
            frames.append(out)
    paired = _paired_stats(dataset, plan)
    for arm, label in (("treatment", tlabel), ("control", clabel)):
        rows = paired.loc[paired["arm"] == arm].drop(columns="arm").reset_index(drop=True)
        out = _escalc("SMCR", rows, level)
        out["basis"] = "change"
        out["arm"] = arm
        out["contrast"] = [f"{v} - {plan.visits.baseline} ({label})" for v in rows["visit"]]
        frames.append(out)
    table = pd.concat(frames, ignore_index=True)
    better = {o.name: o.better for o in plan.outcomes}
    table["better"] = table["outcome"].map(better)
    order = {name: i for i, name in enumerate(o.name for o in plan.outcomes)}
    visits = {v.label: i for i, v in enumerate(plan.visits.followup)}
    basis_order = {"followup": 0, "change": 1}
    measure_order = {"MD": 0, "SMD": 1, "ROM": 2, "SMCR": 3}
    table["_sort"] = list(zip(table["outcome"].map(order), table["visit"].map(visits), table["basis"].map(basis_order),
                              table["measure"].map(measure_order), table["arm"].map({None: 0, "treatment": 1, "control": 2}).fillna(0),
                              strict=True))
    table = table.sort_values("_sort", kind="stable").drop(columns="_sort").reindex(columns=EFFECT_SIZE_COLUMNS)
    for column in ("n1i", "n2i", "ni"):
        table[column] = pd.array(table[column].round(), dtype="Int64")
    return table.reset_index(drop=True)


def _paired_stats(dataset: pd.DataFrame, plan: Plan) -> pd.DataFrame:
    """Complete-pair statistics per outcome x visit x arm in metafor's SMCR layout."""
    rows = []
    for outcome in plan.outcomes:
        of = dataset.loc[(dataset["outcome"] == outcome.name) & ~dataset["baseline_flag"].astype(bool)]
        for visit in plan.visits.followup:
            for arm in ARMS:
                pairs = of.loc[(of["arm"] == arm) & (of["visit"] == visit.label) & of["value"].notna() & of["baseline"].notna()]
                pre, post = pairs["baseline"].to_numpy(float), pairs["value"].to_numpy(float)
                rows.append({
                    "outcome": outcome.name, "visit": visit.label, "visit_week": float(visit.week), "arm": arm,
                    "ni": float(pre.size), "m1i": post.mean() if pre.size else np.nan, "m2i": pre.mean() if pre.size else np.nan,
                    "sd1i": pre.std(ddof=1) if pre.size > 1 else np.nan, "ri": _correlation(pre, post),
                })
    return pd.DataFrame(rows)


def meta_exports(dataset: pd.DataFrame, plan: Plan) -> dict[str, pd.DataFrame]:
    """``{"arm_summaries": ..., "effect_sizes": ...}`` for ``meta/arm_summaries.csv`` and
    ``meta/effect_sizes.csv`` (see :func:`arm_summaries` and :func:`effect_sizes`).

    Examples
    --------
    >>> exports = meta_exports(dataset, plan)  # doctest: +SKIP
    >>> sorted(exports)  # doctest: +SKIP
    ['arm_summaries', 'effect_sizes']
    """
    summaries = arm_summaries(dataset, plan)
    return {"arm_summaries": summaries, "effect_sizes": effect_sizes(dataset, plan, summaries)}


# ----------------------------------------------------------------------------------------------
# Published summaries

_NUMBER_COLUMNS = ("mean", "sd", "se", "ci_low", "ci_high", "ci_level", "median", "q1", "q3", "minimum", "maximum")


def _usable(frame: pd.DataFrame) -> pd.Series:
    has = {c: frame[c].notna() if c in frame.columns else pd.Series(False, index=frame.index) for c in _NUMBER_COLUMNS}
    with_mean = has["mean"] & (has["sd"] | has["se"] | (has["ci_low"] & has["ci_high"]))
    with_median = has["median"] & ((has["q1"] & has["q3"]) | (has["minimum"] & has["maximum"]))
    return with_mean | with_median


def _ordered(low: str, high: str):
    def check(frame: pd.DataFrame) -> pd.Series:
        if low not in frame.columns or high not in frame.columns:
            return pd.Series(True, index=frame.index)
        return frame[low].isna() | frame[high].isna() | (frame[low] <= frame[high])
    return check


PUBLISHED_SUMMARIES_SCHEMA = pa.DataFrameSchema(
    {
        "study": pa.Column(str, nullable=False, checks=pa.Check.str_length(1, 200)),
        "outcome": pa.Column(str, nullable=False, checks=pa.Check.str_length(1, 200)),
        "arm": pa.Column(str, nullable=False, checks=pa.Check.isin(list(ARMS), error="must be treatment or control")),
        "visit": pa.Column(str, nullable=False, checks=pa.Check.str_length(1, 200)),
        "n": pa.Column(int, nullable=False, checks=pa.Check.ge(2, error="n must be >= 2")),
        "mean": pa.Column(float, nullable=True, required=False),
        "sd": pa.Column(float, nullable=True, required=False, checks=pa.Check.ge(0, error="SD must be >= 0")),
        "se": pa.Column(float, nullable=True, required=False, checks=pa.Check.ge(0, error="SE must be >= 0")),
        "ci_low": pa.Column(float, nullable=True, required=False),
        "ci_high": pa.Column(float, nullable=True, required=False),
        "ci_level": pa.Column(float, nullable=True, required=False,
                              checks=pa.Check.in_range(0, 1, include_min=False, include_max=False, error="ci_level must be between 0 and 1")),
        "median": pa.Column(float, nullable=True, required=False),
        "q1": pa.Column(float, nullable=True, required=False),
        "q3": pa.Column(float, nullable=True, required=False),
        "minimum": pa.Column(float, nullable=True, required=False),
        "maximum": pa.Column(float, nullable=True, required=False),
    },
    checks=[
        pa.Check(_usable, error="needs mean with sd, se or ci_low+ci_high; or median with q1+q3 or minimum+maximum"),
        pa.Check(_ordered("ci_low", "ci_high"), error="ci_low must be <= ci_high"),
        pa.Check(_ordered("q1", "median"), error="q1 must be <= median"),
        pa.Check(_ordered("median", "q3"), error="median must be <= q3"),
        pa.Check(_ordered("minimum", "median"), error="minimum must be <= median"),
        pa.Check(_ordered("median", "maximum"), error="median must be <= maximum"),
    ],
    unique=["study", "outcome", "arm", "visit"],
    strict=False,
    coerce=True,
    name="published_summaries",
)


def validate_published(frame: pd.DataFrame, source: str = "published summaries") -> pd.DataFrame:
    """Check a published-summaries table against :data:`PUBLISHED_SUMMARIES_SCHEMA`; every failure at once.

    Row ``j`` of ``frame`` is reported as file row ``j + 2`` (CSV with a header line).

    Raises
    ------
    DataError
        One failure per offending cell or row (file, row, column, rule, value).
    """
    frame = frame.reset_index(drop=True)
    text = frame.copy()
    for column in text.columns:
        text[column] = text[column].astype(object).where(text[column].notna(), None)
        if column in _NUMBER_COLUMNS or column == "n":
            # empty cells are missing; anything else must parse as a number (pandera reports it otherwise)
            text[column] = text[column].map(lambda v: None if v is None or str(v).strip() == "" else v)
    try:
        return PUBLISHED_SUMMARIES_SCHEMA.validate(text, lazy=True).reset_index(drop=True)
    except SchemaErrors as errors:
        problems = []
        for case in errors.failure_cases.itertuples(index=False):
            index = case.index
            row = int(index) + 2 if index is not None and not pd.isna(index) else ""
            column = case.column if isinstance(case.column, str) and case.column != "published_summaries" else ""
            rule = "required: must not be empty" if str(case.check) == "not_nullable" else str(case.check)
            problems.append(failure(source, row, column, rule, case.failure_case))
        table = pd.DataFrame(problems).drop_duplicates().reset_index(drop=True)
        lines = "\n".join(f"  row {r.row}, column '{r.column}': {r.rule} (found {r.value!r})" for r in table.head(20).itertuples())
        raise DataError(f"{source}: {len(table)} problem(s) in the published summaries:\n{lines}", table) from None


def convert_published(frame: pd.DataFrame, source: str = "published summaries") -> pd.DataFrame:
    """Validate published summaries and fill ``mean_used``, ``sd_used`` and ``conversion``.

    Per row, by :func:`analysis.stats.effects.reported.mean_sd` (the rules ``trialkit escalc`` uses
    too; Cochrane Handbook 6.5.2; Wan et al. 2014; functions in
    :mod:`analysis.stats.effects.conversions`), the mean and the SD each from the first available of:

    1. ``mean`` and ``sd``: used as reported;
    2. ``se``: ``SD = SE sqrt(n)``;
    3. ``ci_low``/``ci_high``: ``SD = sqrt(n) (upper - lower) / (2 t_{(1+level)/2, n-1})``
       (``ci_level`` default 0.95);
    4. ``median`` with ``q1``/``q3``: Wan's ``mean = (q1 + m + q3)/3``, ``SD = (q3 - q1)/eta(n)``;
    5. ``median`` with ``minimum``/``maximum``: ``mean = (a + 2m + b)/4``, ``SD = (b - a)/xi(n)``.

    So a reported mean or SD is always used: a row with a mean but no SD, SE or CI takes only its SD
    from the quartiles or range (``conversion`` says so), a row with an SD but no mean only its mean.

    Examples
    --------
    >>> t = pd.DataFrame({"study": ["A"], "outcome": ["pain"], "arm": ["treatment"], "visit": ["w12"],
    ...                   "n": [25], "mean": [4.0], "se": [0.5]})
    >>> convert_published(t)[["mean_used", "sd_used", "conversion"]].values.tolist()
    [[4.0, 2.5, 'SD from SE (Cochrane 6.5.2.2)']]
    """
    typed = validate_published(frame, source)
    for column in _NUMBER_COLUMNS:
        if column not in typed.columns:
            typed[column] = np.nan
    n = typed["n"].to_numpy(float)
    mean = np.full(len(typed), np.nan)
    sd = np.full(len(typed), np.nan)
    how = np.full(len(typed), "", dtype=object)
    cells = typed[list(_NUMBER_COLUMNS)].astype(float)
    for i in range(len(typed)):
        arm = mean_sd(n[i], cells.iloc[i].to_dict())
        mean[i], sd[i], how[i] = arm.mean, arm.sd, arm.conversion
    out = typed.copy()
    out["mean_used"] = mean
    out["sd_used"] = sd
    out["conversion"] = how
    return out


def published_arms(converted: pd.DataFrame) -> pd.DataFrame:
    """One row per study x outcome x visit in metafor's layout (``n1i, m1i, sd1i, n2i, m2i, sd2i``).

    Takes :func:`convert_published` output; group 1 is the treatment arm. ``conversion_treatment``
    and ``conversion_control`` say how each arm's mean and SD were obtained. A study reporting only
    one arm of a comparison is an error (nothing is dropped silently).
    """
    keys = ["study", "outcome", "visit"]
    t = converted.loc[converted["arm"] == "treatment"].set_index(keys)
    c = converted.loc[converted["arm"] == "control"].set_index(keys)
    lonely = t.index.symmetric_difference(c.index)
    if len(lonely):
        problems = pd.DataFrame([failure("published summaries", "", "arm", "each study x outcome x visit needs both arms", " / ".join(map(str, k))) for k in lonely])
        raise DataError(f"{len(lonely)} comparison(s) report only one arm: {[' / '.join(map(str, k)) for k in lonely][:5]}", problems)
    out = pd.DataFrame({
        "n1i": t["n"], "m1i": t["mean_used"], "sd1i": t["sd_used"],
        "n2i": c.loc[t.index, "n"], "m2i": c.loc[t.index, "mean_used"], "sd2i": c.loc[t.index, "sd_used"],
        "conversion_treatment": t["conversion"], "conversion_control": c.loc[t.index, "conversion"],
    }).reset_index()
    return out
