"""``trialkit run``, ``trialkit validate`` and ``trialkit simulate``: the trial pipeline commands."""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
import typer
from rich.markup import escape
from rich.table import Table

from analysis.cli import app, console
from analysis.core.errors import DataError, UsageError

PlanArgument = typer.Argument(..., help="The study plan (YAML), e.g. data/studies/example-precision-release.yaml.")


def _show_failures(error: DataError, failures_csv: Path | None) -> None:
    """Readable summary: counts per rule, then the first failures, then where the full table is."""
    from analysis.checks.contracts import summarise_failures
    from analysis.core.output import write_table

    failures = error.failures
    # every cell quotes user data: escape it so that brackets in it are not read as console markup
    console.print(f"[bold red]invalid data:[/] {escape(str(error))}")
    if failures.empty:
        return
    counts = Table(title="Failures per rule", show_lines=False)
    for column in ("file", "column", "rule", "failures"):
        counts.add_column(column)
    for row in summarise_failures(failures).itertuples(index=False):
        counts.add_row(*(escape(str(v)) for v in (Path(str(row.file)).name, row.column, row.rule, row.failures)))
    console.print(counts)
    first = Table(title="First failures (row as numbered in the file, header = row 1)")
    for column in ("file", "row", "column", "rule", "value"):
        first.add_column(column)
    for row in failures.head(20).itertuples(index=False):
        first.add_row(*(escape(str(v)) for v in (Path(str(row.file)).name, row.row, row.column, row.rule, row.value)))
    console.print(first)
    if failures_csv is not None:
        write_table(failures, failures_csv)
        console.print(f"all {len(failures)} failure(s) written to {escape(str(failures_csv))}")


@app.command("validate")
def validate_command(
    plan: Path = PlanArgument,
    failures: Path = typer.Option(
        Path("validation_failures.csv"), "--failures", help="Where to write the full failure table (CSV)."
    ),
) -> None:
    """Check a plan's data against the contracts; exit 0 valid, 1 invalid data, 2 bad plan or usage."""
    from analysis.pipeline import load_trial

    try:
        trial = load_trial(plan)
    except DataError as error:
        _show_failures(error, failures)
        raise typer.Exit(error.exit_code) from None
    participants = trial.participants
    console.print(
        f"[green]valid:[/] {len(participants)} participants "
        f"({(participants['arm'] == 'treatment').sum()} treatment, {(participants['arm'] == 'control').sum()} control), "
        f"{len(trial.measurements)} measurement cells, {trial.dataset['value'].notna().sum()} with a value"
    )


@app.command("run")
def run_command(
    plan: Path = PlanArgument,
    out: Path = typer.Option(None, "--out", help="Output directory [default: reports/<study id>]."),
    seed: int = typer.Option(None, "--seed", help="Seed for resampling and imputation [default: the plan's seed]."),
    no_report: bool = typer.Option(False, "--no-report", help="Skip rendering report.html."),
) -> None:
    """Read, validate, derive, analyse, draw and report, writing every output atomically."""
    from analysis.pipeline import run
    from analysis.plan import load_plan

    out = out or Path("reports") / load_plan(plan).plan.study.id
    failures_csv = out.with_name(out.name + ".validation_failures.csv")
    try:
        result = run(
            plan,
            out,
            seed=seed,
            render_report=not no_report,
            progress=lambda stage: console.print(f"[cyan]>[/] {stage}"),
            # `python -m analysis` is the same program as `trialkit`: record it as the rerunnable command
            command=["trialkit", *sys.argv[1:]] if sys.argv[0].endswith(("trialkit", "analysis/__main__.py")) else None,
        )
    except DataError as error:
        _show_failures(error, failures_csv)
        raise typer.Exit(error.exit_code) from None
    report = result / "report.html"
    console.print(f"[green]done:[/] outputs in {escape(str(result))}")
    if report.exists():
        console.print(f"report: {escape(str(report))}")


@app.command("simulate")
def simulate_command(
    plan: Path = PlanArgument,
    seed: int = typer.Option(..., "--seed", help="Seed of the generator (recorded by the caller)."),
    out: Path = typer.Option(None, "--out", help="Folder to write into [default: the paths the plan names]."),
) -> None:
    """Draw a SIMULATED trial and write it as CSV.

    From a trial plan: the plan's 'simulation' section. From a published-results plan
    (document: published-results): a trial calibrated by construction to the published headline
    figures, written with its generated trial plan into --out (required then).
    """
    from analysis.plan import load_plan
    from analysis.plan.published import is_published_results, load_published
    from analysis.replicate.simulate import write_simulated_trial

    if is_published_results(plan):
        from analysis.plan.published import PublishedTrial
        from analysis.replicate import write_replication_trial

        published = load_published(plan).plan
        if not isinstance(published, PublishedTrial):
            raise UsageError(f"{plan} describes a single-patient case; there is no trial to simulate (use trialkit replicate)")
        if out is None:
            raise UsageError("simulating from a published-results plan needs --out DIR")
        trial_plan = write_replication_trial(published, out, seed)
        console.print(f"wrote calibrated SIMULATED trial (seed {seed}); analyse it with: trialkit run {escape(str(trial_plan))}")
        return
    written = write_simulated_trial(load_plan(plan), seed, out)
    for path in written:
        console.print(f"wrote {escape(str(path))} ({len(pd.read_csv(path))} rows, simulated, seed {seed})")


@app.command("verify")
def verify_command(
    manifest: Path = typer.Argument(..., help="A run's manifest.json."),
) -> None:
    """Re-run a recorded run (same plan, inputs and seed) and check every output is byte-identical."""
    from analysis.pipeline import verify

    result = verify(manifest)
    for item in result.changed_inputs:
        console.print(f"[red]input changed since the run:[/] {escape(item)}")
    for item in result.differing_files:
        console.print(f"[red]differs:[/] {escape(item)}")
    if not result.identical:
        raise typer.Exit(1)
    console.print(f"[green]verified:[/] {result.compared} files byte-identical to the recorded run")
