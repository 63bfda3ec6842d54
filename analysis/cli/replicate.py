"""``trialkit replicate``: what a published trial's headline figures imply, and a calibrated replication."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape

from analysis.cli import app, console

PLAN = typer.Argument(..., help="A published-results plan (YAML), e.g. data/studies/precision-release-2023.yaml.")
OUT = typer.Option(..., "--out", help="Output directory (replaced as a whole when every step succeeds).")
SEED = typer.Option(None, "--seed", help="Seed of the participant-level draw (default: the plan's replication.seed).")
NO_REPORT = typer.Option(False, "--no-report", help="Skip rendering the notebooks (replication.html, run/report.html).")


@app.command("replicate")
def replicate_command(plan: Path = PLAN, out: Path = OUT, seed: int = SEED, no_report: bool = NO_REPORT) -> None:
    """Implied effects, sensitivity to the assumptions, a calibrated SIMULATED replication run, and a notebook."""
    from analysis.cli.failures import beside_output, failures_go_to
    from analysis.replicate import replicate

    failures_go_to(beside_output(out))  # invalid data: reported by run_cli
    if seed is not None and not 0 <= seed < 2**32:
        from analysis.core.errors import UsageError

        raise UsageError(f"--seed must lie in [0, 2^32), got {seed}")
    result = replicate(plan, out, seed=seed, render_report=not no_report,
                       progress=lambda stage: console.print(f"[cyan]>[/] {stage}"))
    check = result / "headline_check.csv"
    if check.exists():
        import pandas as pd

        table = pd.read_csv(check)
        ok = int(table["within_tolerance"].sum())
        console.print(f"headline figures reproduced within tolerance: {ok} of {len(table)} (see {escape(str(check))})")
    console.print(f"[green]done:[/] outputs in {escape(str(result))}")
