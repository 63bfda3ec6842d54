"""``trialkit meta`` end to end: reference numbers through the CLI, arm-summary input, errors, report."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pandas as pd
import pytest

from analysis.cli import run_cli
from analysis.stats.meta import META_COLUMNS
from tests.conftest import REFERENCE, REPO

HERE = REFERENCE
REF = json.loads((HERE / "normand1999_ref.json").read_text())


@pytest.fixture()
def effects_csv(tmp_path: Path) -> Path:
    names = pd.read_csv(HERE / "normand1999.csv")["source"]
    path = tmp_path / "effects.csv"
    pd.DataFrame({"study": names, "measure": "ROM", "yi": REF["ROM"]["yi"], "vi": REF["ROM"]["vi"]}).to_csv(path, index=False)
    return path


def test_knha_through_cli_matches_metafor(tmp_path: Path, effects_csv: Path) -> None:
    out, forest = tmp_path / "out.csv", tmp_path / "forest.png"
    code = run_cli(["meta", "--input", str(effects_csv), "--test", "knha", "--output", str(out), "--forest", str(forest)])
    assert code == 0
    table = pd.read_csv(out)
    assert table.columns.tolist() == META_COLUMNS
    summary = table.loc[table["type"] == "summary"].iloc[0]
    ref = REF["ROM"]["REML_HKSJ"]
    for ours, theirs in (("estimate", "estimate"), ("std_error", "se"), ("ci_low", "ci_low"), ("ci_high", "ci_high"), ("p_value", "p_value")):
        assert summary[ours] == pytest.approx(ref[theirs], rel=1e-6), ours
    assert summary["df"] == 8 and summary["test"] == "knha" and summary["measure"] == "ROM"
    het = table.loc[table["type"] == "heterogeneity"].iloc[0]
    assert het["tau2"] == pytest.approx(REF["ROM"]["REML"]["tau2"], rel=1e-6)
    assert forest.read_bytes()[:4] == b"\x89PNG"


def test_exponentiate_back_transforms(tmp_path: Path, effects_csv: Path) -> None:
    out = tmp_path / "out.csv"
    assert run_cli(["meta", "--input", str(effects_csv), "--method", "DL", "--exponentiate", "--output", str(out)]) == 0
    summary = pd.read_csv(out).query("type == 'summary'").iloc[0]
    assert summary["estimate"] == pytest.approx(2.718281828459045 ** REF["ROM"]["DL"]["estimate"], rel=1e-9)
    assert bool(summary["exponentiated"])


def test_arm_summaries_input_uses_the_effect_size_engine(tmp_path: Path, capsys) -> None:
    source = pd.read_csv(HERE / "normand1999.csv")
    arms = tmp_path / "arms.csv"
    source.drop(columns="study").rename(columns={"source": "study"}).to_csv(arms, index=False)
    assert run_cli(["meta", "--input", str(arms), "--measure", "SMD", "--method", "PM"]) == 0
    table = pd.read_csv(io.StringIO(capsys.readouterr().out))
    studies = table.loc[table["type"] == "study"]
    assert studies["estimate"].to_numpy() == pytest.approx(REF["SMD"]["yi"], rel=1e-6)
    assert studies["n_treatment"].tolist() == source["n1i"].tolist()


@pytest.mark.parametrize(
    "rows,expected",
    [
        ("study,yi,vi\nA,1,0.5\n", "at least two studies"),
        ("study,yi,vi\nA,1,0.5\nB,,0.2\n", "row 3, column 'yi': value is required"),
        ("study,yi,vi\nA,1,0.5\nB,2,0\n", "row 3, column 'vi': sampling variance must be > 0"),
        ("study,yi,vi\nA,1,0.5\nB,x,1\n", "row 3, column 'yi': must be a number"),
        ("study,yi\nA,1\nB,2\n", "column 'vi': required column"),
    ],
)
def test_bad_input_exit_1_names_file_row_column_rule(tmp_path: Path, capsys, rows: str, expected: str) -> None:
    path = tmp_path / "effects.csv"
    path.write_text(rows)
    out = tmp_path / "out.csv"
    assert run_cli(["meta", "--input", str(path), "--output", str(out), "--forest", str(tmp_path / "f.png")]) == 1
    message = " ".join(capsys.readouterr().err.split())
    assert expected in message and str(path.name) in message
    assert not out.exists() and not (tmp_path / "f.png").exists()


@pytest.mark.parametrize("args,expected", [(["--method", "SJ"], "--method"), (["--test", "t"], "--test"),
                                           (["--ci-level", "95"], "--ci-level"), (["--forest", "f.pdf"], "PNG or SVG")])
def test_bad_usage_exit_2(effects_csv: Path, capsys, args: list[str], expected: str) -> None:
    assert run_cli(["meta", "--input", str(effects_csv), *args]) == 2
    assert expected in capsys.readouterr().err


def test_missing_file_is_usage_error(tmp_path: Path, capsys) -> None:
    assert run_cli(["meta", "--input", str(tmp_path / "nope.csv")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_report_renders_html_without_code(tmp_path: Path, effects_csv: Path) -> None:
    report = tmp_path / "report"
    assert run_cli(["meta", "--input", str(effects_csv), "--report", str(report), "--output", str(tmp_path / "o.csv")]) == 0
    html = (report / "meta_report.html").read_text()
    assert "Leave-one-out" in html and "Q-profile" in html and "data:image/png;base64" in html
    assert "describe_heterogeneity" not in html  # code cells hidden
    loo = pd.read_csv(report / "meta_leave_one_out.csv")
    assert loo["study"].tolist() == pd.read_csv(HERE / "normand1999.csv")["source"].tolist()


def test_notebook_is_stored_without_outputs() -> None:
    notebook = json.loads((REPO / "notebooks" / "meta_analysis.ipynb").read_text())
    code = [c for c in notebook["cells"] if c["cell_type"] == "code"]
    assert all(c["outputs"] == [] and c["execution_count"] is None for c in code)
    assert sum("parameters" in c["metadata"].get("tags", []) for c in code) == 1
