"""Reading raw trial files: parse only, never alter values.

Delimited text is read with every cell as text, so the validation stage (not the reader) decides
whether ``"12,5"`` or ``"n/a"`` is a number and can report the file row that holds it. Binary formats
(Parquet, Excel, SAS, SPSS) keep the types their writer stored. Every frame this module returns has
its file row number as its index (the header is row 1, so the first data row of a CSV or Excel sheet
is row 2; for Parquet, SAS and SPSS, which have no header row, the first record is row 1).

Measurements in wide layouts are reshaped to the canonical long form; each long row keeps the file
row and the file column its value came from (``source_row``, ``source_column``).
"""

from __future__ import annotations

import codecs
import csv
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from analysis.core.errors import DataError, failure
from analysis.core.filesystem import check_readable, read_input
from analysis.plan import DataFile, LoadedPlan, MeasurementsFile
from analysis.sources.cells import coded_column, label_maps, read_missing_codes

MEASUREMENT_COLUMNS = ["participant_id", "visit", "outcome", "value"]


@dataclass(frozen=True)
class RawTable:
    """A file as read: its frame (index = file row number), where it came from, and its format."""

    frame: pd.DataFrame
    path: Path
    format: str
    label: str
    # Other files the table was built from (a REDCap data dictionary), for the manifest's hashes.
    inputs: tuple[Path, ...] = ()
    # (item, count, reason) for values a source reader turned into missing values or rows it set
    # aside (REDCap missing-data codes, the plan's na_values, ADaM rows of parameters the plan does
    # not analyse).
    notes: tuple[tuple[str, int, str], ...] = ()
    # Value labels stored in the file (SPSS, Stata): file column -> {code as text: label}.
    value_labels: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def n_rows(self) -> int:
        return len(self.frame)


def _fail(path: Path, rule: str, message: str, row: object = "", column: str = "", value: object = "") -> DataError:
    table = pd.DataFrame([failure(str(path), row, column, rule, value)])
    return DataError(f"{path}: {message}", table)


EMPTY_RULE = "file is empty"
UNIQUE_RULE = "column names must be unique"


def empty_file_error(path: Path, header_only: bool = False) -> DataError:
    """The one report of an empty input file, whatever reads it: row 1 (the header), rule
    ``file is empty``; a header without data rows counts as empty."""
    detail = "has a header but no data rows" if header_only else "the file is empty (no header, no rows)"
    return _fail(path, EMPTY_RULE, detail, row=1, value="header only" if header_only else "")


def duplicate_columns_error(path: Path, names: list[object]) -> DataError | None:
    """A failure per column name that appears more than once in the header (row 1), naming the
    positions it holds; None when the names are unique. Empty header cells are not names."""
    positions: dict[str, list[int]] = {}
    for number, name in enumerate(names, start=1):
        text = "" if name is None or (isinstance(name, float) and pd.isna(name)) else str(name).strip()
        if text:
            positions.setdefault(text, []).append(number)
    repeated = {name: where for name, where in positions.items() if len(where) > 1}
    if not repeated:
        return None
    rows = [
        failure(str(path), 1, name, UNIQUE_RULE, "columns " + ", ".join(map(str, where)))
        for name, where in repeated.items()
    ]
    return DataError(
        f"{path}: column name(s) {list(repeated)} appear more than once in the header; rename or remove "
        "the repeated column(s) (only one of them would be read)",
        pd.DataFrame(rows),
    )


