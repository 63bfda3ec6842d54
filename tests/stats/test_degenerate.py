"""Degenerate statistics: known crash and hang cases, each with the answer a trial statistician expects.

* A floor effect (every participant at 0 at the primary visit) is a valid trial result. The ANCOVA
  follows R's ``lm`` on an "essentially perfect fit": finite estimate, standard error 0, no t
  statistic or p-value (NaN), a zero-width interval, and a note saying why; the standardised
  effect (SD 0) is not estimable and says so. ``trialkit run`` on such a trial exits 0 with every
  degenerate cell explained.
* Values near the float limits never hang the noncentral-t interval and never crash the
  meta-analysis solver; a result outside the floating-point range is NaN with a note or a
  trialkit error, never an exception from NumPy or Python.
"""

from __future__ import annotations

import math
import time
import warnings
from fractions import Fraction
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis.cli import run_cli
from analysis.core.errors import ModelError, UsageError
from analysis.stats import power as pw
from analysis.stats.describe import describe
from analysis.stats.effects import (
    change_sd,
    escalc,
    hedges_g_bootstrap,
    log_ratio_of_means,
    mean_difference,
    smcc,
    smd_noncentral_ci,
    standardized_mean_difference,
)
from analysis.stats.effects import conversions as cv
from analysis.stats.effects.bootstrap import bootstrap_ci
from analysis.stats.meta import meta_table, pool
from analysis.stats.meta.pooling import _typical_variance
from analysis.stats.models.ancova import ancova
from analysis.stats.models.missing import multiple_imputation_ancova, tipping_point
from analysis.stats.models.mmrm import fit_mmrm
from analysis.stats.models.mmrm.random_intercept import fit_random_intercept
from analysis.stats.models.responders import compare_proportions
from analysis.stats.models.rubin import rubin_pool
from tests.conftest import SMALL_PLAN


def long_dataset(treatment: list[float], control: list[float], baseline: list[float] | None = None,
                 visit: str = "w8") -> pd.DataFrame:
    values = treatment + control
    base = baseline if baseline is not None else [5.0 + (i % 3) for i in range(len(values))]
    return pd.DataFrame({
        "participant_id": [f"P{i:02d}" for i in range(len(values))],
        "arm": ["treatment"] * len(treatment) + ["control"] * len(control),
        "outcome": "pain",
        "visit": visit,
        "value": values,
        "baseline": base,
    })


# ------------------------------------------------------------------------------------------------
# ANCOVA: floor effect and other perfect fits


def test_ancova_floor_effect_reports_estimate_with_se_zero_like_r_lm():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = ancova(long_dataset([0.0] * 6, [0.0] * 6), outcome="pain", visit="w8", robust=True)
    model, hc3, std = (res.effect.iloc[i] for i in range(3))
    for row in (model, hc3):
        assert row["estimate"] == 0.0 and row["std_error"] == 0.0
        assert math.isnan(row["statistic"]) and math.isnan(row["p_value"])
        assert row["ci_low"] == row["ci_high"] == 0.0
        assert "essentially perfect fit" in row["note"]
    assert math.isnan(std["estimate"]) and "not estimable" in std["method"] and "SD is 0" in std["method"]
    assert (res.adjusted_means["std_error"] == 0).all() and (res.adjusted_means["estimate"] == 0).all()
    assert "floor effect" in res.note


def test_ancova_perfect_fit_with_a_difference_keeps_the_difference():
    # treatment all at 2, control all at 5: the adjusted difference is exactly -3 with no residual
    res = ancova(long_dataset([2.0] * 5, [5.0] * 5), outcome="pain", visit="w8")
    row = res.effect.iloc[0]
    assert row["estimate"] == pytest.approx(-3.0, abs=1e-12) and row["std_error"] == 0.0
    assert math.isnan(row["p_value"]) and row["ci_low"] == row["ci_high"] == row["estimate"]
    assert "perfect fit" in row["note"]


def test_ancova_residual_sd_standardiser_of_a_perfect_fit_is_not_estimable():
    res = ancova(long_dataset([2.0] * 5, [5.0] * 5), outcome="pain", visit="w8", standardiser="residual_sd")
    std = res.effect.iloc[-1]
    assert math.isnan(std["estimate"]) and "not estimable" in std["method"]


