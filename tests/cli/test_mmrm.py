"""``trialkit mmrm`` (analysis/cli/mmrm.py): tidy CSV from a long CSV and a formula; usage errors
exit 2 with one line. The numbers are checked against R in tests/stats/models/test_mmrm_formula.py."""

from __future__ import annotations

import io

import pandas as pd

from analysis.cli import run_cli
from tests.conftest import REFERENCE


def test_mmrm_command_writes_the_tidy_table(tmp_path):
    wide = pd.read_csv(REFERENCE / "mmrm_synthetic_wide.csv")
    long = wide.melt(id_vars=["participant_id", "arm", "baseline"],
                     value_vars=["week4", "week8", "week12"], var_name="AVISIT",
                     value_name="value")
    data = tmp_path / "long.csv"
    long.to_csv(data, index=False)
    out = tmp_path / "out.csv"
    code = run_cli(["mmrm", str(data), "--formula",
                    "value ~ baseline + arm * AVISIT + us(AVISIT | participant_id)",
                    "--emmeans", "arm | AVISIT", "--reference", "control",
                    "--visit-order", "week4,week8,week12", "--output", str(out)])
    assert code == 0
    table = pd.read_csv(io.StringIO(out.read_text()))
    assert list(table.columns[:4]) == ["type", "term", "visit", "contrast"]
    contrasts = table.loc[table["type"] == "contrast"]
    assert contrasts["visit"].tolist() == ["week4", "week8", "week12"]
    assert set(table["type"]) == {"coefficient", "lsmean", "contrast", "covariance", "fit"}


def test_mmrm_command_usage_error(tmp_path, capsys):
    data = tmp_path / "d.csv"
    data.write_text("y,t,id\n1,a,1\n2,b,1\n")
    assert run_cli(["mmrm", str(data), "--formula", "y ~ t + banded(t | id)"]) == 2
    assert "unknown covariance structure" in capsys.readouterr().err


def _fev_files(folder):
    """fev_data (tests/reference) as the files a SAS, SPSS, Stata or Excel user has: SPSS and
    Stata with the arm stored as a labelled code (1 = PBO, 2 = TRT), the others as text."""
    import pyreadstat

    fev = pd.read_csv(REFERENCE / "fev_data.csv")
    fev = fev.astype({c: object for c in fev.columns if not pd.api.types.is_numeric_dtype(fev[c])})
    coded = fev.assign(ARMCD=fev["ARMCD"].map({"PBO": 1.0, "TRT": 2.0}))
    labels = {"ARMCD": {1.0: "PBO", 2.0: "TRT"}}
    files = {"csv": folder / "fev.csv", "sav": folder / "fev.sav", "dta": folder / "fev.dta",
             "xpt": folder / "fev.xpt", "parquet": folder / "fev.parquet",
             "xlsx": folder / "fev.xlsx"}
    fev.to_csv(files["csv"], index=False)
    pyreadstat.write_sav(coded, str(files["sav"]), variable_value_labels=labels)
    pyreadstat.write_dta(coded, str(files["dta"]), variable_value_labels=labels)
    pyreadstat.write_xport(fev, str(files["xpt"]))
    fev.to_parquet(files["parquet"], index=False)
    fev.to_excel(files["xlsx"], index=False)
    return files


def test_mmrm_command_reads_the_files_researchers_have(tmp_path):
    files = _fev_files(tmp_path)
    tables = {}
    for kind, path in files.items():
        out = tmp_path / f"out_{kind}.csv"
        code = run_cli(["mmrm", str(path), "--formula",
                        "FEV1 ~ FEV1_BL + ARMCD * AVISIT + us(AVISIT | USUBJID)",
                        "--emmeans", "ARMCD | AVISIT", "--reference", "PBO",
                        "--output", str(out)])
        assert code == 0, kind
        tables[kind] = pd.read_csv(out)
    expected = tables.pop("csv")
    assert expected.loc[expected["type"] == "contrast", "contrast"].tolist() == ["TRT - PBO"] * 4
    for kind, table in tables.items():
        assert table["term"].tolist() == expected["term"].tolist(), kind
        pd.testing.assert_series_equal(table["estimate"], expected["estimate"], rtol=1e-10,
                                       obj=f"{kind} estimates")
        pd.testing.assert_series_equal(table["df"], expected["df"], rtol=1e-8, obj=f"{kind} df")


def test_mmrm_command_reads_sas_missing_values_and_names_a_bad_cell(tmp_path, capsys):
    fev = pd.read_csv(REFERENCE / "fev_data.csv")
    data = tmp_path / "fev.csv"
    fev.to_csv(data, index=False, na_rep=".")  # as a SAS data step writes missing numbers
    formula = "FEV1 ~ ARMCD * AVISIT + us(AVISIT | USUBJID)"
    assert run_cli(["mmrm", str(data), "--formula", formula, "--output",
                    str(tmp_path / "out.csv")]) == 0
    fit = pd.read_csv(tmp_path / "out.csv").set_index("term")
    assert fit.loc["n obs", "estimate"] == fev["FEV1"].notna().sum() == 537

    fev["FEV1"] = fev["FEV1"].astype(object)
    fev.loc[6, "FEV1"] = "40,2"  # a decimal comma in one cell: file row 8
    fev.to_csv(data, index=False, na_rep=".")
    assert run_cli(["mmrm", str(data), "--formula", formula]) == 2
    assert "the response column 'FEV1' is not numeric: row 8 holds '40,2'" in capsys.readouterr().err
