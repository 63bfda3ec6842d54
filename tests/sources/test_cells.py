"""Cells as the plan reads them (analysis/sources/cells.py): the plan's ``na_values`` in number
columns (counted), identifiers and codes kept as written, SPSS/Stata value labels, and a column
mapping that names a column the file lacks. Every test reads a literal file."""

from __future__ import annotations

import pandas as pd
import pyreadstat
import pytest

from analysis.cli import run_cli
from analysis.core.errors import DataError
from analysis.core.notices import recording_warnings
from analysis.pipeline import load_trial
from analysis.plan import load_plan
from analysis.sources.files import read_measurements, read_participants
from tests.conftest import SMALL_PLAN

# As R's write.csv writes a data frame: quoted text, bare NA for a missing value; '.' as SAS writes one.
R_PARTICIPANTS = '''\
"participant_id","arm","age","site","disposition","bmi"
"P1","T",40,"NA","completed",22.5
"P2","C",NA,"north","completed",NA
"P3","T",35,"south","completed",.
"NA","C",61,"north","withdrawn",30.1
'''
R_MEASUREMENTS = '''\
"participant_id","visit","outcome","value"
"P1","base","pain",6
"P1","w4","pain",NA
"P1","w8","pain",3
"P2","base","pain",5
"P2","w4","pain",.
"P2","w8","pain",4
"P3","base","pain",7
"P3","w4","pain",5
"P3","w8","pain",NA
"NA","base","pain",6
"NA","w4","pain",6
'''
WITH_BMI = SMALL_PLAN + "covariates: [bmi]\n"


def test_r_and_sas_missing_values_are_read_as_missing_and_counted(small_trial):
    plan = small_trial(plan=WITH_BMI, participants=R_PARTICIPANTS, measurements=R_MEASUREMENTS)
    with recording_warnings(forward=lambda _text: None) as log:
        trial = load_trial(plan)
    people = trial.participants.set_index("participant_id")
    # number columns: age (contract), bmi (a covariate whose other values are numbers)
    assert people.loc["P2", "age"] != people.loc["P2", "age"]  # NaN
    assert people["bmi"].isna().tolist() == [False, True, True, False]
    # identifier and code columns: a participant called NA is a participant; a site called NA a site
    assert "NA" in people.index and people.loc["P1", "site"] == "NA"
    assert any("'site' (1 cell(s))" in m and "kept as text" in m for m in log.messages())
    values = trial.measurements.set_index(["participant_id", "visit"])["value"]
    assert values.isna().sum() == 3 and values.loc[("NA", "w4")] == 6.0
    assert list(trial.participants_raw.notes) == [
        ("'NA' in age", 1, "read as a missing value (na_values)"),
        ("'NA' in bmi", 1, "read as a missing value (na_values)"),
        ("'.' in bmi", 1, "read as a missing value (na_values)"),
    ]
    assert list(trial.measurements_raw.notes) == [
        ("'NA' in value", 2, "read as a missing value (na_values)"),
        ("'.' in value", 1, "read as a missing value (na_values)"),
    ]


R_WIDE = '''\
"id","arm","age","disposition","pain0","pain4","pain8"
"P1","T",40,"completed",6,4,3
"P2","C",NA,"completed",5,5,4
"P3","T",35,"withdrawn",7,5,NA
"P4","C",61,"completed",6,.,5
"P5","T",44,"completed",8,6,4
"P6","C",52,"completed",7,6,6
"P7","T",NA,"completed",5,NA,2
"P8","C",39,"withdrawn",6,6,NA
'''
WIDE_PLAN = SMALL_PLAN.replace("    path: participants.csv\n", "    path: trial.csv\n    columns: {participant_id: id}\n").replace(
    "    path: measurements.csv\n",
    "    path: trial.csv\n    layout: wide\n    columns: {participant_id: id}\n"
    "    cell_columns: {pain: {base: pain0, w4: pain4, w8: pain8}}\n",
)


