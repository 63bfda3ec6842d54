"""Builders of the report's reader-facing tables, on small literal tidy frames."""

from __future__ import annotations

import pandas as pd

from analysis.core.tidy import tidy_frame
from analysis.plan import Table1Variable, parse_plan
from analysis.reporting.table1 import table1_stats
from analysis.reporting.tables import builders, results
from tests.conftest import SMALL_PLAN

PLAN = parse_plan(SMALL_PLAN + """  - name: grip
    label: Grip strength (kg)
    unit: kg
    range: [0, 100]
    better: higher
    decimals: 3
reporting:
  table1:
    - {name: age, label: "Age (years)", kind: continuous}
    - {name: sex, label: Sex, kind: categorical}
  nih:
    race: {A: Asian}
    ethnicity: {N: Not Hispanic or Latino}
    sex: {F: Female, M: Male}
""")
SIZES = {"treatment": 60, "control": 58}
CONTRAST = "Release - Stretching"


def _models() -> pd.DataFrame:
    base = {"outcome": "pain", "visit": "w8", "contrast": CONTRAST, "ci_level": 0.95, "n_treatment": 53, "n_control": 57}
    return tidy_frame([
        base | {"measure": "adjusted mean difference", "estimate": -4.042349, "ci_low": -6.280004, "ci_high": -1.804694,
                "df": 102.0, "p_value": 0.000522, "method": "ANCOVA (OLS) value ~ arm + baseline; model-based SE",
                "note": "primary outcome; primary model; complete cases"},
        base | {"contrast": "Release", "measure": "adjusted mean", "estimate": 53.3886, "ci_low": 50.1801,
                "ci_high": 56.5971, "df": 102.0, "n_control": None, "method": "ANCOVA (OLS); emmeans", "note": "primary outcome"},
        base | {"contrast": "Stretching", "measure": "adjusted mean", "estimate": 57.4310, "ci_low": 54.48,
                "ci_high": 60.38, "df": 102.0, "n_treatment": None, "method": "ANCOVA (OLS); emmeans", "note": "primary outcome"},
        base | {"visit": "w4", "measure": "LS-mean difference", "estimate": -0.683306, "ci_low": -2.95, "ci_high": 1.58,
                "df": 110.903673, "p_value": 0.551376, "method": "MMRM, unstructured covariance, REML, Satterthwaite df",
                "note": "primary outcome; secondary model"},
        base | {"measure": "adjusted mean difference", "estimate": -4.1365, "ci_low": -6.35, "ci_high": -1.92,
                "df": 99.4, "p_value": 0.000351, "method": "multiple imputation (m = 20) + ANCOVA; Rubin's rules",
                "note": "primary outcome; sensitivity analysis", "n_treatment": 60, "n_control": 60, "seed": 7, "n_boot": 20},
        base | {"measure": "tipping point delta", "estimate": 14.227073, "method": "delta-adjusted multiple imputation",
                "note": "primary outcome; sensitivity analysis", "seed": 7},
    ])


def test_primary_table_follows_publication_conventions():
    table = results.primary_table(_models(), PLAN, {"pain": 2, "grip": 3}, SIZES)
    texts = table.cell_texts()
    assert texts[0] == ["ANCOVA at w8 (week 8): adjusted mean difference", "53", "53.39 (50.18, 56.60)", "57",
                        "57.43 (54.48, 60.38)", "-4.04 (-6.28, -1.80)", "102", "<0.001"]
    assert texts[1][0] == "MMRM at w4 (week 4): LS-mean difference"
    assert texts[1][-2:] == ["110.9", "0.551"]
    assert [s.label for s in table.spanners] == ["Release\nN = 60", "Stretching\nN = 58"]
    assert "Difference (95% CI)" in [c.label for c in table.columns]
    flat = " ".join(" ".join(row) for row in texts)
    assert "0.95" not in flat and "102.000" not in flat
    assert any("Satterthwaite" in note for note in table.footnotes)
    assert not any("multiple imputation" in " ".join(row) for row in texts)  # sensitivity analyses go elsewhere


def test_sensitivity_table_has_imputation_tipping_point_and_seed():
    table = results.sensitivity_table(_models(), PLAN, {"pain": 2})
    labels = [row[0] for row in table.cell_texts()]
    # the literal MMRM row is at w4, not the primary visit w8, so it is not a row here
    assert labels[:2] == ["Complete cases (ANCOVA)", "Multiple imputation, missing at random"]
    assert table.cell_texts()[1][1:] == ["60 / 60", "-4.14 (-6.35, -1.92)", "<0.001"]
    tipping = table.cell_texts()[-1]
    assert tipping[2] == "+14.23 points"
    assert any("Seed 7" in note for note in table.footnotes)


