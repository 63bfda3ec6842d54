"""Published-results plans: the three study files load, the figures are verbatim, bad plans are one clear sentence."""

from __future__ import annotations

import pytest

from analysis.cli import run_cli
from analysis.core.errors import PlanError
from analysis.plan.published import (
    PublishedCase,
    PublishedTrial,
    load_published,
    parse_published,
    published_json_schema,
)
from tests.conftest import REPO

STUDIES = REPO / "data" / "studies"


def test_the_three_plans_load_with_the_printed_figures_verbatim():
    precision = load_published(STUDIES / "precision-release-2023.yaml").plan
    redefined = load_published(STUDIES / "redefined-protocol-2023.yaml").plan
    case = load_published(STUDIES / "case-43m.yaml").plan
    assert isinstance(precision, PublishedTrial) and isinstance(redefined, PublishedTrial) and isinstance(case, PublishedCase)
    assert [c.quote for c in precision.reported] == [
        "spinal rotation +41%", "pain interference -32%", "outperforming standard physiotherapy by 1.7-fold", "n = 120", "12 weeks"]
    assert precision.sample_size == 120 and redefined.sample_size == 320
    assert precision.percent_claim("trunk_rotation").values == {"treatment": 41.0}
    assert precision.fold_claim("pain_interference").value == 1.7
    assert redefined.percent_claim("pain_intensity").values == {"treatment": -42.0, "control": -18.0}
    assert case.restored.value == 68.0 and case.restored.quote == "restored 68% of lost extension"
    for plan in (precision, redefined, case):
        assert all(c.where for c in plan.reported)


def test_every_assumption_has_a_range_and_a_reason():
    for name in ("precision-release-2023", "redefined-protocol-2023", "case-43m"):
        plan = load_published(STUDIES / f"{name}.yaml").plan
        from analysis.replicate import assumptions_of

        for key, a in assumptions_of(plan):
            assert a.low <= a.value <= a.high, key
            assert len(a.why) >= 10, key


VALID = (STUDIES / "redefined-protocol-2023.yaml").read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda t: t.replace("design: parallel_trial", "design: crossover"), "key 'design' must be one of parallel_trial, single_case"),
        (lambda t: t.replace("document: published-results", "document: plan"), "not a published-results plan"),
        (lambda t: t.replace("  dropout:\n", "  dropuot:\n"), "did you mean 'dropout'? allowed keys here: treatment_fraction, dropout, outcomes"),
        (lambda t: t.replace("value: 1.8\n        low: 1.5", "value: 2.5\n        low: 1.5"), "needs low <= value <= high"),
        (lambda t: t.replace("values: {treatment: -42, control: -18}", "values: {treatment: -42}"),
         "outcome 'pain_intensity' needs its control result from exactly one source"),
        (lambda t: t.replace("    pain_intensity:\n      baseline_mean", "    pain:\n      baseline_mean"),
         "assumptions.outcomes must cover exactly the outcomes with claims: missing ['pain_intensity'], unexpected ['pain']"),
        (lambda t: t.replace("outcome: pain_intensity\n    values", "outcome: pain\n    values"),
         "claim 'pain_change' names outcome 'pain', which is not among the outcomes ['pain_intensity']"),
        (lambda t: t.replace("why: Dropout was not reported; 0-20% spans typical 12-week exercise trials, 10% as the centre.", "why: x"),
         "key 'assumptions.dropout.why'"),
        (lambda t: t.replace("  treatment_fraction:\n    value: 0.5\n    low: 0.45\n    high: 0.55", "  treatment_fraction:\n    value: 0.5\n    low: 0.45\n    high: 1.0"),
         "treatment_fraction must lie strictly between 0 and 1"),
    ],
)
def test_bad_plans_are_one_sentence_naming_the_key(edit, message):
    text = edit(VALID)
    assert text != VALID
    with pytest.raises(PlanError) as err:
        parse_published(text, "plan.yaml")
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_case_plan_rejects_a_normative_value_below_the_pre_value():
    text = (STUDIES / "case-43m.yaml").read_text(encoding="utf-8").replace("    low: 20\n    high: 35", "    low: 10\n    high: 35")
    with pytest.raises(PlanError, match=r"normative.low \(10.0\) must exceed pre.high \(18.0\)"):
        parse_published(text, "case.yaml")


def test_json_schema_is_exported_from_the_model():
    schema = published_json_schema("parallel_trial")
    assert {"reported", "assumptions", "replication"} <= set(schema["properties"])
    assert schema["additionalProperties"] is False
    with pytest.raises(PlanError):
        published_json_schema("crossover")  # type: ignore[arg-type]


def test_replicate_with_a_bad_plan_is_exit_2_without_output(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text(VALID.replace("  dropout:\n", "  dropuot:\n"), encoding="utf-8")
    assert run_cli(["replicate", str(bad), "--out", str(tmp_path / "out"), "--no-report"]) == 2
    err = capsys.readouterr().err
    assert "unknown key 'assumptions.dropuot'" in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()
    assert run_cli(["replicate", str(tmp_path / "missing.yaml"), "--out", str(tmp_path / "out")]) == 2
    assert "does not exist" in capsys.readouterr().err
