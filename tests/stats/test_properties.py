"""Property-based tests (hypothesis) of the statistical core and of validation.

Each property is an identity that must hold for every input, so no expected value is computed by
the code under test: swapping the arms negates a difference, a common shift of the outcome changes
neither MD nor SMD, a common rescaling leaves the SMD alone, one study pools to itself, Rubin's
rules over identical imputations return the single analysis, and malformed files only ever raise
trialkit's own errors.
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from analysis.core.errors import DataError, PlanError
from analysis.pipeline import load_trial
from analysis.stats.effects import mean_difference, standardized_mean_difference
from analysis.stats.meta import pool
from analysis.stats.models.ancova import ancova
from analysis.stats.models.missing import multiple_imputation_ancova
from analysis.stats.models.rubin import rubin_pool
from tests.conftest import SMALL_MEASUREMENTS, SMALL_PARTICIPANTS, SMALL_PLAN

PROPERTY = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])

sizes = st.integers(min_value=2, max_value=500)
means = st.floats(min_value=-1e3, max_value=1e3, allow_nan=False, allow_infinity=False)
sds = st.floats(min_value=1e-2, max_value=1e3, allow_nan=False, allow_infinity=False)
arms = st.tuples(sizes, means, sds)


def close(a: float, b: float, scale: float = 1.0, rel: float = 1e-9) -> bool:
    """Equal up to floating-point rounding of quantities of magnitude ``scale``."""
    return math.isclose(a, b, rel_tol=rel, abs_tol=rel * max(1.0, abs(scale)))


# ------------------------------------------------------------------------------------------------
# Effect sizes


@PROPERTY
@given(treatment=arms, control=arms)
def test_swapping_arms_flips_md_and_smd(treatment, control):
    for effect in (mean_difference, standardized_mean_difference):
        forward = effect(*treatment, *control)
        backward = effect(*control, *treatment)
        assert backward.estimate == -forward.estimate
        assert close(backward.variance, forward.variance, forward.variance)
        assert close(backward.ci_low, -forward.ci_high, forward.ci_high)
        assert close(backward.ci_high, -forward.ci_low, forward.ci_low)


@PROPERTY
@given(treatment=arms, control=arms, shift=st.floats(min_value=-1e4, max_value=1e4, allow_nan=False))
def test_shifting_the_outcome_leaves_md_and_smd_unchanged(treatment, control, shift):
    (n1, m1, sd1), (n2, m2, sd2) = treatment, control
    scale = abs(m1) + abs(m2) + abs(shift)  # rounding of the shifted means is relative to this
    md = mean_difference(n1, m1, sd1, n2, m2, sd2)
    md_shifted = mean_difference(n1, m1 + shift, sd1, n2, m2 + shift, sd2)
    assert close(md_shifted.estimate, md.estimate, scale)
    assert md_shifted.variance == md.variance
    smd = standardized_mean_difference(n1, m1, sd1, n2, m2, sd2)
    smd_shifted = standardized_mean_difference(n1, m1 + shift, sd1, n2, m2 + shift, sd2)
    pooled_sd = math.sqrt(((n1 - 1) * sd1**2 + (n2 - 1) * sd2**2) / (n1 + n2 - 2))
    assert close(smd_shifted.estimate, smd.estimate, scale / pooled_sd)


@PROPERTY
@given(treatment=arms, control=arms, factor=st.floats(min_value=1e-3, max_value=1e3, allow_nan=False))
def test_rescaling_the_outcome_leaves_smd_unchanged_and_scales_md(treatment, control, factor):
    (n1, m1, sd1), (n2, m2, sd2) = treatment, control
    smd = standardized_mean_difference(n1, m1, sd1, n2, m2, sd2)
    smd_scaled = standardized_mean_difference(n1, m1 * factor, sd1 * factor, n2, m2 * factor, sd2 * factor)
    assert close(smd_scaled.estimate, smd.estimate, smd.estimate)
    assert close(smd_scaled.variance, smd.variance, smd.variance)
    md = mean_difference(n1, m1, sd1, n2, m2, sd2)
    md_scaled = mean_difference(n1, m1 * factor, sd1 * factor, n2, m2 * factor, sd2 * factor)
    assert close(md_scaled.estimate, factor * md.estimate, factor * (abs(m1) + abs(m2)))
    assert close(md_scaled.variance, factor**2 * md.variance, factor**2 * md.variance)


# ------------------------------------------------------------------------------------------------
# Meta-analysis

effects = st.floats(min_value=-5, max_value=5, allow_nan=False)
variances = st.floats(min_value=1e-3, max_value=2, allow_nan=False)


@PROPERTY
@given(yi=effects, vi=variances, method=st.sampled_from(["FE", "REML", "DL", "PM", "ML"]))
def test_pooling_one_study_returns_it(yi, vi, method):
    fit = pool([yi], [vi], method=method)
    assert fit.k == 1
    assert close(fit.estimate, yi, yi)
    assert close(fit.std_error, math.sqrt(vi), 1.0)
    assert fit.weights == (100.0,)
    z = 1.959963984540054  # the 97.5% normal quantile
    assert close(fit.ci_low, yi - z * math.sqrt(vi), abs(yi) + 1, rel=1e-9)


@PROPERTY
@given(
    data=st.lists(st.tuples(effects, variances), min_size=2, max_size=8),
    method=st.sampled_from(["FE", "REML", "DL"]),
    seed=st.integers(0, 2**32 - 1),
)
def test_pooling_ignores_study_order_and_follows_sign_and_shift(data, method, seed):
    yi = np.array([d[0] for d in data])
    vi = np.array([d[1] for d in data])
    fit = pool(yi, vi, method=method)
    order = np.random.default_rng(seed).permutation(len(yi))
    permuted = pool(yi[order], vi[order], method=method)
    rel = 1e-9 if method in ("FE", "DL") else 1e-6  # REML is iterative
    assert close(permuted.estimate, fit.estimate, 1.0, rel)
    assert close(permuted.std_error, fit.std_error, 1.0, rel)
    assert close(permuted.tau2, fit.tau2, 1.0, rel)
    assert np.allclose(np.array(permuted.weights), np.array(fit.weights)[order], rtol=rel, atol=rel)
    negated = pool(-yi, vi, method=method)
    assert close(negated.estimate, -fit.estimate, 1.0, rel)
    assert close(negated.tau2, fit.tau2, 1.0, rel)
    shifted = pool(yi + 3.0, vi, method=method)
    assert close(shifted.estimate, fit.estimate + 3.0, 4.0, rel)


# ------------------------------------------------------------------------------------------------
# Rubin's rules


@PROPERTY
@given(
    estimate=st.floats(min_value=-1e3, max_value=1e3, allow_nan=False),
    variance=st.floats(min_value=1e-6, max_value=1e3, allow_nan=False),
    m=st.integers(2, 50),
    df=st.floats(min_value=1, max_value=1e4, allow_nan=False),
)
def test_rubin_over_identical_imputations_is_the_single_analysis(estimate, variance, m, df):
    pooled = rubin_pool([estimate] * m, [variance] * m, df_complete=df)
    assert close(pooled.estimate, estimate, estimate)
    # B is a variance of m equal numbers: zero up to the rounding of their mean
    assert pooled.between <= (1e-14 * max(1.0, abs(estimate))) ** 2
    assert close(pooled.within, variance, variance)
    assert close(pooled.total, variance, variance)
    assert close(pooled.std_error, math.sqrt(variance), math.sqrt(variance))
    assert pooled.riv < 1e-12 and pooled.lambda_ < 1e-12
    # no missing information: Barnard-Rubin's df is its observed-data part, (nu + 1) nu / (nu + 3)
    assert close(pooled.df, (df + 1) * df / (df + 3), df)


def _complete_dataset(values: np.ndarray) -> pd.DataFrame:
    """An analysis dataset with no missing value: rows participant x visit of one outcome."""
    n = values.shape[0]
    rows = []
    for i in range(n):
        arm = "treatment" if i % 2 == 0 else "control"
        for j, (visit, week) in enumerate((("base", 0.0), ("w4", 4.0), ("w8", 8.0))):
            rows.append({
                "participant_id": f"P{i:02d}", "arm": arm, "outcome": "pain", "visit": visit, "visit_week": week,
                "value": float(values[i, j]), "baseline": float(values[i, 0]),
                "change": float(values[i, j] - values[i, 0]) if j else np.nan, "pct_change": np.nan,
                "baseline_flag": j == 0,
            })
    return pd.DataFrame(rows)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    values=st.lists(st.lists(st.integers(0, 10), min_size=3, max_size=3), min_size=12, max_size=20),
    m=st.integers(2, 5),
    seed=st.integers(0, 2**32 - 1),
)
def test_multiple_imputation_of_complete_data_is_the_ancova(values, m, seed):
    data = np.array(values, dtype=float)
    dataset = _complete_dataset(data)
    for arm in (0, 1):  # the ANCOVA needs baseline to vary within the data
        assume(np.ptp(data[arm::2, 0]) > 0 and np.ptp(data[arm::2, 2]) > 0)
    single = ancova(dataset, outcome="pain", visit="w8").effect.iloc[0]
    mi = multiple_imputation_ancova(dataset, outcome="pain", visit="w8", m=m, seed=seed, visits=["w4", "w8"])
    assert sum(mi.imputed.values()) == 0
    assert close(mi.pooled.estimate, float(single["estimate"]), 10.0)
    assert close(mi.pooled.std_error, float(single["std_error"]), 10.0)


# ------------------------------------------------------------------------------------------------
# Validation raises only trialkit's own errors

TEXT_CELLS = st.one_of(
    st.text(max_size=12),
    st.sampled_from(["", " ", "NA", "n/a", "nan", "inf", "-inf", "1e309", "1,234", "5,5", "0x10", "=1+1", "\x00",
                     "P1", "P9", "base", "w4", "w9", "T", "C", "X", "pain", "completed", "withdrawn", "-1", "11",
                     "1.5", "١٢", "\ufeff", "\"", "'", ",", ";", "\t", "\n", "\r\n"]),
    st.integers(-10**6, 10**6).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
)


def _cells(text: str) -> list[list[str]]:
    return [line.split(",") for line in text.strip().splitlines()]


def _join(rows: list[list[str]]) -> str:
    return "\n".join(",".join(row) for row in rows) + "\n"


@st.composite
def malformed_file(draw, text: str) -> bytes:
    """The file with a few random edits: cells replaced, rows dropped or duplicated, bytes cut."""
    rows = _cells(text)
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["cell", "drop", "duplicate", "header", "truncate", "encoding"]))
        if kind == "cell":
            r = draw(st.integers(0, len(rows) - 1))
            c = draw(st.integers(0, len(rows[r]) - 1)) if rows[r] else 0
            if rows[r]:
                rows[r][c] = draw(TEXT_CELLS)
        elif kind == "drop" and len(rows) > 1:
            del rows[draw(st.integers(1, len(rows) - 1))]
        elif kind == "duplicate" and len(rows) > 1:
            r = draw(st.integers(1, len(rows) - 1))
            rows.insert(r, list(rows[r]))
        elif kind == "header" and rows and rows[0]:
            rows[0][draw(st.integers(0, len(rows[0]) - 1))] = draw(TEXT_CELLS)
    data = _join(rows).encode("utf-8", errors="surrogatepass")
    kind = draw(st.sampled_from(["as is", "as is", "truncate", "latin-1", "bom"]))
    if kind == "truncate":
        data = data[: draw(st.integers(0, len(data)))]
    elif kind == "latin-1":
        data = data.replace(b"a", b"\xe9")
    elif kind == "bom":
        data = b"\xef\xbb\xbf" + data
    return data


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    participants=malformed_file(SMALL_PARTICIPANTS),
    measurements=malformed_file(SMALL_MEASUREMENTS),
)
def test_validation_raises_only_trialkit_errors(participants, measurements):
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        (root / "plan.yaml").write_text(SMALL_PLAN, encoding="utf-8")
        (root / "participants.csv").write_bytes(participants)
        (root / "measurements.csv").write_bytes(measurements)
        try:
            trial = load_trial(root / "plan.yaml")
        except DataError as error:
            failures = error.failures
            assert list(failures.columns) == ["file", "row", "column", "rule", "value"]
            assert len(failures) >= 1 and failures["rule"].astype(str).str.len().min() > 0
            assert failures["file"].astype(str).str.endswith(("participants.csv", "measurements.csv")).all()
        except PlanError:
            pytest.fail("the plan is valid; a data problem must not be reported as a plan error")
        else:
            # accepted data must have been complete and consistent: every participant x visit is present
            assert len(trial.dataset) == len(trial.participants) * 3
