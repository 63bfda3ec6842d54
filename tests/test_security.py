"""Security: nothing a user supplies is executed, written outside the output directory, rendered as
markup in a report or run as a spreadsheet formula; reports list no participant identifiers.

Hostile inputs used throughout: a participant id ``<script>alert(1)</script>``, ids that are
spreadsheet formulas (``=cmd|' /C calc'!A0``, ``@SUM(1)``, ``+1+1``, ``-2+3``), and a site name
that is an HTML element with an event handler.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pandas as pd
import pytest

from analysis.cli import run_cli
from analysis.core.errors import PlanError
from analysis.core.output import table_csv_bytes
from analysis.plan import parse_plan
from analysis.reporting.grant import table_html
from analysis.reporting.report import html_table
from tests.conftest import EXAMPLE_PLAN, REPO, SMALL_PLAN

SCRIPT_ID = "<script>alert(1)</script>"
FORMULA_IDS = ["=cmd|' /C calc'!A0", "@SUM(1)", "+1+1", "-2+3"]
HOSTILE_SITE = '<img src=x onerror="alert(2)">'

# ------------------------------------------------------------------------------------------------
# Nothing the user supplies is executed


def _calls(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            yield node, ast.unparse(node.func)


@pytest.mark.parametrize("path", sorted((REPO / "analysis").rglob("*.py")), ids=lambda p: str(p.relative_to(REPO)))
def test_source_never_evaluates_or_unpickles(path: Path):
    """No eval/exec/compile, no pickle-family loaders, no unsafe YAML, no shell=True, anywhere."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    forbidden = re.compile(
        r"^(eval|exec|compile|__import__|pickle\.\w+|cPickle\.\w+|dill\.\w+|joblib\.load|marshal\.loads?|shelve\.open"
        r"|yaml\.(load|load_all|unsafe_load|unsafe_load_all|full_load|full_load_all)|pd\.read_pickle|pandas\.read_pickle"
        r"|os\.system|os\.popen)$"
    )
    problems = [f"line {node.lineno}: {name}" for node, name in _calls(tree) if forbidden.match(name)]
    for node, name in _calls(tree):
        keywords = {k.arg: ast.unparse(k.value) for k in node.keywords}
        if keywords.get("allow_pickle") == "True" or keywords.get("shell") == "True":
            problems.append(f"line {node.lineno}: {name}({keywords})")
    imports = [n for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))]
    for node in imports:
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
        problems += [f"line {node.lineno}: import {n}" for n in names if n.split(".")[0] in {"pickle", "dill", "marshal", "shelve"}]
    assert problems == []


def test_plan_yaml_tags_that_would_run_code_are_refused(tmp_path):
    marker = tmp_path / "PWNED"
    for payload in (
        f"!!python/object/apply:os.system ['touch {marker}']",
        f"!!python/object/new:subprocess.Popen [['touch', '{marker}']]",
        "!!python/name:os.system",
    ):
        with pytest.raises(PlanError, match="not valid YAML"):
            parse_plan(SMALL_PLAN.replace("seed: 7", f"seed: {payload}"), "plan.yaml")
    assert not marker.exists()


# ------------------------------------------------------------------------------------------------
# Output paths derived from a plan stay inside the output directory


@pytest.mark.parametrize("study_id", ["../escape", "a/b", "..", "/abs", "x\\..\\y", ".hidden"])
def test_study_id_cannot_be_a_path(study_id):
    """The study id names the default output directory (reports/<id>)."""
    with pytest.raises(PlanError, match="study.id"):
        parse_plan(SMALL_PLAN.replace("id: small", f"id: '{study_id}'"), "plan.yaml")


@pytest.mark.parametrize("name", ["../pain", "pain/../../x", "/tmp/pain", "Pain", "pain.csv"])
def test_outcome_name_cannot_be_a_path(name):
    """Outcome names become figure file names (figures/trajectory_<name>.png)."""
    with pytest.raises(PlanError, match=r"outcomes\.0\.name"):
        parse_plan(SMALL_PLAN.replace("name: pain", f"name: '{name}'"), "plan.yaml")


# ------------------------------------------------------------------------------------------------
# A run on hostile identifiers: escaped in HTML, neutralised in CSV, not listed in the report

HOSTILE_PARTICIPANTS = "participant_id,arm,age,site,disposition\n" + "".join(
    f"{pid},{arm},{40 + i},{HOSTILE_SITE if i % 2 else 'A'},completed\n"
    for i, (pid, arm) in enumerate(
        [(f'"{SCRIPT_ID}"', "T"), *((f'"{p}"', "C") for p in FORMULA_IDS)]
        + [(f"Q{i}", "T" if i % 2 else "C") for i in range(1, 8)]
    )
)


def _hostile_measurements() -> str:
    ids = pd.read_csv(pd.io.common.StringIO(HOSTILE_PARTICIPANTS), dtype=str)
    lines = ["participant_id,visit,outcome,value"]
    for i, row in enumerate(ids.itertuples(index=False)):
        quoted = '"' + row.participant_id.replace('"', '""') + '"'
        drop = 2 if row.arm == "T" else 5
        for visit, value in (("base", 6 + i % 3), ("w4", 4 + i % 4), ("w8", drop + i % 3)):
            lines.append(f"{quoted},{visit},pain,{value}")
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def hostile_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile")
    (root / "participants.csv").write_text(HOSTILE_PARTICIPANTS, encoding="utf-8")
    (root / "measurements.csv").write_text(_hostile_measurements(), encoding="utf-8")
    plan = root / "plan.yaml"
    plan.write_text(SMALL_PLAN + "covariates: [site]\n", encoding="utf-8")
    out = root / "out"
    assert run_cli(["run", str(plan), "--out", str(out)]) == 0
    return out


