"""Output safety: trialkit replaces a folder only if it made it, and never overwrites or deletes an input.

The incident these tests come from: ``trialkit run plan.yaml --out DIR`` with DIR the folder that held
the plan and the data files (and, by chance, someone else's ``manifest.json``) succeeded and
replaced DIR, deleting ``participants.csv`` and ``measurements.csv``; ``--out .`` and ``--out ..``
crashed with an internal error.

Rules checked here (``analysis.core.output.check_output_directory``, ``staged_directory`` and
``analysis.core.filesystem.refuse_overwriting_inputs``):

* a folder may be replaced only if it is absent, empty, carries trialkit's ``.trialkit-output``
  marker (or lies inside a folder that does), or is an output from before the marker (its
  ``manifest.json`` is trialkit's: ``trialkit_version``, or ``trialkit`` among its ``packages``);
* never a folder that is or holds an input of the run (plan, data files, REDCap dictionary,
  adverse events, a published-results plan), trialkit's own contracts and notebooks, the working
  directory, the home directory or the file-system root, compared as real paths;
* a single output file is never one of the command's inputs;
* every refusal is exit code 2 and one sentence naming the path and the reason, without traceback,
  and leaves every file as it was.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from analysis.cli import run_cli
from analysis.core.filesystem import OutputRefusedError, refuse_overwriting_inputs
from analysis.core.output import (
    MARKER,
    check_output_directory,
    is_trialkit_output,
    staged_directory,
)
from tests.conftest import EXAMPLE_PLAN, REPO, SMALL_PLAN
from tests.test_bad_inputs import M, P

STUDIES = REPO / "data" / "studies"
EXAMPLES = REPO / "data" / "examples" / "precision-release-sim"
POWER = ["power", "--d", "0.5", "--n", "20"]


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` (hidden ones included) with its bytes, by relative path."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def write_trial(folder: Path, plan: str = SMALL_PLAN) -> Path:
    """A small valid trial (runs end to end in about a second): plan.yaml + the two CSV files."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "participants.csv").write_text(P, encoding="utf-8")
    (folder / "measurements.csv").write_text(M, encoding="utf-8")
    (folder / "plan.yaml").write_text(plan, encoding="utf-8")
    return folder / "plan.yaml"


def refused(code: int, capsys, *fragments: str) -> str:
    """Exit 2, one message naming each fragment, no traceback; returns stderr."""
    captured = capsys.readouterr()
    text = captured.out + captured.err
    assert code == 2, text
    assert "Traceback" not in text and "internal error" not in text, text
    for fragment in fragments:
        assert fragment in captured.err, text
    return captured.err


def no_staging_left(folder: Path) -> None:
    left = [p.name for p in folder.iterdir() if p.name.endswith((".partial", ".previous", ".part"))]
    assert left == [], left


# ---------------------------------------------------------------------------------------------
# The incident and its relative forms


def test_the_incident_a_folder_with_the_inputs_and_a_foreign_manifest_is_not_replaced(tmp_path, capsys):
    plan = write_trial(tmp_path / "study")
    study = plan.parent
    (study / "manifest.json").write_text('{"project": "someone else\'s manifest"}')
    before = snapshot(study)
    code = run_cli(["run", str(plan), "--out", str(study), "--no-report"])
    refused(code, capsys, f"'{study.resolve()}'", "an input of this run")
    assert snapshot(study) == before
    no_staging_left(tmp_path)


@pytest.mark.parametrize(
    ("cwd", "out"),
    [("study", "."), ("study", "./"), ("study/sub", ".."), ("elsewhere", "../study"), ("study/sub", "../../study")],
)
def test_relative_forms_of_the_input_folder_are_refused_not_a_crash(tmp_path, capsys, monkeypatch, cwd, out):
    plan = write_trial(tmp_path / "study")
    (tmp_path / "study" / "sub").mkdir()
    (tmp_path / "elsewhere").mkdir()
    before = snapshot(tmp_path)
    monkeypatch.chdir(tmp_path / cwd)
    code = run_cli(["run", str(plan), "--out", out, "--no-report"])
    refused(code, capsys, str((tmp_path / "study").resolve()))
    assert snapshot(tmp_path) == before
    no_staging_left(tmp_path)


def test_a_symbolic_link_to_the_input_folder_is_judged_by_the_folder_it_names(tmp_path, capsys):
    plan = write_trial(tmp_path / "study")
    link = tmp_path / "results"
    link.symlink_to(tmp_path / "study", target_is_directory=True)
    before = snapshot(tmp_path / "study")
    code = run_cli(["run", str(plan), "--out", str(link), "--no-report"])
    refused(code, capsys, "an input of this run")
    assert snapshot(tmp_path / "study") == before and link.is_symlink()


