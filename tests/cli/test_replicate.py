"""`trialkit replicate` end to end: calibrated SIMULATED trials reproduce the printed figures through
the real pipeline (checked on the run's own outputs), the seed is recorded, the notebooks render."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import yaml

from analysis.cli import run_cli
from analysis.plan.published import load_published
from tests.conftest import REPO

STUDIES = REPO / "data" / "studies"


@pytest.fixture(scope="module")
def replicated(tmp_path_factory):
    """`trialkit replicate --no-report` once per trial study (the pipeline runs for real)."""
    root = tmp_path_factory.mktemp("replicate")
    outputs = {}
    for study in ("precision-release-2023", "redefined-protocol-2023"):
        out = root / study
        assert run_cli(["replicate", str(STUDIES / f"{study}.yaml"), "--out", str(out), "--no-report"]) == 0
        outputs[study] = out
    return outputs


def _complete_case_means(out, outcome, arm):
    """Mean baseline and follow-up over participants with both, from the run's analysis dataset."""
    data = pd.read_csv(out / "run" / "data" / "analysis_dataset.csv")
    rows = data[(data["outcome"] == outcome) & (data["arm"] == arm) & (data["visit"] == "week12")].dropna(subset=["value", "baseline"])
    return rows["baseline"].mean(), rows["value"].mean()


@pytest.mark.parametrize(
    ("study", "outcome", "arm", "printed"),
    [
        ("precision-release-2023", "trunk_rotation", "treatment", 41.0),
        ("precision-release-2023", "pain_interference", "treatment", -32.0),
        ("redefined-protocol-2023", "pain_intensity", "treatment", -42.0),
        ("redefined-protocol-2023", "pain_intensity", "control", -18.0),
    ],
)
def test_the_run_reproduces_each_printed_percent(replicated, study, outcome, arm, printed):
    out = replicated[study]
    tolerance = load_published(STUDIES / f"{study}.yaml").plan.replication.tolerance_percent_points
    # from the run's effect-size table
    effects = pd.read_csv(out / "run" / "tables" / "effect_sizes.csv")
    other = "n_control" if arm == "treatment" else "n_treatment"
    row = effects[(effects["outcome"] == outcome) & (effects["measure"] == "pct_change_of_means")
                  & effects[f"n_{arm}"].notna() & effects[other].isna()]
    assert abs(float(row["estimate"].iloc[0]) - printed) <= tolerance
    # and recomputed by hand from the run's analysis dataset
    pre, post = _complete_case_means(out, outcome, arm)
    assert abs(100 * (post - pre) / pre - printed) <= tolerance


@pytest.mark.parametrize("outcome", ["trunk_rotation", "pain_interference"])
def test_the_run_reproduces_the_fold_comparison(replicated, outcome):
    out = replicated["precision-release-2023"]
    ratios = []
    for arm in ("treatment", "control"):
        pre, post = _complete_case_means(out, outcome, arm)
        ratios.append(100 * (post - pre) / pre)
    assert abs(ratios[0] / ratios[1] - 1.7) <= 0.05  # ratio of percent improvements
    effects = pd.read_csv(out / "run" / "tables" / "effect_sizes.csv")
    fieller = effects[(effects["outcome"] == outcome) & (effects["measure"] == "ratio_of_improvements") & effects["n_boot"].isna()]
    assert abs(float(fieller["estimate"].iloc[0]) - 1.7) <= 0.05  # ratio of mean changes: baselines were equalised


def test_headline_check_table_and_provenance(replicated):
    out = replicated["precision-release-2023"]
    check = pd.read_csv(out / "headline_check.csv")
    assert check["within_tolerance"].all() and len(check) == 7
    assert set(check["source"]) == {"tables/effect_sizes.csv", "tables/descriptives.csv", "accounting.csv"}
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["seed"] == 20230041
    trial_plan = yaml.safe_load((out / "trial" / "plan.yaml").read_text())
    assert trial_plan["study"]["simulated"] is True and trial_plan["seed"] == 20230041
    assert [v["label"] for v in trial_plan["visits"]["followup"]] == ["week12"]
    assert json.loads((out / "run" / "manifest.json").read_text())["seed"] == 20230041
    for name in ("claims.csv", "assumptions.csv", "implied_effects.csv", "consistency.csv", "readings.csv",
                 "sensitivity.csv", "conclusions.csv", "figures/sensitivity.png", "conclusion.txt"):
        assert (out / name).is_file(), name