def _read_delimited(path: Path, spec: DataFile) -> pd.DataFrame:
    raw = read_input(path, "the data file")
    if not raw.strip():
        raise empty_file_error(path)
    encoding = "utf-8-sig" if spec.encoding.lower().replace("_", "-") in {"utf-8", "utf8"} else spec.encoding
    if encoding == "utf-8-sig" and raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise _fail(
            path,
            f"text encoding is {spec.encoding}",
            "starts with a UTF-16 byte-order mark (as Excel's 'Unicode text' writes); re-save the file "
            "as UTF-8 CSV or set 'encoding: utf-16' for this file in the plan",
            row=1,
            value=repr(raw[:2]),
        )
    try:
        text = raw.decode(encoding)
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise _fail(
            path,
            f"text encoding is {spec.encoding}",
            f"byte {exc.start} (line {line}) is not valid {spec.encoding}; re-save the file as "
            f"{spec.encoding} or set 'encoding' for this file in the plan",
            row=line,
            value=repr(raw[exc.start : exc.start + 4]),
        ) from None
    header_line = text.splitlines()[0] if text.splitlines() else ""
    if spec.delimiter not in header_line and any(d in header_line for d in (";", "\t", "|")):
        found = next(d for d in (";", "\t", "|") if d in header_line)
        raise _fail(
            path,
            f"delimiter is {spec.delimiter!r}",
            f"the header is separated by {found!r}, not by {spec.delimiter!r}; set 'delimiter' for "
            "this file in the plan",
            row=1,
            value=header_line[:80],
        )
    _check_field_counts(path, text, spec.delimiter)
    repeated = duplicate_columns_error(path, next(csv.reader(text.splitlines(), delimiter=spec.delimiter), []))
    if repeated is not None:  # pandas would rename the second 'x' to 'x.1' and it would go unread
        raise repeated
    try:
        frame = pd.read_csv(
            pd.io.common.StringIO(text),
            sep=spec.delimiter,
            dtype=str,
            keep_default_na=False,
            na_values=[""],
            skipinitialspace=False,
        )
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise _fail(path, "well-formed delimited text", f"cannot be parsed: {exc}") from None
    frame.index = pd.RangeIndex(2, len(frame) + 2, name="row")
    return frame


def _check_field_counts(path: Path, text: str, delimiter: str) -> None:
    """Every record must have as many fields as the header (a truncated or ragged file fails)."""
    reader = csv.reader(text.splitlines(), delimiter=delimiter)
    header = next(reader, [])
    problems = []
    for line_number, record in enumerate(reader, start=2):
        if record and len(record) != len(header):
            problems.append(
                failure(str(path), line_number, "", f"has {len(header)} fields like the header", f"{len(record)} fields")
            )
    if problems:
        raise DataError(
            f"{path}: {len(problems)} row(s) do not have the header's {len(header)} fields "
            "(truncated or wrongly delimited file)",
            pd.DataFrame(problems),
        )


def _stored_names(path: Path, fmt: str, spec: DataFile) -> list[object]:
    """The column names as stored, before pandas renames a repeated ``x`` to ``x.1`` (Excel) or
    refuses the file (Parquet); other formats are checked on the frame read."""
    if fmt == "parquet":
        import pyarrow.parquet as pq

        return list(pq.read_schema(path).names)
    if fmt == "xlsx":
        header = pd.read_excel(path, sheet_name=spec.sheet or 0, header=None, nrows=1, dtype=object)
        return header.iloc[0].tolist() if not header.empty else []
    return []


def _read_binary(path: Path, fmt: str, spec: DataFile) -> tuple[pd.DataFrame, dict[str, dict[str, str]]]:
    """The frame as stored and the file's value labels (SPSS, Stata; SAS files carry none)."""
    labels: dict[str, dict[str, str]] = {}
    try:
        repeated = duplicate_columns_error(path, _stored_names(path, fmt, spec))
        if repeated is not None:
            raise repeated
        if fmt == "parquet":
            frame = pd.read_parquet(path)
            first = 1
        elif fmt == "xlsx":
            frame = pd.read_excel(path, sheet_name=spec.sheet or 0, dtype=object)
            first = 2
        else:
            import pyreadstat

            reader = {
                "sas7bdat": pyreadstat.read_sas7bdat,
                "xpt": pyreadstat.read_xport,
                "sav": pyreadstat.read_sav,
                "dta": pyreadstat.read_dta,
            }[fmt]
            frame, meta = reader(str(path))  # codes as stored; their labels from the metadata
            labels = label_maps(getattr(meta, "variable_value_labels", None) or {})
            first = 1
    except DataError:
        raise
    except Exception as exc:  # the readers raise many library-specific types for a bad file
        raise _fail(path, f"readable {fmt} file", f"cannot be read as {fmt}: {exc}") from None
    frame.index = pd.RangeIndex(first, len(frame) + first, name="row")
    return frame, labels