def test_ancova_hc3_with_a_leverage_one_participant_is_not_estimable():
    data = long_dataset([3.0, 4.0, 6.0, 5.0], [6.0, 7.0, 5.0, 8.0], baseline=[5.0, 6.0, 7.0, 5.5, 6.5, 7.5, 5.2, 6.8])
    participants = pd.DataFrame({"participant_id": data["participant_id"], "site": ["A"] * 7 + ["B"]})
    res = ancova(data, outcome="pain", visit="w8", covariates=["site"], participants=participants, robust=True)
    model, hc3 = res.effect.iloc[0], res.effect.iloc[1]
    assert math.isfinite(model["std_error"]) and model["std_error"] > 0
    assert math.isnan(hc3["std_error"]) and "leverage 1" in hc3["method"]


def test_ancova_one_participant_in_an_arm_gives_no_standardised_effect_instead_of_an_error():
    res = ancova(long_dataset([3.0], [6.0, 7.0, 5.0, 8.0], baseline=[5.0, 6.0, 7.0, 5.5, 6.5]), outcome="pain",
                 visit="w8")
    assert math.isfinite(res.effect.iloc[0]["estimate"])
    std = res.effect.iloc[-1]
    assert math.isnan(std["estimate"]) and "fewer than two" in std["method"]


def test_ancova_with_a_constant_baseline_drops_it_as_r_lm_does():
    data = long_dataset([3.0, 4.0, 5.0], [6.0, 7.0, 8.0], baseline=[10.0] * 6)  # everyone at the ceiling
    res = ancova(data, outcome="pain", visit="w8", robust=True)
    row = res.effect.iloc[0]
    assert row["estimate"] == pytest.approx(-3.0) and row["df"] == 4.0  # the unadjusted difference
    assert "aliased" in row["note"]


def test_ancova_too_few_participants_or_extreme_values_are_model_errors():
    with pytest.raises(ModelError, match="too few complete participants"):
        ancova(long_dataset([3.0, 4.0], [6.0], baseline=[5.0, 6.0, 7.5]), outcome="pain", visit="w8")
    with pytest.raises(ModelError, match="infinite"):
        ancova(long_dataset([3.0, np.inf, 4.0], [6.0, 5.0, 4.0]), outcome="pain", visit="w8")
    with pytest.raises(ModelError, match="rescale"):
        ancova(long_dataset([3e300, 1e300, 4e300], [6e300, 5e300, 4e300]), outcome="pain", visit="w8")


# ------------------------------------------------------------------------------------------------
# Multiple imputation, Rubin's rules, MMRM on a floor effect


def floor_trial(missing: bool = True) -> pd.DataFrame:
    rows = []
    for i in range(12):
        arm = "treatment" if i % 2 else "control"
        base = 4.0 + i % 5
        for visit, week, value in (("w4", 4.0, float((i * 3) % 5)), ("w8", 8.0, np.nan if (missing and i == 11) else 0.0)):
            rows.append({"participant_id": f"P{i:02d}", "arm": arm, "outcome": "pain", "visit": visit,
                         "visit_week": week, "value": value, "baseline": base, "baseline_flag": False})
    return pd.DataFrame(rows)


def test_multiple_imputation_of_a_floor_effect_pools_to_se_zero_with_a_note():
    mi = multiple_imputation_ancova(floor_trial(), outcome="pain", visit="w8", m=5, seed=3, visits=["w4", "w8"])
    assert mi.pooled.estimate == 0.0 and mi.pooled.std_error == 0.0 and math.isnan(mi.pooled.p_value)
    assert "total variance 0" in mi.effect.iloc[0]["note"]
    tp = tipping_point(floor_trial(), outcome="pain", visit="w8", better="lower", m=5, seed=3, visits=["w4", "w8"])
    assert math.isnan(tp.delta) and "no test" in tp.effect.iloc[0]["note"]


def test_rubin_pool_degenerate_variances():
    same = rubin_pool([1.5, 1.5, 1.5], [0.0, 0.0, 0.0], df_complete=10)
    assert same.estimate == 1.5 and same.std_error == 0.0 and math.isnan(same.statistic)
    assert same.ci_low == same.ci_high == 1.5 and "total variance 0" in same.note
    spread = rubin_pool([1.0, 2.0, 3.0], [0.0, 0.0, 0.0], df_complete=10)
    assert spread.df == 0.0 and math.isnan(spread.p_value) and math.isnan(spread.ci_low)
    assert "Barnard-Rubin df 0" in spread.note and spread.fmi == 1.0
    with pytest.raises(UsageError, match="rescale"):
        rubin_pool([1e200, 2e200], [1.0, 1.0], df_complete=10)


