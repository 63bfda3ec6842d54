"""Output paths of the commands, checked before any work is done: an output never overwrites an
input of the same command (see :mod:`analysis.core.output` for folders, :mod:`analysis.core.filesystem`
for files)."""

from __future__ import annotations

from pathlib import Path

from analysis.core.filesystem import refuse_overwriting_inputs
from analysis.core.output import beside


def failure_table_path(plan: Path, path: Path | None = None, *, beside_folder: Path | None = None) -> Path:
    """Where a command writes the full failure table: ``path``, or ``FOLDER.validation_failures.csv``
    beside its output folder; refused (exit code 2) if it is the plan or a file the plan names."""
    from analysis.plan import load_plan
    from analysis.plan.inputs import plan_inputs

    if path is None:
        if beside_folder is None:
            raise ValueError("give the failure table's path or the output folder it goes beside")
        path = beside(beside_folder, ".validation_failures.csv")
    refuse_overwriting_inputs({"the failure table": path}, plan_inputs(load_plan(plan)))
    return path
