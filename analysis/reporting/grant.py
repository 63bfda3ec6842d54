"""Grant and progress reporting: every table and figure of ``trialkit grant-report``, written once.

Output tree of ``trialkit grant-report PLAN --period-end DATE --out DIR``::

    DIR/
      manifest.json                     inputs' SHA-256, plan hash, period, versions, files
      tables/table1.{csv,html,docx}      baseline characteristics (+ table1_stats.csv, table1_std_diff.csv)
      tables/consort_counts.{csv,html,docx}
      tables/nih_enrollment.{csv,html,docx}, tables/nih_age.{csv,html,docx}
      tables/enrollment_cumulative.csv
      tables/retention.{csv,html,docx}
      tables/adverse_events.{csv,html,docx} (+ adverse_events_summary.csv)  when the plan names a file
      figures/consort.{png,svg}, figures/enrollment.{png,svg}, figures/retention.{png,svg}
      report.html                       the rendered notebooks/grant_report.ipynb

Tables are computed here; the notebook only reads and shows them. CSVs are the numbers (byte-stable);
HTML and Word are the same rows formatted for pasting (rounding happens only there).
"""

from __future__ import annotations

import io
import json
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from html import escape
from pathlib import Path

import pandas as pd

from analysis.checks.adverse_events import read_adverse_events
from analysis.core.errors import UsageError
from analysis.core.notices import records_warnings
from analysis.core.output import staged_directory, write_bytes, write_table, write_text
from analysis.plan.inputs import plan_inputs
from analysis.reporting import adverse_events as adverse
from analysis.reporting import consort, nih, retention, table1
from analysis.reporting.figures import save_figure

SEPARATOR = nih.SEPARATOR


# ----------------------------------------------------------------------------------------------
# Rendering one table three ways

def _header_rows(columns: list[str]) -> list[list[str]]:
    """One header row, or two when column names carry ``"top | bottom"`` (the NIH layout)."""
    if not any(SEPARATOR in c for c in columns):
        return [columns]
    top = [c.split(SEPARATOR)[0] if SEPARATOR in c else c for c in columns]
    bottom = [c.split(SEPARATOR, 1)[1] if SEPARATOR in c else "" for c in columns]
    return [top, bottom]


def table_html(frame: pd.DataFrame, title: str, note: str = "") -> str:
    """An HTML fragment (caption, two-level header when needed, escaped cells)."""
    headers = _header_rows([str(c) for c in frame.columns])
    parts = ['<table class="trialkit-table" border="1" style="border-collapse:collapse">', f"<caption>{escape(title)}</caption>", "<thead>"]
    if len(headers) == 1:
        parts.append("<tr>" + "".join(f"<th>{escape(c)}</th>" for c in headers[0]) + "</tr>")
    else:
        top, bottom = headers
        cells, i = [], 0
        while i < len(top):
            j = i
            while j + 1 < len(top) and bottom[i] and bottom[j + 1] and top[j + 1] == top[i]:
                j += 1
            span = j - i + 1
            if bottom[i]:
                cells.append(f'<th colspan="{span}">{escape(top[i])}</th>')
            else:
                cells.append(f'<th rowspan="2">{escape(top[i])}</th>')
            i = j + 1
        parts.append("<tr>" + "".join(cells) + "</tr>")
        parts.append("<tr>" + "".join(f"<th>{escape(b)}</th>" for b in bottom if b) + "</tr>")
    parts.append("</thead><tbody>")
    for row in frame.itertuples(index=False):
        parts.append("<tr>" + "".join(f"<td>{escape('' if pd.isna(v) else str(v))}</td>" for v in row) + "</tr>")
    parts.append("</tbody></table>")
    if note:
        parts.append(f"<p class=\"trialkit-note\">{escape(note)}</p>")
    return "\n".join(parts) + "\n"


