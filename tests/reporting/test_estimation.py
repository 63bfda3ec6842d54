"""Estimation plot (analysis/reporting/estimation.py): the bootstrap against an independent
computation, the drawing against the numbers, byte-stable output and the run's figure files."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from scipy import stats  # noqa: E402

from analysis.plan import parse_plan  # noqa: E402
from analysis.reporting.estimation import estimation_data, plot_estimation  # noqa: E402
from analysis.reporting.figures import figure_bytes  # noqa: E402
from tests.conftest import SMALL_PLAN  # noqa: E402

PLAN = parse_plan(SMALL_PLAN)  # primary visit w8, treatment "Release", control "Stretching"
TREATMENT = [3.0, 2.0, 4.0, 1.0, 3.0, 5.0, 2.0, 2.0, 3.0]
CONTROL = [5.0, 4.0, 6.0, 5.0, 3.0, 7.0, 4.0, 6.0]


def _dataset(treatment=TREATMENT, control=CONTROL) -> pd.DataFrame:
    rows = [{"outcome": "pain", "visit": "w8", "arm": arm, "value": v}
            for arm, values in (("treatment", treatment), ("control", control)) for v in values]
    rows += [{"outcome": "pain", "visit": "w4", "arm": "treatment", "value": 99.0},  # another visit: left out
             {"outcome": "pain", "visit": "w8", "arm": "control", "value": np.nan}]  # missing: left out
    return pd.DataFrame(rows)


def _bca_by_hand(t: np.ndarray, c: np.ndarray, seed: int, n_boot: int, level: float):
    """Replicates and BCa limits written out from the definitions (Efron 1987; Efron and Tibshirani
    1993, 14.3), drawing resamples as the bootstrap documents: arm g's stream is child g of
    SeedSequence(seed), treatment first, one (n_boot, n_g) block of indices."""
    streams = [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(2)]
    bt = t[streams[0].integers(0, t.size, size=(n_boot, t.size))].mean(axis=1)
    bc = c[streams[1].integers(0, c.size, size=(n_boot, c.size))].mean(axis=1)
    boot = bt - bc
    estimate = t.mean() - c.mean()
    z0 = stats.norm.ppf(np.mean(boot < estimate))
    jack = np.concatenate([[np.delete(t, i).mean() - c.mean() for i in range(t.size)],
                           [t.mean() - np.delete(c, i).mean() for i in range(c.size)]])
    u = jack.mean() - jack
    a = np.sum(u**3) / (6 * np.sum(u**2) ** 1.5)
    z = stats.norm.ppf([(1 - level) / 2, (1 + level) / 2])
    levels = stats.norm.cdf(z0 + (z0 + z) / (1 - a * (z0 + z)))
    return boot, np.quantile(boot, levels)


def test_mean_difference_and_bca_interval_match_a_hand_computation():
    data = estimation_data(_dataset(), "pain", PLAN, seed=20231112, n_boot=3000)
    t, c = np.array(TREATMENT), np.array(CONTROL)
    assert data.difference.estimate == 25 / 9 - 40 / 8  # 2.777... - 5.0, by hand
    boot, (low, high) = _bca_by_hand(t, c, 20231112, 3000, 0.95)
    np.testing.assert_allclose(data.replicates, boot, rtol=1e-12)
    np.testing.assert_allclose([data.difference.ci_low, data.difference.ci_high], [low, high], rtol=1e-10)
    assert (data.difference.n_boot, data.difference.seed, data.difference.method) == (3000, 20231112, "bca")
    assert data.treatment.tolist() == TREATMENT and data.control.tolist() == CONTROL


def test_n_boot_defaults_to_the_plans_and_the_seed_changes_the_replicates():
    data = estimation_data(_dataset(), "pain", PLAN, seed=1)
    assert data.replicates.size == PLAN.analysis.n_boot
    other = estimation_data(_dataset(), "pain", PLAN, seed=2)
    assert not np.array_equal(data.replicates, other.replicates)


def test_the_difference_axis_is_zero_at_the_control_mean_and_shows_the_estimate_and_interval():
    data = estimation_data(_dataset(), "pain", PLAN, seed=5, n_boot=1000)
    left, right = plot_estimation(data, PLAN)
    control_mean = np.mean(CONTROL)
    np.testing.assert_allclose(np.subtract(left.get_ylim(), right.get_ylim()), [control_mean, control_mean], rtol=1e-12)
    # every participant drawn, control first (left), in the arm's colour
    counts = [len(c.get_offsets()) for c in left.collections if type(c).__name__ == "PathCollection"]
    assert counts == [len(CONTROL), len(TREATMENT)]
    assert [t.get_text() for t in left.get_xticklabels()] == ["Stretching\nn = 8", "Release\nn = 9"]
    # the point estimate and the interval on the right axes
    (point,) = [line for line in right.get_lines() if line.get_marker() == "o"]
    assert float(point.get_ydata()[0]) == data.difference.estimate
    segments = [seg for coll in right.collections if hasattr(coll, "get_segments") for seg in coll.get_segments()]
    assert any(np.allclose(sorted(seg[:, 1]), [data.difference.ci_low, data.difference.ci_high]) for seg in segments)
    # the half violin spans the replicates
    (violin,) = [c for c in right.collections if type(c).__name__ in ("PolyCollection", "FillBetweenPolyCollection")]
    ys = violin.get_paths()[0].vertices[:, 1]
    np.testing.assert_allclose([ys.min(), ys.max()], [data.replicates.min(), data.replicates.max()], rtol=1e-12)
    # every y the figure draws lies inside the axes (nothing cut off)
    assert left.get_ylim()[0] < min(CONTROL + TREATMENT) and left.get_ylim()[1] > max(CONTROL + TREATMENT)
    assert right.get_ylim()[0] < data.replicates.min() and right.get_ylim()[1] > data.replicates.max()
    assert left.get_ylabel() == "Pain NRS (points)" and right.get_ylabel() == "Mean difference, unadjusted (points)"
    plt.close(left.figure)


def test_figure_is_byte_identical_when_drawn_again_and_wide_enough():
    def draw(fmt: str) -> bytes:
        left, _ = plot_estimation(estimation_data(_dataset(), "pain", PLAN, seed=3, n_boot=500), PLAN)
        try:
            return figure_bytes(left.figure, fmt)
        finally:
            plt.close(left.figure)

    png = draw("png")
    assert png == draw("png") and draw("svg") == draw("svg")
    width = int.from_bytes(png[16:20], "big")  # PNG IHDR: width, big-endian, after the 8-byte signature
    assert width >= 1800  # 900 CSS px at 2x


def test_an_arm_with_fewer_than_two_values_gets_no_bootstrap_but_a_figure():
    data = estimation_data(_dataset(control=[5.0]), "pain", PLAN, seed=1)
    assert data.difference is None and data.replicates.size == 0
    left, right = plot_estimation(data, PLAN)
    assert "too few participants" in right.get_title()
    plt.close(left.figure)


def test_the_run_writes_an_estimation_plot_per_outcome(small_trial, tmp_path):
    from analysis.pipeline import run
    from tests.conftest import SMALL_MEASUREMENTS, SMALL_PARTICIPANTS

    people = "".join(f"P{i},{'TC'[i % 2]},{30 + 3 * i},completed\n" for i in range(5, 11))
    values = "".join(f"P{i},{v},pain,{(i * 7 + k) % 9}\n" for i in range(5, 11) for k, v in enumerate(("base", "w4", "w8")))
    plan = small_trial(participants=SMALL_PARTICIPANTS + people, measurements=SMALL_MEASUREMENTS + values)
    out = run(plan, tmp_path / "out", render_report=False)
    assert sorted(p.name for p in (out / "figures").glob("estimation_*")) == ["estimation_pain.png", "estimation_pain.svg"]


def test_a_large_arm_shows_a_seeded_subset_in_the_swarm_but_its_mean_and_sd_use_everyone():
    rng = np.random.default_rng(3)
    treatment, control = rng.normal(3.0, 1.0, 1_000), rng.normal(5.0, 1.0, 250)
    data = estimation_data(_dataset(treatment, control), "pain", PLAN, seed=1, n_boot=200)
    left, _ = plot_estimation(data, PLAN)
    # the swarm: one collection per arm, control first; a capped arm shows exactly SWARM_POINTS
    from analysis.reporting.estimation import SWARM_POINTS

    sizes = [len(c.get_offsets()) for c in left.collections if len(c.get_offsets())]
    assert SWARM_POINTS == 200 and sizes[:2] == [200, 200]
    assert left.get_title().startswith("A random 200 participants per arm")
    # the gapped mean +/- SD line of the treatment arm spans mean - SD to mean + SD of all 1,000
    from matplotlib.collections import LineCollection

    ends = [y for c in left.collections if isinstance(c, LineCollection)
            for segment in c.get_segments() if np.allclose(segment[:, 0], 1.3) for y in segment[:, 1]]
    assert np.isclose(min(ends), treatment.mean() - treatment.std(ddof=1))
    assert np.isclose(max(ends), treatment.mean() + treatment.std(ddof=1))
    plt.close(left.figure)


def test_the_exact_leave_one_out_equals_the_direct_jackknife():
    from analysis.reporting.estimation import _mean_difference
    from analysis.stats.effects import bootstrap

    rng = np.random.default_rng(5)
    t, c = rng.normal(3.0, 1.0, 40), rng.normal(5.0, 2.0, 31)
    # the direct jackknife by hand: every value left out in turn, treatment first
    direct = [np.delete(t, i).mean() - c.mean() for i in range(t.size)]
    direct += [t.mean() - np.delete(c, i).mean() for i in range(c.size)]
    exact = np.concatenate([_mean_difference.leave_one_out(g, [t, c]) for g in (0, 1)])
    assert np.allclose(exact, direct, rtol=1e-12, atol=1e-12)
    # and jackknife_values takes it once the direct way would gather too much
    limit = bootstrap.JACKKNIFE_DIRECT_ELEMENTS
    try:
        bootstrap.JACKKNIFE_DIRECT_ELEMENTS = 10
        assert np.allclose(bootstrap.jackknife_values([t, c], _mean_difference), direct, rtol=1e-12, atol=1e-12)
    finally:
        bootstrap.JACKKNIFE_DIRECT_ELEMENTS = limit
