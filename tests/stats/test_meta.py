"""Pooling (analysis.stats.meta) against metafor and against the defining properties of each estimator.

References
----------
* tests/reference/normand1999_ref.json: metafor ``rma`` (REML, DL, PM, FE; ``test = "knha"``) and
  ``predict`` on ``dat.normand1999`` for MD, SMD and ROM (make_reference.R).
* dat.bcg literals: the BCG vaccine trials (Colditz et al. 1994, metafor's ``dat.bcg``), with
  metafor's own published test values: ``confint(rma(yi, vi, method = "DL"))`` gives tau^2 0.3088
  [0.1197, 1.1115], I^2 92.1173 [81.9177, 97.6781], H^2 12.6861 [5.5303, 43.0680]
  (metafor tests/testthat/test_misc_confint.r); ``logLik(rma(yi, vi, method = "ML"))`` = -12.6651
  (test_misc_fitstats.r); REML tau^2 0.3132 (metafor's documented example output).
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from analysis.core.errors import DataError, UsageError
from analysis.stats.meta import (
    META_COLUMNS,
    effects_from_table,
    estimate_tau2,
    generalized_q,
    leave_one_out,
    log_likelihood,
    meta_analyse,
    meta_table,
    pool,
    tau2_confint,
)
from tests.conftest import REFERENCE

REF = json.loads((REFERENCE / "normand1999_ref.json").read_text())
FIELDS = {"estimate": "estimate", "se": "std_error", "ci_low": "ci_low", "ci_high": "ci_high", "p_value": "p_value",
          "tau2": "tau2", "I2": "i2", "Q": "q", "pi_low": "pi_low", "pi_high": "pi_high"}
RTOL = 1e-6
# metafor's PM solves Q(tau^2) = k - 1 with uniroot(tol = .Machine$double.eps^0.25), so its tau^2 is
# only good to about 1.2e-4 in absolute terms (checked: metafor's PM tau^2 leaves Q - (k-1) = 1.4e-4
# for SMD and 6.7e-4 for ROM, ours leaves < 1e-9).
METAFOR_UNIROOT_TOL = np.finfo(float).eps ** 0.25

BCG = np.array(
    [[4, 119, 11, 128], [6, 300, 29, 274], [3, 228, 11, 209], [62, 13536, 248, 12619], [33, 5036, 47, 5761],
     [180, 1361, 372, 1079], [8, 2537, 10, 619], [505, 87886, 499, 87892], [29, 7470, 45, 7232],
     [17, 1699, 65, 1600], [186, 50448, 141, 27197], [5, 2493, 3, 2338], [27, 16886, 29, 17825]],
    dtype=float,
)


def bcg() -> tuple[np.ndarray, np.ndarray]:
    """Log risk ratios and variances of dat.bcg, written out (metafor escalc "RR" formulas)."""
    a, b, c, d = BCG.T
    yi = np.log(a / (a + b)) - np.log(c / (c + d))
    vi = 1 / a - 1 / (a + b) + 1 / c - 1 / (c + d)
    return yi, vi


def _check(fit, expected: dict, fields=FIELDS, rtol=RTOL) -> None:
    for key, value in expected.items():
        if key not in fields:
            continue
        ours = getattr(fit, fields[key])
        if value is None:
            assert np.isnan(ours), key
        elif value == 0:
            assert ours == 0, key
        else:
            assert ours == pytest.approx(value, rel=rtol), key


MEASURES = ["MD", "SMD", "ROM"]


@pytest.mark.parametrize("measure", MEASURES)
@pytest.mark.parametrize("method", ["REML", "DL", "FE"])
def test_matches_metafor_rma(measure: str, method: str) -> None:
    ref = REF[measure]
    fit = pool(ref["yi"], ref["vi"], method=method)
    _check(fit, ref[method])


@pytest.mark.parametrize("measure", MEASURES)
def test_knapp_hartung_matches_metafor(measure: str) -> None:
    ref = REF[measure]
    fit = pool(ref["yi"], ref["vi"], method="REML", test="knha")
    _check(fit, ref["REML_HKSJ"])
    assert fit.df == 8


@pytest.mark.parametrize("measure", MEASURES)
def test_paule_mandel_against_metafor_and_its_definition(measure: str) -> None:
    ref = REF[measure]
    fit = pool(ref["yi"], ref["vi"], method="PM")
    # our tau^2 solves the PM equation exactly; metafor's is within its root-finder's tolerance
    assert generalized_q(ref["yi"], ref["vi"], fit.tau2) == pytest.approx(len(ref["yi"]) - 1, abs=1e-9)
    assert fit.tau2 == pytest.approx(ref["PM"]["tau2"], abs=METAFOR_UNIROOT_TOL)
    # at metafor's tau^2, everything else agrees to 1e-6
    at_metafor = pool(ref["yi"], ref["vi"], method="PM", tau2=ref["PM"]["tau2"])
    _check(at_metafor, ref["PM"])


def test_dat_bcg_q_profile_i2_h2_match_metafor_confint() -> None:
    yi, vi = bcg()
    fit = pool(yi, vi, method="DL")
    assert fit.tau2 == pytest.approx(0.3088, abs=5e-5)
    assert fit.tau2_ci_low == pytest.approx(0.1197, abs=5e-5)
    assert fit.tau2_ci_high == pytest.approx(1.1115, abs=5e-5)
    assert fit.i2 == pytest.approx(92.1173, abs=5e-5)
    assert fit.h2 == pytest.approx(12.6861, abs=5e-5)
    assert np.exp([fit.estimate, fit.ci_low, fit.ci_high]) == pytest.approx([0.4896, 0.3449, 0.6950], abs=5e-5)
    assert pool(yi, vi, method="REML").tau2 == pytest.approx(0.3132, abs=5e-5)


def test_dat_bcg_ml_log_likelihood_matches_metafor() -> None:
    yi, vi = bcg()
    tau2 = estimate_tau2(yi, vi, "ML")
    assert log_likelihood(yi, vi, tau2, reml=False) == pytest.approx(-12.6651, abs=5e-5)


@pytest.mark.parametrize("measure", MEASURES)
def test_q_profile_bounds_solve_the_generalised_q_equation(measure: str) -> None:
    ref = REF[measure]
    low, high = tau2_confint(ref["yi"], ref["vi"], 0.95)
    assert 0 < low < ref["REML"]["tau2"] < high
    assert generalized_q(ref["yi"], ref["vi"], low) == pytest.approx(stats.chi2.ppf(0.975, 8), rel=1e-10)
    assert generalized_q(ref["yi"], ref["vi"], high) == pytest.approx(stats.chi2.ppf(0.025, 8), rel=1e-10)


def test_q_profile_bounds_are_zero_when_q_is_small() -> None:
    # Q(0) = 0.5 for y = (0, 1), v = (1, 1): below chi2_{0.975,1} = 5.02, so the lower bound is 0;
    # above chi2_{0.025,1} = 0.00098, so the upper bound is positive. Identical studies: Q(0) = 0.
    low, high = tau2_confint([0.0, 1.0], [1.0, 1.0])
    assert low == 0.0
    assert high > 0 and generalized_q([0.0, 1.0], [1.0, 1.0], high) == pytest.approx(stats.chi2.ppf(0.025, 1), rel=1e-10)
    assert tau2_confint([0.0, 0.0], [1.0, 1.0]) == (0.0, 0.0)


@pytest.mark.parametrize("method,reml", [("ML", False), ("REML", True)])
@pytest.mark.parametrize("measure", MEASURES)
def test_likelihood_estimators_maximise_the_likelihood(measure: str, method: str, reml: bool) -> None:
    ref = REF[measure]
    tau2 = estimate_tau2(ref["yi"], ref["vi"], method)
    best = log_likelihood(ref["yi"], ref["vi"], tau2, reml=reml)
    grid = np.concatenate([np.linspace(0, 5 * tau2, 401), tau2 * (1 + np.array([-1e-4, 1e-4]))])
    others = [log_likelihood(ref["yi"], ref["vi"], t, reml=reml) for t in grid]
    assert best >= max(others) - 1e-12


def test_ml_by_hand_for_two_equal_variance_studies() -> None:
    # y = (0, 2), v = (1, 1): mu = 1, ML solves sum w^2 r^2 = sum w, i.e. 2/(1+t)^2 = 2/(1+t): t = 0;
    # REML solves 2/(1+t)^2 = 2/(1+t) - 1/(1+t): t = 1. DL: Q = 2, c = 1, tau2 = 1.
    assert estimate_tau2([0.0, 2.0], [1.0, 1.0], "ML") == 0.0
    assert estimate_tau2([0.0, 2.0], [1.0, 1.0], "REML") == pytest.approx(1.0, rel=1e-12)
    assert estimate_tau2([0.0, 2.0], [1.0, 1.0], "DL") == pytest.approx(1.0, rel=1e-12)
    assert estimate_tau2([0.0, 2.0], [1.0, 1.0], "PM") == pytest.approx(1.0, rel=1e-9)


def test_homogeneous_studies_truncate_tau2_at_zero() -> None:
    # Q = 0.02 < k - 1 = 2: every estimator gives 0 (statsmodels' raw DL would be negative)
    yi, vi = [0.1, 0.2, 0.15], [1.0, 1.0, 1.0]
    for method in ("REML", "DL", "PM", "ML"):
        fit = pool(yi, vi, method=method)
        assert fit.tau2 == 0.0 and fit.i2 == 0.0 and fit.h2 == 1.0
        assert fit.estimate == pytest.approx(0.15, rel=1e-12)
        assert fit.std_error == pytest.approx(np.sqrt(1 / 3), rel=1e-12)


def test_hand_worked_fixed_effect() -> None:
    # y = (1, 2, 4), v = (1, 1, 2): w = (1, 1, .5), mu = (1 + 2 + 2)/2.5 = 2, SE = sqrt(1/2.5),
    # Q = 1 + 0 + .5*4 = 3, I^2 = 100 (3 - 2)/3, H^2 = 1.5
    fit = pool([1.0, 2.0, 4.0], [1.0, 1.0, 2.0], method="FE")
    assert fit.estimate == pytest.approx(2.0, rel=1e-12)
    assert fit.std_error == pytest.approx(np.sqrt(0.4), rel=1e-12)
    assert fit.q == pytest.approx(3.0, rel=1e-12)
    assert fit.i2 == pytest.approx(100 / 3, rel=1e-12)
    assert fit.h2 == pytest.approx(1.5, rel=1e-12)
    assert fit.weights == pytest.approx((40.0, 40.0, 20.0), rel=1e-12)
    assert fit.q_p_value == pytest.approx(np.exp(-1.5), rel=1e-12)  # chi2_2 survival = exp(-x/2)
    assert np.isnan(fit.pi_low) and np.isnan(fit.tau2_ci_low)


def test_hand_worked_knapp_hartung_fixed_tau2() -> None:
    # tau2 fixed at 1 for y = (0, 2), v = (1, 1): w = (.5, .5), mu = 1, var = 1/1 = 1;
    # s2 = sum w r^2 / (k - 1) = 1, so the KH variance is 1 too; t with 1 df.
    fit = pool([0.0, 2.0], [1.0, 1.0], method="DL", test="knha", tau2=1.0)
    assert fit.std_error == pytest.approx(1.0, rel=1e-12)
    assert fit.ci_high == pytest.approx(1 + 12.706204736174707, rel=1e-9)  # qt(.975, 1)
    assert fit.pi_high == pytest.approx(1 + 12.706204736174707 * np.sqrt(2), rel=1e-9)


def test_leave_one_out_by_hand() -> None:
    fit = pool([1.0, 2.0, 4.0], [1.0, 1.0, 2.0], studies=["a", "b", "c"], method="FE")
    loo = leave_one_out(fit)
    assert loo["study"].tolist() == ["a", "b", "c"]
    # without c: mean(1, 2) = 1.5, SE sqrt(1/2); without a: (2 + 2)/1.5
    assert loo["estimate"].to_numpy() == pytest.approx([(2 + 2) / 1.5, (1 + 2) / 1.5, 1.5], rel=1e-12)
    assert loo.loc[2, "std_error"] == pytest.approx(np.sqrt(0.5), rel=1e-12)
    assert (loo["k"] == 2).all()


# ----------------------------------------------------------------------------------------------
# Properties

finite = st.floats(min_value=-5, max_value=5, allow_nan=False)
positive = st.floats(min_value=0.01, max_value=4, allow_nan=False)
studies = st.lists(st.tuples(finite, positive), min_size=2, max_size=12)


@settings(max_examples=40, deadline=None)
@given(y=finite, v=positive, method=st.sampled_from(["REML", "DL", "PM", "ML", "FE"]))
def test_one_study_pooled_is_that_study(y: float, v: float, method: str) -> None:
    fit = pool([y], [v], method=method)
    assert fit.estimate == y
    assert fit.std_error == pytest.approx(np.sqrt(v), rel=1e-12)
    assert fit.tau2 == 0.0 and fit.weights == (100.0,)


@settings(max_examples=40, deadline=None)
@given(data=studies)
def test_duplicating_every_study_halves_fixed_effect_variance(data) -> None:
    yi, vi = map(np.array, zip(*data, strict=True))
    once = pool(yi, vi, method="FE")
    twice = pool(np.concatenate([yi, yi]), np.concatenate([vi, vi]), method="FE")
    assert twice.std_error**2 == pytest.approx(once.std_error**2 / 2, rel=1e-10)
    assert twice.estimate == pytest.approx(once.estimate, rel=1e-10, abs=1e-12)


@settings(max_examples=30, deadline=None)
@given(data=studies, method=st.sampled_from(["REML", "DL", "PM", "ML", "FE"]), test=st.sampled_from(["z", "knha"]),
       seed=st.integers(0, 2**32 - 1))
def test_permuting_studies_changes_nothing(data, method: str, test: str, seed: int) -> None:
    yi, vi = map(np.array, zip(*data, strict=True))
    order = np.random.default_rng(seed).permutation(yi.size)
    a = pool(yi, vi, method=method, test=test)
    b = pool(yi[order], vi[order], method=method, test=test)
    for field in ("estimate", "std_error", "p_value", "ci_low", "ci_high", "pi_low", "pi_high", "tau2", "i2", "q",
                  "tau2_ci_low", "tau2_ci_high"):
        assert getattr(b, field) == pytest.approx(getattr(a, field), rel=1e-8, abs=1e-10, nan_ok=True), field
    assert np.array(b.weights) == pytest.approx(np.array(a.weights)[order], rel=1e-8)


@settings(max_examples=30, deadline=None)
@given(data=studies, method=st.sampled_from(["REML", "ML"]))
def test_likelihood_estimate_is_global_maximum(data, method: str) -> None:
    yi, vi = map(np.array, zip(*data, strict=True))
    reml = method == "REML"
    tau2 = estimate_tau2(yi, vi, method)
    best = log_likelihood(yi, vi, tau2, reml=reml)
    grid = np.concatenate([[0.0], np.geomspace(1e-6, 100.0, 200)])
    assert best >= max(log_likelihood(yi, vi, t, reml=reml) for t in grid) - 1e-9


# ----------------------------------------------------------------------------------------------
# Tidy table, input validation


def test_meta_table_layout_and_back_transform() -> None:
    ref = REF["ROM"]
    fit = pool(ref["yi"], ref["vi"], studies=[f"s{i}" for i in range(9)], method="REML")
    table = meta_table(fit, measure="ROM", exponentiate=True)
    assert table.columns.tolist() == META_COLUMNS
    assert table["type"].tolist() == ["study"] * 9 + ["summary", "heterogeneity"]
    summary = table.iloc[9]
    assert summary["estimate"] == pytest.approx(np.exp(ref["REML"]["estimate"]), rel=1e-6)
    assert summary["pi_high"] == pytest.approx(np.exp(ref["REML"]["pi_high"]), rel=1e-6)
    assert summary["std_error"] == pytest.approx(ref["REML"]["se"], rel=1e-6)  # log scale
    assert summary["contrast"] == "treatment / control" and bool(summary["exponentiated"])
    assert table.loc[table["type"] == "study", "weight"].sum() == pytest.approx(100.0, rel=1e-12)
    het = table.iloc[10]
    assert het["i2"] == pytest.approx(ref["REML"]["I2"], rel=1e-6) and het["q_df"] == 8
    with pytest.raises(UsageError, match="ratio measures"):
        meta_table(fit, measure="MD", exponentiate=True)


def test_pool_rejects_bad_arguments() -> None:
    with pytest.raises(UsageError, match="vi must be > 0"):
        pool([1.0, 2.0], [1.0, 0.0])
    with pytest.raises(UsageError, match="finite"):
        pool([1.0, np.nan], [1.0, 1.0])
    with pytest.raises(UsageError, match="method"):
        pool([1.0, 2.0], [1.0, 1.0], method="SJ")  # type: ignore[arg-type]
    with pytest.raises(UsageError, match="test"):
        pool([1.0, 2.0], [1.0, 1.0], test="t")  # type: ignore[arg-type]
    with pytest.raises(UsageError, match="ci_level"):
        pool([1.0, 2.0], [1.0, 1.0], ci_level=95)
    with pytest.raises(UsageError, match="two studies"):
        pool([1.0], [1.0], test="knha")


def test_effects_table_failures_name_row_column_rule() -> None:
    frame = pd.DataFrame({"study": ["A", "B", "B", None], "yi": [1.0, None, 2.0, 3.0], "vi": [1.0, 1.0, -1.0, 1.0]})
    with pytest.raises(DataError) as caught:
        effects_from_table(frame, source="effects.csv")
    failures = caught.value.failures
    got = set(zip(failures["row"], failures["column"], failures["rule"], strict=True))
    assert (3, "yi", "value is required") in got
    assert (4, "vi", "sampling variance must be > 0") in got
    assert (4, "study", "study labels must be unique") in got
    assert (5, "study", "study label is required") in got
    assert (failures["file"] == "effects.csv").all()
    assert "row 4, column 'vi'" in str(caught.value)


def test_effects_table_needs_two_studies_and_columns() -> None:
    with pytest.raises(DataError, match="at least two studies"):
        effects_from_table(pd.DataFrame({"study": ["A"], "yi": [1.0], "vi": [1.0]}), source="e.csv")
    with pytest.raises(DataError, match="column 'vi': required column"):
        effects_from_table(pd.DataFrame({"study": ["A", "B"], "yi": [1.0, 2.0]}), source="e.csv")


def test_meta_analyse_from_effects_table() -> None:
    ref = REF["MD"]
    frame = pd.DataFrame({"study": [str(i) for i in range(1, 10)], "measure": "MD", "yi": ref["yi"], "vi": ref["vi"]})
    fit, table = meta_analyse(effects_from_table(frame), method="DL", test="z")
    _check(fit, ref["DL"])
    assert table.loc[table["type"] == "summary", "measure"].item() == "MD"