def test_hostile_ids_are_read_as_given(hostile_run):
    dataset = pd.read_parquet(hostile_run / "data" / "analysis_dataset.parquet")
    assert {SCRIPT_ID, *FORMULA_IDS} <= set(dataset["participant_id"])


def test_csv_exports_neutralise_formulas_but_not_numbers(hostile_run):
    text = (hostile_run / "data" / "analysis_dataset.csv").read_text(encoding="utf-8")
    frame = pd.read_csv(hostile_run / "data" / "analysis_dataset.csv", dtype=str, keep_default_na=False)
    ids = set(frame["participant_id"])
    assert {"'" + pid for pid in FORMULA_IDS} <= ids
    assert not ids & set(FORMULA_IDS)
    assert SCRIPT_ID in ids  # not a formula: kept as is
    # numbers, including negative ones, stay numbers
    change = pd.to_numeric(frame["change"], errors="coerce")
    assert (change < 0).any() and frame["change"].str.startswith("'").sum() == 0
    assert "'-" not in text.replace("'-2+3", "")
    # every CSV the run wrote: no cell starts with a formula character unless it is a number
    for path in hostile_run.rglob("*.csv"):
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
        for column in table.columns:
            cells = table[column]
            risky = cells[cells.str.match(r"^[=+\-@\t\r]") & pd.to_numeric(cells, errors="coerce").isna()]
            assert risky.empty, (path.name, column, risky.tolist())


def test_report_escapes_and_lists_no_participant(hostile_run):
    html = (hostile_run / "report.html").read_text(encoding="utf-8")
    assert "alert(1)" not in html  # the hostile participant id: neither as markup nor as text (no listing)
    # the hostile site name is a category of Table 1: shown, as text only
    assert HOSTILE_SITE not in html and '&lt;img src=x onerror="alert(2)"&gt;' in html
    for pid in FORMULA_IDS + ["Q1", "Q7"]:
        assert f">{pid}<" not in html and f">{pid} " not in html


def test_failure_report_escapes_and_neutralises(tmp_path, capfd):
    bad = HOSTILE_PARTICIPANTS.replace(f'"{SCRIPT_ID}",T,', f'"{SCRIPT_ID}",=HYPERLINK("x"),')
    (tmp_path / "participants.csv").write_text(bad, encoding="utf-8")
    (tmp_path / "measurements.csv").write_text(_hostile_measurements(), encoding="utf-8")
    (tmp_path / "plan.yaml").write_text(SMALL_PLAN, encoding="utf-8")
    out = tmp_path / "out"
    assert run_cli(["run", str(tmp_path / "plan.yaml"), "--out", str(out), "--no-report"]) == 1
    assert "=HYPERLINK" in capfd.readouterr().err
    failures = pd.read_csv(tmp_path / "out.validation_failures.csv", dtype=str, keep_default_na=False)
    assert failures[["row", "column", "value"]].values.tolist() == [["2", "arm", "'=HYPERLINK(\"x\")"]]
    assert not out.exists()


def test_html_tables_escape_every_cell_and_header():
    frame = pd.DataFrame({"participant_id": [SCRIPT_ID, HOSTILE_SITE], "<b>col</b>": [1.5, float("nan")]})
    for rendered in (html_table(frame), table_html(frame, title="<i>t</i>", note="<u>n</u>")):
        assert "<script>" not in rendered and "<img" not in rendered and "<b>" not in rendered
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in rendered
        assert "&lt;b&gt;col&lt;/b&gt;" in rendered
    assert "<i>" not in table_html(frame, title="<i>t</i>") and "<u>" not in table_html(frame, "t", note="<u>n</u>")


def test_table_bytes_neutralise_hostile_ids():
    frame = pd.DataFrame({"participant_id": [*FORMULA_IDS, SCRIPT_ID, "-3.5", "1e5"]})
    lines = table_csv_bytes(frame).decode().splitlines()[1:]
    assert lines == ["'=cmd|' /C calc'!A0", "'@SUM(1)", "'+1+1", "'-2+3", SCRIPT_ID, "-3.5", "1e5"]


def test_example_report_lists_no_participant_identifier(tmp_path):
    out = tmp_path / "example"
    assert run_cli(["run", str(EXAMPLE_PLAN), "--out", str(out)]) == 0
    html = (out / "report.html").read_text(encoding="utf-8")
    ids = pd.read_csv(EXAMPLE_PLAN.parent.parent / "examples" / "precision-release-sim" / "participants.csv")["participant_id"]
    assert len(ids) == 120
    assert [pid for pid in ids if pid in html] == []
    assert re.search(r"SIM\d{4}", html) is None


def test_meta_report_escapes_study_labels(tmp_path):
    effects = tmp_path / "effects.csv"
    effects.write_text(f'study,yi,vi\n"{SCRIPT_ID}",0.1,0.01\n"=cmd|x",0.3,0.02\nLee 2021,0.2,0.015\n', encoding="utf-8")
    out = tmp_path / "meta"
    assert run_cli(["meta", "--input", str(effects), "--output", str(tmp_path / "pooled.csv"),
                    "--forest", str(tmp_path / "forest.svg"), "--report", str(out)]) == 0
    html = (out / "meta_report.html").read_text(encoding="utf-8")
    assert "alert(1)" in html  # the study is shown ...
    assert SCRIPT_ID not in html  # ... as text, never as markup
    svg = (tmp_path / "forest.svg").read_text(encoding="utf-8")
    assert SCRIPT_ID not in svg
    pooled = pd.read_csv(tmp_path / "pooled.csv", dtype=str, keep_default_na=False)
    assert "'=cmd|x" in set(pooled["study"]) and "=cmd|x" not in set(pooled["study"])
