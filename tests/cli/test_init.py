"""``trialkit init``: a study folder that validates at once; refusals are exit code 2, one sentence."""

from __future__ import annotations

from analysis.cli import run_cli
from tests.conftest import REPO

REDCAP = REPO / "data" / "examples" / "precision-release-sim" / "redcap"


def test_init_then_validate_inside_the_new_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert run_cli(["init", "study"]) == 0
    err = capsys.readouterr().err
    assert "SIMULATED example trial in data/raw/" in err
    assert "cd study && trialkit validate plan.yaml && trialkit run plan.yaml" in err
    monkeypatch.chdir(tmp_path / "study")
    assert run_cli(["validate", "plan.yaml"]) == 0
    assert "valid: 120 participants" in capsys.readouterr().err
    assert not (tmp_path / "study" / "reports").exists()  # nothing written when the data are valid


def test_a_folder_name_with_a_space_is_quoted_in_the_next_command(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert run_cli(["init", "my study"]) == 0
    assert "cd 'my study' && trialkit validate" in capsys.readouterr().err


def test_a_non_empty_folder_is_exit_2_in_one_sentence(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("mine")
    assert run_cli(["init", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "already exists and is not empty" in err and "Traceback" not in err
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


def test_a_file_is_exit_2(tmp_path, capsys):
    (tmp_path / "plan.yaml").write_text("x")
    assert run_cli(["init", str(tmp_path / "plan.yaml")]) == 2
    assert "it is a file, not a directory" in capsys.readouterr().err


def test_from_redcap_drafts_the_plan_from_the_dictionary(tmp_path, capsys):
    code = run_cli(["init", str(tmp_path / "r"), "--from-redcap", str(REDCAP / "dictionary.csv"),
                    "--export", str(REDCAP / "export.csv")])
    assert code == 0
    assert "DRAFT plan.yaml" in capsys.readouterr().err
    plan = (tmp_path / "r" / "plan.yaml").read_text(encoding="utf-8")
    assert "dictionary: data/raw/dictionary.csv" in plan and (tmp_path / "r" / "data" / "raw" / "dictionary.csv").is_file()


def test_redcap_mistakes_are_exit_2_and_make_no_folder(tmp_path, capsys):
    assert run_cli(["init", str(tmp_path / "r"), "--export", str(REDCAP / "export.csv")]) == 2
    assert "--export needs --from-redcap" in capsys.readouterr().err
    assert run_cli(["init", str(tmp_path / "r"), "--from-redcap", str(tmp_path / "missing.csv")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()
