"""Where trialkit finds its bundled files: data contracts, report notebooks, the example trial and
the study template.

The repository's ``data/schemas/``, ``notebooks/``, ``data/examples/precision-release-sim/``,
``data/studies/example-precision-release.yaml`` and ``templates/study/`` are the only copies kept
in git. Building the wheel copies them, in the same layout, into the package as
``analysis/_bundled/`` (``[tool.hatch.build.targets.wheel.force-include]`` in ``pyproject.toml``).
An installed wheel reads them from there; an editable install (``make setup``), which has no
``_bundled`` folder, reads the repository's own files.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def _resources_root() -> Path:
    """``analysis/_bundled`` inside an installed wheel, else the repository the package runs from."""
    bundled = resources.files("analysis") / "_bundled"
    if isinstance(bundled, Path) and bundled.is_dir():
        return bundled
    return Path(__file__).resolve().parents[2]


RESOURCES_ROOT = _resources_root()
SCHEMAS_DIR = RESOURCES_ROOT / "data" / "schemas"
NOTEBOOKS_DIR = RESOURCES_ROOT / "notebooks"
STUDIES_DIR = RESOURCES_ROOT / "data" / "studies"
EXAMPLES_DIR = RESOURCES_ROOT / "data" / "examples"
TEMPLATES_DIR = RESOURCES_ROOT / "templates"
EXAMPLE_PLAN = STUDIES_DIR / "example-precision-release.yaml"


def schema_path(name: str) -> Path:
    """Path of a data contract in ``data/schemas/`` (e.g. ``participants.yaml``)."""
    return SCHEMAS_DIR / name


def notebook_path(name: str) -> Path:
    """Path of a report template in ``notebooks/`` (e.g. ``report.ipynb``)."""
    return NOTEBOOKS_DIR / name
