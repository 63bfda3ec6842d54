"""Resource limits: memory is chunked or refused up front, iterative work is bounded in steps and time.

The memory budget (:data:`analysis.core.limits.MEMORY_BUDGET_BYTES`, ``min(1 GiB, physical / 4)``)
is patched small here, so chunking and refusal are exercised on small inputs:

* chunked computations (bootstrap resamples, jackknife rows, simulated trials) give the same
  numbers as unchunked ones (the seeded draws are taken in the same order);
* requests that cannot be chunked (the replicates or imputations themselves do not fit) are
  refused before they start with a one-sentence UsageError naming the size and the limit;
* the BCa jackknife no longer builds an (n, n - 1) index array: memory is linear in n, and the
  mean-based statistics have an exact O(n) leave-one-out formula;
* loops stop at the time limit (:data:`analysis.core.limits.TIME_LIMIT_SECONDS`, patched to 0) and
  at their iteration bounds with a clear error instead of running on.
"""

from __future__ import annotations

import math
import time
import tracemalloc

import numpy as np
import pandas as pd
import pytest

import analysis.core.limits as limits
from analysis.cli import run_cli
from analysis.core.errors import ModelError, UsageError
from analysis.stats import power as pw
from analysis.stats.effects import bootstrap as boot
from analysis.stats.effects import hedges_g_bootstrap, smd_noncentral_ci
from analysis.stats.effects.participant_bootstrap import _hedges_g_batch, ratio_of_means_batch
from analysis.stats.meta import estimate_tau2, pool
from analysis.stats.meta import tau2 as tau2_module
from analysis.stats.models.imputation import impute_outcome
from analysis.stats.models.missing import multiple_imputation_ancova
from analysis.stats.models.mmrm import fit_mmrm

RNG = np.random.default_rng(20240501)
X, Y = RNG.normal(0.4, 1.0, 157), RNG.normal(0.0, 1.3, 143)


@pytest.fixture
def small_budget(monkeypatch):
    """Set the memory budget (bytes) for one test."""

    def set_budget(n_bytes: int) -> None:
        monkeypatch.setattr(limits, "MEMORY_BUDGET_BYTES", n_bytes)

    return set_budget


def quadratic_jackknife(samples, statistic):
    """The previous implementation: an (n, n - 1) leave-one-out index array per sample."""
    arrays = [np.asarray(s, dtype=float) for s in samples]
    values = []
    for g, a in enumerate(arrays):
        n = a.shape[0]
        loo = np.tile(np.arange(n), (n, 1))[~np.eye(n, dtype=bool)].reshape(n, n - 1)
        batches = [a[loo] if h == g else np.broadcast_to(o[None], (n, *o.shape)) for h, o in enumerate(arrays)]
        values.append(statistic(*batches))
    return np.concatenate(values)


def paired_change_mean(pre_post: np.ndarray) -> np.ndarray:
    return (pre_post[..., 1] - pre_post[..., 0]).mean(axis=-1)


# ------------------------------------------------------------------------------------------------
# The budget itself


def test_budget_is_documented_and_refusal_names_size_and_limit(small_budget):
    assert 0 < limits.memory_budget() <= limits.GIB
    small_budget(2**20)
    with pytest.raises(UsageError) as caught:
        limits.check_memory(3 * 2**30, "a bootstrap of 400,000,000 resamples", "use fewer resamples (n_boot)")
    message = str(caught.value)
    assert "3 GiB" in message and "1 MiB" in message and "use fewer resamples" in message
    assert message.count(".") <= 3 and "\n" not in message  # one sentence


# ------------------------------------------------------------------------------------------------
# Bootstrap and jackknife


def test_bootstrap_too_many_replicates_is_refused_before_it_starts(small_budget):
    small_budget(2**20)
    start = time.monotonic()
    with pytest.raises(UsageError, match=r"bootstrap of 10,000,000,000 resamples would need 74\.5 GiB.*limit of 1 MiB"):
        boot.bootstrap_distribution([X, Y], _hedges_g_batch, n_boot=10**10, seed=1)
    assert time.monotonic() - start < 1.0
    with pytest.raises(UsageError, match="n_boot"):
        hedges_g_bootstrap(X, Y, n_boot=10**10, seed=1)


def test_bootstrap_chunks_give_identical_replicates(small_budget):
    full = boot.bootstrap_distribution([X, Y], _hedges_g_batch, n_boot=3000, seed=7)
    small_budget(64 * 1024)  # a few resamples per chunk
    chunked = boot.bootstrap_distribution([X, Y], _hedges_g_batch, n_boot=3000, seed=7)
    assert np.array_equal(full, chunked)


def test_bca_interval_identical_under_a_tiny_budget(small_budget):
    before = hedges_g_bootstrap(X, Y, n_boot=2000, seed=3)
    small_budget(64 * 1024)  # the replicates fit; one resample and one leave-one-out row at a time
    after = hedges_g_bootstrap(X, Y, n_boot=2000, seed=3)
    assert after == before


