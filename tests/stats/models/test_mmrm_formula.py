"""MMRM formula interface (analysis/stats/models/mmrm/formula_fit.py), covariance structures and
df methods against R: nlme::gls with matching corStruct/varFunc, pbkrtest's Kenward-Roger, and the
exact split-plot df of a balanced complete design (tests/reference/mmrm_structures.R,
tests/reference/mmrm_open.R). Expected values never come from trialkit itself.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from analysis.core.errors import UsageError
from analysis.stats.models.mmrm import fit_mmrm
from analysis.stats.models.mmrm.formula import _build_formula_problem, emmeans_rows
from analysis.stats.models.mmrm.kenward import kenward_roger
from analysis.stats.models.mmrm.reml import _fit_structure
from tests.conftest import REFERENCE

VISITS = ["4", "8", "12"]


def rel(actual, expected):
    actual, expected = np.asarray(actual, float), np.asarray(expected, float)
    return float(np.max(np.abs(actual - expected) / np.abs(expected)))


@pytest.fixture(scope="module")
def long() -> pd.DataFrame:
    wide = pd.read_csv(REFERENCE / "mmrm_synthetic_wide.csv")
    frame = wide.melt(id_vars=["participant_id", "arm", "baseline"],
                      value_vars=["week4", "week8", "week12"], var_name="visit",
                      value_name="value")
    frame["week"] = frame["visit"].str.removeprefix("week").astype(int)
    frame["visit"] = pd.Categorical(frame["week"].astype(str), categories=VISITS)
    return frame


@pytest.fixture(scope="module")
def ref() -> dict:
    return json.loads((REFERENCE / "mmrm_structures_ref.json").read_text())


# Tolerances: log-likelihoods 1e-9; estimates 1e-6, except where nlme's own convergence limits
# the reference (toeph, us: R's optimiser stops ~1e-5 away in beta while the log-likelihoods
# agree to 5e-11, i.e. both sit on the flat top).
STRUCTURES = [("cs", 1e-6), ("csh", 1e-5), ("ar1", 1e-6), ("ar1h", 1e-6), ("toep", 1e-6),
              ("toeph", 1e-4), ("sp_exp", 1e-6), ("us", 1e-4)]


@pytest.mark.parametrize(("structure", "tol"), STRUCTURES)
def test_structures_match_nlme_gls(long, ref, structure, tol):
    time = "week" if structure == "sp_exp" else "visit"
    fit = fit_mmrm(f"value ~ baseline + arm*visit + {structure}({time} | participant_id)", long)
    expected = ref[structure]
    assert rel(fit.loglik, expected["logLik"]) < 1e-9
    assert list(fit.terms) == list(expected["fixed"])
    assert rel(fit.estimates, list(expected["fixed"].values())) < tol
    assert rel(np.sqrt(np.diag(fit.cov_beta)), list(expected["fixed_se"].values())) < tol
    assert rel(fit.covariance.to_numpy(), expected["covariance"]) < 10 * tol


def test_ml_matches_nlme_gls_ml(long, ref):
    fit = fit_mmrm("value ~ baseline + arm*visit + us(visit | participant_id)", long, ml=True)
    expected = ref["us_ml"]
    assert rel(fit.loglik, expected["logLik"]) < 1e-9
    assert rel(fit.estimates, list(expected["fixed"].values())) < 1e-4
    # nlme scales an ML fit's vcov by N / (N - p) (REML-type sigma); SAS and R mmrm do not
    n, p = fit.n_obs, len(fit.terms)
    se = np.sqrt(np.diag(fit.cov_beta) * n / (n - p))
    assert rel(se, list(expected["fixed_se"].values())) < 1e-4


def test_grouped_unstructured_ml_is_the_sum_of_per_group_fits(long, ref):
    fit = fit_mmrm("value ~ arm*(baseline + visit) + us(visit | arm / participant_id)", long,
                   ml=True)
    assert rel(fit.loglik, ref["us_by_arm_ml"]["logLik"]) < 1e-9
    assert set(fit.covariances) == {"control", "treatment"}


# tests/reference/mmrm_grouped.R: with the fixed effects interacted with arm, a covariance per arm
# splits the model, so its ML and REML log-likelihoods are sums of per-arm nlme::gls fits
@pytest.mark.parametrize("method", ["REML", "ML"])
@pytest.mark.parametrize("structure", ["cs", "csh", "ar1", "ar1h", "toep", "toeph", "sp_exp", "us"])
def test_covariance_per_group_matches_per_group_nlme_fits(long, structure, method):
    expected = json.loads((REFERENCE / "mmrm_grouped_ref.json").read_text())[structure][method]
    time = "week" if structure == "sp_exp" else "visit"
    fit = fit_mmrm(f"value ~ arm*(baseline + visit) + {structure}({time} | arm / participant_id)",
                   long, ml=method == "ML")
    assert rel(fit.loglik, expected["logLik"]) < 1e-9
    assert list(fit.covariances) == ["control", "treatment"]
    assert not np.allclose(fit.covariances["control"], fit.covariances["treatment"])


def test_kenward_roger_matches_pbkrtest_on_compound_symmetry(long, ref):
    kr = ref["kr_random_intercept"]
    fp = _build_formula_problem("value ~ baseline + arm*visit + cs(visit | participant_id)",
                                long, reml=True, visit_order=None, reference=None)
    fit = _fit_structure(fp.covariance, fp.problem, 200)
    rows = np.array([c["L"] for c in kr["contrasts"]], float)
    # pbkrtest takes W from the expected information; SAS (our default) from the observed one
    adjusted, df = kenward_roger(fit, fp.problem, rows, information="expected")
    assert rel(fit.beta, list(kr["fixed"].values())) < 1e-6
    assert rel(adjusted, kr["vcov_adjusted"]) < 1e-5
    assert rel(df, [c["ddf"] for c in kr["contrasts"]]) < 1e-6


def test_emmeans_contrasts_match_reference(long):
    expected = json.loads((REFERENCE / "mmrm_synthetic_ref.json").read_text())
    fit = fit_mmrm("value ~ baseline + arm*visit + us(visit | participant_id)", long,
                   emmeans="arm | visit", reference="control")
    contrasts = fit.rows("contrast")
    assert contrasts["visit"].tolist() == VISITS
    assert contrasts["contrast"].iloc[0] == "treatment - control"
    ref_c = expected["contrasts_treatment_minus_control"]
    assert rel(contrasts["estimate"], [c["estimate"] for c in ref_c]) < 1e-4
    assert rel(contrasts["std_error"], [c["SE"] for c in ref_c]) < 1e-4
    lsmeans = fit.rows("lsmean")
    order = {(r["arm"], r["week"]): r["emmean"] for r in expected["lsmeans"]}
    assert rel(lsmeans["estimate"], [order[(a, v)] for a, v in zip(lsmeans["term"],
                                                                   lsmeans["visit"], strict=True)]) < 1e-4
    assert set(fit.table["type"]) == {"coefficient", "lsmean", "contrast", "covariance", "fit"}


def _balanced(n_per_arm=12, seed=3):
    rng = np.random.default_rng(seed)
    n = 2 * n_per_arm
    subject = np.repeat(np.arange(n), 3)
    b = rng.normal(0, 2.0, n)[subject]
    return pd.DataFrame({
        "id": subject.astype(str), "arm": np.where(subject < n_per_arm, "A", "B"),
        "visit": np.tile(["v1", "v2", "v3"], n),
        "y": 10 + b + rng.normal(0, 1.0, 3 * n) + np.tile([0.0, 0.5, 1.0], n)})


@pytest.mark.parametrize("df", ["satterthwaite", "kenward-roger", "kenward-roger-linear"])
def test_balanced_compound_symmetry_gives_split_plot_df(df):
    data = _balanced()
    fit = fit_mmrm("y ~ arm*visit + cs(visit | id)", data, df=df)
    coefficients = fit.rows("coefficient").set_index("term")
    n, groups, t = 24, 2, 3
    # within-participant effects: (n - g)(T - 1) df
    for term in ("visitv2", "armB:visitv3"):
        assert coefficients.loc[term, "df"] == pytest.approx((n - groups) * (t - 1), rel=1e-6)
    # the arm effect averaged over visits: n - g df (between-participant stratum)
    fit2 = fit_mmrm("y ~ arm*visit + cs(visit | id)", data, df=df, emmeans="arm")
    assert fit2.rows("contrast")["df"].iloc[0] == pytest.approx(n - groups, rel=1e-6)


def test_residual_and_between_within_df(long):
    fit = fit_mmrm("value ~ baseline + arm*visit + us(visit | participant_id)", long,
                   df="residual")
    assert set(fit.rows("coefficient")["df"]) == {fit.n_obs - len(fit.terms)}
    bw = fit_mmrm("value ~ baseline + arm*visit + us(visit | participant_id)", long,
                  df="between-within").rows("coefficient").set_index("term")["df"]
    # SAS: between = subjects - rank(between columns); within = N - subjects - other columns
    assert bw["armtreatment"] == 200 - 3
    assert bw["visit8"] == 520 - 200 - 4


# clubSandwich's CR0 on the same nlme::gls fits (tests/reference/mmrm_sandwich.R); for us, nlme's
# own convergence (beta ~5e-6 away) limits the small off-diagonal elements, so the SEs are compared
@pytest.mark.parametrize("structure", ["cs", "ar1", "us"])
def test_empirical_vcov_matches_clubsandwich_cr0(long, structure):
    expected = json.loads((REFERENCE / "mmrm_sandwich_ref.json").read_text())[structure]
    formula = f"value ~ baseline + arm*visit + {structure}(visit | participant_id)"
    fit = fit_mmrm(formula, long, vcov="empirical", df="residual")
    model = fit_mmrm(formula, long)
    assert list(fit.terms) == list(expected["fixed"])
    assert np.allclose(fit.estimates, model.estimates, rtol=0, atol=0)
    empirical = np.array(expected["vcov_empirical"])
    if structure == "us":
        assert rel(np.sqrt(np.diag(fit.cov_beta)), np.sqrt(np.diag(empirical))) < 1e-5
    else:
        assert rel(fit.cov_beta, empirical) < 1e-6
    coefficients = fit.rows("coefficient")
    assert rel(coefficients["std_error"], np.sqrt(np.diag(empirical))) < 1e-5
    assert "empirical vcov" in coefficients["method"].iloc[0]


def test_grid_with_the_data_equals_the_grid_alone(long):
    """The emmeans grid materialised with the data (one formulaic call) gives the rows the
    model spec gives the grid alone; with a stateful transform it is not materialised with the
    data, and centring the covariate leaves every LS-mean as it was (the grid sits at its mean)."""
    formula = "value ~ baseline + arm*visit + us(visit | participant_id)"
    together = _build_formula_problem(formula, long, reml=True, visit_order=None,
                                      reference="control", emmeans_grid=True)
    alone = _build_formula_problem(formula, long, reml=True, visit_order=None,
                                   reference="control")
    assert together.grid_matrix is not None and alone.grid_matrix is None
    labels_together, rows_together = emmeans_rows(together, ["arm"], ["visit"])
    labels_alone, rows_alone = emmeans_rows(alone, ["arm"], ["visit"])
    assert labels_together == labels_alone
    np.testing.assert_array_equal(rows_together, rows_alone)
    np.testing.assert_array_equal(together.problem.x, alone.problem.x)

    centred = "value ~ center(baseline) + arm*visit + us(visit | participant_id)"
    assert _build_formula_problem(centred, long, reml=True, visit_order=None, reference=None,
                                  emmeans_grid=True).grid_matrix is None
    plain = fit_mmrm(formula, long, emmeans="arm | visit").rows("lsmean")
    shifted = fit_mmrm(centred, long, emmeans="arm | visit").rows("lsmean")
    # the grid's baseline is 0 after centring, its mean before: the same predictions
    assert shifted["term"].tolist() == plain["term"].tolist()
    assert rel(shifted["estimate"], plain["estimate"]) < 1e-9
    assert rel(shifted["std_error"], plain["std_error"]) < 1e-7


def test_formula_errors(long):
    with pytest.raises(UsageError, match="covariance term"):
        fit_mmrm("value ~ baseline + arm*visit", long)
    with pytest.raises(UsageError, match="unknown covariance structure"):
        fit_mmrm("value ~ arm + banded(visit | participant_id)", long)
    with pytest.raises(UsageError, match="no column"):
        fit_mmrm("value ~ arm + nope + us(visit | participant_id)", long)
    with pytest.raises(UsageError, match="cannot evaluate the fixed effects 'center.nope."):
        fit_mmrm("value ~ center(nope) + us(visit | participant_id)", long)
    with pytest.raises(UsageError, match="null values"):
        fit_mmrm("value ~ log(baseline - 100) + us(visit | participant_id)", long)
    with pytest.raises(UsageError, match="names neither the values of the numeric time 'week'"):
        fit_mmrm("value ~ arm + sp_exp(week | participant_id)", long, visit_order=["a", "b"])
    numeric_time = fit_mmrm("value ~ arm + ar1(week | participant_id)", long,
                            visit_order=["4", "8", "12"])
    assert numeric_time.covariance.index.tolist() == ["4", "8", "12"]
    with pytest.raises(UsageError, match="in the order of its values"):
        fit_mmrm("value ~ arm + ar1(week | participant_id)", long, visit_order=["12", "8", "4"])
    with pytest.raises(UsageError, match="df method"):
        fit_mmrm("value ~ arm + us(visit | participant_id)", long, df="containment")
