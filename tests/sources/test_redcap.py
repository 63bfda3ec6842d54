"""REDCap as a data source: dictionary checks, events, repeating instruments, checkboxes, missing
codes, the bundled fixture and the round trip example trial -> REDCap export -> same results."""

from __future__ import annotations

import math
import textwrap
from pathlib import Path

import pandas as pd
import pytest
import yaml

from analysis.cli import run_cli
from analysis.core.errors import DataError, PlanError
from analysis.pipeline import analysis_tables, load_trial
from analysis.plan import load_plan
from analysis.reporting.redcap import to_redcap, write_redcap
from analysis.sources.redcap import draft_plan, parse_choices, read_dictionary
from analysis.sources.redcap.draft import detect_missing_codes
from analysis.sources.trial import read_sources
from tests.conftest import EXAMPLE_PLAN, REPO

REDCAP_PLAN = REPO / "data" / "studies" / "example-precision-release-redcap.yaml"
FIXTURE = REPO / "data" / "examples" / "precision-release-sim" / "redcap"

HEADER = (
    'Variable / Field Name,Form Name,Section Header,Field Type,Field Label,"Choices, Calculations, OR Slider Labels",'
    "Field Note,Text Validation Type OR Show Slider Number,Text Validation Min,Text Validation Max,Identifier?,"
    "Branching Logic (Show field only if...),Required Field?,Custom Alignment,Question Number (surveys only),"
    "Matrix Group Name,Matrix Ranking?,Field Annotation\n"
)
DICTIONARY = HEADER + textwrap.dedent("""\
    record_id,enrolment,,text,ID,,,,,,,,,,,,,
    arm,enrolment,,radio,Arm,"1, Release | 2, Stretching",,,,,,,,,,,,
    age,enrolment,,text,Age,,,integer,18,99,,,,,,,,@NOMISSING
    sex,enrolment,,radio,Sex,"F, Female | M, Male",,,,,,,,,,,,
    race,enrolment,,checkbox,Race,"1, White | 2, Black | 3, Asian",,,,,,,,,,,,
    disposition,enrolment,,radio,Disposition,"completed, Completed | withdrawn, Withdrawn",,,,,,,,,,,,
    note,enrolment,,descriptive,Read this,,,,,,,,,,,,,
    pain,visit,,text,Pain NRS,,,integer,0,10,,,,,,,,
""")
EXPORT = textwrap.dedent("""\
    record_id,redcap_event_name,arm,age,sex,race___1,race___2,race___3,disposition,enrolment_complete,pain,visit_complete
    P1,screening_arm_1,1,40,F,1,0,0,completed,2,,
    P1,baseline_arm_1,,,,,,,,,6,2
    P1,week_4_arm_1,,,,,,,,,4,2
    P1,week_8_arm_1,,,,,,,,,3,2
    P2,screening_arm_1,2,50,M,1,1,0,withdrawn,2,,
    P2,baseline_arm_1,,,,,,,,,5,2
    P2,week_4_arm_1,,,,,,,,,-999,1
""")
PLAN = textwrap.dedent("""\
    study: {id: small-redcap, title: Small REDCap trial}
    seed: 7
    data:
      redcap:
        export: export.csv
        dictionary: dictionary.csv
        events: {baseline_arm_1: base, week_4_arm_1: w4, week_8_arm_1: w8}
        ignore_events: [screening_arm_1]
        outcomes: {pain: pain}
        missing_data_codes: [UNK, "-999"]
    arms:
      treatment: {label: Release, codes: ["1"]}
      control: {label: Stretching, codes: ["2"]}
    visits:
      baseline: base
      followup:
        - {label: w4, week: 4}
        - {label: w8, week: 8}
      primary: w8
    outcomes:
      - {name: pain, label: Pain NRS, unit: points, range: [0, 10], better: lower, mcid: {points: 2}}
""")