def test_mmrm_of_a_response_without_variation_is_a_model_error():
    data = floor_trial(missing=False).assign(value=0.0).drop(columns=["visit_week", "baseline_flag"])
    with pytest.raises(ModelError):
        fit_mmrm(data, visit_order=["w4", "w8"])
    with pytest.raises(ModelError, match="rescale"):
        fit_mmrm(data.assign(value=np.linspace(1e300, 2e300, len(data))), visit_order=["w4", "w8"])


def test_random_intercept_falls_back_when_lbfgs_hits_a_singular_matrix():
    """statsmodels' L-BFGS-B raised LinAlgError on this plain example; now BFGS takes over."""
    rng = np.random.default_rng(2)
    ids = np.repeat([f"P{i:02d}" for i in range(40)], 2)
    long = pd.DataFrame({"participant_id": ids, "arm": np.where(np.arange(80) < 40, "control", "treatment"),
                         "visit": np.tile(["w4", "w8"], 40), "baseline": np.repeat(rng.normal(50, 5, 40), 2)})
    long["value"] = 0.5 * long["baseline"] + np.repeat(rng.normal(0, 2, 40), 2) + rng.normal(0, 3, 80)
    fit = fit_random_intercept(long, visit_order=["w4", "w8"])
    assert fit.sigma > 0 and np.isfinite(fit.contrasts["estimate"]).all()


# ------------------------------------------------------------------------------------------------
# Effect sizes: SD 0, float limits, the noncentral-t hang


def test_standardised_effects_with_sd_zero_are_not_estimable_with_a_reason():
    es = standardized_mean_difference(10, 1.0, 0.0, 10, 0.0, 0.0)
    assert math.isnan(es.estimate) and "pooled SD is 0" in es.note
    md = mean_difference(10, 1.0, 0.0, 10, 0.0, 0.0)
    assert md.estimate == 1.0 and md.std_error == 0.0 and md.ci_low == md.ci_high == 1.0
    assert "variance is 0" in md.note
    out = escalc("SMD", pd.DataFrame({"n1i": [10], "m1i": [1.0], "sd1i": [0.0], "n2i": [10], "m2i": [0.0], "sd2i": [0.0]}))
    assert math.isnan(out.loc[0, "yi"]) and "pooled SD is 0" in out.loc[0, "note"]
    assert "change scores is 0" in smcc(10, 2.0, 1.0, 1.0, 1.0, 1.0).note


def test_tiny_sds_give_the_exact_standardised_difference():
    # 1e-300 squared underflows to 0: the pooled SD is rescaled first, so d = 1 / 1e-300 exactly
    es = standardized_mean_difference(10, 1.0, 1e-300, 10, 0.0, 1e-300, correct=False)
    assert es.estimate == pytest.approx(1e300, rel=1e-12)
    assert math.isnan(es.variance) and "floating-point range" in es.note
    assert log_ratio_of_means(10, 1e-200, 1.0, 10, 1e200, 1.0).estimate == pytest.approx(-400 * math.log(10))
    assert change_sd(1e-300, 1e-300, 0.5) == pytest.approx(1e-300)
    with pytest.raises(UsageError, match="floating-point range"):
        change_sd(1.7e308, 1.7e308, -1.0)


@pytest.mark.parametrize("args", [
    (1000, 1e6, 1.0, 1000, 0.0, 1.0),  # t = 2.2e7: scipy's noncentral t is NaN and slow there
    (10, 1.0, 1e-300, 10, 0.0, 1e-300),  # t ~ 2e300
    (10, 1e300, 1.0, 10, -1e300, 1.0),
])
def test_noncentral_t_interval_of_huge_t_ends_with_a_note(args):
    start = time.monotonic()
    es = smd_noncentral_ci(*args)
    assert time.monotonic() - start < 5.0
    assert math.isfinite(es.estimate)
    assert math.isnan(es.ci_low) and math.isnan(es.ci_high) and "noncentral-t interval not computed" in es.note


