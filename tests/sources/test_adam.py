"""CDISC ADaM in and out: ADSL + BDS as a data source (BASE/CHG checked against our derivation),
the analysis dataset written as ADaM BDS (XPT v5 + CSV), the bundled fixture and the round trip."""

from __future__ import annotations

import math
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pyreadstat
import pytest

from analysis.cli import run_cli
from analysis.core.errors import DataError, PlanError
from analysis.pipeline import analysis_tables, load_trial
from analysis.plan import load_plan
from analysis.reporting.adam import adam_adsl, adam_bds, write_adam, xpt_bytes
from analysis.sources.adam import paramcd_codes
from tests.conftest import EXAMPLE_PLAN, REPO

ADAM_PLAN = REPO / "data" / "studies" / "example-precision-release-adam.yaml"
FIXTURE = REPO / "data" / "examples" / "precision-release-sim" / "adam"

PLAN = textwrap.dedent("""\
    study: {id: small-adam, title: Small ADaM trial}
    seed: 7
    data:
      adam:
        adsl: adsl.csv
        bds: adbds.csv
        paramcd: {PAIN: pain}
        visits: {Baseline: base, Week 4: w4, Week 8: w8}
    arms:
      treatment: {label: Release, codes: [T]}
      control: {label: Stretching, codes: [C]}
    visits:
      baseline: base
      followup:
        - {label: w4, week: 4}
        - {label: w8, week: 8}
      primary: w8
    outcomes:
      - {name: pain, label: Pain NRS, unit: points, range: [0, 10], better: lower, mcid: {points: 2, percent: 30}}
""")
ADSL = textwrap.dedent("""\
    STUDYID,USUBJID,AGE,TRT01P,EOSSTT,DCSREAS
    S,P1,40,Release,COMPLETED,
    S,P2,50,C,DISCONTINUED,LOST TO FOLLOW-UP
    S,P3,35,T,DISCONTINUED,ADVERSE EVENT
""")
# Hand-worked: P1 6 -> 4 -> 3 (CHG -2, -3; PCHG -33.333..., -50); P2 5 -> 5; P3 4 -> 0.
BDS = textwrap.dedent("""\
    USUBJID,PARAMCD,AVISIT,AVISITN,AVAL,BASE,CHG,PCHG,ABLFL,ANL01FL
    P1,PAIN,Baseline,0,6,6,,,Y,Y
    P1,PAIN,Week 4,4,4,6,-2,-33.3333333333333,,Y
    P1,PAIN,Week 8,8,3,6,-3,-50,,Y
    P1,OTHER,Baseline,0,99,99,,,Y,Y
    P2,PAIN,Baseline,0,5,5,0,,Y,Y
    P2,PAIN,Week 4,4,5,5,0,0,,Y
    P2,PAIN,Unscheduled,5,5,5,0,0,,Y
    P3,PAIN,Baseline,0,4,4,,,Y,Y
    P3,PAIN,Week 4,4,0,4,-4,-100,,Y
    P3,PAIN,Week 4,4,1,4,-3,-75,,N
""")


@pytest.fixture
def adam(tmp_path: Path):
    def write(plan: str = PLAN, adsl: str = ADSL, bds: str = BDS) -> Path:
        (tmp_path / "adsl.csv").write_text(adsl, encoding="utf-8")
        (tmp_path / "adbds.csv").write_text(bds, encoding="utf-8")
        (tmp_path / "plan.yaml").write_text(plan, encoding="utf-8")
        return tmp_path / "plan.yaml"

    return write


def test_paramcd_codes_are_short_upper_case_and_distinct():
    assert paramcd_codes(["pain_interference", "pain_intensity", "trunk_rotation", "nrs"]) == {
        "pain_interference": "PAININT1", "pain_intensity": "PAININT2", "trunk_rotation": "TRUNKROT", "nrs": "NRS"}
    assert paramcd_codes(["ab", "a_b"]) == {"ab": "AB1", "a_b": "AB2"}


