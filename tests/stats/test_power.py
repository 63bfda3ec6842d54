"""Power and sample size: R pwr references, independent noncentral-t formulas, batched fits vs statsmodels."""

import json
import math

import numpy as np
import pytest
import statsmodels.api as sm
from scipy import stats

from analysis.core.errors import UsageError
from analysis.reporting.power import plot_power_curve
from analysis.stats import power as pw
from tests.conftest import REFERENCE

REF = json.loads((REFERENCE / "power_ref.json").read_text())


def test_ttest_power_matches_pwr():
    assert pw.ttest_power(0.5, 64) == pytest.approx(REF["t2_d05_n64"], rel=1e-6)
    assert pw.ttest_power(0.41, 60) == pytest.approx(REF["t2_d041_n60"], rel=1e-6)


def test_ttest_n_matches_pwr():
    assert pw.ttest_n(0.3, 0.8) == pytest.approx(REF["t2_d03_power80_n"], rel=1e-6)
    assert pw.ttest_n(0.5, 0.9) == pytest.approx(REF["t2_d05_power90_n"], rel=1e-6)


def _nct_power(ncp, df, alpha=0.05):
    # Independent two-sided noncentral-t power, written out with scipy.
    q = stats.t.ppf(1 - alpha / 2, df)
    return stats.nct.sf(q, df, ncp) + stats.nct.cdf(-q, df, ncp)


def test_ancova_power_is_noncentral_t_with_design_factor():
    d, n, r = 0.4, 50, 0.6
    expected = _nct_power(d * math.sqrt(n / 2) / math.sqrt(1 - r * r), 2 * n - 3)
    assert pw.ancova_power(d, n, r) == pytest.approx(expected, rel=1e-9)


def test_ancova_n_solves_its_power_and_approaches_design_factor():
    n = pw.ancova_n(0.5, 0.5, power=0.8)
    assert _nct_power(0.5 * math.sqrt(n / 2) / math.sqrt(0.75), 2 * n - 3) == pytest.approx(0.8, abs=1e-9)
    # Large n: ANCOVA n / t-test n -> 1 - r^2 (Borm et al. 2007).
    assert pw.ancova_n(0.1, 0.5) / pw.ttest_n(0.1) == pytest.approx(0.75, rel=2e-3)


def test_attrition_inflation_literals():
    assert pw.inflate_for_attrition(64, 0.2) == 80  # 64 / 0.8 exactly
    assert pw.inflate_for_attrition(100, 0.1) == 112  # 111.1 rounded up
    assert pw.inflate_for_attrition(50, 0.0) == 50
    with pytest.raises(UsageError, match="attrition"):
        pw.inflate_for_attrition(50, 1.0)


def test_batched_ancova_equals_statsmodels_per_trial():
    arm, (base, follow) = pw.simulate_ancova_trials(0.4, 20, 0.5, n_sims=5, seed=11)
    est, se, df = pw.batched_ancova(arm, base, follow)
    for s in range(5):
        fit = sm.OLS(follow[s], np.column_stack([np.ones(40), arm, base[s]])).fit()
        assert est[s] == pytest.approx(fit.params[1], rel=1e-10)
        assert se[s] == pytest.approx(fit.bse[1], rel=1e-10)
        assert df[s] == fit.df_resid


def test_simulated_ancova_power_within_monte_carlo_error_and_reproducible():
    sim = pw.simulate_power_ancova(0.5, 64, r=0.5, n_sims=4000, seed=1)
    analytic = pw.ancova_power(0.5, 64, 0.5)
    assert abs(sim.power - analytic) < 4 * sim.mc_se
    assert sim.mc_se == pytest.approx(math.sqrt(sim.power * (1 - sim.power) / 4000))
    again = pw.simulate_power_ancova(0.5, 64, r=0.5, n_sims=4000, seed=1)
    assert again == sim


def test_null_effect_gives_nominal_size():
    sim = pw.simulate_power_ancova(0.0, 30, r=0.3, n_sims=4000, seed=5)
    assert abs(sim.power - 0.05) < 4 * math.sqrt(0.05 * 0.95 / 4000)


