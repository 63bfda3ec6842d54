"""End to end: `trialkit run` on the bundled example trial, every output and the manifest checked."""

from __future__ import annotations

import hashlib
import json

import pandas as pd
import pytest

from analysis.cli import run_cli
from analysis.core.tidy import RESULT_COLUMNS
from tests.conftest import EXAMPLE_PLAN

TABLES = [
    "accounting.csv",
    "data/analysis_dataset.csv",
    "tables/descriptives.csv",
    "tables/between_arms.csv",
    "tables/effect_sizes.csv",
    "tables/models.csv",
    "tables/responders.csv",
    "tables/missing.csv",
    "meta/arm_summaries.csv",
    "meta/effect_sizes.csv",
]


@pytest.fixture(scope="module")
def example_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "example"
    assert run_cli(["run", str(EXAMPLE_PLAN), "--out", str(out)]) == 0
    return out


def test_every_output_is_written(example_run):
    for relative in TABLES + ["data/analysis_dataset.parquet", "manifest.json", "report.html", "plan.yaml"]:
        assert (example_run / relative).is_file(), relative
    for outcome in ("pain_interference", "pain_intensity", "trunk_rotation"):
        for kind in ("trajectory", "change", "effect_by_visit"):
            for suffix in ("png", "svg"):
                assert (example_run / "figures" / f"{kind}_{outcome}.{suffix}").stat().st_size > 1000


def test_manifest_records_inputs_versions_seed_and_files(example_run):
    manifest = json.loads((example_run / "manifest.json").read_text())
    assert manifest["seed"] == 20231112
    assert manifest["study"]["simulated"] is True
    assert manifest["plan"]["sha256"] == hashlib.sha256(EXAMPLE_PLAN.read_bytes()).hexdigest()
    roles = {entry["role"]: entry for entry in manifest["inputs"]}
    participants = EXAMPLE_PLAN.parent.parent / "examples" / "precision-release-sim" / "participants.csv"
    assert roles["participants"]["sha256"] == hashlib.sha256(participants.read_bytes()).hexdigest()
    assert roles["participants"]["rows"] == 120
    assert {"numpy", "pandas", "statsmodels", "trialkit"} <= set(manifest["packages"])
    listed = {entry["path"]: entry["sha256"] for entry in manifest["files"]}
    for relative in TABLES:
        assert listed[relative] == hashlib.sha256((example_run / relative).read_bytes()).hexdigest()
    assert set(manifest["timings_seconds"]) >= {"read, validate and derive", "analyse", "render report"}


def test_accounting_reconciles(example_run):
    accounting = pd.read_csv(example_run / "accounting.csv")
    count = dict(zip(accounting["item"], accounting["count"], strict=False))
    assert count["rows read"] == 120 or accounting.loc[accounting["item"] == "rows read", "count"].iloc[0] == 120
    dataset = pd.read_csv(example_run / "data" / "analysis_dataset.csv")
    assert len(dataset) == 120 * 3 * 4
    cells = count["cells read (participant x outcome x visit)"]
    assert count["cells with a value"] + count["cells recorded empty"] == cells
    assert cells + count["visits with no record"] == len(dataset)
    assert dataset["value"].notna().sum() == count["cells with a value"]


def test_result_tables_use_the_tidy_vocabulary(example_run):
    for relative in ("tables/between_arms.csv", "tables/effect_sizes.csv", "tables/models.csv", "tables/responders.csv"):
        columns = pd.read_csv(example_run / relative).columns.tolist()
        assert columns[: len(RESULT_COLUMNS)] == RESULT_COLUMNS, relative


def test_between_arm_table_has_every_visit_and_outcome(example_run):
    table = pd.read_csv(example_run / "tables" / "between_arms.csv")
    assert set(table["visit"]) == {"week4", "week8", "week12"}
    assert set(table["outcome"]) == {"pain_interference", "pain_intensity", "trunk_rotation"}
    assert (table["ci_low"] < table["estimate"]).all() and (table["estimate"] < table["ci_high"]).all()


def test_report_shows_the_study_and_simulated_banner(example_run):
    html = (example_run / "report.html").read_text()
    assert "SIMULATED DATA" in html
    assert "Precision lumbar release" in html
    assert "Between-arm effect at every visit" in html
    assert "<script>alert" not in html


def test_same_inputs_and_seed_give_byte_identical_tables(example_run, tmp_path):
    again = tmp_path / "again"
    assert run_cli(["run", str(EXAMPLE_PLAN), "--out", str(again), "--no-report"]) == 0
    for relative in TABLES:
        assert (again / relative).read_bytes() == (example_run / relative).read_bytes(), relative
    for figure in ("trajectory_pain_intensity.svg", "change_trunk_rotation.png"):
        assert (again / "figures" / figure).read_bytes() == (example_run / "figures" / figure).read_bytes()
