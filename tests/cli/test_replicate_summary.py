"""The terminal summary of `trialkit replicate` says the report's verdicts, claim by claim.

The CLI output is parsed and compared with the replication's own tables (claim_verdicts.csv,
derived independently here from consistency.csv / case_sensitivity.csv) and with conclusion.txt,
on the bundled published plans. Known findings are pinned by hand: the precision-release paper's
pain-interference figures fit the instrument's range under none of its 6 readings.
"""

from __future__ import annotations

import re

import pandas as pd
import pytest

from analysis.cli import run_cli
from tests.conftest import REPO

STUDIES = REPO / "data" / "studies"
CLAIM = re.compile(r'^  claim: "(?P<printed>.*)" \((?P<outcome>[^()]*)\)$')
READINGS = re.compile(r"^    readings tried: (?P<readings>.*)$")
PLAUSIBLE = re.compile(r"^    plausible under (?P<text>(?P<k>\d+) of (?P<n>\d+) readings(?P<box>.*))$")
BOX = re.compile(r"^ at the central assumptions; (?P<share>< 1%|> 99%|\d+%) of readings across the assumption box$")
VERDICT = re.compile(r"^    verdict: (?P<verdict>.*)$")


@pytest.fixture(scope="module")
def summaries(tmp_path_factory):
    """(terminal output, output folder) of `trialkit replicate --no-report` for every bundled published plan."""
    root = tmp_path_factory.mktemp("replicate-summary")
    capture = pytest.MonkeyPatch()
    outputs = {}
    import io

    from analysis.cli import console

    for study in ("precision-release-2023", "redefined-protocol-2023", "case-43m"):
        buffer = io.StringIO()
        # rich's `file` is a property over `_file` (None = the current sys.stderr): patch `_file` so
        # that undoing restores None, not the stream that happened to be sys.stderr here
        capture.setattr(console, "_file", buffer)
        out = root / study
        assert run_cli(["replicate", str(STUDIES / f"{study}.yaml"), "--out", str(out), "--no-report"]) == 0
        outputs[study] = (buffer.getvalue(), out)
    capture.undo()
    return outputs


def _parse(text: str) -> pd.DataFrame:
    rows, lines = [], text.splitlines()
    for i, line in enumerate(lines):
        match = CLAIM.match(line)
        if not match:
            continue
        readings, plausible, verdict = READINGS.match(lines[i + 1]), PLAUSIBLE.match(lines[i + 2]), VERDICT.match(lines[i + 3])
        assert readings and plausible and verdict, lines[i:i + 4]
        rows.append({"printed": match["printed"], "outcome": match["outcome"], "readings": readings["readings"],
                     "n_plausible": int(plausible["k"]), "n_readings": int(plausible["n"]), "box": plausible["box"],
                     "plausible_under": plausible["text"], "verdict": verdict["verdict"]})
    return pd.DataFrame(rows)


def parse_claims_table(html: str) -> pd.DataFrame:
    """The report's claims table (the first table with a "Claim as printed" column); a cell's
    lines (one reading per line) joined with "; " as the terminal prints them."""
    import io

    tables = pd.read_html(io.StringIO(html.replace("<br>", "; ")), match="Claim as printed")
    return tables[0]


