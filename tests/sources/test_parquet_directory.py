"""A directory of Parquet part files read as one table (analysis/sources/files.py), the layout
`trialkit simulate` writes for a large trial."""

from __future__ import annotations

import pandas as pd
import pytest

from analysis.core.errors import DataError
from analysis.plan import load_plan
from analysis.sources.files import read_measurements
from tests.conftest import SMALL_PLAN

PLAN = SMALL_PLAN.replace("path: measurements.csv", "path: measurements.parquet")


def _parts(folder, frames):
    folder.mkdir()
    for i, frame in enumerate(frames):
        frame.to_parquet(folder / f"part-{i:05d}.parquet", index=False)


def _rows(pid, values):
    return pd.DataFrame({"participant_id": pid, "visit": ["base", "w4", "w8"][: len(values)],
                         "outcome": "pain", "value": values})


def test_parts_are_read_in_name_order_with_rows_numbered_across_them(small_trial, tmp_path):
    plan = small_trial(plan=PLAN)
    # written out of order on purpose: the names decide, not the file system's listing
    (tmp_path / "measurements.parquet").mkdir()
    _rows("P3", [7.0, 5.0, 2.0]).to_parquet(tmp_path / "measurements.parquet" / "part-00001.parquet", index=False)
    _rows("P1", [6.0, 4.0, None]).to_parquet(tmp_path / "measurements.parquet" / "part-00000.parquet", index=False)
    (tmp_path / "measurements.parquet" / "_SUCCESS").write_text("")  # not a part
    raw, long = read_measurements(load_plan(plan))
    assert raw.path == (tmp_path / "measurements.parquet").resolve()
    assert [p.name for p in raw.inputs] == ["part-00000.parquet", "part-00001.parquet"]
    assert long["participant_id"].tolist() == ["P1"] * 3 + ["P3"] * 3
    assert long["source_row"].tolist() == [1, 2, 3, 4, 5, 6]
    assert long["value"].isna().tolist() == [False, False, True, False, False, False]


def test_an_empty_directory_and_parts_with_other_columns_are_data_errors(small_trial, tmp_path):
    plan = small_trial(plan=PLAN)
    folder = tmp_path / "measurements.parquet"
    folder.mkdir()
    with pytest.raises(DataError, match="holds no \\*.parquet part files"):
        read_measurements(load_plan(plan))
    _rows("P1", [6.0]).to_parquet(folder / "part-00000.parquet", index=False)
    _rows("P2", [5.0]).rename(columns={"value": "score"}).to_parquet(folder / "part-00001.parquet", index=False)
    with pytest.raises(DataError, match="part-00001.parquet: has columns") as error:
        read_measurements(load_plan(plan))
    assert error.value.failures.iloc[0]["rule"] == "same columns as the other parts"


def test_a_csv_plan_naming_a_directory_still_says_it_is_a_directory(small_trial, tmp_path):
    from analysis.core.filesystem import FileSystemError

    plan = small_trial()
    (tmp_path / "measurements.csv").unlink()
    (tmp_path / "measurements.csv").mkdir()
    with pytest.raises(FileSystemError, match="it is a directory, not a file"):
        read_measurements(load_plan(plan))


def test_a_table_too_large_for_the_machine_is_refused_before_it_is_read(small_trial, tmp_path):
    from analysis.core.errors import UsageError
    from analysis.sources.files import RUN_BYTES_PER_ROW, RUN_FIXED_BYTES, check_fits_in_memory

    plan = load_plan(small_trial(plan=PLAN))
    _parts(tmp_path / "measurements.parquet", [_rows("P1", [6.0, 4.0, 3.0]), _rows("P2", [5.0, 5.0])])
    spec = plan.plan.data.measurements
    need = RUN_FIXED_BYTES + 5 * RUN_BYTES_PER_ROW  # 5 rows, counted from the parts' metadata
    check_fits_in_memory(spec, tmp_path, physical=need)
    with pytest.raises(UsageError, match=r"hold 5 rows; analysing them would need about 512 MiB of memory, "
                                         r"more than this machine's 256 MiB") as error:
        check_fits_in_memory(spec, tmp_path, physical=256 * 2**20)
    assert error.value.exit_code == 2


def test_validate_of_a_table_too_large_exits_2_with_one_sentence(small_trial, tmp_path, monkeypatch, capsys):
    from analysis.cli import run_cli
    from analysis.core import limits

    plan = small_trial(plan=PLAN)
    _parts(tmp_path / "measurements.parquet", [_rows("P1", [6.0, 4.0, 3.0])])
    monkeypatch.setattr(limits, "_PHYSICAL", 2**20)
    assert run_cli(["validate", str(plan)]) == 2
    err = capsys.readouterr().err
    assert "hold 3 rows; analysing them would need about" in err and "more than this machine's 1 MiB" in err
    assert "Traceback" not in err
