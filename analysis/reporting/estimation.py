"""Estimation plot of the primary visit (Gardner-Altman, as DABEST draws it).

Ho, Tumkaya, Aryal, Choi and Claridge-Chang (2019), "Moving beyond P values: data analysis with
estimation graphics", *Nature Methods* 16:565-566. The left axes show every participant's value at
the primary visit by arm (a swarm), with each arm's mean +/- SD as a gapped line beside it (the
gap is the mean). The right axes show the mean difference (treatment minus control, unadjusted:
the primary analysis's covariate-adjusted difference is in the models table): its bootstrap
distribution as a half violin, the point estimate and its BCa confidence interval. The right axes'
zero sits at the control arm's mean on the left axes, so the estimate sits at the treatment mean.

The bootstrap is :func:`analysis.stats.effects.bootstrap.bootstrap_ci` (resampling within each
arm) seeded with the run's seed (the plan's ``seed`` unless overridden) and the plan's ``n_boot``:
the same data and seed give the same replicates, so the figure is byte-identical on a rerun.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg", force=False)  # headless rendering; a no-op when a backend is already in use

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402

from analysis.plan import Plan  # noqa: E402
from analysis.reporting.figures import ARM_COLOURS, WIDTH, axis_label, outcome_order, save_figure  # noqa: E402
from analysis.stats.effects.bootstrap import BootstrapResult, bootstrap_ci, bootstrap_distribution  # noqa: E402

SWARM_POINTS = 200  # per arm: a swarm of more draws no clearer, and placing it costs n squared


def _mean_difference(treatment: np.ndarray, control: np.ndarray) -> np.ndarray:
    """Treatment mean minus control mean of each resample (rows of the batches)."""
    return treatment.mean(axis=-1) - control.mean(axis=-1)


def _mean_difference_loo(g: int, samples: Sequence[np.ndarray]) -> np.ndarray:
    """Exact leave-one-out values of :func:`_mean_difference` for sample ``g`` in O(n) (the BCa
    acceleration without the (n, n-1) jackknife): leaving out x_i moves that arm's mean to
    mean - (x_i - mean) / (n - 1)."""
    treatment, control = samples
    values = treatment if g == 0 else control
    loo = values.mean() - (values - values.mean()) / (values.size - 1)
    return loo - control.mean() if g == 0 else treatment.mean() - loo


_mean_difference.leave_one_out = _mean_difference_loo  # type: ignore[attr-defined]


@dataclass(frozen=True)
class EstimationData:
    """What an estimation plot shows: the values by arm and the bootstrapped mean difference.

    Attributes
    ----------
    outcome, visit : str
        The outcome's name and the visit (the plan's primary visit).
    treatment, control : numpy.ndarray
        The participants' values at the visit (missing values left out).
    difference : BootstrapResult or None
        Mean difference (treatment minus control) with its BCa interval; None when an arm has
        fewer than two values (no bootstrap).
    replicates : numpy.ndarray
        The ``n_boot`` bootstrap mean differences (empty when ``difference`` is None).
    """

    outcome: str
    visit: str
    treatment: np.ndarray
    control: np.ndarray
    difference: BootstrapResult | None
    replicates: np.ndarray


def estimation_data(dataset: pd.DataFrame, outcome: str, plan: Plan, *, seed: int, n_boot: int | None = None) -> EstimationData:
    """The primary visit's values by arm and the bootstrap of their mean difference.

    The mean difference is ``mean(treatment) - mean(control)``; its interval is the BCa interval
    (Efron 1987) of a bootstrap resampling within each arm, treatment first (so the treatment arm's
    stream is child 0 of ``SeedSequence(seed)``), at the plan's CI level.

    Parameters
    ----------
    dataset
        The long analysis dataset (``outcome, visit, arm, value``).
    outcome
        The outcome's name in the plan.
    plan
        The study plan (primary visit, CI level, ``analysis.n_boot``).
    seed
        The run's seed.
    n_boot
        Resamples; the plan's ``analysis.n_boot`` when omitted.

    Returns
    -------
    EstimationData

    Examples
    --------
    >>> from analysis.plan import parse_plan
    >>> plan = parse_plan('''
    ... study: {id: demo, title: Demo trial}
    ... seed: 1
    ... data: {participants: {path: participants.csv}, measurements: {path: measurements.csv}}
    ... arms: {treatment: {label: Drug, codes: [D]}, control: {label: Placebo, codes: [P]}}
    ... visits: {baseline: baseline, followup: [{label: week8, week: 8}], primary: week8}
    ... outcomes:
    ... - {name: pain, label: Pain, unit: points, range: [0, 10], better: lower}
    ... ''')
    >>> dataset = pd.DataFrame({"outcome": "pain", "visit": "week8",
    ...                         "arm": ["treatment"] * 4 + ["control"] * 4,
    ...                         "value": [2.0, 3.0, 4.0, 3.0, 5.0, 6.0, 4.0, None]})
    >>> data = estimation_data(dataset, "pain", plan, seed=1, n_boot=500)
    >>> round(data.difference.estimate, 6), data.control.size, data.replicates.size  # 3 - 5
    (-2.0, 3, 500)
    >>> bool(data.difference.ci_low < -2.0 < data.difference.ci_high)
    True
    """
    visit = plan.visits.primary
    rows = dataset[(dataset["outcome"] == outcome) & (dataset["visit"] == visit) & dataset["value"].notna()]
    treatment = rows.loc[rows["arm"] == "treatment", "value"].to_numpy(dtype=float)
    control = rows.loc[rows["arm"] == "control", "value"].to_numpy(dtype=float)
    if treatment.size < 2 or control.size < 2:
        return EstimationData(outcome, visit, treatment, control, None, np.empty(0))
    n_boot = int(n_boot or plan.analysis.n_boot)
    samples = [treatment, control]
    # drawn once: the distribution shown is the one the interval comes from
    replicates = bootstrap_distribution(samples, _mean_difference, n_boot=n_boot, seed=int(seed))
    result = bootstrap_ci(samples, _mean_difference, n_boot=n_boot, seed=int(seed), ci_level=plan.analysis.ci_level,
                          method="bca", replicates=replicates)
    return EstimationData(outcome, visit, treatment, control, result, replicates)


def _gapped_line(ax: Axes, x: float, values: np.ndarray, gap: float) -> None:
    """Mean +/- SD as a vertical line broken at the mean (DABEST's gapped line)."""
    mean = values.mean()
    sd = values.std(ddof=1) if values.size > 1 else 0.0
    ax.vlines([x, x], [mean - sd, mean + gap], [mean - gap, mean + sd], color="0.15", linewidth=2.2, zorder=4)


def _half_violin(ax: Axes, replicates: np.ndarray, width: float) -> None:
    """The bootstrap distribution as a Gaussian kernel density, drawn to the right of x = 0."""
    from scipy.stats import gaussian_kde

    if np.ptp(replicates) == 0:
        return
    grid = np.linspace(replicates.min(), replicates.max(), 256)
    density = gaussian_kde(replicates)(grid)
    ax.fill_betweenx(grid, 0.0, width * density / density.max(), color=ARM_COLOURS["treatment"], alpha=0.35, linewidth=0)


def plot_estimation(data: EstimationData, plan: Plan, axes: tuple[Axes, Axes] | None = None) -> tuple[Axes, Axes]:
    """Draw the Gardner-Altman estimation plot of :func:`estimation_data`.

    Parameters
    ----------
    data
        The values and the bootstrap (:func:`estimation_data`).
    plan
        The study plan (arm labels, the outcome's label, unit and direction, CI level).
    axes
        (values axes, difference axes) to draw on; a new figure :data:`WIDTH` inches wide when
        omitted.

    Returns
    -------
    (matplotlib.axes.Axes, matplotlib.axes.Axes)
        The values axes and the mean-difference axes.

    Examples
    --------
    >>> from analysis.plan import parse_plan
    >>> plan = parse_plan('''
    ... study: {id: demo, title: Demo trial}
    ... seed: 1
    ... data: {participants: {path: participants.csv}, measurements: {path: measurements.csv}}
    ... arms: {treatment: {label: Drug, codes: [D]}, control: {label: Placebo, codes: [P]}}
    ... visits: {baseline: baseline, followup: [{label: week8, week: 8}], primary: week8}
    ... outcomes:
    ... - {name: pain, label: Pain, unit: points, range: [0, 10], better: lower}
    ... ''')
    >>> dataset = pd.DataFrame({"outcome": "pain", "visit": "week8",
    ...                         "arm": ["treatment"] * 4 + ["control"] * 4,
    ...                         "value": [2.0, 3.0, 4.0, 3.0, 5.0, 6.0, 4.0, 5.0]})
    >>> left, right = plot_estimation(estimation_data(dataset, "pain", plan, seed=1, n_boot=500), plan)
    >>> [t.get_text() for t in left.get_xticklabels()]
    ['Placebo\\nn = 4', 'Drug\\nn = 4']
    >>> # zero on the right is the control mean (5) on the left: the y ranges differ by 5
    >>> [round(float(a - b), 6) for a, b in zip(left.get_ylim(), right.get_ylim())]
    [5.0, 5.0]
    >>> plt.close(left.figure)
    """
    import seaborn as sns

    if axes is None:
        figure = plt.figure(figsize=(WIDTH, 5.2), layout="constrained")
        left, right = figure.subplots(1, 2, width_ratios=[2.3, 1.0])
    else:
        left, right = axes
    spec = plan.outcome(data.outcome)
    labels = {"treatment": plan.arms.treatment.label, "control": plan.arms.control.label}
    arms = ("control", "treatment")
    order = [f"{labels[arm]}\nn = {getattr(data, arm).size}" for arm in arms]
    # A swarm places each point against all the others (cost grows with n squared) and past a few
    # hundred points per arm it draws no clearer: above SWARM_POINTS an arm shows a seeded random
    # subset, said on the figure; the mean +/- SD and the bootstrap always use every participant.
    sample = np.random.default_rng(0)
    shown = {}
    for arm in arms:
        values = getattr(data, arm)
        if values.size > SWARM_POINTS:
            values = values[np.sort(sample.choice(values.size, SWARM_POINTS, replace=False))]
        shown[arm] = values
    frame = pd.DataFrame({"arm": np.repeat(order, [shown["control"].size, shown["treatment"].size]),
                          "value": np.concatenate([shown["control"], shown["treatment"]])})

    # y range: every value, each arm's mean +/- SD, and the difference's distribution and interval
    # placed on the control mean (so nothing drawn on the right axes is cut off)
    control_mean = data.control.mean() if data.control.size else 0.0
    spans = [frame["value"].to_numpy()]
    for values in (data.control, data.treatment):
        if values.size > 1:
            spans.append(values.mean() + np.array([-1.0, 1.0]) * values.std(ddof=1))
    if data.difference is not None:
        spans.append(control_mean + np.array([data.replicates.min(), data.replicates.max(),
                                              data.difference.ci_low, data.difference.ci_high]))
    everything = np.concatenate(spans)
    everything = everything[np.isfinite(everything)]
    low, high = (everything.min(), everything.max()) if everything.size else (0.0, 1.0)
    pad = 0.06 * (high - low) or 1.0
    low, high = low - pad, high + pad

    palette = {label: ARM_COLOURS[arm] for label, arm in zip(order, arms, strict=True)}
    left.set_ylim(low, high)
    with warnings.catch_warnings():
        # a crowded swarm places its last points on top of others (and says so): still every participant drawn
        warnings.filterwarnings("ignore", message=r".*points cannot be placed.*", category=UserWarning)
        sns.swarmplot(data=frame, x="arm", y="value", hue="arm", order=order, hue_order=order, palette=palette,
                      size=4.2, legend=False, ax=left)
    gap = 0.015 * (high - low)
    for position, arm in enumerate(arms):
        values = getattr(data, arm)
        if values.size:
            _gapped_line(left, position + 0.3, values, gap)
            # the arm's mean carried across to the difference axes, where the two lines are 0 and the estimate
            left.hlines(values.mean(), position + 0.3, 1.6, color="0.45", linewidth=0.8, linestyle=":")
    left.set_ylim(low, high)
    left.set_xlim(-0.6, 1.6)
    left.set_xlabel("")
    left.set_ylabel(axis_label(spec.label, spec.unit))
    subset = [arm for arm in arms if shown[arm].size < getattr(data, arm).size]
    who = (f"A random {SWARM_POINTS:,} participants per arm" if subset else "Each participant")
    everyone = " (of all)" if subset else ""
    left.set_title(f"{who} at {data.visit}; mean \u00b1 SD{everyone} beside each arm", fontsize=10)
    left.spines[["top", "right"]].set_visible(False)

    # the difference axes: its zero at the control mean on the left
    right.set_ylim(low - control_mean, high - control_mean)
    right.set_xlim(-0.45, 0.75)
    right.axhline(0.0, color="0.45", linewidth=0.9)
    right.yaxis.tick_right()
    right.yaxis.set_label_position("right")
    right.spines[["top", "left"]].set_visible(False)
    right.set_xticks([0.0], [f"{labels['treatment']}\nminus {labels['control']}"])
    right.set_ylabel(f"Mean difference, unadjusted ({spec.unit})")
    level = plan.analysis.ci_level
    if data.difference is None:
        right.set_title("too few participants\nfor a bootstrap", fontsize=10)
    else:
        d = data.difference
        _half_violin(right, data.replicates, width=0.5)
        right.vlines(0.0, d.ci_low, d.ci_high, color="0.1", linewidth=2.4, zorder=4)
        right.plot([0.0], [d.estimate], "o", color="0.1", markersize=8, zorder=5)
        right.axhline(d.estimate, color="0.45", linewidth=0.8, linestyle=":")
        right.annotate(f"{d.estimate:.2f}\n[{d.ci_low:.2f}, {d.ci_high:.2f}]", xy=(0.0, d.estimate), xytext=(-10, 4),
                       textcoords="offset points", ha="right", va="bottom", fontsize=9)
        right.set_title(f"{level:.0%} CI (BCa bootstrap,\n{d.n_boot:,} resamples, seed {d.seed})", fontsize=10)
    favoured = "below" if spec.better == "lower" else "above"
    left.figure.suptitle(f"{spec.label} at {data.visit}: estimation plot ({favoured} 0 favours treatment)", fontsize=11)
    return left, right


def estimation_figures(dataset: pd.DataFrame, plan: Plan, out_dir: Path, *, seed: int) -> list[Path]:
    """Write ``estimation_<outcome>.png`` and ``.svg`` for every outcome, primary first."""
    written = []
    for outcome in outcome_order(plan):
        left, _ = plot_estimation(estimation_data(dataset, outcome.name, plan, seed=seed), plan)
        written += save_figure(left.figure, Path(out_dir) / f"estimation_{outcome.name}")
    return written
