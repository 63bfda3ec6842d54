"""The factorised checks (analysis/checks/columnar.py and the measurement checks built on them)
give the verdicts of the row-by-row checks they replace.

Independent references: pandas' own ``factorize``/``duplicated``/``isin`` for the primitives;
pandera's own lazy validation (the fallback path) for the contract's failure lists, value types
and typed frames; the same checks written as plain pandera schemas (``analysis.checks.plain``),
run by pandera, for the measurement failures; and failures listed by hand.
Frames come from hypothesis with planted failures of every rule.
"""

from __future__ import annotations

import doctest
from pathlib import Path

import numpy as np
import pandas as pd
import pandera.pandas as pa
import pyarrow
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analysis.checks import columnar, contracts
from analysis.checks.columnar import encode, positions, repeated_keys, run_contract
from analysis.checks.plain import plain_measurement_failures
from analysis.core.errors import FAILURE_COLUMNS
from analysis.plan.documents import parse_plan
from analysis.sources.files import RawTable

PLAN = parse_plan("""\
study: {id: t, title: T}
seed: 1
data:
  participants: {path: participants.csv}
  measurements: {path: measurements.csv}
arms: {treatment: {label: Drug, codes: [T]}, control: {label: Placebo, codes: [C]}}
visits: {baseline: base, followup: [{label: w4, week: 4}, {label: w8, week: 8}], primary: w8}
outcomes:
- {name: pain, label: Pain, unit: points, range: [0, 10], better: lower}
- {name: function, label: Function, unit: points, range: [0, 100], better: higher}
""")
RAW = RawTable(frame=pd.DataFrame(), path=Path("measurements.csv"), format="csv", label="measurements")

IDS = ["P1", "P2", "P3", "Q9", None]  # Q9 is never listed
VISITS = ["base", "w4", "w8", "w12", None]  # w12 is not a plan visit
OUTCOMES = ["pain", "function", "mood", None]  # mood is not a plan outcome
VALUES = ["1", "5.5", "0", "10", "11", "-1", "100", "101", "x", "4,5", " 3 ", "1_000", "nan", "", None]


def test_module_examples_run() -> None:
    assert doctest.testmod(columnar, raise_on_error=True).failed == 0


# --- primitives against pandas -----------------------------------------------------------------

texts = st.lists(st.sampled_from(["a", "b", "c", "", None]), max_size=60)


@given(texts, st.sampled_from(["str", object]), st.integers(1, 6))
def test_encode_gives_pandas_factorize_groups(values: list, dtype: object, run: int) -> None:
    series = pd.Series([v for v in values for _ in range(run)], dtype=dtype)  # runs of equal values
    found = encode(series)
    expected, _ = pd.factorize(series, use_na_sentinel=False)
    # same grouping of rows, and each code's value is the row's value
    assert len(found.codes) == len(series)
    assert pd.Series(found.codes).groupby(expected).nunique().le(1).all()
    assert pd.Series(expected).groupby(found.codes).nunique().le(1).all()
    assert pd.Series(found.uniques.take(found.codes).to_numpy()).equals(pd.Series(series.to_numpy()))


def test_encode_uses_runs_of_a_grouped_column() -> None:
    ids = pd.Series(np.repeat([f"P{i}" for i in range(3000)], 4), dtype="str")
    ids.iloc[5] = None
    found = encode(ids)
    expected, _ = pd.factorize(ids, use_na_sentinel=False)
    assert columnar._runs_likely(pyarrow.array(ids.array))  # so the run-by-run encoding is what is tested
    assert (pd.Series(found.codes).groupby(expected).nunique() == 1).all()
    assert found.uniques.take(found.codes).reset_index(drop=True).equals(ids)


def test_encode_and_positions_of_a_column_in_chunks() -> None:
    chunked = pd.concat([pd.Series(["b", "a", None], dtype="str"), pd.Series(["a", "c", "b"], dtype="str")],
                        ignore_index=True)
    assert pyarrow.array(chunked.array).num_chunks == 2  # pd.concat keeps the chunks
    found = encode(chunked)
    assert found.uniques.take(found.codes).reset_index(drop=True).equals(chunked)
    assert positions(chunked, found.uniques).tolist() == pd.Index(found.uniques).get_indexer(chunked).tolist()


@given(st.lists(st.tuples(st.sampled_from(["p1", "p2", None]), st.sampled_from(["a", "b"]),
                          st.sampled_from(["x", None])), max_size=40))
def test_repeated_keys_is_duplicated_keep_false(rows: list) -> None:
    frame = pd.DataFrame(rows, columns=["i", "o", "v"], dtype="str")
    found = repeated_keys(*(encode(frame[c]) for c in frame.columns)) if len(frame) else np.zeros(0, bool)
    assert found.tolist() == frame.duplicated(keep=False).tolist()


