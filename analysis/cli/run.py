"""``trialkit run``, ``trialkit validate`` and ``trialkit simulate``: the trial pipeline commands."""

from __future__ import annotations

import sys
from pathlib import Path

import typer
from rich.markup import escape

from analysis.cli import app, console
from analysis.cli.choices import choice_option
from analysis.cli.progress import finish, stage
from analysis.core.errors import UsageError

PlanArgument = typer.Argument(
    ..., metavar="PLAN", help="The study plan (YAML), e.g. data/studies/example-precision-release.yaml."
)


@app.command("validate")
def validate_command(
    plan: Path = PlanArgument,
    failures: Path = typer.Option(
        None,
        "--failures",
        metavar="FILE",
        help="Where to write the full failure table (CSV) if the data are invalid (the default is where "
        "`trialkit run` writes it).",
        show_default="reports/<study id>.validation_failures.csv",
    ),
) -> None:
    """Check a plan's data against the contracts; exit 0 valid, 1 invalid data, 2 bad plan or usage."""
    from analysis.cli.failures import failures_go_to
    from analysis.cli.paths import failure_table_path
    from analysis.pipeline import load_trial
    from analysis.plan import load_plan

    failures_go_to(failure_table_path(plan, failures, beside_folder=Path("reports") / load_plan(plan).plan.study.id))
    stage(f"read and validate the data of {plan}")
    trial = load_trial(plan)
    participants = trial.participants
    finish()
    console.print(
        f"[green]valid:[/] {len(participants)} participants "
        f"({(participants['arm'] == 'treatment').sum()} treatment, {(participants['arm'] == 'control').sum()} control), "
        f"{len(trial.measurements)} measurement cells, {trial.dataset['value'].notna().sum()} with a value"
    )


@app.command("run")
def run_command(
    plan: Path = PlanArgument,
    out: Path = typer.Option(None, "--out", metavar="DIR", help="Output directory.", show_default="reports/<study id>"),
    seed: int = typer.Option(
        None, "--seed", metavar="N", help="Seed for resampling and imputation.", show_default="the plan's seed"
    ),
    no_report: bool = typer.Option(False, "--no-report", help="Skip rendering report.html."),
    engine: str = choice_option(
        "pandas", "--engine", choices=("pandas", "dask"), metavar="ENGINE", show_default=True,
        help="pandas (one machine, every output) or dask (partitioned data on a Dask cluster; the "
        "outputs it supports, see the README's 'Large data and clusters').",
    ),
    scheduler: str = typer.Option(
        None, "--scheduler", metavar="ADDRESS", help="Dask scheduler to use with --engine dask.",
        show_default="DASK_SCHEDULER_ADDRESS, else a local cluster of 2 worker processes",
    ),
) -> None:
    """Read, validate, derive, analyse, draw and report, writing every output atomically."""
    from analysis.cli.failures import failures_go_to
    from analysis.cli.paths import failure_table_path
    from analysis.pipeline import run
    from analysis.plan import load_plan

    out = out or Path("reports") / load_plan(plan).plan.study.id
    failures_go_to(failure_table_path(plan, beside_folder=out))
    # `python -m analysis` is the same program as `trialkit`: record it as the rerunnable command
    command = ["trialkit", *sys.argv[1:]] if sys.argv[0].endswith(("trialkit", "analysis/__main__.py")) else None
    if engine == "dask":
        from analysis.engine.run import NOT_COMPUTED, run_dask

        result = run_dask(plan, out, seed=seed, scheduler=scheduler, progress=stage, command=command)
        finish()
        console.print("dask engine; not computed (use --engine pandas): " + "; ".join(NOT_COMPUTED))
    else:
        result = run(plan, out, seed=seed, render_report=not no_report, progress=stage, command=command)
    report = result / "report.html"
    finish()
    console.print(f"[green]done:[/] outputs in {escape(str(result))}")
    if report.exists():
        console.print(f"report: {escape(str(report))}")


@app.command("simulate")
def simulate_command(
    plan: Path = PlanArgument,
    seed: int = typer.Option(..., "--seed", metavar="N", help="Seed of the generator (recorded by the caller)."),
    out: Path = typer.Option(
        None, "--out", metavar="DIR", help="Folder to write into.", show_default="the paths the plan names"
    ),
) -> None:
    """Draw a SIMULATED trial and write it as CSV.

    From a trial plan: the plan's 'simulation' section. From a published-results plan
    (document: published-results): a trial calibrated by construction to the published headline
    figures, written with its generated trial plan into --out (required then).
    """
    from analysis.cli.failures import beside_output, failures_go_to
    from analysis.plan import load_plan
    from analysis.plan.published import is_published_results, load_published
    from analysis.replicate.simulate import write_simulated_trial

    failures_go_to(beside_output(out) if out is not None else None)
    stage(f"draw a SIMULATED trial (seed {seed})")
    if is_published_results(plan):
        from analysis.plan.published import PublishedTrial
        from analysis.replicate import write_replication_trial

        published = load_published(plan).plan
        if not isinstance(published, PublishedTrial):
            raise UsageError(f"{plan} describes a single-patient case; there is no trial to simulate (use trialkit replicate)")
        if out is None:
            raise UsageError("simulating from a published-results plan needs --out DIR")
        from analysis.core.output import staged_directory

        with staged_directory(out, inputs=[plan], kind="simulate") as staging:
            trial_plan = out / write_replication_trial(published, staging, seed).name
        finish()
        console.print(f"wrote calibrated SIMULATED trial (seed {seed}); analyse it with: trialkit run {escape(str(trial_plan))}")
        return
    if out is None:
        written = write_simulated_trial(load_plan(plan), seed)
    else:
        from analysis.core.output import staged_directory

        with staged_directory(out, inputs=[plan], kind="simulate") as staging:
            written = [out / path.name for path in write_simulated_trial(load_plan(plan), seed, staging)]
    from analysis.replicate.simulate import simulated_rows

    finish()
    for path in written:
        console.print(f"wrote {escape(str(path))} ({simulated_rows(path)} rows, simulated, seed {seed})")


@app.command("verify")
def verify_command(
    manifest: Path = typer.Argument(..., metavar="MANIFEST", help="A run's manifest.json."),
) -> None:
    """Re-run a recorded run (same plan, inputs and seed) and check every output is byte-identical."""
    from analysis.cli.failures import beside_output, failures_go_to
    from analysis.pipeline import verify

    failures_go_to(beside_output(manifest.resolve().parent))  # beside the recorded run's folder
    result = verify(manifest, progress=stage)
    finish()
    for item in result.changed_inputs:
        console.print(f"[red]input changed since the run:[/] {escape(item)}")
    for item in result.differing_files:
        console.print(f"[red]differs:[/] {escape(item)}")
    if not result.identical:
        raise typer.Exit(1)
    console.print(f"[green]verified:[/] {result.compared} files byte-identical to the recorded run")
