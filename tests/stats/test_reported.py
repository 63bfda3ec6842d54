"""One arm's mean and SD from published summaries (analysis.stats.effects.reported): which source
wins, and the numbers against the Cochrane Handbook's worked values (6.5.2.2), Wan et al. (2014)'s
Table 1, R quantiles (tests/reference/escalc_summaries_ref.json, made by escalc_summaries.R) and
hand-worked arithmetic in the comments. Nothing expected here is computed by trialkit."""

from __future__ import annotations

import json
import math

import pytest

from analysis.core.errors import UsageError
from analysis.stats.effects.reported import arm_column, conversion_label, mean_sd, notes, problems
from tests.conftest import REFERENCE

REF = json.loads((REFERENCE / "escalc_summaries_ref.json").read_text())
Q = REF["quantiles"]
RTOL = 1e-6
COL1 = lambda stem: arm_column(stem, 1)  # noqa: E731


def test_vocabulary_is_the_published_summaries_one_with_metafor_suffixes():
    stems = ["mean", "sd", "se", "ci_low", "ci_high", "ci_level", "median", "q1", "q3", "minimum", "maximum"]
    assert [arm_column(s, 2) for s in stems] == [
        "m2i", "sd2i", "se2i", "ci_low2i", "ci_high2i", "ci_level2i", "median2i", "q1_2i", "q3_2i", "minimum2i", "maximum2i"]


def test_sd_from_ci_small_group_is_the_handbooks_t_rule():
    # Cochrane Handbook 6.5.2.2: for a group of 25 the divisor 3.92 becomes 2 x 2.0639 (printed
    # 4.128), so a 95% CI 2 x 2.0639 wide gives SD = sqrt(25) * 4.1278 / 4.1278 = 5 (the Handbook's
    # 2.0639 is rounded: 2.0639 / qt(0.975, 24) = 1 + 7e-7; with the printed 4.128: 5 x 1.00005)
    arm = mean_sd(25, {"mean": 12.0, "ci_low": 12.0 - 2.0639, "ci_high": 12.0 + 2.0639})
    assert arm.sd == pytest.approx(5.0, rel=RTOL) and arm.sd_from == "ci" and arm.mean == 12.0
    assert mean_sd(25, {"mean": 12.0, "ci_low": 9.936, "ci_high": 14.064}).sd == pytest.approx(5.0, rel=1.3e-4)
    assert arm.conversion == "SD from CI, t quantile (Cochrane 6.5.2.2)"
    # and exactly: sqrt(25) * 5.6 / (2 * qt(0.975, 24)) with R's quantile
    assert mean_sd(25, {"mean": 31.0, "ci_low": 28.2, "ci_high": 33.8}).sd == pytest.approx(
        5 * 5.6 / (2 * Q["qt_975_24"]), rel=RTOL)


def test_sd_from_ci_large_group_z_is_392():
    # Cochrane 6.5.2.2: a large group's 95% CI is 3.92 SEs wide: width 3.92, n 100 -> SD = 10
    # (3.92 vs 2 x 1.959964: 1.8e-5)
    arm = mean_sd(100, {"mean": 50.0, "ci_low": 48.04, "ci_high": 51.96}, distribution="z")
    assert arm.sd == pytest.approx(10.0, rel=2e-5) and arm.conversion == "SD from CI, normal quantile (Cochrane 6.5.2.2)"
    # the t rule is used for every n: at n = 150 the divisor is 2 x qt(0.975, 149) = 3.952, not 3.92
    t_rule = mean_sd(150, {"mean": 20.3, "ci_low": 19.1, "ci_high": 21.5})
    assert t_rule.sd == pytest.approx(math.sqrt(150) * 2.4 / (2 * Q["qt_975_149"]), rel=RTOL)


