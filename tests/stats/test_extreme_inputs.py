"""Property tests (hypothesis): every public estimator on extreme but valid inputs.

Inputs are constants, ties, n = 2, all zeros, values near the float limits (1e-300, 1e300), huge
and tiny SDs, and now and then NaN or infinity. Every call must

* finish within :data:`LIMIT_SECONDS` (a SIGALRM guard turns a hang into a test failure instead of
  a CI job that never ends);
* return finite numbers, or NaN together with a reason (a ``note``, or ``method`` saying "not
  estimable"), or raise one of trialkit's own errors (:class:`TrialkitError`) with a message;
* never raise anything else (ZeroDivisionError, OverflowError, LinAlgError, ValueError ...) and
  never let a NumPy RuntimeWarning (or any other warning) reach the user: warnings are errors here.

Examples are derandomised, so CI runs the same ones every time.
"""

from __future__ import annotations

import math
import signal
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, currently_in_test_context, event, given, settings
from hypothesis import strategies as st

from analysis.core.errors import TrialkitError
from analysis.plan import Plan
from analysis.stats import power as pw
from analysis.stats.describe import describe
from analysis.stats.effects import (
    EffectSize,
    change_sd,
    cohens_d,
    d_ppc2,
    effect_sizes_table,
    escalc,
    glass_delta,
    hedges_g_bootstrap,
    hedges_j,
    log_ratio_of_means,
    mean_change,
    mean_difference,
    mean_of_percent_changes,
    percent_change_of_means,
    ratio_of_improvements,
    smcc,
    smcr,
    smd_heteroscedastic,
    smd_noncentral_ci,
    standardized_mean_difference,
)
from analysis.stats.effects import conversions as cv
from analysis.stats.effects.bootstrap import BootstrapResult, bootstrap_ci
from analysis.stats.effects.participant_bootstrap import ratio_of_means_batch
from analysis.stats.meta import (
    estimate_tau2,
    generalized_q,
    leave_one_out,
    log_likelihood,
    pool,
    tau2_confint,
)
from analysis.stats.models.ancova import ancova
from analysis.stats.models.missing import multiple_imputation_ancova, tipping_point
from analysis.stats.models.mmrm import fit_mmrm
from analysis.stats.models.responders import compare_proportions, nnt_interval
from analysis.stats.models.rubin import rubin_pool

LIMIT_SECONDS = 20.0
EXTREME = settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
)
SLOW = settings(EXTREME, max_examples=25)


class Hung(BaseException):
    """Raised by the alarm; a BaseException so that no ``except Exception`` in the code swallows it."""


@contextmanager
def time_limit(seconds: float = LIMIT_SECONDS) -> Iterator[None]:
    def alarm(signum, frame):  # noqa: ARG001
        raise Hung(f"the call did not finish within {seconds} s")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def call(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``fn(*args, **kwargs)`` under the time limit with warnings as errors; None for a TrialkitError."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for category in (DeprecationWarning, PendingDeprecationWarning, FutureWarning):
            warnings.simplefilter("ignore", category)
        with time_limit():
            try:
                result = fn(*args, **kwargs)
            except TrialkitError as error:
                assert str(error).strip(), f"{type(error).__name__} without a message"
                record(fn, f"{type(error).__name__}: {str(error)[:40]}")
                return None
    record(fn, "result")
    return result


def record(fn: Callable[..., Any], outcome: str) -> None:
    """Count outcomes per estimator (pytest --hypothesis-show-statistics), inside hypothesis tests."""
    if currently_in_test_context():
        event(f"{getattr(fn, '__name__', 'call')}: {outcome}")


def finite_or_nan(*values: float) -> bool:
    return all(not math.isinf(float(v)) for v in values)


def check_effect(es: EffectSize | None) -> None:
    if es is None:
        return
    numbers = (es.estimate, es.variance, es.std_error, es.ci_low, es.ci_high)
    assert finite_or_nan(*numbers), es
    if any(math.isnan(v) for v in numbers):
        assert es.note, f"NaN without a reason: {es}"


def check_frame(frame: pd.DataFrame | None, columns: tuple[str, ...] = ("estimate", "std_error", "statistic",
                                                                         "df", "p_value", "ci_low", "ci_high")) -> None:
    if frame is None:
        return
    for column in columns:
        if column in frame.columns:
            values = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=float)
            assert not np.isinf(values).any(), (column, frame)