@pytest.mark.parametrize("statistic, samples", [
    (_hedges_g_batch, [X - 0.2, Y - 0.2]),
    (ratio_of_means_batch, [X + 3.0, Y + 2.0]),
    (paired_change_mean, [np.column_stack([X, X + 0.5])]),
])
def test_chunked_jackknife_equals_the_quadratic_construction_bitwise(small_budget, statistic, samples):
    expected = quadratic_jackknife(samples, statistic)
    for budget in (limits.MEMORY_BUDGET_BYTES, 50_000, 1):
        small_budget(budget)
        assert np.array_equal(boot.jackknife_values(samples, statistic), expected)


@pytest.mark.parametrize("statistic, samples", [
    (_hedges_g_batch, [X - 0.2, Y - 0.2]),
    (ratio_of_means_batch, [X + 3.0, Y + 2.0]),
])
def test_exact_leave_one_out_formula_equals_direct_jackknife(monkeypatch, statistic, samples):
    direct = boot.jackknife_values(samples, statistic)
    monkeypatch.setattr(boot, "JACKKNIFE_DIRECT_ELEMENTS", 0)  # always the O(n) formula
    exact = boot.jackknife_values(samples, statistic)
    assert np.allclose(exact, direct, rtol=1e-12, atol=0)
    if statistic is _hedges_g_batch:
        before = hedges_g_bootstrap(X, Y, n_boot=2000, seed=9)
        monkeypatch.setattr(boot, "JACKKNIFE_DIRECT_ELEMENTS", 2**62)
        after = hedges_g_bootstrap(X, Y, n_boot=2000, seed=9)
        for field in ("estimate", "ci_low", "ci_high", "std_error"):
            assert getattr(after, field) == pytest.approx(getattr(before, field), rel=1e-12, abs=1e-12)


def test_jackknife_memory_is_linear_in_n(small_budget):
    x, y = RNG.normal(size=2000), RNG.normal(size=2000)  # old: 2 x 2000 x 1999 x 8 B = 64 MB per sample
    small_budget(2**20)
    tracemalloc.start()
    try:
        values = boot.jackknife_values([x, y], _hedges_g_batch)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert values.shape == (4000,) and np.isfinite(values).all()
    assert peak < 8 * 2**20


def test_bca_for_a_large_trial_uses_the_o_n_jackknife():
    x, y = RNG.normal(0.2, 1.0, 150_000), RNG.normal(0.0, 1.0, 150_000)  # old: 2 x 180 GB index arrays
    start = time.monotonic()
    result = hedges_g_bootstrap(x, y, n_boot=40, seed=1)
    assert time.monotonic() - start < 30.0
    assert math.isfinite(result.estimate) and (result.note or math.isfinite(result.ci_low))


def test_quadratic_jackknife_of_a_custom_statistic_is_refused_beyond_the_limit(monkeypatch):
    monkeypatch.setattr(boot, "JACKKNIFE_MAX_ELEMENTS", 1000)
    with pytest.raises(UsageError, match="percentile"):
        boot.jackknife_values([X], lambda a: np.median(a, axis=-1))
    assert boot.bootstrap_ci([X], lambda a: np.median(a, axis=-1), n_boot=100, seed=1, method="percentile").note is None


# ------------------------------------------------------------------------------------------------
# Power simulations


def test_ancova_simulation_chunked_equals_unchunked(small_budget):
    full = pw.simulate_power_ancova(0.4, 20, r=0.5, n_sims=600, seed=11)
    small_budget(200 * 1024)  # about 60 trials per chunk
    chunked = pw.simulate_power_ancova(0.4, 20, r=0.5, n_sims=600, seed=11)
    assert chunked.power == full.power
    assert chunked.mean_estimate == pytest.approx(full.mean_estimate, rel=1e-12)


def test_mmrm_simulation_chunked_equals_unchunked(small_budget):
    corr = np.array([[1.0, 0.6, 0.5], [0.6, 1.0, 0.6], [0.5, 0.6, 1.0]])
    full = pw.simulate_power_mmrm(0.5, 15, corr, [0.1, 0.2], n_sims=400, seed=5)
    small_budget(300 * 1024)
    chunked = pw.simulate_power_mmrm(0.5, 15, corr, [0.1, 0.2], n_sims=400, seed=5)
    assert chunked.power == full.power
    assert chunked.mean_estimate == pytest.approx(full.mean_estimate, rel=1e-12)


def test_simulations_too_large_are_refused_before_they_start(small_budget):
    start = time.monotonic()
    with pytest.raises(UsageError, match=r"10,000,000,000,000 simulated trials would need .* limit of"):
        pw.simulate_power_ancova(0.5, 64, n_sims=10**13, seed=1)
    small_budget(2**20)
    with pytest.raises(UsageError, match="simulated trials of 128 participants would need"):
        pw.simulate_ancova_trials(0.5, 64, 0.0, 100_000, 1)
    with pytest.raises(UsageError, match="x 3 visits would need"):
        pw.simulate_mmrm_trials(np.array([0.2, 0.4]), 64, np.eye(3), np.zeros(2), 100_000, 1)
    assert time.monotonic() - start < 1.0