def table_docx(frame: pd.DataFrame, title: str, note: str = "") -> bytes:
    """A Word document holding the table (grid style, merged two-level header), as bytes."""
    from docx import Document
    from docx.shared import Pt

    document = Document()
    style = document.styles["Normal"]
    style.font.name = "Calibri"
    style.font.size = Pt(9)
    document.add_paragraph(title, style="Heading 2")
    headers = _header_rows([str(c) for c in frame.columns])
    table = document.add_table(rows=len(headers) + len(frame), cols=len(frame.columns))
    table.style = "Table Grid"
    for r, header in enumerate(headers):
        for c, text in enumerate(header):
            cell = table.cell(r, c)
            cell.text = text
            for run in cell.paragraphs[0].runs:
                run.bold = True
    if len(headers) == 2:
        top, bottom = headers
        for c in range(len(top)):
            if not bottom[c]:
                merged = table.cell(0, c).merge(table.cell(1, c))
                merged.text = top[c]
                merged.paragraphs[0].runs[0].bold = True
        c = 0
        while c < len(top):
            j = c
            while j + 1 < len(top) and bottom[c] and bottom[j + 1] and top[j + 1] == top[c]:
                j += 1
            if j > c:
                merged = table.cell(0, c).merge(table.cell(0, j))
                merged.text = top[c]
                merged.paragraphs[0].runs[0].bold = True
            c = j + 1
    for r, row in enumerate(frame.itertuples(index=False), start=len(headers)):
        for c, value in enumerate(row):
            table.cell(r, c).text = "" if pd.isna(value) else str(value)
    _fit_widths(document, table, len(frame.columns))
    if note:
        document.add_paragraph(note)
    # Fixed core properties so the same table gives the same document.
    document.core_properties.author = "trialkit"
    document.core_properties.created = datetime(2000, 1, 1)
    document.core_properties.modified = datetime(2000, 1, 1)
    document.core_properties.last_modified_by = "trialkit"
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def _fit_widths(document, table, n_columns: int) -> None:
    """Landscape for wide tables; the first (label) column wider, the rest equal (Word honours cell widths)."""
    from docx.enum.section import WD_ORIENT
    from docx.shared import Inches

    section = document.sections[0]
    if n_columns > 5:
        section.orientation = WD_ORIENT.LANDSCAPE
        section.page_width, section.page_height = section.page_height, section.page_width
    section.left_margin = section.right_margin = Inches(0.7)
    usable = section.page_width - section.left_margin - section.right_margin
    first = int(usable * (0.28 if n_columns > 2 else 0.5))
    other = int((usable - first) / max(n_columns - 1, 1))
    table.autofit = False
    for c, column in enumerate(table.columns):
        column.width = first if c == 0 else other
    for row in table.rows:
        for c, cell in enumerate(row.cells):
            cell.width = first if c == 0 else other


def write_report_table(frame: pd.DataFrame, directory: Path, stem: str, title: str, note: str = "") -> list[Path]:
    """Write ``stem.csv`` (numbers or text as given), ``stem.html`` and ``stem.docx``."""
    paths = [
        write_table(frame, directory / f"{stem}.csv"),
        write_text(directory / f"{stem}.html", table_html(frame, title, note)),
        write_bytes(directory / f"{stem}.docx", table_docx(frame, title, note)),
    ]
    return paths


# ----------------------------------------------------------------------------------------------
# The report

@dataclass(frozen=True)
class GrantReport:
    """What a grant-report run wrote: the output folder, its files (relative) and the CONSORT flow."""

    out_dir: Path
    files: list[str]
    flow: consort.ConsortFlow


def _primary_n(trial) -> tuple[int, int, str]:
    """n per arm of the primary analysis, from the same model code the results tables use."""
    plan = trial.plan
    outcome, visit = plan.primary_outcome.name, plan.visits.primary
    if plan.analysis.primary_model == "ancova":
        from analysis.stats.models.ancova import ancova

        fit = ancova(trial.dataset, outcome=outcome, visit=visit, covariates=plan.covariates, participants=trial.participants)
        return fit.n_treatment, fit.n_control, "analysis.stats.models.ancova.ancova"
    from analysis.stats.models.plan_models import fit_plan_mmrm

    fit = fit_plan_mmrm(trial.dataset, plan, outcome, plan.covariates, trial.participants)
    return fit.n_treatment, fit.n_control, "analysis.stats.models.plan_models.fit_plan_mmrm"