def test_ci_level_cell_overrides_the_default():
    # 90% CI, n 12: SD = sqrt(12) * 2.8 / (2 * qt(0.95, 11))  (R: qt(0.95, 11) = 1.795885)
    expected = math.sqrt(12) * 2.8 / (2 * Q["qt_95_11"])
    assert mean_sd(12, {"mean": 5.5, "ci_low": 4.1, "ci_high": 6.9, "ci_level": 0.90}).sd == pytest.approx(expected, rel=RTOL)
    assert mean_sd(12, {"mean": 5.5, "ci_low": 4.1, "ci_high": 6.9}, ci_level=0.90).sd == pytest.approx(expected, rel=RTOL)
    # 99% for n 25: qt(0.995, 24) = 2.796940
    assert mean_sd(25, {"mean": 31.0, "ci_low": 28.2, "ci_high": 33.8}, ci_level=0.99).sd == pytest.approx(
        5 * 5.6 / (2 * Q["qt_995_24"]), rel=RTOL)


def test_sd_from_se_hand_worked():
    # SD = SE sqrt(n) = 1.8 * 5 = 9
    arm = mean_sd(25, {"mean": 50.2, "se": 1.8})
    assert (arm.mean, arm.sd_from) == (50.2, "se") and arm.sd == pytest.approx(9.0, rel=RTOL)


def test_median_and_iqr_wan():
    # Wan et al. 2014, scenario C3: mean = (10 + 14 + 19) / 3 = 14.3333; SD = 9 / eta(38),
    # eta(38) = 2 qnorm((0.75 * 38 - 0.125) / 38.25) = 1.297995 (R)
    arm = mean_sd(38, {"median": 14.0, "q1": 10.0, "q3": 19.0})
    assert arm.mean == pytest.approx(43 / 3, rel=RTOL) and arm.sd == pytest.approx(9 / Q["eta_38"], rel=RTOL)
    assert arm.conversion == "mean and SD from median and IQR (Wan et al. 2014)"
    # Cochrane 6.5.2.5: for a large group SD ~ IQR / 1.35
    assert mean_sd(10**7, {"median": 5.0, "q1": 0.0, "q3": 13.5}).sd == pytest.approx(10.0, rel=1e-3)


def test_median_and_range_wan_against_table_1():
    # Wan et al. 2014, scenario C1: mean = (10 + 2 x 24 + 50) / 4 = 27; SD = 40 / xi(30) with the
    # closed form xi(30) = 2 qnorm(29.625 / 30.25) = 4.080563 (R)
    arm = mean_sd(30, {"median": 24.0, "minimum": 10.0, "maximum": 50.0})
    assert arm.mean == 27.0 and arm.sd == pytest.approx(40 / Q["xi_30"], rel=RTOL)
    assert arm.conversion == "mean and SD from median and range (Wan et al. 2014)"
    # Wan's Table 1 prints the exact expected range xi(n) for n <= 50; the closed form (Blom's
    # approximation, which trialkit uses for every n) is within 0.26% of it from n = 20 on
    # (n = 50: 4.4867 vs 4.498, the worst) and 4.5% above it at n = 2 (1.1789 vs 1.128).
    table_1 = {20: 3.735, 25: 3.931, 30: 4.086, 40: 4.322, 50: 4.498}
    for n, xi in table_1.items():
        implied = 1.0 / mean_sd(n, {"median": 0.5, "minimum": 0.0, "maximum": 1.0}).sd
        assert implied == pytest.approx(xi, rel=2.6e-3), n


def test_a_reported_sd_wins_and_the_note_says_so():
    arm = mean_sd(16, {"mean": 10.0, "sd": 2.0, "se": 0.5, "median": 9.5, "q1": 8.0, "q3": 12.0})
    assert (arm.mean, arm.sd, arm.conversion) == (10.0, 2.0, "reported")
    assert notes(arm, 16, COL1) == ["m1i given, so median1i not used", "sd1i given, so se1i, q1_1i, q3_1i not used"]
    # SE before CI before quartiles before range
    arm = mean_sd(25, {"mean": 1.0, "se": 1.0, "ci_low": 0.0, "ci_high": 2.0, "ci_level": 0.9, "minimum": -3.0, "maximum": 5.0})
    assert arm.sd == pytest.approx(5.0, rel=RTOL) and arm.sd_from == "se"
    assert notes(arm, 25, COL1) == ["sd1i from se1i, so ci_low1i, ci_high1i, ci_level1i, minimum1i, maximum1i not used"]


