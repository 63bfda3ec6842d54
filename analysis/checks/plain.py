"""The measurement checks written as plain pandera schemas, run by pandera row by row.

The reference that :func:`analysis.checks.contracts.validate_measurements` (each check on
factorised codes) is tested and benchmarked against (``tests/checks/test_columnar.py``,
``benchmarks/validation.py``): the same rules, with the same rule texts, declared the way pandera
documents them and validated with ``lazy=True``:

1. the contract ``data/schemas/measurements.yaml`` (types coerce, required values present);
2. on the typed frame, the plan's rules: visit labels and outcome names as ``Check.isin``, each
   outcome's valid range and participant x outcome x visit unique as frame-wide checks,
   participants listed (``Check.isin``);
3. on the participants table, one ``Check.isin`` per outcome: the ids with a baseline row.

:func:`plain_measurement_failures` returns the failures as ``file, row, column, rule, value``
rows, the value written as text (as in the failure table).
"""

from __future__ import annotations

import pandas as pd
import pandera.pandas as pa
from pandera.errors import SchemaErrors

# the readable rule texts and the contract's knock-on rule are the pipeline's own
from analysis.checks.contracts import rule_text, without_knock_on_failures
from analysis.core.resources import schema_path
from analysis.plan import Plan

_CASE = ["column", "check", "failure_case", "index"]
UNIQUE_RULE = "one row per participant x outcome x visit"
LISTED_RULE = "participant must be listed in the participants file"
KEY = ["participant_id", "outcome", "visit"]


def _cases(schema: pa.DataFrameSchema, frame: pd.DataFrame) -> tuple[pd.DataFrame | None, pd.DataFrame]:
    """The validated frame (``None`` on failure) and pandera's failure cases."""
    try:
        return schema.validate(frame, lazy=True), pd.DataFrame(columns=_CASE)
    except SchemaErrors as errors:
        return None, errors.failure_cases[_CASE]


def plan_schema(plan: Plan, participant_ids: pd.Series) -> pa.DataFrameSchema:
    """The plan's rules on the typed long frame, as one pandera schema."""
    visits = plan.visits.labels
    outcomes = [o.name for o in plan.outcomes]
    ranges = []
    for outcome in plan.outcomes:
        low, high = outcome.range

        def inside(frame: pd.DataFrame, name: str = outcome.name, low: float = low, high: float = high) -> pd.Series:
            return ~((frame["outcome"] == name) & ((frame["value"] < low) | (frame["value"] > high)))

        rule = f"{outcome.name} must be within its valid range {low:g} to {high:g} {outcome.unit}"
        ranges.append(pa.Check(inside, error=rule))
    return pa.DataFrameSchema(
        {
            "participant_id": pa.Column(checks=pa.Check.isin(participant_ids.tolist(), ignore_na=False, error=LISTED_RULE),
                                        nullable=True),
            "visit": pa.Column(checks=pa.Check.isin(visits, ignore_na=False, error=f"must be one of the plan's visits {visits}"),
                               nullable=True),
            "outcome": pa.Column(checks=pa.Check.isin(outcomes, ignore_na=False,
                                                      error=f"must be one of the plan's outcomes {outcomes}"), nullable=True),
            "value": pa.Column(nullable=True),
        },
        # a frame-wide check rather than ``unique=[...]``: pandera's multi-column uniqueness skips
        # rows with a missing key, and the rule counts a missing value as a value
        checks=[*ranges, pa.Check(lambda frame: ~frame.duplicated(KEY, keep=False), error=UNIQUE_RULE)],
    )


def baseline_schema(plan: Plan, typed: pd.DataFrame, measurements_name: str) -> pa.DataFrameSchema:
    """One check per outcome on the participants' ids: the ids with a baseline row for it."""
    at_baseline = typed[typed["visit"] == plan.visits.baseline]
    checks = []
    for outcome in plan.outcomes:
        ids = at_baseline.loc[at_baseline["outcome"] == outcome.name, "participant_id"].tolist()
        rule = f"must have a baseline ('{plan.visits.baseline}') row for {outcome.name} in {measurements_name}"
        checks.append(pa.Check.isin(ids, ignore_na=False, error=rule))
    return pa.DataFrameSchema({"participant_id": pa.Column(checks=checks, nullable=True)})


def plain_measurement_failures(
    long: pd.DataFrame, plan: Plan, participants: pd.DataFrame, file: str, participants_file: str,
    measurements_name: str,
) -> pd.DataFrame:
    """Validate as plain pandera does; return ``file, row, column, rule, value`` rows.

    ``long``, ``plan`` and ``participants`` (typed: ``participant_id``, ``source_row``) are
    :func:`analysis.checks.contracts.validate_measurements`'s arguments; ``file`` and
    ``participants_file`` the paths written in the rows, ``measurements_name`` the file name in
    the baseline rule.
    """
    spec = plan.data.measurements
    contract = pa.DataFrameSchema.from_yaml(schema_path("measurements.yaml"))
    validated, cases = _cases(contract, long)
    if len(cases):
        cases = without_knock_on_failures(contract, long, cases)[_CASE]
    cases = cases.assign(check=cases["check"].astype(str).map(rule_text))
    # as the pipeline types the frame: pandera's coerced values when every value coerced
    typed = (long if validated is None else validated).copy()
    typed["value"] = pd.to_numeric(typed["value"], errors="coerce")
    for column in ("participant_id", "visit", "outcome"):
        typed[column] = typed[column].astype(str)
    _, plan_cases = _cases(plan_schema(plan, participants["participant_id"]), typed)
    # a frame-wide check reports each column of a failing row (but a missing one): one row per
    # failing row, with the value of the column the rule is about
    rules = plan_cases["check"].astype(str)
    wide = (rules == UNIQUE_RULE) | rules.str.contains("valid range", regex=False)
    rows_failed = plan_cases[wide].drop_duplicates(["check", "index"])
    about = rows_failed["check"].map(lambda rule: "participant_id" if rule == UNIQUE_RULE else "value")
    rows_failed = rows_failed.assign(
        column=about.to_numpy(),
        failure_case=[typed[c].loc[i] for c, i in zip(about, rows_failed["index"], strict=True)],
    )
    rows = pd.concat([cases, plan_cases[~wide], rows_failed], ignore_index=True)
    index = rows["index"].to_numpy()
    out = pd.DataFrame({
        "file": file,
        "row": pd.array([int(long["source_row"].loc[i]) if pd.notna(i) else 1 for i in index], dtype="int64"),
        "column": [str(long["source_column"].loc[i]) if c == "value" else spec.column(c)
                   for c, i in zip(rows["column"], index, strict=True)],
        "rule": rows["check"].astype(str),
        "value": rows["failure_case"],
    })
    _, base = _cases(baseline_schema(plan, typed, measurements_name), participants)
    out = pd.concat([out, pd.DataFrame({
        "file": participants_file,
        "row": pd.array([int(participants["source_row"].loc[i]) for i in base["index"]], dtype="int64"),
        "column": plan.data.participants.column("participant_id"),
        "rule": base["check"].astype(str),
        "value": base["failure_case"],
    })], ignore_index=True)
    out["value"] = out["value"].map(lambda v: "" if v is None or (isinstance(v, float) and pd.isna(v)) else str(v))
    return out