@pytest.fixture
def project(tmp_path: Path):
    """Write the small REDCap project (plan, export, dictionary); keyword arguments replace one."""

    def write(plan: str = PLAN, export: str = EXPORT, dictionary: str = DICTIONARY) -> Path:
        (tmp_path / "export.csv").write_text(export, encoding="utf-8")
        (tmp_path / "dictionary.csv").write_text(dictionary, encoding="utf-8")
        (tmp_path / "plan.yaml").write_text(plan, encoding="utf-8")
        return tmp_path / "plan.yaml"

    return write


def _failures(plan_path: Path) -> pd.DataFrame:
    with pytest.raises(DataError) as caught:
        load_trial(plan_path)
    return caught.value.failures


def test_parse_choices_and_dictionary(project):
    assert parse_choices("1, White | 2, Black, African American") == {"1": "White", "2": "Black, African American"}
    dictionary = read_dictionary(project().parent / "dictionary.csv")
    assert list(dictionary.fields) == ["record_id", "arm", "age", "sex", "race", "disposition", "pain"]  # no descriptive
    assert dictionary.fields["age"].no_missing_codes and dictionary.fields["pain"].kind == "integer"
    assert dictionary.checkbox_columns(["UNK"])["race___unk"] == ("race", "UNK")


def test_small_project_reads_into_the_analysis_dataset(project):
    trial = load_trial(project())
    people = trial.participants.set_index("participant_id")
    assert people.loc["P1", "arm"] == "treatment" and people.loc["P2", "arm"] == "control"
    assert people.loc["P1", "race"] == "1"  # one box ticked: its code
    assert people.loc["P2", "race"] == "Multiple"  # two boxes ticked
    assert people["age"].tolist() == [40.0, 50.0]
    assert trial.participants["source_row"].tolist() == [2, 6]  # the record's first row in the export
    pain = trial.dataset.set_index(["participant_id", "visit"])
    assert pain["value"].tolist()[:3] == [6.0, 4.0, 3.0]
    assert pain.loc[("P1", "w4"), "change"] == -2.0
    assert pain.loc[("P1", "w8"), "pct_change"] == pytest.approx(-50.0, rel=1e-12)
    assert math.isnan(pain.loc[("P2", "w4"), "value"])  # -999 is a declared missing code, never a number
    assert math.isnan(pain.loc[("P2", "w8"), "value"])  # no record at week 8
    assert trial.measurements["source_row"].tolist() == [3, 4, 5, 7, 8]
    assert trial.measurements_raw.path.name == "export.csv"
    assert trial.participants_raw.inputs[0].name == "dictionary.csv"
    assert ("REDCap missing-data code '-999' in pain", 1, "read as a missing value") in trial.measurements_raw.notes


def test_bad_inputs_are_all_reported_with_row_field_and_rule(project):
    export = EXPORT.splitlines()
    export[2] = export[2].replace("baseline_arm_1", "baseline_arm_2")  # unknown event (file row 3)
    export[1] = export[1].replace(",F,", ",X,")  # sex code not in the dictionary (row 2)
    export[4] = "P1,week_8_arm_1,,,,,,,,,11,2"  # beyond validation max 10 (row 5)
    export[5] = export[5].replace(",1,1,0,", ",1,2,0,")  # checkbox column holding 2 (row 6)
    export[6] = "P2,baseline_arm_1,,,,,,,,,NA,2"  # undeclared missing code in a numeric field (row 7)
    export[7] = export[7].replace(",-999,", ",7.5,")  # not an integer (row 8)
    export.append("P3,screening_arm_1,1,UNK,F,1,0,0,completed,2,,")  # declared code in an @NOMISSING field
    failures = _failures(project(export="\n".join(export) + "\n"))
    got = {(row, column): rule for row, column, rule in failures[["row", "column", "rule"]].itertuples(index=False)}
    assert got[(3, "redcap_event_name")].startswith("event must be mapped to a visit")
    assert got[(2, "sex")] == "must be one of the dictionary's choices ['F', 'M']"
    assert got[(5, "pain")] == "must be within 0 to 10 (dictionary validation min/max)"
    assert got[(6, "race___2")] == "checkbox column must be 0 or 1"
    assert got[(7, "pain")] == "must be an integer or one of the declared missing-data codes ['UNK', '-999']"
    assert got[(8, "pain")].startswith("must be an integer")
    assert got[(9, "age")] == "missing-data codes are not allowed in this field (@NOMISSING)"
    assert len(got) == 7
    assert set(failures["file"].map(lambda f: Path(f).name)) == {"export.csv"}
    values = dict(zip(zip(failures["row"], failures["column"], strict=True), failures["value"], strict=True))
    assert values[(3, "redcap_event_name")] == "baseline_arm_2" and values[(5, "pain")] == "11"