def test_mean_and_sd_are_taken_independently():
    # a reported mean keeps its value; only the SD comes from the quartiles: 4.5 / eta(50),
    # eta(50) = 2 qnorm((37.5 - 0.125) / 50.25) = 1.310093 (R)
    arm = mean_sd(50, {"mean": 7.2, "median": 7.0, "q1": 5.0, "q3": 9.5})
    assert arm.mean == 7.2 and arm.sd == pytest.approx(4.5 / Q["eta_50"], rel=RTOL)
    assert arm.conversion == "SD from IQR (Wan et al. 2014)" and notes(arm, 50, COL1) == ["m1i given, so median1i not used"]
    # a reported SD keeps its value; only the mean comes from the median: (2 + 2 x 4 + 10) / 4 = 5
    arm = mean_sd(40, {"sd": 3.0, "median": 4.0, "minimum": 2.0, "maximum": 10.0})
    assert (arm.mean, arm.sd) == (5.0, 3.0)
    assert arm.conversion == "mean from median and range (Wan et al. 2014); SD reported"


def test_what_cannot_be_used_is_named():
    arm = mean_sd(20, {"mean": 5.0, "ci_low": 4.0, "median": 5.5})
    assert math.isnan(arm.sd) and arm.conversion == "mean reported"
    assert notes(arm, 20, COL1) == ["ci_low1i not used without ci_high1i", "m1i given, so median1i not used"]
    lone = mean_sd(20, {"median": 5.5, "sd": 1.0})
    assert math.isnan(lone.mean)
    assert notes(lone, 20, COL1) == ["median1i not used without q1_1i and q3_1i or minimum1i and maximum1i"]
    # an SD conversion needs n
    assert math.isnan(mean_sd(math.nan, {"mean": 1.0, "se": 0.5}).sd)


def test_labels_are_the_published_summaries_labels():
    assert conversion_label("reported", "reported") == "reported"
    assert conversion_label("reported", "se") == "SD from SE (Cochrane 6.5.2.2)"
    assert conversion_label("reported", "ci") == "SD from CI, t quantile (Cochrane 6.5.2.2)"
    assert conversion_label("iqr", "iqr") == "mean and SD from median and IQR (Wan et al. 2014)"
    assert conversion_label("iqr", "se") == "mean from median and IQR (Wan et al. 2014); SD from SE (Cochrane 6.5.2.2)"
    assert conversion_label(None, None) == ""


def test_problems_are_listed_per_summary():
    assert problems({"se": -0.1, "ci_low": 3.0, "ci_high": 2.0, "ci_level": 95.0}) == [
        ("se", "SE must be >= 0"),
        ("ci_level", "confidence level must be strictly between 0 and 1"),
        ("ci_high", "must be >= {ci_low}"),
    ]
    assert problems({"q1": 5.0, "median": 4.0, "q3": 3.0}) == [("median", "must be >= {q1}"), ("q3", "must be >= {median}")]
    assert problems({"q1": 5.0, "q3": 3.0, "minimum": 9.0, "maximum": 1.0}) == [
        ("q3", "must be >= {q1}"), ("maximum", "must be >= {minimum}")]
    assert problems({"mean": -3.0, "median": 2.0, "q1": 1.0, "q3": 4.0, "minimum": 0.0, "maximum": 9.0}) == []


def test_unknown_quantile_is_a_usage_error():
    with pytest.raises(UsageError, match="'t' or 'z'"):
        mean_sd(10, {"mean": 1.0, "ci_low": 0.0, "ci_high": 2.0}, distribution="normal")
