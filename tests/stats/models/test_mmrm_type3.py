"""Type III F tests of the MMRM's terms (analysis/stats/models/mmrm/type3.py) against SAS PROC
MIXED's "Type 3 Tests of Fixed Effects" (tests/reference/sas_type3_fev.json: AR(1),
Satterthwaite, with a covariate interaction and a term without its margin), R lmerTest's
``anova(type = 3)`` and pbkrtest's Kenward-Roger F on the compound-symmetry model
(tests/reference/mmrm_type3.R). Expected values never come from trialkit itself.

Tolerances: df 1e-6 relative; F 1e-5 relative against SAS (its AR(1) fit is the one whose
Kenward-Roger df agree with ours to 9e-7 in test_mmrm_sas_kr.py; F of a near-zero effect carries
twice the relative error of the estimate), 1e-6 against lmerTest and pbkrtest.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from analysis.cli import run_cli
from analysis.stats.models.mmrm import fit_mmrm
from analysis.stats.models.mmrm.formula import build_formula_problem
from analysis.stats.models.mmrm.reml import fit_structure
from analysis.stats.models.mmrm.type3 import fai_cornelius_df, term_hypotheses, type3_table
from tests.conftest import REFERENCE

SAS = json.loads((REFERENCE / "sas_type3_fev.json").read_text())["models"]
R = json.loads((REFERENCE / "mmrm_type3_ref.json").read_text())


def rel(actual, expected) -> float:
    return abs(float(actual) / float(expected) - 1.0)


@pytest.fixture(scope="module")
def fev() -> pd.DataFrame:
    return pd.read_csv(REFERENCE / "fev_data.csv")


@pytest.fixture(scope="module")
def long() -> pd.DataFrame:
    wide = pd.read_csv(REFERENCE / "mmrm_synthetic_wide.csv")
    frame = wide.melt(id_vars=["participant_id", "arm", "baseline"],
                      value_vars=["week4", "week8", "week12"], var_name="visit",
                      value_name="value")
    frame["visit"] = pd.Categorical(frame["visit"].str.removeprefix("week"),
                                    categories=["4", "8", "12"])
    return frame


@pytest.mark.parametrize("model", sorted(SAS))
def test_type3_matches_sas(fev, model):
    expected = SAS[model]
    table = fit_mmrm(expected["formula"], fev, type3=True).type3.set_index("term")
    assert list(table.index) == list(expected["effects"])
    for term, sas in expected["effects"].items():
        row = table.loc[term]
        assert row["num_df"] == sas["num_df"], term
        assert rel(row["den_df"], sas["den_df"]) < 1e-6, term
        assert rel(row["statistic"], sas["f"]) < 1e-5, term
        assert rel(row["p_value"], sas["p"]) < 1e-5, term


def _cs_problem(long):
    fp = build_formula_problem("value ~ baseline + arm*visit + cs(visit | participant_id)", long,
                               reml=True, visit_order=None, reference=None)
    return fp, fit_structure(fp.covariance, fp.problem, 200)


@pytest.mark.parametrize(("df", "key", "information"), [
    ("satterthwaite", "satterthwaite", "observed"),
    ("kenward-roger", "kenward_roger", "expected"),  # pbkrtest's information
])
def test_type3_matches_lmertest_and_pbkrtest(long, df, key, information):
    """One-row terms against lmerTest's anova(type = 3); the two-row ones against contest() with
    SAS's rows, written out in the R script (anova's own rows give other Satterthwaite df: the
    F and Kenward-Roger's df do not depend on the rows, Fai and Cornelius' df do)."""
    fp, fit = _cs_problem(long)
    table = type3_table(fp, fit, fit.cov_beta, df, "m", information=information).set_index("term")
    assert list(table.index) == list(R[key])
    rows = {term: hypothesis for term, hypothesis, _ in term_hypotheses(fp)}
    for term, expected in R[key].items():
        if expected["num_df"] > 1:
            for ours, theirs in zip(rows[term], np.array(R["sas_rows"][term]["L"]), strict=True):
                assert np.allclose(ours, theirs, atol=1e-14) or np.allclose(ours, -theirs,
                                                                             atol=1e-14)
            expected = R["sas_rows"][term][key]
        row = table.loc[term]
        assert row["num_df"] == expected["num_df"]
        assert rel(row["den_df"], expected["den_df"]) < 1e-6, term
        assert rel(row["statistic"], expected["F"]) < 1e-6, term


def test_one_row_kenward_roger_is_the_contrast_t_squared(fev):
    """With one numerator df, KR's scale is 1: F = t^2 of the same contrast, with its df (the
    LS-mean difference of a one-term model), as SAS prints them for AR(1)."""
    fit = fit_mmrm("FEV1 ~ ARMCD + ar1(AVISIT | USUBJID)", fev, df="kenward-roger",
                   emmeans="ARMCD", reference="PBO", visit_order=["VIS1", "VIS2", "VIS3", "VIS4"],
                   type3=True)
    contrast = fit.rows("contrast").iloc[0]
    test = fit.type3.set_index("term").loc["ARMCD"]
    assert rel(test["statistic"], contrast["statistic"] ** 2) < 1e-10
    assert rel(test["den_df"], contrast["df"]) < 1e-10
    sas = json.loads((REFERENCE / "sas_kr_fev.json").read_text())
    printed = sas["structures"]["ar1"]["runs"]["kenward-roger"]["type3_armcd"]
    assert abs(test["statistic"] - float(printed["f"])) <= 0.005
    assert abs(test["den_df"] - float(printed["den_df"])) <= 0.5


def test_type3_does_not_depend_on_the_coding(long):
    """Another reference level for arm recodes beta (treatment coding), not the hypotheses:
    F and every df are unchanged. The contrast rows are SAS's (each level minus the last, or
    minus a reference asked for), so the Satterthwaite df of a multi-row test do depend on
    which visit is last, as SAS's do."""
    formula = "value ~ baseline + arm*visit + us(visit | participant_id)"
    control, treatment = (fit_mmrm(formula, long, reference=reference, type3=True).type3
                          for reference in ("control", "treatment"))
    np.testing.assert_allclose(treatment["statistic"], control["statistic"], rtol=1e-8)
    np.testing.assert_allclose(treatment["den_df"], control["den_df"], rtol=1e-6)
    kr = [fit_mmrm(formula, long, reference=reference, df="kenward-roger", type3=True).type3
          for reference in ("control", "treatment")]
    np.testing.assert_allclose(kr[1]["den_df"], kr[0]["den_df"], rtol=1e-6)


