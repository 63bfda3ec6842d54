"""`trialkit escalc` on published summaries (arms given as median [Q1, Q3], median (min-max), mean
with SE or with a CI): the converted means and SDs and the effect sizes against R
(tests/reference/escalc_summaries.R: the Cochrane Handbook 6.5.2.2 and Wan et al. 2014 formulas
written out in R, then metafor escalc + summary), the `method` and `note` columns, the CI options,
and impossible summaries (exit 1, every cell listed, nothing written)."""

from __future__ import annotations

import io
import json

import numpy as np
import pandas as pd
import pytest

from analysis.cli import run_cli
from tests.conftest import REFERENCE

INPUT = REFERENCE / "escalc_summaries.csv"  # read by escalc_summaries.R too
REF = json.loads((REFERENCE / "escalc_summaries_ref.json").read_text())
RTOL = 1e-6


def escalc_table(capsys, *args: str, source=INPUT) -> pd.DataFrame:
    assert run_cli(["escalc", "--input", str(source), *args]) == 0
    return pd.read_csv(io.StringIO(capsys.readouterr().out), dtype={"study": str})


def assert_matches(table: pd.DataFrame, ref: dict, measure: str) -> None:
    for column in ("m1i", "sd1i", "m2i", "sd2i"):
        expected = np.array([np.nan if v is None else v for v in ref[column]], dtype=float)
        np.testing.assert_allclose(table[column].to_numpy(float), expected, rtol=RTOL, err_msg=column)
    # a row with a missing input has no yi in trialkit (metafor still gives MD's yi, without vi)
    computable = np.array([v is not None for v in ref[measure]["vi"]])
    for column in ("yi", "vi", "ci_low", "ci_high"):
        expected = np.array([np.nan if v is None else v for v in ref[measure][column]], dtype=float)
        expected[~computable] = np.nan
        np.testing.assert_allclose(table[column].to_numpy(float), expected, rtol=RTOL, err_msg=f"{measure} {column}")


@pytest.mark.parametrize("measure", ["MD", "SMD"])
def test_mixed_summaries_match_r(capsys, measure):
    table = escalc_table(capsys, "--measure", measure)
    assert table["study"].tolist() == REF["t95"]["study"]
    assert_matches(table, REF["t95"], measure)


def test_reported_ci_level_option_and_column(capsys):
    # rows C and G take the option's 99%; row F keeps its ci_level1i of 0.90
    assert_matches(escalc_table(capsys, "--measure", "SMD", "--reported-ci-level", "0.99"), REF["level99"], "SMD")


def test_reported_ci_distribution_z(capsys):
    assert_matches(escalc_table(capsys, "--measure", "MD", "--reported-ci-distribution", "Z"), REF["z95"], "MD")


def test_method_and_note_name_each_conversion(capsys):
    table = escalc_table(capsys, "--measure", "SMD").set_index("study")
    method, note = table["method"], table["note"].fillna("")
    assert method["A mixed"] == "m1i, sd1i: reported; m2i, sd2i: mean and SD from median and IQR (Wan et al. 2014)"
    assert method["B SE"] == "m1i, sd1i: SD from SE (Cochrane 6.5.2.2); m2i, sd2i: reported"
    assert method["C CI n25"].count("SD from CI, t quantile (Cochrane 6.5.2.2)") == 2
    assert note["C CI n25"] == "sd1i from a 95% CI of the mean, t quantile with 24 df; sd2i from a 95% CI of the mean, t quantile with 23 df"
    assert method["D range"].count("mean and SD from median and range (Wan et al. 2014)") == 2
    assert method["E SD wins"] == "m1i, sd1i: reported; m2i, sd2i: reported"
    assert note["E SD wins"] == "m1i given, so median1i not used; sd1i given, so se1i, q1_1i, q3_1i not used"
    assert note["F 90% CI"] == "sd1i from a 90% CI of the mean, t quantile with 11 df"
    assert np.isnan(table.loc["H no spread", "yi"]) and note["H no spread"] == "not computed: missing sd1i"
    assert method["I mean+IQR"] == "m1i, sd1i: SD from IQR (Wan et al. 2014); m2i, sd2i: reported"
    assert note["I mean+IQR"] == "m1i given, so median1i not used"
    assert note["A mixed"] == ""


def test_reported_cells_pass_through_and_empty_ones_are_filled(capsys):
    assert run_cli(["escalc", "--measure", "MD", "--input", str(INPUT)]) == 0
    lines = capsys.readouterr().out.splitlines()
    header = INPUT.read_text().splitlines()[0]
    assert lines[0] == header + ",yi,vi,sei,ci_low,ci_high,method,note"
    # row E as written (m1i "10", sd1i "2"); row C's sd1i was empty and is now the converted SD
    assert lines[5].startswith("E SD wins,16,10,2,0.5,")
    assert lines[3].split(",")[3] != "" and INPUT.read_text().splitlines()[3].split(",")[3] == ""