# ------------------------------------------------------------------------------------------------
# Strategies

SPECIAL = [0.0, 1.0, -1.0, 1e-300, -1e-300, 1e300, -1e300, 5e-324, 1.7e308, -1.7e308, 1e-150, 1e150]
moderate = st.floats(-1e3, 1e3, allow_nan=False)
# extreme values, arbitrary floats, and (as often) ordinary ones, so that results are checked too
numbers = st.one_of(st.sampled_from(SPECIAL), st.floats(allow_nan=False, allow_infinity=False), moderate)
sometimes_missing = st.one_of(numbers, st.sampled_from([math.nan, math.inf, -math.inf]))
spreads = st.one_of(st.sampled_from([0.0, 1e-300, 5e-324, 1e300, 1.7e308, 1.0]), st.floats(min_value=0.0, max_value=1.7e308))
sizes = st.one_of(st.sampled_from([1, 2, 3, 10**6, 10**15]), st.integers(1, 500))
correlations = st.one_of(st.sampled_from([-1.0, 0.0, 1.0, 1 - 1e-16, -1 + 1e-16]), st.floats(-1.0, 1.0))
levels = st.sampled_from([0.95, 0.5, 0.999999, 1e-9])
arm_summary = st.tuples(sizes, sometimes_missing, spreads)


KINDS = ("constant", "zero", "ties", "ties", "moderate", "moderate", "moderate", "huge", "tiny", "any")
# for the repeated-measures models, whose three columns each draw a kind: fewer extremes
MODEL_KINDS = ("zero", "ties", "ties", "moderate", "moderate", "moderate", "moderate", "moderate", "huge", "tiny")


@st.composite
def samples(draw, min_size: int = 2, max_size: int = 12, kinds: tuple[str, ...] = KINDS) -> np.ndarray:
    """A participant sample: constant, all zero, ties, near the float limits, or arbitrary."""
    n = draw(st.integers(min_size, max_size))
    kind = draw(st.sampled_from(kinds))
    if kind == "constant":
        return np.full(n, draw(numbers))
    if kind == "zero":
        return np.zeros(n)
    if kind == "ties":
        return np.array(draw(st.lists(st.sampled_from([0.0, 1.0, 2.0]), min_size=n, max_size=n)))
    if kind == "huge":
        return np.array(draw(st.lists(st.sampled_from([1e300, -1e300, 1.7e308, 0.0]), min_size=n, max_size=n)))
    if kind == "tiny":
        return np.array(draw(st.lists(st.sampled_from([1e-300, -1e-300, 5e-324, 0.0]), min_size=n, max_size=n)))
    if kind == "moderate":
        return np.array(draw(st.lists(st.floats(-10.0, 10.0), min_size=n, max_size=n)))
    return np.array(draw(st.lists(numbers, min_size=n, max_size=n)))


# ------------------------------------------------------------------------------------------------
# Effect sizes from arm summaries


@EXTREME
@given(t=arm_summary, c=arm_summary, level=levels,
       vtype=st.sampled_from(["LS", "LS2", "LS3", "UB", "H0"]))
def test_between_arm_effect_sizes(t, c, level, vtype):
    args = (*t, *c)
    check_effect(call(mean_difference, *args, ci_level=level, vtype=vtype if vtype in ("LS", "UB") else "HO"))
    check_effect(call(standardized_mean_difference, *args, ci_level=level, vtype=vtype))
    check_effect(call(cohens_d, *args, ci_level=level))
    check_effect(call(glass_delta, *args, ci_level=level))
    check_effect(call(smd_heteroscedastic, *args, ci_level=level, vtype=vtype if vtype.startswith("LS") else "LS"))
    check_effect(call(log_ratio_of_means, *args, ci_level=level))


