"""The trial MMRM from merged per-partition pattern statistics against the whole-frame fit.

Reference: :func:`fit_trial_mmrm` on the whole long frame (participant rows, QR aliasing check,
OLS start by least squares on the rows), itself tested against R in test_mmrm.py. The partitioned
route shares the REML code but none of the row-level steps, and sums the pattern cross-products
in another order.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from analysis.core.errors import ModelError, UsageError
from analysis.stats.models.mmrm import fit_trial_mmrm
from analysis.stats.models.mmrm.kenward import empirical_vcov
from analysis.stats.models.mmrm.partitioned import (
    PatternDesign,
    aliased_terms,
    fit_mmrm_from_patterns,
    merge_pattern_levels,
    merge_pattern_statistics,
    pattern_levels,
    pattern_statistics,
    problem_from_statistics,
)

VISITS = ("w4", "w8", "w12", "w16")
TOL = 1e-10
# Satterthwaite / Kenward-Roger df use the REML information by central differences of the
# gradient (step 1e-4), which magnify the last-bit differences of the pattern sums: the
# whole-frame fit's own df move by up to 1e-9 relative when only the participants are relabelled
# (another summation order), so the df are held to 1e-8, everything else to 1e-10.
DF_TOL = 1e-8


def trial_frame(seed: int = 7, n: int = 80) -> pd.DataFrame:
    """Long frame: 4 visits, dropout and intermittent missing visits, a numeric and a factor
    covariate (3 sites, text), a few missing covariate values and responses."""
    rng = np.random.default_rng(seed)
    ids = [f"P{i:03d}" for i in range(n)]
    arm = np.where(rng.random(n) < 0.5, "treatment", "control")
    baseline = rng.normal(60, 6, n)
    age = rng.normal(45, 10, n).round()
    site = rng.choice(["site-A", "site-B", "site-C"], n)
    age[rng.choice(n, 3, replace=False)] = np.nan
    rows = []
    chol = np.linalg.cholesky(25 * (0.4 + 0.6 * np.eye(4)) + np.diag([0, 2, 4, 6]))
    for i in range(n):
        noise = chol @ rng.normal(size=4)
        last = 4 if rng.random() < 0.7 else rng.integers(1, 4)  # dropout
        for k, visit in enumerate(VISITS):
            if k >= last or (k > 0 and rng.random() < 0.1):  # dropout or an intermittent miss
                continue
            effect = -1.5 * (k + 1) if arm[i] == "treatment" else -0.5 * (k + 1)
            value = 20 + 0.6 * baseline[i] + 0.05 * (0 if np.isnan(age[i]) else age[i]) + effect + noise[k]
            rows.append({"participant_id": ids[i], "arm": arm[i], "visit": visit, "value": value,
                         "baseline": baseline[i], "age": age[i], "site": site[i]})
    frame = pd.DataFrame(rows)
    frame.loc[rng.choice(len(frame), 4, replace=False), "value"] = np.nan
    return frame


def split(frame: pd.DataFrame, seed: int, k: int = 3) -> list[pd.DataFrame]:
    """k parts of random participants (shuffled rows within each part)."""
    rng = np.random.default_rng(seed)
    ids = frame["participant_id"].unique()
    part_of = dict(zip(ids, rng.integers(0, k, ids.size), strict=True))
    owner = frame["participant_id"].map(part_of).to_numpy()
    return [frame[owner == j].sample(frac=1.0, random_state=seed + j) for j in range(k)]


def fit_parts(parts, design: PatternDesign, **options):
    design = design.with_levels(merge_pattern_levels([pattern_levels(p, design) for p in parts]))
    merged = merge_pattern_statistics([pattern_statistics(p, design) for p in parts])
    return fit_mmrm_from_patterns(merged, design, **options), merged, design


def relative(a, b) -> float:
    a, b = np.asarray(a, float), np.asarray(b, float)
    return float(np.max(np.abs(a - b) / np.maximum(1.0, np.abs(b))))


def assert_same_fit(split_fit, whole, df_tolerance: float = DF_TOL, tolerance: float = TOL) -> None:
    assert split_fit.terms == whole.terms
    assert relative(split_fit.estimates, whole.estimates) <= TOL
    assert relative(split_fit.cov_beta, whole.cov_beta) <= TOL
    assert relative(split_fit.covariance.to_numpy(), whole.covariance.to_numpy()) <= TOL
    assert abs(split_fit.reml_loglik - whole.reml_loglik) <= TOL * abs(whole.reml_loglik)
    for table in ("contrasts", "lsmeans"):
        got, want = getattr(split_fit, table), getattr(whole, table)
        assert list(got.columns) == list(want.columns)
        numbers = [c for c in ("estimate", "std_error", "statistic", "p_value", "ci_low", "ci_high") if c in want]
        assert relative(got[numbers].to_numpy(float), want[numbers].to_numpy(float)) <= tolerance
        assert relative(got["df"].to_numpy(float), want["df"].to_numpy(float)) <= df_tolerance
        other = [c for c in want.columns if c not in [*numbers, "df"]]
        pd.testing.assert_frame_equal(got[other], want[other])
    for field in ("n_participants", "n_treatment", "n_control", "n_obs", "n_dropped_missing", "n_dropped_covariate",
                  "covariance_structure", "method", "visits"):
        assert getattr(split_fit, field) == getattr(whole, field)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_three_random_splits_fit_as_the_whole_frame(seed):
    frame = trial_frame()
    whole = fit_trial_mmrm(frame, covariates=["age", "site"], visit_order=list(VISITS))
    assert whole.n_dropped_missing == 4 and whole.n_dropped_covariate > 0  # the example exercises both
    assert len({tuple(v) for v in frame.groupby("participant_id")["visit"].agg(tuple)}) > 3  # several patterns
    got, merged, design = fit_parts(split(frame, seed), PatternDesign(visits=VISITS, covariates=("age", "site")))
    assert design.levels == {"site": ("site-A", "site-B", "site-C")}
    assert sum(p.n for p in merged.patterns.values()) == whole.n_participants
    assert_same_fit(got, whole)


def test_other_structures_and_df_methods_from_patterns():
    frame = trial_frame(seed=11)
    parts = split(frame, 5)
    design = PatternDesign(visits=VISITS, covariates=("site",), by_visit=("baseline",))
    # the unstructured fit with baseline:visit is the least well conditioned: relabelling the
    # participants alone moves the whole-frame fit's df by 2.2e-8, its KR-linear SEs by 6.5e-11 and
    # CI limits by 2.0e-10 (the split moves the SEs by 7e-10)
    for covariance, df, tolerances in (("compound_symmetry", "kenward-roger", (DF_TOL, TOL)),
                                       ("ar1_heterogeneous", "between-within", (TOL, TOL)),
                                       ("toeplitz", "residual", (TOL, TOL)),
                                       ("unstructured", "kenward-roger-linear", (1e-7, 1e-8))):
        whole = fit_trial_mmrm(frame, covariates=["site"], visit_order=list(VISITS), covariance=covariance, df=df,
                               by_visit=["baseline"])
        got = fit_parts(parts, design, covariance=covariance, df=df)[0]
        assert_same_fit(got, whole, *tolerances)
    # between-within: the between-participant columns are the intercept, baseline, site and arm
    problem = problem_from_statistics(merge_pattern_statistics(
        [pattern_statistics(p, design.with_levels({"site": ("site-A", "site-B", "site-C")})) for p in parts]),
        design.with_levels({"site": ("site-A", "site-B", "site-C")}))
    between = [t for t, flag in zip(problem.terms, problem.between, strict=True) if flag]
    assert between == ["(Intercept)", "baseline", "sitesite-B", "sitesite-C", "armtreatment"]


def test_checks_that_need_every_participant_are_made_after_the_merge():
    frame = trial_frame(seed=3, n=40)
    design = PatternDesign(visits=VISITS, covariates=("site",))
    # a constant covariate: aliased with the intercept, named as the whole-frame fit names it
    constant = frame.assign(site="one", dose=5.0)
    with pytest.raises(ModelError) as whole_error:
        fit_trial_mmrm(constant, covariates=["dose"], visit_order=list(VISITS))
    with pytest.raises(ModelError) as split_error:
        fit_parts(split(constant, 1), PatternDesign(visits=VISITS, covariates=("dose",)))
    assert str(split_error.value) == str(whole_error.value)
    assert "['dose']" in str(split_error.value)
    # one treated participant in all, though every part is fine on its own
    treated = frame["participant_id"][frame["arm"] == "treatment"].unique()
    lone = frame[(frame["arm"] == "control") | (frame["participant_id"] == treated[0])]
    with pytest.raises(ModelError) as whole_error:
        fit_trial_mmrm(lone, covariates=["site"], visit_order=list(VISITS))
    with pytest.raises(ModelError) as split_error:
        fit_parts(split(lone, 2), design)
    assert str(split_error.value) == str(whole_error.value)
    # a visit nobody attended
    with pytest.raises(ModelError, match=r"\['w20'\] have no observed response"):
        fit_parts(split(frame, 3), dataclasses.replace(design, visits=(*VISITS, "w20")))
    # parts built without the merged levels, and a covariate numeric in one part only
    with pytest.raises(UsageError, match="factor levels of every part"):
        pattern_statistics(frame, design)
    with pytest.raises(ModelError, match="numeric in some parts"):
        merge_pattern_levels([{"site": (True, set())}, {"site": (False, {"a"})}])


def test_empirical_covariance_is_refused_without_rows():
    frame = trial_frame(seed=5, n=40)
    got, merged, design = fit_parts(split(frame, 4), PatternDesign(visits=VISITS))
    problem = problem_from_statistics(merged, design)
    assert problem.x is None and problem.subject_codes is None
    with pytest.raises(ModelError, match="empirical .sandwich. covariance needs each participant's rows"):
        empirical_vcov(got, problem)


def test_aliasing_from_crossproducts_follows_r_order():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=50), rng.normal(size=50)
    x = np.column_stack([np.ones(50), a, b, a + 2 * b, np.zeros(50), 3 * a + 1e-3 * rng.normal(size=50)])
    # a + 2b is in the span of the columns before it, the zero column is aliased; a column
    # correlated 0.99999 with a is kept (its QR diagonal is 1e-3 of its norm, well above 1e-5)
    assert aliased_terms(x.T @ x, list("icdezs")) == ["e", "z"]
    r = np.abs(np.diag(np.linalg.qr(x[:, [0, 1, 2, 5]], mode="r")))
    assert r[-1] / np.linalg.norm(x[:, 5]) > 1e-5
