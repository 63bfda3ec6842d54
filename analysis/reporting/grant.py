"""Grant and progress reporting: every table and figure of ``trialkit grant-report``, written once.

Output tree of ``trialkit grant-report PLAN --period-end DATE --out DIR``::

    DIR/
      manifest.json                     inputs' SHA-256, plan hash, period, versions, files
      tables/table1.{csv,html,docx}      baseline characteristics (+ table1_stats.csv, table1_std_diff.csv)
      tables/consort_counts.{csv,html,docx}  (the CSV long counts, HTML/Word one column per arm)
      tables/nih_enrollment.{csv,html,docx}, tables/nih_age.{csv,html,docx}
      tables/enrollment.{csv,html,docx}   enrolled against the plan's target_enrollment
      tables/enrollment_cumulative.csv
      tables/retention.{csv,html,docx}   (the CSV the counts, HTML/Word one row per visit, % to one decimal)
      tables/adverse_events.{csv,html,docx} (+ adverse_events_summary.csv)  when the plan names a file
      figures/consort.{png,svg}, figures/enrollment.{png,svg}, figures/retention.{png,svg}
      report.html                       the rendered notebooks/grant_report.ipynb

Tables are computed here; the notebook only reads and shows them. CSVs are the numbers (byte-stable);
HTML and Word are the same rows formatted for pasting (rounding happens only there).
"""

from __future__ import annotations

import io
import json
import re
import sys
import zipfile
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
from analysis.plan.study import ADVERSE_EVENT_CATEGORY
from analysis.reporting import adverse_events as adverse
from analysis.reporting import consort, nih, retention, table1
from analysis.reporting.figures import WIDTH as FIGURE_WIDTH
from analysis.reporting.figures import save_figure

SEPARATOR = nih.SEPARATOR


# ----------------------------------------------------------------------------------------------
# Rendering one table three ways

# A cell is a number when it starts with one (counts, "43.5 (9.5)", "53/60", "88.3"), is the
# suppression mark, or says a count was not recorded; a column of such cells is right-aligned.
_NUMBER = re.compile(r"^(\*.*|[-−+]?\d.*|not recorded|target not declared)$")
DOCX_EPOCH = datetime(2000, 1, 1)  # created/modified of every Word table: the same table, the same bytes
ZIP_EPOCH = (2000, 1, 1, 0, 0, 0)


def _header_rows(columns: list[str]) -> list[list[str]]:
    """One header row, or two when column names carry ``"top | bottom"`` (the NIH layout)."""
    if not any(SEPARATOR in c for c in columns):
        return [columns]
    top = [c.split(SEPARATOR)[0] if SEPARATOR in c else c for c in columns]
    bottom = [c.split(SEPARATOR, 1)[1] if SEPARATOR in c else "" for c in columns]
    return [top, bottom]


def _cells(frame: pd.DataFrame) -> list[list[str]]:
    return [["" if pd.isna(v) else str(v) for v in row] for row in frame.itertuples(index=False)]


def number_columns(frame: pd.DataFrame) -> list[bool]:
    """Per column: right-aligned (every non-empty cell a number, see ``_NUMBER``); the first column
    (the row labels) never is."""
    cells = _cells(frame)
    out = []
    for c in range(len(frame.columns)):
        values = [row[c].strip() for row in cells if row[c].strip()]
        out.append(c > 0 and bool(values) and all(_NUMBER.match(v) for v in values))
    return out


def table_html(frame: pd.DataFrame, title: str, note: str = "") -> str:
    """An HTML fragment (caption, two-level header when needed, escaped cells, numbers right-aligned)."""
    headers = _header_rows([str(c) for c in frame.columns])
    right = number_columns(frame)
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
    for row in _cells(frame):
        parts.append("<tr>" + "".join(
            (f'<td style="text-align:right;white-space:nowrap">{escape(v)}</td>' if right[c] else f"<td>{escape(v)}</td>")
            for c, v in enumerate(row)) + "</tr>")
    parts.append("</tbody></table>")
    if note:
        parts.append(f"<p class=\"trialkit-note\">{escape(note)}</p>")
    return "\n".join(parts) + "\n"


