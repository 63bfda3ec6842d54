"""``trialkit mmrm``: an MMRM from a CSV file and an R mmrm formula (tidy CSV out)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from analysis.cli import app


@app.command("mmrm")
def mmrm_command(
    data: Annotated[Path, typer.Argument(help="Long CSV: one row per participant x visit.")],
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
) -> None:
    """Fit a mixed model for repeated measures and print coefficients, LS-means, contrasts,
    covariance and fit statistics as one tidy table."""
    from analysis.core.errors import UsageError
    from analysis.core.filesystem import check_readable, refuse_overwriting_inputs
    from analysis.core.output import table_csv_bytes, write_table
    from analysis.sources.tables import read_csv_text
    from analysis.stats.models.mmrm.formula_fit import fit_mmrm_formula

    check_readable(data, "the data file")
    if not data.is_file():
        raise UsageError(f"data file '{data}' does not exist")
    refuse_overwriting_inputs({"--output": output}, [data])
    frame = read_csv_text(data, "data")
    for column in frame.columns:  # numbers stay numbers, labels stay text
        converted = _numeric(frame[column])
        if converted is not None:
            frame[column] = converted
    order = [v.strip() for v in visit_order.split(",")] if visit_order else None
    result = fit_mmrm_formula(formula, frame, df=df.lower(), ml=ml, vcov=vcov.lower(),
                              emmeans=emmeans, reference=reference, visit_order=order,
                              ci_level=ci_level)
    if output is None:
        sys.stdout.write(table_csv_bytes(result.table).decode("utf-8"))
        sys.stdout.flush()
    else:
        write_table(result.table, output)


def _numeric(column):
    import pandas as pd

    text = column.astype("string").str.strip()
    present = text.notna() & (text != "")
    numbers = pd.to_numeric(text.where(present), errors="coerce")
    if present.any() and numbers[present].notna().all():
        return numbers.astype(float)
    if not present.all():
        return text.where(present)
    return None