@pytest.mark.parametrize("study", ["precision-release-2023", "redefined-protocol-2023", "case-43m"])
def test_terminal_verdicts_equal_the_report_tables(summaries, study):
    text, out = summaries[study]
    printed = _parse(text)
    table = pd.read_csv(out / "claim_verdicts.csv")
    assert len(printed) == len(table) >= 1
    for column in ("printed", "outcome", "readings", "n_plausible", "n_readings", "plausible_under", "verdict"):
        assert printed[column].tolist() == table[column].tolist(), column
    # independently of claim_verdicts.csv: the counts from the underlying tables
    if (out / "consistency.csv").exists():
        consistency = pd.read_csv(out / "consistency.csv")
        for row in printed.itertuples():
            mine = consistency[consistency["outcome"] == row.outcome]
            ok = mine.groupby(["percent_reading", "fold_reading"])["passed"].all()
            assert (row.n_plausible, row.n_readings) == (int(ok.sum()), len(ok))
            assert row.n_readings == len(row.readings.split("; "))
    else:
        sens = pd.read_csv(out / "case_sensitivity.csv")
        assert (printed["n_plausible"].iloc[0], printed["n_readings"].iloc[0]) == (int(sens["exceeds_mdc"].sum()), len(sens))
    # the share of the assumption box, independently from box.csv (a trial) or absent (a single case)
    if (out / "box.csv").exists():
        box = pd.read_csv(out / "box.csv")
        for row in printed.itertuples():
            share = box.loc[box["outcome"] == row.outcome, "consistent"].mean()
            shown = BOX.match(row.box)["share"]
            expected = "< 1%" if 0 < share < 0.01 else "> 99%" if 0.99 < share < 1 else f"{round(100 * share)}%"
            assert shown == expected, (row.outcome, share)
    else:
        assert (printed["box"] == "").all()
    # the conclusion paragraph says the same counts for every trial outcome
    conclusion = (out / "conclusion.txt").read_text(encoding="utf-8")
    if (out / "consistency.csv").exists():
        for row in printed.itertuples():
            assert f"under {row.n_plausible} of {row.n_readings} readings" in conclusion


def test_precision_release_pain_interference_is_implausible_and_said_so(summaries):
    text, _ = summaries["precision-release-2023"]
    printed = _parse(text).set_index("outcome")
    pain = printed.loc["pain_interference"]
    assert pain["printed"] == "pain interference -32%; outperforming standard physiotherapy by 1.7-fold"
    assert (pain["n_plausible"], pain["n_readings"]) == (0, 6)
    assert pain["verdict"].startswith("implausible")
    rotation = printed.loc["trunk_rotation"]
    assert (rotation["n_plausible"], rotation["n_readings"]) == (6, 6)
    assert rotation["verdict"].startswith("plausible")


def test_reproduction_is_said_to_be_by_construction_not_a_finding(summaries):
    for study in ("precision-release-2023", "redefined-protocol-2023"):
        text, _ = summaries[study]
        assert "headline figures reproduced within tolerance" not in text
        line = next(x for x in text.splitlines() if "calibrated trial" in x)
        assert "by construction" in line and "SIMULATED" in line and "not that they are plausible" in line
    text, _ = summaries["case-43m"]
    assert "calibrated trial" not in text  # a case report has no participant-level replication


@pytest.mark.parametrize("study", ["precision-release-2023", "redefined-protocol-2023", "case-43m"])
def test_the_reports_claims_table_says_what_the_terminal_says(summaries, study):
    """The claims table the replication notebook displays (ReplicationOutputs.claims_html), parsed
    as HTML, against the terminal's lines, claim by claim: readable, same verdicts."""
    from analysis.plan.published import load_published
    from analysis.replicate import ReplicationOutputs

    text, out = summaries[study]
    printed = _parse(text)
    table = parse_claims_table(ReplicationOutputs.load(out).claims_html())
    assert table.columns.tolist() == ["Claim as printed", "Outcome", "Readings tried", "Plausible under", "Verdict"]
    plan = load_published(out / "published_plan.yaml").plan
    labels = [plan.outcome(name).label for name in printed["outcome"]]
    assert table["Claim as printed"].tolist() == printed["printed"].tolist()
    assert table["Outcome"].tolist() == labels
    assert table["Readings tried"].tolist() == printed["readings"].tolist()
    assert table["Plausible under"].tolist() == printed["plausible_under"].tolist()
    assert table["Verdict"].tolist() == printed["verdict"].tolist()
    assert not any("_" in str(cell) for cell in table["Readings tried"])  # no snake_case


def test_primary_outcome_comes_first(summaries):
    text, _ = summaries["precision-release-2023"]
    assert _parse(text)["outcome"].tolist() == ["pain_interference", "trunk_rotation"]  # the plan marks it primary