def test_repeated_keys_renumbers_a_large_key_space() -> None:
    rng = np.random.default_rng(3)
    frame = pd.DataFrame({c: rng.integers(0, 400, 500).astype(str) for c in "abc"}, dtype="str")
    frame.iloc[7] = frame.iloc[300]
    found = repeated_keys(*(encode(frame[c]) for c in frame.columns))
    assert found.tolist() == frame.duplicated(keep=False).tolist()
    assert found[7] and found[300]


@given(st.lists(st.sampled_from(["a", "b", "c", "z", None]), max_size=6),
       st.sampled_from([["a", None, "b"], ["a", "b", "c"], ["b", "a"], []]))
def test_positions_is_get_indexer(values: list, distinct: list) -> None:
    within = pd.Series(distinct, dtype="str")
    series = pd.Series(values, dtype="str")
    assert positions(series, within).tolist() == pd.Index(within).get_indexer(series).tolist()


def test_positions_of_participants_listed_in_order() -> None:
    within = pd.Series(["a", "b", "c", "q"], dtype="str")
    assert positions(pd.Series(["a", "b", "c"], dtype="str"), within).tolist() == [0, 1, 2]
    assert positions(pd.Series(["a", "c", "b"], dtype="str"), within).tolist() == [0, 2, 1]


# --- the contract: run_contract against pandera ------------------------------------------------

def _pandera_rows(schema: pa.DataFrameSchema, frame: pd.DataFrame) -> tuple[pd.DataFrame, list]:
    return contracts._pandera_failures(schema, frame, "f", lambda i: i, lambda _i, c: c)


def _fast_rows(schema: pa.DataFrameSchema, frame: pd.DataFrame) -> tuple[pd.DataFrame, list]:
    typed, rows, _ = contracts._contract_failures(schema, frame, "f", lambda i: i, lambda _i, c: c)
    return typed, rows


def _same(a: list, b: list) -> None:
    assert [tuple(map(repr, r.values())) for r in a] == [tuple(map(repr, r.values())) for r in b]


participant_rows = st.lists(
    st.fixed_dictionaries({
        "participant_id": st.sampled_from(["P1", "P2", "P3", "", None, "X" * 70]),
        "arm": st.sampled_from(["T", "C", "X", None]),
        "age": st.sampled_from(["40", "150", "-1", "forty", None, "61.5"]),
        "enrolled_on": st.sampled_from(["2024-01-31", "2024-02-30", "31/01/2024", None]),
        "disposition": st.sampled_from(["completed", "withdrawn", "gone", None]),
    }),
    min_size=1, max_size=8,
)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(participant_rows, st.sampled_from(["str", object]))
def test_participants_contract_gives_pandera_failures(rows: list, dtype: object) -> None:
    frame = pd.DataFrame(rows, dtype=dtype)
    frame.index = pd.RangeIndex(2, len(frame) + 2)
    schema = contracts._contract("participants.yaml").update_column(
        "arm", checks=[pa.Check.isin(["T", "C"], error="isin(['T', 'C'])")])
    expected_frame, expected = _pandera_rows(schema, frame)
    found_frame, found = _fast_rows(schema, frame)
    _same(found, expected)
    pd.testing.assert_frame_equal(found_frame, expected_frame)


def test_run_contract_leaves_other_checks_to_pandera() -> None:
    schema = pa.DataFrameSchema({"a": pa.Column(int, checks=pa.Check(lambda s: s > 0))})
    assert run_contract(schema, pd.DataFrame({"a": [1]})) is None
    schema = pa.DataFrameSchema({"a": pa.Column(float, coerce=True, checks=pa.Check.in_range(0, 1))})
    assert run_contract(schema, pd.DataFrame({"a": ["x", "2"]})) is None  # did not coerce, yet checked
    assert run_contract(schema, pd.DataFrame({"b": [1]})) is None  # required column missing


def test_a_column_without_checks_is_coerced_to_the_dtype_pandera_gives() -> None:
    # pandera's str check accepts an object column, but its coercion still makes it str: an ADaM
    # file's SEX read as object must come out typed as the CSV's does (found by the ADaM round trip)
    schema = pa.DataFrameSchema({"sex": pa.Column(str, coerce=True, nullable=True)})
    frame = pd.DataFrame({"sex": pd.Series(["F", None, "M"], dtype=object)})
    fast = run_contract(schema, frame)
    assert fast is not None and fast.cases.empty
    pd.testing.assert_frame_equal(fast.frame, schema.validate(frame.copy()))


# --- the measurement checks: against the previous implementation and plain pandera -------------

measurement_rows = st.lists(
    st.tuples(st.sampled_from(IDS), st.sampled_from(VISITS), st.sampled_from(OUTCOMES), st.sampled_from(VALUES)),
    min_size=1, max_size=30,
)


