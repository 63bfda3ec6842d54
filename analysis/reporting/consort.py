"""CONSORT flow: counts per stage and arm, reconciled with the primary analysis, and the diagram.

Stages (CONSORT 2010/2025 items 13a/13b, 22a/22b), in the standard four levels:

* Enrollment: assessed for eligibility and excluded with reasons, from the plan's
  ``reporting.screening`` (the participants table holds randomised participants only; without
  it both counts are "not recorded", never guessed), which must add up: excluded + randomised =
  assessed (:func:`check_screening`); randomised.
* Allocation: allocated per arm; received the allocated intervention (only if the participants
  table has a boolean ``received_intervention`` column, otherwise "not recorded", never guessed).
* Follow-up: lost to follow-up (``disposition == 'lost_to_follow_up'``) and discontinued
  (``'withdrawn'``), each with the reasons from ``disposition_reason``. When the participants file
  records no disposition it is derived from the data (:mod:`analysis.derive.disposition`), and the
  flow says so (``disposition_note``, printed in the Follow-up boxes of the diagram).
* Analysis: analysed for the primary outcome and excluded from that analysis with reasons.

Who is analysed follows the primary model of the plan exactly, so the counts reconcile with the
primary-analysis table: for ``ancova`` a participant is analysed when the primary outcome has a
value at the primary visit, a baseline, and every plan covariate (the complete cases of
:func:`analysis.stats.models.ancova.ancova`); for ``mmrm`` when there is a baseline, every covariate and at
least one follow-up value. :func:`check_reconciles` raises when a results table disagrees.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from analysis.core.errors import PlanError, UsageError
from analysis.derive.disposition import derivation_rule, disposition_was_derived
from analysis.plan import Plan, ScreeningCounts

LEVELS = ("Enrollment", "Allocation", "Follow-up", "Analysis")
COUNT_COLUMNS = ["level", "stage", "arm", "reason", "n"]
ARMS = ("treatment", "control")
NOT_GIVEN = "not given"


class ReconciliationError(RuntimeError):
    """The CONSORT counts and the primary-analysis table disagree (a bug, not a user mistake)."""


@dataclass(frozen=True)
class ConsortFlow:
    """CONSORT counts.

    Attributes
    ----------
    counts : table with columns ``level, stage, arm, reason, n`` (arm ``'all'`` for enrollment;
        reason empty for totals; n ``Int64``, missing when not recorded).
    analysis_population : one row per randomised participant: ``participant_id, arm, analysed,
        reason`` (reason why not analysed, empty when analysed).
    arm_labels : ``{"treatment": ..., "control": ...}`` from the plan.
    outcome, visit, model : what "analysed" refers to.
    disposition_note : how the disposition was derived when the participants file records none
        (empty when it was recorded).
    """

    counts: pd.DataFrame
    analysis_population: pd.DataFrame
    arm_labels: dict[str, str]
    outcome: str
    visit: str
    model: str
    disposition_note: str = ""

    def n(self, stage: str, arm: str = "all") -> int | None:
        """The total count of one stage and arm (``None`` when not recorded)."""
        rows = self.counts[(self.counts["stage"] == stage) & (self.counts["arm"] == arm) & (self.counts["reason"] == "")]
        if rows.empty:
            raise KeyError(f"no CONSORT stage '{stage}' for arm '{arm}'")
        value = rows["n"].iloc[0]
        return None if pd.isna(value) else int(value)

    def reasons(self, stage: str, arm: str = "all") -> list[tuple[str, int]]:
        rows = self.counts[(self.counts["stage"] == stage) & (self.counts["arm"] == arm) & (self.counts["reason"] != "")]
        return [(r, int(n)) for r, n in zip(rows["reason"], rows["n"], strict=True)]


def analysis_population(participants: pd.DataFrame, dataset: pd.DataFrame, plan: Plan) -> pd.DataFrame:
    """Who is analysed for the primary outcome under the plan's primary model, and why not.

    Returns columns ``participant_id, arm, analysed, reason``; one row per participant in
    ``participants``. Reasons, first that applies: ``missing baseline <outcome>``, ``no <visit>
    <outcome> value`` (ancova) / ``no follow-up <outcome> value`` (mmrm), ``missing <covariate>``.
    """
    outcome = plan.primary_outcome.name
    visit = plan.visits.primary
    need = [c for c in ("participant_id", "arm", "outcome", "visit", "value", "baseline") if c not in dataset.columns]
    if need:
        raise UsageError(f"the analysis dataset lacks column(s) {need}")
    missing_cov = [c for c in plan.covariates if c not in participants.columns]
    if missing_cov:
        raise UsageError(f"plan covariate(s) {missing_cov} are not columns of the participants table")
    rows = dataset[dataset["outcome"] == outcome]
    ids = participants["participant_id"].astype(str)
    base = rows.assign(pid=rows["participant_id"].astype(str)).groupby("pid")["baseline"].first()
    has_baseline = ids.map(base).notna().to_numpy()
    followup = rows[(rows["visit"] != plan.visits.baseline) & rows["value"].notna()]
    if plan.analysis.primary_model == "ancova":
        seen = set(followup.loc[followup["visit"] == visit, "participant_id"].astype(str))
        no_value = f"no {visit} {outcome} value"
    else:
        seen = set(followup["participant_id"].astype(str))
        no_value = f"no follow-up {outcome} value"
    has_value = ids.isin(seen).to_numpy()
    reasons = np.where(~has_baseline, f"missing baseline {outcome}", np.where(~has_value, no_value, ""))
    for cov in plan.covariates:
        lacking = participants[cov].isna().to_numpy() & (reasons == "")
        reasons = np.where(lacking, f"missing {cov}", reasons)
    return pd.DataFrame(
        {
            "participant_id": ids.to_numpy(),
            "arm": participants["arm"].astype(str).to_numpy(),
            "analysed": reasons == "",
            "reason": reasons.astype(str),
        }
    )


def _reason_rows(level: str, stage: str, arm: str, frame: pd.DataFrame, column: str) -> list[dict[str, object]]:
    rows = [{"level": level, "stage": stage, "arm": arm, "reason": "", "n": len(frame)}]
    reasons = frame[column].astype(object).where(frame[column].notna(), NOT_GIVEN).astype(str).str.strip()
    reasons = reasons.where(reasons != "", NOT_GIVEN)
    for reason, n in sorted(reasons.value_counts().items(), key=lambda kv: (-kv[1], kv[0])):
        rows.append({"level": level, "stage": stage, "arm": arm, "reason": reason, "n": int(n)})
    return rows


def consort_flow(
    participants: pd.DataFrame,
    dataset: pd.DataFrame,
    plan: Plan,
    screening: ScreeningCounts | None = None,
    *,
    screening_from_plan: bool = True,
) -> ConsortFlow:
    """Count every CONSORT stage per arm from the participants table and the analysis dataset.

    ``screening`` defaults to the plan's ``reporting.screening`` (unless ``screening_from_plan``
    is false); without screening counts the assessed and excluded counts are missing ("not
    recorded"). The randomised count is the number of rows of ``participants`` (every
    participant in it was randomised).

    Parameters
    ----------
    participants
        One row per randomised participant: ``participant_id, arm`` (``treatment`` /
        ``control``), ``disposition``, ``disposition_reason``, the plan's covariates and
        optionally a boolean ``received_intervention``.
    dataset
        The long analysis dataset (``participant_id, arm, outcome, visit, value, baseline``).
    plan
        The study plan: primary outcome, primary visit, primary model and covariates decide who
        is analysed (:func:`analysis_population`).
    screening
        Assessed and excluded counts for the Enrollment box; they must add up to the randomised
        count (:func:`check_screening`, a :class:`~analysis.core.errors.PlanError` otherwise).
    screening_from_plan
        Use the plan's ``reporting.screening`` when ``screening`` is not given.

    Returns
    -------
    ConsortFlow

    Examples
    --------
    ``t2`` was lost to follow-up and ``c2`` withdrew, so neither has a week-8 value; ``c3`` has
    no baseline, so the ANCOVA cannot use it:

    >>> import pandas as pd
    >>> from analysis.plan import ScreeningCounts, parse_plan
    >>> plan = parse_plan('''
    ... study: {id: demo, title: Demo trial}
    ... seed: 1
    ... data: {participants: {path: participants.csv}, measurements: {path: measurements.csv}}
    ... arms: {treatment: {label: Drug, codes: [D]}, control: {label: Placebo, codes: [P]}}
    ... visits: {baseline: baseline, followup: [{label: week8, week: 8}], primary: week8}
    ... outcomes:
    ... - {name: pain, label: Pain, unit: points, range: [0, 10], better: lower}
    ... ''')
    >>> participants = pd.DataFrame({
    ...     "participant_id": ["t1", "t2", "t3", "c1", "c2", "c3"],
    ...     "arm": ["treatment"] * 3 + ["control"] * 3,
    ...     "disposition": ["completed", "lost_to_follow_up", "completed",
    ...                     "completed", "withdrawn", "completed"],
    ...     "disposition_reason": ["", "moved away", "", "", "adverse event", ""]})
    >>> dataset = pd.DataFrame({
    ...     "participant_id": participants["participant_id"].repeat(2).to_numpy(),
    ...     "arm": participants["arm"].repeat(2).to_numpy(),
    ...     "outcome": "pain", "visit": ["baseline", "week8"] * 6,
    ...     "value": [7, 4, 6, None, 8, 5, 7, 6, 6, None, None, 5],
    ...     "baseline": [7, 7, 6, 6, 8, 8, 7, 7, 6, 6, None, None]})
    >>> screening = ScreeningCounts(assessed=9, excluded={"not eligible": 2, "declined": 1})
    >>> flow = consort_flow(participants, dataset, plan, screening)
    >>> flow.n("randomised"), flow.n("analysed", "treatment"), flow.n("analysed", "control")
    (6, 2, 1)
    >>> flow.reasons("excluded_from_analysis", "control")
    [('missing baseline pain', 1), ('no week8 pain value', 1)]
    >>> print(flow.counts.to_string(index=False))
         level                  stage       arm                reason    n
    Enrollment               assessed       all                          9
    Enrollment               excluded       all                          3
    Enrollment               excluded       all          not eligible    2
    Enrollment               excluded       all              declined    1
    Enrollment             randomised       all                          6
    Allocation              allocated treatment                          3
    Allocation               received treatment                       <NA>
     Follow-up      lost_to_follow_up treatment                          1
     Follow-up      lost_to_follow_up treatment            moved away    1
     Follow-up           discontinued treatment                          0
      Analysis               analysed treatment                          2
      Analysis excluded_from_analysis treatment                          1
      Analysis excluded_from_analysis treatment   no week8 pain value    1
    Allocation              allocated   control                          3
    Allocation               received   control                       <NA>
     Follow-up      lost_to_follow_up   control                          0
     Follow-up           discontinued   control                          1
     Follow-up           discontinued   control         adverse event    1
      Analysis               analysed   control                          1
      Analysis excluded_from_analysis   control                          2
      Analysis excluded_from_analysis   control missing baseline pain    1
      Analysis excluded_from_analysis   control   no week8 pain value    1
    """
    need = [c for c in ("participant_id", "arm", "disposition", "disposition_reason") if c not in participants.columns]
    if need:
        raise UsageError(f"the participants table lacks column(s) {need} needed for the CONSORT flow")
    if screening is None and screening_from_plan and plan.reporting is not None:
        screening = plan.reporting.screening
    rows: list[dict[str, object]] = []
    if screening is None:
        rows.append({"level": "Enrollment", "stage": "assessed", "arm": "all", "reason": "", "n": pd.NA})
        rows.append({"level": "Enrollment", "stage": "excluded", "arm": "all", "reason": "", "n": pd.NA})
    else:
        check_screening(screening, len(participants))
        rows.append({"level": "Enrollment", "stage": "assessed", "arm": "all", "reason": "", "n": screening.assessed})
        rows.append({"level": "Enrollment", "stage": "excluded", "arm": "all", "reason": "", "n": sum(screening.excluded.values())})
        for reason, n in screening.excluded.items():
            rows.append({"level": "Enrollment", "stage": "excluded", "arm": "all", "reason": reason, "n": n})
    rows.append({"level": "Enrollment", "stage": "randomised", "arm": "all", "reason": "", "n": len(participants)})
    population = analysis_population(participants, dataset, plan)
    for arm in ARMS:
        part = participants[participants["arm"] == arm]
        rows.append({"level": "Allocation", "stage": "allocated", "arm": arm, "reason": "", "n": len(part)})
        received = pd.NA
        if "received_intervention" in participants.columns:
            received = int(part["received_intervention"].astype("boolean").fillna(False).sum())
        rows.append({"level": "Allocation", "stage": "received", "arm": arm, "reason": "", "n": received})
        for stage, code in (("lost_to_follow_up", "lost_to_follow_up"), ("discontinued", "withdrawn")):
            rows.extend(_reason_rows("Follow-up", stage, arm, part[part["disposition"] == code], "disposition_reason"))
        pop = population[population["arm"] == arm]
        rows.append({"level": "Analysis", "stage": "analysed", "arm": arm, "reason": "", "n": int(pop["analysed"].sum())})
        rows.extend(_reason_rows("Analysis", "excluded_from_analysis", arm, pop[~pop["analysed"]], "reason"))
    counts = pd.DataFrame(rows, columns=COUNT_COLUMNS)
    counts["n"] = pd.array(counts["n"], dtype="Int64")
    return ConsortFlow(
        counts=counts,
        analysis_population=population,
        arm_labels={"treatment": plan.arms.treatment.label, "control": plan.arms.control.label},
        outcome=plan.primary_outcome.name,
        visit=plan.visits.primary,
        model=plan.analysis.primary_model,
        disposition_note=("Disposition " + derivation_rule(plan)) if disposition_was_derived(participants) else "",
    )


def check_screening(screening: ScreeningCounts, n_randomised: int) -> None:
    """Raise :class:`~analysis.core.errors.PlanError` unless excluded + randomised = assessed.

    Examples
    --------
    >>> from analysis.plan import ScreeningCounts
    >>> check_screening(ScreeningCounts(assessed=135, excluded={"not eligible": 10, "declined": 5}), 120)
    >>> check_screening(ScreeningCounts(assessed=130, excluded={"not eligible": 10, "declined": 5}), 120)
    Traceback (most recent call last):
    ...
    analysis.core.errors.PlanError: reporting.screening does not add up: 15 excluded (not eligible 10 + declined 5) + 120 randomised = 135, but 130 assessed; correct the counts in the plan
    """
    excluded = sum(screening.excluded.values())
    if excluded + n_randomised != screening.assessed:
        parts = " + ".join(f"{reason} {n}" for reason, n in screening.excluded.items())
        raise PlanError(
            f"reporting.screening does not add up: {excluded} excluded{f' ({parts})' if parts else ''} + "
            f"{n_randomised} randomised = {excluded + n_randomised}, but {screening.assessed} assessed; "
            "correct the counts in the plan"
        )


def check_reconciles(flow: ConsortFlow, n_treatment: int, n_control: int) -> None:
    """Raise :class:`ReconciliationError` unless the analysed counts equal the primary analysis' n per arm."""
    got = {"treatment": flow.n("analysed", "treatment"), "control": flow.n("analysed", "control")}
    want = {"treatment": int(n_treatment), "control": int(n_control)}
    if got != want:
        raise ReconciliationError(
            f"CONSORT analysed counts {got} differ from the primary analysis n {want} "
            f"({flow.outcome} at {flow.visit}, {flow.model})"
        )


