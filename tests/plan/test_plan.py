"""The study plan: typed loading and one clear sentence for every kind of mistake."""

from __future__ import annotations

import pytest

from analysis.core.errors import PlanError
from analysis.plan import load_plan, parse_plan
from tests.conftest import EXAMPLE_PLAN, SMALL_PLAN


def test_example_plan_loads_with_its_declarations():
    loaded = load_plan(EXAMPLE_PLAN)
    plan = loaded.plan
    assert plan.study.simulated is True
    assert plan.visits.labels == ["baseline", "week4", "week8", "week12"]
    assert plan.visits.weeks == {"baseline": 0.0, "week4": 4.0, "week8": 8.0, "week12": 12.0}
    assert plan.primary_outcome.name == "pain_interference"
    assert plan.arms.code_to_arm() == {"PLR": "treatment", "PT": "control"}
    assert plan.outcome("trunk_rotation").improvement_sign == 1
    assert plan.outcome("pain_intensity").improvement_sign == -1
    assert len(loaded.sha256) == 64


def test_unknown_key_names_the_key_and_the_allowed_ones():
    text = SMALL_PLAN.replace("  title: Small test trial", "  title: Small test trial\n  titel: typo")
    with pytest.raises(PlanError) as caught:
        parse_plan(text, "plan.yaml")
    message = str(caught.value)
    assert "unknown key 'study.titel'" in message
    assert "allowed keys here: id, title, design" in message


def test_missing_required_key():
    text = SMALL_PLAN.replace("seed: 7\n", "")
    with pytest.raises(PlanError, match="missing required key 'seed'"):
        parse_plan(text)


def test_wrong_value_is_named_with_what_was_found():
    text = SMALL_PLAN.replace("better: lower", "better: smaller")
    with pytest.raises(PlanError) as caught:
        parse_plan(text)
    assert "outcomes.0.better" in str(caught.value)
    assert "'smaller'" in str(caught.value)


@pytest.mark.parametrize("value", ["unknown", "Unknown", "TODO", ""])
def test_an_unset_direction_of_improvement_stops_with_one_sentence(value):
    # what `trialkit plan-from-redcap` writes: no command runs until the direction is set
    text = SMALL_PLAN.replace("better: lower", f"better: {value}")
    with pytest.raises(PlanError) as caught:
        parse_plan(text, "plan.yaml")
    message = str(caught.value)
    assert message.startswith("plan.yaml: key 'outcomes.0.better': the direction of improvement of outcome 'pain' is not set")
    assert "'better: lower' or 'better: higher'" in message and message.count("\n") == 0


def test_primary_visit_must_be_a_follow_up():
    with pytest.raises(PlanError, match="primary visit 'w12' is not one of the follow-up labels"):
        parse_plan(SMALL_PLAN.replace("primary: w8", "primary: w12"))


def test_code_given_to_both_arms():
    with pytest.raises(PlanError, match=r"codes \['C'\] are given for both arms"):
        parse_plan(SMALL_PLAN.replace("codes: [T]", "codes: [T, C]"))


def test_range_must_be_ordered():
    with pytest.raises(PlanError, match="low < high"):
        parse_plan(SMALL_PLAN.replace("range: [0, 10]", "range: [10, 0]"))


def test_not_yaml_and_not_a_mapping():
    with pytest.raises(PlanError, match="not valid YAML at line"):
        parse_plan("study: [unclosed\n")
    with pytest.raises(PlanError, match="must be a YAML mapping"):
        parse_plan("- a\n- b\n")


def test_yaml_tags_are_not_executed():
    with pytest.raises(PlanError, match="not valid YAML"):
        parse_plan("study: !!python/object/apply:os.system ['echo unsafe']\n")


def test_missing_plan_file(tmp_path):
    with pytest.raises(PlanError, match="does not exist"):
        load_plan(tmp_path / "nope.yaml")
