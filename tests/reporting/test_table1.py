"""Table 1 against a hand-worked example (means, SDs, quartiles, percents, standardised differences)."""

import math

import numpy as np
import pandas as pd
import pytest

from analysis.core.errors import UsageError
from analysis.plan import Table1Variable
from analysis.reporting.table1 import (
    apply_labels,
    file_value_labels,
    standardised_differences,
    table1_display,
    table1_stats,
)

VARS = [
    Table1Variable(name="age", label="Age (years)", kind="continuous"),
    Table1Variable(name="sex", label="Sex", kind="categorical"),
    Table1Variable(name="race", label="Race", kind="categorical"),
]


@pytest.fixture
def people():
    return pd.DataFrame(
        {
            "participant_id": ["T1", "T2", "T3", "T4", "C1", "C2", "C3"],
            "arm": ["treatment"] * 4 + ["control"] * 3,
            "age": [30.0, 40.0, 50.0, np.nan, 20.0, 30.0, 40.0],
            "sex": ["F", "F", "M", "M", "F", "M", "M"],
            "race": ["A", "A", "B", "C", "A", "B", "B"],
        }
    )


def _get(stats, variable, row, group, level=None):
    part = stats[(stats["variable"] == variable) & (stats["row"] == row) & (stats["group"] == group)]
    if level is not None:
        part = part[part["level"] == level]
    assert len(part) == 1
    return part.iloc[0]


def test_continuous_summary_hand_worked(people):
    stats = table1_stats(people, VARS)
    t = _get(stats, "age", "summary", "treatment")
    # treatment ages 30, 40, 50 (one missing): mean 40, SD 10, quartiles (type 7) 35 and 45
    assert (t["n"], t["mean"], t["sd"], t["median"], t["q1"], t["q3"]) == (3, 40.0, 10.0, 40.0, 35.0, 45.0)
    o = _get(stats, "age", "summary", "overall")
    # 20, 30, 30, 40, 40, 50: mean 35, SD sqrt(550 / 5), Q1 = 30, Q3 = 40
    assert o["mean"] == 35.0 and o["sd"] == pytest.approx(math.sqrt(110.0), rel=1e-12)
    assert (o["median"], o["q1"], o["q3"]) == (35.0, 30.0, 40.0)
    assert _get(stats, "age", "missing", "treatment")["n"] == 1
    assert _get(stats, "age", "missing", "control")["n"] == 0
    assert _get(stats, "age", "missing", "overall")["n"] == 1


def test_categorical_counts_and_percents(people):
    stats = table1_stats(people, VARS)
    f_c = _get(stats, "sex", "level", "control", "F")
    assert (f_c["n"], f_c["denominator"]) == (1, 3)
    assert f_c["percent"] == pytest.approx(100 / 3)
    b_o = _get(stats, "race", "level", "overall", "B")
    assert (b_o["n"], b_o["percent"]) == (3, pytest.approx(300 / 7))
    n_rows = stats[stats["row"] == "N"].set_index("group")["n"]
    assert dict(n_rows) == {"treatment": 4, "control": 3, "overall": 7}


def test_standardised_differences_hand_worked(people):
    smd = standardised_differences(people, VARS)
    overall = smd[smd["level"].isna()].set_index("variable")["std_diff"]
    # age: (40 - 30) / sqrt((10^2 + 10^2) / 2) = 1
    assert overall["age"] == pytest.approx(1.0, rel=1e-12)
    # sex: p_F 1/2 vs 1/3 -> (1/6) / sqrt((1/4 + 2/9) / 2) = 0.34299717028501764
    assert overall["sex"] == pytest.approx(0.34299717028501764, rel=1e-9)
    # race (Yang & Dalton): T = (1/4, 1/4), C = (2/3, 0) for B, C; S = [[59/288, -1/32], [-1/32, 3/32]];
    # (T - C)' S^-1 (T - C) = 26 / 21
    assert overall["race"] == pytest.approx(math.sqrt(26 / 21), rel=1e-9)
    levels = smd[smd["level"].notna()].set_index(["variable", "level"])["std_diff"]
    assert levels[("sex", "M")] == pytest.approx(-0.34299717028501764, rel=1e-9)
    # race C: p 1/4 vs 0 -> (1/4) / sqrt((3/16) / 2)
    assert levels[("race", "C")] == pytest.approx(0.25 / math.sqrt(3 / 32), rel=1e-9)