# ----------------------------------------------------------------------------------------------
# Reasons for public release, and the table

REASON_STAGES = {"excluded": ("all",), "lost_to_follow_up": ARMS, "discontinued": ARMS, "excluded_from_analysis": ARMS}
NOT_RECORDED = "not recorded"
WITHHELD = "reasons not shown (small counts)"
STAGE_TEXT = {
    "assessed": "Assessed for eligibility", "excluded": "Excluded", "randomised": "Randomised",
    "allocated": "Allocated", "received": "Received allocated intervention",
    "lost_to_follow_up": "Lost to follow-up", "discontinued": "Discontinued intervention",
    "analysed": "Analysed", "excluded_from_analysis": "Excluded from analysis",
}


@dataclass(frozen=True)
class ReasonCells:
    """The reasons of one stage: ``counts`` (reasons x arms, 0 where a reason did not occur),
    ``hidden`` (cells shown as ``*``) and ``withheld`` (no reason can be shown safely)."""

    counts: pd.DataFrame
    hidden: pd.DataFrame
    withheld: bool


def reason_cells(flow: ConsortFlow, stage: str, suppress_below: int | None = None) -> ReasonCells:
    """The reasons of ``stage`` per arm, with small-cell suppression when ``suppress_below`` is set.

    The stage totals stay exact (the flow must add up, CONSORT item 13); what names individuals is
    a reason with a small count ("adverse event (n = 1)"). Published with the reasons are the
    stage total of each arm (a column total) and, for the two arms, the reason's total (a row
    total), so hidden counts are protected by complementary suppression
    (:func:`analysis.reporting.suppression.suppress_small_cells`). When no suppression protects
    them (a lone reason equals its stage's total), the stage's reasons are withheld altogether.

    Examples
    --------
    Lost to follow-up: 1 treatment participant moved, 6 and 7 could not be contacted. The 1 is
    hidden; the control 0 beside it (the reason's total, 1, is shown) and both "no contact"
    counts (each arm's total, 7, is shown) go with it:

    >>> import pandas as pd
    >>> counts = pd.DataFrame([
    ...     ("Follow-up", "lost_to_follow_up", "treatment", "", 7),
    ...     ("Follow-up", "lost_to_follow_up", "treatment", "moved", 1),
    ...     ("Follow-up", "lost_to_follow_up", "treatment", "no contact", 6),
    ...     ("Follow-up", "lost_to_follow_up", "control", "", 7),
    ...     ("Follow-up", "lost_to_follow_up", "control", "no contact", 7)], columns=COUNT_COLUMNS)
    >>> flow = ConsortFlow(counts, pd.DataFrame(), {"treatment": "Drug", "control": "Placebo"}, "pain", "week8", "ancova")
    >>> cells = reason_cells(flow, "lost_to_follow_up", suppress_below=5)
    >>> cells.counts.to_numpy().tolist(), cells.hidden.to_numpy().tolist(), cells.withheld
    ([[1, 0], [6, 7]], [[True, True], [True, True]], False)
    """
    arms = list(REASON_STAGES[stage])
    rows = flow.counts[(flow.counts["stage"] == stage) & (flow.counts["reason"] != "")]
    reasons = list(dict.fromkeys(rows["reason"]))
    counts = pd.DataFrame(0, index=pd.Index(reasons, dtype=object), columns=arms, dtype=np.int64)
    for reason, arm, n in zip(rows["reason"], rows["arm"], rows["n"], strict=True):
        counts.loc[reason, arm] = int(n)
    hidden = pd.DataFrame(False, index=counts.index, columns=counts.columns)
    if suppress_below is None or counts.empty:
        return ReasonCells(counts, hidden, False)
    from analysis.reporting.suppression import suppress_small_cells

    try:
        hidden = suppress_small_cells(counts, suppress_below, row_totals=len(arms) > 1, column_totals=True)
    except ValueError:
        return ReasonCells(counts, hidden | True, True)
    return ReasonCells(counts, hidden, False)


