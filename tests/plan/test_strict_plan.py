"""Strict plans: a key given twice and a non-finite number are one-sentence errors (exit code 2).

``yaml.safe_load`` keeps the last of two equal keys and drops the first without a word, and reads
``.nan`` / ``.inf`` as floats that slip through range checks (a NaN bound switched range checking
off). Both now stop the plan, naming the key (and the lines of a repeated key); YAML anchors and
merge keys still work, and hostile anchor use stays cheap.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from analysis.cli import run_cli
from analysis.core.errors import PlanError
from analysis.plan import parse_plan
from analysis.plan.documents import MAX_LISTED
from analysis.plan.published import parse_published
from tests.conftest import REPO, SMALL_PLAN

PUBLISHED = (REPO / "data" / "studies" / "precision-release-2023.yaml").read_text(encoding="utf-8")
CASE = (REPO / "data" / "studies" / "case-43m.yaml").read_text(encoding="utf-8")
SIMULATION = """\
simulation:
  n_participants: 40
  outcomes:
    pain: {baseline_mean: 6, baseline_sd: 1.5, change_treatment: -3, change_control: -1, change_sd: 2}
"""


def _error(text: str, parse=parse_plan) -> str:
    with pytest.raises(PlanError) as caught:
        parse(text, "plan.yaml")
    message = str(caught.value)
    assert "\n" not in message, message  # one sentence
    return message


def _edit(text: str, old: str, new: str) -> str:
    assert old in text, old
    return text.replace(old, new, 1)


# ------------------------------------------------------------------ keys given twice


@pytest.mark.parametrize(
    ("edit", "key", "lines"),
    [
        (lambda t: t + "seed: 8\n", "seed", "lines 4 and 26"),
        (lambda t: _edit(t, "    better: lower\n", "    better: lower\n    better: higher\n"), "outcomes.0.better", "lines 24 and 25"),
        (lambda t: _edit(t, "  primary: w8\n", "  primary: w8\n  primary: w4\n"), "visits.primary", "lines 18 and 19"),
        (lambda t: _edit(t, "{label: w4, week: 4}", "{label: w4, week: 4, week: 5}"), "visits.followup.0.week", "lines 16 and 16"),
        (lambda t: _edit(t, "    path: participants.csv\n", "    path: participants.csv\n    path: other.csv\n"),
         "data.participants.path", "lines 7 and 8"),
        (lambda t: _edit(t, "mcid: {points: 2, percent: 30}", "mcid: {points: 2, percent: 30, points: 3}"),
         "outcomes.0.mcid.points", "lines 25 and 25"),
    ],
    ids=["top-level", "in-a-list-item", "nested", "flow-mapping", "data-file", "mcid"],
)
def test_a_key_given_twice_is_named_with_both_lines(edit, key, lines):
    message = _error(edit(SMALL_PLAN))
    assert f"key '{key}' is given twice ({lines})" in message
    assert message.startswith("plan.yaml: ")


def test_the_same_name_in_different_mappings_is_fine():
    plan = parse_plan(SMALL_PLAN + "analysis: {ci_level: 0.9}\n", "plan.yaml")  # 'label' appears in many mappings
    assert plan.arms.treatment.label == "Release" and plan.analysis.ci_level == 0.9


def test_a_key_given_twice_in_a_published_results_plan():
    text = _edit(PUBLISHED, "    value: 0.5\n", "    value: 0.5\n    value: 0.6\n")
    assert "key 'assumptions.treatment_fraction.value' is given twice" in _error(text, parse_published)


def test_merge_keys_may_override_what_they_merge():
    text = _edit(SMALL_PLAN, "arms:\n  treatment: {label: Release, codes: [T]}\n  control: {label: Stretching, codes: [C]}\n",
                 "arms:\n  treatment: &arm {label: Release, codes: [T]}\n  control:\n    <<: *arm\n    label: Stretching\n    codes: [C]\n")
    plan = parse_plan(text, "plan.yaml")
    assert (plan.arms.control.label, plan.arms.control.codes) == ("Stretching", ["C"])


def test_merge_keys_do_not_hide_a_key_given_twice():
    text = _edit(SMALL_PLAN, "arms:\n  treatment: {label: Release, codes: [T]}\n  control: {label: Stretching, codes: [C]}\n",
                 "arms:\n  treatment: &arm {label: Release, codes: [T]}\n  control:\n    <<: *arm\n    label: Stretching\n"
                 "    codes: [C]\n    label: Other\n")
    assert "key 'arms.control.label' is given twice" in _error(text)


def test_anchor_expansion_attacks_stay_cheap_and_clear():
    laughs = "x0: &a [1,1,1,1,1,1,1,1,1,1]\n" + "".join(
        f"x{i}: &{chr(97 + i)} [" + ",".join([f"*{chr(96 + i)}"] * 10) + "]\n" for i in range(1, 9))
    for text in (laughs + SMALL_PLAN, _edit(laughs + SMALL_PLAN, "range: [0, 10]", "range: *i"),
                 laughs + SMALL_PLAN + "covariates: *i\n"):
        start = time.perf_counter()
        with pytest.raises(PlanError) as caught:  # every problem at once: one short line each
            parse_plan(text, "plan.yaml")
        assert time.perf_counter() - start < 5
        lines = str(caught.value).splitlines()
        assert "problems:" in lines[0] and len(lines) <= MAX_LISTED + 2, lines[:3]
        assert all(len(line) < 300 for line in lines), max(lines, key=len)
        assert "unknown key 'x8'" in str(caught.value)


def test_a_recursive_alias_is_an_error_not_a_hang():
    assert "key 'seed'" in _error(_edit(SMALL_PLAN, "seed: 7", "seed: &r [*r]"))


def test_tags_are_still_refused():
    assert "not valid YAML" in _error(_edit(SMALL_PLAN, "seed: 7", "seed: !!python/object/apply:os.system ['true']"))


# ------------------------------------------------------------------ non-finite numbers


@pytest.mark.parametrize(
    ("old", "new", "key", "found"),
    [
        ("range: [0, 10]", "range: [0, .nan]", "outcomes.0.range.1", ".nan"),
        ("range: [0, 10]", "range: [-.inf, 10]", "outcomes.0.range.0", "-.inf"),
        ("range: [0, 10]", "range: [0, .inf]", "outcomes.0.range.1", ".inf"),
        ("mcid: {points: 2, percent: 30}", "mcid: {points: .nan, percent: 30}", "outcomes.0.mcid.points", ".nan"),
        ("mcid: {points: 2, percent: 30}", "mcid: {points: 2, percent: .NaN}", "outcomes.0.mcid.percent", ".nan"),
        ("seed: 7", "seed: .nan", "seed", ".nan"),
        ("seed: 7", "seed: .inf", "seed", ".inf"),
        ("{label: w4, week: 4}", "{label: w4, week: .Inf}", "visits.followup.0.week", ".inf"),
    ],
)
def test_a_non_finite_plan_number_is_named(old, new, key, found):
    assert f"key '{key}' must be a finite number (found {found})" in _error(_edit(SMALL_PLAN, old, new))


@pytest.mark.parametrize(
    ("addition", "key"),
    [
        ("analysis: {ci_level: .nan}\n", "analysis.ci_level"),
        ("analysis: {n_boot: .inf}\n", "analysis.n_boot"),
        ("target_enrollment: .inf\n", "target_enrollment"),
        (SIMULATION.replace("baseline_mean: 6", "baseline_mean: .nan"), "simulation.outcomes.pain.baseline_mean"),
        (SIMULATION.replace("change_treatment: -3", "change_treatment: -.inf"), "simulation.outcomes.pain.change_treatment"),
        (SIMULATION.replace("n_participants: 40", "n_participants: 40\n  dropout: .nan"), "simulation.dropout"),
        ("reporting:\n  age_groups:\n    - {label: adults, low: 18, high: .inf}\n", "reporting.age_groups.0.high"),
    ],
)
def test_non_finite_numbers_anywhere_in_the_plan(addition, key):
    assert f"key '{key}' must be a finite number" in _error(SMALL_PLAN + addition)


@pytest.mark.parametrize(
    ("old", "new", "key", "parse_text"),
    [
        ("value: 1.7", "value: .nan", "reported.2.value", PUBLISHED),
        ("    value: 0.5\n", "    value: .inf\n", "assumptions.treatment_fraction.value", PUBLISHED),
        ("range: [0, 180]", "range: [0, .nan]", "outcomes.0.range.1", PUBLISHED),
    ],
)
def test_non_finite_numbers_in_a_published_results_plan(old, new, key, parse_text):
    assert f"key '{key}' must be a finite number" in _error(_edit(parse_text, old, new), parse_published)


def test_finite_plans_load_as_before():
    plan = parse_plan(SMALL_PLAN + SIMULATION, "plan.yaml")
    assert plan.outcomes[0].range == (0.0, 10.0) and plan.simulation.outcomes["pain"].change_sd == 2.0
    assert parse_published(PUBLISHED, "plan.yaml").sample_size == 120
    assert parse_published(CASE, "plan.yaml").design == "single_case"


def test_an_impossible_simulation_start_date_is_a_plan_error():
    text = SMALL_PLAN + SIMULATION.replace("n_participants: 40", "n_participants: 40\n  first_enrollment: 2023-02-30")
    text = text.replace("first_enrollment: 2023-02-30", "first_enrollment: '2023-02-30'")
    assert "key 'simulation.first_enrollment': must be a real calendar date (YYYY-MM-DD)" in _error(text)


# ------------------------------------------------------------------ through the command line


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (lambda t: t + "seed: 8\n", "key 'seed' is given twice (lines 4 and 26)"),
        (lambda t: _edit(t, "range: [0, 10]", "range: [0, .nan]"), "key 'outcomes.0.range.1' must be a finite number (found .nan)"),
    ],
    ids=["repeated-key", "nan-range"],
)
@pytest.mark.parametrize("command", ["validate", "run", "export-adam"])
def test_the_command_line_stops_with_exit_code_2_and_one_sentence(small_trial, tmp_path: Path, capsys, edit, expected, command):
    plan = small_trial(plan=edit(SMALL_PLAN))
    argv = [command, str(plan)] + (["--out", str(tmp_path / "out")] if command != "validate" else [])
    assert run_cli(argv) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert expected in err and "Traceback" not in err
    assert not (tmp_path / "out").exists() and not (tmp_path / "reports").exists()
