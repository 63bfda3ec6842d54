"""The study folder of ``trialkit init`` (analysis/scaffold.py, templates/study/): what it holds,
that its plan is the example trial's, that every plan key is documented, and what it refuses."""

from __future__ import annotations

import re
import types
import typing
from pathlib import Path

import pytest
from pydantic import BaseModel

from analysis.core.errors import UsageError
from analysis.core.filesystem import FileSystemError
from analysis.core.output import write_bytes
from analysis.plan import load_plan
from analysis.plan.study import Plan
from analysis.scaffold import scaffold_study, study_id
from tests.conftest import EXAMPLE_PLAN, REPO

EXAMPLE_DATA = REPO / "data" / "examples" / "precision-release-sim"
TEMPLATE = REPO / "templates" / "study"

FILES = [".gitignore", "Makefile", "README.md", "data/raw/measurements.csv", "data/raw/participants.csv",
         "notebooks/analysis.ipynb", "plan.yaml"]


def files_in(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def test_the_study_folder_holds_plan_raw_data_notebook_makefile_readme(tmp_path):
    written = scaffold_study(tmp_path / "knee-trial")
    folder = tmp_path / "knee-trial"
    assert files_in(folder) == FILES
    assert sorted(p.relative_to(folder).as_posix() for p in written) == FILES
    for name in ("participants.csv", "measurements.csv"):  # the bundled SIMULATED example, as it is
        assert (folder / "data" / "raw" / name).read_bytes() == (EXAMPLE_DATA / name).read_bytes()
    readme = (folder / "README.md").read_text(encoding="utf-8")
    assert readme.startswith("# knee-trial\n") and "SIMULATED" in readme and "never modified" in readme
    assert "{{" not in readme + (folder / "plan.yaml").read_text(encoding="utf-8")
    makefile = (folder / "Makefile").read_text(encoding="utf-8")
    for target in ("validate:", "run:", "report:"):
        assert target in makefile


def test_the_plan_is_the_example_trials_plan_reading_data_raw(tmp_path):
    scaffold_study(tmp_path / "s")
    ours = load_plan(tmp_path / "s" / "plan.yaml").plan
    example = load_plan(EXAMPLE_PLAN).plan
    # the same analysis as the bundled example plan, so `trialkit run` gives the same tables
    assert ours.model_dump(exclude={"study", "data"}) == example.model_dump(exclude={"study", "data"})
    assert (ours.study.id, ours.study.simulated) == ("s", True)
    assert (ours.data.participants.path, ours.data.measurements.path) == ("data/raw/participants.csv", "data/raw/measurements.csv")


def _plan_keys(model: type[BaseModel], seen: set[type]) -> set[str]:
    """Every key of a plan mapping and of the mappings inside it."""
    seen.add(model)
    keys = set()
    for name, field in model.model_fields.items():
        keys.add(name)
        stack = [field.annotation]
        while stack:
            annotation = stack.pop()
            if isinstance(annotation, type) and issubclass(annotation, BaseModel) and annotation not in seen:
                keys |= _plan_keys(annotation, seen)
            stack.extend(typing.get_args(annotation) if not isinstance(annotation, types.NoneType) else ())
    return keys


def test_the_template_plan_names_every_plan_key():
    """A key added to the plan models must be explained in templates/study/plan.yaml too."""
    text = (TEMPLATE / "plan.yaml").read_text(encoding="utf-8")
    missing = sorted(key for key in _plan_keys(Plan, set()) if not re.search(rf"(^|[\s{{,]){re.escape(key)}:", text, re.M))
    assert missing == []


@pytest.mark.parametrize(("name", "expected"), [("study", "study"), ("My Study (2026)", "My-Study-2026"),
                                                ("_trial.", "trial"), ("***", "study")])
def test_study_id_comes_from_the_folder_name(tmp_path, name, expected):
    assert study_id(tmp_path / name) == expected


def test_an_existing_empty_folder_is_filled(tmp_path):
    (tmp_path / "empty").mkdir()
    scaffold_study(tmp_path / "empty")
    assert files_in(tmp_path / "empty") == FILES


def test_a_folder_with_anything_in_it_is_refused_and_left_alone(tmp_path):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / ".keep").write_text("x")
    with pytest.raises(UsageError, match="already exists and is not empty"):
        scaffold_study(folder)
    assert files_in(folder) == [".keep"]
    (tmp_path / "file").write_text("x")
    with pytest.raises(FileSystemError, match="it is a file, not a directory"):
        scaffold_study(tmp_path / "file")


@pytest.mark.parametrize("existing", [False, True])
def test_a_failed_write_leaves_the_folder_as_it_was(tmp_path, monkeypatch, existing):
    import analysis.scaffold as scaffold

    folder = tmp_path / "s"
    if existing:
        folder.mkdir()
    written = []

    def disk_full_at_the_fourth_file(path, data):
        if len(written) == 3:
            raise FileSystemError(f"cannot write to '{path}': no space left on device", path, "no space left on device")
        written.append(write_bytes(path, data))
        return path

    monkeypatch.setattr(scaffold, "write_bytes", disk_full_at_the_fourth_file)
    with pytest.raises(FileSystemError, match="no space left on device"):
        scaffold_study(folder)
    assert len(written) == 3
    assert folder.is_dir() == existing
    assert not existing or files_in(folder) == []


def test_from_redcap_copies_dictionary_and_export_and_drafts_the_plan(tmp_path):
    redcap = EXAMPLE_DATA / "redcap"
    scaffold_study(tmp_path / "r", redcap_dictionary=redcap / "dictionary.csv", redcap_export=redcap / "export.csv")
    folder = tmp_path / "r"
    assert "data/raw/export.csv" in files_in(folder) and "data/raw/participants.csv" not in files_in(folder)
    for name in ("dictionary.csv", "export.csv"):
        assert (folder / "data" / "raw" / name).read_bytes() == (redcap / name).read_bytes()
    plan = (folder / "plan.yaml").read_text(encoding="utf-8")
    assert "export: data/raw/export.csv" in plan and "dictionary: data/raw/dictionary.csv" in plan
    assert "week12_arm_1: week12" in plan  # the export's events became visits
    assert "DRAFT" in (folder / "README.md").read_text(encoding="utf-8")


def test_from_redcap_with_a_missing_dictionary_writes_nothing(tmp_path):
    with pytest.raises(UsageError, match="does not exist"):
        scaffold_study(tmp_path / "r", redcap_dictionary=tmp_path / "nope.csv")
    assert not (tmp_path / "r").exists()