def suppress_counts(flow: ConsortFlow, suppress_below: int) -> pd.DataFrame:
    """``flow.counts`` for public release: reason counts hidden as in :func:`reason_cells`.

    Adds a boolean column ``suppressed``; a hidden count has ``n`` missing. A hidden zero (a
    reason that did not occur in an arm, hidden as a complement) gets a row too, so that an
    absent row does not give it away. Stage totals are unchanged.
    """
    cells = {stage: reason_cells(flow, stage, suppress_below) for stage in REASON_STAGES}
    rows: list[dict[str, object]] = []
    for row in flow.counts[flow.counts["reason"] == ""].to_dict("records"):
        rows.append(row | {"suppressed": False})
        part = cells.get(row["stage"])
        if part is None or row["arm"] not in part.counts.columns:
            continue
        for reason in part.counts.index:
            n, hidden = int(part.counts.loc[reason, row["arm"]]), bool(part.hidden.loc[reason, row["arm"]])
            if n > 0 or hidden:
                rows.append(row | {"reason": reason, "n": pd.NA if hidden else n, "suppressed": hidden})
    out = pd.DataFrame(rows, columns=[*COUNT_COLUMNS, "suppressed"])
    out["n"] = pd.array(out["n"], dtype="Int64")
    return out


def consort_table(flow: ConsortFlow, suppress_below: int | None = None) -> pd.DataFrame:
    """The CONSORT counts as a printable table: ``Stage``, one column per arm, ``Total``.

    Enrollment counts are in ``Total`` only; a count the data do not record reads "not recorded";
    reasons are indented under their stage. With ``suppress_below`` reason counts are suppressed
    as in :func:`reason_cells` (``*``); stage counts stay exact.

    Examples
    --------
    >>> import pandas as pd
    >>> counts = pd.DataFrame([
    ...     ("Enrollment", "assessed", "all", "", pd.NA), ("Enrollment", "excluded", "all", "", pd.NA),
    ...     ("Enrollment", "randomised", "all", "", 4),
    ...     ("Allocation", "allocated", "treatment", "", 2), ("Allocation", "allocated", "control", "", 2),
    ...     ("Follow-up", "lost_to_follow_up", "treatment", "", 1),
    ...     ("Follow-up", "lost_to_follow_up", "treatment", "moved", 1),
    ...     ("Follow-up", "lost_to_follow_up", "control", "", 0)], columns=COUNT_COLUMNS)
    >>> flow = ConsortFlow(counts, pd.DataFrame(), {"treatment": "Drug", "control": "Placebo"}, "pain", "week8", "ancova")
    >>> print(consort_table(flow).to_string(index=False))
                       Stage Drug Placebo        Total
    Assessed for eligibility              not recorded
                    Excluded              not recorded
                  Randomised                         4
                   Allocated    2       2            4
           Lost to follow-up    1       0            1
                     - moved    1       0            1
    """
    labels = [flow.arm_labels[a] for a in ARMS]
    out: list[list[str]] = []

    def text(value: object) -> str:
        return NOT_RECORDED if value is None or pd.isna(value) else str(int(value))

    for stage in dict.fromkeys(flow.counts["stage"]):
        totals = flow.counts[(flow.counts["stage"] == stage) & (flow.counts["reason"] == "")].set_index("arm")["n"]
        if "all" in totals.index:
            out.append([STAGE_TEXT.get(stage, stage), "", "", text(totals["all"])])
        else:
            values = [totals.get(a, pd.NA) for a in ARMS]
            total = pd.NA if any(pd.isna(v) for v in values) else sum(int(v) for v in values)
            out.append([STAGE_TEXT.get(stage, stage), *(text(v) for v in values), text(total)])
        if stage not in REASON_STAGES:
            continue
        cells = reason_cells(flow, stage, suppress_below)
        if cells.withheld:
            out.append([f"  - {WITHHELD}"] + ["*" if a in cells.counts.columns else "" for a in ARMS] + ["*"])
            continue
        for reason in cells.counts.index:
            shown = {a: ("*" if cells.hidden.loc[reason, a] else str(int(cells.counts.loc[reason, a]))) for a in cells.counts.columns}
            # two arms: the reason's total is published (a row total); one ('all'): it is the cell
            total = shown["all"] if "all" in shown else str(int(cells.counts.loc[reason].sum()))
            out.append([f"  - {reason}", *(shown.get(a, "") for a in ARMS), total])
    return pd.DataFrame(out, columns=["Stage", *labels, "Total"])