@records_warnings  # its manifest lists the notices of the report (library warnings in trialkit's words)
def write_grant_report(
    trial,
    period_end: str,
    out_dir: Path,
    period_start: str | None = None,
    render: bool = True,
    command: list[str] | None = None,
) -> GrantReport:
    """Compute and write every grant-report table and figure (atomically) for a loaded trial.

    Parameters
    ----------
    trial : :class:`analysis.pipeline.Trial` (``loaded``, ``plan``, ``participants``, ``dataset``).
    period_end, period_start : the reporting period (``YYYY-MM-DD``); enrollment and retention
        count up to ``period_end``; Table 1, NIH and CONSORT use participants enrolled by then.
    render : also render ``notebooks/grant_report.ipynb`` to ``report.html``.

    Raises
    ------
    PlanError / UsageError
        The plan lacks ``reporting`` (Table 1 variables, NIH mapping) or the period is not a date.
    DataError
        Codes missing from the NIH mapping, an invalid adverse-event file.
    """
    import matplotlib

    matplotlib.use("Agg")
    started = datetime.now(UTC)
    plan = trial.plan
    reporting = plan.reporting
    if reporting is None or not reporting.table1 or reporting.nih is None:
        raise UsageError("the plan needs a 'reporting:' section with 'table1' variables and an 'nih' mapping for grant-report")
    end = retention._period_end(period_end)
    participants = trial.participants
    enrolled = pd.to_datetime(participants["enrolled_on"]).dt.normalize() <= end
    if not enrolled.any():
        raise UsageError(f"no participant was enrolled on or before {end.date()}")
    people = participants[enrolled.to_numpy()]
    dataset = trial.dataset[trial.dataset["participant_id"].astype(str).isin(set(people["participant_id"].astype(str)))]
    labels = {"treatment": plan.arms.treatment.label, "control": plan.arms.control.label}
    source = str(trial.participants_raw.path) if hasattr(trial, "participants_raw") else "participants"

    flow = consort.consort_flow(people, dataset, plan)
    if enrolled.all():
        n_t, n_c, method = _primary_n(trial)
        consort.check_reconciles(flow, n_t, n_c)
    else:
        method = "not reconciled: the period ends before the last enrolment, the primary analysis uses everyone"

    events = read_adverse_events(trial.loaded, participants)
    out_dir = Path(out_dir)
    with staged_directory(out_dir, inputs=plan_inputs(trial.loaded), kind="grant-report") as staging:
        tables, figures = staging / "tables", staging / "figures"
        written: list[Path] = []
        # Table 1
        # Table 1 is the table meant for public release (papers, registries): with the plan's
        # reporting.suppress_below, small counts and their complements are hidden (suppression.py).
        k = reporting.suppress_below
        display = table1.table1_display(people, reporting.table1, labels, suppress_below=k)
        stats1 = table1.table1_stats(people, reporting.table1)
        std_diff = table1.standardised_differences(people, reporting.table1)
        if k is None:
            note1 = "Continuous: mean (SD) and median [Q1, Q3]; categorical: n (% of those with a value). "
        else:
            from analysis.reporting.suppression import footnote

            stats1 = table1.suppress_stats(stats1, k)
            hidden = set(stats1.loc[stats1["suppressed"] & (stats1["kind"] == "categorical"), "variable"])
            std_diff.loc[std_diff["variable"].isin(hidden), "std_diff"] = float("nan")
            note1 = f"Continuous: mean (SD) and median [Q1, Q3]; categorical: n (percentages omitted). {footnote(k)} "
        written += write_report_table(display, tables, "table1", "Table 1. Baseline characteristics by arm",
                                      note1 + "Std. difference: treatment vs control (Austin 2009; Yang & Dalton 2012); no p-values (CONSORT).")
        written.append(write_table(stats1, tables / "table1_stats.csv"))
        written.append(write_table(std_diff, tables / "table1_std_diff.csv"))
        # CONSORT
        written += write_report_table(flow.counts, tables, "consort_counts", "CONSORT flow counts",
                                      f"Analysed = {flow.outcome} at {flow.visit} under the primary {flow.model}; reconciled with {method}."
                                      + (f" {flow.disposition_note}." if flow.disposition_note else ""))
        written.append(write_table(flow.analysis_population, tables / "consort_analysis_population.csv"))
        written += save_figure(consort.consort_figure(flow), figures / "consort")
        # NIH
        enrollment = nih.enrollment_table(people, reporting.nih, source)
        written += write_report_table(enrollment, tables, "nih_enrollment", f"Cumulative Inclusion Enrollment Report to {end.date()}")
        ages = nih.age_table(people, reporting.nih, reporting.age_groups, source=source)
        written += write_report_table(ages, tables, "nih_age", f"Enrollment by age at enrollment to {end.date()}",
                                      "Exact counts, for submission to NIH (not for public release).")
        # Enrollment and retention
        cumulative = retention.cumulative_enrollment(participants, end, period_start)
        written.append(write_table(cumulative.assign(date=cumulative["date"].dt.strftime("%Y-%m-%d")), tables / "enrollment_cumulative.csv"))
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(7.5, 4.2))
        retention.plot_enrollment(cumulative, plan.target_enrollment, end, ax=ax, arm_labels=labels)
        written += save_figure(fig, figures / "enrollment")
        kept = retention.retention_table(participants, trial.dataset, plan, end)
        written += write_report_table(kept, tables, "retention", f"Retention by arm and visit to {end.date()}",
                                      "Attended: any outcome measured at the visit; due: enrolled at least the visit's weeks before the period end.")
        fig, ax = plt.subplots(figsize=(7, 4))
        retention.plot_retention(kept, ax=ax, arm_labels=labels)
        written += save_figure(fig, figures / "retention")
        # Adverse events
        if events is not None:
            in_period = events[events["participant_id"].isin(set(people["participant_id"].astype(str)))]
            summary = adverse.adverse_event_summary(in_period, people)
            written.append(write_table(summary, tables / "adverse_events_summary.csv"))
            written += write_report_table(adverse.adverse_event_display(summary, labels), tables, "adverse_events",
                                          "Adverse events by arm", "Participants with at least one event (% of randomised) and number of events.")
        info = {
            "study": plan.study.id, "title": plan.study.title, "simulated": plan.study.simulated,
            "period_start": period_start or "", "period_end": str(end.date()),
            "adverse_events": events is not None,
        }
        written.append(write_text(staging / "report_info.json", json.dumps(info, indent=2) + "\n"))
        if render:
            from analysis.core.resources import notebook_path
            from analysis.reporting.notebook import render_notebook

            written.append(render_notebook(notebook_path("grant_report.ipynb"), {"report_dir": str(staging)}, staging / "report.html"))
        written.append(_write_manifest(trial, staging, written, started, command, info))
    files = sorted(str(p.relative_to(staging)) for p in written)
    return GrantReport(out_dir=out_dir.resolve(), files=files, flow=flow)


def _write_manifest(trial, staging: Path, written: list[Path], started: datetime, command, info: dict) -> Path:
    from analysis.core.provenance import build_manifest

    elapsed = (datetime.now(UTC) - started).total_seconds()
    manifest = build_manifest(trial, trial.plan.seed, started, {"grant_report": round(elapsed, 3)}, written, staging,
                              command if command is not None else sys.argv)
    manifest["reporting_period"] = {"start": info["period_start"], "end": info["period_end"]}
    if trial.plan.reporting is not None and trial.plan.reporting.adverse_events is not None:
        path = trial.loaded.resolve(trial.plan.reporting.adverse_events.path)
        from analysis.core.provenance import sha256_file

        manifest["inputs"].append({"role": "adverse events", "path": str(path), "sha256": sha256_file(path), "bytes": path.stat().st_size})
    return write_text(staging / "manifest.json", json.dumps(manifest, indent=2) + "\n")