def test_accounting_counts_every_value_read_as_missing(small_trial, tmp_path):
    plan = small_trial(plan=WIDE_PLAN)
    (tmp_path / "trial.csv").write_text(R_WIDE)
    assert run_cli(["run", str(plan), "--out", str(tmp_path / "out"), "--no-report"]) == 0
    accounting = pd.read_csv(tmp_path / "out" / "accounting.csv", keep_default_na=False)
    rows = accounting[accounting["reason"] == "read as a missing value (na_values)"]
    assert rows[["stage", "source", "item", "count"]].values.tolist() == [
        ["participants", "trial.csv", "'NA' in age", 2],
        ["measurements", "trial.csv", "'.' in pain4", 1],
        ["measurements", "trial.csv", "'NA' in pain4", 1],
        ["measurements", "trial.csv", "'NA' in pain8", 2],
    ]
    empty = accounting.loc[accounting["item"] == "cells recorded empty", "count"]
    assert empty.tolist() == [4]  # the four codes in the value columns, now missing values


def test_plan_na_values_replace_the_default(small_trial):
    plan = WITH_BMI.replace("    path: measurements.csv\n", '    path: measurements.csv\n    na_values: ["-99"]\n')
    measurements = "participant_id,visit,outcome,value\nP1,base,pain,6\nP1,w4,pain,-99\nP1,w8,pain,-99.0\nP2,base,pain,NA\n"
    participants = "participant_id,arm,disposition,bmi\nP1,T,completed,20\nP2,C,completed,21\n"
    loaded = load_plan(small_trial(plan=plan, participants=participants, measurements=measurements))
    raw, long = read_measurements(loaded)
    assert long["value"].isna().tolist()[:3] == [False, True, True]
    assert list(raw.notes) == [("'-99' in value", 2, "read as a missing value (na_values)")]
    assert long["value"].tolist()[3] == "NA"  # not a code of this file: validation says it is not a number
    with pytest.raises(DataError) as caught:
        load_trial(loaded.path)
    failures = caught.value.failures
    assert failures[["row", "column", "rule", "value"]].values.tolist() == [[5, "value", "must be a number", "NA"]]


def test_spss_value_labels_read_arms_by_label_or_by_code(small_trial, tmp_path):
    frame = pd.DataFrame({
        "pid": [101.0, 102.0, 103.0, 104.0], "group": [1.0, 2.0, 1.0, 2.0], "drug": [0.0, 1.0, 1.0, 0.0],
        "visits": [3.0, 3.0, 3.0, 3.0], "pain0": [7.0, 6.0, 8.0, 7.0], "pain8": [3.0, 5.0, None, 6.0],
        "status": ["completed", "completed", "withdrawn", "completed"],
    })
    pyreadstat.write_sav(frame, tmp_path / "trial.sav", variable_value_labels={
        "group": {1: "Release", 2: "Stretching"}, "drug": {0: "No", 1: "Yes"},
        "pain0": {0: "no pain", 10: "worst pain"},  # scale anchors: the values stay numbers
    })
    base = f"""\
study: {{id: spss, title: SPSS trial}}
seed: 1
data:
  participants: {{path: {tmp_path / 'trial.sav'}, columns: {{participant_id: pid, arm: group, disposition: status}}}}
  measurements:
    path: {tmp_path / 'trial.sav'}
    layout: wide
    columns: {{participant_id: pid}}
    cell_columns: {{pain: {{base: pain0, w8: pain8}}}}
arms:
  treatment: {{label: Release, codes: CODES_T}}
  control: {{label: Stretching, codes: CODES_C}}
visits: {{baseline: base, followup: [{{label: w8, week: 8}}], primary: w8}}
outcomes:
- {{name: pain, label: Pain, unit: points, range: [0, 10], better: lower}}
covariates: [drug, visits]
"""
    for treatment, control in (("[Release]", "[Stretching]"), ("[1]", "[2]"), ("[1]", "[Stretching]")):
        plan = tmp_path / "plan.yaml"
        plan.write_text(base.replace("CODES_T", treatment).replace("CODES_C", control))
        trial = load_trial(plan)
        people = trial.participants
        assert people["participant_id"].tolist() == ["101", "102", "103", "104"]  # never '101.0'
        assert people["arm"].tolist() == ["treatment", "control", "treatment", "control"]
        assert people["arm_code"].tolist() == ["Release", "Stretching", "Release", "Stretching"]
        assert people["drug"].tolist() == ["No", "Yes", "Yes", "No"]  # labelled: a factor
        assert people["visits"].tolist() == [3.0, 3.0, 3.0, 3.0]  # unlabelled number: stays a number
        assert trial.dataset.loc[trial.dataset["visit"] == "base", "value"].tolist() == [7.0, 6.0, 8.0, 7.0]


