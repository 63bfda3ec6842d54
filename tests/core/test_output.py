"""Safe writing: formula neutralisation, stable bytes, atomic directories."""

from __future__ import annotations

import pandas as pd
import pytest

from analysis.core.output import neutralise_formula, safe_child, staged_directory, table_csv_bytes


@pytest.mark.parametrize(
    ("cell", "expected"),
    [("=1+1", "'=1+1"), ("+cmd", "'+cmd"), ("-x", "'-x"), ("@SUM(A1)", "'@SUM(A1)"), ("\tx", "'\tx"),
     ("-3.5", "-3.5"), ("+2e3", "+2e3"), ("plain", "plain"), (3.0, 3.0)],
)
def test_formula_cells_are_neutralised_but_numbers_are_not(cell, expected):
    assert neutralise_formula(cell) == expected


def test_table_bytes_are_stable_and_safe():
    frame = pd.DataFrame({"participant_id": ["=HYPERLINK(\"x\")", "P2"], "value": [0.1 + 0.2, float("nan")]})
    data = table_csv_bytes(frame)
    assert data == b"participant_id,value\n\"'=HYPERLINK(\"\"x\"\")\",0.30000000000000004\nP2,\n"
    assert table_csv_bytes(frame) == data


def test_staged_directory_replaces_only_on_success(tmp_path):
    out = tmp_path / "run"
    with staged_directory(out, inputs=()) as stage:
        (stage / "a.txt").write_text("first")
        (stage / "manifest.json").write_text("{}")
    assert (out / "a.txt").read_text() == "first"
    with pytest.raises(RuntimeError), staged_directory(out, inputs=()) as stage:
        (stage / "a.txt").write_text("second")
        raise RuntimeError("stage failed")
    assert (out / "a.txt").read_text() == "first"
    assert [p.name for p in tmp_path.iterdir()] == ["run"]


def test_safe_child_refuses_escape(tmp_path):
    assert safe_child(tmp_path, "tables/x.csv") == (tmp_path / "tables/x.csv").resolve()
    with pytest.raises(ValueError, match="escapes the output directory"):
        safe_child(tmp_path, "../outside.csv")


def test_a_folder_that_is_not_a_trialkit_output_is_never_replaced(tmp_path):
    from analysis.core.errors import UsageError

    documents = tmp_path / "documents"
    documents.mkdir()
    (documents / "thesis.docx").write_text("years of work")
    with pytest.raises(UsageError, match="not a trialkit output"), staged_directory(documents, inputs=()) as stage:
        (stage / "manifest.json").write_text("{}")
    assert (documents / "thesis.docx").read_text() == "years of work"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["documents"]


def test_an_empty_folder_or_an_earlier_output_may_be_replaced(tmp_path):
    for name in ("empty", "earlier"):
        (tmp_path / name).mkdir()
    # an output from before the .trialkit-output marker: trialkit's manifest.json (transition rule)
    (tmp_path / "earlier" / "manifest.json").write_text('{"trialkit_version": "0.1.0"}')
    for name in ("empty", "earlier"):
        with staged_directory(tmp_path / name, inputs=()) as stage:
            (stage / "manifest.json").write_text('{"new": true}')
        assert (tmp_path / name / "manifest.json").read_text() == '{"new": true}'


@pytest.mark.parametrize("level", [0, 1, 1.5, -0.1, "0.95", True, None])
def test_one_confidence_level_check_everywhere(level):
    from analysis.core.errors import UsageError
    from analysis.stats.effects import mean_difference
    from analysis.stats.meta import pool
    from analysis.stats.models.responders import compare_proportions

    for call in (lambda: mean_difference(10, 1.0, 1.0, 10, 0.0, 1.0, ci_level=level),
                 lambda: pool([0.1, 0.2], [0.01, 0.02], ci_level=level),
                 lambda: compare_proportions(5, 10, 3, 10, ci_level=level)):
        with pytest.raises(UsageError, match="ci_level must be a number strictly between 0 and 1"):
            call()
