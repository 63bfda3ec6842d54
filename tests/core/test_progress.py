"""Progress of long loops (analysis/core/progress.py): reported as (done, total), never changing a result."""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.core.progress import loop_progress, reporting_progress


def recorder():
    calls: list[tuple[int, int]] = []
    return calls, lambda done, total: calls.append((done, total))


def test_a_callback_given_wins_over_the_installed_one_and_nothing_installed_is_silent():
    installed: list[str] = []
    calls, given = recorder()
    with reporting_progress(lambda what, total: lambda done, total: installed.append(what)):
        loop_progress("x", 2, given)(1, 2)
        loop_progress("y", 2)(2, 2)
    assert calls == [(1, 2)] and installed == ["y"]
    loop_progress("z", 2)(2, 2)  # outside the block: nothing installed, nothing happens
    assert installed == ["y"]


def test_bootstrap_reports_every_chunk_and_gives_the_same_replicates(monkeypatch):
    from analysis.stats.effects import bootstrap

    x, y = np.arange(30.0), np.arange(25.0) ** 0.5

    def stat(a, b):
        return a.mean(axis=1) - b.mean(axis=1)

    plain = bootstrap.bootstrap_distribution([x, y], stat, n_boot=1000, seed=4)
    monkeypatch.setattr(bootstrap, "CHUNK_ELEMENTS", 30 * 128)  # chunks of 128 resamples
    calls, progress = recorder()
    reported = bootstrap.bootstrap_distribution([x, y], stat, n_boot=1000, seed=4, progress=progress)
    assert np.array_equal(plain, reported)
    assert [done for done, _ in calls] == [*range(128, 1000, 128), 1000] and {t for _, t in calls} == {1000}


def test_multiple_imputation_reports_each_imputed_dataset_and_gives_the_same_result():
    from analysis.stats.models.missing import multiple_imputation_ancova, tipping_point

    data = pd.DataFrame({
        "participant_id": ["t1", "t2", "t3", "t4", "t5", "c1", "c2", "c3", "c4", "c5"],
        "arm": ["treatment"] * 5 + ["control"] * 5,
        "outcome": "pain", "visit": "week8",
        "baseline": [6.0, 7.0, 8.0, 9.0, 7.0, 6.0, 7.0, 8.0, 9.0, 7.0],
        "value": [3.0, 4.0, 4.0, 6.0, None, 6.0, 6.0, 7.0, 8.0, 6.0]})
    plain = multiple_imputation_ancova(data, outcome="pain", visit="week8", m=5, seed=1)
    calls, progress = recorder()
    reported = multiple_imputation_ancova(data, outcome="pain", visit="week8", m=5, seed=1, progress=progress)
    assert calls == [(j, 5) for j in range(1, 6)]
    assert reported.pooled == plain.pooled
    calls.clear()
    tipping_point(data, outcome="pain", visit="week8", better="lower", m=5, seed=1, progress=progress)
    assert calls[-1] == (5, 5)


def test_power_simulations_report_and_give_the_same_power():
    from analysis.stats.power import simulate_power_ancova, simulate_power_mmrm

    calls, progress = recorder()
    assert simulate_power_ancova(0.4, 30, r=0.3, n_sims=200, seed=2, progress=progress) == simulate_power_ancova(
        0.4, 30, r=0.3, n_sims=200, seed=2
    )
    assert calls[-1] == (200, 200)
    corr = np.array([[1.0, 0.5, 0.4], [0.5, 1.0, 0.5], [0.4, 0.5, 1.0]])
    calls.clear()
    with_progress = simulate_power_mmrm(0.4, 30, corr, [0.1, 0.2], n_sims=100, seed=2, progress=progress)
    assert with_progress == simulate_power_mmrm(0.4, 30, corr, [0.1, 0.2], n_sims=100, seed=2)
    assert calls[-1] == (100, 100)
