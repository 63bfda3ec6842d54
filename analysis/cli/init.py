"""``trialkit init``: make a new study folder that runs at once (see :mod:`analysis.scaffold`)."""

from __future__ import annotations

import shlex
from pathlib import Path

import typer
from rich.markup import escape

from analysis.cli import app, console


@app.command("init")
def init_command(
    folder: Path = typer.Argument(..., metavar="DIR", help="The new study folder (absent or empty)."),
    from_redcap: Path = typer.Option(
        None, "--from-redcap", metavar="FILE", help="A REDCap data dictionary (CSV): draft plan.yaml from it instead of the example plan."
    ),
    export: Path = typer.Option(None, "--export", metavar="FILE", help="With --from-redcap: the REDCap flat CSV export (its events become visits)."),
) -> None:
    """Make a study folder: plan.yaml, data/raw/, notebooks/, Makefile and README.md.

    Without --from-redcap, data/raw/ holds trialkit's SIMULATED example trial and the folder runs
    at once: cd DIR && trialkit validate plan.yaml && trialkit run plan.yaml.
    """
    from analysis.scaffold import scaffold_study

    scaffold_study(folder, redcap_dictionary=from_redcap, redcap_export=export)
    where = escape(str(folder))
    if from_redcap is None:
        console.print(f"created study folder {where} with the SIMULATED example trial in data/raw/; try it with:")
    else:
        console.print(f"created study folder {where} with a DRAFT plan.yaml: check every line marked CHECK and fill in every TODO, then:")
    console.print(f"  cd {escape(shlex.quote(str(folder)))} && trialkit validate plan.yaml && trialkit run plan.yaml")
    console.print("README.md says what to fill in and how to bring the study's own data.")
