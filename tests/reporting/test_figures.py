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


# Issue 13: no doubled units, primary outcome first, at least 900 CSS px at 2x.
THREE_OUTCOMES = SMALL_PLAN.replace(
    "outcomes:\n",
    "outcomes:\n"
    "  - {name: alpha, label: Alpha score, unit: points, range: [0, 10], better: lower}\n"
    "  - {name: interference, label: PROMIS Pain Interference (T-score), unit: T-score, range: [0, 100],"
    " better: lower, primary: true}\n",
)


def _three_outcome_dataset() -> pd.DataFrame:
    frames = []
    for name in ("alpha", "interference", "pain"):
        frame = _dataset([0.0, 4.0, 8.0]).assign(outcome=name)
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def test_axis_titles_name_the_unit_once():
    plan = parse_plan(THREE_OUTCOMES)
    ax = plot_trajectories(describe(_three_outcome_dataset()), "interference", plan)
    assert ax.get_ylabel() == "PROMIS Pain Interference (T-score)"
    plt.close(ax.figure)
    ax = plot_trajectories(describe(_three_outcome_dataset()), "alpha", plan)
    assert ax.get_ylabel() == "Alpha score (points)"
    plt.close(ax.figure)


def test_trial_figures_put_the_primary_outcome_first_then_the_plans_order_and_are_2x_900_px(tmp_path):
    from analysis.reporting.figures import ordered_figures, trial_figures

    plan = parse_plan(THREE_OUTCOMES)
    dataset = _three_outcome_dataset()
    models = pd.DataFrame({"outcome": ["alpha", "interference", "pain"], "visit": "w8", "measure": "LS-mean difference",
                           "estimate": -1.0, "ci_low": -2.0, "ci_high": 0.0, "method": "MMRM"})
    written = trial_figures(describe(dataset), dataset, models, plan, tmp_path)
    outcomes = list(dict.fromkeys(p.stem.rsplit("_", 1)[1] for p in written))
    assert outcomes == ["interference", "alpha", "pain"]  # not alphabetical: primary, then the plan's order
    assert [p.name for p in ordered_figures(tmp_path, "trajectory", plan)] == [
        "trajectory_interference.png", "trajectory_alpha.png", "trajectory_pain.png"]
    for path in written:
        data = path.read_bytes()
        if path.suffix == ".png":
            assert int.from_bytes(data[16:20], "big") >= 1800, path.name  # IHDR width: 900 CSS px at 2x
        else:
            width = float(data.split(b'width="', 1)[1].split(b"pt", 1)[0])
            assert width * 4 / 3 >= 900, path.name  # SVG width in pt; 1 pt = 4/3 CSS px


def test_change_distribution_draws_a_seeded_subset_of_a_large_arm():
    from analysis.reporting.figures import MAX_POINTS, plot_change_distribution

    plan = parse_plan(SMALL_PLAN)
    outcome = plan.outcomes[0].name
    n = MAX_POINTS + 500
    rng = np.random.default_rng(2)
    dataset = pd.DataFrame({"outcome": outcome, "visit": plan.visits.primary,
                            "arm": ["treatment"] * n + ["control"] * 10, "change": rng.normal(0, 1, n + 10)})
    ax = plot_change_distribution(dataset, outcome, plan)
    drawn = [len(points.get_offsets()) for points in ax.collections]
    assert drawn == [10, MAX_POINTS]  # control (all), treatment (a subset)
    assert any(f"a random {MAX_POINTS:,} of {n:,}" in text.get_text() for text in ax.texts)
    again = plot_change_distribution(dataset, outcome, plan)
    assert np.array_equal(ax.collections[1].get_offsets(), again.collections[1].get_offsets())
    plt.close(ax.figure)
    plt.close(again.figure)