def test_between_within_and_residual_denominators(long):
    formula = "value ~ baseline + arm*visit + us(visit | participant_id)"
    bw = fit_mmrm(formula, long, df="between-within", type3=True).type3.set_index("term")
    # SAS: between = subjects - rank(between columns) = 200 - 3; within = N - subjects - 4
    # = 520 - 200 - 4
    assert bw["den_df"].to_dict() == {"baseline": 197, "arm": 197, "visit": 316, "arm:visit": 316}
    residual = fit_mmrm(formula, long, df="residual", type3=True)
    assert set(residual.type3["den_df"]) == {residual.n_obs - len(residual.terms)}


def test_fai_cornelius_combination():
    # SAS: E = sum nu/(nu - 2) over nu > 2, df = 2E/(E - q) when E > q, else 0
    nu = np.array([10.0, 20.0])
    e = 10 / 8 + 20 / 18
    assert fai_cornelius_df(nu) == pytest.approx(2 * e / (e - 2), rel=1e-15)
    assert fai_cornelius_df(np.array([7.5])) == 7.5
    assert fai_cornelius_df(np.array([2.5, 2.5])) == pytest.approx(2.5)  # equal nu: that nu
    assert fai_cornelius_df(np.array([1.5, 30.0])) == 0.0  # E = 30/28 < 2


def test_mmrm_command_writes_the_type3_table(fev, tmp_path):
    data = tmp_path / "fev.csv"
    fev.to_csv(data, index=False)
    out, tests = tmp_path / "out.csv", tmp_path / "type3.csv"
    formula = SAS["test3_2"]["formula"]
    assert run_cli(["mmrm", str(data), "--formula", formula, "--output", str(out),
                    "--type3", str(tests)]) == 0
    table = pd.read_csv(tests)
    assert list(table.columns) == ["term", "num_df", "den_df", "statistic", "p_value", "method"]
    assert table["term"].tolist() == list(SAS["test3_2"]["effects"])
    assert run_cli(["mmrm", str(data), "--formula", formula, "--output", str(out),
                    "--type3", str(out)]) == 2


def test_intercept_only_model_has_no_terms_to_test(fev):
    fit = fit_mmrm("FEV1 ~ 1 + us(AVISIT | USUBJID)", fev, type3=True)
    assert fit.n_obs == fev["FEV1"].notna().sum() == 537
    assert list(fit.terms) == ["(Intercept)"] and fit.type3.empty
