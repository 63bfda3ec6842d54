"""Figures for power and sample size: the power curve of :func:`analysis.stats.power.power_curve`."""

from __future__ import annotations

import pandas as pd


def plot_power_curve(curve: pd.DataFrame, ax=None, target: float | None = 0.8):
    """Power against participants per arm, one line per effect size and method; returns the Axes."""
    import matplotlib.pyplot as plt

    from analysis.reporting.figures import WIDTH

    if ax is None:
        _, ax = plt.subplots(figsize=(WIDTH, 5.0), layout="constrained")
    styles = {"t-test": "-", "ANCOVA": "--"}
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, d in enumerate(sorted(curve["d"].unique())):
        for method, part in curve[curve["d"] == d].groupby("method", sort=False):
            label = f"d = {d:g}, {method}" + (f" (r = {part['r'].iloc[0]:g})" if method == "ANCOVA" else "")
            ax.plot(part["n_per_arm"], part["power"], styles.get(method, "-"), color=colours[i % len(colours)], label=label)
    if target is not None:
        ax.axhline(target, color="grey", linewidth=0.8, linestyle=":")
    ax.set_xlabel("Participants analysed per arm")
    ax.set_ylabel("Power (two-sided)")
    ax.set_ylim(0, 1.0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, frameon=False)
    ax.set_title(f"Power, alpha = {curve['alpha'].iloc[0]:g}")
    return ax