def _names_parquet(spec: DataFile) -> bool:
    try:
        return spec.resolved_format() == "parquet"
    except ValueError:  # no format and a suffix that names none: read_file reports it
        return False


def parquet_parts(folder: Path) -> list[Path]:
    """The part files of a Parquet directory: its ``*.parquet`` files in sorted name order (hidden
    files and names starting with ``_`` left out)."""
    return sorted(
        p for p in folder.iterdir() if p.suffix.lower() == ".parquet" and p.is_file() and not p.name.startswith((".", "_"))
    )


def read_parquet_directory(folder: Path, label: str) -> RawTable:
    """Read a directory of Parquet part files as one table: the parts in sorted name order.

    This is the layout ``trialkit simulate`` writes for a large trial (``part-00000.parquet``, ...;
    every participant's rows in one part). Every part must have the same column names; the rows
    are numbered from 1 across the parts in order, so a failure's row is its record number in the
    concatenated parts. The parts are listed in :attr:`RawTable.inputs` (hashed in the manifest).

    Raises
    ------
    DataError
        The directory holds no part file, a part cannot be read, or the parts' columns differ.

    Examples
    --------
    >>> import tempfile
    >>> import pandas as pd
    >>> folder = Path(tempfile.mkdtemp())
    >>> pd.DataFrame({"participant_id": ["p1", "p1"], "value": [1.0, 2.0]}).to_parquet(folder / "part-00000.parquet")
    >>> pd.DataFrame({"participant_id": ["p2"], "value": [3.0]}).to_parquet(folder / "part-00001.parquet")
    >>> table = read_parquet_directory(folder, "measurements")
    >>> table.frame.index.tolist(), table.frame["participant_id"].tolist(), table.frame["value"].tolist()
    ([1, 2, 3], ['p1', 'p1', 'p2'], [1.0, 2.0, 3.0])
    >>> [p.name for p in table.inputs]
    ['part-00000.parquet', 'part-00001.parquet']
    >>> import shutil
    >>> shutil.rmtree(folder)
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    parts = parquet_parts(folder)
    if not parts:
        raise _fail(folder, "file exists", f"the {label} directory named in the plan holds no *.parquet part files")
    tables = []
    for part in parts:
        try:
            names = list(pq.read_schema(part).names)
            repeated = duplicate_columns_error(part, names)
            if repeated is not None:
                raise repeated
            table = pq.read_table(part)
        except DataError:
            raise
        except Exception as exc:  # pyarrow raises many types for a bad file
            raise _fail(part, "readable parquet file", f"cannot be read as parquet: {exc}") from None
        if tables and table.schema.names != tables[0].schema.names:
            raise _fail(part, "same columns as the other parts",
                        f"has columns {table.schema.names}, but {parts[0].name} has {tables[0].schema.names}", row=1)
        tables.append(table)
    try:
        # one contiguous array per column, as a single file gives (the checks expect no chunked columns)
        frame = pa.concat_tables(tables, promote_options="permissive").combine_chunks().to_pandas()
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise _fail(folder, "same column types in every part", f"the part files' column types differ: {exc}") from None
    del tables
    if frame.empty:
        raise empty_file_error(folder, header_only=len(frame.columns) > 0)
    frame.index = pd.RangeIndex(1, len(frame) + 1, name="row")
    frame.columns = [str(c).strip() for c in frame.columns]
    return RawTable(frame=frame, path=folder, format="parquet", label=label, inputs=tuple(parts))


def read_file(spec: DataFile, base: Path, label: str, *, rows_required: bool = True) -> RawTable:
    """Read one data file named in the plan, as stored, with file row numbers as the index.

    Parameters
    ----------
    spec
        The plan's entry for the file (path, format, delimiter, encoding, column mapping).
    base
        Folder the plan's relative paths start from (the plan file's folder).
    label
        What the file is (``participants`` or ``measurements``), for messages.
    rows_required
        Whether a header without data rows is an empty file (a failure, as a file with no bytes
        or only white space always is); False where no rows is a valid answer (no adverse events).
    """
    path = (base / spec.path).resolve()
    if path.is_dir() and _names_parquet(spec):
        return read_parquet_directory(path, label)
    check_readable(path, f"the {label} file")  # a folder or an unreadable file: exit 2 naming it
    if not path.is_file():
        raise _fail(path, "file exists", f"the {label} file named in the plan does not exist")
    try:
        fmt = spec.resolved_format()
    except ValueError as exc:
        raise _fail(path, "known format", str(exc)) from None
    if path.stat().st_size == 0:
        raise empty_file_error(path)
    labels: dict[str, dict[str, str]] = {}
    if fmt == "csv":
        frame = _read_delimited(path, spec)
    else:
        frame, labels = _read_binary(path, fmt, spec)
    repeated = duplicate_columns_error(path, list(frame.columns))  # also 'x' and ' x', or a binary file's
    if repeated is not None:
        raise repeated
    if frame.empty and (rows_required or len(frame.columns) == 0):
        raise empty_file_error(path, header_only=len(frame.columns) > 0)
    frame.columns = [str(c).strip() for c in frame.columns]
    labels = {str(c).strip(): mapping for c, mapping in labels.items()}
    return RawTable(frame=frame, path=path, format=fmt, label=label, value_labels=labels)


# Where a file's entry is in the plan, for messages naming a plan key.
PLAN_KEYS = {"participants": "data.participants", "measurements": "data.measurements", "adverse events": "reporting.adverse_events"}


def _unmapped_columns_error(table: RawTable, spec: DataFile) -> DataError | None:
    """Every column the plan's ``columns`` mapping names must be in the file (a column with the
    canonical name is never used in its place): one failure per absent column, or None."""
    absent = {name: column for name, column in spec.columns.items() if column not in table.frame.columns}
    if not absent:
        return None
    key = PLAN_KEYS.get(table.label, table.label)
    named = "; ".join(f"{key}.columns.{name} names column '{column}'" for name, column in absent.items())
    return DataError(
        f"{table.path}: {named}, which the file does not have; the file has {list(table.frame.columns)} "
        f"(correct the column name in the plan, or remove the mapping to use a column named as the canonical name)",
        pd.DataFrame([failure(str(table.path), 1, column, f"column named in the plan ({key}.columns.{name})", "")
                      for name, column in absent.items()]),
    )


def canonical_columns(table: RawTable, spec: DataFile, required: list[str]) -> pd.DataFrame:
    """Rename the file's columns to canonical names, checking the required ones are present.

    Every column the plan maps must exist (:class:`DataError` naming the plan key otherwise);
    where the plan maps a canonical name to another column, a column of the file that happens to
    carry the canonical name is not read.
    """
    unmapped = _unmapped_columns_error(table, spec)
    if unmapped is not None:
        raise unmapped
    shadowed = [n for n, c in spec.columns.items() if c != n and n in table.frame.columns and n not in spec.columns.values()]
    frame = table.frame.drop(columns=shadowed).rename(columns={spec.column(name): name for name in spec.columns})
    missing = [name for name in required if name not in frame.columns]
    if missing:
        expected = [spec.column(name) for name in missing]
        # pandas names empty header cells 'Unnamed: N': a title or merged cells above the header
        unnamed = any(str(c).startswith("Unnamed: ") for c in table.frame.columns)
        hint = (
            "; row 1 has empty or merged cells, so it is not the header: delete any title rows above it"
            if unnamed
            else ""
        )
        raise DataError(
            f"{table.path}: required column(s) {expected} not found; the file has "
            f"{list(table.frame.columns)} (map names with 'columns' in the plan){hint}",
            pd.DataFrame([failure(str(table.path), 1, c, "required column", "") for c in expected]),
        )
    return frame


# How the plan reads each participants column (analysis.sources.cells): numbers, identifiers and
# codes, or text that is read as numbers when every value is one.
PARTICIPANT_NUMBERS = ("age", "enrolled_on")
PARTICIPANT_CODES = ("participant_id", "arm", "disposition")
PARTICIPANT_EITHER = ("sex", "race", "ethnicity", "site", "disposition_reason")


def _as_codes(frame: pd.DataFrame, table: RawTable, spec: DataFile, columns: list[str], labelled_only: bool = False) -> None:
    """Code columns as text, in place: value labels applied, numbers written ``1`` (not ``1.0``).
    Columns of text only, without labels, are left as they are. ``labelled_only``: only columns the
    file labels (a covariate without labels keeps its numbers)."""
    for column in dict.fromkeys(columns):
        if column not in frame.columns:
            continue
        labels = table.value_labels.get(spec.column(column), {})
        if labelled_only and not labels:
            continue
        series = frame[column]
        if labels or any(not isinstance(v, str) for v in series.dropna().tolist()):
            frame[column] = coded_column(series, labels)


def _with_notes(table: RawTable, notes: list[tuple[str, int, str]]) -> RawTable:
    return dataclasses.replace(table, notes=(*table.notes, *notes)) if notes else table


def read_participants(loaded: LoadedPlan) -> tuple[RawTable, pd.DataFrame]:
    """Read the participants file; return it as stored and with canonical column names.

    The plan's ``na_values`` are read as missing in the number columns (counted in the table's
    notes); identifiers and codes are text (value labels applied). ``disposition`` may be absent
    (it is then derived from the data, :mod:`analysis.derive.disposition`).
    """
    plan = loaded.plan
    spec = plan.data.participants
    table = read_file(spec, loaded.path.parent, "participants")
    frame = canonical_columns(table, spec, ["participant_id", "arm", *plan.covariates])
    covariates = [c for c in plan.covariates if c not in (*PARTICIPANT_NUMBERS, *PARTICIPANT_CODES)]
    frame, notes = read_missing_codes(
        frame, spec.na_values, numbers=PARTICIPANT_NUMBERS, either=[*PARTICIPANT_EITHER, *covariates],
        what=f"{table.path.name}", names={c: spec.column(c) for c in frame.columns},
    )
    frame = frame.copy()
    _as_codes(frame, table, spec, [*PARTICIPANT_CODES, *PARTICIPANT_EITHER])
    _as_codes(frame, table, spec, covariates, labelled_only=True)
    return _with_notes(table, notes), frame


# Peak memory of `trialkit run`: a fixed part (interpreter, libraries) and a part per measurement
# row, fitted with a margin to simulated trials of 3 outcomes x 4 visits (100,000 participants:
# 1.14 million rows, 1.56 GiB peak RSS; 1,000,000 participants: 11.4 million rows, 11.6 GiB).
RUN_FIXED_BYTES = 512 * 2**20
RUN_BYTES_PER_ROW = 1_100
# Bytes of a typical long CSV measurements row (``SIM0000001,week12,pain_interference,62.3``):
# the rows of a CSV file are estimated as its size over this, erring towards reading the file.
CSV_ROW_BYTES = 48


def check_fits_in_memory(spec: DataFile, base: Path, physical: int | None = None) -> None:
    """Refuse, before reading it, a measurements table too large to analyse on this machine.

    The rows of a Parquet file or directory are read from its metadata; those of a CSV file are
    estimated as its size over :data:`CSV_ROW_BYTES` (other formats are not checked). A run needs
    about :data:`RUN_FIXED_BYTES` plus :data:`RUN_BYTES_PER_ROW` bytes per row; more than the
    machine's physical memory would end in the operating system killing the run, so it is a
    :class:`~analysis.core.errors.UsageError` (exit 2) instead.

    Examples
    --------
    >>> from analysis.plan.sources import MeasurementsFile
    >>> check_fits_in_memory(MeasurementsFile(path="absent.csv"), Path("."))  # nothing to measure yet
    """
    from analysis.core.errors import UsageError
    from analysis.core.limits import _PHYSICAL, format_bytes

    physical = _PHYSICAL if physical is None else physical
    path = (base / spec.path).resolve()
    try:
        fmt = spec.resolved_format()
    except ValueError:  # read_file reports it
        return
    if not physical or not path.exists() or fmt not in ("csv", "parquet"):
        return
    try:
        if fmt == "parquet":
            import pyarrow.parquet as pq

            parts = parquet_parts(path) if path.is_dir() else [path]
            rows = sum(pq.ParquetFile(part).metadata.num_rows for part in parts)
            counted = f"{rows:,} rows"
        else:
            rows = path.stat().st_size // CSV_ROW_BYTES
            counted = f"about {rows:,} rows ({format_bytes(path.stat().st_size)})"
    except Exception:  # an unreadable file: read_file reports it with its row and rule
        return
    need = RUN_FIXED_BYTES + rows * RUN_BYTES_PER_ROW
    if need > physical:
        raise UsageError(
            f"{path}: the measurements hold {counted}; analysing them would need about {format_bytes(need)} "
            f"of memory, more than this machine's {format_bytes(physical)}; analyse fewer participants "
            "or use a machine with more memory"
        )


def read_measurements(loaded: LoadedPlan) -> tuple[RawTable, pd.DataFrame]:
    """Read the measurements file and reshape it to long form.

    Returns the file as stored and a long frame with columns ``participant_id, visit, outcome,
    value, source_row, source_column`` (one row per recorded cell). The plan's ``na_values`` in
    the value columns are missing values (counted in the table's notes).
    """
    spec = loaded.plan.data.measurements
    check_fits_in_memory(spec, loaded.path.parent)
    table = read_file(spec, loaded.path.parent, "measurements")
    if spec.layout == "long":
        frame = canonical_columns(table, spec, MEASUREMENT_COLUMNS)
        values, codes = ["value"], ["participant_id", "visit", "outcome"]
    elif spec.outcome_columns:
        frame = canonical_columns(table, spec, ["participant_id", "visit", *spec.outcome_columns.values()])
        values, codes = list(spec.outcome_columns.values()), ["participant_id", "visit"]
    else:
        cells = {(o, v): c for o, visits in (spec.cell_columns or {}).items() for v, c in visits.items()}
        frame = canonical_columns(table, spec, ["participant_id", *cells.values()])
        values, codes = list(cells.values()), ["participant_id"]
    frame, notes = read_missing_codes(frame, spec.na_values, numbers=values, what=f"{table.path.name}",
                                      names={c: spec.column(c) for c in frame.columns})
    frame = frame.copy()
    _as_codes(frame, table, spec, codes)
    if spec.layout == "long":
        long = frame[MEASUREMENT_COLUMNS].copy()
        long["source_column"] = spec.column("value")
    elif spec.outcome_columns:
        long = _melt(frame, spec, {name: column for name, column in spec.outcome_columns.items()}, by_visit=True)
    else:
        long = _melt(frame, spec, cells, by_visit=False)
    long["source_row"] = long.index
    return _with_notes(table, notes), long.reset_index(drop=True)


def _melt(frame: pd.DataFrame, spec: MeasurementsFile, cells: dict, by_visit: bool) -> pd.DataFrame:
    pieces = []
    for key, column in cells.items():
        piece = pd.DataFrame(
            {
                "participant_id": frame["participant_id"],
                "visit": frame["visit"] if by_visit else key[1],
                "outcome": key if by_visit else key[0],
                "value": frame[column],
                "source_column": column,
            },
            index=frame.index,
        )
        pieces.append(piece)
    return pd.concat(pieces).sort_index(kind="stable")
