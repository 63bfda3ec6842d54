"""Formatters of reader-facing tables, on literal values worked by hand."""

from __future__ import annotations

import math

import pytest

from analysis.reporting.tables import formats as fmt


@pytest.mark.parametrize(
    ("p", "text"),
    [
        (0.0004, "<0.001"),
        (0.0009999, "<0.001"),
        (0.001, "0.001"),
        (0.00123, "0.001"),  # 3 significant figures would be 0.00123: capped at 3 decimals
        (0.0123, "0.012"),
        (0.049999, "0.050"),
        (0.05, "0.050"),
        (0.456, "0.456"),
        (0.5, "0.500"),
        (1, "1.000"),
        (float("nan"), ""),
        (None, ""),
    ],
)
def test_p_values(p, text):
    assert fmt.p_value(p) == text


def test_a_p_value_outside_0_1_is_refused():
    with pytest.raises(ValueError, match="between 0 and 1"):
        fmt.p_value(1.2)


def test_estimate_with_interval():
    assert fmt.estimate_ci(-4.042349, -6.280004, -1.804694, 2) == "-4.04 (-6.28, -1.80)"
    assert fmt.estimate_ci(6.0, 4.0, 8.0, 0) == "6 (4, 8)"
    assert fmt.estimate_ci(-0.004, -0.5, 0.3, 2) == "0.00 (-0.50, 0.30)"  # no "-0.00"
    assert fmt.estimate_ci(1.24, float("nan"), 2.0, 1) == "1.2"  # a missing limit: the estimate alone
    assert fmt.estimate_ci(float("nan"), 1.0, 2.0, 1) == ""


def test_summaries():
    assert fmt.mean_sd(53.3886, 7.7451, 1) == "53.4 (7.7)"
    assert fmt.median_iqr(-5.2, -7.7, -0.9, 1) == "-5.2 [-7.7, -0.9]"
    assert fmt.n_percent(22, 60, 1) == "22 (36.7%)"  # 100 * 22 / 60 = 36.666...
    assert fmt.n_percent(0, 0) == "0"
    assert fmt.n_of_total(45, 60) == "45/60 (75.0%)"
    assert fmt.percent_ci(0.25, 0.1, 0.4) == "25.0% (10.0, 40.0)"


def test_integers_print_as_integers():
    assert fmt.integer(57.0) == "57"
    assert fmt.degrees_of_freedom(102.0) == "102"
    assert fmt.degrees_of_freedom(110.903673) == "110.9"
    assert fmt.is_integer(4.0) and not fmt.is_integer(4.5) and not fmt.is_integer(float("nan"))
    assert fmt.number(6.0, 0) == "6"


# NNT = 1 / RD; an interval on one side of 0 inverts and exchanges the limits; one that includes 0
# runs from the benefit limit through infinity to the harm limit (Altman 1998, BMJ 317:1309).
@pytest.mark.parametrize(
    ("rd", "low", "high", "text"),
    [
        (0.25, 0.1, 0.4, "NNTB 4.0 (NNTB 2.5 to 10.0)"),  # 1/0.25, 1/0.4, 1/0.1
        (-0.2, -0.5, -0.1, "NNTH 5.0 (NNTH 2.0 to 10.0)"),  # 1/0.2, 1/0.5, 1/0.1
        # Newcombe's reading of Altman: ARR -5% to +25% -> NNTB 4 through infinity to NNTH 20
        (0.1, -0.05, 0.25, "NNTB 10.0 (NNTB 4.0 to \u221e to NNTH 20.0)"),
        (-0.033333, -0.201150, 0.137162, "NNTH 30.0 (NNTB 7.3 to \u221e to NNTH 5.0)"),
        (0.0, -0.1, 0.1, "\u221e (NNTB 10.0 to \u221e to NNTH 10.0)"),  # risk difference exactly 0
        (0.2, 0.0, 0.4, "NNTB 5.0 (NNTB 2.5 to \u221e)"),  # a limit exactly 0
        (0.2, None, None, "NNTB 5.0"),
    ],
)
def test_number_needed_to_treat(rd, low, high, text):
    assert fmt.nnt(rd, low, high, 1) == text
    assert "inf" not in fmt.nnt(rd, low, high, 1)


def test_nnt_refuses_reversed_limits():
    with pytest.raises(ValueError, match="above its upper limit"):
        fmt.nnt(0.1, 0.3, 0.2)


def test_decimals_from_the_data():
    assert fmt.decimals_of([6, 7, 3, float("nan")]) == 0
    assert fmt.decimals_of([62.3, 55.0, 70.1]) == 1
    assert fmt.decimals_of([1.25, 2.5]) == 2
    assert fmt.decimals_of([0.1 + 0.2]) == 1  # 0.30000000000000004 was recorded as 0.3
    assert fmt.decimals_of([math.pi]) == 4  # capped
    assert fmt.decimals_of([]) == 0
    assert fmt.default_decimals([6, 7]) == 1
    assert fmt.default_decimals([62.3]) == 2
    assert fmt.default_decimals([math.pi]) == 3