def test_a_folder_holding_only_the_data_or_an_ancestor_of_the_inputs_is_refused(tmp_path, capsys):
    plans, data = tmp_path / "plans", tmp_path / "data"
    write_trial(data)
    (data / "plan.yaml").unlink()
    plans.mkdir()
    plan = plans / "plan.yaml"
    plan.write_text(SMALL_PLAN.replace("path: participants.csv", "path: ../data/participants.csv")
                    .replace("path: measurements.csv", "path: ../data/measurements.csv"), encoding="utf-8")
    before = snapshot(tmp_path)
    for out in (data, tmp_path):
        code = run_cli(["run", str(plan), "--out", str(out), "--no-report"])
        refused(code, capsys, f"'{out.resolve()}'", "an input of this run")
    assert snapshot(tmp_path) == before


def test_an_input_folder_is_refused_even_when_it_carries_the_marker(tmp_path):
    old = tmp_path / "old-output"
    old.mkdir()
    (old / MARKER).write_text('{"tool": "trialkit", "kind": "run"}')
    (old / "participants.csv").write_text(P)  # the user keeps their data in an old output folder
    with pytest.raises(OutputRefusedError, match="an input of this run"), \
            staged_directory(old, inputs=[old / "participants.csv"]) as stage:
        (stage / "x.txt").write_text("new")
    assert (old / "participants.csv").read_text() == P


# ---------------------------------------------------------------------------------------------
# The working directory, the home directory, the root, trialkit's own files


def test_the_working_directory_and_its_ancestors_are_never_replaced(tmp_path, capsys, monkeypatch):
    work = tmp_path / "a" / "work"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    for out in (".", str(work), "..", str(tmp_path / "a")):
        code = run_cli([*POWER, "--out", out])
        refused(code, capsys, "the current working directory")
    assert work.is_dir() and sorted(p.name for p in (tmp_path / "a").iterdir()) == ["work"]


def test_the_home_directory_and_its_ancestors_are_never_replaced(tmp_path, capsys, monkeypatch):
    home = tmp_path / "users" / "me"
    home.mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    for out in (home, tmp_path / "users"):
        refused(run_cli([*POWER, "--out", str(out)]), capsys, "your home directory", f"'{out.resolve()}'")
    assert home.is_dir()


def test_the_file_system_root_is_never_an_output_folder(capsys):
    refused(run_cli([*POWER, "--out", "/"]), capsys, "'/'", "file-system root")
    with pytest.raises(OutputRefusedError, match="file-system root"):
        check_output_directory("/")


@pytest.mark.parametrize("folder", [REPO / "data" / "schemas", REPO / "data", REPO, REPO / "notebooks",
                                    REPO / "data" / "examples", REPO / "templates"])
def test_trialkits_own_bundled_files_are_protected(folder):
    with pytest.raises(OutputRefusedError, match="trialkit's (data contracts|report notebooks|example data|study template)"):
        check_output_directory(folder)


# ---------------------------------------------------------------------------------------------
# Which existing folders may be replaced


@pytest.mark.parametrize(
    "manifest",
    ["not json at all", "{}", '{"name": "my project", "version": 3}', "[1, 2, 3]",
     '{"packages": {"numpy": "2.0"}}', '{"trialkit": "no"}'],
)
def test_a_manifest_that_is_not_trialkits_does_not_make_a_folder_replaceable(tmp_path, manifest):
    folder = tmp_path / "documents"
    folder.mkdir()
    (folder / "manifest.json").write_text(manifest)
    (folder / "thesis.docx").write_text("years of work")
    assert not is_trialkit_output(folder)
    with pytest.raises(OutputRefusedError, match="not a trialkit output"), \
            staged_directory(folder, inputs=()) as stage:
        (stage / "a.txt").write_text("new")
    assert sorted(p.name for p in folder.iterdir()) == ["manifest.json", "thesis.docx"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["documents"]


@pytest.mark.parametrize("marker", ["", "trialkit", '{"tool": "other"}', '["trialkit"]'])
def test_a_marker_that_is_not_trialkits_is_refused(tmp_path, marker):
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / MARKER).write_text(marker)
    (folder / "notes.txt").write_text("mine")
    with pytest.raises(OutputRefusedError), staged_directory(folder, inputs=()):
        pass
    assert (folder / "notes.txt").read_text() == "mine"