# ----------------------------------------------------------------------------------------------
# Diagram

def _reason_lines(flow: ConsortFlow, stage: str, arm: str, suppress_below: int | None) -> list[str]:
    cells = reason_cells(flow, stage, suppress_below)
    if cells.withheld:
        return [f"  - {WITHHELD}"]
    return [f"  - {reason} (n = {'*' if cells.hidden.loc[reason, arm] else int(cells.counts.loc[reason, arm])})"
            for reason in cells.counts.index if cells.hidden.loc[reason, arm] or cells.counts.loc[reason, arm] > 0]


def _box_text(flow: ConsortFlow, arm: str, suppress_below: int | None = None) -> dict[str, str]:
    def n_text(stage: str) -> str:
        value = flow.n(stage, arm)
        return NOT_RECORDED if value is None else str(value)

    def with_reasons(title: str, stage: str) -> str:
        return "\n".join([f"{title} (n = {n_text(stage)})", *_reason_lines(flow, stage, arm, suppress_below)])

    allocated = flow.n("allocated", arm)
    received = flow.n("received", arm)
    alloc = [f"Allocated to {flow.arm_labels[arm]} (n = {allocated})", f"  - Received allocated intervention (n = {n_text('received')})"]
    if received is not None:
        alloc.append(f"  - Did not receive allocated intervention (n = {allocated - received})")
    follow_up = with_reasons("Lost to follow-up", "lost_to_follow_up") + "\n" + with_reasons("Discontinued intervention", "discontinued")
    if flow.disposition_note:  # the data record no disposition: say how it was derived
        follow_up += f"\n(derived from the data: no {flow.visit} value = lost)"
    return {
        "Allocation": "\n".join(alloc),
        "Follow-up": follow_up,
        "Analysis": f"Analysed (n = {n_text('analysed')})\n" + with_reasons("Excluded from analysis", "excluded_from_analysis"),
    }


