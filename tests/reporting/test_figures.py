"""Trial figures: the time axis in the plan's unit (analysis/reporting/figures.py)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from analysis.plan import parse_plan  # noqa: E402
from analysis.reporting.figures import plot_effects_by_visit, plot_trajectories  # noqa: E402
from analysis.stats.describe import describe  # noqa: E402
from tests.conftest import SMALL_PLAN  # noqa: E402

MONTHS = SMALL_PLAN.replace(
    "  followup:\n    - {label: w4, week: 4}\n    - {label: w8, week: 8}\n",
    "  time_unit: months\n  followup:\n    - {label: w4, time: 2}\n    - {label: w8, time: 8}\n",
)


def _dataset(weeks: list[float]) -> pd.DataFrame:
    visits = ["base", "w4", "w8"]
    rows = []
    for arm, values in (("treatment", [6.0, 4.0, 3.0, 7.0, 5.0, 4.0]), ("control", [6.0, 5.0, 5.0, 5.0, 5.0, 4.0])):
        for k, value in enumerate(values):
            rows.append({"participant_id": f"{arm}{k // 3}", "arm": arm, "outcome": "pain", "visit": visits[k % 3],
                         "visit_week": weeks[k % 3], "baseline_flag": k % 3 == 0, "value": value,
                         "change": None if k % 3 == 0 else value - values[k - k % 3]})
    return pd.DataFrame(rows)


def test_trajectories_put_visits_at_their_months_and_name_the_axis():
    plan = parse_plan(MONTHS)
    weeks = [plan.visits.weeks[v] for v in ("base", "w4", "w8")]  # 0, 8.70, 34.79
    ax = plot_trajectories(describe(_dataset(weeks)), "pain", plan)
    assert ax.get_xlabel() == "Month"
    assert [float(t) for t in ax.get_xticks()] == [0.0, 2.0, 8.0]
    xs = [np.asarray(bars.lines[0].get_xdata()).tolist() for bars in ax.containers]
    assert xs == [[-0.15, 1.85, 7.85], [0.15, 2.15, 8.15]]  # control left, treatment right of each month
    plt.close(ax.figure)


def test_weeks_keep_the_week_axis():
    plan = parse_plan(SMALL_PLAN)
    ax = plot_trajectories(describe(_dataset([0.0, 4.0, 8.0])), "pain", plan)
    assert ax.get_xlabel() == "Week" and [float(t) for t in ax.get_xticks()] == [0.0, 4.0, 8.0]
    plt.close(ax.figure)


def test_effects_by_visit_sit_at_the_plans_months():
    plan = parse_plan(MONTHS)
    models = pd.DataFrame({"outcome": "pain", "visit": ["w4", "w8", "w8"],
                           "measure": ["LS-mean difference", "LS-mean difference", "adjusted mean difference"],
                           "estimate": [-1.0, -1.8, -1.75], "ci_low": [-2.1, -3.0, -2.9], "ci_high": [0.1, -0.6, -0.6],
                           "method": ["MMRM", "MMRM", "ANCOVA (OLS)"]})
    ax = plot_effects_by_visit(models, "pain", plan)
    assert [np.asarray(bars.lines[0].get_xdata()).tolist() for bars in ax.containers] == [[2.0, 8.0], [8.25]]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["w4", "w8"]
    plt.close(ax.figure)