def test_unknown_column_and_conflicting_participant_values(project):
    export = EXPORT.replace("visit_complete\n", "visit_complete,extra\n").replace("\n", ",\n").replace("visit_complete,extra,\n", "visit_complete,extra\n")
    export = export.replace("P1,baseline_arm_1,,,,", "P1,baseline_arm_1,,41,,")  # age given twice, differently
    failures = _failures(project(export=export))
    rules = set(zip(failures["row"], failures["column"], failures["rule"], strict=True))
    assert (1, "extra", "column must be a field of the data dictionary dictionary.csv") in rules
    assert any(r == 3 and c == "age" and rule.startswith("one value per record") for r, c, rule in rules)


def test_repeating_instrument_instances_are_visits(project):
    dictionary = DICTIONARY + "ae_term,adverse_event,,text,Adverse event,,,,,,,,,,,,,\n"
    export = textwrap.dedent("""\
        record_id,redcap_repeat_instrument,redcap_repeat_instance,arm,age,sex,race___1,race___2,race___3,disposition,enrolment_complete,pain,visit_complete,ae_term,adverse_event_complete
        P1,,,1,40,F,0,0,1,completed,2,,,,
        P1,visit,1,,,,,,,,,6,2,,
        P1,visit,2,,,,,,,,,4,2,,
        P1,adverse_event,1,,,,,,,,,,,headache,2
        P1,visit,3,,,,,,,,,3,2,,
    """)
    plan = PLAN.replace(
        "    events: {baseline_arm_1: base, week_4_arm_1: w4, week_8_arm_1: w8}\n    ignore_events: [screening_arm_1]\n",
        "    repeating: {instrument: visit, instances: {1: base, 2: w4, 3: w8}}\n",
    )
    loaded = load_plan(project(plan=plan, export=export, dictionary=dictionary))
    p_raw, people, m_raw, long = read_sources(loaded)
    assert people["participant_id"].tolist() == ["P1"] and people["race"].tolist() == ["3"]
    assert long[["visit", "value", "source_row"]].values.tolist() == [["base", "6", 3], ["w4", "4", 4], ["w8", "3", 6]]
    assert ("REDCap rows of other repeating instruments", 1, "not used") in p_raw.notes + m_raw.notes
    bad = export.replace("P1,visit,3,", "P1,visit,4,")
    failures = _failures(project(plan=plan, export=bad, dictionary=dictionary))
    assert failures[["row", "column"]].values.tolist() == [[6, "redcap_repeat_instance"]]


def test_plan_errors_name_the_key(project):
    with pytest.raises(PlanError, match=r"data.redcap.events names \['w12'\]"):
        load_plan(project(plan=PLAN.replace("week_8_arm_1: w8", "week_8_arm_1: w12")))
    both = PLAN.replace("data:\n", "data:\n  participants: {path: p.csv}\n  measurements: {path: m.csv}\n")
    with pytest.raises(PlanError, match="exactly one data source"):
        load_plan(project(plan=both))
    with pytest.raises(PlanError, match="unknown participant column"):
        load_plan(project(plan=PLAN.replace("    outcomes: {pain: pain}\n", "    outcomes: {pain: pain}\n    participants: {gender: sex}\n")))


