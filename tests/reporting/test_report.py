"""Report helpers: escaping, display-only rounding, condensed result view."""

from __future__ import annotations

import pandas as pd

from analysis.core.tidy import tidy_frame
from analysis.reporting.report import heading, html_table, listing_html, result_view


def test_html_table_escapes_and_formats():
    frame = pd.DataFrame({"participant_id": ["<script>alert(1)</script>"], "n": [3.0], "mean": [1.23456]})
    html = html_table(frame)
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<td>3</td>" in html and "1.235" in html


def test_result_view_condenses_estimate_and_interval():
    tidy = tidy_frame([{"outcome": "pain", "visit": "w8", "contrast": "A - B", "measure": "MD",
                        "estimate": -1.5, "ci_low": -2.25, "ci_high": -0.75, "ci_level": 0.95,
                        "n_treatment": 10, "n_control": 11}])
    view = result_view(tidy, digits=2)
    assert view["estimate [CI]"].tolist() == ["-1.50 [-2.25, -0.75]"]
    assert "contrast" not in view.columns and "statistic" not in view.columns
    assert view.columns.tolist() == ["outcome", "visit", "measure", "estimate [CI]", "n_treatment", "n_control"]


def test_listing_only_when_the_plan_asks():
    from analysis.plan import parse_plan
    from tests.conftest import SMALL_PLAN

    dataset = pd.DataFrame({"participant_id": ["<b>P1</b>"], "arm": ["treatment"], "outcome": ["pain"],
                            "visit": ["w8"], "value": [3.0], "baseline": [6.0], "change": [-3.0],
                            "pct_change": [-50.0]})
    off = listing_html(dataset, parse_plan(SMALL_PLAN))
    assert "P1" not in off and "listings are off" in off
    on = listing_html(dataset, parse_plan(SMALL_PLAN + "analysis:\n  listings: true\n"))
    assert "&lt;b&gt;P1&lt;/b&gt;" in on and "<b>P1</b>" not in on


def test_heading_escapes():
    assert heading("<i>x</i>") == "<h3>&lt;i&gt;x&lt;/i&gt;</h3>"


def test_the_report_says_when_the_disposition_was_derived(tmp_path):
    from analysis.reporting.report import RunOutputs
    from tests.conftest import SMALL_PLAN

    (tmp_path / "plan.yaml").write_text(SMALL_PLAN)
    rows = [("participants", "p.csv", "rows read", 4, ""),
            ("participants", "analysis dataset", "disposition derived: completed", 3, "derived from the data <rule>"),
            ("participants", "analysis dataset", "disposition derived: lost_to_follow_up", 1, "derived from the data <rule>")]
    pd.DataFrame(rows, columns=["stage", "source", "item", "count", "reason"]).to_csv(tmp_path / "accounting.csv", index=False)
    html = RunOutputs.load(tmp_path).heading_html()
    assert ("<b>Disposition not recorded</b>: derived from the data &lt;rule&gt; (completed 3; lost_to_follow_up 1)"
            in html)
    pd.DataFrame(rows[:1], columns=["stage", "source", "item", "count", "reason"]).to_csv(tmp_path / "accounting.csv", index=False)
    assert "Disposition not recorded" not in RunOutputs.load(tmp_path).heading_html()