@EXTREME
@given(t=arm_summary, c=arm_summary, level=levels, correct=st.booleans())
def test_noncentral_t_interval_always_ends(t, c, level, correct):
    check_effect(call(smd_noncentral_ci, *t, *c, ci_level=level, correct=correct))


@pytest.mark.parametrize("t", [1e3, 1e5, 1e6, 1e8, 1e15, 1e300])
def test_noncentral_t_interval_of_huge_t_ends_quickly(t):
    """The known hang: a huge t made the bracket search loop for ever."""
    es = call(smd_noncentral_ci, 1000, t, 1.0, 1000, 0.0, 1.0)
    check_effect(es)
    es = call(smd_noncentral_ci, 10, 1.0, 1e-300, 10, 0.0, 1e-300)
    check_effect(es)


@EXTREME
@given(n=sizes, m_post=sometimes_missing, m_pre=numbers, sd_post=spreads, sd_pre=spreads, r=correlations,
       level=levels, vtype=st.sampled_from(["LS", "LS2", "UB", "H0"]))
def test_prepost_effect_sizes(n, m_post, m_pre, sd_post, sd_pre, r, level, vtype):
    value = call(change_sd, sd_post, sd_pre, r)
    assert value is None or not math.isinf(value)
    check_effect(call(mean_change, n, m_post, m_pre, sd_post, sd_pre, r, ci_level=level))
    check_effect(call(smcc, n, m_post, m_pre, sd_post, sd_pre, r, ci_level=level, vtype=vtype))
    check_effect(call(smcr, n, m_post, m_pre, sd_pre, r, ci_level=level, vtype=vtype))
    check_effect(call(d_ppc2, n, m_pre, m_post, sd_pre, n + 1, m_pre, m_pre, sd_post, r, ci_level=level))
    check_effect(call(percent_change_of_means, n, m_pre, m_post, sd_pre, sd_post, r, ci_level=level))


@EXTREME
@given(a=sometimes_missing, se_a=spreads, b=sometimes_missing, se_b=spreads, level=levels, x=samples(0, 8))
def test_ratio_effect_sizes(a, se_a, b, se_b, level, x):
    result = call(ratio_of_improvements, a, se_a, b, se_b, ci_level=level)
    if result is not None:
        assert finite_or_nan(result.estimate, result.ci_low, result.ci_high)
        if math.isnan(result.estimate):
            assert result.note
    check_effect(call(mean_of_percent_changes, x, ci_level=level))


@EXTREME
@given(df=st.one_of(st.sampled_from([-1.0, 0.0, 1.0, 2.0, math.inf, math.nan, 1e300]), st.floats(0, 1e308)))
def test_hedges_j(df):
    value = call(hedges_j, df)
    assert value is None or math.isnan(value) or 0 < value <= 1


@EXTREME
@given(measure=st.sampled_from(["MD", "SMD", "SMDH", "ROM", "MC", "SMCC", "SMCR"]),
       rows=st.lists(st.tuples(sizes, numbers, spreads, sizes, numbers, spreads, correlations), min_size=1, max_size=4))
def test_escalc_frame(measure, rows):
    frame = pd.DataFrame(rows, columns=["n1i", "m1i", "sd1i", "n2i", "m2i", "sd2i", "ri"])
    frame["ni"], frame["n1i"], frame["n2i"] = frame["n1i"], frame["n1i"].clip(lower=2), frame["n2i"].clip(lower=2)
    frame["ni"] = frame["ni"].clip(lower=2)
    out = call(escalc, measure, frame)
    if out is None:
        return
    check_frame(out, ("yi", "vi", "sei", "ci_low", "ci_high"))
    undefined = out["yi"].isna() | out["vi"].isna()
    assert out.loc[undefined, "note"].notna().all()


