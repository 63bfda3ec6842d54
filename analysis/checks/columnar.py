"""Running the pandera data contracts on factorised columns: each check once per distinct value.

A long measurements file of millions of rows holds a few thousand distinct visit labels, outcome
names and values, and one identifier per participant; the contracts' checks are element-wise, so a
check applied to the distinct values and mapped back to the rows through integer codes gives the
same verdict as the check applied to every row, at a fraction of the cost (a regex over 5M rows
costs about a second, over the distinct values milliseconds). Rules that span rows (duplicates)
are counted on the codes with :func:`numpy.bincount` instead of grouping strings.

The contracts stay pandera's: :func:`run_contract` reads a ``pandera.DataFrameSchema`` and calls
pandera's own check objects and data types (on the distinct values); it returns ``None`` for any
part of a schema it does not run this way, and the caller then validates with pandera itself.
Its failure cases are those pandera reports, after the knock-on failures of a column that did not
coerce are dropped (``analysis.checks.contracts``); ``tests/checks`` compares the two on frames with
planted failures of every rule.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pandera.pandas as pa
import pyarrow as pyarrow_lib
import pyarrow.compute as pc
from pandera.engines import pandas_engine

CASE_COLUMNS = ["column", "check", "failure_case", "index"]

# pandera's built-in checks that test each value on its own (so testing the distinct values is
# enough); any other check sends the schema back to pandera
ELEMENT_WISE = frozenset({
    "isin", "notin", "in_range", "str_matches", "str_contains", "str_startswith", "str_endswith",
    "str_length", "equal_to", "not_equal_to", "greater_than", "greater_than_or_equal_to",
    "less_than", "less_than_or_equal_to",
})


@dataclass(frozen=True)
class Encoded:
    """A column as integer codes into its distinct values.

    ``codes[i]`` is the position in ``uniques`` of row ``i``'s value; a missing value is a distinct
    value of its own (so it can be tested and counted like any other). ``uniques`` has the
    column's dtype and a 0..k-1 index.
    """

    codes: np.ndarray
    uniques: pd.Series

    def expand(self, per_unique: np.ndarray) -> np.ndarray:
        """A value per row from a value per distinct value."""
        return per_unique[self.codes]


def encode(series: pd.Series) -> Encoded:
    """Factorise ``series``: codes into its distinct values, missing values included.

    Arrow-backed text is encoded by Arrow without converting a string to a Python object; a
    sorted or grouped column (one participant's rows together, the usual layout) is encoded run
    by run, so only the first row of each run is hashed.

    Examples
    --------
    >>> e = encode(pd.Series(["b", "b", "a", None, "b"], dtype="str"))
    >>> e.codes.tolist(), e.uniques.tolist()
    ([0, 0, 1, 2, 0], ['b', 'a', nan])
    """
    if _arrow_text(series) is not None:
        return _encode_arrow(series)
    codes, uniques = pd.factorize(series, use_na_sentinel=False)
    return Encoded(codes=np.asarray(codes), uniques=pd.Series(uniques, dtype=series.dtype))


def _encode_arrow(series: pd.Series) -> Encoded:
    values = _arrow_text(series)
    n = len(values)
    heads = _run_heads(values) if _runs_likely(values) else None
    if heads is None:
        encoded = values.dictionary_encode(null_encoding="encode")
        codes = encoded.indices.to_numpy(zero_copy_only=False)
    else:
        encoded = values.take(pyarrow_lib.array(heads)).dictionary_encode(null_encoding="encode")
        codes = np.repeat(encoded.indices.to_numpy(zero_copy_only=False), np.diff(np.append(heads, n)))
    return Encoded(codes=codes, uniques=pd.Series(encoded.dictionary, dtype=series.dtype))


_SAMPLE = 4096


def _runs_likely(values: pyarrow_lib.Array) -> bool:
    """Whether the first rows come in runs of three or more equal values (a participant's rows
    together): only then does finding the runs pay for itself."""
    sample = values.slice(0, _SAMPLE)
    return len(sample) > 2 and 3 * len(_run_heads(sample, always=True)) <= len(sample)


def _run_heads(values: pyarrow_lib.Array, always: bool = False) -> np.ndarray | None:
    """Positions where a run of equal values starts; ``None`` when runs average under three rows
    (two missing values side by side start two runs: ``not_equal`` gives null)."""
    n = len(values)
    if n < 2:
        return np.zeros(n, dtype=np.int64)
    change = pc.fill_null(pc.not_equal(values.slice(1), values.slice(0, n - 1)), True)
    heads = np.concatenate([[0], np.flatnonzero(change.to_numpy(zero_copy_only=False)) + 1])
    return heads if always or 3 * len(heads) <= n else None


def _arrow_text(series: pd.Series) -> pyarrow_lib.Array | None:
    """The Arrow array behind Arrow-backed text (one array: a column in several chunks, as a
    concatenation or a partition leaves it, is joined), else ``None``."""
    if not (isinstance(series.dtype, pd.StringDtype) and series.dtype.storage == "pyarrow"):
        return None
    values = pyarrow_lib.array(series.array)
    if isinstance(values, pyarrow_lib.ChunkedArray):
        values = values.chunk(0) if values.num_chunks == 1 else values.combine_chunks()
    return values


def positions(values: pd.Series, within: pd.Series) -> np.ndarray:
    """Position of each of ``values`` in the distinct values ``within``, -1 where absent (as
    ``pd.Index(within).get_indexer(values)``; a missing value finds a missing value).

    Examples
    --------
    >>> positions(pd.Series(["b", "z", None], dtype="str"), pd.Series(["a", "b", None], dtype="str")).tolist()
    [1, -1, 2]
    """
    left, right = _arrow_text(values), _arrow_text(within)
    if left is None or right is None:
        return pd.Index(within).get_indexer(values)
    right = right.cast(left.type)
    if len(left) <= len(right) and left.null_count == 0 and right.null_count == 0:
        # the usual case, participants listed in the order the measurements first name them, is
        # one comparison instead of a hash table (``within`` is distinct, so positions are 0..m-1)
        if pc.all(pc.equal(left, right.slice(0, len(left)))).as_py() is not False:
            return np.arange(len(left), dtype=np.int64)
    found = pc.index_in(left, value_set=right, skip_nulls=False)
    return found.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)


def rows_where(encoded: Encoded, per_unique: np.ndarray) -> np.ndarray:
    """Positions of the rows whose distinct value is marked in ``per_unique`` (none: no pass
    over the rows)."""
    if not per_unique.any():
        return np.zeros(0, dtype=np.int64)
    return np.flatnonzero(encoded.expand(per_unique))


def repeated_keys(*columns: Encoded) -> np.ndarray:
    """Rows whose combination of values occurs more than once (every occurrence, as
    ``DataFrame.duplicated(keep=False)``; a missing value equals a missing value).

    The codes are combined into one integer key per row (mixed radix), counted with
    :func:`numpy.bincount`; when the key space would outgrow twice the rows the keys that occur
    are first renumbered densely (by counting; by hashing only when even that space is too
    large), so memory stays linear in the rows.

    Examples
    --------
    >>> ids = encode(pd.Series(["p1", "p1", "p2", "p1"], dtype="str"))
    >>> visits = encode(pd.Series(["base", "w4", "base", "base"], dtype="str"))
    >>> repeated_keys(ids, visits).tolist()
    [True, False, False, True]
    """
    n = len(columns[0].codes)
    bound = 2 * n + 64  # the key space, so bincount's counts, stays within twice the rows
    # the columns with fewest distinct values first: their combinations are the fewest
    ordered = sorted(columns, key=lambda column: len(column.uniques))
    key = ordered[0].codes.astype(np.int64)  # a copy, combined in place below (no temporaries)
    size = max(len(ordered[0].uniques), 1)
    for column in ordered[1:]:
        k = max(len(column.uniques), 1)
        if size * k > bound:
            key, size = _dense(key, size, bound)
        key *= k
        key += column.codes
        size *= k
        if size > bound:
            key, size = _dense(key, size, bound)
    repeated = np.bincount(key, minlength=size) > 1
    return repeated[key]


def _dense(key: np.ndarray, size: int, bound: int) -> tuple[np.ndarray, int]:
    """Renumber the keys that occur as 0..m-1 (by counting when the key space is small enough,
    else by hashing)."""
    if size <= bound:
        present = np.bincount(key, minlength=size) > 0
        renumber = np.cumsum(present, dtype=np.int32 if size < 2**31 else np.int64) - 1
        return renumber[key].astype(np.int64), int(renumber[-1]) + 1
    codes, uniques = pd.factorize(key)
    return codes.astype(np.int64), max(len(uniques), 1)


@dataclass(frozen=True)
class ContractRun:
    """What :func:`run_contract` found.

    ``cases``: pandera's failure-case columns ``column, check, failure_case, index`` (``index`` the
    frame's index label), in pandera's order; ``frame``: the frame with its columns coerced to the
    contract's types when nothing failed, else the frame as given (as pandera returns it);
    ``encoded``: the codes of each contract column of the frame as given, for further checks.
    """

    cases: pd.DataFrame
    frame: pd.DataFrame
    encoded: dict[str, Encoded]


def _supported(schema: pa.DataFrameSchema) -> bool:
    """Whether the schema uses only what :func:`run_contract` runs: typed columns with element-wise
    built-in checks, coercion, nullability and uniqueness (every duplicate reported)."""
    plain = (
        not schema.checks and not schema.parsers and schema.unique is None and not schema.strict
        and not schema.ordered and schema.index is None and schema.dtype is None and not schema.coerce
        and not getattr(schema, "drop_invalid_rows", False) and not getattr(schema, "add_missing_columns", False)
    )
    return plain and all(
        not column.regex and not column.parsers and column.dtype is not None
        and getattr(column, "default", None) is None and not getattr(column, "drop_invalid_rows", False)
        and (not column.unique or column.report_duplicates == "all")
        and all(check.name in ELEMENT_WISE for check in column.checks)
        for column in schema.columns.values()
    )


def _check_label(check: pa.Check) -> str:
    """The ``check`` column of pandera's failure cases for a check object."""
    if check.error is not None:
        return str(check.error)
    return check.name if check.name is not None else str(check)


@dataclass(frozen=True)
class _Column:
    name: str
    series: pd.Series
    encoded: Encoded
    coerced: pd.Series  # the distinct values coerced to the contract's type (index 0..k-1)
    failed: np.ndarray | None  # distinct values that do not coerce, or None


def _coerce(name: str, column: pa.Column, series: pd.Series, encoded: Encoded) -> _Column:
    """Coerce the distinct values as pandera coerces a column: the whole at once, and where that
    fails, value by value with the data type's ``coerce_value`` (pandera's test of which failed)."""
    uniques = encoded.uniques
    dtype = column.dtype
    if not column.coerce:
        return _Column(name, series, encoded, uniques, None)
    try:
        return _Column(name, series, encoded, dtype.coerce(uniques), None)
    except Exception:  # noqa: BLE001 - whatever the coercion raises, pandera reports the values
        pass
    engine_dtype = pandas_engine.Engine.dtype(dtype)

    def coercible(value: object) -> bool:
        try:
            engine_dtype.coerce_value(value)
        except Exception:  # noqa: BLE001 - as pandera.engines.utils.numpy_pandas_coercible
            return False
        return True

    failed = ~np.fromiter((coercible(v) for v in uniques.tolist()), dtype=bool, count=len(uniques))
    return _Column(name, series, encoded, uniques, failed)


def _cases(name: str, label: str, rows: np.ndarray, values: pd.Series, index: pd.Index) -> pd.DataFrame:
    return pd.DataFrame({
        "column": name,
        "check": label,
        "failure_case": values.to_numpy(dtype=object),
        "index": index[rows],
    }, columns=CASE_COLUMNS)


def run_contract(schema: pa.DataFrameSchema, frame: pd.DataFrame) -> ContractRun | None:
    """Validate ``frame`` against a pandera schema lazily, each check on the distinct values.

    Parameters
    ----------
    schema
        A ``pandera.pandas.DataFrameSchema`` whose columns have a dtype and only element-wise
        built-in checks (the contracts in ``data/schemas/``); schema-wide checks, parsers,
        regex columns and a strict or ordered schema are left to pandera.
    frame
        The data, every required column present.

    Returns
    -------
    ContractRun or None
        The failure cases pandera would report (without the knock-on failures of a column that
        did not coerce), or ``None`` when the schema or the data needs pandera itself: a part of
        the schema named above, a required column missing, or a column that did not coerce yet
        has checks to run on its other values.

    Examples
    --------
    >>> schema = pa.DataFrameSchema({
    ...     "visit": pa.Column(str, coerce=True, checks=pa.Check.isin(["base", "w4"])),
    ...     "value": pa.Column(float, coerce=True, nullable=True),
    ... })
    >>> frame = pd.DataFrame({"visit": ["base", "w4", "w9", None], "value": ["1", "x", None, "2"]})
    >>> print(run_contract(schema, frame).cases.to_string(index=False))
    column                   check failure_case  index
     value coerce_dtype('float64')            x      1
     visit            not_nullable          NaN      3
     visit    isin(['base', 'w4'])           w9      2
    """
    if not _supported(schema):
        return None
    columns: list[tuple[pa.Column, _Column]] = []
    for name, column in schema.columns.items():
        if name not in frame.columns:
            if column.required:
                return None
            continue
        series = frame[name]
        typed_already = column.dtype.check(pandas_engine.Engine.dtype(series.dtype))
        if not column.coerce and not typed_already:
            return None  # pandera would report the dtype; leave it to pandera
        # pandera's str check also accepts object columns, yet coercion turns them into its str
        # dtype: only a column already of the very dtype coercion gives may skip the pass
        exact = not column.coerce or series.dtype == pandas_engine.Engine.dtype(column.dtype).type
        if typed_already and exact and column.nullable and not column.checks and not column.unique:
            continue  # nothing to test (a float column read from Parquet): no pass over it
        columns.append((column, _coerce(name, column, series, encode(series))))
    index = frame.index
    pieces: list[pd.DataFrame] = []
    # pandera coerces every column before it runs any column's checks
    for column, found in columns:
        if found.failed is not None:
            if column.checks or column.unique or not column.nullable or not found.failed.any():
                # pandera's knock-on handling of such a column (or a whole that failed to coerce
                # though each value coerces) is left to pandera
                return None
            rows = np.flatnonzero(found.encoded.expand(found.failed))
            pieces.append(_cases(found.name, f"coerce_dtype('{column.dtype}')", rows, found.series.take(rows), index))
    for column, found in columns:
        if found.failed is not None:
            continue
        coerced = found.coerced
        missing = coerced.isna().to_numpy()
        if not column.nullable and missing.any():
            rows = np.flatnonzero(found.encoded.expand(missing))
            pieces.append(_cases(found.name, "not_nullable", rows, coerced.take(found.encoded.codes[rows]), index))
        if column.unique:
            same, _ = pd.factorize(coerced, use_na_sentinel=True)
            value_codes = np.where(missing, -1, same)[found.encoded.codes]
            counts = np.bincount(value_codes[value_codes >= 0], minlength=max(int(same.max(initial=-1)) + 1, 1))
            rows = np.flatnonzero((value_codes >= 0) & (counts[np.maximum(value_codes, 0)] > 1))
            if len(rows):
                pieces.append(_cases(found.name, "field_uniqueness", rows, coerced.take(found.encoded.codes[rows]), index))
        for check in column.checks:
            result = check(coerced.rename(found.name))
            # pandera drops missing values before an ignore_na check: they pass
            passed = result.check_output.reindex(coerced.index, fill_value=True).to_numpy(dtype=bool)
            if not passed.all():
                rows = np.flatnonzero(~found.encoded.expand(passed))
                pieces.append(_cases(found.name, _check_label(check), rows, coerced.take(found.encoded.codes[rows]), index))
    cases = pd.concat(pieces, ignore_index=True) if pieces else pd.DataFrame(columns=CASE_COLUMNS)
    encoded = {found.name: found.encoded for _, found in columns}
    if len(cases):  # pandera hands back the frame as given when anything failed
        return ContractRun(cases=cases, frame=frame, encoded=encoded)
    typed = frame.copy(deep=False)
    for _, found in columns:
        unchanged = found.coerced.dtype == found.series.dtype and found.coerced.equals(found.encoded.uniques)
        if not unchanged:
            typed[found.name] = pd.Series(found.coerced.array.take(found.encoded.codes), index=frame.index,
                                          name=found.name, copy=False)
    return ContractRun(cases=cases, frame=typed, encoded=encoded)
