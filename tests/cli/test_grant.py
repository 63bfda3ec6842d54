"""`trialkit power` and `trialkit grant-report` end to end (the example trial and broken copies of it)."""

import shutil
from pathlib import Path

import pandas as pd
import pytest

from analysis.cli import run_cli
from tests.conftest import REPO

ROOT = REPO
PLAN = ROOT / "data" / "studies" / "example-precision-release.yaml"
DATA = ROOT / "data" / "examples" / "precision-release-sim"


def test_power_from_n_matches_pwr(capsys):
    assert run_cli(["power", "--d", "0.5", "--n", "64"]) == 0
    assert "0.80146" in capsys.readouterr().out  # pwr.t.test(n = 64, d = 0.5): 0.8014596


def test_power_solves_n_and_inflates_for_attrition(capsys):
    assert run_cli(["power", "--d", "0.5", "--power", "0.9", "--attrition", "0.2"]) == 0
    out = capsys.readouterr().out
    assert "85.0313" in out  # pwr.t.test(d = 0.5, power = 0.9)$n = 85.03128
    assert "│ 86 " in out  # rounded up per arm
    assert "│ 108 " in out  # ceil(86 / 0.8) to enrol


def test_power_simulation_writes_table_and_curves(tmp_path, capsys):
    out = tmp_path / "power"
    assert run_cli(["power", "--d", "0.5", "--n", "64", "--r", "0.5", "--simulate", "400", "--seed", "7", "--out", str(out)]) == 0
    table = pd.read_csv(out / "power.csv")
    sim = table[table["method"].str.startswith("simulated")].iloc[0]
    assert (sim["n_sims"], sim["seed"]) == (400, 7)
    assert {p.name for p in out.iterdir()} == {"power.csv", "power_curve.csv", "power_curve.png", "power_curve.svg", "manifest.json",
                                                ".trialkit-output"}


@pytest.mark.parametrize(
    "args, message",
    [
        (["power", "--d", "0.5"], "exactly one of --n"),
        (["power", "--d", "0.5", "--n", "64", "--power", "0.8"], "exactly one of --n"),
        (["power", "--d", "0.5", "--n", "64", "--mmrm"], "--mmrm needs --simulate"),
        (["power", "--d", "0.5", "--n", "64", "--attrition", "1.5"], "attrition"),
    ],
)
def test_power_usage_errors(args, message, capsys):
    assert run_cli(args) == 2
    assert message in capsys.readouterr().err


def copy_trial(tmp_path: Path, plan_edit=None, participants_edit=None, extra_files=None) -> Path:
    studies = tmp_path / "studies"
    data = tmp_path / "examples" / "precision-release-sim"
    studies.mkdir(parents=True)
    shutil.copytree(DATA, data)
    text = PLAN.read_text()
    if plan_edit:
        text = plan_edit(text)
    (studies / "plan.yaml").write_text(text)
    if participants_edit:
        frame = pd.read_csv(data / "participants.csv", dtype=str, keep_default_na=False)
        participants_edit(frame).to_csv(data / "participants.csv", index=False)
    for name, content in (extra_files or {}).items():
        (data / name).write_text(content)
    return studies / "plan.yaml"


def test_grant_report_example_trial(tmp_path, capsys):
    out = tmp_path / "grant"
    assert run_cli(["grant-report", str(PLAN), "--period-end", "2023-12-31", "--out", str(out)]) == 0
    for name in ("table1", "consort_counts", "nih_enrollment", "nih_age", "retention"):
        for suffix in ("csv", "html", "docx"):
            assert (out / "tables" / f"{name}.{suffix}").is_file()
    for name in ("consort", "enrollment", "retention"):
        assert (out / "figures" / f"{name}.png").is_file() and (out / "figures" / f"{name}.svg").is_file()
    html = (out / "report.html").read_text()
    assert "Cumulative Inclusion Enrollment Report" in html and "Table 1. Baseline characteristics" in html
    counts = pd.read_csv(out / "tables" / "consort_counts.csv", keep_default_na=False)
    randomised = counts[(counts["stage"] == "randomised")]["n"].astype(int).item()
    nih = pd.read_csv(out / "tables" / "nih_enrollment.csv")
    assert nih.loc[nih["Racial Categories"] == "Total", "Total"].item() == randomised == 120
    # Same inputs, same tables: a second run gives byte-identical CSVs.
    again = tmp_path / "again"
    assert run_cli(["grant-report", str(PLAN), "--period-end", "2023-12-31", "--out", str(again), "--no-report"]) == 0
    for csv in sorted((out / "tables").glob("*.csv")):
        assert csv.read_bytes() == (again / "tables" / csv.name).read_bytes(), csv.name
    # ... and byte-identical Word and HTML tables (fixed core properties and zip entry times)
    for table in sorted((out / "tables").glob("*.docx")) + sorted((out / "tables").glob("*.html")):
        assert table.read_bytes() == (again / "tables" / table.name).read_bytes(), table.name


