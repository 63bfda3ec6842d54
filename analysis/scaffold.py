"""``trialkit init``: a new study folder, from the study template bundled with trialkit.

The template is ``templates/study/`` (``analysis/_bundled/templates/study/`` in an installed wheel,
see :mod:`analysis.core.resources`): a commented ``plan.yaml``, a ``README.md``, a ``Makefile``
and ``notebooks/analysis.ipynb``. ``data/raw/`` receives the bundled SIMULATED example trial, so
the new folder runs at once; with a REDCap data dictionary it receives the dictionary (and the
export) instead, and ``plan.yaml`` is the draft of :func:`analysis.sources.redcap.draft_plan`.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from analysis.core.errors import UsageError
from analysis.core.filesystem import cannot, check_readable, real_path, reported_as
from analysis.core.output import make_directory, write_bytes
from analysis.core.resources import EXAMPLES_DIR, TEMPLATES_DIR

STUDY_TEMPLATE = TEMPLATES_DIR / "study"
EXAMPLE_DATA = EXAMPLES_DIR / "precision-release-sim"
EXAMPLE_FILES = ("participants.csv", "measurements.csv")
RAW = Path("data") / "raw"
# Template files whose {{name}} fields are filled in; ``gitignore`` is stored without its dot so that
# it does not apply to trialkit's own repository.
FILLED_IN = {"plan.yaml", "README.md"}
RENAMED = {"gitignore": ".gitignore"}

_DATA_NOTE = {
    "example": (
        "It runs as it is, on trialkit's **SIMULATED** example trial (120 synthetic participants; "
        "no real person's data), so you can see every output before your own data arrive:"
    ),
    "redcap": (
        "`plan.yaml` is a DRAFT made from the REDCap data dictionary in `data/raw/`: check every "
        "line marked CHECK and fill in every TODO (the keys and their allowed values are in "
        "trialkit's docs/plan.md), then:"
    ),
}


def study_id(folder: Path) -> str:
    """A plan ``study.id`` made from the folder's name (letters, digits, ``. _ -``).

    Examples
    --------
    >>> study_id(Path("trials/My Study (2026)"))
    'My-Study-2026'
    """
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", real_path(folder).name).strip("-_.")
    return name or "study"


def scaffold_study(folder: str | Path, *, redcap_dictionary: Path | None = None,
                   redcap_export: Path | None = None) -> list[Path]:
    """Make the study folder ``folder`` (absent or empty) and return the files written in it.

    Parameters
    ----------
    folder
        The new study folder; refused (:class:`UsageError`, exit code 2) if it exists and is not
        an empty folder.
    redcap_dictionary, redcap_export
        A REDCap data dictionary (and, optionally, the flat CSV export, whose events become the
        visits): copied into ``data/raw/``, and ``plan.yaml`` is drafted from them instead of the
        example plan.

    Raises
    ------
    UsageError
        ``folder`` is not absent or empty, or an input is missing.
    DataError
        The data dictionary or the export cannot be read as REDCap files (exit code 1).
    """
    folder = Path(folder)
    with reported_as("write to", folder):
        if folder.exists() and not folder.is_dir():
            raise cannot("write to", folder, "it is a file, not a directory")
        if folder.is_dir() and any(folder.iterdir()):
            raise UsageError(f"'{folder}' already exists and is not empty; trialkit init makes a new study folder, so name a new or empty one")
    if redcap_dictionary is None and redcap_export is not None:
        raise UsageError("--export needs --from-redcap DICTIONARY.csv")
    if redcap_dictionary is None:
        raw = {name: EXAMPLE_DATA / name for name in EXAMPLE_FILES}
        plan_text = None
        kind = "example"
    else:
        raw = {path.name: path for path in (redcap_dictionary, redcap_export) if path is not None}
        plan_text = _redcap_draft(redcap_dictionary, redcap_export)  # read before anything is written
        kind = "redcap"
    fields = {"study_id": study_id(folder), "data_note": _DATA_NOTE[kind]}
    created = not folder.exists()
    written: list[Path] = []
    try:
        make_directory(folder)
        for source in _template_files():
            relative = source.relative_to(STUDY_TEMPLATE)
            target = folder / relative.with_name(RENAMED.get(relative.name, relative.name))
            data = source.read_bytes()
            if relative.name in FILLED_IN:
                data = _fill_in(data.decode("utf-8"), fields, source).encode("utf-8")
            if relative.name == "plan.yaml" and plan_text is not None:
                data = plan_text.encode("utf-8")
            written.append(write_bytes(target, data))
        for name, source in raw.items():
            written.append(write_bytes(folder / RAW / name, source.read_bytes()))
    except BaseException:
        _undo(folder, created)
        raise
    return written


def _template_files() -> list[Path]:
    """The template's files, without what an editor leaves beside them (``.ipynb_checkpoints/``...)."""
    return sorted(p for p in STUDY_TEMPLATE.rglob("*") if p.is_file() and not any(
        part.startswith(".") or part == "__pycache__" for part in p.relative_to(STUDY_TEMPLATE).parts))


def _fill_in(text: str, fields: dict[str, str], source: Path) -> str:
    for name, value in fields.items():
        text = text.replace("{{" + name + "}}", value)
    left = re.findall(r"\{\{\w+\}\}", text)
    if left:
        raise RuntimeError(f"template {source} has unknown fields {sorted(set(left))}")
    return text


def _redcap_draft(dictionary: Path, export: Path | None) -> str:
    """The draft plan, with its paths pointing into ``data/raw/`` where the files are copied."""
    import pandas as pd

    from analysis.plan import DataFile
    from analysis.sources.files import read_file
    from analysis.sources.redcap import draft_plan, read_dictionary

    for path, what in ((dictionary, "the data dictionary"), (export, "the REDCap export")):
        if path is None:
            continue
        check_readable(path, what)
        if not path.is_file():
            raise UsageError(f"{what} '{path}' does not exist")
    if export is not None and export.name == dictionary.name:
        raise UsageError(f"the data dictionary and the export are both named '{dictionary.name}'; rename one")
    parsed = read_dictionary(dictionary.resolve())
    events = None
    if export is not None:
        table = read_file(DataFile(path=str(export.resolve()), format="csv"), Path.cwd(), "REDCap export")
        if "redcap_event_name" in table.frame:
            events = list(pd.unique(table.frame["redcap_event_name"].dropna()))
    export_text = (RAW / export.name).as_posix() if export is not None else (RAW / "TODO-export.csv").as_posix()
    return draft_plan(parsed, export_text, (RAW / dictionary.name).as_posix(), events)


def _undo(folder: Path, created: bool) -> None:
    """Leave ``folder`` as it was before (absent, or empty) after a failed scaffold."""
    if created:
        shutil.rmtree(folder, ignore_errors=True)
        return
    for child in folder.iterdir() if folder.is_dir() else ():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child, ignore_errors=True)
        else:
            child.unlink(missing_ok=True)