def table_docx(frame: pd.DataFrame, title: str, note: str = "") -> bytes:
    """A Word document holding the table, as bytes, the same bytes for the same table.

    Grid style, merged two-level header repeated on every page, numbers right-aligned, rows kept
    on one page; column widths from the text (a header is never broken inside a word; a landscape
    page when the table needs it); fixed core properties and zip entry times.
    """
    from docx import Document
    from docx.enum.table import WD_TABLE_ALIGNMENT
    from docx.enum.text import WD_ALIGN_PARAGRAPH
    from docx.shared import Pt

    document = Document()
    style = document.styles["Normal"]
    style.font.name = "Calibri"
    style.font.size = Pt(FONT_PT)
    document.add_paragraph(title, style="Heading 2")
    headers = _header_rows([str(c) for c in frame.columns])
    body = _cells(frame)
    right = number_columns(frame)
    table = document.add_table(rows=len(headers) + len(frame), cols=len(frame.columns))
    table.style = "Table Grid"
    table.alignment = WD_TABLE_ALIGNMENT.LEFT

    def header_cell(cell, text: str, c: int) -> None:
        cell.text = text
        paragraph = cell.paragraphs[0]
        paragraph.runs[0].bold = True
        if right[c]:
            paragraph.alignment = WD_ALIGN_PARAGRAPH.CENTER

    for r, header in enumerate(headers):
        for c, text in enumerate(header):
            header_cell(table.cell(r, c), text, c)
    if len(headers) == 2:
        top, bottom = headers
        for c in range(len(top)):
            if not bottom[c]:
                header_cell(table.cell(0, c).merge(table.cell(1, c)), top[c], c)
        c = 0
        while c < len(top):
            j = c
            while j + 1 < len(top) and bottom[c] and bottom[j + 1] and top[j + 1] == top[c]:
                j += 1
            if j > c:
                header_cell(table.cell(0, c).merge(table.cell(0, j)), top[c], c)
            c = j + 1
    for r, row in enumerate(body, start=len(headers)):
        for c, value in enumerate(row):
            cell = table.cell(r, c)
            cell.text = value
            if right[c]:
                cell.paragraphs[0].alignment = WD_ALIGN_PARAGRAPH.RIGHT
    for r, row in enumerate(table.rows):
        _row_properties(row, header=r < len(headers))
    _fit_widths(document, table, column_widths(headers, body, right))
    if note:
        document.add_paragraph(note)
    properties = document.core_properties
    properties.author = properties.last_modified_by = "trialkit"
    properties.title = title
    properties.comments = ""
    properties.revision = 1
    properties.created = properties.modified = DOCX_EPOCH
    buffer = io.BytesIO()
    document.save(buffer)
    return _fixed_zip(buffer.getvalue())


def _row_properties(row, header: bool) -> None:
    """``cantSplit`` (a row stays on one page) and, for header rows, ``tblHeader`` (repeated)."""
    from docx.oxml import OxmlElement
    from docx.oxml.ns import qn

    properties = row._tr.get_or_add_trPr()
    for name in ("w:cantSplit", "w:tblHeader") if header else ("w:cantSplit",):
        element = OxmlElement(name)
        element.set(qn("w:val"), "true")
        properties.append(element)