def test_grant_report_prints_code_labels_and_enrollment_against_target(tmp_path):
    out = tmp_path / "grant"
    assert run_cli(["grant-report", str(PLAN), "--period-end", "2023-12-31", "--out", str(out), "--no-report"]) == 0
    table1 = pd.read_csv(out / "tables" / "table1.csv", keep_default_na=False)
    lines = table1["Characteristic"].str.strip().tolist()
    # the plan's reporting.labels (NIH wording), in the plan's order; no raw code left
    assert lines[lines.index("Sex, n (%)") + 1:lines.index("Sex, n (%)") + 4] == ["Female", "Male", "Unknown/Not Reported"]
    assert "American Indian/Alaska Native" in lines and "Not Hispanic or Latino" in lines
    assert not {"F", "M", "U", "AIAN", "NotHispanic"} & set(lines)
    assert list(table1.columns[1:4]) == ["Precision lumbar release (N = 60)", "Standard physiotherapy (N = 60)", "Overall (N = 120)"]
    # counted in the participants file: 28 of the 60 PLR participants have sex F
    participants = pd.read_csv(DATA / "participants.csv")
    n_f = int(((participants["arm"] == "PLR") & (participants["sex"] == "F")).sum())
    assert table1.loc[table1["Characteristic"] == "  Female", "Precision lumbar release (N = 60)"].item() == f"{n_f} ({100 * n_f / 60:.1f}%)"
    enrollment = pd.read_csv(out / "tables" / "enrollment.csv", dtype=str).set_index("Measure")["Value"]
    assert enrollment["Target enrollment"] == "120" and enrollment["Percent of target"] == "100.0"
    html = (out / "tables" / "consort_counts.html").read_text()
    assert "Assessed for eligibility" in html and "not recorded" in html  # the example plan has no screening counts


def _with_screening(assessed: int):
    screening = f"  screening:\n    assessed: {assessed}\n    excluded: {{not meeting criteria: 10, declined: 5}}\n"
    return lambda t: t.replace("reporting:\n", "reporting:\n" + screening)


def test_grant_report_screening_counts_in_the_consort_box(tmp_path):
    plan = copy_trial(tmp_path, plan_edit=_with_screening(135))
    out = tmp_path / "out"
    assert run_cli(["grant-report", str(plan), "--period-end", "2023-12-31", "--out", str(out), "--no-report"]) == 0
    counts = pd.read_csv(out / "tables" / "consort_counts.csv", keep_default_na=False)
    total = counts[(counts["reason"] == "") & (counts["arm"] == "all")].set_index("stage")["n"].astype(int)
    assert (total["assessed"], total["excluded"], total["randomised"]) == (135, 15, 120)
    from docx import Document

    cells = [[c.text for c in row.cells] for row in Document(out / "tables" / "consort_counts.docx").tables[0].rows]
    assert ["Assessed for eligibility", "", "", "135"] in cells and ["\u00a0\u00a0- declined", "", "", "5"] in cells


def test_grant_report_screening_that_does_not_add_up_is_a_plan_error(tmp_path, capsys):
    plan = copy_trial(tmp_path, plan_edit=_with_screening(130))
    out = tmp_path / "out"
    assert run_cli(["grant-report", str(plan), "--period-end", "2023-12-31", "--out", str(out), "--no-report"]) == 2
    err = capsys.readouterr().err
    assert "reporting.screening does not add up" in err and "120 randomised = 135, but 130 assessed" in err
    assert "Traceback" not in err and not out.exists()


def test_grant_report_labels_of_an_unknown_variable_is_a_plan_error(tmp_path, capsys):
    plan = copy_trial(tmp_path, plan_edit=lambda t: t.replace("    sex: {F: Female", "    sx: {F: Female"))
    assert run_cli(["grant-report", str(plan), "--period-end", "2023-12-31", "--out", str(tmp_path / "o"), "--no-report"]) == 2
    err = capsys.readouterr().err
    assert "labels.sx" in err and "did you mean 'sex'" in err


def test_grant_report_needs_reporting_section(tmp_path, capsys):
    plan = copy_trial(tmp_path, plan_edit=lambda t: t[: t.index("reporting:")])
    out = tmp_path / "out"
    assert run_cli(["grant-report", str(plan), "--period-end", "2023-12-31", "--out", str(out), "--no-report"]) == 2
    assert "reporting:" in capsys.readouterr().err
    assert not out.exists()


def test_grant_report_unmapped_nih_code_is_invalid_data(tmp_path, capsys):
    def edit(frame):
        frame.loc[4, "race"] = "Martian"
        return frame

    plan = copy_trial(tmp_path, participants_edit=edit)
    out = tmp_path / "out"
    assert run_cli(["grant-report", str(plan), "--period-end", "2023-12-31", "--out", str(out), "--no-report"]) == 1
    err = capsys.readouterr().err
    assert "Martian" in err and "reporting.nih" in err
    assert not out.exists()
    failures = pd.read_csv(tmp_path / "out.validation_failures.csv")
    assert failures[["row", "column", "value"]].values.tolist() == [[6, "race", "Martian"]]