def test_cli_validate_exit_codes(project, tmp_path, capfd):
    assert run_cli(["validate", str(project()), "--failures", str(tmp_path / "f.csv")]) == 0
    bad = project(export=EXPORT.replace("week_4_arm_1,,,,,,,,,4", "week_5_arm_1,,,,,,,,,4"))
    assert run_cli(["validate", str(bad), "--failures", str(tmp_path / "f.csv")]) == 1
    assert "redcap_event_name" in capfd.readouterr().err
    assert pd.read_csv(tmp_path / "f.csv")["value"].tolist() == ["week_5_arm_1"]


def test_fixture_is_what_the_package_generates(tmp_path):
    native = load_trial(EXAMPLE_PLAN)
    project = to_redcap(native.participants, native.measurements, native.plan)
    written = write_redcap(project, tmp_path)
    for path in written:
        assert path.read_bytes() == (FIXTURE / path.name).read_bytes(), f"{path.name} differs: regenerate the fixture"
    redcap = load_plan(REDCAP_PLAN).plan.data.redcap
    assert redcap.events == project.events and redcap.codes == project.codes


def test_round_trip_gives_the_native_dataset_and_results():
    native = load_trial(EXAMPLE_PLAN)
    redcap = load_trial(REDCAP_PLAN)
    pd.testing.assert_frame_equal(native.dataset, redcap.dataset)
    columns = [c for c in native.participants.columns if c != "source_row"]
    pd.testing.assert_frame_equal(native.participants[columns], redcap.participants[columns])
    # the six measurements recorded empty in the native file are the six 'UNK' codes of the export
    assert sum(n for item, n, _ in redcap.measurements_raw.notes if "'UNK'" in item) == int(native.measurements["value"].isna().sum()) == 6
    ours, theirs = analysis_tables(native, seed=11), analysis_tables(redcap, seed=11)
    assert list(ours) == list(theirs)
    for name in ours:
        pd.testing.assert_frame_equal(ours[name], theirs[name], obj=name)


DIRECTIONS = {"pain_interference": "lower", "pain_intensity": "lower", "trunk_rotation": "higher"}


def set_directions(draft: Path, directions: dict[str, str]) -> None:
    """Replace each outcome's ``better: unknown`` line, as the user is asked to."""
    lines, outcome = [], None
    for line in draft.read_text().splitlines():
        if line.startswith("  - name: "):
            outcome = line.split(": ", 1)[1]
        if line.strip().startswith("better: unknown"):
            line = f"    better: {directions[outcome]}"
        lines.append(line)
    draft.write_text("\n".join(lines) + "\n")


def test_plan_from_redcap_drafts_a_loadable_plan(tmp_path, capfd):
    out = tmp_path / "draft.yaml"
    code = run_cli(["plan-from-redcap", str(FIXTURE / "dictionary.csv"), "--export", str(FIXTURE / "export.csv"), "--out", str(out)])
    assert code == 0
    set_directions(out, DIRECTIONS)
    plan = load_plan(out).plan
    assert [o.name for o in plan.outcomes] == ["pain_interference", "pain_intensity", "trunk_rotation"]
    assert [o.range for o in plan.outcomes] == [(30.0, 90.0), (0.0, 10.0), (0.0, 180.0)]
    assert plan.visits.labels == ["baseline", "week4", "week8", "week12"] and plan.visits.weeks["week8"] == 8.0
    assert plan.arms.treatment.codes == ["PLR"] and plan.data.redcap.events["week4_arm_1"] == "week4"
    assert "TODO" in out.read_text() and "CHECK" in out.read_text()
    assert run_cli(["plan-from-redcap", str(tmp_path / "nope.csv")]) == 2


