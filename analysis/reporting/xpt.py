"""SAS transport (XPT version 5) files written a block of rows at a time, in NumPy.

pyreadstat writes XPT one cell at a time in Python (about 10 s per million BDS rows) and needs the
whole table as Python objects. The file is a fixed header (library, member and one ``NAMESTR``
record per variable) followed by the observations: each row is its variables side by side, numbers
as 8-byte IBM System/360 hexadecimal floats (SAS missing ``.`` is ``0x2E`` then seven zero bytes),
text left-aligned and padded with spaces to the variable's width (the longest value's length, at
least 1), and the last 80-byte record padded with spaces (SAS Technical Support TS-140, "The record
layout of a SAS transport file"). Here the header comes from pyreadstat itself, written for a one-row
table that has each text column's longest value (so every width, label and format is what
pyreadstat would write), and the observations are encoded in NumPy, a block of rows at a time, so
the bytes equal pyreadstat's for the whole table (checked in ``tests/reporting/test_xpt.py``).
Tables this encoder does not cover (text that is not ASCII, a number outside the IBM range) are
written by pyreadstat as before.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pandas as pd

# pyreadstat stamps the header with the time of writing; fixed so the same data give the same bytes
_XPT_STAMP = re.compile(rb"\d{2}[A-Z]{3}\d{2}:\d{2}:\d{2}:\d{2}")
_OBS_HEADER = b"HEADER RECORD*******OBS"
_SAS_EPOCH = np.datetime64("1960-01-01", "D")
# rows encoded at a time: a block's records stay near 64 MiB for a typical 300-byte BDS row
BLOCK_ROWS = 200_000


class _NotCovered(Exception):
    """The table needs pyreadstat's general writer."""


def _ibm_range_ok(x: np.ndarray) -> bool:
    """Every number is zero, NaN or a normal double within the IBM exponent range."""
    finite = np.isfinite(x) & (x != 0)
    if np.any(np.isinf(x)):
        return False
    magnitude = np.abs(x[finite])
    # 16^-65 <= |x| < 16^63; subnormal doubles are far below the lower end
    return bool(magnitude.size == 0 or (magnitude.min() >= 16.0**-65 and magnitude.max() < 16.0**63))


def ibm_doubles(values: np.ndarray) -> np.ndarray:
    """IEEE doubles as big-endian 8-byte IBM hexadecimal floats, shape ``(n, 8)`` uint8.

    ``x = (-1)^s 0.F 16^(E - 64)``: with ``x = 1.f 2^b`` (IEEE), ``c = floor(b / 4) + 1`` and the
    53-bit significand shifted left by ``4 + b - 4c`` (0 to 3) bits is the 56-bit fraction F, exact.
    Zero (either sign) is eight zero bytes; NaN is SAS missing ``.`` (``0x2E``, then zeros). The
    numbers must be in the IBM range (checked by the caller).

    Examples
    --------
    >>> ibm_doubles(np.array([1.0, -118.625, 0.0, np.nan])).tolist()  # doctest: +NORMALIZE_WHITESPACE
    [[65, 16, 0, 0, 0, 0, 0, 0], [194, 118, 160, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0, 0, 0],
     [46, 0, 0, 0, 0, 0, 0, 0]]
    """
    x = np.ascontiguousarray(values, dtype=np.float64)
    bits = x.view(np.uint64)
    missing = np.isnan(x)
    zero = (x == 0) | missing
    power = ((bits >> np.uint64(52)) & np.uint64(0x7FF)).astype(np.int64) - 1023
    c = power // 4 + 1
    significand = (bits & np.uint64((1 << 52) - 1)) | np.uint64(1 << 52)
    fraction = significand << (4 + power - 4 * c).astype(np.uint64)
    exponent = np.where(zero, 0, c + 64).astype(np.uint64)
    word = (bits & np.uint64(1 << 63)) | (exponent << np.uint64(56)) | fraction
    word[zero] = 0
    word[missing] = np.uint64(0x2E) << np.uint64(56)
    return word.astype(">u8").view(np.uint8).reshape(-1, 8)


def _kinds(frame: pd.DataFrame, dates: set[str]) -> dict[str, str]:
    kinds = {}
    for column in frame.columns:
        series = frame[column]
        if column in dates:
            kinds[column] = "date"
        elif pd.api.types.is_bool_dtype(series):
            raise _NotCovered("a boolean column")
        elif pd.api.types.is_numeric_dtype(series):
            kinds[column] = "number"
        elif series.dtype == object or pd.api.types.is_string_dtype(series):
            kinds[column] = "text"
        else:
            raise _NotCovered(f"column of type {series.dtype}")
    return kinds


def _text_table(series: pd.Series) -> tuple[np.ndarray, np.ndarray, str]:
    """Codes per row, each distinct value's bytes (space-padded) as rows of a uint8 table, and the
    longest value."""
    codes, distinct = pd.factorize(series, use_na_sentinel=False)
    texts = [value if isinstance(value, str) else None for value in distinct]
    if any(text is None for text in texts):
        raise _NotCovered("a text column holding a value that is not text")
    try:
        encoded = [text.encode("ascii") for text in texts]
    except UnicodeEncodeError:
        raise _NotCovered("text that is not ASCII") from None
    longest = int(np.argmax([len(b) for b in encoded])) if encoded else 0
    width = max(1, len(encoded[longest]) if encoded else 1)
    table = np.frombuffer(b"".join(b.ljust(width, b" ") for b in encoded), dtype=np.uint8).reshape(-1, width)
    return codes, table, texts[longest] if texts else ""


