"""Adverse events: the data contract (pandera) and the per-arm summary for grant reports.

The contract is documented for data managers in ``data/schemas/adverse_events.md``. One row per
event: ``participant_id`` (must be a randomised participant), ``term`` (verbatim or coded term),
``category`` (e.g. MedDRA system organ class or the study's own grouping), ``serious`` (yes/no),
optional ``severity`` (mild/moderate/severe), ``related`` (yes/no) and ``onset_date`` (YYYY-MM-DD).

The summary counts *participants* with at least one event (n and percent of the arm's
randomised participants, the safety population here) and *events* (every row), per arm and
overall: any event, any serious event, and each category.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pandera.pandas as pa
from pandera.errors import SchemaErrors

from analysis.errors import DataError, failure
from analysis.io import RawTable, canonical_columns, read_file
from analysis.plan import LoadedPlan

YES = {"yes", "y", "true", "1"}
NO = {"no", "n", "false", "0"}
REQUIRED = ["participant_id", "term", "category", "serious"]
OPTIONAL = ["severity", "related", "onset_date"]
ARMS = ("treatment", "control")

_yes_no = pa.Check(lambda s: s.str.strip().str.lower().isin(YES | NO), element_wise=False, error="must be yes or no")

ADVERSE_EVENTS_SCHEMA = pa.DataFrameSchema(
    {
        "participant_id": pa.Column(str, nullable=False, checks=pa.Check.str_length(1, 64)),
        "term": pa.Column(str, nullable=False, checks=pa.Check.str_length(1, 200)),
        "category": pa.Column(str, nullable=False, checks=pa.Check.str_length(1, 200)),
        "serious": pa.Column(str, nullable=False, checks=_yes_no),
        "severity": pa.Column(str, nullable=True, required=False, checks=pa.Check.isin(["mild", "moderate", "severe"])),
        "related": pa.Column(str, nullable=True, required=False, checks=_yes_no),
        "onset_date": pa.Column(str, nullable=True, required=False, checks=pa.Check.str_matches(r"^\d{4}-\d{2}-\d{2}$", error="must be a date written YYYY-MM-DD")),
    },
    strict=False,
    coerce=True,
    name="adverse_events",
)


def validate_adverse_events(frame: pd.DataFrame, participants: pd.DataFrame, source: str = "adverse_events") -> pd.DataFrame:
    """Check an adverse-event table against the contract and the participants; every failure at once.

    ``frame`` has canonical column names and file row numbers as its index (as
    :func:`analysis.io.read_file` gives). Returns the typed table (``serious``/``related`` as
    booleans, ``onset_date`` as datetime) plus ``arm`` from ``participants``.

    Raises
    ------
    DataError
        One row per failure (file, row, column, rule, value): contract violations and events of
        participants who are not in the participants table.
    """
    problems: list[dict[str, object]] = []
    missing = [c for c in REQUIRED if c not in frame.columns]
    if missing:
        raise DataError(
            f"{source}: required column(s) {missing} not found; the file has {list(frame.columns)}",
            pd.DataFrame([failure(source, 1, c, "required column", "") for c in missing]),
        )
    text = frame.copy()
    for column in [c for c in REQUIRED + OPTIONAL if c in text.columns]:
        text[column] = text[column].astype(object).where(text[column].notna(), None)
    try:
        typed = ADVERSE_EVENTS_SCHEMA.validate(text, lazy=True)
    except SchemaErrors as errors:
        for case in errors.failure_cases.itertuples(index=False):
            row = case.index if case.index is not None and not pd.isna(case.index) else 1
            column = case.column if isinstance(case.column, str) else ""
            rule = "required: must not be empty" if str(case.check) == "not_nullable" else str(case.check)
            problems.append(failure(source, row, column, rule, case.failure_case))
        typed = text
    known = dict(zip(participants["participant_id"].astype(str), participants["arm"].astype(str), strict=True))
    ids = typed["participant_id"].astype(object)
    for row, pid in ids.items():
        if pid is not None and str(pid) not in known:
            problems.append(failure(source, row, "participant_id", "must be a participant in the participants table", pid))
    if problems:
        table = pd.DataFrame(problems).sort_values("row", kind="stable").reset_index(drop=True)
        raise DataError(f"{len(table)} problem(s) in the adverse events file {source}", table)
    out = typed.copy()
    out["participant_id"] = out["participant_id"].astype(str)
    out["serious"] = out["serious"].str.strip().str.lower().isin(YES)
    if "related" in out.columns:
        out["related"] = out["related"].map(lambda v: None if v is None or pd.isna(v) else str(v).strip().lower() in YES).astype("boolean")
    if "onset_date" in out.columns:
        out["onset_date"] = pd.to_datetime(out["onset_date"], format="%Y-%m-%d", errors="coerce")
    out["arm"] = out["participant_id"].map(known)
    return out


def read_adverse_events(loaded: LoadedPlan, participants: pd.DataFrame) -> pd.DataFrame | None:
    """Read and validate the plan's ``reporting.adverse_events`` file (``None`` when the plan has none)."""
    reporting = loaded.plan.reporting
    if reporting is None or reporting.adverse_events is None:
        return None
    spec = reporting.adverse_events
    table: RawTable = read_file(spec, loaded.path.parent, "adverse events")
    frame = canonical_columns(table, spec, REQUIRED)
    return validate_adverse_events(frame, participants, str(table.path))