# ------------------------------------------------------------------------------------------------
# Bootstrap from participant data


def check_bootstrap(result: BootstrapResult | None) -> None:
    if result is None:
        return
    numbers_ = (result.estimate, result.ci_low, result.ci_high, result.std_error)
    assert finite_or_nan(*numbers_), result
    if any(math.isnan(v) for v in numbers_):
        assert result.note, result


@SLOW
@given(x=samples(), y=samples(), method=st.sampled_from(["bca", "percentile"]), seed=st.integers(0, 2**32 - 1))
def test_hedges_g_bootstrap(x, y, method, seed):
    check_bootstrap(call(hedges_g_bootstrap, x, y, n_boot=200, seed=seed, method=method))


@SLOW
@given(x=samples(), y=samples(), seed=st.integers(0, 2**32 - 1))
def test_bootstrap_ratio_of_means(x, y, seed):
    check_bootstrap(call(bootstrap_ci, [x, y], ratio_of_means_batch, n_boot=200, seed=seed, method="bca"))
    check_bootstrap(call(bootstrap_ci, [x, y], ratio_of_means_batch, n_boot=200, seed=seed, method="percentile"))


# ------------------------------------------------------------------------------------------------
# Conversions


@EXTREME
@given(a=sometimes_missing, b=sometimes_missing, c=sometimes_missing, n=st.one_of(sizes, st.sampled_from([2, 1e300])),
       level=levels)
def test_conversions(a, b, c, n, level):
    lo, mid, hi = sorted(x if math.isfinite(x) else 0.0 for x in (a, b, c))
    results = [
        call(cv.sd_from_se, abs(a) if math.isfinite(a) else a, n),
        call(cv.sd_from_ci, lo, hi, n, ci_level=level),
        call(cv.sd_from_ci, lo, hi, n, ci_level=level, distribution="z"),
        call(cv.sd_from_range, lo, hi, n),
        call(cv.sd_from_iqr, lo, hi, n),
        call(cv.mean_from_median_iqr, lo, mid, hi),
        call(cv.mean_from_median_range, lo, mid, hi),
        call(cv.sd_change_from_sds, abs(lo), abs(hi), 0.5),
        call(cv.correlation_from_sds, abs(lo), abs(mid), abs(hi)),
        call(cv.sd_from_se, a, n),
    ]
    for value in results:
        assert value is None or math.isfinite(value), results


# ------------------------------------------------------------------------------------------------
# Models on participant data


@st.composite
def trials(draw, visits: tuple[str, ...] = ("w8",), max_per_arm: int = 7, min_per_arm: int = 1,
           kinds: tuple[str, ...] = KINDS) -> pd.DataFrame:
    """A long analysis dataset of one outcome: baseline plus ``visits``, degenerate by design."""
    n_t = draw(st.integers(min_per_arm, max_per_arm))
    n_c = draw(st.integers(min_per_arm, max_per_arm))
    n = n_t + n_c
    baseline = draw(samples(n, n, kinds))
    follow = {v: draw(samples(n, n, kinds)) for v in visits}
    missing = draw(st.lists(st.booleans(), min_size=n, max_size=n)) if draw(st.booleans()) else [False] * n
    rows = []
    for i in range(n):
        for v in visits:
            value = np.nan if (missing[i] and v == visits[-1]) else float(follow[v][i])
            rows.append({
                "participant_id": f"P{i:02d}", "arm": "treatment" if i < n_t else "control", "outcome": "pain",
                "visit": v, "visit_week": 4.0 * (visits.index(v) + 1), "value": value,
                "baseline": float(baseline[i]), "change": value - float(baseline[i]), "pct_change": np.nan,
                "baseline_flag": False,
            })
    return pd.DataFrame(rows)