def _frames(rows: list, dtype: object, grouped: bool, listed: list) -> tuple[pd.DataFrame, pd.DataFrame]:
    if grouped:  # one participant's rows together, as most files are written
        rows = sorted(rows, key=lambda r: str(r[0]))
    long = pd.DataFrame(rows, columns=["participant_id", "visit", "outcome", "value"], dtype=dtype)
    long["source_row"] = np.arange(2, len(long) + 2)
    long["source_column"] = pd.Series(["value"] * len(long), dtype="str")
    participants = pd.DataFrame({"participant_id": pd.Series(listed, dtype="str"),
                                 "source_row": np.arange(2, len(listed) + 2)})
    return long, participants


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(measurement_rows, st.sampled_from(["str", object]), st.booleans(),
       st.lists(st.sampled_from(["P1", "P2", "P3", "P4"]), min_size=1, max_size=5, unique=True))
def test_measurements_give_plain_pandera_failures(rows: list, dtype: object, grouped: bool, listed: list) -> None:
    long, participants = _frames(rows, dtype, grouped, listed)
    _, found = contracts.validate_measurements(RAW, long, PLAN, participants, "participants.csv")
    table = pd.DataFrame(found, columns=FAILURE_COLUMNS)
    table["value"] = table["value"].map(lambda v: "" if v is None or (isinstance(v, float) and pd.isna(v)) else str(v))
    reference = plain_measurement_failures(long, PLAN, participants, "measurements.csv", "participants.csv",
                                           "measurements.csv")
    assert sorted(map(tuple, table.astype(str).to_numpy().tolist())) == sorted(
        map(tuple, reference.astype(str).to_numpy().tolist()))


def test_every_rule_planted_once() -> None:
    """A grouped frame of 200 participants (runs, so the run-length encoding is used) with one
    failure of every rule: the failures are exactly the planted ones, as listed by hand."""
    ids = [f"P{i:03d}" for i in range(200)]
    rows = [[p, v, o, "5"] for p in ids for v in ("base", "w4", "w8") for o in ("pain", "function")]
    # row i of the list is file row i + 2: participant i // 6, visit (i % 6) // 2, outcome i % 2
    rows[1][3] = "4x"  # row 3: not a number
    rows[8][1] = None  # row 10: empty visit (so also not a plan visit)
    rows[15][1] = "w12"  # row 17: not a plan visit
    rows[18][2] = "mood"  # row 20: not a plan outcome, so P003 has no pain baseline
    rows[26][3] = "11"  # row 28: pain above 10
    rows[35][3] = "101"  # row 37: function above 100
    rows[40][0] = "Q9"  # row 42: not listed
    rows[48][1] = "w4"  # rows 50 and 52: P008 pain at w4 twice, so P008 has no pain baseline
    long, participants = _frames([tuple(r) for r in rows], "str", False, ids)
    _, found = contracts.validate_measurements(RAW, long, PLAN, participants, "participants.csv")
    got = [(f["file"], f["row"], f["column"], f["rule"].split(" [")[0], str(f["value"])) for f in found]
    m, p = "measurements.csv", "participants.csv"
    assert got == [
        (m, 3, "value", "must be a number", "4x"),
        (m, 10, "visit", "required: must not be empty", "nan"),
        (m, 10, "visit", "must be one of the plan's visits", "nan"),
        (m, 17, "visit", "must be one of the plan's visits", "w12"),
        (m, 20, "outcome", "must be one of the plan's outcomes", "mood"),
        (m, 28, "value", "pain must be within its valid range 0 to 10 points", "11.0"),
        (m, 37, "value", "function must be within its valid range 0 to 100 points", "101.0"),
        (m, 50, "participant_id", "one row per participant x outcome x visit", "P008"),
        (m, 52, "participant_id", "one row per participant x outcome x visit", "P008"),
        (m, 42, "participant_id", "participant must be listed in the participants file", "Q9"),
        (p, 5, "participant_id", "must have a baseline ('base') row for pain in measurements.csv", "P003"),
        (p, 10, "participant_id", "must have a baseline ('base') row for pain in measurements.csv", "P008"),
    ]


@pytest.mark.parametrize("values", [["1", "2.5", None, "12"], [1.0, 2.5, np.nan, 12.0]])
def test_typed_values_are_floats(values: list) -> None:
    """Text read from a CSV and floats read from Parquet: typed the same, 12 outside 0 to 10."""
    visits = ["base", "w4", "w8", "w8"]
    long, participants = _frames([("P1", v, "pain", x) for v, x in zip(visits, values, strict=True)], "str", True, ["P1"])
    long["value"] = pd.Series(values, dtype="str" if isinstance(values[0], str) else float)
    typed, found = contracts.validate_measurements(RAW, long, PLAN, participants, "participants.csv")
    assert typed["value"].dtype == np.float64
    assert typed["value"].iloc[[0, 1, 3]].tolist() == [1.0, 2.5, 12.0] and np.isnan(typed["value"].iloc[2])
    assert [(f["row"], f["rule"]) for f in found] == [
        (5, "pain must be within its valid range 0 to 10 points"),
        (4, "one row per participant x outcome x visit"),  # w8 twice
        (5, "one row per participant x outcome x visit"),
        (2, "must have a baseline ('base') row for function in measurements.csv"),
    ]