def plot_consort(flow: ConsortFlow, ax=None, suppress_below: int | None = None):
    """Draw the CONSORT flow diagram in the standard four levels and return the Axes.

    Enrollment (assessed, excluded with reasons to the side, randomised), then per arm the
    Allocation, Follow-up and Analysis boxes, each level under a banner. Box heights follow their
    text; with ``ax=None`` a figure tall enough for every reason is created. Counts the data do
    not record (assessed, excluded without ``reporting.screening``) read "not recorded";
    ``suppress_below`` hides small reason counts as :func:`consort_table` does.
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyBboxPatch

    boxes = {arm: _box_text(flow, arm, suppress_below) for arm in ARMS}
    has_screening = bool((flow.counts["stage"] == "assessed").any())  # flows built before screening rows existed
    # Equal x/y scale (12 units across 10 in): a 9 pt line at 1.4 spacing is ~0.21 units.
    line_h, pad, gap, banner_h = 0.225, 0.22, 0.32, 0.34

    def height(text: str) -> float:
        return line_h * (text.count("\n") + 1) + pad

    randomised = f"Randomised (n = {flow.n('randomised')})"
    assessed = excluded = ""
    if has_screening:
        def n_text(stage: str) -> str:
            value = flow.n(stage)
            return NOT_RECORDED if value is None else str(value)

        assessed = f"Assessed for eligibility (n = {n_text('assessed')})"
        excluded = "\n".join([f"Excluded (n = {n_text('excluded')})", *_reason_lines(flow, "excluded", "all", suppress_below)])
    level_h = {lvl: max(height(boxes[a][lvl]) for a in ARMS) for lvl in ("Allocation", "Follow-up", "Analysis")}
    enroll_h = height(randomised) + (height(assessed) + max(height(excluded), 2 * gap) + 2 * gap if has_screening else 0.0)
    total = 4 * (banner_h + gap) + enroll_h + sum(level_h.values()) + 3 * gap + 0.2
    width = 12.0
    if ax is None:
        _, ax = plt.subplots(figsize=(10, total * 10 / 12))
    ax.set_xlim(0, width)
    ax.set_ylim(0, total)
    ax.axis("off")
    centres = {"treatment": 3.0, "control": 9.0}

    def box(x_mid: float, top: float, w: float, text: str, center: bool = False) -> float:
        h = height(text)
        ax.add_patch(FancyBboxPatch((x_mid - w / 2, top - h), w, h, boxstyle="square,pad=0", fc="white", ec="black", lw=1))
        ax.text(x_mid if center else x_mid - w / 2 + 0.15, top - h / 2, text, ha="center" if center else "left",
                va="center", fontsize=9, linespacing=1.4)
        return top - h

    def banner(top: float, text: str) -> float:
        ax.add_patch(FancyBboxPatch((4.0, top - banner_h), 4.0, banner_h, boxstyle="round,pad=0,rounding_size=0.2",
                                    fc="#cfe2f3", ec="#6fa8dc"))
        ax.text(6.0, top - banner_h / 2, text, ha="center", va="center", fontsize=10, fontweight="bold")
        return top - banner_h - gap

    def arrow(x0: float, y0: float, x1: float, y1: float) -> None:
        ax.annotate("", xy=(x1, y1), xytext=(x0, y0), arrowprops={"arrowstyle": "-|>", "lw": 1, "color": "black", "shrinkA": 0, "shrinkB": 0})

    y = banner(total - 0.1, "Enrollment")
    if has_screening:
        bottom = box(6.0, y, 4.6, assessed, center=True)
        side_h = max(height(excluded), 2 * gap)
        side_top = bottom - gap
        box(9.5, side_top - (side_h - height(excluded)) / 2, 4.6, excluded)
        mid = side_top - side_h / 2
        ax.plot([6.0, 6.0], [bottom, mid], color="black", lw=1)
        arrow(6.0, mid, 9.5 - 2.3, mid)
        y = side_top - side_h - gap
        arrow(6.0, mid, 6.0, y)
    r_bottom = box(6.0, y, 4.6, randomised, center=True)
    y = banner(r_bottom - gap, "Allocation")
    split = r_bottom - gap / 2
    ax.plot([6.0, 6.0], [r_bottom, split], color="black", lw=1)
    ax.plot([centres["control"], centres["treatment"]], [split, split], color="black", lw=1)
    for arm in ARMS:
        arrow(centres[arm], split, centres[arm], y)
    for level in ("Allocation", "Follow-up", "Analysis"):
        if level != "Allocation":
            y = banner(y, level)
        for arm in ARMS:
            bottom = box(centres[arm], y, 5.6, boxes[arm][level])
            if level != "Analysis":
                # the arrow runs past the banner (banners sit between the two columns)
                arrow(centres[arm], bottom, centres[arm], y - level_h[level] - gap - banner_h - gap)
        y = y - level_h[level] - gap
    return ax


def consort_figure(flow: ConsortFlow, suppress_below: int | None = None):
    """A new Figure holding :func:`plot_consort` (caller saves it as PNG/SVG)."""
    ax = plot_consort(flow, suppress_below=suppress_below)
    return ax.figure