@EXTREME
@given(data=trials(), level=levels)
def test_ancova(data, level):
    with warnings.catch_warnings():  # value - baseline near the float limits may overflow in the test data itself
        warnings.simplefilter("ignore", RuntimeWarning)
    result = call(ancova, data, outcome="pain", visit="w8", robust=True, ci_level=level)
    if result is None:
        return
    check_frame(result.effect)
    check_frame(result.adjusted_means)
    main = result.effect.iloc[0]
    assert math.isfinite(main["estimate"]) and math.isfinite(main["std_error"])
    if math.isnan(main["statistic"]):
        assert "perfect fit" in main["note"]
    std = result.effect.iloc[-1]
    if math.isnan(std["estimate"]):
        assert "not estimable" in std["method"]


@SLOW
@given(data=trials(visits=("w4", "w8"), max_per_arm=8, min_per_arm=3, kinds=MODEL_KINDS),
       covariance=st.sampled_from(["unstructured", "compound_symmetry", "ar1", "toeplitz"]))
def test_fit_mmrm(data, covariance):
    fit = call(fit_mmrm, data.drop(columns=["visit_week", "change", "pct_change", "baseline_flag"]),
               visit_order=["w4", "w8"], covariance=covariance, fallback=("compound_symmetry",))
    if fit is not None:
        check_frame(fit.contrasts)
        check_frame(fit.lsmeans)
        assert np.all(np.isfinite(fit.contrasts["estimate"])) and np.all(np.isfinite(fit.contrasts["std_error"]))


@SLOW
@given(data=trials(visits=("w4", "w8"), max_per_arm=8, min_per_arm=4, kinds=MODEL_KINDS), m=st.integers(2, 5), seed=st.integers(0, 2**32 - 1),
       better=st.sampled_from(["lower", "higher"]))
def test_multiple_imputation_ancova_and_tipping_point(data, m, seed, better):
    shared = dict(outcome="pain", visit="w8", m=m, seed=seed, visits=["w4", "w8"])
    mi = call(multiple_imputation_ancova, data, **shared)
    if mi is not None:
        check_frame(mi.effect)
        row = mi.effect.iloc[0]
        if math.isnan(row["statistic"]) or math.isnan(row["ci_low"]):
            assert mi.pooled.note
    tp = call(tipping_point, data, better=better, **shared)
    if tp is not None:
        check_frame(tp.effect)
        if math.isnan(tp.delta):
            assert tp.effect.iloc[0]["note"]


@EXTREME
@given(q=st.lists(st.one_of(numbers, moderate, st.just(2.5)), min_size=2, max_size=6),
       u=st.lists(st.one_of(st.sampled_from([0.0, 1e-300, 1e-10, 1e100]), st.floats(0.0, 1e3)), min_size=2, max_size=6),
       df=st.one_of(st.sampled_from([1e-300, 1.0, 1e300, math.inf, math.nan]), st.floats(0.0, 1e308)), level=levels)
def test_rubin_pool(q, u, df, level):
    k = min(len(q), len(u))
    result = call(rubin_pool, q[:k], u[:k], df, ci_level=level)
    if result is None:
        return
    fields = (result.estimate, result.within, result.between, result.total, result.std_error, result.df,
              result.statistic, result.p_value, result.ci_low, result.ci_high, result.fmi, result.lambda_)
    assert finite_or_nan(*fields), result
    if math.isnan(result.statistic) or math.isnan(result.ci_low):
        assert result.note, result


# ------------------------------------------------------------------------------------------------
# Responders


invalid_counts = st.sampled_from([-1, 1.5, math.nan, math.inf])


@st.composite
def arm_counts(draw) -> tuple[object, object]:
    """(events, n): mostly valid, including 0 and n events, n = 1 and huge n; now and then invalid."""
    n = draw(st.one_of(st.integers(1, 12), st.sampled_from([1, 10**9, 10**15])))
    events = draw(st.one_of(st.integers(0, n), st.sampled_from([0, n])))
    if draw(st.integers(0, 9)) == 0:
        return draw(invalid_counts), n
    return events, n