def test_noncentral_t_interval_unchanged_where_it_was_defined():
    es = smd_noncentral_ci(20, 1.0, 1.0, 20, 0.0, 1.0)
    assert es.note is None and es.ci_low < es.estimate < es.ci_high


def test_bootstrap_of_constant_arms_says_why():
    result = hedges_g_bootstrap(np.zeros(5), np.zeros(6), n_boot=100, seed=1)
    assert math.isnan(result.estimate) and "SD 0" in result.note
    result = hedges_g_bootstrap(np.array([1e300, -1e300, 5e299]), np.array([0.0, 1e300, 2e300]), n_boot=200, seed=1)
    assert math.isfinite(result.estimate)


def test_bca_with_undefined_leave_one_out_values_says_why():
    def statistic(x):  # defined on the full sample, undefined whenever the first value is left out
        return np.where(x[..., 0] == 1.0, x.mean(axis=-1), np.nan) if x.shape[-1] == 4 else np.full(x.shape[0], np.nan)

    result = bootstrap_ci([np.array([1.0, 2.0, 3.0, 4.0])], statistic, n_boot=50, seed=1)
    assert math.isnan(result.ci_low) and result.note


# ------------------------------------------------------------------------------------------------
# Meta-analysis: tiny variances, huge effects, a dominant study, identical effects


def test_meta_analysis_of_extreme_inputs_refuses_with_a_message_instead_of_crashing():
    for method in ("REML", "DL", "PM", "ML", "FE"):
        with pytest.raises(UsageError, match="orders of magnitude"):
            pool([1e300, -1e300, 0.0], [1e-300, 1e-300, 1e-300], method=method)


def test_meta_analysis_rescales_inputs_it_can_handle():
    small = pool([0.1, 0.5, 0.3], [0.01, 0.02, 0.015], method="REML")
    scale = 2.0**-400  # exact in binary: every estimate scales by it, tau^2 by its square
    tiny = pool([0.1 * scale, 0.5 * scale, 0.3 * scale], [0.01 * scale**2, 0.02 * scale**2, 0.015 * scale**2], method="REML")
    assert tiny.estimate == pytest.approx(small.estimate * scale, rel=1e-9)
    assert tiny.tau2 == pytest.approx(small.tau2 * scale**2, rel=1e-6, abs=1e-12 * scale**2)
    assert tiny.i2 == pytest.approx(small.i2, rel=1e-6, abs=1e-9)


def test_typical_variance_of_a_dominant_study_is_exact():
    v = np.array([1e-20, 1.0, 1.0])
    w = [1 / Fraction(x) for x in v.tolist()]
    exact = float((len(w) - 1) * sum(w) / (sum(w) ** 2 - sum(x * x for x in w)))
    assert _typical_variance(v) == pytest.approx(exact, rel=1e-12)
    fit = pool([0.1, 0.5, 0.3], v, method="REML")
    assert math.isfinite(fit.i2) and math.isfinite(fit.h2)


def test_knapp_hartung_with_identical_effects_has_se_zero_and_says_so():
    fit = pool([0.5, 0.5, 0.5], [0.1, 0.2, 0.3], method="DL", test="knha")
    assert fit.std_error == 0.0 and math.isnan(fit.statistic) and math.isnan(fit.p_value)
    assert fit.ci_low == fit.ci_high == fit.estimate and "Knapp-Hartung scale is 0" in fit.note
    summary = meta_table(fit, measure="MD").query("type == 'summary'").iloc[0]
    assert "Knapp-Hartung scale is 0" in summary["note"]


# ------------------------------------------------------------------------------------------------
# Responders, power, descriptives, conversions


def test_every_participant_responding_gives_rd_zero_se_zero_with_a_note():
    rows = compare_proportions(10, 10, 12, 12)
    wald = rows[0]
    assert wald["estimate"] == 0.0 and wald["std_error"] == 0.0 and math.isnan(wald["p_value"])
    assert "same response" in wald["note"]
    nnt = rows[-1]
    assert math.isinf(nnt["estimate"]) and nnt["note"].startswith("NNT infinity")
    with pytest.raises(UsageError, match="whole numbers"):
        compare_proportions(float("nan"), 10, 1, 10)


