"""Regenerate the bundled example trial and its REDCap and ADaM forms (``make fixtures``).

The three forms are made by the package from one seeded simulation, so they stay consistent;
tests check that the committed files equal what these functions produce.
"""

from __future__ import annotations

from pathlib import Path

from analysis.core.output import write_bytes
from analysis.core.resources import STUDIES_DIR
from analysis.pipeline import load_trial
from analysis.plan import load_plan
from analysis.replicate.simulate import write_simulated_trial
from analysis.reporting.adam import adam_adsl, adam_bds, xpt_bytes
from analysis.reporting.redcap import to_redcap, write_redcap

EXAMPLE_PLAN = STUDIES_DIR / "example-precision-release.yaml"
EXAMPLE_SEED = 20231112


def regenerate(plan_path: Path = EXAMPLE_PLAN, seed: int = EXAMPLE_SEED) -> list[Path]:
    """Simulate the example trial, then write its REDCap export + dictionary and ADaM XPT files
    into ``redcap/`` and ``adam/`` beside the simulated CSV files."""
    written = write_simulated_trial(load_plan(plan_path), seed)
    folder = written[0].parent
    trial = load_trial(plan_path)
    written += write_redcap(to_redcap(trial.participants, trial.measurements, trial.plan), folder / "redcap")
    for name, frame, label in (
        ("ADSL", adam_adsl(trial.participants, trial.plan), "Subject-Level Analysis Dataset"),
        ("ADBDS", adam_bds(trial.dataset, trial.participants, trial.plan), "Analysis Dataset (BDS)"),
    ):
        written.append(write_bytes(folder / "adam" / f"{name.lower()}.xpt", xpt_bytes(frame, name, label)))
    return written


if __name__ == "__main__":
    for path in regenerate():
        print(f"wrote {path}")
