"""Figures drawn from tidy tables (compute once, render many). Each plot function takes the table
and an optional ``ax`` and returns the Axes; :func:`save_figure` writes PNG and SVG byte-stably.

Size: a figure is :data:`WIDTH` inches wide and rendered at :data:`DPI`, so a report shows it at
about 960 CSS pixels (1 inch = 100 px) with twice the pixels for high-density screens (1,920 px
in the PNG); the SVG is 9.6 in = 922 CSS px. Outcomes come primary first, then in the plan's
order (:func:`outcome_order`), never alphabetically.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from analysis.core.output import write_bytes  # noqa: E402
from analysis.plan import Plan  # noqa: E402

ARM_COLOURS = {"treatment": "#0072B2", "control": "#D55E00"}  # Okabe-Ito, colour-blind safe
# Fixed metadata so the same figure gives the same bytes on every run.
_STABLE = {"svg.hashsalt": "trialkit", "svg.fonttype": "path", "path.simplify": True}
WIDTH = 9.6  # inches: 960 CSS px at 100 px per inch, the width a report gives a figure
# Participants drawn as points per arm in a change distribution; a larger arm shows a seeded random subset.
MAX_POINTS = 2_000
DPI = 200  # 2x: 1,920 px across, sharp on high-density screens


def outcome_order(plan: Plan) -> list:
    """The plan's outcomes, primary first, then the others in the plan's order.

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
    ... - {name: zeta, label: Zeta, unit: points, range: [0, 10], better: lower}
    ... - {name: alpha, label: Alpha, unit: points, range: [0, 10], better: lower}
    ... - {name: pain, label: Pain, unit: points, range: [0, 10], better: lower, primary: true}
    ... ''')
    >>> [o.name for o in outcome_order(plan)]
    ['pain', 'zeta', 'alpha']
    """
    primary = plan.primary_outcome
    return [primary, *(o for o in plan.outcomes if o is not primary)]


def ordered_figures(folder: Path, prefix: str, plan: Plan) -> list[Path]:
    """The PNG figures ``folder/<prefix>_<outcome>.png`` that exist, in :func:`outcome_order`.

    Examples
    --------
    >>> import tempfile
    >>> from analysis.plan import parse_plan
    >>> plan = parse_plan('''
    ... study: {id: demo, title: Demo trial}
    ... seed: 1
    ... data: {participants: {path: participants.csv}, measurements: {path: measurements.csv}}
    ... arms: {treatment: {label: Drug, codes: [D]}, control: {label: Placebo, codes: [P]}}
    ... visits: {baseline: baseline, followup: [{label: week8, week: 8}], primary: week8}
    ... outcomes:
    ... - {name: alpha, label: Alpha, unit: points, range: [0, 10], better: lower}
    ... - {name: pain, label: Pain, unit: points, range: [0, 10], better: lower, primary: true}
    ... ''')
    >>> folder = Path(tempfile.mkdtemp())
    >>> for name in ("trajectory_alpha.png", "trajectory_pain.png"):
    ...     _ = (folder / name).write_bytes(b"")
    >>> [p.name for p in ordered_figures(folder, "trajectory", plan)]
    ['trajectory_pain.png', 'trajectory_alpha.png']
    """
    paths = (Path(folder) / f"{prefix}_{outcome.name}.png" for outcome in outcome_order(plan))
    return [path for path in paths if path.is_file()]


def axis_label(label: str, unit: str) -> str:
    """``label (unit)``, or ``label`` alone when it already names the unit (no doubled units).

    Examples
    --------
    >>> axis_label("PROMIS Pain Interference (T-score)", "T-score")
    'PROMIS Pain Interference (T-score)'
    >>> axis_label("Trunk rotation range of motion", "degrees")
    'Trunk rotation range of motion (degrees)'
    """
    if not unit or unit.casefold() in label.casefold():
        return label
    return f"{label} ({unit})"


def _despine(ax: plt.Axes) -> None:
    """No top and right frame lines (what seaborn's ``despine`` does with its defaults)."""
    ax.spines[["top", "right"]].set_visible(False)


# How far the two arms' markers are drawn apart at a visit, in the plan's time unit.
_DODGE = {"days": 1.0, "weeks": 0.15, "months": 0.15}


def plot_trajectories(descriptives: pd.DataFrame, outcome: str, plan: Plan, ax: plt.Axes | None = None) -> plt.Axes:
    """Mean with its CI by arm across visits, for one outcome, from :func:`describe` output.

    Visits sit at their time in the plan's ``visits.time_unit``, and the axis is named after it
    (``Week``, ``Day``, ``Month``).

    Parameters
    ----------
    descriptives
        :func:`analysis.stats.describe.describe` output (its ``value`` rows are drawn).
    outcome
        The outcome's name in the plan.
    plan
        The study plan (arm labels, the outcome's label, unit and direction).
    ax
        Axes to draw on; a new figure when omitted.

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> import pandas as pd
    >>> from analysis.plan import parse_plan
    >>> from analysis.stats.describe import describe
    >>> plan = parse_plan('''
    ... study: {id: demo, title: Demo trial}
    ... seed: 1
    ... data: {participants: {path: participants.csv}, measurements: {path: measurements.csv}}
    ... arms: {treatment: {label: Drug, codes: [D]}, control: {label: Placebo, codes: [P]}}
    ... visits: {baseline: baseline, followup: [{label: week8, week: 8}], primary: week8}
    ... outcomes:
    ... - {name: pain, label: Pain, unit: points, range: [0, 10], better: lower}
    ... ''')
    >>> dataset = pd.DataFrame({
    ...     "outcome": "pain", "arm": ["treatment"] * 4 + ["control"] * 4,
    ...     "visit": ["baseline", "baseline", "week8", "week8"] * 2,
    ...     "visit_week": [0, 0, 8, 8] * 2, "baseline_flag": [True, True, False, False] * 2,
    ...     "value": [7.0, 6.0, 4.0, 3.0, 7.0, 8.0, 6.0, 6.0],
    ...     "change": [None, None, -3.0, -3.0, None, None, -1.0, -2.0]})
    >>> ax = plot_trajectories(describe(dataset), "pain", plan)
    >>> ax.get_title()
    'Pain: mean and 95% CI by arm (lower is better)'
    >>> [text.get_text() for text in ax.get_legend().get_texts()]
    ['Placebo', 'Drug']
    >>> [np.asarray(bars.lines[0].get_ydata()).tolist() for bars in ax.containers]  # the means
    [[7.5, 6.0], [6.5, 3.5]]
    >>> plt.close(ax.figure)
    """
    ax = ax or plt.subplots(figsize=(WIDTH, 4.8), layout="constrained")[1]
    rows = descriptives[(descriptives["variable"] == "value") & (descriptives["outcome"] == outcome)]
    spec = plan.outcome(outcome)
    labels = {"treatment": plan.arms.treatment.label, "control": plan.arms.control.label}
    times = rows["visit"].map(plan.visits.times).astype(float)  # the plan's unit (= visit_week for weeks)
    dodge = _DODGE[plan.visits.time_unit]
    for arm, shift in (("control", -dodge), ("treatment", dodge)):
        arm_rows = rows[rows["arm"] == arm].assign(_time=times).sort_values("_time")
        ax.errorbar(
            arm_rows["_time"] + shift,
            arm_rows["mean"],
            yerr=[arm_rows["mean"] - arm_rows["ci_low"], arm_rows["ci_high"] - arm_rows["mean"]],
            color=ARM_COLOURS[arm],
            marker="o",
            capsize=3,
            label=f"{labels[arm]}",
        )
    level = rows["ci_level"].iloc[0] if len(rows) else 0.95
    ax.set_xticks(sorted(times.unique()))
    ax.set_xlabel(plan.visits.time_label)
    ax.set_ylabel(axis_label(spec.label, spec.unit))
    ax.set_title(f"{spec.label}: mean and {level:.0%} CI by arm ({spec.better} is better)", fontsize=11)
    ax.legend(frameon=False, fontsize=8)
    _despine(ax)
    return ax


def plot_change_distribution(dataset: pd.DataFrame, outcome: str, plan: Plan, ax: plt.Axes | None = None) -> plt.Axes:
    """Distribution of change from baseline at the primary visit by arm (box + points).

    Boxes show the median and quartiles; the points (every participant with a change, jittered
    with a fixed seed) are drawn over them.

    Parameters
    ----------
    dataset
        The long analysis dataset (``outcome, visit, arm, change``).
    outcome
        The outcome's name in the plan.
    plan
        The study plan (primary visit, arm labels, the outcome's label and unit).
    ax
        Axes to draw on; a new figure when omitted.

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> import pandas as pd
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
    ...                         "arm": ["treatment"] * 3 + ["control"] * 3,
    ...                         "change": [-3.0, -4.0, None, -1.0, -2.0, 0.0]})
    >>> ax = plot_change_distribution(dataset, "pain", plan)
    >>> ax.get_title(), [tick.get_text() for tick in ax.get_xticklabels()]
    ('Pain: change at week8', ['Placebo', 'Drug'])
    >>> [len(points.get_offsets()) for points in ax.collections]  # participants drawn per arm
    [3, 2]
    >>> plt.close(ax.figure)
    """
    ax = ax or plt.subplots(figsize=(WIDTH, 4.8), layout="constrained")[1]
    visit = plan.visits.primary
    rows = dataset[(dataset["outcome"] == outcome) & (dataset["visit"] == visit) & dataset["change"].notna()]
    labels = {"treatment": plan.arms.treatment.label, "control": plan.arms.control.label}
    frame = rows.assign(arm_label=rows["arm"].map(labels))
    order = [labels["control"], labels["treatment"]]
    colours = [ARM_COLOURS["control"], ARM_COLOURS["treatment"]]
    groups = [frame.loc[frame["arm_label"] == label, "change"].to_numpy() for label in order]
    boxes = ax.boxplot(groups, positions=[0, 1], widths=0.5, showfliers=False, patch_artist=True,
                       medianprops={"color": "0.15"})
    for patch, colour in zip(boxes["boxes"], colours, strict=True):
        patch.set_facecolor(colour)
        patch.set_alpha(0.55)
    ax.set_xticks([0, 1], order)
    # Seeded jitter of our own (a stripplot would draw from the global RNG: figures would differ run to run).
    jitter = np.random.default_rng(0)
    sample = np.random.default_rng(1)  # its own stream, so the jitter of a small trial is as it always was
    for position, points in enumerate(groups):
        if points.size > MAX_POINTS:  # a seeded random subset: more points draw no clearer and save slowly
            ax.annotate(f"points: a random {MAX_POINTS:,} of {points.size:,}", (position, 0), xytext=(0, -28),
                        xycoords=("data", "axes fraction"), textcoords="offset points", ha="center", fontsize=7, color="0.4")
            points = points[np.sort(sample.choice(points.size, MAX_POINTS, replace=False))]
        ax.scatter(position + jitter.uniform(-0.18, 0.18, points.size), points, s=9, color="0.25", zorder=3)
    ax.axhline(0, color="0.6", lw=0.8, ls="--")
    spec = plan.outcome(outcome)
    ax.set_xlabel("")
    ax.set_ylabel(f"Change from baseline ({spec.unit})")
    ax.set_title(f"{spec.label}: change at {visit}", fontsize=11)
    _despine(ax)
    return ax


def plot_effects_by_visit(models: pd.DataFrame, outcome: str, plan: Plan, ax: plt.Axes | None = None) -> plt.Axes:
    """Treatment minus control at every visit with its CI: the MMRM LS-mean differences, and the
    ANCOVA adjusted difference at the primary visit beside them, from the models table.

    HC3 rows are left out (same estimate as the model-based row); the ANCOVA marker sits a
    quarter of a time unit (a week, a month; two days) to the right of its visit, which sits at its
    time in the plan's unit.

    Parameters
    ----------
    models
        The models table (``models.csv``): ``outcome, visit, measure, estimate, ci_low, ci_high,
        method``; rows with ``measure`` "LS-mean difference" and "adjusted mean difference" are
        drawn.
    outcome
        The outcome's name in the plan.
    plan
        The study plan (visit times, arm labels, the outcome's unit and direction, CI level).
    ax
        Axes to draw on; a new figure when omitted.

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> import pandas as pd
    >>> from analysis.plan import parse_plan
    >>> plan = parse_plan('''
    ... study: {id: demo, title: Demo trial}
    ... seed: 1
    ... data: {participants: {path: participants.csv}, measurements: {path: measurements.csv}}
    ... arms: {treatment: {label: Drug, codes: [D]}, control: {label: Placebo, codes: [P]}}
    ... visits:
    ...   baseline: baseline
    ...   followup: [{label: week4, week: 4}, {label: week8, week: 8}]
    ...   primary: week8
    ... outcomes:
    ... - {name: pain, label: Pain, unit: points, range: [0, 10], better: lower}
    ... ''')
    >>> models = pd.DataFrame({
    ...     "outcome": "pain", "visit": ["week4", "week8", "week8"],
    ...     "measure": ["LS-mean difference", "LS-mean difference", "adjusted mean difference"],
    ...     "estimate": [-1.0, -1.8, -1.75], "ci_low": [-2.1, -3.0, -2.9],
    ...     "ci_high": [0.1, -0.6, -0.6], "method": ["MMRM", "MMRM", "ANCOVA (OLS)"]})
    >>> ax = plot_effects_by_visit(models, "pain", plan)
    >>> ax.get_title()
    'Pain: effect by visit (95% CI; below 0 favours treatment)'
    >>> [text.get_text() for text in ax.get_legend().get_texts()]
    ['MMRM (LS-mean difference)', 'ANCOVA (adjusted difference)']
    >>> [np.asarray(bars.lines[0].get_xdata()).tolist() for bars in ax.containers]  # weeks
    [[4.0, 8.0], [8.25]]
    >>> plt.close(ax.figure)
    """
    ax = ax or plt.subplots(figsize=(WIDTH, 4.8), layout="constrained")[1]
    spec = plan.outcome(outcome)
    times = plan.visits.times  # in the plan's time unit
    rows = models[(models["outcome"] == outcome) & ~models["method"].astype(str).str.contains("HC3", regex=False)]
    side = 2.0 if plan.visits.time_unit == "days" else 0.25
    series = (
        ("LS-mean difference", "MMRM (LS-mean difference)", "o", ARM_COLOURS["treatment"], 0.0),
        ("adjusted mean difference", "ANCOVA (adjusted difference)", "s", "0.35", side),
    )
    for measure, label, marker, colour, shift in series:
        chosen = rows[(rows["measure"] == measure) & rows["estimate"].notna()].drop_duplicates("visit")
        if chosen.empty:
            continue
        x = chosen["visit"].map(times) + shift
        ax.errorbar(x, chosen["estimate"], yerr=[chosen["estimate"] - chosen["ci_low"], chosen["ci_high"] - chosen["estimate"]],
                    fmt=marker, color=colour, capsize=3, label=label)
    ax.axhline(0, color="0.6", lw=0.8, ls="--")
    followup = [times[v.label] for v in plan.visits.followup]
    ax.set_xticks(followup, [v.label for v in plan.visits.followup])
    # room either side of the visits: with a single visit the ANCOVA marker's offset would otherwise fill the axis
    pad = max(0.08 * (max(followup) - min(followup)), 4 * side)
    ax.set_xlim(min(followup) - pad, max(followup) + pad)
    ax.set_ylabel(f"{plan.arms.treatment.label} - {plan.arms.control.label} ({spec.unit})", fontsize=9)
    favoured = "below" if spec.better == "lower" else "above"
    ax.set_title(f"{spec.label}: effect by visit ({plan.analysis.ci_level:.0%} CI; {favoured} 0 favours treatment)", fontsize=11)
    ax.legend(frameon=False, fontsize=8)
    _despine(ax)
    return ax


def figure_bytes(figure: plt.Figure, fmt: str, *, svg_text: bool = False) -> bytes:
    """``figure`` as PNG (:data:`DPI`, 2x) or SVG bytes that are the same on every run: no software
    version, date or creator in the metadata and a fixed SVG id salt. ``svg_text`` keeps SVG text
    as text (editable) instead of paths. The one place trialkit renders a figure."""
    import io
    import warnings

    from analysis.reporting.glyphs import MISSING_GLYPH, make_drawable

    metadata = {"Software": None} if fmt == "png" else {"Date": None, "Creator": None}
    # SVG text is drawn by the viewer's fonts: it stays as written. Otherwise a character no installed
    # font has is drawn as '?' (said once, in trialkit's words), not as an empty box: in the text
    # before drawing, then in the tick labels, which exist only once the figure has been drawn.
    fix = not (svg_text and fmt == "svg")
    with plt.rc_context(_STABLE | ({"svg.fonttype": "none"} if svg_text else {})):
        if fix:
            make_drawable(figure)
        for _attempt in range(2):
            buffer = io.BytesIO()
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                figure.savefig(buffer, format=fmt, dpi=DPI, bbox_inches="tight", metadata=metadata)
            for w in caught:  # missing-glyph warnings are handled here; the others go on
                if not MISSING_GLYPH.search(str(w.message)):
                    warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
            if not (fix and make_drawable(figure)):
                break
    return buffer.getvalue()


def save_figure(figure: plt.Figure, stem: Path) -> list[Path]:
    """Write ``stem.png`` and ``stem.svg`` atomically (:func:`figure_bytes`), then close the figure."""
    written = [write_bytes(stem.with_suffix(f".{fmt}"), figure_bytes(figure, fmt)) for fmt in ("png", "svg")]
    plt.close(figure)
    return written


def trial_figures(
    descriptives: pd.DataFrame, dataset: pd.DataFrame, models: pd.DataFrame, plan: Plan, out_dir: Path
) -> list[Path]:
    """Every standard figure of a run: trajectories, change distributions and effects by visit,
    primary outcome first (:func:`outcome_order`)."""
    written = []
    for outcome in outcome_order(plan):
        ax = plot_effects_by_visit(models, outcome.name, plan)
        written += save_figure(ax.figure, out_dir / f"effect_by_visit_{outcome.name}")
        ax = plot_trajectories(descriptives, outcome.name, plan)
        written += save_figure(ax.figure, out_dir / f"trajectory_{outcome.name}")
        ax = plot_change_distribution(dataset, outcome.name, plan)
        written += save_figure(ax.figure, out_dir / f"change_{outcome.name}")
    return written