CORR = np.array([[1.0, 0.5, 0.45, 0.4], [0.5, 1.0, 0.6, 0.5], [0.45, 0.6, 1.0, 0.6], [0.4, 0.5, 0.6, 1.0]])


def test_gls_without_dropout_is_ancova_at_last_visit():
    effects = np.array([0.1, 0.2, 0.3])
    arm, values, observed = pw.simulate_mmrm_trials(effects, 15, CORR, np.zeros(3), n_sims=3, seed=2)
    est, se, n_primary = pw.batched_gls_primary(arm, values, observed, CORR)
    for s in range(3):
        x = np.column_stack([np.ones(30), arm, values[s, :, 0]])
        fit = sm.OLS(values[s, :, 3], x).fit()
        assert est[s] == pytest.approx(fit.params[1], rel=1e-9)
    assert list(n_primary) == [30, 30, 30]


def test_gls_with_dropout_matches_statsmodels_gls():
    effects = np.array([0.1, 0.2, 0.3])
    arm, values, observed = pw.simulate_mmrm_trials(effects, 12, CORR, np.array([0.1, 0.25, 0.4]), n_sims=1, seed=4)
    est, se, _ = pw.batched_gls_primary(arm, values, observed, CORR)
    # Independent reference: stack every observed value, block-diagonal Sigma, statsmodels GLS.
    cond = CORR[1:, 1:] - np.outer(CORR[0, 1:], CORR[0, 1:])
    rows, ys, blocks = [], [], []
    for i in range(24):
        k = int(observed[0, i].sum())
        z = [1.0, arm[i], values[0, i, 0]]
        for j in range(k):
            row = np.zeros(9)
            row[3 * j: 3 * j + 3] = z
            rows.append(row)
            ys.append(values[0, i, j + 1])
        if k:
            blocks.append(cond[:k, :k])
    sigma = np.zeros((len(ys), len(ys)))
    at = 0
    for b in blocks:
        sigma[at: at + len(b), at: at + len(b)] = b
        at += len(b)
    fit = sm.GLS(np.array(ys), np.array(rows), sigma=sigma).fit()
    assert est[0] == pytest.approx(fit.params[7], rel=1e-9)
    # statsmodels scales by the estimated residual variance; with known Sigma the variance is the unscaled one.
    assert se[0] == pytest.approx(math.sqrt(fit.normalized_cov_params[7, 7]), rel=1e-9)


def test_mmrm_simulation_power_between_complete_case_and_full_data():
    full = pw.simulate_power_mmrm(0.5, 50, CORR, np.zeros(3), n_sims=2000, seed=3)
    assert abs(full.power - pw.ancova_power(0.5, 50, 0.4)) < 4 * full.mc_se
    dropped = pw.simulate_power_mmrm(0.5, 50, CORR, np.array([0.1, 0.2, 0.3]), n_sims=2000, seed=3)
    assert dropped.power < full.power


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: pw.ttest_power(0.5, 64, alpha=1.5), "alpha"),
        (lambda: pw.ttest_power(0.5, 0.5), "n_per_arm"),
        (lambda: pw.ttest_n(0.5, power=1.2), "power"),
        (lambda: pw.ancova_power(0.5, 64, r=1.0), "r must"),
        (lambda: pw.simulate_power_ancova(0.5, 10.5), "n_per_arm"),
        (lambda: pw.simulate_power_ancova(0.5, 10, n_sims=0), "n_sims"),
        (lambda: pw.simulate_power_mmrm(0.5, 10, CORR, np.array([0.3, 0.2, 0.1])), "dropout"),
        (lambda: pw.simulate_power_mmrm(0.5, 10, CORR * 2, np.zeros(3)), "corr"),
    ],
)
def test_bad_arguments_raise_usage_errors(call, match):
    with pytest.raises(UsageError, match=match):
        call()


def test_power_curve_columns_and_monotone():
    curve = pw.power_curve([0.3, 0.5], [20, 40, 80], r=0.5)
    assert list(curve.columns) == ["method", "d", "r", "n_per_arm", "alpha", "power"]
    for _, part in curve.groupby(["method", "d"]):
        assert part["power"].is_monotonic_increasing
    ax = plot_power_curve(curve)
    assert len(ax.get_lines()) == 5  # four curves + target line
