"""Enrollment and retention against hand-counted dates and visits."""


import matplotlib

matplotlib.use("Agg")
import numpy as np
import pandas as pd
import pytest

from analysis.core.errors import UsageError
from analysis.plan import load_plan
from analysis.reporting.retention import (
    cumulative_enrollment,
    plot_enrollment,
    plot_retention,
    retention_table,
)
from tests.conftest import REPO

PLAN = load_plan(REPO / "data" / "studies" / "example-precision-release.yaml").plan
# visits: baseline (0), week4, week8, week12


def participants():
    return pd.DataFrame({
        "participant_id": ["A", "B", "C", "D", "E"],
        "arm": ["treatment", "control", "treatment", "control", "treatment"],
        "enrolled_on": pd.to_datetime(["2024-01-01", "2024-01-01", "2024-02-01", "2024-03-20", "2024-05-01"]),
    })


def dataset():
    seen = {  # visits with any value
        "A": ["baseline", "week4", "week8", "week12"],
        "B": ["baseline", "week4"],  # B missed week8 and week12
        "C": ["baseline", "week4", "week8"],  # week12 not yet due at the period end
        "D": ["baseline"],
        "E": [],
    }
    rows = []
    for pid, visits in seen.items():
        for visit in PLAN.visits.labels:
            rows.append({"participant_id": pid, "outcome": "pain_interference", "visit": visit,
                         "value": 1.0 if visit in visits else np.nan})
    return pd.DataFrame(rows)


def test_cumulative_enrollment_hand_counted():
    cum = cumulative_enrollment(participants(), "2024-03-31", period_start="2024-02-01")
    assert cum["date"].dt.strftime("%Y-%m-%d").tolist() == ["2024-01-01", "2024-02-01", "2024-03-20"]
    assert cum["enrolled"].tolist() == [2, 1, 1]
    assert cum["cumulative"].tolist() == [2, 3, 4]
    assert cum["cumulative_treatment"].tolist() == [1, 2, 2]
    assert cum["cumulative_control"].tolist() == [1, 1, 2]
    assert cum["in_period"].tolist() == [False, True, True]


def test_retention_counts_only_due_visits():
    # Period end 2024-04-20: A (Jan 1) due through week12 (Mar 25); C (Feb 1) week8 due Mar 28,
    # week12 Apr 25 not due; D (Mar 20) week4 due Apr 17; E enrolled after the period end.
    table = retention_table(participants(), dataset(), PLAN, "2024-04-20").set_index(["arm", "visit"])
    t = table.loc["treatment"]
    assert t["n_enrolled"].tolist() == [2, 2, 2, 2]
    assert t["n_due"].tolist() == [2, 2, 2, 1]
    assert t["n_attended"].tolist() == [2, 2, 2, 1]
    c = table.loc["control"]
    assert c["n_due"].tolist() == [2, 2, 1, 1]  # B through week12 (Mar 25); D baseline and week4
    assert c["n_attended"].tolist() == [2, 1, 0, 0]
    assert c["percent_attended"].tolist() == [100.0, 50.0, 0.0, 0.0]


def test_bad_period_end_and_plots():
    with pytest.raises(UsageError, match="not a date"):
        cumulative_enrollment(participants(), "next tuesday")
    with pytest.raises(UsageError, match="no participant"):
        cumulative_enrollment(participants(), "2023-01-01")
    cum = cumulative_enrollment(participants(), "2024-06-30")
    ax = plot_enrollment(cum, 10, "2024-06-30")
    assert "5 of 10" in ax.get_title()
    ax = plot_retention(retention_table(participants(), dataset(), PLAN, "2024-06-30"))
    assert len(ax.get_lines()) == 2
