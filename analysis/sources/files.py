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
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from analysis.core.errors import DataError, failure
from analysis.plan import DataFile, LoadedPlan, MeasurementsFile

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
    # aside (REDCap missing-data codes, ADaM rows of parameters the plan does not analyse).
    notes: tuple[tuple[str, int, str], ...] = ()

    @property
    def n_rows(self) -> int:
        return len(self.frame)


def _fail(path: Path, rule: str, message: str, row: object = "", column: str = "", value: object = "") -> DataError:
    table = pd.DataFrame([failure(str(path), row, column, rule, value)])
    return DataError(f"{path}: {message}", table)


def _read_delimited(path: Path, spec: DataFile) -> pd.DataFrame:
    raw = path.read_bytes()
    if not raw.strip():
        raise _fail(path, "file is empty", "the file is empty (no header, no rows)")
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


def _read_binary(path: Path, fmt: str, spec: DataFile) -> pd.DataFrame:
    try:
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
            }[fmt]
            frame, _meta = reader(str(path))
            first = 1
    except Exception as exc:  # the readers raise many library-specific types for a bad file
        raise _fail(path, f"readable {fmt} file", f"cannot be read as {fmt}: {exc}") from None
    frame.index = pd.RangeIndex(first, len(frame) + first, name="row")
    return frame


def read_file(spec: DataFile, base: Path, label: str) -> RawTable:
    """Read one data file named in the plan, as stored, with file row numbers as the index.

    Parameters
    ----------
    spec
        The plan's entry for the file (path, format, delimiter, encoding, column mapping).
    base
        Folder the plan's relative paths start from (the plan file's folder).
    label
        What the file is (``participants`` or ``measurements``), for messages.
    """
    path = (base / spec.path).resolve()
    if not path.is_file():
        raise _fail(path, "file exists", f"the {label} file named in the plan does not exist")
    try:
        fmt = spec.resolved_format()
    except ValueError as exc:
        raise _fail(path, "known format", str(exc)) from None
    frame = _read_delimited(path, spec) if fmt == "csv" else _read_binary(path, fmt, spec)
    if frame.empty:
        raise _fail(path, "has data rows", "has a header but no data rows")
    frame.columns = [str(c).strip() for c in frame.columns]
    duplicated = frame.columns[frame.columns.duplicated()].tolist()
    if duplicated:
        raise _fail(path, "unique column names", f"column name(s) {duplicated} appear more than once", row=1)
    return RawTable(frame=frame, path=path, format=fmt, label=label)


def canonical_columns(table: RawTable, spec: DataFile, required: list[str]) -> pd.DataFrame:
    """Rename the file's columns to canonical names, checking the required ones are present."""
    frame = table.frame.rename(columns={spec.column(name): name for name in spec.columns})
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


def read_participants(loaded: LoadedPlan) -> tuple[RawTable, pd.DataFrame]:
    """Read the participants file; return it as stored and with canonical column names."""
    spec = loaded.plan.data.participants
    table = read_file(spec, loaded.path.parent, "participants")
    required = ["participant_id", "arm", "disposition", *loaded.plan.covariates]
    return table, canonical_columns(table, spec, required)


def read_measurements(loaded: LoadedPlan) -> tuple[RawTable, pd.DataFrame]:
    """Read the measurements file and reshape it to long form.

    Returns the file as stored and a long frame with columns ``participant_id, visit, outcome,
    value, source_row, source_column`` (one row per recorded cell).
    """
    spec = loaded.plan.data.measurements
    table = read_file(spec, loaded.path.parent, "measurements")
    if spec.layout == "long":
        frame = canonical_columns(table, spec, MEASUREMENT_COLUMNS)
        long = frame[MEASUREMENT_COLUMNS].copy()
        long["source_column"] = spec.column("value")
    elif spec.outcome_columns:
        frame = canonical_columns(table, spec, ["participant_id", "visit", *spec.outcome_columns.values()])
        long = _melt(frame, spec, {name: column for name, column in spec.outcome_columns.items()}, by_visit=True)
    else:
        cells = {(o, v): c for o, visits in (spec.cell_columns or {}).items() for v, c in visits.items()}
        frame = canonical_columns(table, spec, ["participant_id", *cells.values()])
        long = _melt(frame, spec, cells, by_visit=False)
    long["source_row"] = long.index
    return table, long.reset_index(drop=True)


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
