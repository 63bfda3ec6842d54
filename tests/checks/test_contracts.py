"""One test per validation rule, each asserting the failure's file, row, column, rule and value."""

from __future__ import annotations

import pytest

from analysis.core.errors import DataError
from analysis.pipeline import load_trial
from tests.conftest import SMALL_MEASUREMENTS, SMALL_PARTICIPANTS, SMALL_PLAN


def failures_of(plan_path):
    with pytest.raises(DataError) as caught:
        load_trial(plan_path)
    return caught.value.failures


def only(failures, rule_part):
    hits = failures[failures["rule"].str.contains(rule_part, regex=False)]
    assert len(hits) >= 1, failures.to_string()
    return hits


def test_valid_small_trial_passes(small_trial):
    trial = load_trial(small_trial())
    assert trial.participants["arm"].tolist() == ["treatment", "control", "treatment", "control"]
    assert trial.measurements["value"].dtype == float


def test_value_not_a_number(small_trial):
    f = failures_of(small_trial(measurements=SMALL_MEASUREMENTS.replace("P1,w4,pain,4", "P1,w4,pain,4,5".replace(",5", "") + "x")))
    hit = only(f, "must be a number")
    assert hit[["row", "column", "value"]].values.tolist() == [[3, "value", "4x"]]
    assert hit["file"].iloc[0].endswith("measurements.csv")


def test_value_outside_outcome_range(small_trial):
    f = failures_of(small_trial(measurements=SMALL_MEASUREMENTS.replace("P2,w8,pain,4", "P2,w8,pain,11")))
    hit = only(f, "pain must be within its valid range 0 to 10 points")
    assert hit[["row", "column", "value"]].values.tolist() == [[7, "value", "11.0"]]


def test_unknown_arm_code(small_trial):
    f = failures_of(small_trial(participants=SMALL_PARTICIPANTS.replace("P3,T,", "P3,X,")))
    hit = only(f, "must be one of ['T', 'C']")
    assert hit[["row", "column", "value"]].values.tolist() == [[4, "arm", "X"]]
    assert hit["file"].iloc[0].endswith("participants.csv")


def test_visit_not_in_plan(small_trial):
    f = failures_of(small_trial(measurements=SMALL_MEASUREMENTS.replace("P1,w8,pain,3", "P1,w12,pain,3")))
    hit = only(f, "must be one of the plan's visits")
    assert hit[["row", "column", "value"]].values.tolist() == [[4, "visit", "w12"]]


def test_outcome_not_in_plan(small_trial):
    f = failures_of(small_trial(measurements=SMALL_MEASUREMENTS + "P1,w4,mood,3\n"))
    hit = only(f, "must be one of the plan's outcomes")
    assert hit[["row", "column", "value"]].values.tolist() == [[13, "outcome", "mood"]]


def test_duplicated_participant_visit(small_trial):
    f = failures_of(small_trial(measurements=SMALL_MEASUREMENTS + "P2,w4,pain,5\n"))
    hit = only(f, "one row per participant x outcome x visit")
    assert hit["row"].tolist() == [6, 13]


def test_duplicated_baseline_is_a_duplicate(small_trial):
    f = failures_of(small_trial(measurements=SMALL_MEASUREMENTS + "P3,base,pain,7\n"))
    assert only(f, "one row per participant x outcome x visit")["row"].tolist() == [8, 13]


def test_missing_baseline_row(small_trial):
    lines = [line for line in SMALL_MEASUREMENTS.splitlines() if not line.startswith("P2,base")]
    f = failures_of(small_trial(measurements="\n".join(lines) + "\n"))
    hit = only(f, "must have a baseline ('base') row for pain")
    assert hit[["row", "column", "value"]].values.tolist() == [[3, "participant_id", "P2"]]
    assert hit["file"].iloc[0].endswith("participants.csv")


def test_measurement_for_unknown_participant(small_trial):
    f = failures_of(small_trial(measurements=SMALL_MEASUREMENTS + "P9,base,pain,5\n"))
    hit = only(f, "participant must be listed in the participants file")
    assert hit[["row", "column", "value"]].values.tolist() == [[13, "participant_id", "P9"]]


def test_duplicated_participant_id(small_trial):
    f = failures_of(small_trial(participants=SMALL_PARTICIPANTS + "P1,C,33,completed\n"))
    assert only(f, "must be unique")["row"].tolist() == [2, 6]


def test_unknown_disposition(small_trial):
    f = failures_of(small_trial(participants=SMALL_PARTICIPANTS.replace("P4,C,61,withdrawn", "P4,C,61,gone")))
    hit = only(f, "must be one of ['completed', 'withdrawn', 'lost_to_follow_up']")
    assert hit[["row", "column", "value"]].values.tolist() == [[5, "disposition", "gone"]]


def test_age_type_and_range(small_trial):
    f = failures_of(small_trial(participants=SMALL_PARTICIPANTS.replace("P1,T,40", "P1,T,forty").replace("P2,C,50", "P2,C,150")))
    assert only(f, "must be a number")[["row", "column", "value"]].values.tolist() == [[2, "age", "forty"]]
    assert only(f, "must be within 0 to 120")[["row", "column"]].values.tolist() == [[3, "age"]]


def test_empty_required_value(small_trial):
    f = failures_of(small_trial(participants=SMALL_PARTICIPANTS.replace("P3,T,35", "P3,,35")))
    assert only(f, "required: must not be empty")[["row", "column"]].values.tolist() == [[4, "arm"]]


def test_every_failure_reported_at_once(small_trial):
    f = failures_of(
        small_trial(
            participants=SMALL_PARTICIPANTS.replace("P3,T,", "P3,X,"),
            measurements=SMALL_MEASUREMENTS.replace("P2,w8,pain,4", "P2,w8,pain,11") + "P9,base,pain,5\n",
        )
    )
    assert len(f) == 3
    assert f.columns.tolist() == ["file", "row", "column", "rule", "value"]


def test_mapped_column_names_are_reported_as_in_the_file(small_trial):
    plan = SMALL_PLAN.replace("    path: participants.csv\n", "    path: participants.csv\n    columns: {arm: group}\n")
    f = failures_of(small_trial(plan=plan, participants=SMALL_PARTICIPANTS.replace("arm", "group").replace("P3,T,", "P3,X,")))
    assert only(f, "must be one of")["column"].tolist() == ["group"]
