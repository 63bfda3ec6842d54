"""MMRM (analysis/stats/models/mmrm/__init__.py) against R nlme::gls + emmeans, nlme::lme, R lm + emmeans ANCOVA, and
statsmodels OLS; plus its failure modes.

Expected values come from tests/reference/ (R) or from statsmodels OLS fits written here, never
from analysis.stats.models.mmrm itself.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy import stats

from analysis.core.errors import ModelError, TrialkitError, UsageError
from analysis.core.tidy import RESULT_COLUMNS
from analysis.stats.models.mmrm import fit_mmrm, fit_random_intercept
from tests.conftest import REFERENCE

REF = REFERENCE
VISITS = ["4", "8", "12"]


def rel(actual, expected):
    actual, expected = np.asarray(actual, float), np.asarray(expected, float)
    return np.max(np.abs(actual - expected) / np.abs(expected))


@pytest.fixture(scope="module")
def wide() -> pd.DataFrame:
    return pd.read_csv(REF / "mmrm_synthetic_wide.csv")


@pytest.fixture(scope="module")
def long(wide) -> pd.DataFrame:
    frame = wide.melt(id_vars=["participant_id", "arm", "baseline"],
                      value_vars=["week4", "week8", "week12"], var_name="visit",
                      value_name="value")
    frame["visit"] = frame["visit"].str.removeprefix("week")
    return frame


@pytest.fixture(scope="module")
def ref() -> dict:
    return json.loads((REF / "mmrm_synthetic_ref.json").read_text())


@pytest.fixture(scope="module")
def fit(long):
    return fit_mmrm(long, visit_order=VISITS)


# ---------------------------------------------------------------- R nlme::gls + emmeans


def test_counts(fit, ref):
    assert fit.n_participants == ref["n_participants"] == 200
    assert fit.n_obs == ref["n_obs"] == 520
    assert fit.n_dropped_missing == 600 - 520
    assert fit.n_dropped_covariate == 0
    assert fit.converged and fit.covariance_structure == "unstructured"
    assert not fit.fallback_taken


def test_reml_loglik_fixed_effects_and_se_match_nlme_gls(fit, ref):
    assert rel(fit.reml_loglik, ref["logLik_REML"]) < 1e-4
    assert list(fit.terms) == list(ref["fixed"])  # R's names and order
    assert rel(fit.estimates, list(ref["fixed"].values())) < 1e-4
    assert rel(fit.std_errors, list(ref["fixed_se"].values())) < 1e-4
    assert rel(np.sqrt(np.diag(fit.cov_beta)), list(ref["fixed_se"].values())) < 1e-4


def test_covariance_matches_getvarcov(fit, ref):
    assert list(fit.covariance.index) == VISITS
    assert rel(fit.covariance.to_numpy(), ref["covariance_week4_8_12"]) < 1e-3


def test_visit_contrasts_match_emmeans(fit, ref):
    expected = pd.DataFrame(ref["contrasts_treatment_minus_control"])
    got = fit.contrasts
    assert list(got.columns[: len(RESULT_COLUMNS)]) == RESULT_COLUMNS
    assert got["visit"].tolist() == expected["week"].tolist()
    assert set(got["contrast"]) == {"treatment - control"}
    assert set(got["measure"]) == {"LS-mean difference"}
    assert set(got["method"]) == {"MMRM, unstructured covariance, REML, Satterthwaite df"}
    assert rel(got["estimate"], expected["estimate"]) < 1e-4
    assert rel(got["std_error"], expected["SE"]) < 1e-4
    assert rel(got["statistic"], expected["estimate"] / expected["SE"]) < 1e-4
    # R's df carry numerical error: nlme's apVar is an fdHess Hessian whose 3e-7 step for the
    # near-zero log SD ratio (week 8 / week 4) turns a few ulp of rounding in the log-likelihood
    # into ~2% (SD) in the week-4/8 df, and emmeans' appx-satterthwaite regresses d vcov / d theta
    # on 8 random refits (<= 0.2% here). Ours are exact (checked in the one-visit and per-visit
    # ANCOVA tests below), so only agreement within that numerical noise can be asked for.
    assert rel(got["df"], expected["df_satterthwaite"]) < 0.025
    # CI and p move (slightly) with the df: within 1e-3 SE of R's limits, p to 1e-3 relative...
    for side in ("ci_low", "ci_high"):
        assert np.max(np.abs(got[side] - expected[side]) / expected["SE"]) < 1e-3
    assert rel(got["p_value"], expected["p_value"]) < 2e-3
    # ...and exactly R's at R's df.
    quantile = stats.t.ppf(0.975, expected["df_satterthwaite"])
    assert rel(got["estimate"] - quantile * got["std_error"], expected["ci_low"]) < 1e-4
    assert rel(got["estimate"] + quantile * got["std_error"], expected["ci_high"]) < 1e-4
    p_at_r_df = 2 * stats.t.sf(np.abs(got["statistic"]), expected["df_satterthwaite"])
    assert rel(p_at_r_df, expected["p_value"]) < 5e-4  # a small p magnifies 1e-5 in t
    assert (got["ci_level"] == 0.95).all()
    # participants observed at each visit, counted from the reference CSV by hand
    wide = pd.read_csv(REF / "mmrm_synthetic_wide.csv")
    for visit, row in zip(VISITS, got.itertuples(), strict=True):
        observed = wide.loc[wide[f"week{visit}"].notna(), "arm"].value_counts()
        assert (row.n_treatment, row.n_control) == (observed["treatment"], observed["control"])


def test_lsmeans_match_emmeans(fit, ref):
    expected = pd.DataFrame(ref["lsmeans"]).rename(columns={"week": "visit"})
    merged = fit.lsmeans.merge(expected, on=["arm", "visit"], validate="one_to_one")
    assert len(merged) == 6
    assert rel(merged["estimate"], merged["emmean"]) < 1e-4
    assert rel(merged["std_error"], merged["SE"]) < 1e-4
    assert (merged["ci_low"] < merged["estimate"]).all() and (merged["df"] > 100).all()


# ---------------------------------------------------------------- R nlme::lme random intercept


def test_random_intercept_matches_nlme_lme(long, ref):
    lmm = ref["lmm_random_intercept"]
    result = fit_random_intercept(long, visit_order=VISITS)
    assert list(result.terms) == list(lmm["fixed"])
    assert rel(result.estimates, list(lmm["fixed"].values())) < 1e-4
    assert rel(result.std_errors, list(lmm["fixed_se"].values())) < 1e-4
    assert rel(result.sigma, lmm["sigma"]) < 1e-4
    assert rel(result.sd_intercept, lmm["sd_intercept"]) < 1e-4
    assert result.converged
    assert result.contrasts["method"].str.startswith("Random-intercept LMM").all()


def test_compound_symmetry_mmrm_equals_random_intercept_lme(long, ref):
    # With a positive within-participant correlation, compound symmetry is the lme model.
    lmm = ref["lmm_random_intercept"]
    cs = fit_mmrm(long, visit_order=VISITS, covariance="compound_symmetry")
    assert rel(cs.estimates, list(lmm["fixed"].values())) < 1e-4
    assert rel(cs.std_errors, list(lmm["fixed_se"].values())) < 1e-4
    sigma = cs.covariance.to_numpy()
    assert rel(np.sqrt(sigma[0, 1]), lmm["sd_intercept"]) < 1e-4
    assert rel(np.sqrt(sigma[0, 0] - sigma[0, 1]), lmm["sigma"]) < 1e-4
    assert cs.contrasts["method"].iloc[0] == (
        "MMRM, compound symmetry covariance, REML, Satterthwaite df")


def test_nested_structures_order_their_reml_loglik(long, fit):
    # CS and AR(1) are special cases of Toeplitz, which is a special case of unstructured.
    ll = {s: fit_mmrm(long, visit_order=VISITS, covariance=s).reml_loglik
          for s in ("compound_symmetry", "ar1", "toeplitz")}
    assert ll["toeplitz"] >= max(ll["compound_symmetry"], ll["ar1"]) - 1e-6
    assert fit.reml_loglik >= ll["toeplitz"] - 1e-6


# ---------------------------------------------------------------- ANCOVA special cases


def _ancova_frame(path: Path, treatment: str) -> pd.DataFrame:
    raw = pd.read_csv(path)
    raw = raw[raw["Treat"].isin([treatment, "Cont"])]
    return pd.DataFrame({
        "participant_id": raw["id"], "arm": np.where(raw["Treat"] == "Cont", "control", "treatment"),
        "visit": "post", "baseline": raw["Prewt"], "value": raw["Postwt"],
    })


def test_one_visit_mmrm_is_the_ancova_of_r_lm_and_statsmodels_ols():
    data = _ancova_frame(REF / "anorexia.csv", "FT")
    ref = json.loads((REF / "anorexia_ref.json").read_text())["FT"]
    result = fit_mmrm(data)
    row = result.contrasts.iloc[0]
    r = ref["ancova"]
    assert rel(row["estimate"], r["estimate"]) < 1e-6
    assert rel(row["std_error"], r["std_error"]) < 1e-6
    assert rel(row["statistic"], r["t"]) < 1e-6
    assert rel(row["df"], r["df"]) < 1e-4  # Satterthwaite reduces to n - p = 40
    assert rel(row["p_value"], r["p_value"]) < 1e-4
    assert rel([row["ci_low"], row["ci_high"]], [r["ci_low"], r["ci_high"]]) < 1e-4
    means = ref["ancova_adjusted_means"]
    ls = result.lsmeans.set_index("arm")
    assert rel(ls.loc["control", "estimate"], means["Cont"]["emmean"]) < 1e-6
    assert rel(ls.loc["treatment", "estimate"], means["FT"]["emmean"]) < 1e-6
    assert rel(ls.loc["treatment", "std_error"], means["FT"]["SE"]) < 1e-6
    # and statsmodels OLS on the same rows
    x = sm.add_constant(np.column_stack([(data["arm"] == "treatment").astype(float),
                                         data["baseline"]]))
    ols = sm.OLS(data["value"].to_numpy(float), x).fit()
    assert rel(row["estimate"], ols.params[1]) < 1e-6
    assert rel(row["std_error"], ols.bse[1]) < 1e-6
    assert row["df"] == pytest.approx(ols.df_resid, rel=1e-4)


def test_complete_balanced_mmrm_with_baseline_by_visit_is_per_visit_ancova(wide):
    # Identical regressors in every visit's equation and no missing data: GLS = OLS per visit,
    # the REML covariance is E'E/(n - q), so estimate, SE and df are each visit's ANCOVA.
    complete = wide.dropna()
    data = complete.melt(id_vars=["participant_id", "arm", "baseline"],
                         value_vars=["week4", "week8", "week12"], var_name="visit",
                         value_name="value")
    result = fit_mmrm(data, visit_order=["week4", "week8", "week12"], baseline_by_visit=True)
    assert "baseline:visitweek12" in result.terms
    x = sm.add_constant(np.column_stack([(complete["arm"] == "treatment").astype(float),
                                         complete["baseline"]]))
    for row in result.contrasts.itertuples():
        ols = sm.OLS(complete[row.visit].to_numpy(float), x).fit()
        assert rel(row.estimate, ols.params[1]) < 1e-6
        assert rel(row.std_error, ols.bse[1]) < 1e-5
        assert rel(row.df, ols.df_resid) < 1e-4
        assert row.n_treatment + row.n_control == len(complete)


def test_mar_dropout_moves_mmrm_away_from_complete_case_as_r_does(wide, fit, ref):
    # Week 12: complete-case ANCOVA (statsmodels OLS on the week-12 completers) against the MMRM.
    cc = wide.dropna(subset=["week12"])
    x = sm.add_constant(np.column_stack([(cc["arm"] == "treatment").astype(float),
                                         cc["baseline"]]))
    complete_case = sm.OLS(cc["week12"].to_numpy(float), x).fit().params[1]
    r_mmrm = ref["contrasts_treatment_minus_control"][2]["estimate"]
    ours = fit.contrasts.iloc[2]["estimate"]
    assert r_mmrm - complete_case > 0.3  # R: MMRM less negative than complete case
    assert ours - complete_case == pytest.approx(r_mmrm - complete_case, rel=1e-3)


def test_mar_dropout_mmrm_recovers_truth_where_complete_case_is_biased():
    # Large simulated trial, dropout driven by the last observed value (MAR); true week-12 effect
    # is -4. Complete-case ANCOVA is biased towards 0, the MMRM is not.
    rng = np.random.default_rng(0)
    n = 4000
    arm = np.where(np.arange(n) < n // 2, "control", "treatment")
    base = rng.normal(60, 6, n)
    cov = 40 * np.array([[1, 0.8, 0.7], [0.8, 1, 0.8], [0.7, 0.8, 1.0]])
    y = (20 + 0.6 * base[:, None] + (arm == "treatment")[:, None] * np.array([-1.5, -3.0, -4.0])
         + rng.multivariate_normal(np.zeros(3), cov, n))
    drop8 = rng.random(n) < 1 / (1 + np.exp(20 - 0.35 * y[:, 0]))
    y[drop8, 1:] = np.nan
    drop12 = ~drop8 & (rng.random(n) < 1 / (1 + np.exp(20 - 0.35 * y[:, 1])))
    y[drop12, 2] = np.nan
    data = pd.DataFrame({"participant_id": np.repeat(np.arange(n), 3).astype(str),
                         "arm": np.repeat(arm, 3), "baseline": np.repeat(base, 3),
                         "visit": np.tile(["w4", "w8", "w12"], n), "value": y.ravel()})
    week12 = fit_mmrm(data, visit_order=["w4", "w8", "w12"]).contrasts.iloc[2]
    kept = ~np.isnan(y[:, 2])
    x = sm.add_constant(np.column_stack([arm[kept] == "treatment", base[kept]]).astype(float))
    complete_case = sm.OLS(y[kept, 2], x).fit().params[1]
    assert abs(week12["estimate"] - (-4.0)) < 2 * week12["std_error"]
    assert complete_case - (-4.0) > 4 * week12["std_error"]


# ---------------------------------------------------------------- inputs and options


def test_missing_baseline_rows_are_dropped_and_counted(long):
    data = long.copy()
    data.loc[data["participant_id"] == "LBP001", "baseline"] = np.nan
    result = fit_mmrm(data, visit_order=VISITS)
    assert result.n_dropped_missing == 80  # a missing response is counted first
    assert result.n_dropped_covariate == 1  # LBP001's one observed visit (week 4)
    assert result.n_participants == 199


def test_categorical_covariate_lsmeans_average_levels(long):
    data = long.assign(site=np.where(long["participant_id"].str[-1].isin(list("01234")), "A", "B"))
    result = fit_mmrm(data, visit_order=VISITS, covariates=["site"])
    assert "siteB" in result.terms
    # contrasts do not involve the covariate; LS-means use weight 1/2 on siteB
    beta = dict(zip(result.terms, result.estimates, strict=True))
    ls = result.lsmeans.set_index(["arm", "visit"])
    mean_baseline = data.dropna(subset=["value"])["baseline"].mean()
    expected = beta["(Intercept)"] + beta["baseline"] * mean_baseline + beta["siteB"] / 2
    assert ls.loc[("control", "4"), "estimate"] == pytest.approx(expected, rel=1e-10)


def test_visit_order_from_numeric_and_categorical_columns(long):
    numeric = long.assign(visit=long["visit"].astype(int))
    assert fit_mmrm(numeric).visits == ("4", "8", "12")
    categorical = long.assign(visit=pd.Categorical(long["visit"], categories=["0", *VISITS]))
    assert fit_mmrm(categorical).visits == tuple(VISITS)


def _small(n: int = 40, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    ids = np.repeat([f"P{i:02d}" for i in range(n)], 3)
    arm = np.where(np.repeat(np.arange(n), 3) % 2 == 0, "control", "treatment")
    errors = rng.multivariate_normal(np.zeros(3), [[4, 2, 1], [2, 4, 2], [1, 2, 4]], n).ravel()
    base = np.repeat(rng.normal(50, 5, n), 3)
    return pd.DataFrame({"participant_id": ids, "arm": arm, "visit": np.tile(["a", "b", "c"], n),
                         "baseline": base, "value": 10 + 0.5 * base + errors})


# ---------------------------------------------------------------- failure modes


def test_non_convergence_is_reported():
    with pytest.raises(ModelError, match="did not converge within 1 iterations"):
        fit_mmrm(_small(), visit_order=["a", "b", "c"], max_iterations=1)


def test_degenerate_covariance_is_reported():
    data = _small()
    data["value"] = data["baseline"] + data["visit"].map({"a": 0.0, "b": 1.0, "c": 2.0})
    data["value"] += np.repeat(np.random.default_rng(1).normal(size=40), 3)  # corr = 1
    with pytest.raises(ModelError, match="unstructured MMRM did not converge"):
        fit_mmrm(data, visit_order=["a", "b", "c"])


def test_unidentifiable_unstructured_fails_loudly_or_falls_back_as_asked():
    data = _small(n=80)
    number = data["participant_id"].str[1:].astype(int)
    data.loc[(number % 4 < 2) & (data["visit"] == "c"), "value"] = np.nan
    data.loc[(number % 4 >= 2) & (data["visit"] == "a"), "value"] = np.nan
    with pytest.raises(ModelError, match=r"not identifiable.*\('a', 'c'\)"):
        fit_mmrm(data, visit_order=["a", "b", "c"])
    result = fit_mmrm(data, visit_order=["a", "b", "c"], fallback=("toeplitz", "ar1"))
    assert result.covariance_structure == "ar1" and result.requested_structure == "unstructured"
    assert result.fallback_taken and "not identifiable" in result.fallback_reason
    assert result.contrasts["method"].iloc[0] == "MMRM, AR(1) covariance, REML, Satterthwaite df"
    assert result.contrasts["note"].str.startswith("fallback from unstructured").all()


@pytest.mark.parametrize(
    ("change", "error", "message"),
    [
        (lambda d: d.drop(columns="baseline"), UsageError, "no column \\['baseline'\\]"),
        (lambda d: d.assign(arm=d["arm"].replace("control", "placebo")), UsageError, "placebo"),
        (lambda d: d[(d["arm"] == "control") | (d["participant_id"] == "P01")], ModelError,
         "arm 'treatment' has 1 participant"),
        (lambda d: d.assign(value=np.where(d["visit"] == "c", np.nan, d["value"])), ModelError,
         "visit\\(s\\) \\['c'\\] have no observed response"),
        (lambda d: pd.concat([d, d.iloc[:1]]), ModelError, "duplicated participant x visit"),
        (lambda d: d.assign(site=1.0), ModelError, "singular: \\['site'\\]"),
        (lambda d: d.assign(value=np.where(
            (d["visit"] == "c") & (d["arm"] == "treatment"), np.nan, d["value"])), ModelError,
         "singular: .*'armtreatment:visitc'"),
        (lambda d: d.assign(value=np.where(d.index == 0, np.inf, d["value"])), ModelError,
         "infinite"),
    ],
)
def test_bad_input_raises_a_clear_error(change, error, message):
    data = change(_small())
    covariates = ["site"] if "site" in data.columns else []
    with pytest.raises(error, match=message):
        fit_mmrm(data, visit_order=["a", "b", "c"], covariates=covariates)


def test_bad_arguments():
    data = _small()
    with pytest.raises(UsageError, match="unknown covariance structure"):
        fit_mmrm(data, covariance="banded")
    with pytest.raises(UsageError, match="ci_level"):
        fit_mmrm(data, ci_level=95)
    with pytest.raises(UsageError, match="outside visit_order"):
        fit_mmrm(data, visit_order=["a", "b"])
    assert issubclass(ModelError, TrialkitError) and ModelError.exit_code == 1
