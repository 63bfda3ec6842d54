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
    enrollment_against_target,
    plot_enrollment,
    plot_retention,
    retention_display,
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


def test_retention_display_one_decimal_per_visit_and_arm():
    # 2024-05-20, treatment = A, C, E: all three due at baseline, E has no value -> 2/3 = 66.666...%;
    # week4 due for A (Jan 29) and C (Feb 29), not E (May 29) -> 2/2; week12 due for A (Mar 25)
    # and C (Apr 25), only A attended -> 1/2. Control = B (Jan 1), D (Mar 20): week8 due for both (D: May 15), both missed -> 0/2.
    table = retention_table(participants(), dataset(), PLAN, "2024-05-20")
    shown = retention_display(table, {"treatment": "PLR", "control": "PT"}).set_index("Visit")
    assert list(shown.columns) == ["PLR (N = 3) | Attended/due", "PLR (N = 3) | %", "PT (N = 2) | Attended/due", "PT (N = 2) | %"]
    assert shown.index.tolist() == ["baseline (wk 0)", "week4 (wk 4)", "week8 (wk 8)", "week12 (wk 12)"]
    assert shown["PLR (N = 3) | Attended/due"].tolist() == ["2/3", "2/2", "2/2", "1/2"]
    assert shown["PLR (N = 3) | %"].tolist() == ["66.7", "100.0", "100.0", "50.0"]
    assert shown.loc["week8 (wk 8)", "PT (N = 2) | Attended/due"] == "0/2" and shown.loc["week8 (wk 8)", "PT (N = 2) | %"] == "0.0"


def test_enrollment_against_target_and_without_one():
    cum = cumulative_enrollment(participants(), "2024-06-30", "2024-03-01")
    shown = enrollment_against_target(cum, 12, "2024-06-30", {"treatment": "PLR", "control": "PT"}).set_index("Measure")["Value"]
    assert shown["Enrolled by 2024-06-30 (all)"] == "5" and shown["PLR"] == "3" and shown["PT"] == "2"
    assert shown["Enrolled in reporting period"] == "2"  # D (Mar 20) and E (May 1)
    assert shown["Target enrollment"] == "12" and shown["Percent of target"] == "41.7"  # 5 / 12 = 41.666...
    none = enrollment_against_target(cum, None, "2024-06-30").set_index("Measure")["Value"]
    assert none["Target enrollment"] == none["Percent of target"] == "target not declared"