def _sas_days(series: pd.Series) -> np.ndarray:
    distinct = pd.unique(series)
    if not all(value is None or isinstance(value, date) for value in distinct):
        raise _NotCovered("a date column holding a value that is not a date")
    if all(value is None for value in distinct):  # pyreadstat writes such a column as text
        raise _NotCovered("a date column without a date")
    stamps = pd.to_datetime(series.astype(object), errors="raise").to_numpy("datetime64[D]")
    days = (stamps - _SAS_EPOCH).astype("timedelta64[D]").astype(np.float64)
    days[np.isnat(stamps)] = np.nan
    return days


def _header(frame: pd.DataFrame, kinds: dict[str, str], widest: dict[str, str], **options) -> bytes:
    import pyreadstat

    row = {}
    for column, kind in kinds.items():
        if kind == "text":
            row[column] = pd.Series([widest[column]], dtype=object)
        elif kind == "date":
            row[column] = pd.Series([date(1960, 1, 1)], dtype=object)  # a date, so pyreadstat types it numeric
        else:
            row[column] = pd.Series([0.0])
    one = pd.DataFrame(row)
    with tempfile.TemporaryDirectory() as folder:
        target = Path(folder) / "header.xpt"
        pyreadstat.write_xport(one, str(target), **options)
        data = target.read_bytes()
    end = data.find(_OBS_HEADER)
    return _XPT_STAMP.sub(b"01JAN70:00:00:00", data[:end]) + data[end : end + 80]


def _blocks(frame: pd.DataFrame, kinds: dict[str, str]) -> tuple[dict[str, str], Iterator[bytes]]:
    """The longest value of each text column, and the observations as blocks of bytes."""
    tables = {c: _text_table(frame[c]) for c, k in kinds.items() if k == "text"}
    numbers = {c: (_sas_days(frame[c]) if k == "date" else frame[c].to_numpy(np.float64))
               for c, k in kinds.items() if k != "text"}
    if not all(_ibm_range_ok(values) for values in numbers.values()):
        raise _NotCovered("a number outside the IBM range")
    widths = [tables[c][1].shape[1] if k == "text" else 8 for c, k in kinds.items()]
    starts = np.concatenate([[0], np.cumsum(widths)]).astype(int)
    record = int(starts[-1])

    def generate() -> Iterator[bytes]:
        buffer = np.empty((min(len(frame), BLOCK_ROWS), record), dtype=np.uint8)  # reused: pages touched once
        for first in range(0, len(frame), BLOCK_ROWS):
            rows = slice(first, min(len(frame), first + BLOCK_ROWS))
            block = buffer[: rows.stop - rows.start]
            for i, (column, kind) in enumerate(kinds.items()):
                if kind == "text":
                    codes, table, _longest = tables[column]
                    # gather whole values (one void item per distinct text), not single bytes
                    picked = table.view(f"V{table.shape[1]}").ravel()[codes[rows]]
                    block[:, starts[i] : starts[i + 1]] = picked.view(np.uint8).reshape(len(picked), -1)
                else:
                    block[:, starts[i] : starts[i + 1]] = ibm_doubles(numbers[column][rows])
            yield block.tobytes()
        yield b" " * ((-record * len(frame)) % 80)

    return {c: t[2] for c, t in tables.items()}, generate()


def xpt_chunks(frame: pd.DataFrame, name: str, label: str, column_labels: dict[str, str],
               date_columns: tuple[str, ...] = ()) -> Iterator[bytes]:
    """``frame`` as an XPT version 5 file, a block of rows at a time (for
    :func:`analysis.core.output.write_bytes`, which writes it atomically without the whole file in memory).

    The bytes are those of ``pyreadstat.write_xport(frame, ..., file_format_version=5)`` with the
    header's time stamps set to ``01JAN70:00:00:00``; ``date_columns`` (``datetime.date`` values)
    get the ``DATE9.`` format. A table the NumPy encoder does not cover is written by pyreadstat.
    """
    options = dict(file_label=label, column_labels={c: t for c, t in column_labels.items() if c in frame},
                   table_name=name, file_format_version=5,
                   variable_format={c: "DATE9." for c in date_columns if c in frame} or None)
    try:
        kinds = _kinds(frame, set(date_columns))
        widest, blocks = _blocks(frame, kinds)
        header = _header(frame, kinds, widest, **options)
    except _NotCovered:
        yield _pyreadstat_bytes(frame, options)
        return
    yield header
    yield from blocks


def write_xpt_stream(frame: pd.DataFrame, handle: BinaryIO, name: str, label: str, column_labels: dict[str, str],
                     date_columns: tuple[str, ...] = ()) -> None:
    """Write :func:`xpt_chunks` of ``frame`` into an open binary ``handle``."""
    for chunk in xpt_chunks(frame, name, label, column_labels, date_columns):
        handle.write(chunk)


def _pyreadstat_bytes(frame: pd.DataFrame, options: dict) -> bytes:
    import pyreadstat

    # pyreadstat reads text from object columns only
    text = [c for c in frame.columns if pd.api.types.is_string_dtype(frame[c]) and frame[c].dtype != object]
    frame = frame.astype({c: object for c in text}) if text else frame

    with tempfile.TemporaryDirectory() as folder:
        target = Path(folder) / "table.xpt"
        pyreadstat.write_xport(frame, str(target), **options)
        data = target.read_bytes()
    end = data.find(_OBS_HEADER)
    return _XPT_STAMP.sub(b"01JAN70:00:00:00", data[:end]) + data[end:]