def test_grant_report_with_adverse_events(tmp_path, capsys):
    ae = "participant_id,term,category,serious\nSIM0001,Back pain,Musculoskeletal,no\nSIM0002,Syncope,Nervous system,yes\n"
    plan = copy_trial(
        tmp_path,
        plan_edit=lambda t: t.replace("reporting:\n", "reporting:\n  adverse_events:\n    path: ../examples/precision-release-sim/ae.csv\n"),
        extra_files={"ae.csv": ae},
    )
    out = tmp_path / "out"
    assert run_cli(["grant-report", str(plan), "--period-end", "2023-12-31", "--out", str(out), "--no-report"]) == 0
    summary = pd.read_csv(out / "tables" / "adverse_events_summary.csv")
    first = summary.iloc[0]
    assert first["row"] == "any adverse event" and first["overall_participants"] == 2 and first["overall_n"] == 120
    assert (out / "tables" / "adverse_events.docx").is_file()


def test_grant_report_suppresses_small_adverse_event_counts_but_not_nih(tmp_path):
    ae = "participant_id,term,category,serious\nSIM0001,Back pain,MSK,no\nSIM0002,Syncope,NERV,yes\n"
    edit = lambda t: t.replace("reporting:\n", "reporting:\n  suppress_below: 5\n  adverse_events:\n"  # noqa: E731
                                                "    path: ../examples/precision-release-sim/ae.csv\n").replace(
        "    site: {site-A", "    adverse_event_category: {MSK: Musculoskeletal, NERV: Nervous system}\n    site: {site-A")
    plan = copy_trial(tmp_path, plan_edit=edit, extra_files={"ae.csv": ae})
    out = tmp_path / "out"
    assert run_cli(["grant-report", str(plan), "--period-end", "2023-12-31", "--out", str(out), "--no-report"]) == 0
    html = (out / "tables" / "adverse_events.html").read_text()
    assert "Musculoskeletal" in html and "Nervous system" in html and ">*<" in html
    assert ">1 (50.0%)<" not in html  # SIM0001 is one of 2 participants with an event: hidden
    summary = pd.read_csv(out / "tables" / "adverse_events_summary.csv")  # the CSV hides the same cells
    assert summary[["treatment_participants", "control_participants", "treatment_events"]].isna().all().all()
    assert summary["overall_participants"].tolist()[:2] == [2, 1]  # any event: 2; serious: 1 (published margin)
    nih = pd.read_csv(out / "tables" / "nih_enrollment.csv")  # submitted to NIH: exact
    assert nih.loc[nih["Racial Categories"] == "American Indian/Alaska Native", "Total"].item() == 3


def test_grant_report_bad_period(tmp_path, capsys):
    assert run_cli(["grant-report", str(PLAN), "--period-end", "31/12/2023x", "--out", str(tmp_path / "o"), "--no-report"]) == 2
    assert "not a date" in capsys.readouterr().err


def test_power_manifest_records_command_and_seed(tmp_path):
    import json

    out = tmp_path / "power"
    assert run_cli(["power", "--d", "0.5", "--n", "64", "--simulate", "100", "--seed", "3", "--out", str(out)]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["seed"] == 3
    assert {f["path"] for f in manifest["files"]} == {"power.csv", "power_curve.csv", "power_curve.png", "power_curve.svg"}
    assert run_cli(["power", "--d", "0.5", "--n", "64", "--out", str(out)]) == 0  # an earlier output may be replaced


def test_grant_report_reconciles_consort_with_an_mmrm_primary_analysis(tmp_path):
    from analysis.pipeline import load_trial
    from analysis.stats.models.plan_models import fit_plan_mmrm
    from tests.conftest import EXAMPLE_PLAN

    examples = EXAMPLE_PLAN.parent.parent / "examples"
    text = EXAMPLE_PLAN.read_text().replace("primary_model: ancova", "primary_model: mmrm")
    plan = tmp_path / "mmrm.yaml"
    plan.write_text(text.replace("path: ../examples", f"path: {examples}"))
    out = tmp_path / "grant"
    assert run_cli(["grant-report", str(plan), "--period-end", "2023-12-31", "--out", str(out), "--no-report"]) == 0
    counts = pd.read_csv(out / "tables" / "consort_counts.csv")
    analysed = counts[counts["stage"] == "analysed"].set_index("arm")["n"]
    trial = load_trial(plan)
    fit = fit_plan_mmrm(trial.dataset, trial.plan, "pain_interference", trial.plan.covariates, trial.participants)
    # the MMRM uses everyone with a baseline and at least one follow-up value: more than the ANCOVA's 53/57
    assert (fit.n_treatment, fit.n_control) == (57, 60)
    assert (analysed["treatment"], analysed["control"]) == (57, 60)


def test_grant_report_figures_are_byte_identical_between_runs(tmp_path):
    from tests.conftest import EXAMPLE_PLAN

    for name in ("a", "b"):
        assert run_cli(["grant-report", str(EXAMPLE_PLAN), "--period-end", "2023-12-31",
                        "--out", str(tmp_path / name), "--no-report"]) == 0
    for figure in ("consort.svg", "consort.png", "enrollment.svg", "retention.svg"):
        assert (tmp_path / "a" / "figures" / figure).read_bytes() == (tmp_path / "b" / "figures" / figure).read_bytes()