def test_absent_mean_and_sd_columns_are_added(tmp_path, capsys):
    src = tmp_path / "medians.csv"
    # Wan et al. 2014 C3 by hand, n = 38: means (10 + 14 + 19)/3 and (8 + 12 + 15)/3; SDs 9 / eta(38), 7 / eta(38)
    src.write_text("study,n1i,median1i,q1_1i,q3_1i,n2i,median2i,q1_2i,q3_2i\nX,38,14,10,19,38,12,8,15\n")
    table = escalc_table(capsys, "--measure", "MD", source=src)
    eta = REF["quantiles"]["eta_38"]
    assert list(table.columns) == ["study", "n1i", "median1i", "q1_1i", "q3_1i", "n2i", "median2i", "q1_2i", "q3_2i",
                                   "m1i", "sd1i", "m2i", "sd2i", "yi", "vi", "sei", "ci_low", "ci_high", "method", "note"]
    row = table.iloc[0]
    assert row["m1i"] == pytest.approx(43 / 3, rel=RTOL) and row["m2i"] == pytest.approx(35 / 3, rel=RTOL)
    assert row["sd1i"] == pytest.approx(9 / eta, rel=RTOL) and row["sd2i"] == pytest.approx(7 / eta, rel=RTOL)
    # MD = 43/3 - 35/3 = 8/3; vi = sd1^2/38 + sd2^2/38
    assert row["yi"] == pytest.approx(8 / 3, rel=RTOL)
    assert row["vi"] == pytest.approx((81 + 49) / eta**2 / 38, rel=RTOL)


@pytest.mark.parametrize("measure", ["MC", "SMCC"])
def test_within_arm_summaries_match_r(tmp_path, capsys, measure):
    src = tmp_path / "prepost.csv"
    src.write_text("ni,m1i,se1i,median2i,q1_2i,q3_2i,ri\n30,40.1,1.9,45,40,52,0.6\n")
    row = escalc_table(capsys, "--measure", measure, source=src).iloc[0]
    ref = REF["within"]
    for column in ("m1i", "sd1i", "m2i", "sd2i"):
        assert row[column] == pytest.approx(ref[column], rel=RTOL), column
    assert row["yi"] == pytest.approx(ref[measure]["yi"], rel=RTOL)
    assert row["vi"] == pytest.approx(ref[measure]["vi"], rel=RTOL)


def test_smcr_refuses_summary_columns(tmp_path, capsys):
    src = tmp_path / "smcr.csv"
    src.write_text("ni,m1i,m2i,sd1i,se1i,ri\n30,40,45,9,1.9,0.6\n")
    assert run_cli(["escalc", "--measure", "SMCR", "--input", str(src)]) == 2
    err = capsys.readouterr().err
    assert "SMCR reads no published-summary columns (se1i)" in err and "Traceback" not in err


def test_impossible_summaries_exit_1_every_cell_listed_nothing_written(tmp_path, capsys):
    src = tmp_path / "bad.csv"
    src.write_text(
        "study,n1i,m1i,sd1i,se1i,ci_low1i,ci_high1i,ci_level1i,n2i,median2i,q1_2i,q3_2i,minimum2i,maximum2i\n"
        "ok,20,5,,0.4,,,,20,4,3,6,,\n"
        "se,20,5,,-0.4,,,,20,4,3,6,,\n"
        "ci,20,5,,,6,4,95,20,4,3,6,,\n"
        "quartiles,20,5,1,,,,,20,4,5,3,0,9\n"
        "text,20,5,1,,,,,20,four,3,6,,\n"
    )
    out = tmp_path / "out.csv"
    assert run_cli(["escalc", "--measure", "SMD", "--input", str(src), "--output", str(out)]) == 1
    err = capsys.readouterr().err
    for row, column in [("3", "se1i"), ("4", "ci_high1i"), ("4", "ci_level1i"), ("5", "median2i"), ("5", "q3_2i"), ("6", "median2i")]:
        assert f"row {row}, column {column}" in err, (row, column)
    assert "row 2," not in err and "SE must be >= 0" in err and "must be >= q1_2i" in err
    assert not out.exists() and "Traceback" not in err


def test_rom_needs_a_positive_mean_from_the_median(tmp_path, capsys):
    src = tmp_path / "rom.csv"
    src.write_text("n1i,median1i,minimum1i,maximum1i,sd1i,n2i,m2i,sd2i\n20,-1,-3,0,1,20,4,1\n")
    assert run_cli(["escalc", "--measure", "ROM", "--input", str(src)]) == 1
    assert "row 2, column median1i: the mean from median1i must be > 0 for ROM" in capsys.readouterr().err


@pytest.mark.parametrize("args", [["--reported-ci-level", "95"], ["--reported-ci-distribution", "normal"]])
def test_bad_summary_options_exit_2(args, capsys):
    assert run_cli(["escalc", "--measure", "MD", "--input", str(INPUT), *args]) == 2
    assert "Traceback" not in capsys.readouterr().err
