"""``trialkit escalc``: effect sizes from arm-level summaries in a CSV file (metafor vocabulary)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from analysis.cli import app
from analysis.cli.choices import MEASURES, canonical, completions, upper_case
from analysis.core.errors import UsageError


@app.command("escalc")
def escalc_command(
    measure: Annotated[
        str,
        typer.Option(
            "--measure",
            metavar="MEASURE",
            help=f"One of {', '.join(MEASURES)} (metafor names; any case).",
            callback=canonical(MEASURES),
            autocompletion=completions(MEASURES),
        ),
    ],
    input_file: Annotated[
        Path,
        typer.Option(
            "--input",
            metavar="FILE",
            help="CSV: n1i,m1i,sd1i,n2i,m2i,sd2i (group 1 = treatment) or ni,m1i,m2i,sd1i,sd2i,ri (1 = post, 2 = pre).",
        ),
    ],
    output: Annotated[
        Path | None,
        typer.Option("--output", metavar="FILE", help="Write the CSV here.", show_default="standard output"),
    ] = None,
    ci_level: Annotated[
        float, typer.Option("--ci-level", metavar="LEVEL", help="Confidence level of the Wald interval.")
    ] = 0.95,
    vtype: Annotated[
        str,
        typer.Option(
            "--vtype",
            metavar="VTYPE",
            help="Sampling-variance type, metafor's names (LS, LS2, LS3, UB, HO, H0 as the measure allows; any case).",
            callback=upper_case,
        ),
    ] = "LS",
    reported_ci_level: Annotated[
        float,
        typer.Option(
            "--reported-ci-level",
            metavar="LEVEL",
            help="Level of a CI reported for an arm's mean (ci_low1i, ci_high1i ...) where no ci_level1i/ci_level2i cell gives it.",
        ),
    ] = 0.95,
    reported_ci_distribution: Annotated[
        str,
        typer.Option(
            "--reported-ci-distribution",
            metavar="DISTRIBUTION",
            help="t or z (any case): quantile a reported CI used: t with n-1 df (Cochrane's small-sample rule, used for every n) or z (3.92 for 95%).",
            callback=canonical(("t", "z")),
            autocompletion=completions(("t", "z")),
        ),
    ] = "t",
) -> None:
    """Compute yi, vi, sei, ci_low, ci_high (and a note for rows that cannot be computed).

    Other input columns pass through unchanged. Impossible values (SD < 0, n < 2, |r| > 1, a
    non-positive mean for ROM) stop with exit code 1 and list every offending cell; nothing is
    written then. For SMCR, sd1i is the standardiser (put the pretest SD there, as metafor does).
    An arm reported as a paper gives it (se1i; ci_low1i, ci_high1i; median1i with q1_1i, q3_1i or
    minimum1i, maximum1i; likewise 2i) is converted to mean and SD (Cochrane Handbook 6.5.2, Wan et
    al. 2014) and the new `method` column names the conversion.
    """
    from analysis.core.filesystem import check_readable, refuse_overwriting_inputs
    from analysis.core.output import table_csv_bytes, write_table
    from analysis.sources.tables import read_csv_text
    from analysis.stats.effects import escalc

    if measure not in MEASURES:
        raise UsageError(f"--measure must be one of {', '.join(MEASURES)}, got '{measure}'")
    if not 0 < ci_level < 1:
        raise UsageError(f"--ci-level must be between 0 and 1, got {ci_level}")
    if not 0 < reported_ci_level < 1:
        raise UsageError(f"--reported-ci-level must be between 0 and 1, got {reported_ci_level}")
    check_readable(input_file, "the input file")
    if not input_file.is_file():
        raise UsageError(f"input file '{input_file}' does not exist")
    refuse_overwriting_inputs({"--output": output}, [input_file])
    # Text in, so that pass-through columns (study labels, ids with leading zeros) stay byte-identical.
    data = read_csv_text(input_file, "input", keep_default_na=False, skipinitialspace=False)
    result = escalc(measure, data, ci_level=ci_level, vtype=vtype, source=str(input_file),
                    reported_ci_level=reported_ci_level, ci_distribution=reported_ci_distribution)
    if output is None:
        sys.stdout.write(table_csv_bytes(result).decode("utf-8"))
        sys.stdout.flush()
    else:
        write_table(result, output)