@EXTREME
@given(t=arm_counts(), c_=arm_counts(), level=levels)
def test_compare_proportions(t, c_, level):
    (a, n1), (c, n2) = t, c_
    rows = call(compare_proportions, a, n1, c, n2, ci_level=level)
    for row in rows or []:
        finite = [row.get(k, math.nan) for k in ("estimate", "std_error", "statistic", "p_value", "ci_low", "ci_high")]
        if row["measure"] == "NNT":  # NNT = 1/RD is infinite at RD = 0, as documented (Altman 1998)
            assert "NNT" in row["note"]
            continue
        assert finite_or_nan(*finite), row
        if math.isnan(row["estimate"]):
            assert row.get("note"), row


@EXTREME
@given(values=st.lists(st.one_of(st.floats(-1.0, 1.0), st.sampled_from([math.nan, 2.0, -0.0, 0.0])),
                       min_size=3, max_size=3))
def test_nnt_interval(values):
    rd, low, high = values[1], min(values[0], values[2]), max(values[0], values[2])
    result = call(nnt_interval, rd, low, high)
    if result is not None:
        assert result.text.startswith("NNT")


# ------------------------------------------------------------------------------------------------
# Meta-analysis


effects = st.one_of(st.sampled_from([0.0, 1e300, -1e300, 1e-300, 1.0, 1e50, -1e50]), st.floats(-1e6, 1e6),
                    st.floats(-3.0, 3.0), st.floats(-3.0, 3.0))
variances = st.one_of(st.sampled_from([1e-300, 5e-324, 1e300, 1.7e308, 1e-20, 1.0]), st.floats(1e-12, 1e12),
                      st.floats(1e-3, 1.0), st.floats(1e-3, 1.0))


@EXTREME
@given(studies=st.lists(st.tuples(effects, variances), min_size=1, max_size=6),
       method=st.sampled_from(["REML", "DL", "PM", "ML", "FE"]), test=st.sampled_from(["z", "knha"]), level=levels)
def test_meta_pool_every_method_and_test(studies, method, test, level):
    y = [s[0] for s in studies]
    v = [s[1] for s in studies]
    fit = call(pool, y, v, method=method, test=test, ci_level=level)
    if fit is not None:
        fields = {name: getattr(fit, name) for name in ("estimate", "std_error", "statistic", "df", "p_value",
                  "ci_low", "ci_high", "pi_low", "pi_high", "tau2", "tau2_ci_low", "tau2_ci_high", "tau",
                  "i2", "h2", "q", "q_p_value")}
        assert finite_or_nan(*fields.values(), *fit.weights), fit
        assert math.isfinite(fit.estimate) and math.isfinite(fit.std_error) and math.isfinite(fit.tau2)
        if math.isnan(fit.p_value) and fit.k > 1:
            assert fit.note, fit
        if fit.k > 1:
            loo = call(leave_one_out, fit)
            check_frame(loo, ("estimate", "std_error", "ci_low", "ci_high", "tau2", "i2", "h2", "q"))
    for value in (call(estimate_tau2, y, v, method), call(generalized_q, y, v, 0.0),
                  call(log_likelihood, y, v, 0.0, reml=method == "REML")):
        assert value is None or math.isfinite(value)
    bounds = call(tau2_confint, y, v, level)
    if bounds is not None:
        assert finite_or_nan(*bounds)


# ------------------------------------------------------------------------------------------------
# Power


@EXTREME
@given(d=st.one_of(st.sampled_from([0.0, 1e-300, 1e300, -1e300, 1e10, math.nan]), st.floats(-50, 50), st.floats(-2, 2)),
       n=st.one_of(st.sampled_from([1.0, 1.0000001, 2.0, 1e9, 1e15, math.inf]), st.floats(1, 1e6), st.floats(3, 500)),
       r=correlations, power=st.sampled_from([0.5, 0.8, 1 - 1e-15, 0.05]),
       alpha=st.sampled_from([0.05, 1e-10, 0.5]), alternative=st.sampled_from(["two-sided", "larger", "smaller"]))
