"""The NumPy XPT writer (analysis/reporting/xpt.py) against pyreadstat's bytes and hand-worked IBM floats."""

from __future__ import annotations

import io
from datetime import date

import numpy as np
import pandas as pd
import pytest

from analysis.reporting import xpt
from analysis.reporting.xpt import _pyreadstat_bytes, ibm_doubles, write_xpt_stream


def test_ibm_doubles_match_hand_worked_values():
    # -118.625 = -0.4633789... * 16^2 -> C2 76 A0 00 00 00 00 00 (the textbook IBM example);
    # 1 = 0.0625 * 16^1 -> 41 10 00 ...; 0.1 -> 40 19 99 99 99 99 99 9A (IEEE 0.1 shifted, exact)
    encoded = ibm_doubles(np.array([-118.625, 1.0, 0.1, 0.0, -0.0, np.nan]))
    assert bytes(encoded[0]).hex() == "c276a00000000000"
    assert bytes(encoded[1]).hex() == "4110000000000000"
    assert bytes(encoded[2]).hex() == "401999999999999a"
    assert bytes(encoded[3]).hex() == bytes(encoded[4]).hex() == "0000000000000000"
    assert bytes(encoded[5]).hex() == "2e00000000000000"  # SAS missing '.'


def test_ibm_doubles_decode_back_exactly():
    rng = np.random.default_rng(3)
    x = rng.normal(0, 1, 5000) * 10.0 ** rng.integers(-70, 70, 5000)
    words = ibm_doubles(x).view(">u8").ravel().astype(np.uint64)
    sign = np.where(words >> np.uint64(63), -1.0, 1.0)
    exponent = ((words >> np.uint64(56)) & np.uint64(0x7F)).astype(np.int64) - 64
    fraction = (words & np.uint64((1 << 56) - 1)).astype(object)  # exact integers
    decoded = np.array([s * float(f) / 2**56 * 16.0**e for s, f, e in zip(sign, fraction, exponent, strict=True)])
    assert np.array_equal(decoded, x)


def _frame(n: int) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    value = rng.normal(50, 10, n).round(1)
    value[::7] = np.nan
    value[3 % n] = -0.0
    return pd.DataFrame({
        "STUDYID": pd.Series(["trial-1"] * n, dtype=object),
        "USUBJID": pd.Series([f"P{i:05d}" for i in range(n)], dtype=object),
        "AVAL": value,
        "AGE": rng.integers(18, 80, n).astype(float),
        "ABLFL": pd.Series(np.where(np.arange(n) % 4 == 0, "Y", ""), dtype=object),
        "EMPTY": pd.Series([""] * n, dtype=object),
        "RANDDT": pd.Series([date(2023, 1, 1 + i % 28) if i % 9 else None for i in range(n)], dtype=object),
    })


def _options(frame: pd.DataFrame) -> dict:
    return dict(file_label="Test data", column_labels={"AVAL": "Analysis Value"}, table_name="ADTEST",
                file_format_version=5, variable_format={"RANDDT": "DATE9."})


@pytest.mark.parametrize("n", [1, 13, 1000])
def test_bytes_equal_pyreadstat_across_blocks(monkeypatch, n):
    monkeypatch.setattr(xpt, "BLOCK_ROWS", 7)  # several blocks, the last one partial
    frame = _frame(n)
    buffer = io.BytesIO()
    write_xpt_stream(frame, buffer, "ADTEST", "Test data", {"AVAL": "Analysis Value"}, date_columns=("RANDDT",))
    assert buffer.getvalue() == _pyreadstat_bytes(frame, _options(frame))


def test_text_that_is_not_ascii_is_written_by_pyreadstat():
    frame = _frame(5)
    frame["STUDYID"] = pd.Series(["essai-é"] * 5, dtype=object)
    buffer = io.BytesIO()
    write_xpt_stream(frame, buffer, "ADTEST", "Test data", {"AVAL": "Analysis Value"}, date_columns=("RANDDT",))
    assert buffer.getvalue() == _pyreadstat_bytes(frame, _options(frame))
