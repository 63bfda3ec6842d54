"""``trialkit meta``: pool per-study effect sizes (fixed or random effects), draw a forest plot."""

from __future__ import annotations

import sys
from pathlib import Path

import typer
from rich.markup import escape

from analysis.cli import app, console
from analysis.cli.choices import ARM_MEASURES, META_METHODS, META_TESTS, choice_option
from analysis.cli.progress import finish, stage
from analysis.core.errors import UsageError

HELP = (
    "Meta-analysis of per-study effect sizes (metafor rma.uni conventions).\n\n"
    "INPUT is a CSV with a `study` column and either `yi`, `vi` (as `trialkit escalc` writes them; an optional "
    "`measure` column names the measure) or, with --measure MD|SMD|SMDH|ROM, the arm summaries "
    "`n1i, m1i, sd1i, n2i, m2i, sd2i` (group 1 = treatment). Missing values, non-positive variances, repeated "
    "study labels or fewer than two studies are reported (file, row, column, rule) with exit code 1.\n\n"
    "OUTPUT (CSV; stdout when --output is omitted): one row per study (type = study), one summary row "
    "(type = summary) and one heterogeneity row (type = heterogeneity), in the fixed columns "
    "type, study, measure, contrast, method, test, estimate, std_error, statistic, df, p_value, ci_low, ci_high, "
    "ci_level, pi_low, pi_high, weight, k, tau2, tau2_ci_low, tau2_ci_high, tau, i2, h2, q, q_df, q_p_value, "
    "exponentiated, n_treatment, n_control, note.\n\n"
    "Study rows: yi, sqrt(vi), z, normal CI, weight (% of the fitted model). Summary row: pooled estimate, SE, "
    "z or t (df = k - 1 with knha), p, CI, prediction interval (random effects). Heterogeneity row: tau2 with its "
    "Q-profile CI, tau, I2 (%), H2, Cochran's Q with df and p. Ratio measures are pooled on the log scale; "
    "--exponentiate back-transforms estimate, CI and PI (std_error and statistic stay on the log scale)."
)


# Path options as module-level singletons (typer's idiom; ruff B008)
_INPUT = typer.Option(..., "--input", metavar="FILE", help="Effects CSV (study + yi, vi; or arm summaries with --measure).")
_OUTPUT = typer.Option(None, "--output", metavar="FILE", help="Write the table here (CSV).", show_default="standard output")
_FOREST = typer.Option(None, "--forest", metavar="FILE", help="Write a forest plot (.png or .svg).")
_REPORT = typer.Option(None, "--report", metavar="DIR", help="Render DIR/meta_report.html from notebooks/meta_analysis.ipynb.")
_METHOD = choice_option(
    "REML", "--method", choices=META_METHODS, metavar="METHOD",
    help="tau^2 estimator: REML, DL, PM, ML, or FE (fixed effect); any case.",
)
_TEST = choice_option(
    "z", "--test", choices=META_TESTS, metavar="TEST", help="z (normal) or knha (Knapp-Hartung / HKSJ, t with k-1 df)."
)
_MEASURE = choice_option(
    None, "--measure", choices=ARM_MEASURES, metavar="MEASURE",
    help="MD, SMD, SMDH or ROM (any case): compute yi, vi from arm summaries.", show_default="none: the file has yi, vi",
)


@app.command("meta", help=HELP)
def meta_command(
    input: Path = _INPUT,
    method: str = _METHOD,
    test: str = _TEST,
    ci_level: float = typer.Option(0.95, "--ci-level", metavar="LEVEL", help="Level of the CI, prediction interval and tau^2 CI."),
    measure: str = _MEASURE,
    exponentiate: bool = typer.Option(False, "--exponentiate", help="Back-transform a ratio measure (ROM) with exp."),
    output: Path = _OUTPUT,
    forest: Path = _FOREST,
    lower_is_better: bool = typer.Option(False, "--lower-is-better", help="The outcome improves downwards (for the 'favours' labels)."),
    report: Path = _REPORT,
) -> None:
    from analysis.core.output import table_csv_bytes, write_bytes
    from analysis.reporting.forest import forest_format, render_forest
    from analysis.sources.tables import read_csv_text
    from analysis.stats.meta import METHODS, TESTS, effects_from_table, meta_analyse

    method = method.upper()
    if method not in METHODS:
        raise UsageError(f"--method must be one of {', '.join(METHODS)} (found {method!r})")
    if test not in TESTS:
        raise UsageError(f"--test must be z or knha (found {test!r})")
    if not 0 < ci_level < 1:
        raise UsageError(f"--ci-level must be between 0 and 1, e.g. 0.95 (found {ci_level})")
    fmt = forest_format(forest) if forest is not None else None
    from analysis.core.filesystem import check_readable, refuse_overwriting_inputs

    check_readable(input, "the effects file")
    refuse_overwriting_inputs(
        {"--output": output, "--forest": forest, "--report": report / "meta_report.html" if report is not None else None},
        [input],
    )

    # everything is computed before anything is written: a failure leaves no partial output
    effects = effects_from_table(read_csv_text(input), measure=measure, source=str(input))
    fit, table = meta_analyse(effects, method=method, test=test, ci_level=ci_level, exponentiate=exponentiate)  # type: ignore[arg-type]
    if fmt is not None:
        stage("draw the forest plot")
    figure = render_forest(table, fmt, lower_is_better=lower_is_better) if fmt is not None else None
    if report is not None:
        stage("render meta_report.html")
        from analysis.core.resources import notebook_path
        from analysis.reporting.notebook import render_notebook

        parameters = {
            "effects_path": str(input.resolve()),
            "measure": measure,
            "method": method,
            "test": test,
            "ci_level": ci_level,
            "exponentiate": exponentiate,
            "lower_is_better": lower_is_better,
            "out_dir": str(report.resolve()),
        }
        render_notebook(notebook_path("meta_analysis.ipynb"), parameters, report / "meta_report.html")
    finish()
    data = table_csv_bytes(table)
    if output is not None:
        write_bytes(output, data)
    else:
        sys.stdout.write(data.decode("utf-8"))
        sys.stdout.flush()
    if figure is not None:
        write_bytes(forest, figure)
    summary = table.loc[table["type"] == "summary"].iloc[0]
    console.print(
        f"pooled {escape(str(summary['measure'] or 'effect'))} ({method}, {test}): {summary['estimate']:.4g} "
        f"[{summary['ci_low']:.4g}, {summary['ci_high']:.4g}] from {fit.k} studies; I2 = {fit.i2:.1f}%"
    )