def test_analytic_power(d, n, r, power, alpha, alternative):
    for value in (call(pw.ttest_power, d, n, alpha, alternative), call(pw.ancova_power, d, n, r, alpha)):
        assert value is None or 0.0 <= value <= 1.0
    for value in (call(pw.ttest_n, d, power, alpha, alternative), call(pw.ancova_n, d, r, power, alpha)):
        assert value is None or (math.isfinite(value) and value > 1)
    enrol = call(pw.inflate_for_attrition, n, abs(r) if abs(r) < 1 else 0.5)
    assert enrol is None or enrol >= 1
    curve = call(pw.power_curve, [d], [n], r=r, alpha=alpha)
    check_frame(curve, ("power",))


@SLOW
@given(d=st.one_of(st.sampled_from([0.0, 1e3, 1e300, math.nan]), st.floats(-5, 5)), n=st.integers(3, 8),
       r=correlations, seed=st.integers(0, 2**32 - 1), dropout=st.sampled_from([(0.0, 0.0), (0.5, 0.9), (0.9, 0.99)]))
def test_simulated_power(d, n, r, seed, dropout):
    sim = call(pw.simulate_power_ancova, d, n, r=r, n_sims=40, seed=seed)
    if sim is not None:
        assert 0.0 <= sim.power <= 1.0 and finite_or_nan(sim.mean_estimate, sim.mc_se)
    corr = np.array([[1.0, 0.5, 0.4], [0.5, 1.0, 0.5], [0.4, 0.5, 1.0]])
    sim = call(pw.simulate_power_mmrm, d, n, corr, np.array(dropout), n_sims=40, seed=seed)
    if sim is not None:
        assert 0.0 <= sim.power <= 1.0 and finite_or_nan(sim.mean_estimate, sim.mc_se)
        if math.isnan(sim.mean_estimate):
            assert "too few" in sim.method


# ------------------------------------------------------------------------------------------------
# Descriptives and the effect-size table of a run


PLAN = Plan.model_validate({
    "study": {"id": "extreme", "title": "Extreme inputs"},
    "seed": 3,
    "data": {"participants": {"path": "p.csv"}, "measurements": {"path": "m.csv"}},
    "arms": {"treatment": {"label": "T", "codes": ["T"]}, "control": {"label": "C", "codes": ["C"]}},
    "visits": {"baseline": "base", "followup": [{"label": "w4", "week": 4}, {"label": "w8", "week": 8}],
               "primary": "w8"},
    "outcomes": [{"name": "pain", "label": "Pain", "unit": "points", "range": [-1.7e308, 1.7e308], "better": "lower"}],
})


@SLOW
@given(data=trials(visits=("w4", "w8"), max_per_arm=6), level=levels)
def test_describe_and_effect_sizes_table(data, level):
    base = data.loc[data["visit"] == "w4"].assign(visit="base", visit_week=0.0, value=data.loc[data["visit"] == "w4", "baseline"],
                                                  change=np.nan, baseline_flag=True)
    full = pd.concat([base, data], ignore_index=True)
    with np.errstate(all="ignore"):  # building the test data (percent change of extreme values)
        full["pct_change"] = np.where(full["baseline"] != 0, 100 * full["change"] / full["baseline"], np.nan)
    table = call(describe, full, ci_level=level)
    check_frame(table, ("mean", "sd", "median", "q1", "q3", "ci_low", "ci_high"))
    effects = call(effect_sizes_table, full, PLAN, n_boot=100, seed=1)
    check_frame(effects)
    if effects is not None:
        undefined = effects["estimate"].isna()
        explained = effects["note"].notna() | effects["method"].fillna("").str.contains("not estimable")
        assert (explained | ~undefined).all(), effects.loc[undefined & ~explained]
