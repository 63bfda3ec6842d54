"""``trialkit mmrm``: an MMRM from a CSV file and an R mmrm formula (tidy CSV out)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from analysis.cli import app


@app.command("mmrm")
def mmrm_command(
    data: Annotated[Path, typer.Argument(
        help="Long data, one row per participant x visit: CSV, Excel (.xlsx), SAS (.sas7bdat, "
        ".xpt), SPSS (.sav), Stata (.dta) or Parquet (.parquet), by its suffix; codes with "
        "value labels (SPSS, Stata) enter as their labels.")],
    formula: Annotated[str, typer.Option(
        "--formula", help='R mmrm syntax, e.g. "FEV1 ~ RACE + ARMCD * AVISIT + us(AVISIT | USUBJID)".')],
    df: Annotated[str, typer.Option(
        "--df", help="satterthwaite, kenward-roger, kenward-roger-linear, between-within or residual.")
    ] = "satterthwaite",
    ml: Annotated[bool, typer.Option("--ml", help="Maximum likelihood instead of REML.")] = False,
    vcov: Annotated[str, typer.Option("--vcov", help="model or empirical (sandwich).")] = "model",
    emmeans: Annotated[str | None, typer.Option(
        "--emmeans", help='LS-means and contrasts, e.g. "ARMCD | AVISIT".')] = None,
    reference: Annotated[str | None, typer.Option(
        "--reference", help="Reference level (contrasts are every other level minus it).")] = None,
    visit_order: Annotated[str | None, typer.Option(
        "--visit-order", help="Visit levels in time order, comma-separated (with a numeric "
        "time, as sp_exp has: the order of the visit factor of the fixed effects).")] = None,
    ci_level: Annotated[float, typer.Option("--ci-level", help="Confidence level.")] = 0.95,
    output: Annotated[Path | None, typer.Option(
        "--output", help="Write the CSV here (default: standard output).")] = None,
    type3: Annotated[Path | None, typer.Option(
        "--type3", help="Also write the Type III F tests of the terms (SAS's 'Type 3 Tests of "
        "Fixed Effects', with the --df method) to this CSV.")] = None,
) -> None:
    """Fit a mixed model for repeated measures and print coefficients, LS-means, contrasts,
    covariance and fit statistics as one tidy table."""
    from analysis.core.errors import UsageError
    from analysis.core.filesystem import check_readable, refuse_overwriting_inputs
    from analysis.core.output import table_csv_bytes, write_table
    from analysis.stats.models.mmrm.formula_fit import fit_mmrm_formula

    check_readable(data, "the data file")
    if not data.is_file():
        raise UsageError(f"data file '{data}' does not exist")
    refuse_overwriting_inputs({"--output": output, "--type3": type3}, [data])
    frame = _read_data(data)
    order = [v.strip() for v in visit_order.split(",")] if visit_order else None
    result = fit_mmrm_formula(formula, frame, df=df.lower(), ml=ml, vcov=vcov.lower(),
                              emmeans=emmeans, reference=reference, visit_order=order,
                              ci_level=ci_level, type3=type3 is not None)
    if output is None:
        sys.stdout.write(table_csv_bytes(result.table).decode("utf-8"))
        sys.stdout.flush()
    else:
        write_table(result.table, output)
    if type3 is not None:
        write_table(result.type3, type3)


def _read_data(path: Path):
    """The data as a frame. Text cells (a CSV's, or Excel's objects) become numbers when every
    present cell of the column is one (``NA``, ``.`` and empty cells are missing), else stay
    text; SPSS and Stata codes with value labels become their labels (a labelled arm is a
    factor, not a number); other binary columns stay as stored. A CSV's rows are numbered as in
    the file. A suffix that names no format is read as CSV."""
    import pandas as pd

    from analysis.plan.sources import DataFile
    from analysis.sources.cells import coded_column
    from analysis.sources.files import read_file
    from analysis.sources.tables import read_csv_text

    spec = DataFile(path=str(path))
    try:
        fmt = spec.resolved_format()
    except ValueError:
        fmt = "csv"
    labels: dict[str, dict[str, str]] = {}
    if fmt == "csv":
        frame = read_csv_text(path, "data")
        frame.index = pd.RangeIndex(2, len(frame) + 2, name="row")
    else:
        table = read_file(spec, Path.cwd(), "data")
        frame, labels = table.frame.reset_index(drop=True), table.value_labels
    for column in frame.columns:
        if labels.get(column):
            frame[column] = coded_column(frame[column], labels[column])
        elif fmt == "csv" or frame[column].dtype == object:
            converted = _numeric(frame[column])
            if converted is not None:
                frame[column] = converted
    return frame


def _numeric(column):
    import pandas as pd

    text = column.astype("string").str.strip()
    present = text.notna() & ~text.isin(["", "."])  # "." is SAS's missing value
    numbers = pd.to_numeric(text.where(present), errors="coerce")
    if present.any() and numbers[present].notna().all():
        return numbers.astype(float)
    if not present.all():
        return text.where(present)
    return None
