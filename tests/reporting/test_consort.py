"""CONSORT counts: hand-counted synthetic trial, reconciliation with the primary ANCOVA, the diagram."""


import matplotlib

matplotlib.use("Agg")
import numpy as np
import pandas as pd
import pytest

from analysis.core.errors import PlanError
from analysis.plan import ScreeningCounts, load_plan
from analysis.reporting.consort import (
    COUNT_COLUMNS,
    ConsortFlow,
    ReconciliationError,
    check_reconciles,
    check_screening,
    consort_figure,
    consort_flow,
    consort_table,
    suppress_counts,
)
from analysis.stats.models.ancova import ancova
from tests.conftest import REPO

EXAMPLE = REPO / "data" / "studies" / "example-precision-release.yaml"
PLAN = load_plan(EXAMPLE).plan  # primary: pain_interference at week12, ANCOVA, covariates age, sex, site


def synthetic():
    """Twelve participants; who is analysed is worked out by hand in the comments."""
    ids = [f"P{i}" for i in range(1, 13)]
    participants = pd.DataFrame({
        "participant_id": ids,
        "arm": ["treatment"] * 4 + ["control"] * 4 + ["treatment"] * 2 + ["control"] * 2,
        "age": [40.0, 50.0, 60.0, 45.0, 35.0, np.nan, 55.0, 48.0, 33.0, 61.0, 44.0, 52.0],  # P6 lacks a covariate
        "sex": ["F", "M"] * 6,
        "site": ["a", "b", "a", "b", "a", "b", "a", "b", "a", "a", "b", "b"],
        "disposition": ["completed", "completed", "withdrawn", "lost_to_follow_up",
                        "completed", "completed", "lost_to_follow_up", "completed"] + ["completed"] * 4,
        "disposition_reason": [None, None, "adverse event", "moved away"] + [None] * 8,
    })
    rng = np.random.default_rng(0)
    rows = []
    week12 = {"P1": 50, "P2": 52, "P3": np.nan, "P4": np.nan, "P5": 55, "P6": 57, "P7": np.nan, "P8": 54,
              "P9": 49, "P10": 53, "P11": 56, "P12": 58}
    baseline = {pid: 60.0 + i for i, pid in enumerate(ids)} | {"P5": np.nan}  # P5 lacks a baseline
    for pid, arm in zip(ids, participants["arm"], strict=True):
        for visit in PLAN.visits.labels:
            value = baseline[pid] if visit == "baseline" else (week12[pid] if visit == "week12" else 58 + rng.normal())
            for outcome in PLAN.outcomes:
                rows.append({"participant_id": pid, "arm": arm, "outcome": outcome.name, "visit": visit,
                             "value": float(value), "baseline": baseline[pid]})
    return participants, pd.DataFrame(rows)


def test_counts_hand_counted():
    participants, dataset = synthetic()
    flow = consort_flow(participants, dataset, PLAN)
    assert flow.n("randomised") == 12
    assert flow.n("allocated", "treatment") == 6 and flow.n("allocated", "control") == 6
    assert flow.n("received", "treatment") is None  # not recorded, never guessed
    assert flow.n("lost_to_follow_up", "treatment") == 1
    assert flow.reasons("lost_to_follow_up", "treatment") == [("moved away", 1)]
    assert flow.reasons("lost_to_follow_up", "control") == [("not given", 1)]
    assert flow.reasons("discontinued", "treatment") == [("adverse event", 1)]
    # treatment: P1, P2, P9, P10 analysed; P3, P4 no week12 value. control: P8, P11, P12;
    # P5 no baseline, P6 missing age, P7 no week12 value.
    assert flow.n("analysed", "treatment") == 4 and flow.n("analysed", "control") == 3
    assert flow.reasons("excluded_from_analysis", "treatment") == [("no week12 pain_interference value", 2)]
    assert sorted(flow.reasons("excluded_from_analysis", "control")) == [
        ("missing age", 1), ("missing baseline pain_interference", 1), ("no week12 pain_interference value", 1)]
    # no screening counts in the plan: assessed and excluded are "not recorded", never guessed
    assert flow.n("assessed") is None and flow.n("excluded") is None


