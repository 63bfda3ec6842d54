"""Adverse events: contract checks and hand-counted per-arm summaries."""

import pandas as pd
import pytest

from analysis.checks.adverse_events import validate_adverse_events
from analysis.core.errors import DataError
from analysis.reporting.adverse_events import adverse_event_display, adverse_event_summary

PEOPLE = pd.DataFrame({"participant_id": ["T1", "T2", "T3", "T4", "C1", "C2", "C3", "C4", "C5"],
                       "arm": ["treatment"] * 4 + ["control"] * 5})


def events(**overrides):
    frame = pd.DataFrame({
        "participant_id": ["T1", "T1", "T2", "C1", "C1"],
        "term": ["Back pain", "Headache", "Back pain", "Syncope", "Back pain"],
        "category": ["Musculoskeletal", "Nervous system", "Musculoskeletal", "Nervous system", "Musculoskeletal"],
        "serious": ["no", "No", "yes", "Y", "0"],
    }, index=pd.RangeIndex(2, 7, name="row"))
    for key, value in overrides.items():
        frame[key] = value
    return frame


def test_summary_hand_counted():
    typed = validate_adverse_events(events(), PEOPLE)
    assert typed["serious"].tolist() == [False, False, True, True, False]
    summary = adverse_event_summary(typed, PEOPLE).set_index(["row", "category"], drop=False)
    anyae = summary[summary["row"] == "any adverse event"].iloc[0]
    assert (anyae["treatment_participants"], anyae["treatment_events"], anyae["treatment_n"]) == (2, 3, 4)
    assert anyae["treatment_percent"] == 50.0
    assert (anyae["control_participants"], anyae["control_events"], anyae["control_percent"]) == (1, 2, 20.0)
    assert (anyae["overall_participants"], anyae["overall_events"]) == (3, 5)
    sae = summary[summary["row"] == "serious adverse event"].iloc[0]
    assert (sae["treatment_participants"], sae["control_participants"], sae["overall_events"]) == (1, 1, 2)
    msk = summary[summary["category"] == "Musculoskeletal"].iloc[0]
    assert (msk["treatment_participants"], msk["treatment_events"], msk["control_participants"]) == (2, 2, 1)
    display = adverse_event_display(adverse_event_summary(typed, PEOPLE), {"treatment": "PLR", "control": "PT"})
    assert display.iloc[0]["PLR (N = 4) | Participants, n (%)"] == "2 (50.0%)"
    assert display["Event"].tolist() == ["any adverse event", "serious adverse event", "  Musculoskeletal", "  Nervous system"]


def test_every_problem_is_reported_at_once():
    bad = events(serious=["no", "maybe", "yes", "no", "no"], severity=["mild", "awful", None, None, None])
    bad.loc[4, "participant_id"] = "X9"
    with pytest.raises(DataError) as info:
        validate_adverse_events(bad, PEOPLE, source="ae.csv")
    failures = info.value.failures
    found = set(zip(failures["row"], failures["column"], failures["value"].astype(str), strict=True))
    assert (3, "serious", "maybe") in found
    assert (3, "severity", "awful") in found
    assert (4, "participant_id", "X9") in found
    assert set(failures["file"]) == {"ae.csv"}


def test_missing_required_column():
    with pytest.raises(DataError, match="serious"):
        validate_adverse_events(events().drop(columns="serious"), PEOPLE)


def test_display_labels_categories_and_suppresses_small_arm_counts():
    typed = validate_adverse_events(events(), PEOPLE)
    summary = adverse_event_summary(typed, PEOPLE)
    shown = adverse_event_display(summary, {"treatment": "PLR", "control": "PT"},
                                  category_labels={"Musculoskeletal": "Musculoskeletal disorders"}, suppress_below=3)
    assert shown["Event"].tolist() == ["any adverse event", "serious adverse event", "  Musculoskeletal disorders", "  Nervous system"]
    rows = shown.set_index("Event")
    # any AE: T 2 of 4, C 1 of 5 (hand-counted above): C's 1 < 3 is hidden, and T with it since
    # the overall 3 is shown; so are their percentages and event counts
    assert rows.loc["any adverse event"].tolist() == ["*", "*", "*", "*", "3 (33.3%)", "5"]
    # nervous system: T1 (T) and C1 (C), one each -> both hidden; overall 2 of 9 shown
    assert rows.loc["  Nervous system", "Overall (N = 9) | Participants, n (%)"] == "2 (22.2%)"
    assert rows.loc["  Nervous system", "PLR (N = 4) | Participants, n (%)"] == "*"
    unsuppressed = adverse_event_display(summary, {"treatment": "PLR", "control": "PT"}).set_index("Event")
    assert unsuppressed.loc["any adverse event", "PT (N = 5) | Participants, n (%)"] == "1 (20.0%)"
    assert unsuppressed.loc["any adverse event", "PT (N = 5) | Events"] == "2"
