"""Shared fixtures: the bundled example plan and a factory for small trials written to tmp_path."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
EXAMPLE_PLAN = REPO / "data" / "studies" / "example-precision-release.yaml"
REFERENCE = Path(__file__).resolve().parent / "reference"

SMALL_PLAN = """\
study:
  id: small
  title: Small test trial
seed: 7
data:
  participants:
    path: participants.csv
  measurements:
    path: measurements.csv
arms:
  treatment: {label: Release, codes: [T]}
  control: {label: Stretching, codes: [C]}
visits:
  baseline: base
  followup:
    - {label: w4, week: 4}
    - {label: w8, week: 8}
  primary: w8
outcomes:
  - name: pain
    label: Pain NRS
    unit: points
    range: [0, 10]
    better: lower
    mcid: {points: 2, percent: 30}
"""

SMALL_PARTICIPANTS = """\
participant_id,arm,age,disposition
P1,T,40,completed
P2,C,50,completed
P3,T,35,completed
P4,C,61,withdrawn
"""

SMALL_MEASUREMENTS = """\
participant_id,visit,outcome,value
P1,base,pain,6
P1,w4,pain,4
P1,w8,pain,3
P2,base,pain,5
P2,w4,pain,5
P2,w8,pain,4
P3,base,pain,7
P3,w4,pain,5
P3,w8,pain,2
P4,base,pain,6
P4,w4,pain,6
"""


@pytest.fixture
def small_trial(tmp_path: Path):
    """Write a small valid trial (plan + two CSVs) into tmp_path; returns a writer for variants.

    ``small_trial()`` writes the valid trial and returns the plan path; keyword arguments replace
    the plan text or a file's content, e.g. ``small_trial(measurements=...)``.
    """

    def write(plan: str = SMALL_PLAN, participants: str | bytes = SMALL_PARTICIPANTS,
              measurements: str | bytes = SMALL_MEASUREMENTS) -> Path:
        for name, content in (("participants.csv", participants), ("measurements.csv", measurements)):
            target = tmp_path / name
            if isinstance(content, bytes):
                target.write_bytes(content)
            else:
                target.write_text(textwrap.dedent(content), encoding="utf-8")
        plan_path = tmp_path / "plan.yaml"
        plan_path.write_text(plan, encoding="utf-8")
        return plan_path

    return write


# Property tests run the same examples on every machine, so a CI result can be reproduced; the
# examples still come from hypothesis' search (derandomize seeds it from each test's source).
from hypothesis import settings  # noqa: E402

settings.register_profile("trialkit", derandomize=True, print_blob=True)
settings.load_profile("trialkit")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests marked ``slow`` (the installed-wheel test) first, so that under pytest-xdist they run
    beside the rest of the suite instead of alone at its end."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)
