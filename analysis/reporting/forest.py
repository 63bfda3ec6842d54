"""Forest plot drawn from the tidy meta-analysis table (:func:`analysis.stats.meta.meta_table`).

Compute once, render many: the plot reads only the table's study and summary rows (and the
heterogeneity row for its caption), never refits. :func:`forest_plot` takes an optional ``ax``
and returns the Axes, like statsmodels' ``plot_forest``; :func:`save_forest` writes PNG or SVG
atomically.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg", force=False)  # headless rendering; a no-op when a backend is already in use

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib import ticker  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.patches import Polygon  # noqa: E402
from matplotlib.transforms import blended_transform_factory  # noqa: E402

from analysis.core.errors import UsageError  # noqa: E402
from analysis.core.output import write_bytes  # noqa: E402

FORMATS = {".png": "png", ".svg": "svg"}
_NEEDED = ("type", "study", "estimate", "ci_low", "ci_high", "weight", "ci_level", "method", "exponentiated")
_STUDY_COLOUR = "#1f4e79"
_SUMMARY_COLOUR = "#b03a2e"


def _number(x: float) -> str:
    if not np.isfinite(x):
        return "NA"
    magnitude = abs(x)
    return f"{x:.2f}" if magnitude < 100 else f"{x:.1f}" if magnitude < 1000 else f"{x:.0f}"


def forest_plot(
    table: pd.DataFrame,
    *,
    ax: Axes | None = None,
    lower_is_better: bool = False,
    treatment_label: str = "treatment",
    control_label: str = "control",
    title: str | None = None,
) -> Axes:
    """Draw a forest plot from a :func:`analysis.stats.meta.meta_table` table.

    Studies are drawn top to bottom in table order as squares (area proportional to the study's
    weight) with CI whiskers; the pooled estimate is a diamond spanning its CI, with the prediction
    interval (random-effects models) as a thin line with end caps through it. A vertical null line
    sits at 0 (1 for back-transformed ratios, drawn on a log axis). Text columns show each study's
    label, ``estimate [CI]`` and weight; a caption gives I^2, tau^2 and Cochran's Q.

    Parameters
    ----------
    table
        The tidy table (``type`` study / summary / heterogeneity rows).
    ax
        Axes to draw into; a new figure sized to the number of studies when None.
    lower_is_better
        Direction of the outcome. Effects are treatment minus control (or treatment / control):
        when lower is better, values left of the null line favour treatment; otherwise they favour
        control. The "favours ..." labels under the axis follow this.
    treatment_label, control_label
        Names used in the "favours ..." labels.
    title
        Optional title.

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> from analysis.stats.meta import meta_table, pool
    >>> fit = pool([0.1, -0.3, 0.2], [0.02, 0.05, 0.03], studies=["A", "B", "C"], method="DL")
    >>> ax = forest_plot(meta_table(fit, measure="SMD"), lower_is_better=True)
    >>> bool(ax.get_ylim()[0] < 0)
    True
    """
    missing = [c for c in _NEEDED if c not in table.columns]
    if missing:
        raise UsageError(f"the forest plot needs a meta-analysis table; columns missing: {', '.join(missing)}")
    studies = table.loc[table["type"] == "study"].reset_index(drop=True)
    summaries = table.loc[table["type"] == "summary"].reset_index(drop=True)
    heterogeneity = table.loc[table["type"] == "heterogeneity"].reset_index(drop=True)
    if studies.empty or len(summaries) != 1:
        raise UsageError("the forest plot needs study rows and exactly one summary row")
    summary = summaries.iloc[0]
    ratio = bool(summary["exponentiated"])
    null = 1.0 if ratio else 0.0
    k = len(studies)

    if ax is None:
        _, ax = plt.subplots(figsize=(10.0, 1.9 + 0.34 * (k + 3)))  # room for k studies + header + summary
        height = 1.9 + 0.34 * (k + 3)
        ax.figure.subplots_adjust(left=0.3, right=0.62, top=1 - 0.45 / height, bottom=1.15 / height)
    y = np.arange(k, 0, -1, dtype=float)  # first study on top
    y_summary = -0.6
    if ratio:
        ax.set_xscale("log")
        ax.xaxis.set_major_locator(ticker.LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        ax.xaxis.set_major_formatter(ticker.FuncFormatter(lambda x, _: f"{x:g}"))
        ax.xaxis.set_minor_locator(ticker.LogLocator(base=10, subs=np.arange(1, 10) / 1.0))
        ax.xaxis.set_minor_formatter(ticker.NullFormatter())

    # study rows: whiskers, then squares whose area is proportional to the weight
    ax.hlines(y, studies["ci_low"], studies["ci_high"], color=_STUDY_COLOUR, linewidth=1.1, zorder=2)
    weights = studies["weight"].to_numpy(dtype=float)
    sizes = 12.0 + 110.0 * weights / max(np.nanmax(weights), 1e-12)
    ax.scatter(studies["estimate"], y, s=sizes, marker="s", color=_STUDY_COLOUR, zorder=3, linewidths=0)

    # prediction interval (behind the diamond), then the diamond
    if np.isfinite(summary.get("pi_low", np.nan)):
        ax.hlines(y_summary, summary["pi_low"], summary["pi_high"], color=_SUMMARY_COLOUR, linewidth=1.0, zorder=2)
        ax.vlines([summary["pi_low"], summary["pi_high"]], y_summary - 0.15, y_summary + 0.15, color=_SUMMARY_COLOUR, linewidth=1.0, zorder=2)
    diamond = Polygon(
        [(summary["ci_low"], y_summary), (summary["estimate"], y_summary + 0.32), (summary["ci_high"], y_summary), (summary["estimate"], y_summary - 0.32)],
        closed=True,
        facecolor=_SUMMARY_COLOUR,
        edgecolor=_SUMMARY_COLOUR,
        zorder=4,
    )
    ax.add_patch(diamond)
    ax.axvline(null, color="0.35", linewidth=0.9, linestyle="-", zorder=1)

    # x range covering every interval, with a little room
    low = np.nanmin(np.concatenate([studies["ci_low"].to_numpy(float), [summary["ci_low"], summary.get("pi_low", np.nan), null]]))
    high = np.nanmax(np.concatenate([studies["ci_high"].to_numpy(float), [summary["ci_high"], summary.get("pi_high", np.nan), null]]))
    if ratio:
        pad = (np.log(high) - np.log(low)) * 0.06 or 0.1
        ax.set_xlim(np.exp(np.log(low) - pad), np.exp(np.log(high) + pad))
    else:
        pad = (high - low) * 0.06 or 0.1
        ax.set_xlim(low - pad, high + pad)
    ax.set_ylim(y_summary - 1.0, k + 1.1)
    ax.set_yticks([])
    for side in ("left", "right", "top"):
        ax.spines[side].set_visible(False)
    ax.tick_params(axis="x", labelsize=8)

    # text columns: x in points from the axes' edges (so they never overlap the plot or each other
    # whatever the figure width), y in data coordinates
    level = f"{100 * float(summary['ci_level']):g}%"
    cells = [f"{_number(r['estimate'])} [{_number(r['ci_low'])}, {_number(r['ci_high'])}]" for _, r in studies.iterrows()]
    summary_cell = f"{_number(summary['estimate'])} [{_number(summary['ci_low'])}, {_number(summary['ci_high'])}]"
    pi_cell = f"PI [{_number(summary['pi_low'])}, {_number(summary['pi_high'])}]" if np.isfinite(summary.get("pi_low", np.nan)) else ""
    width = max(len(c) for c in [*cells, summary_cell, pi_cell, f"Estimate [{level} CI]"])
    weight_x = 10 + 0.62 * 8.5 * width + 48  # monospace advance ~0.6 em

    def column(x_axes: float, dx: float, yy: float, label: str, **style: object) -> None:
        ax.annotate(label, xy=(x_axes, yy), xycoords=("axes fraction", "data"), xytext=(dx, 0),
                    textcoords="offset points", va="center", annotation_clip=False, **style)

    header_y = k + 0.9
    column(0, -10, header_y, "Study", ha="right", fontsize=9, fontweight="bold")
    column(1, 10, header_y, f"Estimate [{level} CI]", ha="left", fontsize=9, fontweight="bold")
    column(1, weight_x, header_y, "Weight", ha="right", fontsize=9, fontweight="bold")
    for yy, (_, row), cell in zip(y, studies.iterrows(), cells, strict=True):
        column(0, -10, yy, str(row["study"]), ha="right", fontsize=8.5)
        column(1, 10, yy, cell, ha="left", fontsize=8.5, family="monospace")
        column(1, weight_x, yy, f"{row['weight']:.1f}%", ha="right", fontsize=8.5, family="monospace")
    model = "Fixed effect" if summary["method"] == "FE" else f"Random effects ({summary['method']})"
    if summary.get("test") == "knha":
        model += ", Knapp-Hartung"
    column(0, -10, y_summary, model, ha="right", fontsize=8.5, fontweight="bold")
    column(1, 10, y_summary, summary_cell, ha="left", fontsize=8.5, family="monospace", fontweight="bold")
    column(1, weight_x, y_summary, "100%", ha="right", fontsize=8.5, family="monospace", fontweight="bold")
    if pi_cell:
        column(1, 10, y_summary - 0.6, pi_cell, ha="left", fontsize=8, family="monospace", color="0.3")
    if not heterogeneity.empty:
        het = heterogeneity.iloc[0]
        caption = f"I\u00b2 = {het['i2']:.1f}%, Q = {het['q']:.2f} (df {int(het['q_df'])}), p {_p(het['q_p_value'])}"
        if summary["method"] != "FE":
            caption = f"\u03c4\u00b2 = {het['tau2']:.3g}, " + caption
        column(0, -10, y_summary - 0.6, caption, ha="right", fontsize=7.5, color="0.3")

    # x label and the direction labels under the axis
    measure = str(summary.get("measure") or "effect")
    contrast = str(summary.get("contrast") or ("treatment / control" if ratio else "treatment - control"))
    ax.set_xlabel(f"{measure}{' (ratio scale)' if ratio else ''}: {contrast}", fontsize=9)
    left, right = (treatment_label, control_label) if lower_is_better else (control_label, treatment_label)
    under = blended_transform_factory(ax.transData, ax.transAxes)
    ax.annotate(f"\u2190 favours {left}", xy=(null, 0), xycoords=under, xytext=(-6, -34),
                textcoords="offset points", ha="right", va="top", fontsize=8.5, color="0.2")
    ax.annotate(f"favours {right} \u2192", xy=(null, 0), xycoords=under, xytext=(6, -34),
                textcoords="offset points", ha="left", va="top", fontsize=8.5, color="0.2")
    if title:
        ax.set_title(title, fontsize=10, pad=4)
    return ax


def _p(p: float) -> str:
    return "< 0.001" if p < 0.001 else f"= {p:.3f}"


def render_forest(
    table: pd.DataFrame,
    fmt: str,
    *,
    lower_is_better: bool = False,
    treatment_label: str = "treatment",
    control_label: str = "control",
    title: str | None = None,
) -> bytes:
    """The forest plot of ``table`` as PNG (200 dpi: 2x for a figure at least 10 in = 1,000 CSS px
    wide) or SVG (text kept as text) bytes.

    Metadata that would vary between runs (software version, date) is left out, so the same table
    gives the same bytes.
    """
    if fmt not in FORMATS.values():
        raise UsageError(f"the forest plot is written as PNG or SVG, not {fmt!r}")
    from analysis.reporting.figures import figure_bytes

    ax = forest_plot(table, lower_is_better=lower_is_better, treatment_label=treatment_label, control_label=control_label, title=title)
    try:
        return figure_bytes(ax.figure, fmt, svg_text=True)
    finally:
        plt.close(ax.figure)


def forest_format(path: Path) -> str:
    """``"png"`` or ``"svg"`` from a file name; anything else is a usage error."""
    fmt = FORMATS.get(Path(path).suffix.lower())
    if fmt is None:
        raise UsageError(f"the forest plot is written as PNG or SVG; '{Path(path).name}' has neither suffix")
    return fmt


def save_forest(
    table: pd.DataFrame,
    path: Path,
    *,
    lower_is_better: bool = False,
    treatment_label: str = "treatment",
    control_label: str = "control",
    title: str | None = None,
) -> Path:
    """Draw :func:`forest_plot` and write it atomically as PNG or SVG (chosen by the suffix)."""
    data = render_forest(table, forest_format(path), lower_is_better=lower_is_better, treatment_label=treatment_label,
                         control_label=control_label, title=title)
    return write_bytes(Path(path), data)