def test_small_adam_reads_with_plan_mappings(adam):
    trial = load_trial(adam())
    people = trial.participants.set_index("participant_id")
    assert people["arm"].tolist() == ["treatment", "control", "treatment"]  # label 'Release' or a code
    assert people["disposition"].tolist() == ["completed", "lost_to_follow_up", "withdrawn"]
    assert people.loc["P3", "disposition_reason"] == "ADVERSE EVENT"
    d = trial.dataset.set_index(["participant_id", "visit"])
    assert d.loc[("P1", "w4"), "change"] == -2.0 and d.loc[("P3", "w4"), "value"] == 0.0  # ANL01FL N row not used
    assert math.isnan(d.loc[("P2", "w8"), "value"])
    notes = dict((item, count) for item, count, _ in trial.measurements_raw.notes)
    assert notes == {"BDS records without ANL01FL = 'Y'": 1,
                     "BDS records of parameters the plan does not map (PARAMCD)": 1,
                     "BDS records of visits the plan does not map (AVISIT)": 1}


def test_base_and_chg_disagreements_are_reported_row_by_row(adam):
    bds = BDS.replace("P1,PAIN,Week 8,8,3,6,-3,-50", "P1,PAIN,Week 8,8,3,7,-4,-50")  # file row 4
    bds = bds.replace("P3,PAIN,Week 4,4,0,4,-4,-100,,Y", "P3,PAIN,Week 4,4,0,4,-4,-100,Y,Y")  # row 10
    with pytest.raises(DataError, match="disagree with trialkit's derivation") as caught:
        load_trial(adam(bds=bds))
    failures = caught.value.failures
    assert failures[["row", "column"]].values.tolist() == [[4, "BASE"], [4, "CHG"], [10, "ABLFL"]]
    assert failures["value"].tolist()[:2] == ["7 (trialkit: 6)", "-4 (trialkit: -3)"]
    assert failures["rule"].iloc[0].startswith("BASE must equal trialkit's derivation (AVAL at the plan's baseline visit")
    assert load_trial(adam(plan=PLAN.replace("    visits: {Baseline", "    check_derived: false\n    visits: {Baseline"), bds=bds.replace(",Y,Y", ",,Y")))


def test_missing_required_variables(adam, tmp_path):
    with pytest.raises(DataError, match=r"required ADaM variable\(s\) \['PARAMCD'\]") as caught:
        load_trial(adam(bds=BDS.replace("PARAMCD", "PARAM")))
    assert caught.value.failures[["row", "column"]].values.tolist() == [[1, "PARAMCD"]]
    with pytest.raises(DataError, match=r"\['TRT01P'\]"):
        load_trial(adam(adsl=ADSL.replace("TRT01P", "ARM")))
    failures_csv = tmp_path / "failures.csv"
    assert run_cli(["validate", str(adam(adsl=ADSL.replace("TRT01P", "ARM"))), "--failures", str(failures_csv)]) == 1


def test_shared_validation_names_the_adam_variable(adam):
    with pytest.raises(DataError) as caught:
        load_trial(adam(bds=BDS.replace("P1,PAIN,Week 4,4,4,6,-2,-33.3333333333333", "P1,PAIN,Week 4,4,14,6,8,133.333333333333")))
    failures = caught.value.failures
    assert failures[["row", "column", "value"]].values.tolist() == [[3, "AVAL", "14.0"]]


def test_plan_errors_name_the_key(adam):
    with pytest.raises(PlanError, match=r"data.adam.paramcd names \['pn'\]"):
        load_plan(adam(plan=PLAN.replace("{PAIN: pain}", "{PAIN: pn}")))


