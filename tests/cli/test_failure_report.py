"""One failure report everywhere: every command that meets invalid data prints the same table
(file, row, column, rule, value) and writes the same failure CSV (or, for the single-file commands,
prints it whole), and an empty input file is the same failure (exit code 1, row 1, rule
``file is empty``) whichever command reads it.

Where the failure CSV goes (analysis/cli/failures.py): beside the command's output folder
(``<out>.validation_failures.csv``), beside the recorded run's folder for ``verify``, at
``--failures`` for ``validate`` (default: beside ``reports/<study id>``, where ``run`` puts it);
never into the current working directory, never inside an output folder.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from analysis.cli import run_cli
from analysis.cli.failures import show_failures
from analysis.core.errors import FAILURE_COLUMNS, DataError
from tests.conftest import REPO, SMALL_PLAN
from tests.test_bad_inputs import SOURCE_DATA, M, P, _with_dates, source_files

BAD_DATE = _with_dates({4: "2023-02-30"})  # file row 4, P3
BAD_ROW = ["participants.csv", "4", "enrolled_on", "must be a real calendar date (YYYY-MM-DD)", "2023-02-30"]
EMPTY_ROW = ["1", "", "file is empty"]
NATIVE = "data:\n  participants:\n    path: participants.csv\n  measurements:\n    path: measurements.csv\n"


def table_rows(stderr: str) -> list[list[str]]:
    """The cells of every row of the failure tables printed on stderr."""
    rows = []
    for line in stderr.splitlines():
        if line.count("│") >= 4:
            rows.append([cell.strip() for cell in line.strip().strip("│").split("│")])
    return rows


@pytest.fixture
def work(tmp_path: Path, monkeypatch) -> Path:
    """An empty current directory: no command may write its failure table here."""
    folder = tmp_path / "work"
    folder.mkdir()
    monkeypatch.chdir(folder)
    return folder


def write_trial(folder: Path, participants: str = P, measurements: str = M, plan: str = SMALL_PLAN) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "participants.csv").write_text(participants, encoding="utf-8")
    (folder / "measurements.csv").write_text(measurements, encoding="utf-8")
    (folder / "plan.yaml").write_text(plan, encoding="utf-8")
    return folder / "plan.yaml"


def assert_reported(err: str, row: list[str]) -> None:
    assert "Failures per rule" in err and "header = row 1" in err, err
    assert row in table_rows(err), err
    assert "Traceback" not in err and "internal error" not in err


def assert_csv(path: Path, row: list[str]) -> None:
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    assert list(table.columns) == FAILURE_COLUMNS
    assert [[Path(table.iloc[0, 0]).name, *table.iloc[0, 1:].tolist()]] == [row]


# ------------------------------------------------------------------ the same table from every command


@pytest.mark.parametrize("command", ["validate", "run", "export-adam", "grant-report"])
def test_invalid_data_gives_the_same_table_and_csv_beside_the_output(command, tmp_path, work, capsys):
    plan = write_trial(tmp_path / "inputs", participants=BAD_DATE)
    out = tmp_path / "results" / "out"
    argv = {
        "validate": ["validate", str(plan)],
        "run": ["run", str(plan), "--out", str(out), "--no-report"],
        "export-adam": ["export-adam", str(plan), "--out", str(out)],
        "grant-report": ["grant-report", str(plan), "--period-end", "2023-12-31", "--out", str(out), "--no-report"],
    }[command]
    assert run_cli(argv) == 1
    err = capsys.readouterr().err
    assert_reported(err, BAD_ROW)
    expected = work / "reports" / "small.validation_failures.csv" if command == "validate" else out.with_name("out.validation_failures.csv")
    assert_csv(expected, BAD_ROW)
    assert f"written to {expected}" in " ".join(err.split()) or "written to reports" in err
    assert not out.exists()
    assert sorted(p.name for p in work.rglob("*") if p.is_file()) == (["small.validation_failures.csv"] if command == "validate" else [])


def test_validate_writes_where_failures_says(tmp_path, work, capsys):
    plan = write_trial(tmp_path / "inputs", participants=BAD_DATE)
    target = tmp_path / "checks" / "failures.csv"
    assert run_cli(["validate", str(plan), "--failures", str(target)]) == 1
    assert_reported(capsys.readouterr().err, BAD_ROW)
    assert_csv(target, BAD_ROW)
    assert list(work.iterdir()) == []


def test_verify_reports_data_that_became_invalid_like_run(tmp_path, work, capsys):
    plan = write_trial(tmp_path / "inputs")
    out = tmp_path / "results" / "run"
    assert run_cli(["run", str(plan), "--out", str(out), "--no-report"]) == 0
    (tmp_path / "inputs" / "participants.csv").write_text(BAD_DATE, encoding="utf-8")
    capsys.readouterr()
    assert run_cli(["verify", str(out / "manifest.json")]) == 1
    err = capsys.readouterr().err
    assert_reported(err, BAD_ROW)
    assert "1 validation failure(s) in the trial data" in err
    assert_csv(tmp_path / "results" / "run.validation_failures.csv", BAD_ROW)
    assert list(work.iterdir()) == []


def test_export_adam_from_redcap_names_the_export_cell(tmp_path, work, capsys):
    files = source_files("redcap")
    folder = tmp_path / "inputs"
    folder.mkdir()
    export = files["export.csv"].replace("P3,", "P3,", 1)
    lines = export.splitlines()
    header = lines[0].split(",")
    row = next(i for i, line in enumerate(lines) if line.startswith("P3,") and line.split(",")[header.index("age")])
    cells = lines[row].split(",")
    cells[header.index("age")] = "abc"
    lines[row] = ",".join(cells)
    (folder / "export.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (folder / "dictionary.csv").write_text(files["dictionary.csv"], encoding="utf-8")
    (folder / "plan.yaml").write_text(SMALL_PLAN.replace(NATIVE, SOURCE_DATA["redcap"]), encoding="utf-8")
    out = tmp_path / "out"
    assert run_cli(["export-adam", str(folder / "plan.yaml"), "--out", str(out)]) == 1
    err = capsys.readouterr().err
    rows = [r for r in table_rows(err) if r[:3] == ["export.csv", str(row + 1), "age"]]
    assert rows and rows[0][4] == "abc", err
    assert (tmp_path / "out.validation_failures.csv").is_file() and not out.exists()


@pytest.mark.parametrize("command", ["escalc", "meta"])
def test_effect_size_commands_print_the_same_table_and_write_nothing(command, tmp_path, work, capsys):
    effects = tmp_path / "effects.csv"
    if command == "escalc":
        effects.write_text("study,n1i,m1i,sd1i,n2i,m2i,sd2i\nA,20,5,-1,20,4,1\nB,20,5,1,20,4,1\n", encoding="utf-8")
        argv = ["escalc", "--measure", "MD", "--input", str(effects), "--output", str(tmp_path / "out" / "es.csv")]
        expected = ["effects.csv", "2", "sd1i"]
    else:
        effects.write_text("study,yi,vi\nA,0.5,-0.04\nB,0.2,0.03\n", encoding="utf-8")
        argv = ["meta", "--input", str(effects), "--output", str(tmp_path / "out" / "meta.csv")]
        expected = ["effects.csv", "2", "vi"]
    assert run_cli(argv) == 1
    err = capsys.readouterr().err
    assert "Failures per rule" in err
    assert any(r[:3] == expected for r in table_rows(err)), err
    assert not (tmp_path / "out").exists() and list(work.iterdir()) == []


def test_plan_from_redcap_reports_a_bad_dictionary_as_a_table(tmp_path, work, capsys):
    dictionary = source_files("redcap")["dictionary.csv"]
    lines = dictionary.splitlines()
    path = tmp_path / "dictionary.csv"
    path.write_text("\n".join([*lines, lines[1]]) + "\n", encoding="utf-8")  # the first field again
    assert run_cli(["plan-from-redcap", str(path), "--out", str(tmp_path / "draft.yaml")]) == 1
    err = capsys.readouterr().err
    field = lines[1].split(",")[0]
    assert [r for r in table_rows(err) if r[1:5] == [str(len(lines) + 1), "Variable / Field Name", "field names must be unique", field]], err
    assert not (tmp_path / "draft.yaml").exists() and list(work.iterdir()) == []


def test_show_failures_lists_the_first_20_when_a_csv_has_all(tmp_path, capsys):
    failures = pd.DataFrame([["f.csv", i, "x", "must be a number", str(i)] for i in range(2, 40)], columns=FAILURE_COLUMNS)
    show_failures(DataError("38 problems", failures), tmp_path / "all.csv")
    err = capsys.readouterr().err
    assert len([r for r in table_rows(err) if r[0] == "f.csv" and r[2] == "x" and r[3] == "must be a number"]) == 20
    assert "all 38 failure(s) written to" in err and len(pd.read_csv(tmp_path / "all.csv")) == 38


def test_show_failures_without_a_csv_lists_them_all(capsys):
    failures = pd.DataFrame([["f.csv", i, "x", "must be a number", str(i)] for i in range(2, 40)], columns=FAILURE_COLUMNS)
    show_failures(DataError("38 problems", failures), None)
    err = capsys.readouterr().err
    assert len([r for r in table_rows(err) if r[0] == "f.csv" and r[2] == "x" and r[3] == "must be a number"]) == 38
    assert "written" not in err


# ------------------------------------------------------------------ empty files, whoever reads them


EMPTY_CONTENTS = {"empty": "", "whitespace": "  \n\n\t\n", "header-only": None}


def _empty(kind: str, header: str) -> str:
    return header + "\n" if kind == "header-only" else EMPTY_CONTENTS[kind]


@pytest.mark.parametrize("kind", list(EMPTY_CONTENTS))
@pytest.mark.parametrize(
    ("command", "file"),
    [("validate", "participants.csv"), ("run", "measurements.csv"), ("export-adam", "participants.csv"),
     ("grant-report", "measurements.csv")],
)
def test_an_empty_trial_file_is_the_same_failure_from_every_command(command, file, kind, tmp_path, work, capsys):
    header = P.splitlines()[0] if file == "participants.csv" else M.splitlines()[0]
    plan = write_trial(tmp_path / "inputs", **{file.removesuffix(".csv"): _empty(kind, header)})
    out = tmp_path / "out"
    argv = {
        "validate": ["validate", str(plan), "--failures", str(tmp_path / "f.csv")],
        "run": ["run", str(plan), "--out", str(out), "--no-report"],
        "export-adam": ["export-adam", str(plan), "--out", str(out)],
        "grant-report": ["grant-report", str(plan), "--period-end", "2023-12-31", "--out", str(out), "--no-report"],
    }[command]
    assert run_cli(argv) == 1
    err = capsys.readouterr().err
    assert_reported(err, [file, *EMPTY_ROW, "header only" if kind == "header-only" else ""])
    assert not out.exists() and list(work.iterdir()) == []


@pytest.mark.parametrize("kind", list(EMPTY_CONTENTS))
@pytest.mark.parametrize("command", ["meta", "meta-arms", "escalc"])
def test_an_empty_effects_table_is_the_same_failure(command, kind, tmp_path, work, capsys):
    effects = tmp_path / "effects.csv"
    effects.write_text(_empty(kind, "study,yi,vi" if command == "meta" else "study,n1i,m1i,sd1i,n2i,m2i,sd2i"), encoding="utf-8")
    argv = {"meta": ["meta", "--input", str(effects)],
            "meta-arms": ["meta", "--input", str(effects), "--measure", "MD"],
            "escalc": ["escalc", "--measure", "MD", "--input", str(effects)]}[command]
    assert run_cli(argv) == 1
    captured = capsys.readouterr()
    assert_reported(captured.err, ["effects.csv", *EMPTY_ROW, "header only" if kind == "header-only" else ""])
    assert captured.out == "" and list(work.iterdir()) == []


@pytest.mark.parametrize("kind", list(EMPTY_CONTENTS))
@pytest.mark.parametrize("which", ["dictionary", "export"])
def test_an_empty_redcap_file_is_the_same_failure(which, kind, tmp_path, work, capsys):
    files = source_files("redcap")
    header = files[f"{which}.csv"].splitlines()[0]
    folder = tmp_path / "inputs"
    folder.mkdir()
    for name in ("dictionary", "export"):
        (folder / f"{name}.csv").write_text(_empty(kind, header) if name == which else files[f"{name}.csv"], encoding="utf-8")
    (folder / "plan.yaml").write_text(SMALL_PLAN.replace(NATIVE, SOURCE_DATA["redcap"]), encoding="utf-8")
    for argv in (["run", str(folder / "plan.yaml"), "--out", str(tmp_path / "out"), "--no-report"],
                 ["plan-from-redcap", str(folder / "dictionary.csv"), "--export", str(folder / "export.csv")]):
        assert run_cli(argv) == 1, argv
        captured = capsys.readouterr()
        assert_reported(captured.err, [f"{which}.csv", *EMPTY_ROW, "header only" if kind == "header-only" else ""])
        assert captured.out == ""
    assert list(work.iterdir()) == [] and not (tmp_path / "out").exists()


@pytest.mark.parametrize("which", ["adsl.csv", "adbds.csv"])
def test_an_empty_adam_file_is_the_same_failure(which, tmp_path, work, capsys):
    folder = tmp_path / "inputs"
    folder.mkdir()
    for name, text in source_files("adam").items():
        (folder / name).write_text("" if name == which else text, encoding="utf-8")
    (folder / "plan.yaml").write_text(SMALL_PLAN.replace(NATIVE, SOURCE_DATA["adam"]), encoding="utf-8")
    assert run_cli(["validate", str(folder / "plan.yaml"), "--failures", str(tmp_path / "f.csv")]) == 1
    assert_reported(capsys.readouterr().err, [which, *EMPTY_ROW, ""])


def _example_with_adverse_events(tmp_path: Path, content: str) -> Path:
    example = (REPO / "data" / "studies" / "example-precision-release.yaml").read_text(encoding="utf-8")
    examples = (REPO / "data" / "examples").as_posix()
    plan = example.replace("../examples", examples).replace("reporting:\n", "reporting:\n  adverse_events: {path: ae.csv}\n", 1)
    folder = tmp_path / "inputs"
    folder.mkdir()
    (folder / "plan.yaml").write_text(plan, encoding="utf-8")
    (folder / "ae.csv").write_text(content, encoding="utf-8")
    return folder / "plan.yaml"


@pytest.mark.parametrize("kind", ["empty", "whitespace"])
def test_an_empty_adverse_events_file_is_the_same_failure(kind, tmp_path, work, capsys):
    plan = _example_with_adverse_events(tmp_path, EMPTY_CONTENTS[kind])
    out = tmp_path / "grant"
    assert run_cli(["grant-report", str(plan), "--period-end", "2023-12-31", "--out", str(out), "--no-report"]) == 1
    assert_reported(capsys.readouterr().err, ["ae.csv", *EMPTY_ROW, ""])
    assert_csv(tmp_path / "grant.validation_failures.csv", ["ae.csv", *EMPTY_ROW, ""])
    assert not out.exists() and list(work.iterdir()) == []


def test_adverse_events_with_a_header_and_no_rows_mean_none(tmp_path, work, capsys):
    """Unlike the trial's files, an adverse-events file may hold no rows: no event was reported."""
    plan = _example_with_adverse_events(tmp_path, "participant_id,term,category,serious\n")
    out = tmp_path / "grant"
    assert run_cli(["grant-report", str(plan), "--period-end", "2023-12-31", "--out", str(out), "--no-report"]) == 0, capsys.readouterr().err
    assert out.is_dir() and list(work.iterdir()) == []