def test_cli_power_simulation_too_large_exits_2_with_one_sentence(capsys):
    code = run_cli(["power", "--d", "0.5", "--n", "64", "--simulate", "10000000000000"])
    assert code == 2
    err = capsys.readouterr().err
    assert "would need" in err and "limit of" in err and "Traceback" not in err


# ------------------------------------------------------------------------------------------------
# Multiple imputation


def imputation_dataset(n: int = 30) -> pd.DataFrame:
    rng = np.random.default_rng(4)
    rows = []
    for i in range(n):
        base = rng.normal(6, 1)
        for visit, week in (("w4", 4.0), ("w8", 8.0)):
            value = np.nan if (visit == "w8" and i % 5 == 0) else base - week / 4 + rng.normal()
            rows.append({"participant_id": f"P{i:02d}", "arm": "treatment" if i % 2 else "control", "outcome": "pain",
                         "visit": visit, "visit_week": week, "value": value, "baseline": base, "baseline_flag": False})
    return pd.DataFrame(rows)


def test_imputations_that_do_not_fit_are_refused(small_budget):
    small_budget(100 * 1024)
    with pytest.raises(UsageError, match=r"1,000 imputations of 30 participants x 3 visits would need .* limit of 100 KiB"):
        impute_outcome(imputation_dataset(), outcome="pain", visits=["w4", "w8"], m=1000, seed=1)
    assert impute_outcome(imputation_dataset(), outcome="pain", visits=["w4", "w8"], m=20, seed=1).m == 20


def test_sensitivity_analysis_that_does_not_fit_becomes_a_row(small_budget, small_trial):
    from analysis.pipeline import load_trial
    from analysis.stats.models.plan_models import models_table
    from tests.conftest import SMALL_PLAN

    participants = "participant_id,arm,age,disposition\n" + "".join(
        f"P{i},{'T' if i % 2 else 'C'},{30 + i},completed\n" for i in range(1, 13))
    measurements = "participant_id,visit,outcome,value\n" + "".join(
        f"P{i},base,pain,{4 + i % 5}\nP{i},w4,pain,{(i * 3) % 5}\n" + ("" if i == 11 else f"P{i},w8,pain,{(i * 7) % 6}\n")
        for i in range(1, 13))
    trial = load_trial(small_trial(SMALL_PLAN, participants, measurements))
    small_budget(1)
    table = models_table(trial.dataset, trial.plan, trial.participants)
    sensitivity = table.loc[table["note"].fillna("").str.contains("sensitivity")]
    assert len(sensitivity) == 2 and sensitivity["note"].str.contains("working memory").all()
    primary = table.iloc[0]
    assert math.isfinite(primary["estimate"])


# ------------------------------------------------------------------------------------------------
# Time limits and iteration bounds


def test_loops_stop_at_the_time_limit(monkeypatch):
    monkeypatch.setattr(limits, "TIME_LIMIT_SECONDS", -1.0)
    with pytest.raises(UsageError, match="did not finish within trialkit's time limit"):
        boot.bootstrap_distribution([X, Y], _hedges_g_batch, n_boot=100, seed=1)
    with pytest.raises(UsageError, match="time limit"):
        smd_noncentral_ci(20, 1.0, 1.0, 20, 0.0, 1.0)
    with pytest.raises(UsageError, match="time limit"):
        pw.ancova_n(0.5, 0.5)
    with pytest.raises(UsageError, match="use fewer imputations"):
        multiple_imputation_ancova(imputation_dataset(), outcome="pain", visit="w8", m=5, seed=1, visits=["w4", "w8"])
    data = imputation_dataset().dropna(subset=["value"]).drop(columns=["visit_week", "baseline_flag"])
    with pytest.raises(ModelError, match="time limit"):
        fit_mmrm(data, visit_order=["w4", "w8"])


def test_iteration_bounds_end_searches_with_a_reason(monkeypatch):
    data = imputation_dataset().dropna(subset=["value"]).drop(columns=["visit_week", "baseline_flag"])
    with pytest.raises(ModelError, match="within 1 iterations|did not converge"):
        fit_mmrm(data, visit_order=["w4", "w8"], max_iterations=1)
    yi, vi = [0.1, 0.9, -0.4, 0.5], [0.01, 0.02, 0.015, 0.01]
    monkeypatch.setattr(tau2_module, "MAX_BRACKET_STEPS", 0)
    with pytest.raises(ModelError, match="Paule-Mandel"):
        estimate_tau2(yi, vi, "PM")
    with pytest.raises(ModelError, match="no maximum"):
        estimate_tau2(yi, vi, "REML")
    fit = pool(yi, vi, method="DL")
    assert math.isnan(fit.tau2_ci_high) and "Q-profile" in fit.note
