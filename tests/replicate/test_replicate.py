"""The aggregate route, readings, sensitivity and case report, against hand-worked literal numbers.

Expected values were worked by hand (or with plain arithmetic / scipy.stats quantiles in a scratch
session, never with analysis.replicate); the working is in the comments.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from analysis.plan.published import load_published
from analysis.replicate import (
    aggregate_route,
    arm_sizes,
    case_restoration,
    change_for_percent,
    conclusions_table,
    consistency_table,
    implied_arms,
    mean_percent_from_change,
    readings_summary,
    round_to_target,
    sensitivity_table,
)
from tests.conftest import REPO

STUDIES = REPO / "data" / "studies"
PRECISION = load_published(STUDIES / "precision-release-2023.yaml").plan
REDEFINED = load_published(STUDIES / "redefined-protocol-2023.yaml").plan
CASE = load_published(STUDIES / "case-43m.yaml").plan
REL = 1e-6


def _row(table, **equals):
    for column, value in equals.items():
        table = table[table[column] == value]
    assert len(table) == 1, equals
    return table.iloc[0]


def test_arm_sizes_round_half_up_and_apply_dropout():
    assert arm_sizes(120, 0.5, 0.1) == (60, 60, 54, 54)
    # 320 * 0.45 = 144 -> 144 / 176; 144 * 0.8 = 115.2 -> 115; 176 * 0.8 = 140.8 -> 141
    assert arm_sizes(320, 0.45, 0.2) == (144, 176, 115, 141)


ROTATION_SUPPORT = (0.1, 180.0)


def test_change_of_means_reading():
    assert change_for_percent(41, "change_of_means", 45.0, 10.0, 10.0, 0.6, ROTATION_SUPPORT) == pytest.approx(18.45, rel=REL)
    assert change_for_percent(-42, "change_of_means", 6.0, 1.8, 1.8, 0.4, (1.0, 10.0)) == pytest.approx(-2.52, rel=REL)


def test_mean_of_percent_changes_reading_by_hand():
    # mu0 = 100, sd 1 (cv 0.01), r 0.5: beta = 0.5 - 1 = -0.5; E[1/B] = (1/100)(1 + cv^2 + 3 cv^4 + ...)
    # = 0.0100010003; m = (0.20 + 0.5)/0.0100010003 - 0.5*100 = 69.99299... - 50 = 19.99299...
    m = change_for_percent(20, "mean_of_percent_changes", 100.0, 1.0, 1.0, 0.5, (0.1, 200.0))
    assert m == pytest.approx(0.7 / 0.0100010003 - 50, rel=REL)
    assert mean_percent_from_change(m, 100.0, 1.0, 1.0, 0.5, (0.1, 200.0)) == pytest.approx(20.0, rel=REL)


def test_mean_of_percent_changes_agrees_with_brute_force_simulation():
    """The implied mean change, fed into 2 million bivariate normal participants, gives back 41% (independent check)."""
    m = change_for_percent(41, "mean_of_percent_changes", 45.0, 10.0, 10.0, 0.6, ROTATION_SUPPORT)
    rng = np.random.default_rng(11)
    cov = [[100.0, 60.0], [60.0, 100.0]]
    pre, post = rng.multivariate_normal([45.0, 45.0 + m], cov, size=2_000_000).T
    assert float(np.mean(100 * (post - pre) / pre)) == pytest.approx(41.0, abs=0.05)
    # and it is below the change-of-means reading's 18.45: Jensen, E[1/B] > 1/E[B]
    assert m < 18.45


def test_implied_effects_of_the_precision_study_at_the_central_assumptions():
    """Rotation, '41%' as change of means, '1.7-fold' as ratio of percent improvements.

    n = 54 per arm (120, 1:1, 10% dropout); pre 45, SD 10, r 0.6. Treatment post 45*1.41 = 63.45;
    control post 45*(1 + 0.41/1.7) = 55.852941176. MD = 7.597058824, SE = sqrt(2*100/54), Wald CI
    7.597059 -/+ 1.959964*1.924501 = 3.825106, 11.369011. Hedges' g = J(106) * 0.7597059 with
    J(106) = Gamma(53)/(sqrt(53) Gamma(52.5)) = 0.992905001 -> 0.754315770. Morris d_ppc2 =
    (1 - 3/423) * 0.7597059 = 0.754317897. Ratio of improvements 18.45/10.852941 = 1.7; change SD
    sqrt(100 + 100 - 2*0.6*100) = sqrt(80); Fieller limits 1.333601702, 2.239015468.
    """
    table = aggregate_route(PRECISION)
    sel = dict(outcome="trunk_rotation", percent_reading="change_of_means", fold_reading="ratio_of_percent_improvements")
    md = _row(table, measure="MD", **sel)
    assert md.estimate == pytest.approx(7.597058823529416, rel=REL)
    assert (md.ci_low, md.ci_high) == pytest.approx((3.8251063766088436, 11.369011270449988), rel=REL)
    assert md.n_treatment == 54 and md.n_control == 54
    assert _row(table, measure="SMD", **sel).estimate == pytest.approx(0.7543157697456216, rel=REL)
    assert _row(table, measure="d_ppc2", **sel).estimate == pytest.approx(0.7543178973717151, rel=REL)
    ratio = _row(table, measure="ratio_of_improvements", **sel)
    assert ratio.estimate == pytest.approx(1.7, rel=REL)
    assert (ratio.ci_low, ratio.ci_high) == pytest.approx((1.3336017017025987, 2.23901546824313), rel=REL)
    control = table[(table["measure"] == "pct_change_of_means") & table["n_control"].notna()]
    assert _row(control, **sel).estimate == pytest.approx(41 / 1.7, rel=REL)  # 24.117647
    assert _row(table, measure="ROM", **sel).estimate == pytest.approx(math.log(63.45 / 55.85294117647059), rel=REL)


def test_the_three_readings_of_the_fold_claim_differ_as_worked_by_hand():
    pct = implied_arms(PRECISION, "trunk_rotation", "change_of_means", "ratio_of_percent_improvements")
    mean = implied_arms(PRECISION, "trunk_rotation", "change_of_means", "ratio_of_mean_changes")
    resp = implied_arms(PRECISION, "trunk_rotation", "change_of_means", "ratio_of_responder_proportions")
    # with a shared baseline mean, ratio of percents == ratio of mean changes: 18.45/1.7
    assert pct.change_control == pytest.approx(10.852941176470589, rel=REL)
    assert mean.change_control == pytest.approx(10.852941176470589, rel=REL)
    # responders: pi_T = Phi((18.45 - 6.3)/sqrt(80)) = 0.912833394; pi_C = pi_T/1.7 = 0.536960820;
    # m_C = 6.3 + sqrt(80) * Phi^-1(0.536960820) = 7.129849326
    assert resp.change_control == pytest.approx(7.129849325639395, rel=REL)
    # under the mean-of-percent reading the two ratio readings part: m_T/1.7 vs the change giving a
    # mean percent of 41/1.7
    mop = implied_arms(PRECISION, "trunk_rotation", "mean_of_percent_changes", "ratio_of_mean_changes")
    assert mop.change_control == pytest.approx(mop.change_treatment / 1.7, rel=REL)
    mop_pct = implied_arms(PRECISION, "trunk_rotation", "mean_of_percent_changes", "ratio_of_percent_improvements")
    assert mop_pct.mean_percent("control") == pytest.approx(41 / 1.7, rel=REL)
    assert mop_pct.change_control != pytest.approx(mop.change_control, rel=1e-3)


def test_redefined_study_reads_both_arms_from_the_print():
    table = aggregate_route(REDEFINED)
    sel = dict(outcome="pain_intensity", percent_reading="change_of_means", fold_reading="control_reported")
    # post 6*0.58 = 3.48 and 6*0.82 = 4.92; MD = -1.44; n = 144 per arm (320, 1:1, 10% dropout)
    md = _row(table, measure="MD", **sel)
    assert md.estimate == pytest.approx(-1.44, rel=REL) and md.n_treatment == 144
    assert _row(table, measure="ratio_of_improvements", **sel).estimate == pytest.approx(42 / 18, rel=REL)
    assert set(table["fold_reading"]) == {"control_reported"}


def test_consistency_flags_the_pain_interference_floor():
    checks = consistency_table(PRECISION)
    # -32% of a T-score of 60 is 40.8; the PROMIS PI 8a floor is 40.7: with SD 7,
    # Phi((40.7 - 40.8)/7) = 0.4943 of the treatment arm would fall below the floor
    row = _row(checks, outcome="pain_interference", percent_reading="change_of_means",
               fold_reading="ratio_of_percent_improvements", check="followup_within_range")
    assert not row.passed and "49.4% (treatment)" in row.detail
    assert checks[checks["outcome"] == "trunk_rotation"]["passed"].all()
    assert consistency_table(REDEFINED)["passed"].all()
    summary = readings_summary(PRECISION, checks)
    assert len(summary) == 6 and not summary["consistent"].any()


def test_sensitivity_moves_as_theory_says():
    table = sensitivity_table(PRECISION, points=5)
    sel = (table["outcome"] == "trunk_rotation") & (table["percent_reading"] == "change_of_means") & (
        table["fold_reading"] == "ratio_of_percent_improvements")

    def series(assumption, measure):
        rows = table[sel & (table["assumption"] == assumption) & (table["measure"] == measure)]
        return rows.sort_values("assumed_value")

    smd = series("trunk_rotation.baseline_sd", "SMD")
    assert list(smd["assumed_value"]) == [8.0, 9.0, 10.0, 11.0, 12.0]
    assert np.all(np.diff(smd["estimate"]) < 0)  # SMD falls as the assumed SD rises
    # the ratio of percent improvements fixes the ratio, whatever the SD; its CI widens with the SD
    ratio = series("trunk_rotation.baseline_sd", "ratio_of_improvements")
    assert np.allclose(ratio["estimate"], 1.7)
    assert np.all(np.diff(ratio["ci_high"] - ratio["ci_low"]) > 0)
    # a higher pre-post correlation narrows the d_ppc2 and ratio CIs and leaves d_ppc2 unchanged
    d = series("trunk_rotation.pre_post_r", "d_ppc2")
    assert np.allclose(d["estimate"], d["estimate"].iloc[0])
    assert np.all(np.diff(d["ci_high"] - d["ci_low"]) < 0)
    # more dropout, fewer analysed, wider MD CI; the MD itself does not move
    md = series("dropout", "MD")
    assert np.allclose(md["estimate"], 7.597058823529416)
    assert np.all(np.diff(md["ci_high"] - md["ci_low"]) > 0)
    # MD scales with the baseline mean under a percent claim: 45*(0.41 - 0.41/1.7) at mu0 = 40 and 50
    mu = series("trunk_rotation.baseline_mean", "MD")
    assert mu["estimate"].iloc[0] == pytest.approx(40 * (0.41 - 0.41 / 1.7), rel=REL)
    assert mu["estimate"].iloc[-1] == pytest.approx(50 * (0.41 - 0.41 / 1.7), rel=REL)


def test_range_of_conclusions_over_the_box():
    conclusions, box = conclusions_table(REDEFINED)
    # 5 assumptions x 3 levels = 243 points per reading
    assert set(conclusions["n_points"]) == {243}
    row = _row(conclusions, percent_reading="change_of_means", measure="MD")
    # MD = mu0 (-0.42 + 0.18): -1.2 at mu0 = 5, -1.68 at mu0 = 7
    assert (row.estimate_min, row.estimate_max) == pytest.approx((-1.68, -1.2), rel=REL)
    assert row.share_ci_excludes_null == 1.0
    assert len(box) == 2 * 243


@pytest.mark.parametrize(
    ("normative", "pre", "mdc", "change", "threshold", "exceeds"),
    [
        (25.0, 12.0, 4.2, 8.84, 32.30769230769231, True),  # lost 13: 0.68*13 = 8.84; 100*4.2/13
        (25.0, 20.0, 4.2, 3.4, 84.0, False),  # lost 5: 0.68*5 = 3.4 < 4.2; 100*4.2/5 = 84
        (35.0, 5.0, 6.3, 20.4, 21.0, True),  # lost 30: 20.4; 100*6.3/30 = 21
    ],
)
def test_case_percent_restored_against_mdc(normative, pre, mdc, change, threshold, exceeds):
    r = case_restoration(normative, pre, 68.0, mdc)
    assert r.change == pytest.approx(change, rel=REL)
    assert r.post == pytest.approx(pre + change, rel=REL)
    assert r.threshold_percent == pytest.approx(threshold, rel=REL)
    assert (r.band_low, r.band_high) == pytest.approx((68 - threshold, 68 + threshold), rel=REL)
    assert r.exceeds_mdc is exceeds


def test_round_to_target_hits_the_sum_on_the_grid():
    # shift -0.1 gives 1.1, 2.6, 3.3 -> rounded 1, 3, 3 = 7
    v = round_to_target(np.array([1.2, 2.7, 3.4]), np.ones(3), 7.0, 0, 0.0, 10.0)
    assert v.tolist() == [1.0, 3.0, 3.0]
    # values piled at a floor: the rest absorb the shift
    v = round_to_target(np.array([0.0, 0.0, 5.0, 6.0]), np.ones(4), 2.0, 1, 0.0, 10.0)
    assert v.sum() == pytest.approx(2.0) and v.min() >= 0.0
    with pytest.raises(Exception, match="cannot be reached"):
        round_to_target(np.array([1.0, 2.0]), np.ones(2), 25.0, 0, 0.0, 10.0)
