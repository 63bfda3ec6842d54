"""`trialkit escalc` end to end: output against R metafor (normand1999_ref.json), pass-through,
missing values, impossible values (exit 1, every row listed, no file), bad usage (exit 2)."""

from __future__ import annotations

import io
import json

import numpy as np
import pandas as pd
import pytest

from analysis.cli import run_cli
from tests.conftest import REFERENCE

REF = REFERENCE
NORMAND = json.loads((REF / "normand1999_ref.json").read_text())


@pytest.mark.parametrize("measure", ["MD", "SMD", "ROM"])
def test_escalc_on_normand1999_matches_metafor(tmp_path, measure):
    out = tmp_path / "es.csv"
    assert (
        run_cli(
            [
                "escalc",
                "--measure",
                measure,
                "--input",
                str(REF / "normand1999.csv"),
                "--output",
                str(out),
            ]
        )
        == 0
    )
    table = pd.read_csv(out)
    np.testing.assert_allclose(table["yi"], NORMAND[measure]["yi"], rtol=1e-10)
    np.testing.assert_allclose(table["vi"], NORMAND[measure]["vi"], rtol=1e-10)
    np.testing.assert_allclose(table["sei"], np.sqrt(NORMAND[measure]["vi"]), rtol=1e-10)
    original = pd.read_csv(REF / "normand1999.csv")
    assert list(table.columns) == [
        *original.columns,
        "yi",
        "vi",
        "sei",
        "ci_low",
        "ci_high",
        "note",
    ]
    pd.testing.assert_frame_equal(table[original.columns], original)


def test_stdout_when_no_output(capsys):
    assert run_cli(["escalc", "--measure", "MD", "--input", str(REF / "normand1999.csv")]) == 0
    table = pd.read_csv(io.StringIO(capsys.readouterr().out))
    np.testing.assert_allclose(table["yi"], NORMAND["MD"]["yi"], rtol=1e-10)


def test_pass_through_text_unchanged_and_missing_value_note(tmp_path):
    src = tmp_path / "in.csv"
    src.write_text(
        "label,n1i,m1i,sd1i,n2i,m2i,sd2i\n007,20,5.0,1.0,20,4.0,1.0\nB,20,5.0,,20,4.0,1.0\n"
    )
    out = tmp_path / "out.csv"
    assert run_cli(["escalc", "--measure", "SMD", "--input", str(src), "--output", str(out)]) == 0
    lines = out.read_text().splitlines()
    assert lines[1].startswith("007,20,5.0,1.0,")
    table = pd.read_csv(out, dtype={"label": str})
    assert np.isnan(table.loc[1, "yi"]) and "sd1i" in table.loc[1, "note"]
    assert table.loc[0, "yi"] > 0


def test_within_arm_measure(tmp_path):
    # anorexia CBT treatment arm, metafor SMCC yi = 0.400287947405537 (anorexia_ref.json)
    ref = json.loads((REF / "anorexia_ref.json").read_text())["CBT"]
    a = ref["arms"]["treatment"]
    src = tmp_path / "in.csv"
    src.write_text(
        f"ni,m1i,m2i,sd1i,sd2i,ri\n{a['n']},{a['post_mean']!r},{a['pre_mean']!r},{a['post_sd']!r},{a['pre_sd']!r},{a['r_pre_post']!r}\n"
    )
    out = tmp_path / "out.csv"
    assert run_cli(["escalc", "--measure", "SMCC", "--input", str(src), "--output", str(out)]) == 0
    assert pd.read_csv(out).loc[0, "yi"] == pytest.approx(ref["treatment_SMCC"]["yi"], rel=1e-10)


def test_impossible_values_exit_1_list_every_row_and_write_nothing(tmp_path, capsys):
    src = tmp_path / "bad.csv"
    src.write_text("ni,m1i,m2i,sd1i,sd2i,ri\n20,5,4,1,1,0.5\n1,5,4,1,1,0.5\n20,5,4,-2,1,1.3\n")
    out = tmp_path / "out.csv"
    code = run_cli(["escalc", "--measure", "SMCC", "--input", str(src), "--output", str(out)])
    assert code == 1
    err = capsys.readouterr().err
    for row, column in [("3", "ni"), ("4", "sd1i"), ("4", "ri")]:
        assert f"row {row}, column {column}" in err
    assert "bad.csv" in err and "Traceback" not in err
    assert not out.exists()


def test_rom_non_positive_mean_exit_1(tmp_path, capsys):
    src = tmp_path / "rom.csv"
    src.write_text("n1i,m1i,sd1i,n2i,m2i,sd2i\n20,0,1,20,4,1\n")
    assert run_cli(["escalc", "--measure", "ROM", "--input", str(src)]) == 1
    assert "row 2, column m1i" in capsys.readouterr().err


@pytest.mark.parametrize(
    "args",
    [
        ["--measure", "OR"],
        ["--measure", "SMD", "--ci-level", "95"],
        ["--measure", "SMD", "--vtype", "ZZ"],
    ],
)
def test_bad_usage_exit_2(args, capsys):
    assert run_cli(["escalc", *args, "--input", str(REF / "normand1999.csv")]) == 2
    assert "Traceback" not in capsys.readouterr().err


def test_missing_input_file_exit_2(tmp_path):
    assert run_cli(["escalc", "--measure", "MD", "--input", str(tmp_path / "nope.csv")]) == 2


def test_missing_column_exit_1(tmp_path, capsys):
    src = tmp_path / "cols.csv"
    src.write_text("n1i,m1i,sd1i,n2i,m2i\n20,5,1,20,4\n")
    assert run_cli(["escalc", "--measure", "MD", "--input", str(src)]) == 1
    assert "sd2i" in capsys.readouterr().err
