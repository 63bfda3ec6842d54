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

import json
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
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
from analysis.reporting.tables.docx import render_docx
from analysis.reporting.tables.frames import table_from_frame
from analysis.reporting.tables.html import render_html

# ----------------------------------------------------------------------------------------------
# Rendering one table three ways: the CSV as given; HTML and Word from the one table model


def table_html(frame: pd.DataFrame, title: str, note: str = "") -> str:
    """The display frame as an HTML fragment (great-tables): a two-level header when column names
    carry ``"top | bottom"``, escaped cells, numbers right-aligned (:mod:`analysis.reporting.tables`)."""
    return render_html(table_from_frame(frame, title, note))


def table_docx(frame: pd.DataFrame, title: str, note: str = "") -> bytes:
    """The display frame as a Word document, the same cells as :func:`table_html` and the same
    bytes for the same table (:func:`analysis.reporting.tables.docx.render_docx`)."""
    return render_docx([table_from_frame(frame, title, note)])


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
