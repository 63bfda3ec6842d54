"""Figures drawn from tidy tables (compute once, render many). Each plot function takes the table
and an optional ``ax`` and returns the Axes; :func:`save_figure` writes PNG and SVG byte-stably.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from analysis.core.output import write_bytes  # noqa: E402
from analysis.plan import Plan  # noqa: E402

ARM_COLOURS = {"treatment": "#0072B2", "control": "#D55E00"}  # Okabe-Ito, colour-blind safe
# Fixed metadata so the same figure gives the same bytes on every run.
_STABLE = {"svg.hashsalt": "trialkit", "svg.fonttype": "path", "path.simplify": True}


def plot_trajectories(descriptives: pd.DataFrame, outcome: str, plan: Plan, ax: plt.Axes | None = None) -> plt.Axes:
    """Mean with its CI by arm across visit weeks, for one outcome, from :func:`describe` output."""
    ax = ax or plt.subplots(figsize=(6.4, 4.2))[1]
    rows = descriptives[(descriptives["variable"] == "value") & (descriptives["outcome"] == outcome)]
    spec = plan.outcome(outcome)
    labels = {"treatment": plan.arms.treatment.label, "control": plan.arms.control.label}
    for arm, shift in (("control", -0.15), ("treatment", 0.15)):
        arm_rows = rows[rows["arm"] == arm].sort_values("visit_week")
        weeks = arm_rows["visit_week"] + shift
        ax.errorbar(
            weeks,
            arm_rows["mean"],
            yerr=[arm_rows["mean"] - arm_rows["ci_low"], arm_rows["ci_high"] - arm_rows["mean"]],
            color=ARM_COLOURS[arm],
            marker="o",
            capsize=3,
            label=f"{labels[arm]}",
        )
    level = rows["ci_level"].iloc[0] if len(rows) else 0.95
    ax.set_xticks(sorted(rows["visit_week"].unique()))
    ax.set_xlabel("Week")
    ax.set_ylabel(f"{spec.label} ({spec.unit})")
    ax.set_title(f"{spec.label}: mean and {level:.0%} CI by arm ({spec.better} is better)", fontsize=10)
    ax.legend(frameon=False, fontsize=8)
    sns.despine(ax=ax)
    return ax


def plot_change_distribution(dataset: pd.DataFrame, outcome: str, plan: Plan, ax: plt.Axes | None = None) -> plt.Axes:
    """Distribution of change from baseline at the primary visit by arm (box + points)."""
    ax = ax or plt.subplots(figsize=(5.2, 4.2))[1]
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
    # Seeded jitter of our own: seaborn's draws from the global RNG, so figures would differ run to run.
    jitter = np.random.default_rng(0)
    for position, label in enumerate(order):
        points = frame.loc[frame["arm_label"] == label, "change"].to_numpy()
        ax.scatter(position + jitter.uniform(-0.18, 0.18, points.size), points, s=9, color="0.25", zorder=3)
    ax.axhline(0, color="0.6", lw=0.8, ls="--")
    spec = plan.outcome(outcome)
    ax.set_xlabel("")
    ax.set_ylabel(f"Change from baseline ({spec.unit})")
    ax.set_title(f"{spec.label}: change at {visit}", fontsize=10)
    sns.despine(ax=ax)
    return ax


def plot_effects_by_visit(models: pd.DataFrame, outcome: str, plan: Plan, ax: plt.Axes | None = None) -> plt.Axes:
    """Treatment minus control at every visit with its CI: the MMRM LS-mean differences, and the
    ANCOVA adjusted difference at the primary visit beside them, from the models table."""
    ax = ax or plt.subplots(figsize=(6.4, 4.2))[1]
    spec = plan.outcome(outcome)
    weeks = plan.visits.weeks
    rows = models[(models["outcome"] == outcome) & ~models["method"].astype(str).str.contains("HC3", regex=False)]
    series = (
        ("LS-mean difference", "MMRM (LS-mean difference)", "o", ARM_COLOURS["treatment"], 0.0),
        ("adjusted mean difference", "ANCOVA (adjusted difference)", "s", "0.35", 0.25),
    )
    for measure, label, marker, colour, shift in series:
        chosen = rows[(rows["measure"] == measure) & rows["estimate"].notna()].drop_duplicates("visit")
        if chosen.empty:
            continue
        x = chosen["visit"].map(weeks) + shift
        ax.errorbar(x, chosen["estimate"], yerr=[chosen["estimate"] - chosen["ci_low"], chosen["ci_high"] - chosen["estimate"]],
                    fmt=marker, color=colour, capsize=3, label=label)
    ax.axhline(0, color="0.6", lw=0.8, ls="--")
    ax.set_xticks([weeks[v.label] for v in plan.visits.followup], [v.label for v in plan.visits.followup])
    ax.set_ylabel(f"{plan.arms.treatment.label} - {plan.arms.control.label} ({spec.unit})", fontsize=8)
    favoured = "below" if spec.better == "lower" else "above"
    ax.set_title(f"{spec.label}: effect by visit ({plan.analysis.ci_level:.0%} CI; {favoured} 0 favours treatment)", fontsize=9)
    ax.legend(frameon=False, fontsize=8)
    sns.despine(ax=ax)
    return ax


def figure_bytes(figure: plt.Figure, fmt: str, *, svg_text: bool = False) -> bytes:
    """``figure`` as PNG (150 dpi) or SVG bytes that are the same on every run: no software
    version, date or creator in the metadata and a fixed SVG id salt. ``svg_text`` keeps SVG text
    as text (editable) instead of paths. The one place trialkit renders a figure."""
    import io

    metadata = {"Software": None} if fmt == "png" else {"Date": None, "Creator": None}
    buffer = io.BytesIO()
    with plt.rc_context(_STABLE | ({"svg.fonttype": "none"} if svg_text else {})):
        figure.savefig(buffer, format=fmt, dpi=150, bbox_inches="tight", metadata=metadata)
    return buffer.getvalue()


def save_figure(figure: plt.Figure, stem: Path) -> list[Path]:
    """Write ``stem.png`` and ``stem.svg`` atomically (:func:`figure_bytes`), then close the figure."""
    written = [write_bytes(stem.with_suffix(f".{fmt}"), figure_bytes(figure, fmt)) for fmt in ("png", "svg")]
    plt.close(figure)
    return written


def trial_figures(
    descriptives: pd.DataFrame, dataset: pd.DataFrame, models: pd.DataFrame, plan: Plan, out_dir: Path
) -> list[Path]:
    """Every standard figure of a run: trajectories, change distributions and effects by visit."""
    written = []
    for outcome in plan.outcomes:
        ax = plot_effects_by_visit(models, outcome.name, plan)
        written += save_figure(ax.figure, out_dir / f"effect_by_visit_{outcome.name}")
        ax = plot_trajectories(descriptives, outcome.name, plan)
        written += save_figure(ax.figure, out_dir / f"trajectory_{outcome.name}")
        ax = plot_change_distribution(dataset, outcome.name, plan)
        written += save_figure(ax.figure, out_dir / f"change_{outcome.name}")
    return written