def adverse_event_summary(events: pd.DataFrame, participants: pd.DataFrame) -> pd.DataFrame:
    """Participants with events and event counts per arm and overall.

    Rows: ``any adverse event``, ``serious adverse event``, then one per category (sorted). Columns:
    ``row, category``, and for each group g in treatment, control, overall: ``g_participants``
    (participants with >= 1 such event), ``g_percent`` (100 x that / ``g_n``), ``g_events``
    (number of events) and ``g_n`` (randomised participants in the group, the denominator).
    """
    groups = {
        "treatment": participants[participants["arm"] == "treatment"],
        "control": participants[participants["arm"] == "control"],
        "overall": participants,
    }
    definitions: list[tuple[str, str | None, pd.Series]] = [
        ("any adverse event", None, pd.Series(True, index=events.index)),
        ("serious adverse event", None, events["serious"].astype(bool)),
    ]
    for category in sorted(events["category"].astype(str).unique()):
        definitions.append(("category", category, events["category"].astype(str) == category))
    rows = []
    for label, category, mask in definitions:
        row: dict[str, object] = {"row": label, "category": category}
        selected = events[mask]
        for group, people in groups.items():
            ids = set(people["participant_id"].astype(str))
            in_group = selected[selected["participant_id"].isin(ids)]
            n_people = int(in_group["participant_id"].nunique())
            row[f"{group}_participants"] = n_people
            row[f"{group}_percent"] = 100.0 * n_people / len(ids) if ids else np.nan
            row[f"{group}_events"] = len(in_group)
            row[f"{group}_n"] = len(ids)
        rows.append(row)
    return pd.DataFrame(rows)


def adverse_event_display(summary: pd.DataFrame, arm_labels: dict[str, str] | None = None, digits: int = 1) -> pd.DataFrame:
    """Printable table: ``Event``, then per group "participants (%)" and "events" columns."""
    labels = {"treatment": "Treatment", "control": "Control", "overall": "Overall"} | (arm_labels or {})
    out = pd.DataFrame({"Event": [r if c is None or pd.isna(c) else f"  {c}" for r, c in zip(summary["row"], summary["category"], strict=True)]})
    for group in ("treatment", "control", "overall"):
        n = int(summary[f"{group}_n"].iloc[0]) if len(summary) else 0
        out[f"{labels[group]} (n = {n}): participants, n (%)"] = [
            f"{p} ({pct:.{digits}f}%)" for p, pct in zip(summary[f"{group}_participants"], summary[f"{group}_percent"], strict=True)
        ]
        out[f"{labels[group]}: events"] = summary[f"{group}_events"].astype(int).astype(str).to_numpy()
    return out
