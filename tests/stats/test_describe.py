"""Descriptives against hand-worked values (R: mean, sd, quantile type 7, t.test CI)."""

from __future__ import annotations

import pandas as pd
import pytest

from analysis.stats.describe import describe


def test_descriptives_match_hand_worked_values():
    data = pd.DataFrame(
        {
            "outcome": "pain", "visit": "w4", "visit_week": 4.0, "arm": "control", "baseline_flag": False,
            "value": [2.0, 4.0, 4.0, 5.0, 7.0, 9.0, None],
            "change": [0.0] * 7,
        }
    )
    row = describe(data, ("value",)).iloc[0]
    assert row["n"] == 6 and row["n_missing"] == 1
    assert row["mean"] == pytest.approx(31 / 6, rel=1e-12)
    # squared deviations from 31/6: 10.0278 + 2 * 1.3611 + 0.0278 + 3.3611 + 14.6944 = 185/6
    assert row["sd"] == pytest.approx((185 / 6 / 5) ** 0.5, rel=1e-12)
    assert row["median"] == 4.5
    assert row["q1"] == 4.0 and row["q3"] == 6.5  # R quantile(type = 7)
    # mean +/- t(0.975, 5) * sd / sqrt(6), with t(0.975, 5) = 2.5705818366 from t tables
    half = 2.5705818366 * (185 / 6 / 5) ** 0.5 / 6**0.5
    assert row["ci_low"] == pytest.approx(31 / 6 - half, rel=1e-9)
    assert row["ci_high"] == pytest.approx(31 / 6 + half, rel=1e-9)


def test_change_is_not_described_on_baseline_rows():
    data = pd.DataFrame(
        {"outcome": "x", "visit": ["b", "w"], "visit_week": [0.0, 4.0], "arm": "control",
         "baseline_flag": [True, False], "value": [1.0, 2.0], "change": [None, 1.0]}
    )
    table = describe(data)
    assert table[table["variable"] == "change"]["visit"].tolist() == ["w"]
