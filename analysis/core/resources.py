"""Where trialkit finds the files that live beside the package in its repository."""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
SCHEMAS_DIR = REPO_ROOT / "data" / "schemas"
NOTEBOOKS_DIR = REPO_ROOT / "notebooks"
STUDIES_DIR = REPO_ROOT / "data" / "studies"


def schema_path(name: str) -> Path:
    """Path of a data contract in ``data/schemas/`` (e.g. ``participants.yaml``)."""
    return SCHEMAS_DIR / name


def notebook_path(name: str) -> Path:
    """Path of a report template in ``notebooks/`` (e.g. ``report.ipynb``)."""
    return NOTEBOOKS_DIR / name
