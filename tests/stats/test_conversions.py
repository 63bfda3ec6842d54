"""Conversions for published summaries, against the Cochrane Handbook's worked numbers and hand-worked
examples (arithmetic in the comments). Normal quantiles for Wan et al. (2014) are taken from the
standard library's ``statistics.NormalDist`` (an implementation independent of SciPy's, which
trialkit uses)."""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np
import pytest

from analysis.core.errors import UsageError
from analysis.stats.effects import conversions as C

PHI_INV = NormalDist().inv_cdf


def test_sd_from_se_hand_worked():
    # SD = SE * sqrt(n) = 1.5 * sqrt(36) = 9
    assert C.sd_from_se(1.5, 36) == pytest.approx(9.0, rel=1e-15)


def test_sd_from_ci_z_cochrane():
    # Cochrane 6.5.2.2: for a large group the 95% CI is 3.92 SEs wide: SD = sqrt(n) * width / 3.92.
    # width 3.92, n = 100 -> SD = 10 * 3.92 / 3.92 = 10 (exact 3.92 vs 2 * 1.959964: rel 1.8e-5)
    assert C.sd_from_ci(50.0, 53.92, 100, distribution="z") == pytest.approx(10.0, rel=1e-4)


def test_sd_from_ci_t_cochrane_n25():
    # Cochrane 6.5.2.2: for n = 25 the t value is 2.0639 and 3.92 becomes 2 x 2.0639 = 4.128.
    # CI width 4.128 -> SD = sqrt(25) * 4.128 / 4.128 = 5
    assert C.sd_from_ci(10.0, 14.128, 25) == pytest.approx(5.0, rel=1e-4)


def test_sd_from_ci_other_level():
    # 90% z interval: 2 x 1.6448536 = 3.2897072 (Cochrane: "3.29"); width 3.29, n 49 -> SD = 7 * 3.29 / 3.2897 = 7.0006
    assert C.sd_from_ci(0.0, 3.29, 49, ci_level=0.90, distribution="z") == pytest.approx(
        7 * 3.29 / 3.2897072539029435, rel=1e-10
    )


def test_sd_change_cochrane_crossover_example():
    # Cochrane Handbook 5.1, section 16.4.6.4: SD_E 2.38, SD_C 2.21, imputed r 0.68, n 10:
    # SD_diff = sqrt(2.38^2 + 2.21^2 - 2 * 0.68 * 2.38 * 2.21) and SE = SD_diff / sqrt(10) = 0.583 (published)
    sd = C.sd_change_from_sds(2.38, 2.21, 0.68)
    assert sd / math.sqrt(10) == pytest.approx(0.583, abs=5e-4)
    # hand-worked: 5.6644 + 4.8841 - 7.153328 = 3.395172 -> sqrt = 1.842599...
    assert sd == pytest.approx(math.sqrt(3.395172), rel=1e-12)


def test_correlation_back_calculated_hand_worked():
    # SD_B 6.4, SD_F 7.1, SD_change 4.5: (40.96 + 50.41 - 20.25) / (2 * 6.4 * 7.1) = 71.12 / 90.88
    r = C.correlation_from_sds(6.4, 7.1, 4.5)
    assert r == pytest.approx(71.12 / 90.88, rel=1e-12)
    # and back: the change SD is recovered
    assert C.sd_change_from_sds(6.4, 7.1, 71.12 / 90.88) == pytest.approx(4.5, rel=1e-12)
    with pytest.raises(UsageError, match="inconsistent"):
        C.correlation_from_sds(1.0, 1.0, 3.0)  # (1 + 1 - 9) / 2 = -3.5


def test_wan_range_and_iqr_hand_worked():
    # n = 30: xi = 2 * Phi^-1(29.625 / 30.25); eta = 2 * Phi^-1(22.375 / 30.25)
    xi = 2 * PHI_INV(29.625 / 30.25)
    eta = 2 * PHI_INV(22.375 / 30.25)
    assert C.sd_from_range(10.0, 50.0, 30) == pytest.approx(40.0 / xi, rel=1e-12)
    assert C.sd_from_iqr(20.0, 31.0, 30) == pytest.approx(11.0 / eta, rel=1e-12)
    # Cochrane 6.5.2.5: for large samples SD ~ IQR / 1.35
    assert C.sd_from_iqr(0.0, 13.5, 10**7) == pytest.approx(10.0, rel=1e-3)


def test_wan_means_hand_worked():
    # (q1 + m + q3) / 3 = (20 + 24 + 31) / 3 = 25; (a + 2m + b) / 4 = (10 + 40 + 50) / 4 = 25
    assert C.mean_from_median_iqr(20.0, 24.0, 31.0) == 25.0
    assert C.mean_from_median_range(10.0, 20.0, 50.0) == 25.0


def test_vectorised():
    out = C.sd_from_se(np.array([1.0, 2.0]), np.array([4, 9]))
    np.testing.assert_array_equal(out, [2.0, 6.0])


@pytest.mark.parametrize(
    "call",
    [
        lambda: C.sd_from_se(-1.0, 10),
        lambda: C.sd_from_se(1.0, 1),
        lambda: C.sd_from_ci(5.0, 4.0, 10),
        lambda: C.sd_from_ci(4.0, 5.0, 10, distribution="normal"),
        lambda: C.sd_from_range(5.0, 4.0, 10),
        lambda: C.sd_from_iqr(5.0, 4.0, 10),
        lambda: C.mean_from_median_iqr(5.0, 4.0, 6.0),
        lambda: C.mean_from_median_range(5.0, 7.0, 6.0),
        lambda: C.sd_change_from_sds(1.0, 1.0, 1.5),
        lambda: C.sd_change_from_sds(-1.0, 1.0, 0.5),
    ],
)
def test_impossible_input_is_a_usage_error(call):
    with pytest.raises(UsageError):
        call()
