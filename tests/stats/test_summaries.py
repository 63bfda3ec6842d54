"""Meta-analysis exports (analysis.stats.effects.summaries) against R on MASS::anorexia, and the published-summaries contract.

The anorexia trial (CBT vs control, pre/post weight) is turned into an analysis dataset of the
documented shape; arm summaries and escalc effect sizes are compared with
tests/reference/anorexia_ref.json (R: mean, sd, cor; metafor escalc MD, SMD, ROM, SMCR).
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from analysis.core.errors import DataError
from analysis.plan import parse_plan
from analysis.stats.effects import escalc
from analysis.stats.effects.summaries import (
    ARM_SUMMARY_COLUMNS,
    EFFECT_SIZE_COLUMNS,
    convert_published,
    meta_exports,
    published_arms,
    validate_published,
)
from tests.conftest import REFERENCE

HERE = REFERENCE
REF = json.loads((HERE / "anorexia_ref.json").read_text())["CBT"]
RTOL = 1e-6

PLAN = parse_plan(
    """
study: {id: anorexia, title: anorexia}
seed: 1
data:
  participants: {path: p.csv}
  measurements: {path: m.csv}
arms:
  treatment: {label: CBT, codes: [CBT]}
  control: {label: Control, codes: [Cont]}
visits:
  baseline: pre
  followup: [{label: post, week: 8}]
  primary: post
outcomes:
  - {name: weight, label: Weight, unit: lb, range: [50, 120], better: higher}
