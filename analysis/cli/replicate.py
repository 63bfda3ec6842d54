"""``trialkit replicate``: what a published trial's headline figures imply, and a calibrated replication."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape

from analysis.cli import app, console
from analysis.cli.progress import finish, stage

PLAN = typer.Argument(
    ..., metavar="PLAN", help="A published-results plan (YAML), e.g. data/studies/precision-release-2023.yaml."
)
OUT = typer.Option(..., "--out", metavar="DIR", help="Output directory (replaced as a whole when every step succeeds).")
SEED = typer.Option(
    None, "--seed", metavar="N", help="Seed of the participant-level draw.", show_default="the plan's replication.seed"
)
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
    result = replicate(plan, out, seed=seed, render_report=not no_report, progress=stage)
    finish()
    import pandas as pd

    from analysis.replicate.report import construction_text

    verdicts = result / "claim_verdicts.csv"
    if verdicts.exists():  # the claims table of replication.html, row by row: the same verdicts
        console.print(f"claims as printed, and how plausible they are (see {escape(str(verdicts))}):", soft_wrap=True)
        for row in pd.read_csv(verdicts).itertuples(index=False):
            console.print(f'  claim: "{escape(str(row.printed))}" ({escape(str(row.outcome))})', soft_wrap=True)
            console.print(f"    readings tried: {escape(str(row.readings))}", soft_wrap=True)
            console.print(f"    plausible under {escape(str(row.plausible_under))}", soft_wrap=True)
            console.print(f"    verdict: {escape(str(row.verdict))}", soft_wrap=True)
    check = result / "headline_check.csv"
    if check.exists():
        console.print(f"{escape(construction_text(pd.read_csv(check)))} (see {escape(str(check))})", soft_wrap=True)
    console.print(f"[green]done:[/] outputs in {escape(str(result))}")
