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