"""
)


def anorexia_dataset(drop_post: list[str] | None = None) -> pd.DataFrame:
    raw = pd.read_csv(HERE / "anorexia.csv")
    raw = raw.loc[raw["Treat"].isin(["CBT", "Cont"])]
    rows = []
    for r in raw.itertuples(index=False):
        arm = "treatment" if r.Treat == "CBT" else "control"
        post = np.nan if drop_post and r.id in drop_post else r.Postwt
        rows.append({"participant_id": r.id, "arm": arm, "outcome": "weight", "visit": "pre", "visit_week": 0.0,
                     "value": r.Prewt, "baseline": r.Prewt, "change": np.nan, "pct_change": np.nan, "baseline_flag": True})
        rows.append({"participant_id": r.id, "arm": arm, "outcome": "weight", "visit": "post", "visit_week": 8.0,
                     "value": post, "baseline": r.Prewt, "change": post - r.Prewt,
                     "pct_change": 100 * (post - r.Prewt) / r.Prewt, "baseline_flag": False})
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def exports() -> dict[str, pd.DataFrame]:
    return meta_exports(anorexia_dataset(), PLAN)


def test_arm_summaries_match_r(exports) -> None:
    table = exports["arm_summaries"]
    assert table.columns.tolist() == ARM_SUMMARY_COLUMNS
    assert table["arm"].tolist() == ["treatment", "control"]
    for arm in ("treatment", "control"):
        row = table.loc[table["arm"] == arm].iloc[0]
        ref = REF["arms"][arm]
        assert row["n_baseline"] == row["n_followup"] == row["n_change"] == ref["n"]
        for ours, theirs in (("mean_baseline", "pre_mean"), ("sd_baseline", "pre_sd"), ("mean_followup", "post_mean"),
                             ("sd_followup", "post_sd"), ("mean_change", "change_mean"), ("sd_change", "change_sd"),
                             ("r_pre_post", "r_pre_post")):
            assert row[ours] == pytest.approx(ref[theirs], rel=RTOL), (arm, ours)


@pytest.mark.parametrize("basis,measure,key", [("followup", "MD", "post_MD"), ("followup", "SMD", "post_SMD"),
                                               ("followup", "ROM", "post_ROM"), ("change", "MD", "change_MD"),
                                               ("change", "SMD", "change_SMD")])
def test_between_arm_effect_sizes_match_metafor(exports, basis: str, measure: str, key: str) -> None:
    table = exports["effect_sizes"]
    row = table.loc[(table["basis"] == basis) & (table["measure"] == measure)].iloc[0]
    for column in ("yi", "vi", "sei", "ci_low", "ci_high"):
        assert row[column] == pytest.approx(REF[key][column], rel=RTOL), column
    assert row["contrast"] == ("CBT / Control" if measure == "ROM" else "CBT - Control")
    assert row["better"] == "higher"


@pytest.mark.parametrize("arm", ["treatment", "control"])
def test_smcr_per_arm_matches_metafor(exports, arm: str) -> None:
    table = exports["effect_sizes"]
    row = table.loc[(table["measure"] == "SMCR") & (table["arm"] == arm)].iloc[0]
    for column in ("yi", "vi", "ci_low", "ci_high"):
        assert row[column] == pytest.approx(REF[f"{arm}_SMCR"][column], rel=RTOL), column
    assert row["ni"] == REF["arms"][arm]["n"]
    assert row["ri"] == pytest.approx(REF["arms"][arm]["r_pre_post"], rel=RTOL)


def test_effect_sizes_layout(exports) -> None:
    table = exports["effect_sizes"]
    assert table.columns.tolist() == EFFECT_SIZE_COLUMNS
    assert table[["basis", "measure"]].apply(tuple, axis=1).tolist() == [
        ("followup", "MD"), ("followup", "SMD"), ("followup", "ROM"), ("change", "MD"), ("change", "SMD"),
        ("change", "SMCR"), ("change", "SMCR")]


def test_dropouts_change_follow_up_and_pair_counts_only() -> None:
    exports = meta_exports(anorexia_dataset(drop_post=["P001", "P002"]), PLAN)
    control = exports["arm_summaries"].set_index("arm").loc["control"]
    assert control["n_baseline"] == 26 and control["n_followup"] == 24 and control["n_change"] == 24
    smcr = exports["effect_sizes"].query("measure == 'SMCR' and arm == 'control'").iloc[0]
    assert smcr["ni"] == 24


def test_empty_arm_keeps_rows_with_a_note() -> None:
    data = anorexia_dataset()
    data.loc[(data["arm"] == "control") & ~data["baseline_flag"], "value"] = np.nan
    table = meta_exports(data, PLAN)["effect_sizes"]
    md = table.query("basis == 'followup' and measure == 'MD'").iloc[0]
    assert np.isnan(md["yi"]) and "each arm" in md["note"]
    assert np.isfinite(table.query("measure == 'SMCR' and arm == 'treatment'").iloc[0]["yi"])


# ----------------------------------------------------------------------------------------------
# Published summaries


def published() -> pd.DataFrame:
    return pd.DataFrame({
        "study": ["A", "A", "B", "B", "C", "C"],
        "outcome": ["pain"] * 6,
        "arm": ["treatment", "control"] * 3,
        "visit": ["w12"] * 6,
        "n": ["25", "25", "100", "100", "30", "30"],
        "mean": ["4.0", "5.0", "50", "", "", ""],
        "sd": ["2.0", "", "", "", "", ""],
        "se": ["", "0.5", "", "", "", ""],
        "ci_low": ["", "", "48", "", "", ""],
        "ci_high": ["", "", "52", "", "", ""],
        "median": ["", "", "", "24", "20", "24"],
        "q1": ["", "", "", "20", "", "20"],
        "q3": ["", "", "", "31", "", "31"],
        "minimum": ["", "", "", "", "10", ""],
        "maximum": ["", "", "", "", "50", ""],
    })


def test_published_conversions_by_hand() -> None:
    out = convert_published(published())
    # A/treatment as reported; A/control SD = 0.5 * sqrt(25) = 2.5
    assert out.loc[0, "sd_used"] == 2.0 and out.loc[1, "sd_used"] == pytest.approx(2.5, rel=1e-12)
    # B/treatment: sqrt(100) * 4 / (2 * qt(0.975, 99) = 1.984216952) = 10.0795...
    assert out.loc[2, "sd_used"] == pytest.approx(10 * 4 / (2 * 1.9842169515086827), rel=1e-9)
    # B/control: Wan IQR: mean (20 + 24 + 31)/3 = 25; SD = 11 / (2 qnorm((75 - .125)/100.25))
    assert out.loc[3, "mean_used"] == pytest.approx(25.0, rel=1e-12)
    assert out.loc[3, "sd_used"] == pytest.approx(11 / (2 * stats.norm.ppf((75 - 0.125) / 100.25)), rel=1e-12)
    # C/treatment: Wan range: mean (10 + 40 + 50)/4 = 25; SD = 40 / (2 qnorm((30 - .375)/30.25))
    assert out.loc[4, "mean_used"] == pytest.approx(25.0, rel=1e-12)
    assert out.loc[4, "sd_used"] == pytest.approx(40 / (2 * stats.norm.ppf((30 - 0.375) / 30.25)), rel=1e-12)
    assert out["conversion"].str.len().gt(0).all()
    arms = published_arms(out)
    assert arms[["study", "n1i", "n2i"]].values.tolist() == [["A", 25, 25], ["B", 100, 100], ["C", 30, 30]]


def test_published_contract_reports_every_failure() -> None:
    bad = published()
    bad.loc[0, "arm"] = "placebo"
    bad.loc[1, "n"] = "1"
    bad.loc[2, ["ci_low", "ci_high"]] = ["53", "52"]
    bad.loc[4, ["median", "minimum", "maximum"]] = ["", "", ""]
    with pytest.raises(DataError) as caught:
        validate_published(bad, "papers.csv")
    failures = caught.value.failures
    assert (failures["file"] == "papers.csv").all()
    got = set(zip(failures["row"], failures["column"], strict=True))
    assert {(2, "arm"), (3, "n")} <= got
    rules = " | ".join(failures["rule"].astype(str))
    assert "ci_low must be <= ci_high" in rules and "needs mean with sd" in rules
    assert set(failures.loc[failures["rule"].str.contains("ci_low must"), "row"]) == {4}
    assert set(failures.loc[failures["rule"].str.contains("needs mean"), "row"]) == {6}


def test_published_arms_needs_both_arms() -> None:
    out = convert_published(published().iloc[:5])
    with pytest.raises(DataError, match="only one arm"):
        published_arms(out)


def test_published_and_escalc_convert_alike() -> None:
    # the same arms through both entry points; a reported mean or SD is kept (Wan et al. 2014 C3 for
    # the other: (5 + 7 + 9.5) / 3 = 7.1667 and SD 4.5 / (2 qnorm((37.5 - .125) / 50.25)))
    table = pd.DataFrame({
        "study": ["A", "A", "B", "B"], "outcome": ["pain"] * 4, "arm": ["treatment", "control"] * 2, "visit": ["w12"] * 4,
        "n": ["50", "50", "25", "27"], "mean": ["7.2", "", "50.2", "46.9"], "sd": ["", "2.4", "", "9.5"],
        "se": ["", "", "1.8", ""], "median": ["7", "7", "", ""], "q1": ["5", "5", "", ""], "q3": ["9.5", "9.5", "", ""],
    })
    out = convert_published(table)
    sd_iqr = 4.5 / (2 * stats.norm.ppf((37.5 - 0.125) / 50.25))
    assert out.loc[0, ["mean_used", "conversion"]].tolist() == [7.2, "SD from IQR (Wan et al. 2014)"]
    assert out.loc[0, "sd_used"] == pytest.approx(sd_iqr, rel=1e-12)
    assert out.loc[1, "mean_used"] == pytest.approx(21.5 / 3, rel=1e-12) and out.loc[1, "sd_used"] == 2.4
    assert out.loc[1, "conversion"] == "mean from median and IQR (Wan et al. 2014); SD reported"
    wide = pd.DataFrame({"n1i": [50, 25], "m1i": [7.2, 50.2], "median1i": [7, None], "q1_1i": [5, None], "q3_1i": [9.5, None],
                         "se1i": [None, 1.8], "n2i": [50, 27], "m2i": [None, 46.9], "sd2i": [2.4, 9.5],
                         "median2i": [7, None], "q1_2i": [5, None], "q3_2i": [9.5, None]})
    done = escalc("MD", wide)
    arms = published_arms(out)
    np.testing.assert_allclose(done[["m1i", "sd1i", "m2i", "sd2i"]].to_numpy(float),
                               arms[["m1i", "sd1i", "m2i", "sd2i"]].to_numpy(float), rtol=1e-15)
