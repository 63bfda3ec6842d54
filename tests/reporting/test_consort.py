"""CONSORT counts: hand-counted synthetic trial, reconciliation with the primary ANCOVA, the diagram."""


import matplotlib

matplotlib.use("Agg")
import numpy as np
import pandas as pd
import pytest

from analysis.core.errors import UsageError
from analysis.plan import ScreeningCounts, load_plan
from analysis.reporting.consort import (
    ReconciliationError,
    check_reconciles,
    consort_figure,
    consort_flow,
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
    assert "assessed" not in set(flow.counts["stage"])


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
    with pytest.raises(UsageError, match="do not add up"):
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