@pytest.mark.parametrize(
    "manifest",
    ['{"trialkit_version": "0.1.0", "files": []}', '{"command": ["trialkit", "power"], "packages": {"trialkit": "0.1.0"}}'],
    ids=["run-or-grant-report", "replicate-or-power"],
)
def test_outputs_from_before_the_marker_are_still_replaced(tmp_path, manifest):
    folder = tmp_path / "reports"
    folder.mkdir()
    (folder / "manifest.json").write_text(manifest)
    (folder / "tables.csv").write_text("old")
    with staged_directory(folder, inputs=(), kind="run") as stage:
        (stage / "tables.csv").write_text("new")
    assert sorted(p.name for p in folder.iterdir()) == [MARKER, "tables.csv"]
    assert (folder / "tables.csv").read_text() == "new"


def test_the_marker_is_written_and_makes_the_next_replacement_possible(tmp_path):
    folder = tmp_path / "out"
    for round_ in ("first", "second"):
        with staged_directory(folder, inputs=(), kind="power") as stage:
            assert not (stage / MARKER).exists()  # written after the body, before the swap
            (stage / "power.csv").write_text(round_)
        assert json.loads((folder / MARKER).read_text()) == {"tool": "trialkit", "kind": "power"}
        assert (folder / "power.csv").read_text() == round_
    no_staging_left(tmp_path)


def test_no_marker_when_the_body_fails(tmp_path):
    folder = tmp_path / "out"
    with pytest.raises(RuntimeError), staged_directory(folder, inputs=()) as stage:
        (stage / "a.csv").write_text("partial")
        raise RuntimeError("a stage failed")
    assert not folder.exists()
    assert list(tmp_path.iterdir()) == []


def test_a_folder_inside_a_trialkit_output_may_be_replaced(tmp_path):
    run = tmp_path / "run"
    (run / "adam").mkdir(parents=True)
    (run / MARKER).write_text('{"tool": "trialkit", "kind": "run"}')
    (run / "adam" / "adsl.xpt").write_text("old export")
    with staged_directory(run / "adam", inputs=(), kind="adam") as stage:
        (stage / "adsl.xpt").write_text("new export")
    assert (run / "adam" / "adsl.xpt").read_text() == "new export"


def test_refusals_happen_before_the_body_runs(tmp_path):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "keep.txt").write_text("keep")
    ran = []
    with pytest.raises(OutputRefusedError), staged_directory(folder, inputs=()):
        ran.append(True)
    assert ran == []


# ---------------------------------------------------------------------------------------------
# Every command that writes a folder passes its inputs and marks what it writes


def test_run_marks_its_output_and_replaces_it_on_the_next_run(tmp_path, capsys):
    plan = write_trial(tmp_path / "study")
    out = tmp_path / "out"
    for _ in range(2):
        assert run_cli(["run", str(plan), "--out", str(out), "--no-report"]) == 0
        assert json.loads((out / MARKER).read_text()) == {"tool": "trialkit", "kind": "run"}
    manifest = json.loads((out / "manifest.json").read_text())
    assert MARKER not in {entry["path"] for entry in manifest["files"]}  # the marker is not an output table


def test_grant_report_refuses_the_folder_of_its_plan_or_of_its_adverse_events_file(tmp_path, capsys):
    plan = write_trial(tmp_path / "study")
    code = run_cli(["grant-report", str(plan), "--period-end", "2024-01-01", "--out", str(plan.parent)])
    refused(code, capsys, "an input of this run")
    events = tmp_path / "safety"
    events.mkdir()
    (events / "ae.csv").write_text("participant_id,term,category,serious\nP1,Back pain,Musculoskeletal,no\n")
    with_events = write_trial(tmp_path / "study2", SMALL_PLAN + "reporting:\n  adverse_events: {path: ../safety/ae.csv}\n")
    before = snapshot(tmp_path)
    code = run_cli(["grant-report", str(with_events), "--period-end", "2024-01-01", "--out", str(events)])
    refused(code, capsys, f"'{events.resolve()}'", "ae.csv")
    assert snapshot(tmp_path) == before


def test_grant_report_marks_its_output(tmp_path):
    out = tmp_path / "grant"
    assert run_cli(["grant-report", str(EXAMPLE_PLAN), "--period-end", "2023-12-31", "--out", str(out), "--no-report"]) == 0
    assert json.loads((out / MARKER).read_text())["kind"] == "grant-report"


