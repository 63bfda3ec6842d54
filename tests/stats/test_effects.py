"""Effect-size engine against R (metafor escalc, effectsize hedges_g) and hand-worked numbers.

Expected values come from tests/reference/*.json (R; see tests/reference/README.md) or are literal
numbers worked by hand in the comments. None is computed with trialkit.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from analysis.core.errors import DataError, UsageError
from analysis.core.tidy import RESULT_COLUMNS
from analysis.plan import Plan
from analysis.stats import effects as E
from analysis.stats.effects.bootstrap import bootstrap_ci, bootstrap_distribution
from analysis.stats.effects.participant_bootstrap import _hedges_g_batch
from tests.conftest import REFERENCE

REF = REFERENCE
ANOREXIA = json.loads((REF / "anorexia_ref.json").read_text())
NORMAND = json.loads((REF / "normand1999_ref.json").read_text())
CLOSED = 1e-10  # closed forms: relative tolerance demanded by the issue
NCT = 1e-6  # noncentral-t limits: effectsize's optimiser stops earlier than ours


def rel(actual: float, expected: float) -> float:
    return abs(actual - expected) / abs(expected)


def arm_args(trt: str, which: str = "post") -> tuple[float, ...]:
    t, c = ANOREXIA[trt]["arms"]["treatment"], ANOREXIA[trt]["arms"]["control"]
    return (
        t["n"],
        t[f"{which}_mean"],
        t[f"{which}_sd"],
        c["n"],
        c[f"{which}_mean"],
        c[f"{which}_sd"],
    )


# ---------------------------------------------------------------- closed forms vs metafor


@pytest.mark.parametrize("trt", ["CBT", "FT"])
@pytest.mark.parametrize(
    ("key", "fn"),
    [
        ("post_MD", E.mean_difference),
        ("post_SMD", E.standardized_mean_difference),
        ("post_ROM", E.log_ratio_of_means),
    ],
)
def test_between_arm_matches_metafor(trt, key, fn):
    es = fn(*arm_args(trt))
    ref = ANOREXIA[trt][key]
    for ours, theirs in [
        ("estimate", "yi"),
        ("variance", "vi"),
        ("std_error", "sei"),
        ("ci_low", "ci_low"),
        ("ci_high", "ci_high"),
    ]:
        assert rel(getattr(es, ours), ref[theirs]) < CLOSED, (key, ours)


@pytest.mark.parametrize("trt", ["CBT", "FT"])
def test_change_score_md_and_smd_match_metafor(trt):
    t, c = ANOREXIA[trt]["arms"]["treatment"], ANOREXIA[trt]["arms"]["control"]
    args = (t["n"], t["change_mean"], t["change_sd"], c["n"], c["change_mean"], c["change_sd"])
    for fn, key in [
        (E.mean_difference, "change_MD"),
        (E.standardized_mean_difference, "change_SMD"),
    ]:
        es = fn(*args)
        assert rel(es.estimate, ANOREXIA[trt][key]["yi"]) < CLOSED
        assert rel(es.variance, ANOREXIA[trt][key]["vi"]) < CLOSED


@pytest.mark.parametrize("trt", ["CBT", "FT"])
@pytest.mark.parametrize("arm", ["treatment", "control"])
def test_within_arm_smcr_smcc_match_metafor(trt, arm):
    a = ANOREXIA[trt]["arms"][arm]
    r = E.smcr(a["n"], a["post_mean"], a["pre_mean"], a["pre_sd"], a["r_pre_post"])
    ref = ANOREXIA[trt][f"{arm}_SMCR"]
    assert rel(r.estimate, ref["yi"]) < CLOSED and rel(r.variance, ref["vi"]) < CLOSED
    assert rel(r.ci_low, ref["ci_low"]) < CLOSED and rel(r.ci_high, ref["ci_high"]) < CLOSED
    c = E.smcc(a["n"], a["post_mean"], a["pre_mean"], a["post_sd"], a["pre_sd"], a["r_pre_post"])
    ref = ANOREXIA[trt][f"{arm}_SMCC"]
    assert rel(c.estimate, ref["yi"]) < CLOSED and rel(c.variance, ref["vi"]) < CLOSED


@pytest.mark.parametrize("trt", ["CBT", "FT"])
def test_d_ppc2_estimate_matches_r(trt):
    t, c = ANOREXIA[trt]["arms"]["treatment"], ANOREXIA[trt]["arms"]["control"]
    d = E.d_ppc2(
        t["n"],
        t["pre_mean"],
        t["post_mean"],
        t["pre_sd"],
        c["n"],
        c["pre_mean"],
        c["post_mean"],
        c["pre_sd"],
        0.3,
    )
    assert rel(d.estimate, ANOREXIA[trt]["d_ppc2"]["estimate"]) < CLOSED


def test_d_ppc2_variance_hand_worked():
    # n_t = n_c = 12, r = 0.5, pooled pretest SD 10, change difference 5:
    # c_p = 1 - 3/(4*22 - 1) = 1 - 3/87 = 0.9655172413793104; d = 0.5 c_p = 0.4827586206896552
    # k = 24/144 = 1/6; 2 c_p^2 (1-r) k = 0.9322235434007135 * 1/6 = 0.15537059056678558
    # (N-2)/(N-4) = 22/20 = 1.1 -> 0.17090764962346414
    # 1 + d^2 / (2 (1-r) k) = 1 + 0.23305588585017836 / (1/6) = 2.39833531510107
    # vi = 0.17090764962346414 * 2.39833531510107 - 0.23305588585017836 = 0.17684771053484...
    d = E.d_ppc2(12, 50.0, 45.0, 10.0, 12, 50.0, 40.0, 10.0, 0.5)
    # treatment changed by -5, control by -10: difference +5
    assert d.estimate == pytest.approx(0.4827586206896552, rel=1e-12)
    assert d.variance == pytest.approx(
        0.17090764962346414 * 2.39833531510107 - 0.23305588585017836, rel=1e-12
    )


def test_hedges_j_exact_values():
    # J(m) = Gamma(m/2) / (sqrt(m/2) Gamma((m-1)/2)); m = 2: Gamma(1)/(1 * Gamma(1/2)) = 1/sqrt(pi)
    assert E.hedges_j(2) == pytest.approx(1 / math.sqrt(math.pi), rel=1e-14)
    # m = 3: Gamma(3/2) / (sqrt(3/2) Gamma(1)) = (sqrt(pi)/2) / sqrt(1.5)
    assert E.hedges_j(3) == pytest.approx(math.sqrt(math.pi) / 2 / math.sqrt(1.5), rel=1e-14)
    assert E.hedges_j(1e6) == pytest.approx(1 - 3 / (4e6 - 1), rel=1e-12)


@pytest.mark.parametrize("trt", ["CBT", "FT"])
def test_noncentral_t_ci_matches_effectsize(trt):
    es = E.smd_noncentral_ci(*arm_args(trt))
    ref = ANOREXIA[trt]["post_hedges_g_effectsize"]
    assert rel(es.estimate, ref["estimate"]) < CLOSED
    assert rel(es.ci_low, ref["ci_low"]) < NCT
    assert rel(es.ci_high, ref["ci_high"]) < NCT


@pytest.mark.parametrize("measure", ["MD", "SMD", "ROM"])
def test_escalc_frame_matches_metafor_normand1999(measure):
    data = pd.read_csv(REF / "normand1999.csv")
    out = E.escalc(measure, data)
    np.testing.assert_allclose(out["yi"], NORMAND[measure]["yi"], rtol=CLOSED)
    np.testing.assert_allclose(out["vi"], NORMAND[measure]["vi"], rtol=CLOSED)
    assert list(out.columns[: len(data.columns)]) == list(data.columns)
    assert out["note"].isna().all()


def test_other_vtypes_hand_worked():
    # n1 = n2 = 10, d = 1 (means 1 vs 0, SDs 1). m = 18, J(18) = 0.957839 (exact, gamma form);
    # UB: 1/10 + 1/10 + (1 - 16/(18 J^2)) g^2; H0: J^2 (0.2) 18/16.
    j = math.exp(math.lgamma(9) - 0.5 * math.log(9) - math.lgamma(8.5))
    g = j
    ub = E.standardized_mean_difference(10, 1.0, 1.0, 10, 0.0, 1.0, vtype="UB")
    assert ub.variance == pytest.approx(0.2 + (1 - 16 / (18 * j * j)) * g * g, rel=1e-12)
    h0 = E.standardized_mean_difference(10, 1.0, 1.0, 10, 0.0, 1.0, vtype="H0")
    assert h0.variance == pytest.approx(j * j * 0.2 * 18 / 16, rel=1e-12)
    ls2 = E.standardized_mean_difference(10, 1.0, 1.0, 10, 0.0, 1.0, vtype="LS2")
    assert ls2.variance == pytest.approx(j * j * (0.2 + 1 / 40), rel=1e-12)
    with pytest.raises(UsageError):
        E.standardized_mean_difference(10, 1.0, 1.0, 10, 0.0, 1.0, vtype="XX")


def test_smdh_glass_cohen_hand_worked():
    # SMDH, n1 = n2 = 11, sd1 = 3, sd2 = 1: s = sqrt(5); d = 2/sqrt(5) = 0.894427191; J(20) exact.
    j20 = math.exp(math.lgamma(10) - 0.5 * math.log(10) - math.lgamma(9.5))
    y = j20 * 2 / math.sqrt(5)
    # vi = y^2 (81/10 + 1/10) / (8 * 25) + (9/10 + 1/10) / 5
    es = E.smd_heteroscedastic(11, 2.0, 3.0, 11, 0.0, 1.0)
    assert es.estimate == pytest.approx(y, rel=1e-12)
    assert es.variance == pytest.approx(y * y * 8.2 / 200 + 0.2, rel=1e-12)
    # Glass: (12 - 10)/4 = 0.5; vi = 1/20 + 1/20 + 0.25/40 = 0.10625
    gd = E.glass_delta(20, 12.0, 3.0, 20, 10.0, 4.0)
    assert (gd.estimate, gd.variance) == (0.5, pytest.approx(0.10625, rel=1e-12))
    # Cohen's d: pooled SD of 3 and 4 with equal n = sqrt(12.5) = 3.5355339; d = 2/3.5355339 = 0.565685
    cd = E.cohens_d(20, 12.0, 3.0, 20, 10.0, 4.0)
    assert cd.estimate == pytest.approx(0.565685424949238, rel=1e-12)
    assert cd.variance == pytest.approx(0.1 + 0.32 / 80, rel=1e-12)


def test_mean_change_hand_worked():
    # sd_change = sqrt(9 + 9 - 2*0.5*9) = 3; vi = 9/25 = 0.36
    es = E.mean_change(25, 12.0, 10.0, 3.0, 3.0, 0.5)
    assert es.estimate == 2.0 and es.variance == pytest.approx(0.36, rel=1e-14)
    with pytest.raises(UsageError):
        E.mean_change(25, 12.0, 10.0, 3.0, 3.0, 1.5)


# ---------------------------------------------------------------- percent change, ratio


def test_percent_change_of_means_delta_method_hand_worked():
    # m_pre 50, m_post 40, sd 10 and 10, r 0.5, n 30: R = 0.8, estimate -20 %.
    # Var(R) = (100 + 0.64*100 - 2*0.8*0.5*100) / (30 * 2500) = 84 / 75000 = 0.00112
    # SE(percent) = 100 * sqrt(0.00112) = 3.3466401061363023
    es = E.percent_change_of_means(30, 50.0, 40.0, 10.0, 10.0, 0.5)
    assert es.estimate == pytest.approx(-20.0, rel=1e-14)
    assert es.std_error == pytest.approx(3.3466401061363023, rel=1e-12)
    assert es.ci_low == pytest.approx(-20 - 1.959963984540054 * 3.3466401061363023, rel=1e-12)


@pytest.mark.parametrize("trt", ["CBT", "FT"])
def test_percent_change_estimates_match_r(trt):
    a = ANOREXIA[trt]["arms"]["treatment"]
    es = E.percent_change_of_means(
        a["n"], a["pre_mean"], a["post_mean"], a["pre_sd"], a["post_sd"], a["r_pre_post"]
    )
    assert rel(es.estimate, a["pct_change_of_means"]) < CLOSED


def test_ratio_of_improvements_fieller_hand_worked():
    # a = -17, b = -10, se 1.5 each, q = 1.959963984540054 (q^2 = 3.841458820694124)
    # denom = 100 - 3.841458820694124 * 2.25 = 91.35671765343822
    # disc = 2.25*100 + 2.25*289 - 3.841458820694124*2.25*2.25 = 875.25 - 19.447385279763...
    #      = 855.8026147202360; root = q * sqrt(disc) = 1.959963984540054 * 29.25410421...
    # limits = (170 -/+ root) / denom
    q = 1.959963984540054
    disc = 2.25 * 100 + 2.25 * 289 - q * q * 2.25 * 2.25
    root = q * math.sqrt(disc)
    denom = 100 - q * q * 2.25
    r = E.ratio_of_improvements(-17.0, 1.5, -10.0, 1.5)
    assert r.bounded and r.estimate == pytest.approx(1.7, rel=1e-14)
    assert r.ci_low == pytest.approx((170 - root) / denom, rel=1e-12)
    assert r.ci_high == pytest.approx((170 + root) / denom, rel=1e-12)


def test_ratio_of_improvements_unbounded_gives_no_number():
    # control change -2 with SE 1.5: its 95% CI (-4.94, 0.94) includes zero
    r = E.ratio_of_improvements(-17.0, 1.5, -2.0, 1.5)
    assert not r.bounded
    assert math.isnan(r.estimate) and math.isnan(r.ci_low) and math.isnan(r.ci_high)
    assert "unbounded" in r.note


# ---------------------------------------------------------------- participant data table


def anorexia_dataset(trt: str) -> pd.DataFrame:
    raw = pd.read_csv(REF / "anorexia.csv")
    raw = raw[raw["Treat"].isin([trt, "Cont"])]
    rows = []
    for _, p in raw.iterrows():
        arm = "treatment" if p["Treat"] == trt else "control"
        pre, post = float(p["Prewt"]), float(p["Postwt"])
        common = dict(participant_id=p["id"], arm=arm, outcome="weight", baseline=pre)
        rows.append(
            common
            | dict(
                visit="pre",
                visit_week=0.0,
                value=pre,
                change=np.nan,
                pct_change=np.nan,
                baseline_flag=True,
            )
        )
        rows.append(
            common
            | dict(
                visit="post",
                visit_week=8.0,
                value=post,
                change=post - pre,
                pct_change=100 * (post - pre) / pre,
                baseline_flag=False,
            )
        )
    return pd.DataFrame(rows)


def anorexia_plan(trt: str) -> Plan:
    return Plan.model_validate(
        {
            "study": {"id": "anorexia", "title": "MASS anorexia"},
            "seed": 11,
            "data": {"participants": {"path": "p.csv"}, "measurements": {"path": "m.csv"}},
            "arms": {
                "treatment": {"label": trt, "codes": [trt]},
                "control": {"label": "Cont", "codes": ["Cont"]},
            },
            "visits": {
                "baseline": "pre",
                "followup": [{"label": "post", "week": 8}],
                "primary": "post",
            },
            "outcomes": [
                {
                    "name": "weight",
                    "label": "Weight",
                    "unit": "lb",
                    "range": [0, 200],
                    "better": "higher",
                }
            ],
        }
    )


@pytest.fixture(scope="module")
def cbt_table() -> pd.DataFrame:
    return E.effect_sizes_table(anorexia_dataset("CBT"), anorexia_plan("CBT"), n_boot=2000, seed=5)


def pick(
    table: pd.DataFrame, measure: str, method_part: str = "", contrast_part: str = ""
) -> pd.Series:
    rows = table[
        (table["measure"] == measure)
        & table["method"].fillna("").str.contains(method_part, regex=False)
        & table["contrast"].str.contains(contrast_part, regex=False)
    ]
    assert len(rows) == 1, (measure, method_part, rows)
    return rows.iloc[0]


def test_table_layout(cbt_table):
    assert list(cbt_table.columns) == RESULT_COLUMNS + ["n_boot", "seed", "note"]
    assert set(cbt_table["ci_level"]) == {0.95}
    boot = cbt_table[cbt_table["method"].fillna("").str.contains("bootstrap")]
    assert len(boot) == 2 and (boot["n_boot"] == 2000).all() and (boot["seed"] == 5).all()
    assert cbt_table.loc[~cbt_table.index.isin(boot.index), "n_boot"].isna().all()


def test_table_values_match_r(cbt_table):
    ref = ANOREXIA["CBT"]
    md = pick(cbt_table, "MD")
    assert (
        rel(md["estimate"], ref["post_MD"]["yi"]) < CLOSED
        and rel(md["ci_low"], ref["post_MD"]["ci_low"]) < CLOSED
    )
    assert (md["n_treatment"], md["n_control"]) == (29, 26)
    g = pick(cbt_table, "SMD", "Wald")
    assert (
        rel(g["estimate"], ref["post_SMD"]["yi"]) < CLOSED
        and rel(g["ci_high"], ref["post_SMD"]["ci_high"]) < CLOSED
    )
    g_nct = pick(cbt_table, "SMD", "noncentral")
    assert rel(g_nct["ci_low"], ref["post_hedges_g_effectsize"]["ci_low"]) < NCT
    assert rel(pick(cbt_table, "ROM")["estimate"], ref["post_ROM"]["yi"]) < CLOSED
    assert rel(pick(cbt_table, "MD_change")["estimate"], ref["change_MD"]["yi"]) < CLOSED
    assert rel(pick(cbt_table, "MD_change")["std_error"], ref["change_MD"]["sei"]) < CLOSED
    assert rel(pick(cbt_table, "d_ppc2")["estimate"], ref["d_ppc2"]["estimate"]) < CLOSED
    assert (
        rel(pick(cbt_table, "SMCR", contrast_part="CBT:")["estimate"], ref["treatment_SMCR"]["yi"])
        < CLOSED
    )
    assert (
        rel(pick(cbt_table, "SMCR", contrast_part="Cont:")["estimate"], ref["control_SMCR"]["yi"])
        < CLOSED
    )
    arms = ref["arms"]
    assert (
        rel(
            pick(cbt_table, "pct_change_of_means", contrast_part="CBT:")["estimate"],
            arms["treatment"]["pct_change_of_means"],
        )
        < CLOSED
    )
    assert (
        rel(
            pick(cbt_table, "mean_pct_change", contrast_part="Cont:")["estimate"],
            arms["control"]["mean_of_pct_changes"],
        )
        < 1e-8
    )
    diff = pick(cbt_table, "diff_mean_pct_change")
    assert (
        rel(
            diff["estimate"],
            arms["treatment"]["mean_of_pct_changes"] - arms["control"]["mean_of_pct_changes"],
        )
        < 1e-8
    )


def test_table_ratio_unbounded_for_anorexia(cbt_table):
    # control change -0.45 lb with SD 7.99, n 26: SE 1.567, its CI includes zero -> no number
    rows = cbt_table[cbt_table["measure"] == "ratio_of_improvements"]
    assert len(rows) == 2
    assert rows["estimate"].isna().all() and rows["ci_low"].isna().all()
    assert rows["note"].str.contains("unbounded").all()


def test_table_bootstrap_reproducible_and_missing_values_excluded():
    data = anorexia_dataset("FT")
    plan = anorexia_plan("FT")
    first = E.effect_sizes_table(data, plan, n_boot=500, seed=3)
    again = E.effect_sizes_table(data, plan, n_boot=500, seed=3)
    pd.testing.assert_frame_equal(first, again)
    ratio = first[(first["measure"] == "ratio_of_improvements")]
    # FT: control change CI includes zero too (same control arm) -> unbounded, no number
    assert ratio["estimate"].isna().all()
    # a missing follow-up value removes that participant from the visit
    holed = data.copy()
    holed.loc[
        (holed["participant_id"] == holed["participant_id"].iloc[0]) & (holed["visit"] == "post"),
        "value",
    ] = np.nan
    table = E.effect_sizes_table(holed, plan)
    md = table[table["measure"] == "MD"].iloc[0]
    assert md["n_treatment"] + md["n_control"] == 17 + 26 - 1


def test_ratio_bounded_and_bootstrap_row_with_strong_control_change():
    rng = np.random.default_rng(1)
    n = 40
    base = rng.normal(60, 8, 2 * n)
    change = np.r_[rng.normal(-17, 6, n), rng.normal(-10, 6, n)]
    rows = []
    for i in range(2 * n):
        arm = "treatment" if i < n else "control"
        common = dict(participant_id=f"P{i}", arm=arm, outcome="weight", baseline=base[i])
        rows.append(
            common
            | dict(
                visit="pre",
                visit_week=0.0,
                value=base[i],
                change=np.nan,
                pct_change=np.nan,
                baseline_flag=True,
            )
        )
        post = base[i] + change[i]
        rows.append(
            common
            | dict(
                visit="post",
                visit_week=8.0,
                value=post,
                change=change[i],
                pct_change=100 * change[i] / base[i],
                baseline_flag=False,
            )
        )
    table = E.effect_sizes_table(pd.DataFrame(rows), anorexia_plan("T"), n_boot=2000, seed=9)
    fieller = pick(table, "ratio_of_improvements", "Fieller")
    boot = pick(table, "ratio_of_improvements", "bootstrap")
    assert fieller["ci_low"] < fieller["estimate"] < fieller["ci_high"]
    assert boot["ci_low"] < boot["estimate"] < boot["ci_high"]
    assert boot["estimate"] == fieller["estimate"]
    # percentile bootstrap and Fieller agree roughly for a well-determined denominator
    assert (
        abs(boot["ci_low"] - fieller["ci_low"]) < 0.15
        and abs(boot["ci_high"] - fieller["ci_high"]) < 0.25
    )


def test_between_arm_effects_subset(cbt_table):
    sub = E.between_arm_effects(anorexia_dataset("CBT"), anorexia_plan("CBT"))
    assert set(sub["measure"]) == {"MD", "SMD"} and len(sub) == 3
    assert (
        sub["estimate"].tolist()
        == cbt_table[cbt_table["measure"].isin(["MD", "SMD"]) & cbt_table["n_boot"].isna()][
            "estimate"
        ].tolist()
    )


def test_dataset_missing_column_is_a_usage_error():
    with pytest.raises(UsageError, match="pct_change"):
        E.effect_sizes_table(
            anorexia_dataset("CBT").drop(columns="pct_change"), anorexia_plan("CBT")
        )


# ---------------------------------------------------------------- bootstrap engine


def test_bca_close_to_scipy():
    from scipy import stats

    rng = np.random.default_rng(42)
    x, y = rng.gamma(2.0, 2.0, 60), rng.gamma(2.0, 1.5, 50)
    ours = bootstrap_ci([x, y], lambda a, b: a.mean(-1) - b.mean(-1), n_boot=20000, seed=1)
    theirs = stats.bootstrap(
        (x, y),
        lambda a, b, axis=-1: a.mean(axis) - b.mean(axis),
        n_resamples=20000,
        method="BCa",
        random_state=np.random.default_rng(2),
    ).confidence_interval
    # Monte Carlo error of a 20,000-resample limit is ~0.02 here
    assert ours.ci_low == pytest.approx(theirs.low, abs=0.06)
    assert ours.ci_high == pytest.approx(theirs.high, abs=0.06)


def test_bootstrap_hedges_g_against_bare_numpy_and_chunking():
    rng = np.random.default_rng(0)
    x, y = rng.normal(0.5, 1, 30), rng.normal(0, 1, 25)
    centre = np.r_[x, y].mean()
    dist = bootstrap_distribution([x - centre, y - centre], _hedges_g_batch, n_boot=50, seed=4)
    # the same replicates, computed one at a time with plain numpy and the textbook formula
    gens = [np.random.default_rng(s) for s in np.random.SeedSequence(4).spawn(2)]
    ix, iy = gens[0].integers(0, 30, size=(50, 30)), gens[1].integers(0, 25, size=(50, 25))
    j = math.exp(math.lgamma(53 / 2) - 0.5 * math.log(53 / 2) - math.lgamma(52 / 2))
    for b in range(50):
        xb, yb = x[ix[b]], y[iy[b]]
        sp = math.sqrt((29 * xb.var(ddof=1) + 24 * yb.var(ddof=1)) / 53)
        assert dist[b] == pytest.approx(j * (xb.mean() - yb.mean()) / sp, rel=1e-10)


def test_bootstrap_argument_errors():
    with pytest.raises(UsageError):
        bootstrap_ci([np.ones(5)], lambda a: a.mean(-1), n_boot=1, seed=1)
    with pytest.raises(UsageError):
        bootstrap_ci([np.array([1.0, np.nan, 2.0])], lambda a: a.mean(-1), n_boot=10, seed=1)
    with pytest.raises(UsageError):
        bootstrap_ci([np.ones(5)], lambda a: a.mean(-1), n_boot=10, seed=1, method="bc")


# ---------------------------------------------------------------- escalc input checks


def test_escalc_missing_value_keeps_row_with_note():
    data = pd.read_csv(REF / "normand1999.csv").astype({"sd2i": float})
    data.loc[2, "sd2i"] = np.nan
    out = E.escalc("SMD", data)
    assert len(out) == len(data) and math.isnan(out.loc[2, "yi"]) and "sd2i" in out.loc[2, "note"]
    assert out.drop(index=2)["yi"].notna().all()


def test_escalc_impossible_values_list_every_row():
    data = pd.read_csv(REF / "normand1999.csv").astype({"sd1i": float, "m2i": float})
    data.loc[0, "sd1i"] = -1.0
    data.loc[3, "n2i"] = 1
    data.loc[4, "m2i"] = 0.0
    with pytest.raises(DataError) as caught:
        E.escalc("ROM", data, source="x.csv")
    failures = caught.value.failures
    assert failures[["row", "column"]].values.tolist() == [[2, "sd1i"], [5, "n2i"], [6, "m2i"]]
    assert "x.csv" in str(caught.value)


def test_escalc_rejects_bad_r_and_unknown_measure():
    data = pd.DataFrame(
        {"ni": [20], "m1i": [5.0], "m2i": [4.0], "sd1i": [1.0], "sd2i": [1.0], "ri": [1.2]}
    )
    with pytest.raises(DataError, match="r"):
        E.escalc("SMCC", data)
    with pytest.raises(UsageError):
        E.escalc("OR", data)


# ---------------------------------------------------------------- properties


arm = st.tuples(st.integers(2, 400), st.floats(-1e3, 1e3), st.floats(0.1, 1e2))


@settings(max_examples=60, deadline=None)
@given(arm, arm)
def test_swapping_arms_flips_sign(a, b):
    for fn in (E.mean_difference, E.standardized_mean_difference, E.smd_heteroscedastic):
        assert fn(*a, *b).estimate == pytest.approx(-fn(*b, *a).estimate, rel=1e-12, abs=1e-12)
    pa, pb = (a[0], abs(a[1]) + 1, a[2]), (b[0], abs(b[1]) + 1, b[2])
    assert E.log_ratio_of_means(*pa, *pb).estimate == pytest.approx(
        -E.log_ratio_of_means(*pb, *pa).estimate, abs=1e-12
    )


@settings(max_examples=60, deadline=None)
@given(arm, arm, st.floats(1e-3, 1e3), st.floats(-1e3, 1e3))
def test_smd_invariant_to_rescaling(a, b, scale, shift):
    base = E.standardized_mean_difference(*a, *b)
    moved = E.standardized_mean_difference(
        a[0], a[1] * scale + shift, a[2] * scale, b[0], b[1] * scale + shift, b[2] * scale
    )
    assert moved.estimate == pytest.approx(base.estimate, rel=1e-9, abs=1e-9)
    assert moved.variance == pytest.approx(base.variance, rel=1e-9)


@settings(max_examples=40, deadline=None)
@given(arm, arm, st.integers(2, 10))
def test_ci_width_shrinks_as_n_grows(a, b, factor):
    small = E.standardized_mean_difference(*a, *b)
    # Not true for every input: at n = 2 per arm with |g| ~ 5 (d ~ 9), more data undo J's strong
    # shrinkage and the g^2 / (2 N) term of the LS variance outgrows 1/n1 + 1/n2 (hypothesis found
    # n = 2, d = 9). It holds over the range of effects trials meet, which is what we claim.
    assume(abs(small.estimate) <= 2)
    big = E.standardized_mean_difference(a[0] * factor, a[1], a[2], b[0] * factor, b[1], b[2])
    assert big.ci_high - big.ci_low < small.ci_high - small.ci_low
    small_md = E.mean_difference(*a, *b)
    big_md = E.mean_difference(a[0] * factor, a[1], a[2], b[0] * factor, b[1], b[2])
    assert big_md.ci_high - big_md.ci_low < small_md.ci_high - small_md.ci_low
