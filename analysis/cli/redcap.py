"""``trialkit plan-from-redcap`` (draft a plan from a REDCap data dictionary) and
``trialkit export-adam`` (write a plan's analysis dataset as CDISC ADaM ADSL + BDS)."""

from __future__ import annotations

import os
from pathlib import Path

import typer
from rich.markup import escape

from analysis.cli import app, console
from analysis.cli.progress import finish, stage


@app.command("plan-from-redcap")
def plan_from_redcap_command(
    dictionary: Path = typer.Argument(
        ..., metavar="DICTIONARY", help="The REDCap data dictionary (CSV, 18 standard columns)."
    ),
    export: Path = typer.Option(
        None, "--export", metavar="FILE", help="The REDCap flat CSV export (its events become visits; its missing-data codes are listed)."
    ),
    out: Path = typer.Option(
        None, "--out", metavar="FILE", help="Where to write the draft plan (YAML).", show_default="standard output"
    ),
) -> None:
    """Draft a study plan for a REDCap project; check the lines marked CHECK and fill in every TODO."""
    from analysis.core.errors import UsageError
    from analysis.core.filesystem import check_readable, refuse_overwriting_inputs
    from analysis.core.output import write_text
    from analysis.sources.redcap import draft_plan, read_dictionary

    check_readable(dictionary, "the data dictionary")
    if not dictionary.is_file():
        raise UsageError(f"data dictionary '{dictionary}' does not exist")
    refuse_overwriting_inputs({"--out": out}, [p for p in (dictionary, export) if p is not None])
    parsed = read_dictionary(dictionary.resolve())
    where = (out.parent if out is not None else Path.cwd()).resolve()
    export_text = os.path.relpath(export.resolve(), where) if export is not None else "TODO-export.csv"
    # the export gives the visits (its events) and the missing-data codes (its non-numbers in numeric fields)
    text = draft_plan(parsed, export_text, os.path.relpath(dictionary.resolve(), where), export_file=export)
    if out is None:
        typer.echo(text, nl=False)
    else:
        write_text(out, text)
        console.print(f"wrote draft plan {escape(str(out))}: check every line marked CHECK and fill in every TODO")


@app.command("export-adam")
def export_adam_command(
    plan: Path = typer.Argument(..., metavar="PLAN", help="The study plan (YAML)."),
    out: Path = typer.Option(
        ..., "--out", metavar="DIR", help="Folder to write adam/adsl.xpt|csv and adam/adbds.xpt|csv into."
    ),
) -> None:
    """Write the plan's analysis dataset as CDISC ADaM (ADSL + BDS) in SAS XPT v5 and CSV."""
    from analysis.cli.failures import failures_go_to
    from analysis.cli.paths import failure_table_path
    from analysis.core.output import check_output_directory, staged_directory
    from analysis.pipeline import load_trial
    from analysis.plan import load_plan
    from analysis.plan.inputs import plan_inputs
    from analysis.reporting.adam import write_adam_files

    failures_go_to(failure_table_path(plan, beside_folder=out))  # invalid data: reported by run_cli
    folder = out / "adam"  # replaced as a whole, so --out may be a folder that holds other things
    check_output_directory(folder, plan_inputs(load_plan(plan)))  # refuse a bad --out before reading any data
    stage("read, validate and derive")
    trial = load_trial(plan)
    stage("write ADaM ADSL and BDS")
    with staged_directory(folder, inputs=plan_inputs(trial.loaded), kind="adam") as staging:
        names = [path.name for path in write_adam_files(trial.dataset, trial.participants, trial.plan, staging)]
    finish()
    for name in names:
        console.print(f"wrote {escape(str(folder / name))}")
