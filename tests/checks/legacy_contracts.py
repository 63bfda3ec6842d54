"""The row-by-row validation as it was before the factorised checks (issue 17), kept unchanged as
   the oracle the factorised path is compared with (tests/checks/test_columnar.py): same failures,
   same order, same value types, same typed frames.

Copied from analysis/checks/contracts.py; only this docstring differs.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import pandas as pd
import pandera.pandas as pa
from pandera.errors import SchemaErrors

from analysis.core.dates import impossible_dates
from analysis.core.errors import FAILURE_COLUMNS, DataError, failure
from analysis.core.resources import schema_path
from analysis.plan import Plan
from analysis.sources.files import RawTable


@dataclass(frozen=True)
class ValidTrial:
    """Validated, typed tables.

    ``participants``: participant_id, arm ('treatment'|'control'), arm_code, the optional
    characteristics (age float, sex, race, ethnicity, site, enrolled_on datetime, disposition,
    disposition_reason) and ``source_row``; ``disposition`` is absent when the file has none
    (:func:`analysis.pipeline.load_trial` then derives it). ``measurements``: participant_id, visit, outcome, value
    (float), source_row, source_column.
    """

    participants: pd.DataFrame
    measurements: pd.DataFrame


IMPOSSIBLE_DATE = "must be a real calendar date (YYYY-MM-DD)"


def _contract(name: str) -> pa.DataFrameSchema:
    return pa.DataFrameSchema.from_yaml(schema_path(name))


_RULE_TEXT = [
    (re.compile(r"^coerce_dtype\('float64'\)$"), "must be a number"),
    (re.compile(r"^coerce_dtype\('(str|string)'\)$"), "must be text"),
    (re.compile(r"^not_nullable$"), "required: must not be empty"),
    (re.compile(r"^field_uniqueness$"), "must be unique"),
    (re.compile(r"^column_in_dataframe$"), "required column"),
]


def _rule_text(check: str) -> str:
    for pattern, text in _RULE_TEXT:
        if pattern.match(check):
            return text
    if check.startswith("isin("):
        return "must be one of " + check[len("isin(") : -1]
    if check.startswith("in_range("):
        return "must be within " + check[len("in_range(") : -1].replace(", ", " to ")
    if check.startswith("str_matches("):
        return "must be a date written YYYY-MM-DD" if "\\d{4}" in check else f"must match {check}"
    return check


def _pandera_failures(
    schema: pa.DataFrameSchema, frame: pd.DataFrame, file: str, row_of, column_of
) -> tuple[pd.DataFrame, list[dict[str, object]]]:
    """Validate lazily; return the frame and failure rows (file row, file column, readable rule)."""
    try:
        return schema.validate(frame, lazy=True), []
    except SchemaErrors as errors:
        cases = _without_knock_on_failures(schema, frame, errors.failure_cases)
    rows = []
    for case in cases.itertuples(index=False):
        index = case.index
        column = case.column if isinstance(case.column, str) else ""
        rows.append(
            failure(
                file,
                row_of(index) if index is not None and not pd.isna(index) else 1,
                column_of(index, column),
                _rule_text(str(case.check)),
                case.failure_case,
            )
        )
    return frame, rows


def _without_knock_on_failures(schema: pa.DataFrameSchema, frame: pd.DataFrame, cases: pd.DataFrame) -> pd.DataFrame:
    """Where a column's values did not coerce, pandera also fails its dtype and could not run its
    value checks at all; drop those knock-on rows and run the value checks on the cells that did
    coerce, so a range failure in the same column is still reported with its row."""
    checks = cases["check"].astype(str)
    broken = set(cases.loc[checks.str.startswith("coerce_dtype"), "column"])
    if not broken:
        return cases
    knock_on = cases["column"].isin(broken) & (checks.str.startswith("dtype(") | cases["index"].isna())
    kept = [cases[~knock_on]]
    for column in sorted(broken):
        failed = set(cases.loc[(cases["column"] == column) & checks.str.startswith("coerce_dtype"), "index"])
        coercible = frame.loc[~frame.index.isin(failed), [column]]
        try:
            pa.DataFrameSchema({column: schema.columns[column]}).validate(coercible, lazy=True)
        except SchemaErrors as errors:
            kept.append(errors.failure_cases)
    return pd.concat(kept, ignore_index=True)


def arm_codes(plan: Plan, raw: RawTable) -> dict[str, str]:
    """Arm code as it appears in the data -> ``treatment`` / ``control``: the plan's codes and, where
    the file labels its arm column (SPSS, Stata), the label of each code the plan gives as a number,
    so a plan may name an arm by its code (``1``) or by its label (``BtheB``)."""
    codes = plan.arms.code_to_arm()
    labels = raw.value_labels.get(plan.data.participants.column("arm"), {})
    for code, arm in list(codes.items()):
        if code in labels:
            codes.setdefault(labels[code], arm)
    return codes


def validate_participants(raw: RawTable, frame: pd.DataFrame, plan: Plan) -> tuple[pd.DataFrame, list[dict]]:
    """Check the participants table; return it typed and with arms mapped, plus failure rows.

    A table without a ``disposition`` column passes without one (the pipeline derives it from
    the data, :func:`analysis.derive.disposition.derive_disposition`).
    """
    codes = arm_codes(plan, raw)
    schema = _contract("participants.yaml")
    schema = schema.update_column(
        "arm", checks=[pa.Check.isin(list(codes), error=f"isin({list(codes)})")]
    )
    if "disposition" not in frame.columns:
        schema = schema.remove_columns(["disposition"])
    spec = plan.data.participants
    file = str(raw.path)
    typed, problems = _pandera_failures(
        schema, frame, file, row_of=lambda i: i, column_of=lambda _i, c: spec.column(c) if c else ""
    )
    typed = typed.copy()
    typed["source_row"] = typed.index
    typed["arm_code"] = typed["arm"].astype(str)
    typed["arm"] = typed["arm_code"].map(codes)
    typed["age"] = pd.to_numeric(typed["age"], errors="coerce") if "age" in typed else pd.NA
    if "enrolled_on" in typed:
        # written YYYY-MM-DD (the contract) yet no calendar day: to_datetime would make it missing unsaid
        impossible = impossible_dates(typed["enrolled_on"])
        for row in typed.index[impossible]:
            problems.append(failure(file, row, spec.column("enrolled_on"), IMPOSSIBLE_DATE, typed.at[row, "enrolled_on"]))
        typed["enrolled_on"] = pd.to_datetime(typed["enrolled_on"], format="%Y-%m-%d", errors="coerce")
    typed["participant_id"] = typed["participant_id"].astype(str)
    return typed.reset_index(drop=True), problems


def validate_measurements(
    raw: RawTable, long: pd.DataFrame, plan: Plan, participants: pd.DataFrame, participants_file: str
) -> tuple[pd.DataFrame, list[dict]]:
    """Check long measurements against the contract and the plan; return them typed plus failures."""
    spec = plan.data.measurements
    file = str(raw.path)
    source_row = long["source_row"]
    source_column = long["source_column"]

    def column_of(index: object, column: str) -> str:
        if column == "value":
            return str(source_column.loc[index]) if index in source_column.index else spec.column("value")
        return spec.column(column) if column else ""

    typed, problems = _pandera_failures(
        _contract("measurements.yaml"),
        long,
        file,
        row_of=lambda i: int(source_row.loc[i]) if i in source_row.index else 1,
        column_of=column_of,
    )
    typed = typed.copy()
    typed["value"] = pd.to_numeric(typed["value"], errors="coerce")
    for column in ("participant_id", "visit", "outcome"):
        typed[column] = typed[column].astype(str)

    def flag(mask: pd.Series, column: str, rule: str, values: pd.Series) -> None:
        for index in mask[mask].index:
            problems.append(failure(file, int(source_row.loc[index]), column_of(index, column), rule, values.loc[index]))

    visits = plan.visits.labels
    flag(~typed["visit"].isin(visits), "visit", f"must be one of the plan's visits {visits}", typed["visit"])
    outcomes = [o.name for o in plan.outcomes]
    flag(~typed["outcome"].isin(outcomes), "outcome", f"must be one of the plan's outcomes {outcomes}", typed["outcome"])
    for outcome in plan.outcomes:
        low, high = outcome.range
        values = typed["value"]
        outside = (typed["outcome"] == outcome.name) & values.notna() & ((values < low) | (values > high))
        flag(outside, "value", f"{outcome.name} must be within its valid range {low:g} to {high:g} {outcome.unit}", values)
    key = ["participant_id", "outcome", "visit"]
    flag(typed.duplicated(key, keep=False), "participant_id", "one row per participant x outcome x visit", typed["participant_id"])
    known = set(participants["participant_id"])
    flag(~typed["participant_id"].isin(known), "participant_id", "participant must be listed in the participants file", typed["participant_id"])
    problems.extend(_missing_baselines(typed, plan, participants, participants_file, raw))
    return typed, problems


def _missing_baselines(
    typed: pd.DataFrame, plan: Plan, participants: pd.DataFrame, participants_file: str, raw: RawTable
) -> list[dict]:
    baseline_rows = typed[typed["visit"] == plan.visits.baseline]
    present = set(zip(baseline_rows["participant_id"], baseline_rows["outcome"], strict=True))
    problems = []
    for person in participants.itertuples(index=False):
        for outcome in plan.outcomes:
            if (person.participant_id, outcome.name) not in present:
                problems.append(
                    failure(
                        participants_file,
                        int(person.source_row),
                        plan.data.participants.column("participant_id"),
                        f"must have a baseline ('{plan.visits.baseline}') row for {outcome.name} in {raw.path.name}",
                        person.participant_id,
                    )
                )
    return problems


def validate_trial(
    participants_raw: RawTable,
    participants: pd.DataFrame,
    measurements_raw: RawTable,
    measurements: pd.DataFrame,
    plan: Plan,
) -> ValidTrial:
    """Validate both tables; raise one :class:`DataError` listing every failure in either.

    The four tables are what :func:`analysis.sources.trial.read_sources` returns.

    Parameters
    ----------
    participants_raw, participants
        The participants file as read and its frame after the plan's column mapping.
    measurements_raw, measurements
        The measurements file as read and its canonical long frame (``participant_id, visit,
        outcome, value, source_row, source_column``).
    plan
        The study plan: arm codes, visits, outcomes and their valid ranges.

    Returns
    -------
    ValidTrial
        The typed tables; ``participants.arm`` is mapped to ``treatment`` / ``control`` (the code
        as recorded is kept in ``arm_code``).

    Raises
    ------
    DataError
        With ``failures`` holding one row per failed cell or record (file, row, column, rule, value).

    Examples
    --------
    A plan and one wide CSV holding both tables, in a temporary folder:

    >>> import tempfile
    >>> from pathlib import Path
    >>> from analysis.plan import load_plan
    >>> from analysis.sources.trial import read_sources
    >>> folder = Path(tempfile.mkdtemp())
    >>> _ = (folder / "plan.yaml").write_text('''
    ... study: {id: demo, title: Demo trial}
    ... seed: 1
    ... data:
    ...   participants: {path: trial.csv}
    ...   measurements:
    ...     path: trial.csv
    ...     layout: wide
    ...     cell_columns: {pain: {baseline: pain0, week8: pain8}}
    ... arms: {treatment: {label: Drug, codes: [D]}, control: {label: Placebo, codes: [P]}}
    ... visits: {baseline: baseline, followup: [{label: week8, week: 8}], primary: week8}
    ... outcomes:
    ... - {name: pain, label: Pain, unit: points, range: [0, 10], better: lower}
    ... ''')
    >>> _ = (folder / "trial.csv").write_text('''participant_id,arm,disposition,pain0,pain8
    ... p1,D,completed,7,3
    ... p2,P,completed,6,5
    ... ''')
    >>> loaded = load_plan(folder / "plan.yaml")
    >>> valid = validate_trial(*read_sources(loaded), loaded.plan)
    >>> print(valid.participants[["participant_id", "arm", "arm_code", "source_row"]].to_string(index=False))
    participant_id       arm arm_code  source_row
                p1 treatment        D           2
                p2   control        P           3

    Every failure is collected before anything is raised, with rows and columns named as in the
    file (header = row 1):

    >>> _ = (folder / "trial.csv").write_text('''participant_id,arm,disposition,pain0,pain8
    ... p1,D,completed,7,12
    ... p2,X,dropped,6,5
    ... ''')
    >>> try:
    ...     validate_trial(*read_sources(loaded), loaded.plan)
    ... except DataError as error:
    ...     print(error)
    ...     print(error.failures[["row", "column", "rule", "value"]].to_string(index=False))
    3 validation failure(s) in the trial data
     row      column                                                           rule   value
       2       pain8             pain must be within its valid range 0 to 10 points    12.0
       3         arm                                      must be one of ['D', 'P']       X
       3 disposition must be one of ['completed', 'withdrawn', 'lost_to_follow_up'] dropped
    >>> import shutil
    >>> shutil.rmtree(folder)
    """
    typed_participants, problems = validate_participants(participants_raw, participants, plan)
    typed_measurements, more = validate_measurements(
        measurements_raw, measurements, plan, typed_participants, str(participants_raw.path)
    )
    problems.extend(more)
    if problems:
        table = pd.DataFrame(problems, columns=FAILURE_COLUMNS)
        table["value"] = table["value"].map(lambda v: "" if v is None or (isinstance(v, float) and pd.isna(v)) else str(v))
        table = table.sort_values(["file", "row"], kind="stable").reset_index(drop=True)
        raise DataError(f"{len(table)} validation failure(s) in the trial data", table)
    return ValidTrial(participants=typed_participants, measurements=typed_measurements)


def summarise_failures(failures: pd.DataFrame) -> pd.DataFrame:
    """Counts of failures per file, column and rule (for the readable summary)."""
    return (
        failures.groupby(["file", "column", "rule"], sort=True, dropna=False)
        .size()
        .rename("failures")
        .reset_index()
    )
