"""``trialkit grant-report`` and ``trialkit power``: grant and progress reporting commands."""

from __future__ import annotations

import io
import json
import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.markup import escape

from analysis.cli import app, console
from analysis.cli.choices import choice_option
from analysis.cli.progress import finish, stage
from analysis.core.errors import UsageError

if TYPE_CHECKING:  # pandas, NumPy and rich tables are imported when a command runs, not for --help
    import pandas as pd
    from rich.table import Table

PLAN_ARGUMENT = typer.Argument(..., metavar="PLAN", help="The study plan (YAML) with a 'reporting:' section.")
OUT_OPTION = typer.Option(..., "--out", metavar="DIR", help="Output directory (replaced as a whole on success).")
POWER_OUT_OPTION = typer.Option(
    None, "--out", metavar="DIR", help="Write power.csv and power curves (png/svg) into this folder."
)


@app.command("grant-report")
def grant_report_command(
    plan: Path = PLAN_ARGUMENT,
    period_end: str = typer.Option(..., "--period-end", metavar="DATE", help="Last day of the reporting period (YYYY-MM-DD)."),
    out: Path = OUT_OPTION,
    period_start: str = typer.Option(
        None, "--period-start", metavar="DATE", help="First day of the reporting period (YYYY-MM-DD).",
        show_default="the first enrolment",
    ),
    no_report: bool = typer.Option(False, "--no-report", help="Write the tables and figures but skip report.html."),
) -> None:
    """Table 1, CONSORT flow, NIH inclusion tables, enrollment, retention and adverse events."""
    import sys

    from analysis.cli.failures import failures_go_to
    from analysis.cli.paths import failure_table_path
    from analysis.core.output import check_output_directory
    from analysis.pipeline import load_trial
    from analysis.plan import load_plan
    from analysis.plan.inputs import plan_inputs
    from analysis.reporting.grant import write_grant_report

    failures_go_to(failure_table_path(plan, beside_folder=out))  # invalid data: reported by run_cli
    check_output_directory(out, plan_inputs(load_plan(plan)))  # refuse a bad --out before reading any data
    stage("read, validate and derive")
    trial = load_trial(plan)
    stage("grant-report tables and figures" + ("" if no_report else ", then report.html"))
    report = write_grant_report(trial, period_end, out, period_start=period_start, render=not no_report,
                                command=["trialkit", *sys.argv[1:]])
    finish()
    flow = report.flow
    console.print(
        f"[green]grant report written:[/] {escape(str(report.out_dir))} ({len(report.files)} files); randomised "
        f"{flow.n('randomised')}, analysed {flow.n('analysed', 'treatment')} treatment / "
        f"{flow.n('analysed', 'control')} control"
    )