def test_run_refuses_the_folder_of_a_redcap_data_dictionary(tmp_path, capsys):
    plans, export, dictionary = tmp_path / "plans", tmp_path / "export", tmp_path / "dictionary"
    for folder in (plans, export, dictionary):
        folder.mkdir()
    shutil.copy(EXAMPLES / "redcap" / "export.csv", export / "export.csv")
    shutil.copy(EXAMPLES / "redcap" / "dictionary.csv", dictionary / "dictionary.csv")
    text = (STUDIES / "example-precision-release-redcap.yaml").read_text(encoding="utf-8")
    text = text.replace("../examples/precision-release-sim/redcap/export.csv", "../export/export.csv")
    text = text.replace("../examples/precision-release-sim/redcap/dictionary.csv", "../dictionary/dictionary.csv")
    (plans / "plan.yaml").write_text(text, encoding="utf-8")
    before = snapshot(tmp_path)
    code = run_cli(["run", str(plans / "plan.yaml"), "--out", str(dictionary), "--no-report"])
    refused(code, capsys, "dictionary.csv", "an input of this run")
    assert snapshot(tmp_path) == before


def test_export_adam_refuses_to_replace_the_adam_files_it_reads_and_marks_what_it_writes(tmp_path, capsys):
    study = tmp_path / "study"
    shutil.copytree(EXAMPLES / "adam", study / "adam")
    text = (STUDIES / "example-precision-release-adam.yaml").read_text(encoding="utf-8")
    (study / "plan.yaml").write_text(text.replace("../examples/precision-release-sim/adam/", "adam/"), encoding="utf-8")
    before = snapshot(study)
    refused(run_cli(["export-adam", str(study / "plan.yaml"), "--out", str(study)]), capsys, "an input of this run")
    assert snapshot(study) == before
    # into a folder of its own: adam/ is written, marked, and replaced by the next export
    out = tmp_path / "export"
    for _ in range(2):
        assert run_cli(["export-adam", str(write_trial(tmp_path / "small")), "--out", str(out)]) == 0
    assert sorted(p.name for p in (out / "adam").iterdir()) == [MARKER, "adbds.csv", "adbds.xpt", "adsl.csv", "adsl.xpt"]
    assert json.loads((out / "adam" / MARKER).read_text())["kind"] == "adam"


def test_export_adam_into_a_run_folder_replaces_only_its_adam_subfolder(tmp_path):
    plan = write_trial(tmp_path / "study")
    out = tmp_path / "out"
    assert run_cli(["run", str(plan), "--out", str(out), "--no-report"]) == 0
    tables = snapshot(out / "tables")
    assert run_cli(["export-adam", str(plan), "--out", str(out)]) == 0
    assert snapshot(out / "tables") == tables


def test_simulate_refuses_the_folder_of_its_plan_and_marks_what_it_writes(tmp_path, capsys):
    study = tmp_path / "study"
    study.mkdir()
    plan = study / "plan.yaml"
    plan.write_text(EXAMPLE_PLAN.read_text(encoding="utf-8"), encoding="utf-8")
    refused(run_cli(["simulate", str(plan), "--seed", "1", "--out", str(study)]), capsys, "an input of this run")
    assert sorted(p.name for p in study.iterdir()) == ["plan.yaml"]
    out = tmp_path / "simulated"
    assert run_cli(["simulate", str(plan), "--seed", "1", "--out", str(out)]) == 0
    assert json.loads((out / MARKER).read_text())["kind"] == "simulate"
    assert {"participants.csv", "measurements.csv"} <= {p.name for p in out.iterdir()}


def test_simulate_never_writes_its_data_over_its_own_plan(tmp_path, capsys):
    plan = tmp_path / "plan.yaml"
    text = (EXAMPLE_PLAN.read_text(encoding="utf-8").replace("path: ../examples/precision-release-sim/participants.csv", "{path: plan.yaml, format: csv}")
            .replace("../examples/precision-release-sim/measurements.csv", "measurements.csv"))
    plan.write_text(text, encoding="utf-8")
    refused(run_cli(["simulate", str(plan), "--seed", "1"]), capsys, "is an input of this command")
    assert plan.read_text(encoding="utf-8") == text


def test_simulate_and_replicate_from_a_published_plan_refuse_its_folder(tmp_path, capsys):
    published = tmp_path / "papers" / "paper.yaml"
    published.parent.mkdir()
    shutil.copy(STUDIES / "redefined-protocol-2023.yaml", published)
    before = snapshot(published.parent)
    refused(run_cli(["simulate", str(published), "--seed", "3", "--out", str(published.parent)]), capsys, "an input of this run")
    refused(run_cli(["replicate", str(published), "--out", str(published.parent), "--no-report"]), capsys,
            "an input of this run")
    refused(run_cli(["replicate", str(published), "--out", str(tmp_path), "--no-report"]), capsys, "an input of this run")
    assert snapshot(published.parent) == before
    no_staging_left(tmp_path)


