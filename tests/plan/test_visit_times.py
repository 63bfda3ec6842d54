"""Visit times in the plan (analysis/plan/study.py): ``visits.time_unit`` days / weeks / months with
``time:`` per follow-up, ``week:`` still accepted for weeks; and ``na_values`` per data file
(analysis/plan/sources.py)."""

from __future__ import annotations

import pytest

from analysis.cli import run_cli
from analysis.core.errors import PlanError
from analysis.plan import DEFAULT_NA_VALUES, FORMATS, SUFFIX_FORMAT, DataFile, parse_plan
from tests.conftest import SMALL_PLAN

WEEKS = "  followup:\n    - {label: w4, week: 4}\n    - {label: w8, week: 8}\n"


def _with_visits(unit: str | None, followup: str) -> str:
    lines = ("  time_unit: " + unit + "\n" if unit else "") + followup
    return SMALL_PLAN.replace(WEEKS, lines)


def test_months_with_decimals_give_times_weeks_and_days():
    plan = parse_plan(_with_visits("months", "  followup:\n    - {label: w4, time: 1.5}\n    - {label: w8, time: 8}\n"))
    visits = plan.visits
    assert visits.time_unit == "months" and visits.time_column == "visit_month" and visits.time_label == "Month"
    assert visits.times == {"base": 0.0, "w4": 1.5, "w8": 8.0}
    # a month is 365.25 / 12 days (30.4375), by hand: 8 months = 243.5 days = 34.7857 weeks
    assert visits.days == {"base": 0.0, "w4": 45.65625, "w8": 243.5}
    assert visits.weeks["w8"] == pytest.approx(243.5 / 7, rel=1e-15)


def test_days_and_the_default_weeks():
    days = parse_plan(_with_visits("days", "  followup:\n    - {label: w4, time: 14}\n    - {label: w8, time: 56}\n")).visits
    assert days.time_column == "visit_day" and days.weeks == {"base": 0.0, "w4": 2.0, "w8": 8.0}
    weeks = parse_plan(SMALL_PLAN).visits  # 'week:' as before: unit weeks, times = weeks
    assert weeks.time_unit == "weeks" and weeks.time_column == "visit_week" and weeks.time_label == "Week"
    assert weeks.times == weeks.weeks == {"base": 0.0, "w4": 4.0, "w8": 8.0}
    mixed = parse_plan(_with_visits(None, "  followup:\n    - {label: w4, time: 4}\n    - {label: w8, week: 8.5}\n")).visits
    assert mixed.weeks == {"base": 0.0, "w4": 4.0, "w8": 8.5}


@pytest.mark.parametrize(
    ("unit", "followup", "expected"),
    [
        ("months", "  followup:\n    - {label: w4, week: 4}\n    - {label: w8, time: 8}\n",
         "follow-up visit(s) ['w4'] give 'week' but time_unit is months; give 'time' in months"),
        (None, "  followup:\n    - {label: w4, time: 4, week: 4}\n    - {label: w8, time: 8}\n",
         "follow-up visit 'w4' gives both 'time' and 'week'; give 'time' only"),
        (None, "  followup:\n    - {label: w4}\n    - {label: w8, time: 8}\n",
         "follow-up visit 'w4' needs its 'time' since baseline"),
        ("months", "  followup:\n    - {label: w4, time: 8}\n    - {label: w8, time: 3}\n",
         "follow-up visits must be listed in strictly increasing time order, found [8.0, 3.0]"),
        ("month", "  followup:\n    - {label: w4, time: 4}\n    - {label: w8, time: 8}\n",
         "key 'visits.time_unit': Input should be 'days', 'weeks' or 'months' (found 'month'); did you mean 'months'?"),
    ],
    ids=["week-with-months", "both", "neither", "order", "unit-typo"],
)
def test_visit_time_mistakes_are_plan_errors(unit, followup, expected):
    with pytest.raises(PlanError) as caught:
        parse_plan(_with_visits(unit, followup), "plan.yaml")
    assert expected in str(caught.value)


def test_na_values_default_and_yaml_numbers():
    assert DataFile(path="x.csv").na_values == ["", "NA", "."] == list(DEFAULT_NA_VALUES)
    assert DataFile(path="x.csv", na_values=[-99, -99.0, "N/A", 9.5]).na_values == ["-99", "-99", "N/A", "9.5"]
    plan = SMALL_PLAN.replace("    path: participants.csv\n", "    path: participants.csv\n    na_values: [NO]\n")
    with pytest.raises(PlanError) as caught:  # YAML reads NO as false: say so instead of reading 'False'
        parse_plan(plan, "plan.yaml")
    assert "key 'data.participants.na_values'" in str(caught.value) and "quote each missing-value code" in str(caught.value)


def test_stata_is_a_format():
    assert "dta" in FORMATS and SUFFIX_FORMAT[".dta"] == "dta"
    assert DataFile(path="trial.dta").resolved_format() == "dta"


def test_every_plan_problem_is_listed_at_once_with_suggestions(tmp_path, capsys):
    plan = (SMALL_PLAN.replace("  title: Small test trial\n", "  titel: Small test trial\n")
            .replace("    better: lower\n", "    better: lowr\n")
            .replace("  baseline: base\n", "  baseline: base\n  time_unit: monhts\n")
            .replace("seed: 7\n", "seed: 7\nanalysis: {primary_modle: mmrm}\n"))
    (tmp_path / "plan.yaml").write_text(plan)
    assert run_cli(["validate", str(tmp_path / "plan.yaml")]) == 2
    err = capsys.readouterr().err
    lines = [line.strip() for line in err.strip().splitlines()]
    assert lines[0].endswith("4 problems:"), err
    # the allowed keys are listed after each unknown one (cut here: other keys may be added)
    assert [line.split(" allowed keys here:")[0] for line in lines[1:]] == [
        "- unknown key 'study.titel' (found 'Small test trial'); did you mean 'title'?",
        "- unknown key 'analysis.primary_modle' (found 'mmrm'); did you mean 'primary_model'?",
        "- key 'visits.time_unit': Input should be 'days', 'weeks' or 'months' (found 'monhts'); did you mean 'months'?",
        "- key 'outcomes.0.better': Input should be 'lower' or 'higher' (found 'lowr'); did you mean 'lower'?",
    ]
    assert "allowed keys here: id, title, design, simulated, description" in lines[1]