def _fixed_zip(data: bytes) -> bytes:
    """The same .docx with every zip entry dated ``ZIP_EPOCH`` (python-docx stamps the save time)."""
    source = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for item in source.infolist():
            info = zipfile.ZipInfo(item.filename, date_time=ZIP_EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = item.external_attr
            target.writestr(info, source.read(item.filename))
    return out.getvalue()


FONT_PT = 9
# Average advance of a Calibri glyph, in inches per character at FONT_PT (bold ~7% wider), and the
# cell's left + right margins in Word's Table Grid style (0.08 in each).
CHAR_IN = 0.52 * FONT_PT / 72
BOLD = 1.07
CELL_PAD_IN = 0.16
PORTRAIT_IN, LANDSCAPE_IN = 8.5 - 1.4, 11.0 - 1.4  # Letter, 0.7 in margins


def column_widths(headers: list[list[str]], body: list[list[str]], right: list[bool]) -> list[tuple[float, float]]:
    """Per column, (least, natural) width in inches.

    Least: the longest word of any of its header cells (so a header wraps only between words)
    and of its body cells, and for a number column its longest cell (numbers never wrap).
    Natural: its longest cell on one line. A header spanning columns counts for none of them.
    """
    n = len(right)
    spanned = [False] * n
    if len(headers) == 2:
        spanned = [bool(b) for b in headers[1]]
    out = []
    for c in range(n):
        head = [h[c] for r, h in enumerate(headers) if not (r == 0 and spanned[c])]
        cells = [row[c] for row in body]
        head_word = max((len(w) for h in head for w in h.split()), default=0) * BOLD
        head_line = max((len(h) for h in head), default=0) * BOLD
        cell_word = max((len(w) for v in cells for w in v.split()), default=0)
        cell_line = max((len(v) for v in cells), default=0)
        least = max(head_word, cell_line if right[c] else cell_word)
        natural = max(head_line, cell_line, least)
        out.append((least * CHAR_IN + CELL_PAD_IN, natural * CHAR_IN + CELL_PAD_IN))
    return out


def _fit_widths(document, table, widths: list[tuple[float, float]]) -> None:
    """Fixed column widths between each column's least and natural width; landscape when the least
    widths do not fit a portrait page. The space above the least widths goes to the columns in
    proportion to what they lack of their natural width."""
    from docx.enum.section import WD_ORIENT
    from docx.shared import Inches

    section = document.sections[0]
    section.left_margin = section.right_margin = Inches(0.7)
    least = sum(w for w, _ in widths)
    natural = sum(w for _, w in widths)
    usable = PORTRAIT_IN
    if least > PORTRAIT_IN or (natural > PORTRAIT_IN and len(widths) > 5):
        section.orientation = WD_ORIENT.LANDSCAPE
        section.page_width, section.page_height = Inches(11), Inches(8.5)
        usable = LANDSCAPE_IN
    room = max(usable - least, 0.0)
    lacking = natural - least
    share = min(room / lacking, 1.0) if lacking > 0 else 0.0
    final = [Inches(round(w + share * (n - w), 3)) for w, n in widths]
    table.autofit = False  # <w:tblLayout w:type="fixed"/>: Word keeps the widths below
    for column, width in zip(table.columns, final, strict=True):
        column.width = width
    for row in table.rows:
        at = 0
        for tc in row._tr.tc_lst:  # a merged cell spans grid columns: its width is their sum
            tc.width = sum(final[at:at + tc.grid_span])
            at += tc.grid_span


def _write_shown(frame: pd.DataFrame, directory: Path, stem: str, title: str, note: str = "") -> list[Path]:
    """``stem.html`` and ``stem.docx`` of a formatted table whose numbers are in ``stem.csv``."""
    return [
        write_text(directory / f"{stem}.html", table_html(frame, title, note)),
        write_bytes(directory / f"{stem}.docx", table_docx(frame, title, note)),
    ]


def _code_labels(trial) -> dict[str, dict[str, str]]:
    """Labels of Table 1 category codes: the participants file's value labels (SPSS, Stata) for
    the variables the reader left as codes, overridden code by code by the plan's ``reporting.labels``."""
    from analysis.sources.files import PARTICIPANT_CODES, PARTICIPANT_EITHER

    plan = trial.plan
    raw = getattr(trial, "participants_raw", None)
    spec = plan.data.participants
    found = {}
    if raw is not None and spec is not None:
        # the reader already printed these as their file labels (analysis.sources.files._as_codes)
        read_as_labels = [*PARTICIPANT_CODES, *PARTICIPANT_EITHER, *plan.covariates]
        column_of = {v.name: spec.column(v.name) for v in plan.reporting.table1}
        found = table1.file_value_labels(raw.value_labels, column_of, plan.reporting.table1, read_as_labels)
    return {name: found.get(name, {}) | plan.reporting.labels.get(name, {}) for name in set(found) | set(plan.reporting.labels)}


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

    # The plan's screening counts cover the whole trial: checked against every randomised
    # participant, shown only when the period does.
    if reporting.screening is not None:
        consort.check_screening(reporting.screening, len(participants))
    flow = consort.consort_flow(people, dataset, plan, screening_from_plan=bool(enrolled.all()))
    screening_note = ("" if enrolled.all() or reporting.screening is None else
                      " Assessed and excluded: the plan's screening counts cover the whole trial, not this period.")
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
        shown = table1.apply_labels(people, reporting.table1, _code_labels(trial))
        display = table1.table1_display(shown, reporting.table1, labels, suppress_below=k)
        stats1 = table1.table1_stats(shown, reporting.table1)
        std_diff = table1.standardised_differences(shown, reporting.table1)
        if k is not None:
            from analysis.reporting.suppression import footnote
        if k is None:
            note1 = "Continuous: mean (SD) and median [Q1, Q3]; categorical: n (% of those with a value). "
        else:
            stats1 = table1.suppress_stats(stats1, k)
            hidden = set(stats1.loc[stats1["suppressed"] & (stats1["kind"] == "categorical"), "variable"])
            std_diff.loc[std_diff["variable"].isin(hidden), "std_diff"] = float("nan")
            note1 = f"Continuous: mean (SD) and median [Q1, Q3]; categorical: n (percentages omitted). {footnote(k)} "
        written += write_report_table(display, tables, "table1", "Table 1. Baseline characteristics by arm",
                                      note1 + "Std. difference: treatment vs control (Austin 2009; Yang & Dalton 2012); no p-values (CONSORT).")
        written.append(write_table(stats1, tables / "table1_stats.csv"))
        written.append(write_table(std_diff, tables / "table1_std_diff.csv"))
        # CONSORT: stage counts exact (the flow adds up); with suppress_below, small reason counts hidden
        written.append(write_table(flow.counts if k is None else consort.suppress_counts(flow, k), tables / "consort_counts.csv"))
        consort_note = (f"Analysed = {flow.outcome} at {flow.visit} under the primary {flow.model}; reconciled with {method}."
                        + (f" {flow.disposition_note}." if flow.disposition_note else "") + screening_note
                        + ("" if reporting.screening is not None else " Assessed and excluded: not recorded (no reporting.screening in the plan).")
                        + (f" Reasons: {footnote(k)}" if k is not None else ""))
        written += _write_shown(consort.consort_table(flow, k), tables, "consort_counts", "CONSORT flow counts", consort_note)
        written.append(write_table(flow.analysis_population, tables / "consort_analysis_population.csv"))
        written += save_figure(consort.consort_figure(flow, suppress_below=k), figures / "consort")
        # NIH
        enrollment = nih.enrollment_table(people, reporting.nih, source)
        written += write_report_table(enrollment, tables, "nih_enrollment", f"Cumulative Inclusion Enrollment Report to {end.date()}")
        ages = nih.age_table(people, reporting.nih, reporting.age_groups, source=source)
        written += write_report_table(ages, tables, "nih_age", f"Enrollment by age at enrollment to {end.date()}",
                                      "Exact counts, for submission to NIH (not for public release).")
        # Enrollment and retention
        cumulative = retention.cumulative_enrollment(participants, end, period_start)
        written.append(write_table(cumulative.assign(date=cumulative["date"].dt.strftime("%Y-%m-%d")), tables / "enrollment_cumulative.csv"))
        written += write_report_table(retention.enrollment_against_target(cumulative, plan.target_enrollment, end, labels, digits=1),
                                      tables, "enrollment", f"Enrollment against target to {end.date()}",
                                      "Target: the plan's target_enrollment." if plan.target_enrollment else
                                      "The plan declares no target_enrollment.")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(FIGURE_WIDTH, 4.8))
        retention.plot_enrollment(cumulative, plan.target_enrollment, end, ax=ax, arm_labels=labels)
        written += save_figure(fig, figures / "enrollment")
        kept = retention.retention_table(participants, trial.dataset, plan, end)
        written.append(write_table(kept, tables / "retention.csv"))
        written += _write_shown(retention.retention_display(kept, labels, digits=1), tables, "retention",
                                f"Retention by arm and visit to {end.date()}",
                                "Attended: any outcome measured at the visit; due: enrolled at least the visit's weeks before the "
                                "period end; %: attended / due, one decimal.")
        fig, ax = plt.subplots(figsize=(FIGURE_WIDTH, 4.8))
        retention.plot_retention(kept, ax=ax, arm_labels=labels)
        written += save_figure(fig, figures / "retention")
        # Adverse events
        if events is not None:
            in_period = events[events["participant_id"].isin(set(people["participant_id"].astype(str)))]
            summary = adverse.adverse_event_summary(in_period, people)
            written.append(write_table(summary if k is None else adverse.suppress_summary(summary, k),
                                       tables / "adverse_events_summary.csv"))
            ae_labels = reporting.labels.get(ADVERSE_EVENT_CATEGORY)
            written += write_report_table(adverse.adverse_event_display(summary, labels, 1, ae_labels, k), tables, "adverse_events",
                                          "Adverse events by arm", "Participants with at least one event (% of randomised) and number of events."
                                          + (f" {footnote(k)}" if k is not None else ""))
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