def test_analysed_counts_equal_primary_ancova_n_synthetic():
    participants, dataset = synthetic()
    flow = consort_flow(participants, dataset, PLAN)
    fit = ancova(dataset, outcome="pain_interference", visit="week12", covariates=["age"], participants=participants)
    check_reconciles(flow, fit.n_treatment, fit.n_control)
    with pytest.raises(ReconciliationError, match="differ"):
        check_reconciles(flow, fit.n_treatment + 1, fit.n_control)


def test_analysed_counts_equal_primary_ancova_n_example_trial():
    from analysis.pipeline import load_trial

    trial = load_trial(EXAMPLE)
    flow = consort_flow(trial.participants, trial.dataset, trial.plan)
    fit = ancova(trial.dataset, outcome=trial.plan.primary_outcome.name, visit=trial.plan.visits.primary,
                 covariates=trial.plan.covariates, participants=trial.participants)
    assert (flow.n("analysed", "treatment"), flow.n("analysed", "control")) == (fit.n_treatment, fit.n_control)
    assert flow.n("randomised") == len(trial.participants)


def test_screening_counts_and_consistency():
    participants, dataset = synthetic()
    flow = consort_flow(participants, dataset, PLAN, ScreeningCounts(assessed=16, excluded={"ineligible": 3, "declined": 1}))
    assert flow.n("assessed") == 16 and flow.n("excluded") == 4
    assert flow.reasons("excluded") == [("ineligible", 3), ("declined", 1)]
    with pytest.raises(PlanError, match=r"3 excluded \(ineligible 3\) \+ 12 randomised = 15, but 20 assessed"):
        consort_flow(participants, dataset, PLAN, ScreeningCounts(assessed=20, excluded={"ineligible": 3}))


def test_received_intervention_column_is_used():
    participants, dataset = synthetic()
    participants["received_intervention"] = [True, True, False, True] + [True] * 8
    flow = consort_flow(participants, dataset, PLAN)
    assert flow.n("received", "treatment") == 5 and flow.n("received", "control") == 6


def test_diagram_shows_every_level_and_count():
    participants, dataset = synthetic()
    flow = consort_flow(participants, dataset, PLAN, ScreeningCounts(assessed=16, excluded={"ineligible": 4}))
    fig = consort_figure(flow)
    texts = " ".join(t.get_text() for t in fig.axes[0].texts)
    for needle in ("Enrollment", "Allocation", "Follow-up", "Analysis", "Assessed for eligibility (n = 16)",
                   "Randomised (n = 12)", "Analysed (n = 4)", "Analysed (n = 3)", "moved away (n = 1)"):
        assert needle in texts


def test_a_derived_disposition_is_said_in_the_flow_and_the_diagram():
    participants, dataset = synthetic()
    assert consort_flow(participants, dataset, PLAN).disposition_note == ""
    derived = participants.assign(disposition_derived=True)
    flow = consort_flow(derived, dataset, PLAN)
    assert flow.disposition_note == (
        "Disposition derived from the data (the participants file has no disposition): completed = a value at the "
        "primary visit (week12), otherwise lost to follow-up, reason 'not recorded'")
    assert flow.n("lost_to_follow_up", "treatment") == 1  # the counts are those of the (derived) column
    texts = " ".join(t.get_text() for t in consort_figure(flow).axes[0].texts)
    assert texts.count("(derived from the data: no week12 value = lost)") == 2  # one Follow-up box per arm


def test_screening_arithmetic_good_and_bad():
    check_screening(ScreeningCounts(assessed=135, excluded={"not meeting criteria": 10, "declined": 5}), 120)
    check_screening(ScreeningCounts(assessed=120), 120)  # nobody excluded
    with pytest.raises(PlanError, match=r"15 excluded \(not meeting criteria 10 \+ declined 5\) \+ 120 randomised = 135, "
                                        r"but 140 assessed"):
        check_screening(ScreeningCounts(assessed=140, excluded={"not meeting criteria": 10, "declined": 5}), 120)


def test_table_without_screening_says_not_recorded():
    participants, dataset = synthetic()
    table = consort_table(consort_flow(participants, dataset, PLAN)).set_index("Stage")
    assert table.loc["Assessed for eligibility", "Total"] == "not recorded"
    assert table.loc["Excluded", "Total"] == "not recorded"
    assert table.loc["Randomised", "Total"] == "12"
    label_t, label_c = PLAN.arms.treatment.label, PLAN.arms.control.label
    assert table.loc["Analysed", [label_t, label_c, "Total"]].tolist() == ["4", "3", "7"]  # hand-counted above
    assert table.loc["Received allocated intervention", "Total"] == "not recorded"


