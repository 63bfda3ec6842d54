"""NIH inclusion enrollment tables against hand-counted small examples."""

import pandas as pd
import pytest

from analysis.core.errors import DataError
from analysis.plan import AgeGroup, NihMapping
from analysis.reporting.nih import age_table, enrollment_table

MAPPING = NihMapping(
    race={"W": "White", "B": "Black or African American", "A": "Asian", "M": "More than One Race", "": "Unknown or Not Reported"},
    ethnicity={"N": "Not Hispanic or Latino", "H": "Hispanic or Latino", "U": "Unknown/Not Reported Ethnicity"},
    sex={"F": "Female", "M": "Male", "U": "Unknown/Not Reported"},
)


def people(**columns):
    n = len(next(iter(columns.values())))
    return pd.DataFrame({"participant_id": [f"P{i}" for i in range(n)], "arm": ["treatment"] * n} | columns)


def test_enrollment_table_hand_counted():
    frame = people(
        race=["W", "W", "W", "B", "A", None],
        ethnicity=["N", "N", "H", "N", "U", "N"],
        sex=["F", "M", "F", "F", "U", "M"],
    )
    table = enrollment_table(frame, MAPPING).set_index("Racial Categories")
    assert list(table.index) == [
        "American Indian/Alaska Native", "Asian", "Native Hawaiian or Other Pacific Islander",
        "Black or African American", "White", "More than One Race", "Unknown or Not Reported", "Total",
    ]
    assert list(table.columns) == [
        "Not Hispanic or Latino | Female", "Not Hispanic or Latino | Male", "Not Hispanic or Latino | Unknown/Not Reported",
        "Hispanic or Latino | Female", "Hispanic or Latino | Male", "Hispanic or Latino | Unknown/Not Reported",
        "Unknown/Not Reported Ethnicity | Female", "Unknown/Not Reported Ethnicity | Male",
        "Unknown/Not Reported Ethnicity | Unknown/Not Reported", "Total",
    ]
    assert table.loc["White", "Not Hispanic or Latino | Female"] == 1
    assert table.loc["White", "Not Hispanic or Latino | Male"] == 1
    assert table.loc["White", "Hispanic or Latino | Female"] == 1
    assert table.loc["White", "Total"] == 3
    assert table.loc["Black or African American", "Not Hispanic or Latino | Female"] == 1
    assert table.loc["Asian", "Unknown/Not Reported Ethnicity | Unknown/Not Reported"] == 1
    assert table.loc["Unknown or Not Reported", "Not Hispanic or Latino | Male"] == 1  # missing race mapped via ''
    assert table.loc["Total", "Not Hispanic or Latino | Female"] == 2
    assert table.loc["Total", "Total"] == 6
    assert table.loc["Native Hawaiian or Other Pacific Islander"].sum() == 0
    assert int(table.drop(index="Total").drop(columns="Total").to_numpy().sum()) == 6


def test_unmapped_codes_are_listed_not_made_unknown():
    frame = people(race=["W", "Other", "Pacific"], ethnicity=["N", "N", "X"], sex=["F", "M", "F"])
    with pytest.raises(DataError) as info:
        enrollment_table(frame, MAPPING, source="p.csv")
    message = str(info.value)
    assert "race: 'Other', 'Pacific'" in message and "ethnicity: 'X'" in message
    failures = info.value.failures
    assert failures[["row", "column", "value"]].values.tolist() == [[3, "race", "Other"], [4, "race", "Pacific"], [4, "ethnicity", "X"]]
    assert set(failures["file"]) == {"p.csv"} and set(failures["rule"]) == {"nih_mapping"}


def test_missing_value_needs_an_explicit_mapping():
    no_blank = NihMapping(race={"W": "White"}, ethnicity={"N": "Not Hispanic or Latino"}, sex={"F": "Female"})
    frame = people(race=["W", None], ethnicity=["N", "N"], sex=["F", "F"])
    with pytest.raises(DataError, match="race: ''"):
        enrollment_table(frame, no_blank)


def test_mapping_target_must_be_a_category():
    with pytest.raises(ValueError, match="Whyte"):
        NihMapping(race={"W": "Whyte"}, ethnicity={}, sex={})


AGES = [10, 20, 30, 40, 50, 60, 61, 62, 25, 70, 71, None]
SEXES = ["F", "F", "F", "F", "F", "F", "M", "M", "M", "F", "M", "F"]


def test_age_table_is_exact_for_nih():
    frame = people(age=AGES, sex=SEXES, race=["W"] * 12, ethnicity=["N"] * 12)
    table = age_table(frame, MAPPING).set_index("Age group")
    # 18-64: F = 20, 30, 40, 50, 60 (5); M = 61, 62, 25 (3); total 8. NIH wants exact counts.
    assert table.loc["18-64 years"].tolist() == ["5", "3", "0", "8"]
    assert table.loc["<18 years"].tolist() == ["1", "0", "0", "1"]
    assert table.loc["65+ years"].tolist() == ["1", "1", "0", "2"]
    assert table.loc["Unknown/Not Reported age"].tolist() == ["1", "0", "0", "1"]


def test_age_table_public_copy_hides_small_cells_and_their_complements():
    frame = people(age=AGES, sex=SEXES, race=["W"] * 12, ethnicity=["N"] * 12)
    table = age_table(frame, MAPPING, suppress_below=5).set_index("Age group")
    # Worked by hand: small cells F<18, M18-64, F65+, M65+, F-unknown; each row needs a second
    # hidden cell (M<18 = 0, F18-64 = 5, M-unknown = 0), after which both sex columns are hidden
    # throughout. The old rule ("<5" with row total 2 for 65+) let 65+ be read off the totals.
    for row, total in (("<18 years", "1"), ("18-64 years", "8"), ("65+ years", "2"), ("Unknown/Not Reported age", "1")):
        assert table.loc[row].tolist() == ["*", "*", "0", total]


def test_age_outside_groups_is_an_error():
    groups = [AgeGroup(label="18-64", low=18, high=65)]
    frame = people(age=[30, 70], sex=["F", "M"], race=["W", "W"], ethnicity=["N", "N"])
    with pytest.raises(DataError, match="none of the age groups"):
        age_table(frame, MAPPING, groups)