def test_power_where_statsmodels_returned_nan_is_the_certified_limit():
    assert pw.ttest_power(0.5, 600) == pytest.approx(1.0, abs=1e-10)  # statsmodels gave NaN (lower tail)
    assert pw.ttest_power(1e10, 10) == 1.0 and pw.ancova_power(1e300, 10, 0.5) == 1.0
    assert pw.ttest_power(0.5, 64) == pytest.approx(0.8014596, abs=1e-6)  # unchanged (R pwr)
    with pytest.raises(UsageError, match="no sample size below 1e9"):
        pw.ttest_n(1e-300)
    with pytest.raises(UsageError, match="already reach power"):
        pw.ancova_n(1e3, 0.5)
    sim = pw.simulate_power_mmrm(0.5, 3, np.array([[1, 0.5, 0.5], [0.5, 1, 0.5], [0.5, 0.5, 1]]),
                                 np.array([0.9, 0.99]), n_sims=50, seed=1)
    assert sim.power == 0.0 and "too few participants" in sim.method
    with pytest.raises(UsageError, match="seed"):
        pw.simulate_power_ancova(0.5, 10, n_sims=10, seed=-1)


def test_describe_values_near_the_float_limits():
    d = pd.DataFrame({"outcome": "x", "visit": "w1", "visit_week": 1.0, "arm": "control",
                      "value": [1e300, -1e300, 1e300], "change": [1e-300, 2e-300, 0.0], "baseline_flag": False})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        table = describe(d).set_index("variable")
    assert table.loc["value", "sd"] == pytest.approx(np.std([1.0, -1.0, 1.0], ddof=1) * 1e300, rel=1e-12)
    assert table.loc["change", "sd"] == pytest.approx(1e-300, rel=1e-12)
    with pytest.raises(UsageError, match="infinite"):
        describe(d.assign(value=np.inf))


def test_conversions_refuse_non_finite_input_and_overflow():
    with pytest.raises(UsageError, match="finite"):
        cv.sd_from_se(float("nan"), 10)
    with pytest.raises(UsageError, match="floating-point range"):
        cv.sd_from_se(1e300, 1e300)
    assert cv.correlation_from_sds(1e300, 1e300, 1e300) == pytest.approx(0.5)
    assert math.isfinite(cv.sd_from_range(0.0, 1.0, 1e300))  # xi(n) no longer rounds to infinity


# ------------------------------------------------------------------------------------------------
# End to end: a floor effect through `trialkit run`


FLOOR_PARTICIPANTS = "participant_id,arm,age,disposition\n" + "".join(
    f"P{i},{'T' if i % 2 else 'C'},{30 + i},completed\n" for i in range(1, 13)
)


def floor_measurements(with_missing: bool) -> str:
    lines = ["participant_id,visit,outcome,value"]
    for i in range(1, 13):
        lines += [f"P{i},base,pain,{4 + i % 5}", f"P{i},w4,pain,{(i * 3) % 5}"]
        if not (with_missing and i == 11):
            lines.append(f"P{i},w8,pain,0")  # complete pain relief at the primary visit
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("with_missing", [True, False])
def test_floor_effect_trial_runs_end_to_end_with_degenerate_cells_explained(small_trial, tmp_path: Path, with_missing):
    plan = small_trial(SMALL_PLAN, FLOOR_PARTICIPANTS, floor_measurements(with_missing))
    out = tmp_path / "out"
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # no stray NumPy warning on the way
        assert run_cli(["run", str(plan), "--out", str(out), "--no-report"]) == 0
    models = pd.read_csv(out / "tables" / "models.csv")
    primary = models.loc[(models["measure"] == "adjusted mean difference") & models["method"].str.contains("model-based")].iloc[0]
    assert primary["estimate"] == 0.0 and primary["std_error"] == 0.0 and math.isnan(primary["p_value"])
    assert "essentially perfect fit" in primary["note"]
    for table in ("models.csv", "effect_sizes.csv", "responders.csv"):
        frame = pd.read_csv(out / "tables" / table)
        undefined = frame["estimate"].isna()
        explained = frame["note"].fillna("").str.len().gt(0) | frame["method"].fillna("").str.contains("not estimable")
        assert (explained | ~undefined).all(), (table, frame.loc[undefined & ~explained])
    effects = pd.read_csv(out / "tables" / "effect_sizes.csv")
    smd = effects.loc[(effects["visit"] == "w8") & (effects["measure"] == "SMD")].iloc[0]
    assert math.isnan(smd["estimate"]) and "SD 0" in smd["note"]
