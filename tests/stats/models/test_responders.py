"""Responder analysis: RD (Wald, Newcombe), RR, OR, NNT and the responders table.

Expected values: Newcombe (1998) Statistics in Medicine 17:873-890, Table II (method 1, Wald; and
method 10, hybrid score), published to 4 decimals; hand-worked RR/OR arithmetic written here;
NNT intervals from Altman (1998) BMJ 317:1309 (ARR -5% to 25% gives NNTH 20 to infinity to NNTB 4)
and Barrowman (2002) CMAJ 166:1676 (ARR 16.6%, 0.9% to 32.2% gives NNT 6, 3.1 to 111.1).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from analysis.core.errors import UsageError
from analysis.plan import parse_plan
from analysis.stats.models.responders import compare_proportions, nnt_interval, responders_table

Z = 1.959963984540054

NEWCOMBE_TABLE_II_METHOD_10 = [
    # (k1, n1, k2, n2, lower, upper) for p1 - p2
    (56, 70, 48, 80, 0.0524, 0.3339),  # (a)
    (9, 10, 3, 10, 0.1705, 0.8090),  # (b)
    (6, 7, 2, 7, 0.0582, 0.8062),  # (c)
    (5, 56, 0, 29, -0.0381, 0.1926),  # (d)
    (0, 10, 0, 20, -0.1611, 0.2775),  # (e)
    (0, 10, 0, 10, -0.2775, 0.2775),  # (f)
    (10, 10, 0, 20, 0.6791, 1.0000),  # (g)
    (10, 10, 0, 10, 0.6075, 1.0000),  # (h)
]


def _by_measure(rows: list[dict[str, object]]) -> dict[str, dict[str, object]]:
    out = {}
    for row in rows:
        key = (
            row["measure"]
            if row["measure"] != "risk difference"
            else f"rd {'wald' if 'Wald' in row['method'] else 'newcombe'}"
        )
        out[key] = row
    return out


@pytest.mark.parametrize(("k1", "n1", "k2", "n2", "low", "high"), NEWCOMBE_TABLE_II_METHOD_10)
def test_newcombe_hybrid_score_interval_matches_table_ii(k1, n1, k2, n2, low, high) -> None:
    rd = _by_measure(compare_proportions(k1, n1, k2, n2))["rd newcombe"]
    assert rd["estimate"] == pytest.approx(k1 / n1 - k2 / n2, abs=1e-12)
    assert rd["ci_low"] == pytest.approx(low, abs=5e-5)
    assert rd["ci_high"] == pytest.approx(high, abs=5e-5)


def test_wald_interval_matches_table_ii_method_1() -> None:
    rd = _by_measure(compare_proportions(56, 70, 48, 80))["rd wald"]
    assert (rd["ci_low"], rd["ci_high"]) == pytest.approx((0.0575, 0.3425), abs=5e-5)
    # SE = sqrt(0.8 * 0.2 / 70 + 0.6 * 0.4 / 80) = sqrt(0.0022857143 + 0.003) = 0.0727029
    assert rd["std_error"] == pytest.approx(math.sqrt(0.16 / 70 + 0.24 / 80), rel=1e-12)
    assert rd["estimate"] == pytest.approx(0.2, rel=1e-12)


def test_risk_ratio_and_odds_ratio_hand_worked() -> None:
    got = _by_measure(compare_proportions(56, 70, 48, 80))
    rr, odds = got["risk ratio"], got["odds ratio"]
    # RR = 0.8 / 0.6 = 4/3; SE(log RR) = sqrt(1/56 - 1/70 + 1/48 - 1/80) = sqrt(0.0119047619)
    se_rr = math.sqrt(1 / 56 - 1 / 70 + 1 / 48 - 1 / 80)
    assert rr["estimate"] == pytest.approx(4 / 3, rel=1e-12)
    assert rr["std_error"] == pytest.approx(se_rr, rel=1e-12)
    assert rr["ci_low"] == pytest.approx(math.exp(math.log(4 / 3) - Z * se_rr), rel=1e-9)
    assert rr["ci_high"] == pytest.approx(math.exp(math.log(4 / 3) + Z * se_rr), rel=1e-9)
    assert (rr["ci_low"], rr["ci_high"]) == pytest.approx((1.0766, 1.6512), abs=1e-4)
    # OR = (56 * 32) / (14 * 48) = 8/3; SE(log OR) = sqrt(1/56 + 1/14 + 1/48 + 1/32)
    se_or = math.sqrt(1 / 56 + 1 / 14 + 1 / 48 + 1 / 32)
    assert odds["estimate"] == pytest.approx(8 / 3, rel=1e-12)
    assert odds["std_error"] == pytest.approx(se_or, rel=1e-12)
    assert odds["ci_low"] == pytest.approx(math.exp(math.log(8 / 3) - Z * se_or), rel=1e-9)
    assert odds["ci_high"] == pytest.approx(math.exp(math.log(8 / 3) + Z * se_or), rel=1e-9)
    assert odds["p_value"] == pytest.approx(
        2 * (1 - 0.5 * (1 + math.erf(math.log(8 / 3) / se_or / math.sqrt(2)))), rel=1e-9
    )


def test_zero_cell_adds_one_half_to_every_cell() -> None:
    got = _by_measure(compare_proportions(5, 56, 0, 29))
    # cells 5.5, 51.5 / 0.5, 29.5: OR = 5.5 * 29.5 / (51.5 * 0.5) = 162.25 / 25.75
    assert got["odds ratio"]["estimate"] == pytest.approx(162.25 / 25.75, rel=1e-12)
    # RR = (5.5 / 57) / (0.5 / 30)
    assert got["risk ratio"]["estimate"] == pytest.approx((5.5 / 57) / (0.5 / 30), rel=1e-12)
    assert "0.5 added" in got["odds ratio"]["method"]
    assert (
        "0.5 added" not in _by_measure(compare_proportions(56, 70, 48, 80))["odds ratio"]["method"]
    )


def test_nnt_interval_through_infinity_altman_1998() -> None:
    nnt = nnt_interval(0.10, -0.05, 0.25)
    assert nnt.estimate == pytest.approx(10.0)
    assert nnt.crosses_zero
    assert nnt.ci_low == pytest.approx(4.0)  # NNTB limit 1 / 0.25
    assert nnt.ci_high == pytest.approx(-20.0)  # NNTH limit 1 / 0.05
    assert nnt.text == "NNT 10.0 (NNTB 4.0 to infinity to NNTH 20.0)"


def test_nnt_interval_excluding_zero_barrowman_2002() -> None:
    nnt = nnt_interval(0.166, 0.009, 0.322)
    assert nnt.estimate == pytest.approx(1 / 0.166)
    assert (round(nnt.ci_low, 1), round(nnt.ci_high, 1)) == (3.1, 111.1)
    assert not nnt.crosses_zero
    harm = nnt_interval(-0.2, -0.3, -0.1)
    assert harm.estimate == pytest.approx(-5.0)
    assert (harm.ci_low, harm.ci_high) == pytest.approx((-10.0, -1 / 0.3))
    assert harm.text == "NNT 5.0 (NNTH 10.0 to NNTH 3.3)"
    with pytest.raises(UsageError, match="not inside"):
        nnt_interval(0.5, 0.0, 0.4)


def test_nnt_row_uses_the_newcombe_limits() -> None:
    got = _by_measure(compare_proportions(56, 70, 48, 80))
    assert got["NNT"]["estimate"] == pytest.approx(5.0)
    assert got["NNT"]["ci_low"] == pytest.approx(1 / got["rd newcombe"]["ci_high"], rel=1e-12)
    assert got["NNT"]["ci_high"] == pytest.approx(1 / got["rd newcombe"]["ci_low"], rel=1e-12)
    assert got["NNT"]["note"] == "NNT 5.0 (NNTB 3.0 to NNTB 19.1)"


def test_compare_proportions_rejects_bad_counts() -> None:
    with pytest.raises(UsageError, match="invalid counts"):
        compare_proportions(5, 4, 1, 4)
    with pytest.raises(UsageError, match="invalid counts"):
        compare_proportions(0, 0, 1, 4)


PLAN = """\
study: {{id: small, title: Small}}
seed: 1
data:
  participants: {{path: p.csv}}
  measurements: {{path: m.csv}}