def test_replicate_marks_its_output_and_the_run_inside_it(tmp_path):
    out = tmp_path / "replication"
    assert run_cli(["replicate", str(STUDIES / "redefined-protocol-2023.yaml"), "--out", str(out), "--no-report"]) == 0
    assert json.loads((out / MARKER).read_text())["kind"] == "replicate"
    assert json.loads((out / "run" / MARKER).read_text())["kind"] == "run"


def test_power_marks_its_output(tmp_path):
    out = tmp_path / "power"
    assert run_cli([*POWER, "--out", str(out)]) == 0
    assert json.loads((out / MARKER).read_text()) == {"tool": "trialkit", "kind": "power"}


# ---------------------------------------------------------------------------------------------
# Single output files never overwrite an input of the same command

ARMS = "study,n1i,m1i,sd1i,n2i,m2i,sd2i\nA,20,5.1,1.2,21,4.2,1.3\nB,30,6.0,1.5,29,5.1,1.4\nC,25,5.5,1.1,25,5.0,1.2\n"


@pytest.mark.parametrize("form", ["same", "dot-slash", "absolute", "symlink"])
def test_escalc_never_overwrites_its_input(tmp_path, capsys, monkeypatch, form):
    monkeypatch.chdir(tmp_path)
    data = tmp_path / "data.csv"
    data.write_text(ARMS)
    (tmp_path / "link.csv").symlink_to(data)
    output = {"same": "data.csv", "dot-slash": "./data.csv", "absolute": str(data), "symlink": "link.csv"}[form]
    code = run_cli(["escalc", "--measure", "SMD", "--input", "data.csv", "--output", output])
    refused(code, capsys, "--output", "is an input of this command")
    assert data.read_text() == ARMS and (tmp_path / "link.csv").is_symlink()


def test_meta_never_overwrites_its_input_and_gives_each_output_its_own_file(tmp_path, capsys):
    effects = tmp_path / "effects.csv"
    effects.write_text("study,yi,vi\nA,0.5,0.04\nB,0.3,0.05\nC,0.4,0.03\n")
    refused(run_cli(["meta", "--input", str(effects), "--output", str(effects)]), capsys, "--output", "is an input")
    refused(run_cli(["meta", "--input", str(effects), "--output", str(tmp_path / "x.png"), "--forest", str(tmp_path / "x.png")]),
            capsys, "--forest", "same file as --output")
    assert effects.read_text().startswith("study,yi,vi")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["effects.csv"]


def test_plan_from_redcap_never_overwrites_the_dictionary_or_the_export(tmp_path, capsys):
    dictionary, export = tmp_path / "dictionary.csv", tmp_path / "export.csv"
    shutil.copy(EXAMPLES / "redcap" / "dictionary.csv", dictionary)
    shutil.copy(EXAMPLES / "redcap" / "export.csv", export)
    before = snapshot(tmp_path)
    for out in (dictionary, export):
        code = run_cli(["plan-from-redcap", str(dictionary), "--export", str(export), "--out", str(out)])
        refused(code, capsys, f"--out '{out}'", "is an input of this command")
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("valid", [True, False], ids=["valid-data", "invalid-data"])
def test_validate_never_writes_its_failure_table_over_a_data_file_or_the_plan(tmp_path, capsys, valid):
    plan = write_trial(tmp_path / "study")
    if not valid:
        (tmp_path / "study" / "measurements.csv").write_text(M.replace("P1,w4,pain,4", "P1,w4,pain,four"))
    before = snapshot(tmp_path)
    for target in ("measurements.csv", "participants.csv", "plan.yaml"):
        code = run_cli(["validate", str(plan), "--failures", str(tmp_path / "study" / target)])
        refused(code, capsys, "the failure table", "is an input of this command")
    assert snapshot(tmp_path) == before


def test_the_overwrite_check_is_by_real_path():
    with pytest.raises(OutputRefusedError, match="is an input of this command"):
        refuse_overwriting_inputs({"--output": REPO / "tests" / ".." / "tests" / "conftest.py"}, [REPO / "tests" / "conftest.py"])
    refuse_overwriting_inputs({"--output": None, "--forest": Path("a.png")}, [Path("a.csv")])  # no error