def test_other_seed_other_participants_same_headline_figures(replicated, tmp_path):
    from analysis.replicate import write_replication_trial

    plan = load_published(STUDIES / "redefined-protocol-2023.yaml").plan
    again = write_replication_trial(plan, tmp_path / "same", 20230042).parent
    other = write_replication_trial(plan, tmp_path / "other", 7).parent
    original = replicated["redefined-protocol-2023"] / "trial"
    assert (again / "measurements.csv").read_bytes() == (original / "measurements.csv").read_bytes()
    assert (other / "measurements.csv").read_bytes() != (original / "measurements.csv").read_bytes()
    m = pd.read_csv(other / "measurements.csv")
    people = pd.read_csv(other / "participants.csv").set_index("participant_id")["arm"]
    wide = m.pivot(index="participant_id", columns="visit", values="value").dropna()
    for code, printed in (("T", -42.0), ("C", -18.0)):
        arm = wide[people.loc[wide.index] == code]
        assert abs(100 * (arm["week12"].mean() - arm["baseline"].mean()) / arm["baseline"].mean() - printed) <= 0.5


def test_seed_option_is_recorded(tmp_path):
    out = tmp_path / "seeded"
    assert run_cli(["replicate", str(STUDIES / "redefined-protocol-2023.yaml"), "--out", str(out), "--seed", "99", "--no-report"]) == 0
    assert json.loads((out / "manifest.json").read_text())["seed"] == 99
    assert pd.read_csv(out / "headline_check.csv")["within_tolerance"].all()


def test_case_replication_renders_its_notebook(tmp_path):
    out = tmp_path / "case"
    assert run_cli(["replicate", str(STUDIES / "case-43m.yaml"), "--out", str(out)]) == 0
    case = pd.read_csv(out / "case.csv").iloc[0]
    assert case["change"] == pytest.approx(8.84) and bool(case["exceeds_mdc"])  # 0.68 * (25 - 12)
    html = (out / "replication.html").read_text(encoding="utf-8")
    assert "restored 68% of lost extension" in html and "data:image/png;base64" in html
    assert "Traceback" not in html and not (out / "run").exists()


def test_trial_notebook_renders_from_a_replicate_output(replicated, tmp_path):
    from analysis.core.resources import notebook_path
    from analysis.reporting.notebook import render_notebook

    out = replicated["precision-release-2023"]
    html_path = render_notebook(notebook_path("replicate_trial.ipynb"), {"out_dir": str(out)}, tmp_path / "replication.html")
    html = html_path.read_text(encoding="utf-8")
    for text in ("spinal rotation +41%", "ratio of responder proportions", "Participant-level replication",
                 "What cannot be concluded", "data:image/png;base64", "<details"):
        assert text in html, text
    assert "ratio_of_responder_proportions" not in html and "pct_change_of_means" not in html  # readable, not snake_case
    # the claims table comes first, with the verdicts of claim_verdicts.csv (what the terminal prints)
    from tests.cli.test_replicate_summary import parse_claims_table

    assert html.index("Claim as printed") < html.index("<details")
    table = parse_claims_table(html)
    verdicts = pd.read_csv(out / "claim_verdicts.csv")
    assert table["Claim as printed"].tolist() == verdicts["printed"].tolist()
    assert table["Verdict"].tolist() == verdicts["verdict"].tolist()
    assert table["Plausible under"].tolist() == verdicts["plausible_under"].tolist()


def test_notebook_templates_are_stored_without_outputs():
    import nbformat

    for name in ("replicate_trial.ipynb", "replicate_case.ipynb"):
        nb = nbformat.read(REPO / "notebooks" / name, as_version=4)
        assert any("parameters" in c.metadata.get("tags", []) for c in nb.cells)
        assert all(not c.get("outputs") and c.get("execution_count") is None for c in nb.cells if c.cell_type == "code")
