"""What the report notebook shows, as functions a test can reach (the notebook only calls them).

Every table is rendered with :func:`html_table`, which escapes every data-derived string (a
participant id like ``<script>`` renders as text) and rounds only for display.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from analysis.core.resources import notebook_path
from analysis.plan import Plan, parse_plan

COUNT_COLUMNS = {"n", "n_missing", "n_treatment", "n_control", "n_boot", "seed", "count",
                 "events_treatment", "events_control", "n_expected", "n_observed"}
STYLE = (
    "<style>table.trialkit{border-collapse:collapse;font-size:12px;margin-bottom:1em}"
    "table.trialkit th,table.trialkit td{padding:2px 8px;text-align:right;white-space:nowrap}"
    "table.trialkit td:first-child,table.trialkit th:first-child{text-align:left}"
    "table.trialkit td.note{white-space:normal;text-align:left;max-width:28em}</style>"
)


def html_table(frame: pd.DataFrame, digits: int = 3, max_rows: int = 200) -> str:
    """An escaped HTML table; floats shown with ``digits`` decimals, counts as integers, NaN blank."""
    shown = frame.head(max_rows).copy()
    for column in shown.columns:
        if column in COUNT_COLUMNS and pd.api.types.is_numeric_dtype(shown[column]):
            shown[column] = shown[column].map(lambda v: "" if pd.isna(v) else f"{int(v)}")
        elif pd.api.types.is_float_dtype(shown[column]):
            shown[column] = shown[column].map(lambda v: "" if pd.isna(v) else f"{v:.{digits}f}")
    table = shown.to_html(index=False, escape=True, na_rep="", border=0, classes="trialkit")
    if len(frame) > max_rows:
        table += f"<p>({len(frame) - max_rows} more rows in the CSV file)</p>"
    return table


def result_view(frame: pd.DataFrame, digits: int = 3) -> pd.DataFrame:
    """A tidy result table condensed for reading: ``estimate [ci_low, ci_high]`` in one column,
    the contrast and CI level dropped (stated once in the report), columns that are empty in
    every row dropped. Rounding happens here, for display only."""

    def interval(row: pd.Series) -> str:
        if pd.isna(row["estimate"]):
            return ""
        text = f"{row['estimate']:.{digits}f}"
        if pd.notna(row["ci_low"]) and pd.notna(row["ci_high"]):
            text += f" [{row['ci_low']:.{digits}f}, {row['ci_high']:.{digits}f}]"
        return text

    view = frame.copy()
    view.insert(view.columns.get_loc("estimate"), "estimate [CI]", view.apply(interval, axis=1))
    view = view.drop(columns=["estimate", "ci_low", "ci_high", "ci_level", "contrast"])
    return view.dropna(axis=1, how="all")


def heading(text: str, level: int = 3) -> str:
    """An HTML heading with its (plan- or data-derived) text escaped."""
    return f"<h{level}>{html.escape(text)}</h{level}>"


LISTING_COLUMNS = ["participant_id", "arm", "visit", "value", "baseline", "change", "pct_change"]


def listing_html(dataset: pd.DataFrame, plan: Plan) -> str:
    """The primary outcome's per-participant listing, only when the plan sets
    ``analysis.listings: true``; otherwise a sentence saying identifiers are withheld."""
    if not plan.analysis.listings:
        return (
            "<p>Participant listings are off (<code>analysis.listings: false</code> in the plan): "
            "this report shows no participant identifiers.</p>"
        )
    rows = dataset.loc[dataset["outcome"] == plan.primary_outcome.name, LISTING_COLUMNS]
    return heading(f"Listing: {plan.primary_outcome.label}") + html_table(rows, max_rows=len(rows))


@dataclass(frozen=True)
class RunOutputs:
    """The outputs of one ``trialkit run``, read back for rendering."""

    run_dir: Path
    plan: Plan

    @classmethod
    def load(cls, run_dir: str | Path) -> RunOutputs:
        root = Path(run_dir)
        plan = parse_plan((root / "plan.yaml").read_text(encoding="utf-8"), str(root / "plan.yaml"))
        return cls(run_dir=root, plan=plan)

    def table(self, relative: str) -> pd.DataFrame:
        return pd.read_csv(self.run_dir / relative, dtype={"participant_id": str})

    def heading_html(self) -> str:
        """Study title, design, arms, visits and outcomes; a SIMULATED banner when the data are."""
        plan = self.plan
        e = html.escape
        banner = (
            "<p style='background:#fde68a;padding:6px'><b>SIMULATED DATA</b>: this trial is "
            "synthetic, for demonstration and testing; no real participants.</p>"
            if plan.study.simulated
            else ""
        )
        outcomes = "".join(
            f"<li>{e(o.label)} ({e(o.unit)}; valid {o.range[0]:g} to {o.range[1]:g}; {e(o.better)} is better"
            + (f"; MCID {e(_mcid_text(o))}" if o.mcid else "")
            + ("; <b>primary</b>" if o is plan.primary_outcome else "")
            + "</li>"
            for o in plan.outcomes
        )
        visits = ", ".join(e(v) for v in plan.visits.labels)
        return (
            f"{STYLE}<h1>{e(plan.study.title)}</h1>{banner}{self.disposition_html()}"
            f"<p>{e(plan.study.design)}. Study id <code>{e(plan.study.id)}</code>.</p>"
            f"<p><b>Arms</b>: treatment = {e(plan.arms.treatment.label)}; control = {e(plan.arms.control.label)}. "
            f"<b>Visits</b>: {visits} (primary: {e(plan.visits.primary)}). "
            f"<b>Primary analysis</b>: {e(plan.analysis.primary_model.upper())}, "
            f"{plan.analysis.ci_level:.0%} confidence intervals; effects are treatment minus control.</p>"
            f"<ul>{outcomes}</ul>"
        )

    def disposition_html(self) -> str:
        """A paragraph saying the disposition was derived from the data (the accounting table's
        ``disposition derived`` rows), or nothing when the participants file recorded it."""
        path = self.run_dir / "accounting.csv"
        if not path.is_file():
            return ""
        accounting = pd.read_csv(path, dtype=str, keep_default_na=False)
        derived = accounting[accounting["item"].str.startswith("disposition derived")]
        if derived.empty:
            return ""
        counts = "; ".join(f"{item.removeprefix('disposition derived: ')} {n}"
                           for item, n in zip(derived["item"], derived["count"], strict=True))
        return (f"<p style='background:#e0f2fe;padding:6px'><b>Disposition not recorded</b>: "
                f"{html.escape(derived['reason'].iloc[0])} ({html.escape(counts)}).</p>")

    def figures(self, prefix: str) -> list[Path]:
        return sorted((self.run_dir / "figures").glob(f"{prefix}_*.png"))

    def rows(self, relative: str, **equals: object) -> pd.DataFrame:
        frame = self.table(relative)
        for column, value in equals.items():
            frame = frame[frame[column] == value]
        return frame


def _mcid_text(outcome) -> str:
    parts = []
    if outcome.mcid.points is not None:
        parts.append(f"{outcome.mcid.points:g} {outcome.unit}")
    if outcome.mcid.percent is not None:
        parts.append(f"{outcome.mcid.percent:g}% improvement")
    return " or ".join(parts)


def render_report(run_dir: Path, out_html: Path) -> Path:
    """Execute ``notebooks/report.ipynb`` on a run directory and write HTML with code hidden."""
    from analysis.reporting.notebook import render_notebook

    return render_notebook(notebook_path("report.ipynb"), {"run_dir": str(run_dir)}, out_html)
