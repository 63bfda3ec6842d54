"""Derivations with literal input and expected tables (admiral-style), edge cases included."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis.derive.dataset import (
    build_analysis_dataset,
    derive_baseline,
    derive_change,
    derive_pct_change,
    derive_responders,
    expand_visit_grid,
)
from analysis.plan import parse_plan
from tests.conftest import SMALL_PLAN

NA = np.nan
PLAN = parse_plan(SMALL_PLAN)


def long(rows):
    return pd.DataFrame(rows, columns=["participant_id", "outcome", "visit", "value"])


def test_baseline_change_and_percent_change_with_edge_cases():
    frame = long(
        [
            ("A", "pain", "base", 5.0), ("A", "pain", "w4", 3.0),   # ordinary
            ("B", "pain", "base", 0.0), ("B", "pain", "w4", 2.0),   # zero baseline
            ("C", "pain", "base", NA), ("C", "pain", "w4", 4.0),    # missing baseline
            ("D", "pain", "base", 6.0), ("D", "pain", "w4", NA),    # missing visit value
        ]
    )
    out = derive_pct_change(derive_change(derive_baseline(frame, "base")))
    expected = pd.DataFrame(
        {
            "baseline_flag": [True, False] * 4,
            "baseline": [5.0, 5.0, 0.0, 0.0, NA, NA, 6.0, 6.0],
            "change": [NA, -2.0, NA, 2.0, NA, NA, NA, NA],
            "pct_change": [NA, -40.0, NA, NA, NA, NA, NA, NA],
        }
    )
    pd.testing.assert_frame_equal(out[expected.columns].reset_index(drop=True), expected, check_exact=False, rtol=1e-12)


def test_responders_respect_direction_and_thresholds():
    frame = pd.DataFrame(
        {
            "outcome": ["pain"] * 5,
            "change": [-2.0, -1.9, 1.0, NA, NA],
            "pct_change": [-30.0, -29.0, 20.0, NA, -50.0],
        }
    )
    out = derive_responders(frame, PLAN.outcomes)
    assert out["responder_points"].tolist() == [True, False, False, pd.NA, pd.NA]
    assert out["responder_percent"].tolist() == [True, False, False, pd.NA, True]


def test_higher_is_better_responders():
    plan = parse_plan(SMALL_PLAN.replace("better: lower", "better: higher"))
    frame = pd.DataFrame({"outcome": ["pain"] * 2, "change": [2.0, -3.0], "pct_change": [10.0, -40.0]})
    out = derive_responders(frame, plan.outcomes)
    assert out["responder_points"].tolist() == [True, False]
    assert out["responder_percent"].tolist() == [False, False]


def test_visit_grid_adds_missed_visits_as_missing_rows():
    participants = pd.DataFrame({"participant_id": ["A", "B"], "arm": ["treatment", "control"]})
    measurements = long([("A", "pain", "base", 5.0), ("A", "pain", "w4", 4.0), ("B", "pain", "base", 6.0)])
    grid = expand_visit_grid(measurements, participants, PLAN)
    assert grid[["participant_id", "arm", "visit"]].values.tolist() == [
        ["A", "treatment", "base"], ["A", "treatment", "w4"], ["A", "treatment", "w8"],
        ["B", "control", "base"], ["B", "control", "w4"], ["B", "control", "w8"],
    ]
    assert grid["value"].isna().tolist() == [False, False, True, False, True, True]


def test_missing_input_column_is_named():
    with pytest.raises(ValueError, match=r"derive_change needs column\(s\) \['baseline'\]"):
        derive_change(pd.DataFrame({"value": [1.0], "baseline_flag": [False]}))


def test_analysis_dataset_columns_and_order():
    participants = pd.DataFrame({"participant_id": ["A"], "arm": ["treatment"]})
    measurements = long([("A", "pain", "base", 8.0), ("A", "pain", "w4", 6.0), ("A", "pain", "w8", 4.0)])
    out = build_analysis_dataset(measurements, participants, PLAN)
    assert out.columns.tolist() == [
        "participant_id", "arm", "outcome", "visit", "visit_week", "value", "baseline", "change",
        "pct_change", "baseline_flag", "responder_points", "responder_percent",
    ]
    assert out["visit_week"].tolist() == [0.0, 4.0, 8.0]
    assert out["change"].tolist()[1:] == [-2.0, -4.0]
    assert out["pct_change"].tolist()[1:] == [-25.0, -50.0]
    assert out["responder_points"].tolist() == [pd.NA, True, True]
    assert out["responder_percent"].tolist() == [pd.NA, False, True]
