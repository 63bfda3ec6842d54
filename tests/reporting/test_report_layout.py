"""The run report reads like a results section: sections in order, reader-facing tables, appendix."""

from __future__ import annotations

import json
import re

import pytest

from analysis.core.resources import notebook_path
from analysis.reporting.report import SECTIONS, RunOutputs, report_docx, table_html

PLAN = """
study: {id: demo, title: Demo trial, simulated: true}
seed: 1
data:
  participants: {path: trial.csv}
  measurements:
    path: trial.csv
    layout: wide
    cell_columns: {pain: {baseline: pain0, week4: pain4, week8: pain8}}
arms: {treatment: {label: Drug, codes: [D]}, control: {label: Placebo, codes: [P]}}
visits:
  baseline: baseline
  followup: [{label: week4, week: 4}, {label: week8, week: 8}]
  primary: week8
outcomes:
- {name: pain, label: Pain, unit: points, range: [0, 10], better: lower, mcid: {points: 2}}
analysis: {n_boot: 200, imputations: 5}
"""
TRIAL = """participant_id,arm,disposition,age,sex,pain0,pain4,pain8
p01,D,completed,41,F,7,5,3
p02,P,completed,52,M,6,6,5
p03,D,completed,38,F,8,6,5
p04,P,completed,60,F,7,6,6
p05,D,completed,45,M,6,4,2
p06,P,completed,33,M,8,7,6
p07,D,withdrawn,57,F,7,5,
p08,P,completed,49,F,5,5,4
p09,D,completed,62,M,9,6,6
p10,P,completed,44,M,7,7,5
p11,D,completed,39,F,6,5,3
p12,P,completed,58,F,8,8,7
"""


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    from analysis.pipeline import run

    folder = tmp_path_factory.mktemp("report")
    (folder / "plan.yaml").write_text(PLAN)
    (folder / "trial.csv").write_text(TRIAL)
    return run(folder / "plan.yaml", folder / "out", render_report=False)


def test_the_notebook_shows_the_sections_in_order():
    notebook = json.loads(notebook_path("report.ipynb").read_text(encoding="utf-8"))
    assert all(not cell.get("outputs") for cell in notebook["cells"] if cell["cell_type"] == "code")
    source = "\n".join("".join(cell["source"]) for cell in notebook["cells"])
    shown = re.findall(r'section_html\("(\w+)"\)', source)
    assert shown == [anchor for anchor, _ in SECTIONS]


def test_reader_tables_use_labels_and_publication_formats(run_dir):
    out = RunOutputs.load(run_dir)
    tables = out.reader_tables()
    assert list(tables)[:3] == ["table1", "consort", "primary"]
    primary = tables["primary"]
    assert [s.label for s in primary.spanners] == ["Drug\nN = 6", "Placebo\nN = 6"]
    text = " ".join(" ".join(row) for t in tables.values() for row in t.cell_texts())
    assert "inf" not in text.replace("infinity", "") and "0.950" not in text
    assert tables["table1"].columns[1].label == "Drug\nN = 6"


def test_report_tables_and_docx_are_reproducible(run_dir):
    first, second = RunOutputs.load(run_dir), RunOutputs.load(run_dir)
    assert report_docx(first) == report_docx(second)
    assert [table_html(t) for t in first.reader_tables().values()] == [table_html(t) for t in second.reader_tables().values()]


@pytest.mark.slow
def test_the_rendered_report_has_the_sections_in_order(run_dir):
    from analysis.reporting.report import render_report

    html = render_report(run_dir, run_dir / "report.html").read_text(encoding="utf-8")
    html = html.replace('"', "'")  # nbconvert may rewrite the quotes of attributes
    positions = [html.find(f"id='{anchor}'") for anchor, _ in SECTIONS]
    assert -1 not in positions and positions == sorted(positions)
    assert html.find("SIMULATED DATA") < positions[0]
    assert "href='#primary'" in html  # the table of contents links to the sections
    body, appendix = html.split("id='appendix'", 1)
    assert "Table 1. Baseline characteristics by arm" in body and "Table 2. Primary outcome: Pain (points)" in body
    assert "ci_level" not in body and "ci_level" in appendix  # the tidy tables only in the appendix
    assert "<details" in appendix
    widths = re.findall(r"<img[^>]*width='(\d+)'", html)
    assert widths and all(width == "900" for width in widths)


def test_the_word_tables_hold_the_cells_of_the_html_tables(run_dir):
    from analysis.reporting.tables.docx import docx_cell_texts

    tables = list(RunOutputs.load(run_dir).reader_tables().values())
    word = docx_cell_texts(report_docx(RunOutputs.load(run_dir)))
    assert len(word) == len(tables)
    for table, rows in zip(tables, word, strict=True):
        expected, group = [], None
        for row in table.rows:
            if row.group and row.group != group:
                expected.append([row.group])
            group = row.group
            expected.append([row.cells.get(k, "") for k in table.keys])
        header_rows = 2 if table.spanners else 1
        assert rows[header_rows:] == expected, table.title


def test_figures_primary_outcome_first_and_only_those_that_exist(tmp_path):
    from tests.conftest import SMALL_PLAN

    plan = SMALL_PLAN + """  - name: grip
    label: Grip
    unit: kg
    range: [0, 100]
    better: higher
    primary: true
"""
    (tmp_path / "plan.yaml").write_text(plan)
    (tmp_path / "figures").mkdir()
    for name in ("estimation_pain.png", "estimation_grip.png", "trajectory_pain.png"):
        (tmp_path / "figures" / name).write_bytes(b"png")
    out = RunOutputs.load(tmp_path)
    assert [p.name for p in out.outcome_figures("estimation")] == ["estimation_grip.png", "estimation_pain.png"]
    assert [p.name for p in out.outcome_figures("estimation", "primary")] == ["estimation_grip.png"]
    assert [p.name for p in out.outcome_figures("trajectory", "primary")] == []
    assert "SIMULATED DATA" not in out.title_block_html("2026-01-01")
    assert "href='#appendix'" in out.title_block_html("2026-01-01")


@pytest.mark.slow
def test_a_run_with_its_report_verifies(tmp_path):
    # verify reruns without the report: report.html and report_tables.docx are not compared,
    # everything else must be byte-identical
    from analysis.pipeline import run, verify

    (tmp_path / "plan.yaml").write_text(PLAN)
    (tmp_path / "trial.csv").write_text(TRIAL)
    out = run(tmp_path / "plan.yaml", tmp_path / "out", render_report=True)
    assert (out / "report_tables.docx").is_file()
    check = verify(out / "manifest.json")
    assert check.identical and check.differing_files == [], check.differing_files