arms:
  treatment: {{label: Release, codes: [T]}}
  control: {{label: Stretching, codes: [C]}}
visits:
  baseline: base
  followup: [{{label: w4, week: 4}}, {{label: w8, week: 8}}]
  primary: w8
outcomes:
  - {{name: pain, label: Pain, unit: points, range: [0, 10], better: lower, mcid: {{points: 2, percent: 30}}}}
analysis: {{responder_missing: {policy}}}
"""

# participant: arm, baseline, w8 value. Lower is better; MCID 2 points or 30 %.
PEOPLE = {
    "T1": ("treatment", 6.0, 3.0),  # -3 points, -50 %: responder on both
    "T2": ("treatment", 5.0, 4.0),  # -1, -20 %: neither
    "T3": ("treatment", 8.0, np.nan),  # missing
    "T4": ("treatment", 10.0, 7.5),  # -2.5 points (responder), -25 % (not)
    "C1": ("control", 6.0, 6.0),  # no change
    "C2": ("control", 4.0, 1.0),  # -3, -75 %: both
    "C3": ("control", 7.0, 9.0),  # +2: worse, so not a responder
}


def small_dataset() -> pd.DataFrame:
    rows = []
    for pid, (arm, base, w8) in PEOPLE.items():
        for visit, value in (("base", base), ("w4", base), ("w8", w8)):
            change = np.nan if visit == "base" else value - base
            rows.append(
                {
                    "participant_id": pid,
                    "arm": arm,
                    "outcome": "pain",
                    "visit": visit,
                    "value": value,
                    "baseline": base,
                    "change": change,
                    "pct_change": 100 * change / base,
                }
            )
    return pd.DataFrame(rows)


def _rows(table: pd.DataFrame, definition: str, measure: str) -> pd.DataFrame:
    return table.loc[
        (table["visit"] == "w8")
        & (table["measure"] == measure)
        & table["method"].str.contains(f"({definition} MCID)", regex=False)
    ]


def test_responders_table_non_responder_imputation() -> None:
    table = responders_table(small_dataset(), parse_plan(PLAN.format(policy="non_responder")))
    props = _rows(table, "points", "responder proportion")
    assert props["contrast"].tolist() == ["Release", "Stretching"]
    assert props["estimate"].tolist() == pytest.approx([2 / 4, 1 / 3])
    rd = _rows(table, "points", "risk difference").iloc[0]
    assert rd["estimate"] == pytest.approx(2 / 4 - 1 / 3)
    assert (rd["events_treatment"], rd["n_treatment"], rd["events_control"], rd["n_control"]) == (
        2,
        4,
        1,
        3,
    )
    assert rd["contrast"] == "Release - Stretching"
    assert (
        "missing counted as non-responders" in rd["note"] and "treatment 1, control 0" in rd["note"]
    )
    pct = _rows(table, "percent", "risk difference").iloc[0]
    assert (pct["events_treatment"], pct["events_control"]) == (1, 1)
    assert _rows(table, "points", "risk ratio")["contrast"].iloc[0] == "Release / Stretching"
    assert set(_rows(table, "points", "NNT")["measure"]) == {"NNT"}


def test_responders_table_complete_case_and_existing_flags() -> None:
    plan = parse_plan(PLAN.format(policy="complete_case"))
    table = responders_table(small_dataset(), plan)
    rd = _rows(table, "points", "risk difference").iloc[0]
    assert (rd["events_treatment"], rd["n_treatment"], rd["events_control"], rd["n_control"]) == (
        2,
        3,
        1,
        3,
    )
    assert "complete cases" in rd["note"]
    # flags already in the dataset are used as they are
    flagged = small_dataset().assign(responder_points=pd.array([pd.NA] * 21, dtype="boolean"))
    flagged["responder_percent"] = pd.array([pd.NA] * 21, dtype="boolean")
    flagged.loc[
        (flagged["participant_id"] == "T2") & (flagged["visit"] == "w8"), "responder_points"
    ] = True
    rd2 = _rows(responders_table(flagged, plan), "points", "risk difference").iloc[0]
    # T2 is the only non-missing flag: treatment 1/1, control has no analysable participant
    assert rd2["method"] == "not estimable (points MCID)"
    assert (rd2["events_treatment"], rd2["n_treatment"], rd2["n_control"]) == (1, 1, 0)
    assert np.isnan(rd2["estimate"])
