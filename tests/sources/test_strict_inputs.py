"""Strict inputs: what used to be accepted silently is an error naming file, row, column and value.

* a column name repeated in a data file's header (pandas would rename the second ``x`` to ``x.1``
  and it would never be read), in every reader: CSV, Excel, Parquet, the REDCap export and data
  dictionary, ADaM files, adverse events and the effects tables of ``escalc`` and ``meta``;
* a date written ``YYYY-MM-DD`` that names no calendar day (``2023-02-30``), which
  ``to_datetime(errors="coerce")`` would turn into a missing value: participants' ``enrolled_on``
  (native, REDCap and ADaM sources), adverse-event ``onset_date`` and REDCap date, datetime and
  time fields.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from analysis.checks.adverse_events import validate_adverse_events
from analysis.core.dates import impossible_dates
from analysis.core.errors import DataError
from analysis.pipeline import load_trial
from analysis.plan import load_plan
from analysis.sources.files import read_measurements, read_participants
from analysis.sources.redcap import read_dictionary
from analysis.sources.tables import read_csv_text
from tests.conftest import SMALL_MEASUREMENTS, SMALL_PARTICIPANTS, SMALL_PLAN
from tests.sources.test_redcap import DICTIONARY, EXPORT, PLAN

UNIQUE = "column names must be unique"
REAL_DATE = "must be a real calendar date (YYYY-MM-DD)"


@pytest.fixture
def project(tmp_path: Path):
    """The small REDCap project of tests/sources/test_redcap.py; keyword arguments replace a file."""

    def write(plan: str = PLAN, export: str = EXPORT, dictionary: str = DICTIONARY) -> Path:
        (tmp_path / "export.csv").write_text(export, encoding="utf-8")
        (tmp_path / "dictionary.csv").write_text(dictionary, encoding="utf-8")
        (tmp_path / "plan.yaml").write_text(plan, encoding="utf-8")
        return tmp_path / "plan.yaml"

    return write


def _failures(call) -> pd.DataFrame:
    with pytest.raises(DataError) as caught:
        call()
    return caught.value.failures


def _only(failures: pd.DataFrame) -> dict:
    assert len(failures) == 1, failures
    return failures.iloc[0].to_dict()


# ------------------------------------------------------------------ repeated column names


def test_repeated_csv_header_is_named_with_row_1_and_its_positions(small_trial):
    participants = SMALL_PARTICIPANTS.replace("age,disposition", "age,disposition,age", 1)
    participants = "\n".join(line + (",41" if i else "") for i, line in enumerate(participants.splitlines())) + "\n"
    failure = _only(_failures(lambda: read_participants(load_plan(small_trial(participants=participants)))))
    assert Path(failure["file"]).name == "participants.csv"
    assert (failure["row"], failure["column"], failure["rule"], failure["value"]) == (1, "age", UNIQUE, "columns 3, 5")


def test_repeated_header_in_measurements_is_named(small_trial):
    measurements = SMALL_MEASUREMENTS.replace("outcome,value", "outcome,value,value", 1)
    measurements = "\n".join(line + (",1" if i else "") for i, line in enumerate(measurements.splitlines())) + "\n"
    failure = _only(_failures(lambda: read_measurements(load_plan(small_trial(measurements=measurements)))))
    assert (Path(failure["file"]).name, failure["column"], failure["rule"]) == ("measurements.csv", "value", UNIQUE)


def test_names_that_repeat_once_stripped_of_spaces_are_repeated(small_trial):
    participants = SMALL_PARTICIPANTS.replace("age,disposition", "age,disposition, age", 1)
    participants = "\n".join(line + (",41" if i else "") for i, line in enumerate(participants.splitlines())) + "\n"
    assert _only(_failures(lambda: read_participants(load_plan(small_trial(participants=participants)))))["column"] == "age"


def test_every_repeated_name_is_listed(small_trial):
    header = "participant_id,arm,age,disposition,arm,age,age"
    rows = [line + ",T,1,2" for line in SMALL_PARTICIPANTS.splitlines()[1:]]
    failures = _failures(lambda: read_participants(load_plan(small_trial(participants="\n".join([header, *rows]) + "\n"))))
    assert failures.set_index("column")["value"].to_dict() == {"arm": "columns 2, 5", "age": "columns 3, 6, 7"}


def test_empty_header_cells_are_not_repeated_names(small_trial):
    """Spreadsheets often save trailing empty columns ("a,b,,"): those are not names."""
    participants = "\n".join(line + ",," for line in SMALL_PARTICIPANTS.splitlines()) + "\n"
    _raw, frame = read_participants(load_plan(small_trial(participants=participants)))
    assert frame["participant_id"].tolist() == ["P1", "P2", "P3", "P4"]


def test_repeated_header_in_an_excel_sheet(small_trial, tmp_path):
    from openpyxl import Workbook

    book = Workbook()
    for line in SMALL_PARTICIPANTS.replace("age,disposition", "age,age", 1).splitlines():
        book.active.append(line.split(","))
    book.save(tmp_path / "participants.xlsx")
    plan = small_trial(plan=SMALL_PLAN.replace("path: participants.csv", "path: participants.xlsx"))
    failure = _only(_failures(lambda: read_participants(load_plan(plan))))
    assert (Path(failure["file"]).name, failure["row"], failure["column"], failure["rule"]) == (
        "participants.xlsx", 1, "age", UNIQUE)


def test_repeated_column_in_a_parquet_file(small_trial, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table([["P1", "P2"], ["T", "C"], ["completed", "completed"], ["x", "y"]],
                     names=["participant_id", "arm", "disposition", "arm"])
    pq.write_table(table, tmp_path / "participants.parquet")
    plan = small_trial(plan=SMALL_PLAN.replace("path: participants.csv", "path: participants.parquet"))
    failure = _only(_failures(lambda: read_participants(load_plan(plan))))
    assert (failure["column"], failure["rule"], failure["value"]) == ("arm", UNIQUE, "columns 2, 4")


def test_repeated_field_in_a_redcap_export(project):
    export = EXPORT.replace("record_id,redcap_event_name,arm", "record_id,redcap_event_name,pain", 1)
    failure = _only(_failures(lambda: load_trial(project(export=export))))
    assert (Path(failure["file"]).name, failure["row"], failure["column"], failure["rule"]) == ("export.csv", 1, "pain", UNIQUE)


def test_repeated_column_in_a_redcap_dictionary(tmp_path):
    header, rest = DICTIONARY.split("\n", 1)
    path = tmp_path / "dictionary.csv"
    path.write_text(header.replace("Field Note", "Field Label", 1) + "\n" + rest, encoding="utf-8")
    failure = _only(_failures(lambda: read_dictionary(path)))
    assert (failure["row"], failure["column"], failure["rule"]) == (1, "Field Label", UNIQUE)


def test_repeated_variable_in_an_adam_file(tmp_path):
    from tests.test_bad_inputs import SOURCE_DATA, source_files

    files = source_files("adam")
    header, rest = files["adsl.csv"].split("\n", 1)
    (tmp_path / "adsl.csv").write_text(header + ",AGE\n" + "\n".join(r + ",1" for r in rest.splitlines()) + "\n",
                                       encoding="utf-8")
    (tmp_path / "adbds.csv").write_text(files["adbds.csv"], encoding="utf-8")
    plan = tmp_path / "plan.yaml"
    plan.write_text(SMALL_PLAN.replace(
        "data:\n  participants:\n    path: participants.csv\n  measurements:\n    path: measurements.csv\n",
        SOURCE_DATA["adam"]), encoding="utf-8")
    failure = _only(_failures(lambda: load_trial(plan)))
    assert (Path(failure["file"]).name, failure["column"], failure["rule"]) == ("adsl.csv", "AGE", UNIQUE)


@pytest.mark.parametrize("options", [{}, {"keep_default_na": False, "skipinitialspace": False}],
                         ids=["meta", "escalc"])
def test_repeated_column_in_an_effects_table(tmp_path, options):
    path = tmp_path / "effects.csv"
    path.write_text("study,yi,vi,yi\nA,0.5,0.04,0.7\nB,0.2,0.03,0.1\n", encoding="utf-8")
    failure = _only(_failures(lambda: read_csv_text(path, **options)))
    assert (failure["row"], failure["column"], failure["rule"], failure["value"]) == (1, "yi", UNIQUE, "columns 2, 4")


# ------------------------------------------------------------------ impossible dates


def test_impossible_dates_are_those_of_the_right_form_naming_no_day():
    values = pd.Series(["2024-02-29", "2023-02-29", "2023-02-30", "2023-13-01", "2023-04-31", "2023-00-10",
                        "2023-01-01", None, float("nan"), "09/01/2023", "2023-1-9"])
    assert impossible_dates(values).tolist() == [False, True, True, True, True, True, False, False, False, False, False]


def test_impossible_times_and_date_times():
    assert impossible_dates(pd.Series(["2023-01-01 23:59", "2023-01-01 24:00", "2023-02-30 10:00"]),
                            "%Y-%m-%d %H:%M").tolist() == [False, True, True]
    assert impossible_dates(pd.Series(["09:30", "25:10", "10:61"]), "%H:%M").tolist() == [False, True, True]


def _dated(dates: dict[int, str]) -> str:
    lines = SMALL_PARTICIPANTS.splitlines()
    out = [lines[0] + ",enrolled_on"]
    out += [f"{line},{dates.get(row, '2023-01-0' + str(row))}" for row, line in enumerate(lines[1:], start=2)]
    return "\n".join(out) + "\n"


@pytest.mark.parametrize("bad", ["2023-02-30", "2023-13-01", "2023-04-31", "2023-02-29"])
def test_impossible_enrolment_date_is_a_failure_naming_row_column_and_value(small_trial, bad):
    failures = _failures(lambda: load_trial(small_trial(participants=_dated({3: bad}))))
    failure = _only(failures)
    assert (Path(failure["file"]).name, failure["row"], failure["column"], failure["rule"], failure["value"]) == (
        "participants.csv", 3, "enrolled_on", REAL_DATE, bad)


def test_impossible_dates_are_all_listed_with_the_plans_column_name(small_trial):
    plan = SMALL_PLAN.replace("    path: participants.csv\n", "    path: participants.csv\n    columns: {enrolled_on: randdt}\n")
    participants = _dated({2: "2023-02-30", 5: "2023-06-31"}).replace(",enrolled_on", ",randdt", 1)
    failures = _failures(lambda: load_trial(small_trial(plan=plan, participants=participants)))
    assert failures[["row", "column", "value"]].values.tolist() == [[2, "randdt", "2023-02-30"], [5, "randdt", "2023-06-31"]]


def test_leap_day_and_empty_dates_stay_valid(small_trial):
    trial = load_trial(small_trial(participants=_dated({2: "2024-02-29", 3: ""})))
    dates = trial.participants.set_index("participant_id")["enrolled_on"]
    assert dates["P1"] == pd.Timestamp("2024-02-29") and pd.isna(dates["P2"])


def test_impossible_onset_date_of_an_adverse_event():
    people = pd.DataFrame({"participant_id": ["T1", "C1"], "arm": ["treatment", "control"]})
    frame = pd.DataFrame({"participant_id": ["T1", "C1", "T1"], "term": ["Back pain"] * 3, "category": ["MSK"] * 3,
                          "serious": ["no"] * 3, "onset_date": ["2023-03-01", "2023-02-30", None]},
                         index=pd.RangeIndex(2, 5, name="row"))
    failure = _only(_failures(lambda: validate_adverse_events(frame, people, "adverse_events.csv")))
    assert (failure["row"], failure["column"], failure["rule"], failure["value"]) == (3, "onset_date", REAL_DATE, "2023-02-30")
    assert validate_adverse_events(frame.drop(index=3), people)["onset_date"].notna().sum() == 1


def _with_date_field(validation: str) -> tuple[str, str]:
    dictionary = DICTIONARY + f"visit_date,visit,,text,Visit date,,,{validation},,,,,,,,,,\n"
    export = EXPORT.replace("pain,visit_complete", "pain,visit_date,visit_complete", 1)
    lines = export.splitlines()
    lines[1:] = [line[: line.rfind(",")] + "," + line[line.rfind(",") :] for line in lines[1:]]
    return dictionary, "\n".join(lines) + "\n"


@pytest.mark.parametrize(
    ("validation", "bad", "rule"),
    [("date_ymd", "2023-02-30", "must be a real calendar date (YYYY-MM-DD)"),
     ("date_dmy", "2023-13-01", "must be a real calendar date (YYYY-MM-DD)"),
     ("datetime_ymd", "2023-02-30 10:00", "must be a real date and time (YYYY-MM-DD HH:MM)"),
     ("time", "25:00", "must be a real time of day (HH:MM)")],
)
def test_impossible_redcap_date_field_is_a_failure(project, validation, bad, rule):
    dictionary, export = _with_date_field(validation)
    lines = export.splitlines()
    assert lines[3].endswith(",,2")  # P1 at week 4 (file row 4), visit_date empty
    lines[3] = lines[3][: -len(",,2")] + f",{bad},2"
    export = "\n".join(lines) + "\n"
    failure = _only(_failures(lambda: load_trial(project(export=export, dictionary=dictionary))))
    assert (Path(failure["file"]).name, failure["row"], failure["column"], failure["rule"], failure["value"]) == (
        "export.csv", 4, "visit_date", rule, bad)


def test_valid_redcap_dates_pass(project):
    dictionary, export = _with_date_field("date_ymd")
    lines = export.splitlines()
    lines[3] = lines[3][: -len(",,2")] + ",2024-02-29,2"
    trial = load_trial(project(export="\n".join(lines) + "\n", dictionary=dictionary))
    assert len(trial.participants) == 2