def test_display_layout(people):
    table = table1_display(people, VARS, {"treatment": "PLR", "control": "PT"})
    assert list(table.columns) == ["Characteristic", "PLR (N = 4)", "PT (N = 3)", "Overall (N = 7)", "Std. difference"]
    rows = table.set_index("Characteristic")
    assert rows.loc["  Mean (SD)", "PLR (N = 4)"] == "40.0 (10.0)"
    assert rows.loc["  Median [Q1, Q3]", "PLR (N = 4)"] == "40.0 [35.0, 45.0]"
    assert rows.loc["Age (years)", "Std. difference"] == "1.00"
    assert table["Characteristic"].tolist()[:5] == ["Age (years)", "  Mean (SD)", "  Median [Q1, Q3]", "  Missing", "Sex, n (%)"]
    assert table[table["Characteristic"] == "  F"]["PT (N = 3)"].item() == "1 (33.3%)"
    # Variables appear in plan order, each with a Missing line.
    assert (table["Characteristic"] == "  Missing").sum() == 3


def test_unknown_variable_is_a_clear_error(people):
    with pytest.raises(UsageError, match=r"\['bmi'\]"):
        table1_stats(people, [Table1Variable(name="bmi", label="BMI", kind="continuous")])


def test_labels_replace_codes_in_the_declared_order(people):
    labels = {"sex": {"M": "Male", "F": "Female"}, "race": {"A": "Asian", "B": "Black or African American", "Z": "Other"}}
    table = table1_display(apply_labels(people, VARS, labels), VARS, {"treatment": "PLR", "control": "PT"})
    lines = table["Characteristic"].tolist()
    # sex: Male before Female, as the plan lists them; race: C has no label and comes after the
    # labelled levels; Z is declared but nobody has it: a zero line
    assert lines[lines.index("Sex, n (%)") + 1:lines.index("Sex, n (%)") + 3] == ["  Male", "  Female"]
    race = lines[lines.index("Race, n (%)") + 1:]
    assert race == ["  Asian", "  Black or African American", "  Other", "  C", "  Missing"]
    rows = table.set_index("Characteristic")
    # hand-counted: treatment has T1, T2 female of 4; control C1 female of 3
    assert rows.loc["  Female", "PLR (N = 4)"] == "2 (50.0%)" and rows.loc["  Female", "PT (N = 3)"] == "1 (33.3%)"
    assert rows.loc["  Other", "Overall (N = 7)"] == "0 (0.0%)"
    assert rows.loc["  Black or African American", "PT (N = 3)"] == "2 (66.7%)"
    # relabelling does not change the statistics: same standardised difference as with the codes
    plain = table1_display(people, VARS).set_index("Characteristic")
    assert rows.loc["Sex, n (%)", "Std. difference"] == plain.loc["Sex, n (%)", "Std. difference"]


def test_labels_match_numeric_codes_as_text():
    people = pd.DataFrame({"arm": ["treatment", "control", "control"], "grade": [1.0, 2.0, None]})
    grade = [Table1Variable(name="grade", label="Grade", kind="categorical")]
    shown = apply_labels(people, grade, {"grade": {"1": "Mild", "2": "Moderate"}})
    assert shown["grade"].tolist()[:2] == ["Mild", "Moderate"] and pd.isna(shown["grade"].iloc[2])


def test_file_value_labels_only_for_columns_left_as_codes():
    variables = VARS + [Table1Variable(name="grade", label="Grade", kind="categorical")]
    raw = {"SEX": {"1": "Female"}, "GRADE": {"1": "Mild"}, "AGE": {"99": "unknown"}}
    found = file_value_labels(raw, {"sex": "SEX", "grade": "GRADE", "age": "AGE"}, variables, read_as_labels=["sex"])
    assert found == {"grade": {"1": "Mild"}}  # sex was read as labels already; age is continuous