def _floats(text: str | None, name: str) -> list[float] | None:
    if text is None:
        return None
    try:
        return [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise UsageError(f"--{name} must be comma-separated numbers, found '{text}'") from None


@app.command("power")
def power_command(
    d: float = typer.Option(None, "--d", metavar="D", help="Standardised effect size (treatment - control, in SD units).",
                            show_default="required unless --grid"),
    n: float = typer.Option(None, "--n", metavar="N", help="Participants analysed per arm (give --n for power, or --power for n)."),
    power: float = typer.Option(None, "--power", metavar="POWER", help="Target power; solves for n per arm."),
    alpha: float = typer.Option(0.05, "--alpha", metavar="ALPHA", help="Two-sided significance level."),
    r: float = typer.Option(
        None, "--r", metavar="R", help="Baseline-follow-up correlation: ANCOVA (design factor 1 - r^2).",
        show_default="none: a t-test",
    ),
    attrition: float = typer.Option(0.0, "--attrition", metavar="SHARE", help="Expected share lost (0-1); inflates n to enrol."),
    simulate: int = typer.Option(0, "--simulate", metavar="N", help="Also estimate power from this many simulated trials."),
    seed: int = typer.Option(0, "--seed", metavar="N", help="Seed of the simulation (numpy default_rng)."),
    mmrm: bool = typer.Option(False, "--mmrm", help="Simulate the MMRM at the last visit (needs --simulate)."),
    dropout: str = typer.Option(
        None, "--dropout", metavar="SHARES", help="MMRM: cumulative dropout per follow-up visit, e.g. 0.05,0.1,0.2.",
        show_default="0,0,0",
    ),
    out: Path = POWER_OUT_OPTION,
    grid: str = typer.Option(
        None, "--grid", metavar="GRID", help='Simulated ANCOVA power over a grid, e.g. "d=0.3,0.5 n=50,100 r=0.5 '
        'dropout=0,0.2" (needs --simulate; seeds from --seed by grid position).', show_default="no grid",
    ),
    engine: str = choice_option(
        "pandas", "--engine", choices=("pandas", "dask"), metavar="ENGINE", show_default=True,
        help="With --grid: pandas (serial) or dask (one task per grid point; same results).",
    ),
    scheduler: str = typer.Option(
        None, "--scheduler", metavar="ADDRESS", help="Dask scheduler for --engine dask.",
        show_default="DASK_SCHEDULER_ADDRESS, else a local cluster of 2 worker processes",
    ),
) -> None:
    """Power or sample size for the next trial: t-test, ANCOVA, attrition, simulation, curves."""
    if grid is not None:
        _power_grid(grid, simulate, seed, alpha, engine, scheduler, out)
        return
    if d is None:
        raise UsageError("give --d (the standardised effect size), or --grid")
    import numpy as np
    import pandas as pd
    from rich.table import Table

    from analysis.stats import power as pw

    if (n is None) == (power is None):
        raise UsageError("give exactly one of --n (to compute power) or --power (to compute n per arm)")
    if mmrm and not simulate:
        raise UsageError("--mmrm needs --simulate N")
    if simulate < 0:
        raise UsageError(f"--simulate must be >= 0, found {simulate}")
    if out is not None:
        from analysis.core.output import check_output_directory

        check_output_directory(out)  # refuse a bad --out before simulating
    rows = []
    method = "t-test" if r is None else f"ANCOVA (r = {r:g})"
    if power is not None:
        n_exact = pw.ttest_n(d, power, alpha) if r is None else pw.ancova_n(d, r, power, alpha)
        n_use = math.ceil(round(n_exact, 9))
        achieved = pw.ttest_power(d, n_use, alpha) if r is None else pw.ancova_power(d, n_use, r, alpha)
        rows.append({"method": method, "quantity": "n per arm", "value": n_exact, "n_per_arm": n_use, "power": achieved})
    else:
        n_use = n
        value = pw.ttest_power(d, n, alpha) if r is None else pw.ancova_power(d, n, r, alpha)
        rows.append({"method": method, "quantity": "power", "value": value, "n_per_arm": n, "power": value})
    if attrition:
        rows.append({"method": f"enrol for {attrition:.0%} attrition", "quantity": "n per arm to enrol",
                     "value": float(pw.inflate_for_attrition(n_use, attrition)), "n_per_arm": n_use, "power": np.nan})
    if simulate:
        n_sim = int(math.ceil(n_use))
        stage(f"simulate {simulate:,} trials of {n_sim} per arm ({'MMRM' if mmrm else 'ANCOVA'})")
        if mmrm:
            shares = _floats(dropout, "dropout") or [0.0, 0.0, 0.0]
            rho = 0.5 if r is None else r
            size = len(shares) + 1
            corr = np.full((size, size), rho) + (1 - rho) * np.eye(size)
            sim = pw.simulate_power_mmrm(d, n_sim, corr, np.array(shares), simulate, seed, alpha)
        else:
            sim = pw.simulate_power_ancova(d, n_sim, 0.0 if r is None else r, simulate, seed, alpha)
        rows.append({"method": f"simulated: {sim.method}", "quantity": "power", "value": sim.power, "n_per_arm": n_sim,
                     "power": sim.power, "mc_se": sim.mc_se, "n_sims": sim.n_sims, "seed": sim.seed})
    frame = pd.DataFrame(rows).reindex(columns=["method", "quantity", "value", "n_per_arm", "power", "mc_se", "n_sims", "seed"])
    frame.insert(1, "d", d)
    frame.insert(2, "alpha", alpha)
    table = Table(title=f"Power and sample size (d = {d:g}, two-sided alpha = {alpha:g})")
    for column in ("method", "quantity", "value", "n_per_arm", "power", "mc_se"):
        table.add_column(column)
    for row in frame.itertuples(index=False):
        table.add_row(row.method, row.quantity, f"{row.value:.6g}", f"{row.n_per_arm:g}",
                      "" if pd.isna(row.power) else f"{row.power:.4f}", "" if pd.isna(row.mc_se) else f"{row.mc_se:.4f}")
    finish()
    typer.echo(_render(table))
    if out is not None:
        _write_power_outputs(frame, d, n_use, r, alpha, out, seed if simulate else None)


def _power_grid(grid: str, simulate: int, seed: int, alpha: float, engine: str, scheduler: str | None, out: Path | None) -> None:
    from analysis.engine.power_grid import run_power_grid

    stage(f"simulate {simulate:,} trials per grid point ({engine} engine)")
    frame, where = run_power_grid(grid, simulate, seed, alpha, engine=engine, scheduler=scheduler)
    finish()
    typer.echo(frame.to_string(index=False))
    if out is not None:
        from analysis.core.output import staged_directory, write_table, write_text

        with staged_directory(out, inputs=(), kind="power") as staging:
            write_table(frame, staging / "power_grid.csv")
            manifest = {**_power_manifest(staging, seed), "grid": grid, "engine": where}
            write_text(staging / "manifest.json", json.dumps(manifest, indent=2) + "\n")
        console.print(f"[green]written:[/] {escape(str(out))}/power_grid.csv")


def _render(table: Table) -> str:
    from rich.console import Console

    buffer = Console(width=140, record=True, file=io.StringIO())
    buffer.print(table)
    return buffer.export_text()


def _write_power_outputs(
    frame: pd.DataFrame, d: float, n_use: float, r: float | None, alpha: float, out: Path, seed: int | None
) -> None:
    stage("power curves")
    import matplotlib
    import numpy as np

    matplotlib.use("Agg")

    from analysis.core.output import staged_directory, write_table, write_text
    from analysis.reporting.figures import save_figure
    from analysis.reporting.power import plot_power_curve
    from analysis.stats import power as pw

    top = max(int(math.ceil(n_use)) * 2, 20)
    grid = sorted({int(x) for x in np.linspace(4, top, 40)})
    sizes = sorted({round(d * f, 3) for f in (0.75, 1.0, 1.25)})
    with staged_directory(out, inputs=(), kind="power") as staging:
        write_table(frame, staging / "power.csv")
        curve = pw.power_curve(sizes, grid, r=r, alpha=alpha)
        write_table(curve, staging / "power_curve.csv")
        save_figure(plot_power_curve(curve).figure, staging / "power_curve")  # its own size: 960 CSS px
        write_text(staging / "manifest.json", json.dumps(_power_manifest(staging, seed), indent=2) + "\n")
    finish()
    console.print(f"[green]written:[/] {escape(str(out))}/power.csv, power_curve.csv, power_curve.png/svg")


def _power_manifest(folder: Path, seed: int | None) -> dict:
    """Provenance of a power run: the command (all parameters), seed, versions, files written."""
    from analysis.core.provenance import package_versions, sha256_file

    files = sorted(p for p in folder.rglob("*") if p.is_file())
    return {
        "command": ["trialkit", *sys.argv[1:]],
        "seed": seed,
        "python": sys.version.split()[0],
        "packages": package_versions(),
        "files": [{"path": str(p.relative_to(folder)), "sha256": sha256_file(p)} for p in files],
    }
