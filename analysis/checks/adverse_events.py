"""Adverse events: the data contract (pandera), read and checked against the randomised participants.

The contract is documented for data managers in ``data/schemas/adverse_events.md``. One row per
event: ``participant_id`` (must be a randomised participant), ``term`` (verbatim or coded term),
``category`` (e.g. MedDRA system organ class or the study's own grouping), ``serious`` (yes/no),
optional ``severity`` (mild/moderate/severe), ``related`` (yes/no) and ``onset_date`` (YYYY-MM-DD).
"""

from __future__ import annotations

import pandas as pd
import pandera.pandas as pa
from pandera.errors import SchemaErrors

from analysis.core.dates import impossible_dates
from analysis.core.errors import DataError, failure
from analysis.plan import LoadedPlan
from analysis.sources.files import RawTable, canonical_columns, read_file

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
        "onset_date": pa.Column(str, nullable=True, required=False, checks=[
            pa.Check.str_matches(r"^\d{4}-\d{2}-\d{2}$", error="must be a date written YYYY-MM-DD"),
            # the form alone lets 2023-02-30 through, and to_datetime would make it missing unsaid
            pa.Check(lambda s: ~impossible_dates(s), error="must be a real calendar date (YYYY-MM-DD)"),
        ]),
    },
    strict=False,
    coerce=True,
    name="adverse_events",
)


def validate_adverse_events(frame: pd.DataFrame, participants: pd.DataFrame, source: str = "adverse_events") -> pd.DataFrame:
    """Check an adverse-event table against the contract and the participants; every failure at once.

    ``frame`` has canonical column names and file row numbers as its index (as
    :func:`analysis.sources.files.read_file` gives). Returns the typed table (``serious``/``related`` as
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
    table: RawTable = read_file(spec, loaded.path.parent, "adverse events", rows_required=False)  # none is an answer
    frame = canonical_columns(table, spec, REQUIRED)
    return validate_adverse_events(frame, participants, str(table.path))