def _flow(rows):
    counts = pd.DataFrame(rows, columns=COUNT_COLUMNS)
    counts["n"] = pd.array(counts["n"], dtype="Int64")
    return ConsortFlow(counts, pd.DataFrame(), {"treatment": "T", "control": "C"}, "pain", "week8", "ancova")


def test_reason_counts_suppressed_with_complements_and_stage_totals_exact():
    flow = _flow([
        ("Enrollment", "assessed", "all", "", 40), ("Enrollment", "excluded", "all", "", 12),
        ("Enrollment", "excluded", "all", "not eligible", 9), ("Enrollment", "excluded", "all", "declined", 3),
        ("Enrollment", "randomised", "all", "", 28),
        ("Allocation", "allocated", "treatment", "", 14), ("Allocation", "allocated", "control", "", 14),
        ("Follow-up", "lost_to_follow_up", "treatment", "", 7),
        ("Follow-up", "lost_to_follow_up", "treatment", "moved", 1),
        ("Follow-up", "lost_to_follow_up", "treatment", "no contact", 6),
        ("Follow-up", "lost_to_follow_up", "control", "", 7),
        ("Follow-up", "lost_to_follow_up", "control", "no contact", 7),
        ("Follow-up", "discontinued", "treatment", "", 1),
        ("Follow-up", "discontinued", "treatment", "adverse event", 1),
        ("Follow-up", "discontinued", "control", "", 0),
    ])
    exact = consort_table(flow).set_index("Stage")
    assert exact.loc["  - moved", ["T", "C", "Total"]].tolist() == ["1", "0", "1"]
    table = consort_table(flow, suppress_below=5).set_index("Stage")
    # stage totals stay exact
    assert table.loc["Lost to follow-up", ["T", "C", "Total"]].tolist() == ["7", "7", "14"]
    assert table.loc["Discontinued intervention", ["T", "C", "Total"]].tolist() == ["1", "0", "1"]
    # moved (T 1) is hidden; C's 0 must go too (the reason total 1 is shown), and then both
    # arms' "no contact" (each arm's stage total 7 is shown): every hidden cell can be 0 or 1 more
    assert table.loc["  - moved", ["T", "C", "Total"]].tolist() == ["*", "*", "1"]
    assert table.loc["  - no contact", ["T", "C", "Total"]].tolist() == ["*", "*", "13"]
    # screening: 3 declined < 5, and the only other reason would give it away (12 excluded shown)
    assert table.loc["  - declined", "Total"] == "*" and table.loc["  - not eligible", "Total"] == "*"
    # a lone reason equal to its stage total cannot be protected: the reasons are withheld
    assert "  - reasons not shown (small counts)" in table.index
    assert "  - adverse event" not in table.index
    # the CSV for public release: the same cells missing, a row for the hidden zero too
    public = suppress_counts(flow, 5)
    lost = public[(public["stage"] == "lost_to_follow_up") & (public["reason"] != "")]
    assert lost[["arm", "reason"]].values.tolist() == [["treatment", "moved"], ["treatment", "no contact"],
                                                       ["control", "moved"], ["control", "no contact"]]
    assert lost["n"].isna().all() and lost["suppressed"].all()
    totals = public[public["reason"] == ""].set_index(["stage", "arm"])["n"]
    assert totals[("lost_to_follow_up", "treatment")] == 7 and totals[("randomised", "all")] == 28
    assert public.loc[public["reason"] == "adverse event", "n"].isna().all()


def test_diagram_with_screening_not_recorded_and_suppressed_reasons():
    participants, dataset = synthetic()
    flow = consort_flow(participants, dataset, PLAN)
    texts = [t.get_text() for t in consort_figure(flow, suppress_below=5).axes[0].texts]
    assert "Assessed for eligibility (n = not recorded)" in texts
    assert any(t.startswith("Excluded (n = not recorded)") for t in texts)
    assert not any("moved away (n = 1)" in t for t in texts)  # a count of 1 is not shown
