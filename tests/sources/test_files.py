"""Reading raw files: values as stored, file row numbers kept, every unreadable file named."""

from __future__ import annotations

import pandas as pd
import pytest

from analysis.core.errors import DataError
from analysis.plan import load_plan
from analysis.sources.files import read_measurements, read_participants
from tests.conftest import SMALL_PARTICIPANTS, SMALL_PLAN


def test_csv_is_read_as_text_with_file_row_numbers(small_trial):
    loaded = load_plan(small_trial())
    raw, frame = read_participants(loaded)
    assert raw.format == "csv"
    assert frame.index.tolist() == [2, 3, 4, 5]
    assert frame.loc[2, "age"] == "40"  # not converted by the reader


def test_long_measurements_keep_source_row_and_column(small_trial):
    _raw, long = read_measurements(load_plan(small_trial()))
    assert long.columns.tolist() == ["participant_id", "visit", "outcome", "value", "source_column", "source_row"]
    assert long["source_row"].tolist() == list(range(2, 13))
    assert (long["source_column"] == "value").all()


def test_wide_by_outcome_is_reshaped(small_trial):
    plan = SMALL_PLAN.replace(
        "    path: measurements.csv\n",
        "    path: measurements.csv\n    layout: wide\n    outcome_columns: {pain: nrs}\n    columns: {participant_id: id, visit: when}\n",
    )
    wide = "id,when,nrs\nP1,base,6\nP1,w4,4\n"
    _raw, long = read_measurements(load_plan(small_trial(plan=plan, measurements=wide)))
    assert long[["participant_id", "visit", "outcome", "value", "source_row", "source_column"]].values.tolist() == [
        ["P1", "base", "pain", "6", 2, "nrs"],
        ["P1", "w4", "pain", "4", 3, "nrs"],
    ]


def test_wide_by_outcome_and_visit_is_reshaped(small_trial):
    plan = SMALL_PLAN.replace(
        "    path: measurements.csv\n",
        "    path: measurements.csv\n    layout: wide\n    cell_columns: {pain: {base: p0, w4: p4}}\n",
    )
    wide = "participant_id,p0,p4\nP1,6,4\nP2,5,\n"
    _raw, long = read_measurements(load_plan(small_trial(plan=plan, measurements=wide)))
    assert long[["participant_id", "visit", "source_row", "source_column"]].values.tolist() == [
        ["P1", "base", 2, "p0"],
        ["P1", "w4", 2, "p4"],
        ["P2", "base", 3, "p0"],
        ["P2", "w4", 3, "p4"],
    ]
    assert long["value"].iloc[:3].tolist() == ["6", "4", "5"]
    assert pd.isna(long["value"].iloc[3])


def test_utf8_bom_is_transparent(small_trial):
    loaded = load_plan(small_trial(participants=b"\xef\xbb\xbf" + SMALL_PARTICIPANTS.encode()))
    _raw, frame = read_participants(loaded)
    assert "participant_id" in frame.columns


@pytest.mark.parametrize(
    ("content", "rule", "row"),
    [
        (b"", "file is empty", 1),
        (b"participant_id,arm,age,disposition\n", "file is empty", 1),
        (b"participant_id,arm,age,disposition\nP1,T,40,completed\nP2,C\n", "has 4 fields like the header", 3),
        (b"participant_id;arm;age;disposition\nP1;T;40;completed\n", "delimiter is ','", 1),
        ("participant_id,arm,age,disposition\nP1,T,40,compl\xe9ted\n".encode("latin-1"), "text encoding is utf-8", 2),
    ],
    ids=["empty", "header-only", "truncated", "wrong-delimiter", "latin-1"],
)
def test_unreadable_participants_file_is_a_data_error_naming_file_and_rule(small_trial, content, rule, row):
    loaded = load_plan(small_trial(participants=content))
    with pytest.raises(DataError) as caught:
        read_participants(loaded)
    failures = caught.value.failures
    assert failures["file"].str.endswith("participants.csv").all()
    assert failures["rule"].iloc[0] == rule
    assert failures["row"].iloc[0] == row


def test_missing_required_column_is_named(small_trial):
    loaded = load_plan(small_trial(participants="participant_id,age,disposition\nP1,40,completed\n"))
    with pytest.raises(DataError, match=r"required column\(s\) \['arm'\] not found"):
        read_participants(loaded)


def test_missing_file_named_in_plan(small_trial, tmp_path):
    plan_path = small_trial()
    (tmp_path / "measurements.csv").unlink()
    with pytest.raises(DataError, match="measurements file named in the plan does not exist"):
        read_measurements(load_plan(plan_path))


@pytest.mark.parametrize("suffix", ["parquet", "xlsx", "sav", "xpt"])
def test_binary_formats_read_with_row_numbers(small_trial, tmp_path, suffix):
    frame = pd.DataFrame({"participant_id": ["P1", "P2"], "arm": ["T", "C"], "age": [40.0, 50.0],
                          "disposition": ["completed", "completed"]})
    target = tmp_path / f"participants.{suffix}"
    if suffix == "parquet":
        frame.to_parquet(target)
    elif suffix == "xlsx":
        frame.to_excel(target, index=False)
    else:
        import pyreadstat

        writer = pyreadstat.write_sav if suffix == "sav" else pyreadstat.write_xport
        writer(frame.rename(columns={"participant_id": "participant_id"}), str(target))
    plan = SMALL_PLAN.replace("path: participants.csv", f"path: participants.{suffix}")
    raw, read = read_participants(load_plan(small_trial(plan=plan)))
    assert raw.format == suffix
    assert read["participant_id"].tolist() == ["P1", "P2"]
    assert read.index[0] == (2 if suffix == "xlsx" else 1)
