"""A long table is written in blocks of rows with the same bytes as the whole table (analysis/core/output.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.core import output


def test_a_table_streamed_in_blocks_has_the_bytes_of_the_whole_table(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({
        "value": rng.normal(size=100),
        "text": pd.Series(["=SUM(A1)", "plain", None, "-3", "two\nlines"] * 20, dtype="str"),
        "count": pd.array([1, None] * 50, dtype="Int64"),
    })
    whole = output.table_csv_bytes(frame)
    assert b"'=SUM(A1)" in whole and b'"two\nlines"' in whole  # formulas neutralised, line breaks quoted
    monkeypatch.setattr(output, "TABLE_CHUNK_ROWS", 7)  # 15 blocks, the last one partial
    output.write_table(frame, tmp_path / "table.csv")
    assert (tmp_path / "table.csv").read_bytes() == whole
    assert [p.name for p in tmp_path.iterdir()] == ["table.csv"]  # no temporary file left