def test_spss_numeric_codes_without_labels_match_the_plan_code_not_1_0(small_trial, tmp_path):
    frame = pd.DataFrame({"participant_id": [1.0, 2.0], "arm": [1.0, 2.0], "disposition": ["completed"] * 2,
                          "pain0": [7.0, 6.0], "pain8": [3.0, 5.0]})
    pyreadstat.write_sav(frame, tmp_path / "trial.sav")
    plan = tmp_path / "plan.yaml"
    plan.write_text("""\
study: {id: spss, title: SPSS trial}
seed: 1
data:
  participants: {path: trial.sav}
  measurements: {path: trial.sav, layout: wide, cell_columns: {pain: {base: pain0, w8: pain8}}}
arms: {treatment: {label: Drug, codes: [1]}, control: {label: Placebo, codes: [2]}}
visits: {baseline: base, followup: [{label: w8, week: 8}], primary: w8}
outcomes:
- {name: pain, label: Pain, unit: points, range: [0, 10], better: lower}
""")
    trial = load_trial(plan)
    assert trial.participants[["participant_id", "arm_code", "arm"]].values.tolist() == [
        ["1", "1", "treatment"], ["2", "2", "control"]]


def test_stata_dta_is_read_with_its_value_labels(tmp_path):
    frame = pd.DataFrame({"id": [7, 8, 9, 10], "rx": [1, 2, 1, 2], "pain0": [7.0, 6.0, 8.0, 7.0],
                          "pain8": [3.0, 5.0, 4.0, 6.0]})
    pyreadstat.write_dta(frame, tmp_path / "trial.dta", variable_value_labels={"rx": {1: "Drug", 2: "Placebo"}})
    plan = tmp_path / "plan.yaml"
    plan.write_text("""\
study: {id: stata, title: Stata trial}
seed: 1
data:
  participants: {path: trial.dta, columns: {participant_id: id, arm: rx}}
  measurements: {path: trial.dta, layout: wide, columns: {participant_id: id}, cell_columns: {pain: {base: pain0, w8: pain8}}}
arms: {treatment: {label: Drug, codes: [Drug]}, control: {label: Placebo, codes: [2]}}
visits: {baseline: base, followup: [{label: w8, week: 8}], primary: w8}
outcomes:
- {name: pain, label: Pain, unit: points, range: [0, 10], better: lower}
""")
    raw, frame = read_participants(load_plan(plan))
    assert raw.format == "dta" and raw.value_labels == {"rx": {"1": "Drug", "2": "Placebo"}}
    assert frame["participant_id"].tolist() == ["7", "8", "9", "10"] and frame["arm"].tolist() == ["Drug", "Placebo"] * 2
    with recording_warnings(forward=lambda _text: None) as log:  # no disposition column: derived, and said
        trial = load_trial(plan)
    assert trial.participants["arm"].tolist() == ["treatment", "control"] * 2
    assert any("disposition derived from the data" in m for m in log.messages())


def test_a_mapping_that_names_an_absent_column_is_an_error_even_if_the_canonical_one_exists(small_trial, tmp_path, capsys):
    plan = SMALL_PLAN.replace("    path: participants.csv\n", "    path: participants.csv\n    columns: {arm: group}\n")
    path = small_trial(plan=plan)  # participants.csv has 'arm' but no 'group'
    with pytest.raises(DataError) as caught:
        read_participants(load_plan(path))
    message = str(caught.value)
    assert "data.participants.columns.arm names column 'group'" in message and "participants.csv" in message
    assert caught.value.failures[["row", "column", "rule"]].values.tolist() == [
        [1, "group", "column named in the plan (data.participants.columns.arm)"]]
    assert run_cli(["validate", str(path), "--failures", str(tmp_path / "f.csv")]) == 1
    assert "data.participants.columns.arm" in capsys.readouterr().err


def test_a_mapped_canonical_name_is_read_only_from_the_mapped_column(small_trial):
    plan = SMALL_PLAN.replace("    path: participants.csv\n", "    path: participants.csv\n    columns: {arm: group}\n")
    participants = "participant_id,arm,group,disposition\nP1,X,T,completed\nP2,X,C,completed\nP3,X,T,completed\nP4,X,C,withdrawn\n"
    _raw, frame = read_participants(load_plan(small_trial(plan=plan, participants=participants)))
    assert frame["arm"].tolist() == ["T", "C", "T", "C"] and list(frame.columns).count("arm") == 1
