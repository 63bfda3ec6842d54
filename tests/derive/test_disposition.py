"""Disposition derived from the data when the participants file records none
(analysis/derive/disposition.py), through the pipeline on a literal file, and the visit time in
the plan's unit in the analysis dataset (analysis/derive/dataset.py)."""

from __future__ import annotations

import pytest

from analysis.core.errors import DataError
from analysis.core.notices import recording_warnings
from analysis.derive.disposition import DERIVED_REASON, disposition_was_derived
from analysis.pipeline import accounting_table, load_trial
from analysis.reporting.adam import adam_bds
from tests.conftest import SMALL_PLAN

# No disposition column. By hand: P1, P2, P5 and P6 have a w8 value (completed); P3's w8 is empty
# and P4 has no w8 row (both lost to follow-up: P3 with the reason 'not recorded', P4 with the
# reason its file gives, 'moved').
PARTICIPANTS = """\
participant_id,arm,age,disposition_reason
P1,T,40,
P2,C,50,
P3,T,35,
P4,C,61,moved
P5,T,44,
P6,C,52,
"""
MEASUREMENTS = """\
participant_id,visit,outcome,value
P1,base,pain,6
P1,w4,pain,4
P1,w8,pain,3
P2,base,pain,5
P2,w8,pain,4
P3,base,pain,7
P3,w4,pain,5
P3,w8,pain,
P4,base,pain,6
P4,w4,pain,6
P5,base,pain,8
P5,w8,pain,5
P6,base,pain,7
P6,w4,pain,6
P6,w8,pain,6
"""


def test_a_missing_disposition_is_derived_from_the_primary_visit_and_said(small_trial):
    plan = small_trial(participants=PARTICIPANTS, measurements=MEASUREMENTS)
    with recording_warnings(forward=lambda _text: None) as log:
        trial = load_trial(plan)
    people = trial.participants.set_index("participant_id")
    assert people["disposition"].to_dict() == {
        "P1": "completed", "P2": "completed", "P3": "lost_to_follow_up", "P4": "lost_to_follow_up",
        "P5": "completed", "P6": "completed"}
    assert people.loc["P3", "disposition_reason"] == DERIVED_REASON
    assert people.loc["P4", "disposition_reason"] == "moved"  # a reason the file gives is kept
    assert people.loc[["P1", "P2", "P5", "P6"], "disposition_reason"].isna().all()
    assert disposition_was_derived(trial.participants)
    assert [m for m in log.messages() if "disposition derived" in m] == [
        "participants.csv: disposition derived from the data (the participants file has no disposition): "
        "completed = a value at the primary visit (w8), otherwise lost to follow-up, reason 'not recorded'"]
    accounting = accounting_table(trial)
    derived = accounting[accounting["item"].str.startswith("disposition derived")]
    assert derived[["item", "count"]].values.tolist() == [
        ["disposition derived: completed", 4], ["disposition derived: lost_to_follow_up", 2]]
    assert derived["reason"].str.contains("completed = a value at the primary visit (w8)", regex=False).all()


def test_a_recorded_disposition_is_kept_and_not_flagged(small_trial):
    trial = load_trial(small_trial())
    assert not disposition_was_derived(trial.participants)
    assert not accounting_table(trial)["item"].str.startswith("disposition derived").any()


def test_a_disposition_column_with_gaps_is_still_a_failure(small_trial):
    participants = "participant_id,arm,disposition\nP1,T,completed\nP2,C,\nP3,T,completed\nP4,C,withdrawn\n"
    with pytest.raises(DataError) as caught:
        load_trial(small_trial(participants=participants))
    assert caught.value.failures[["row", "column", "rule"]].values.tolist() == [
        [3, "disposition", "required: must not be empty"]]


def test_a_mapped_disposition_column_must_exist(small_trial):
    plan = SMALL_PLAN.replace("    path: participants.csv\n", "    path: participants.csv\n    columns: {disposition: status}\n")
    with pytest.raises(DataError, match=r"data\.participants\.columns\.disposition names column 'status'"):
        load_trial(small_trial(plan=plan, participants=PARTICIPANTS, measurements=MEASUREMENTS))


MONTHS = SMALL_PLAN.replace(
    "  followup:\n    - {label: w4, week: 4}\n    - {label: w8, week: 8}\n",
    "  time_unit: months\n  followup:\n    - {label: w4, time: 1.5}\n    - {label: w8, time: 6}\n",
)


def test_the_analysis_dataset_keeps_the_plans_months_beside_visit_week(small_trial):
    trial = load_trial(small_trial(plan=MONTHS))
    data = trial.dataset
    assert data.columns.tolist()[:7] == ["participant_id", "arm", "outcome", "visit", "visit_week", "visit_month", "value"]
    first = data[data["participant_id"] == "P1"]
    assert first["visit_month"].tolist() == [0.0, 1.5, 6.0]
    # by hand: 6 months = 6 x 30.4375 days = 182.625 days = 26.089... weeks
    assert first["visit_week"].tolist() == pytest.approx([0.0, 1.5 * 30.4375 / 7, 182.625 / 7], rel=1e-15)
    bds = adam_bds(trial.dataset, trial.participants, trial.plan)  # the ADaM visit number is the plan's time
    assert sorted(bds["AVISITN"].unique().tolist()) == [0.0, 1.5, 6.0]