def test_drafted_plan_validates_against_the_export_it_came_from(tmp_path, capfd):
    """plan-from-redcap on the bundled project, then `trialkit validate` on the draft: refused (exit 2,
    naming the outcome and the key) until the directions are set, then valid (exit 0): the draft
    declares the export's missing-data code UNK."""
    out = tmp_path / "draft.yaml"
    assert run_cli(["plan-from-redcap", str(FIXTURE / "dictionary.csv"), "--export", str(FIXTURE / "export.csv"), "--out", str(out)]) == 0
    text = out.read_text()
    assert "    missing_data_codes: [UNK]\n" in text and "#   UNK: 6 cell(s) in pain_interference, pain_intensity, trunk_rotation" in text
    assert text.count("better: unknown") == 3 and "better: lower" not in text and "better: higher" not in text
    capfd.readouterr()
    assert run_cli(["validate", str(out), "--failures", str(tmp_path / "f.csv")]) == 2
    err = capfd.readouterr().err
    assert "key 'outcomes.0.better'" in err and "outcome 'pain_interference'" in err and "Traceback" not in err
    assert run_cli(["run", str(out), "--out", str(tmp_path / "run"), "--no-report"]) == 2
    assert not (tmp_path / "run").exists() and not (tmp_path / "f.csv").exists()
    set_directions(out, DIRECTIONS)
    assert run_cli(["validate", str(out), "--failures", str(tmp_path / "f.csv")]) == 0, capfd.readouterr().err
    assert "1380 with a value" in capfd.readouterr().err


def test_missing_data_codes_are_found_in_the_export(tmp_path):
    dictionary = DICTIONARY + "grip,visit,,text,Grip strength,,,number,,,,,,,,,,\n"
    export = textwrap.dedent("""\
        record_id,redcap_event_name,arm,age,sex,race___1,race___2,race___3,race___nask,disposition,enrolment_complete,pain,grip,visit_complete
        P1,screening_arm_1,1,UNK,F,1,0,0,0,completed,2,,,
        P1,baseline_arm_1,,,,,,,,,,6,n/a,2
        P1,week_4_arm_1,,,,,,,,,,UNK,-999,2
        P1,week_8_arm_1,,,,,,,,,,-999,missing,2
        P2,screening_arm_1,2,50,M,0,0,0,1,withdrawn,2,,,
        P2,baseline_arm_1,,,,,,,,,,5,missing,2
        P2,week_4_arm_1,,,,,,,,,,12,31.5,1
    """)
    (tmp_path / "dictionary.csv").write_text(dictionary)
    (tmp_path / "export.csv").write_text(export)
    parsed = read_dictionary(tmp_path / "dictionary.csv")
    codes, once = detect_missing_codes(parsed, pd.read_csv(tmp_path / "export.csv", dtype=str, keep_default_na=False, na_values=[""]))
    # pain (integer, 0-10): UNK (one of REDCap's codes) and -999 (a sentinel below 0), 12 is out of
    # range but no sentinel (a data error); grip (number, no bounds): -999 (negative, 3 digits),
    # 'missing' twice (recurs), 'n/a' once (not taken); age is @NOMISSING: its UNK is not counted;
    # race___nask is a checkbox column for no choice of race (REDCap adds one per code): NASK
    assert [(c.code, c.cells, c.fields) for c in codes] == [
        ("-999", 2, ("pain", "grip")), ("missing", 2, ("grip",)), ("NASK", 1, ("race___nask",)), ("UNK", 1, ("pain",))]
    assert once == [("n/a", "grip")]
    text = draft_plan(parsed, "export.csv", "dictionary.csv", export_file=tmp_path / "export.csv")
    assert '    missing_data_codes: ["-999", missing, NASK, UNK]\n' in text
    assert "#   not listed, seen once: 'n/a' in grip" in text
    assert [str(c) for c in yaml.safe_load(text)["data"]["redcap"]["missing_data_codes"]] == ["-999", "missing", "NASK", "UNK"]
    assert yaml.safe_load(text)["data"]["redcap"]["events"] == {"screening_arm_1": "screening", "baseline_arm_1": "baseline",
                                                                 "week_4_arm_1": "week_4", "week_8_arm_1": "week_8"}
    # without an export the list is empty and marked CHECK; events stay TODO
    bare = draft_plan(parsed, "export.csv", "dictionary.csv")
    assert "missing_data_codes: []  # CHECK" in bare and "events: {}  # TODO" in bare