def test_adam_bds_values_and_labels(small_trial, tmp_path):
    trial = load_trial(small_trial())
    bds = adam_bds(trial.dataset, trial.participants, trial.plan)
    p1 = bds[bds["USUBJID"] == "P1"]
    assert p1["AVISIT"].tolist() == ["base", "w4", "w8"] and p1["AVISITN"].tolist() == [0.0, 4.0, 8.0]
    assert p1["AVAL"].tolist() == [6.0, 4.0, 3.0] and p1["BASE"].tolist() == [6.0] * 3
    assert p1["CHG"].tolist()[1:] == [-2.0, -3.0] and math.isnan(p1["CHG"].iloc[0])
    assert p1["PCHG"].iloc[1] == pytest.approx(-100 / 3, rel=1e-12)
    assert p1["ABLFL"].tolist() == ["Y", "", ""] and (bds["ANL01FL"] == "Y").all()
    assert p1["CRIT1FL"].tolist() == ["", "Y", "Y"]  # improvement 2 and 3 points >= MCID 2
    assert p1["CRIT2FL"].tolist() == ["", "Y", "Y"]  # 33.3 % and 50 % >= 30 %
    p4 = bds[bds["USUBJID"] == "P4"]  # withdrawn after week 4: 6 -> 6, no week 8
    assert p4["CRIT1FL"].tolist() == ["", "N", ""] and p4["TRT01P"].iloc[0] == "Stretching"
    assert bds["PARAMCD"].unique().tolist() == ["PAIN"]
    paths = write_adam(trial.dataset, trial.participants, trial.plan, tmp_path)
    assert [p.relative_to(tmp_path).as_posix() for p in paths] == ["adam/adsl.xpt", "adam/adsl.csv", "adam/adbds.xpt", "adam/adbds.csv"]
    frame, meta = pyreadstat.read_xport(str(tmp_path / "adam" / "adbds.xpt"))
    assert meta.table_name == "ADBDS" and meta.file_label == "Analysis Dataset (BDS)"
    assert meta.column_names_to_labels["AVAL"] == "Analysis Value" and meta.column_names_to_labels["CHG"] == "Change from Baseline"
    assert all(len(name) <= 8 for name in frame.columns)
    assert all(len(label or "") <= 40 for label in meta.column_labels)
    np.testing.assert_array_equal(frame["AVAL"].to_numpy(), bds["AVAL"].to_numpy())
    csv = pd.read_csv(tmp_path / "adam" / "adbds.csv", keep_default_na=False)
    assert csv.columns.tolist() == bds.columns.tolist()


def test_xpt_is_byte_stable_and_checks_v5_limits(small_trial):
    trial = load_trial(small_trial())
    adsl = adam_adsl(trial.participants, trial.plan)
    assert xpt_bytes(adsl, "ADSL", "Subjects") == xpt_bytes(adsl, "ADSL", "Subjects")
    with pytest.raises(ValueError, match="names <= 8"):
        xpt_bytes(adsl.rename(columns={"AGE": "AGEATBASELINE"}), "ADSL", "Subjects")


def test_fixture_is_what_the_package_generates():
    native = load_trial(EXAMPLE_PLAN)
    adsl = xpt_bytes(adam_adsl(native.participants, native.plan), "ADSL", "Subject-Level Analysis Dataset")
    bds = xpt_bytes(adam_bds(native.dataset, native.participants, native.plan), "ADBDS", "Analysis Dataset (BDS)")
    assert (FIXTURE / "adsl.xpt").read_bytes() == adsl, "adsl.xpt differs: regenerate the fixture"
    assert (FIXTURE / "adbds.xpt").read_bytes() == bds, "adbds.xpt differs: regenerate the fixture"


def test_round_trip_gives_the_native_dataset_and_results():
    native = load_trial(EXAMPLE_PLAN)
    adam = load_trial(ADAM_PLAN)
    pd.testing.assert_frame_equal(native.dataset, adam.dataset)
    columns = [c for c in native.participants.columns if c != "source_row"]
    pd.testing.assert_frame_equal(native.participants[columns], adam.participants[columns])
    ours, theirs = analysis_tables(native, seed=11), analysis_tables(adam, seed=11)
    assert list(ours) == list(theirs)
    for name in ours:
        pd.testing.assert_frame_equal(ours[name], theirs[name], obj=name)


def test_export_adam_command(tmp_path):
    assert run_cli(["export-adam", str(ADAM_PLAN), "--out", str(tmp_path)]) == 0
    assert (tmp_path / "adam" / "adbds.xpt").read_bytes() == (FIXTURE / "adbds.xpt").read_bytes()