def _responders(rd: float, low: float, high: float) -> pd.DataFrame:
    base = {"outcome": "pain", "visit": "w8", "ci_level": 0.95, "note": "responder: improvement >= 2 points (lower is better); "
            "missing counted as non-responders"}
    return tidy_frame([
        base | {"contrast": "Release", "measure": "responder proportion", "estimate": 0.75, "n_treatment": 60,
                "events_treatment": 45, "method": "responder proportion (points MCID), Wilson score interval"},
        base | {"contrast": "Stretching", "measure": "responder proportion", "estimate": 0.5, "n_control": 60,
                "events_control": 30, "method": "responder proportion (points MCID), Wilson score interval"},
        base | {"contrast": CONTRAST, "measure": "risk difference", "estimate": rd, "ci_low": low, "ci_high": high,
                "method": "risk difference, Newcombe (1998) hybrid score interval (method 10) (points MCID)",
                "n_treatment": 60, "n_control": 60},
        base | {"contrast": CONTRAST, "measure": "risk difference", "estimate": rd, "ci_low": low - 0.01,
                "ci_high": high + 0.01, "p_value": 0.0123, "method": "risk difference, Wald interval and z test (points MCID)"},
    ])


def test_responder_table_shows_nnt_per_altman():
    crossing = results.responder_table(_responders(0.1, -0.05, 0.25), PLAN).cell_texts()[0]
    assert crossing[1:3] == ["45/60 (75.0%)", "30/60 (50.0%)"]
    assert crossing[3] == "10.0 (-5.0, 25.0)"  # percentage points
    assert crossing[-2] == "NNTB 10.0 (NNTB 4.0 to \u221e to NNTH 20.0)"
    assert crossing[-1] == "0.012"
    benefit = results.responder_table(_responders(0.25, 0.1, 0.4), PLAN).cell_texts()[0]
    assert benefit[-2] == "NNTB 4.0 (NNTB 2.5 to 10.0)"


def test_effect_size_rows_of_one_measure_can_be_told_apart():
    methods = ["Hedges' g (exact J), metafor SMD vtype LS, Wald CI", "Hedges' g (exact J), noncentral-t CI (as R effectsize)",
               "Hedges' g (exact J), BCa bootstrap stratified by arm"]
    frame = tidy_frame([{"outcome": "pain", "visit": "w8", "contrast": CONTRAST, "measure": "SMD", "estimate": -0.21,
                         "ci_low": -0.58 + i / 100, "ci_high": 0.15, "ci_level": 0.95, "method": m, "n_treatment": 57,
                         "n_control": 59} for i, m in enumerate(methods)])
    table = results.effect_size_table(frame, PLAN, {"pain": 1}, "Effect sizes", "effects")
    labels = [row[0] for row in table.cell_texts()]
    assert labels == ["Hedges' g, Wald CI", "Hedges' g, noncentral-t CI", "Hedges' g, BCa bootstrap CI"]
    assert table.cell_texts()[0][1] == "-0.21 (-0.58, 0.15)"
    # one comparison throughout: stated once in a footnote, not as a column
    assert "contrast" not in table.keys and table.footnotes[0] == f"Every estimate compares {CONTRAST}."


def test_baseline_table_by_arm_with_labels():
    people = pd.DataFrame({"arm": ["treatment"] * 3 + ["control"] * 2, "age": [40, 50, 60, 45, None],
                           "sex": ["F", "F", "M", "M", "F"]})
    variables = [Table1Variable(name="age", label="Age (years)", kind="continuous"),
                 Table1Variable(name="sex", label="Sex", kind="categorical")]
    table = builders.baseline_table(table1_stats(people, variables), PLAN, variables)
    assert [c.label for c in table.columns] == ["Characteristic", "Release\nN = 3", "Stretching\nN = 2", "Overall\nN = 5"]
    rows = {(r.group, r.cells["label"]): [r.cells[k] for k in ("treatment", "control", "overall")] for r in table.rows}
    # age: treatment 40, 50, 60 -> mean 50, SD 10; control 45 (one missing)
    assert rows[("Age (years)", "Mean (SD)")] == ["50.0 (10.0)", "45.0", "48.8 (8.5)"]
    assert rows[("Age (years)", "Missing")] == ["0", "1", "1"]
    assert rows[("Sex, n (%)", "Female")] == ["2 (66.7%)", "1 (50.0%)", "3 (60.0%)"]


def test_decimals_per_outcome_from_plan_or_data():
    dataset = pd.DataFrame({"outcome": ["pain", "pain", "grip"], "value": [6.0, 7.0, 31.5]})
    assert builders.outcome_decimals(PLAN, dataset) == {"pain": 1, "grip": 3}  # grip: plan says 3


def test_outcome_titles_never_double_the_unit():
    titles = [builders.outcome_title(o) for o in PLAN.outcomes]
    assert titles == ["Pain NRS (points)", "Grip strength (kg)"]
