"""Input as a directory of Parquet files, read, validated and derived partition by partition.

The contract (shared with the pandas engine's reader): a directory of ``*.parquet`` files, read in
sorted name order, every participant's rows in one file. With separate participants and
measurements directories the k-th file of one pairs with the k-th file of the other (same number of
files; a measurement row whose participant is listed in another pair's participants file is a
failure saying so). A plan entry naming a single file is one partition, so every plan the pandas
engine reads from files also runs here.

Each partition goes through exactly the functions :func:`analysis.pipeline.load_trial` calls
(:func:`analysis.sources.trial.read_sources`, :func:`analysis.checks.contracts.validate_trial`,
:func:`analysis.derive.dataset.build_analysis_dataset`), on a copy of the plan whose data entries
name that partition's files, so failure rows name the partition file and the row within it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from analysis.core.errors import FAILURE_COLUMNS, DataError, TrialkitError, UsageError, failure
from analysis.plan import LoadedPlan

HELD_COLUMNS = ("participant_id", "arm", "outcome", "visit", "visit_week", "value", "baseline", "change",
                "pct_change", "baseline_flag")
HELD_LABELS = ("participant_id", "arm", "outcome", "visit")
ONE_FILE_RULE = "every participant's rows must be in one file (pair) of the directory"
UNIQUE_RULE = "participant_id must be unique across the partition files"


@dataclass(frozen=True)
class PartitionFiles:
    """One partition: its participants file and its measurements file (the same for one wide file)."""

    participants: Path
    measurements: Path


@dataclass(frozen=True)
class Partition:
    """One partition read, validated and derived (it stays on the worker that made it)."""

    files: PartitionFiles
    failures: pd.DataFrame | None = None
    error: TrialkitError | None = None
    participants: pd.DataFrame | None = None
    dataset: pd.DataFrame | None = None
    rows_read: tuple[int, int] = (0, 0)
    disposition_derived: bool = False
    ids: pd.DataFrame | None = None


def _listing(path: Path, label: str) -> list[Path]:
    if not path.is_dir():
        return [path]
    files = sorted(p for p in path.glob("*.parquet") if p.is_file())
    if not files:
        raise DataError(
            f"{path}: the {label} directory holds no *.parquet files",
            pd.DataFrame([failure(str(path), "", "", "directory of *.parquet files", "no *.parquet file")]),
        )
    return files


def partition_files(loaded: LoadedPlan) -> list[PartitionFiles]:
    """The partitions of a plan's data, in sorted file-name order.

    Raises
    ------
    UsageError
        The plan reads a REDCap export or ADaM datasets (run those with the pandas engine).
    DataError
        A directory holds no ``*.parquet`` file, or the two directories hold different numbers.
    """
    data = loaded.plan.data
    if data.redcap is not None or data.adam is not None:
        raise UsageError(
            "the dask engine reads participants and measurements files (single files or directories of "
            "Parquet files); run REDCap and ADaM sources with --engine pandas"
        )
    participants = _listing(loaded.resolve(data.participants.path), "participants")
    measurements = _listing(loaded.resolve(data.measurements.path), "measurements")
    if len(participants) != len(measurements):
        where = loaded.resolve(data.measurements.path)
        raise DataError(
            f"{where}: {len(measurements)} measurements file(s) for {len(participants)} participants file(s); "
            "the k-th file of each directory (sorted by name) must hold the same participants",
            pd.DataFrame([failure(str(where), "", "", "one measurements file per participants file",
                                  f"{len(measurements)} for {len(participants)}")]),
        )
    return [PartitionFiles(p, m) for p, m in zip(participants, measurements, strict=True)]


def partition_plan(loaded: LoadedPlan, files: PartitionFiles) -> LoadedPlan:
    """A copy of the plan whose data entries name this partition's files (absolute paths)."""
    data = loaded.plan.data

    def entry(spec, path: Path):
        update: dict[str, object] = {"path": str(path)}
        if loaded.resolve(spec.path).is_dir():
            update["format"] = "parquet"
        return spec.model_copy(update=update)

    new_data = data.model_copy(update={
        "participants": entry(data.participants, files.participants),
        "measurements": entry(data.measurements, files.measurements),
    })
    plan = loaded.plan.model_copy(update={"data": new_data})
    return LoadedPlan(plan=plan, path=loaded.path, sha256=loaded.sha256)


def load_partition(loaded: LoadedPlan, files: PartitionFiles) -> Partition:
    """Read, validate and derive one partition (runs on a worker).

    The same steps as :func:`analysis.pipeline.load_trial`; a :class:`DataError` becomes the
    partition's failure table (gathered with every other partition's), any other trialkit error
    is carried back to the client and raised there.
    """
    from analysis.checks.contracts import ValidTrial, validate_trial
    from analysis.derive.adam import check_adam_derivations
    from analysis.derive.dataset import build_analysis_dataset
    from analysis.derive.disposition import derive_disposition
    from analysis.sources.trial import read_sources

    part = partition_plan(loaded, files)
    ids = None
    try:
        participants_raw, participants, measurements_raw, measurements = read_sources(part)
        # the ids as read (row = file row), for the cross-partition checks even when this one fails
        ids = pd.DataFrame({"participant_id": participants["participant_id"].astype(str).to_numpy(),
                            "source_row": participants.index.to_numpy()})
        check_adam_derivations(measurements_raw, measurements, part.plan)
        valid = validate_trial(participants_raw, participants, measurements_raw, measurements, part.plan)
    except DataError as error:
        table = error.failures if error.failures is not None and len(error.failures) else pd.DataFrame(
            [failure(str(files.participants), "", "", str(error), "")]
        )
        return Partition(files, failures=table[FAILURE_COLUMNS].copy(), ids=ids)
    except TrialkitError as error:
        return Partition(files, error=error)
    derived = "disposition" not in valid.participants.columns
    if derived:
        valid = ValidTrial(participants=derive_disposition(valid.participants, valid.measurements, part.plan),
                           measurements=valid.measurements)
    dataset = build_analysis_dataset(valid.measurements, valid.participants, part.plan)
    # held on the worker for every later pass: only the columns the statistics read, labels as
    # categories (a third of the memory of the frame as derived)
    dataset = dataset[[c for c in HELD_COLUMNS if c in dataset.columns]].astype({c: "category" for c in HELD_LABELS})
    participants = valid.participants[["participant_id", *dict.fromkeys(part.plan.covariates)]]
    return Partition(files, participants=participants, dataset=dataset, ids=ids,
                     rows_read=(participants_raw.n_rows, measurements_raw.n_rows), disposition_derived=derived)


def partition_report(partition: Partition) -> dict:
    """What the client needs to check a partition: failures, error, participant ids and rows."""
    return {"files": partition.files, "failures": partition.failures, "error": partition.error, "ids": partition.ids,
            "rows_read": partition.rows_read, "disposition_derived": partition.disposition_derived}


def gather_failures(reports: list[dict], loaded: LoadedPlan) -> None:
    """Raise one :class:`DataError` with every partition's failures, or the first other error.

    Adds the cross-partition checks: a participant listed in two participants files, and a
    measurement row whose participant is listed in another partition's participants file.
    """
    for report in reports:
        if report["error"] is not None:
            raise report["error"]
    column = loaded.plan.data.participants.column("participant_id")
    owner: dict[str, str] = {}
    rows = []
    for report in reports:
        if report["ids"] is None:
            continue
        path = str(report["files"].participants)
        for pid, row in zip(report["ids"]["participant_id"], report["ids"]["source_row"], strict=True):
            if pid in owner:
                rows.append(failure(path, int(row), column, f"{UNIQUE_RULE} (also in {Path(owner[pid]).name})", pid))
            else:
                owner[pid] = path
    tables = [r["failures"] for r in reports if r["failures"] is not None]
    if tables:
        table = pd.concat(tables, ignore_index=True)
        unlisted = table["rule"] == "participant must be listed in the participants file"
        for index in table.index[unlisted]:
            elsewhere = owner.get(str(table.at[index, "value"]))
            if elsewhere is not None:
                table.at[index, "rule"] = f"{ONE_FILE_RULE}: listed in {Path(elsewhere).name}"
        tables = [table]
    if rows:
        tables.append(pd.DataFrame(rows, columns=FAILURE_COLUMNS))
    if not tables:
        return
    table = pd.concat(tables, ignore_index=True)
    table["value"] = table["value"].map(lambda v: "" if v is None or (isinstance(v, float) and pd.isna(v)) else str(v))
    table = table.sort_values(["file", "row"], kind="stable", key=_row_key).reset_index(drop=True)
    raise DataError(f"{len(table)} validation failure(s) in the trial data", table)


def _row_key(series: pd.Series) -> pd.Series:
    if series.name == "row":  # rows are numbers, or "" for a whole file
        return pd.to_numeric(series, errors="coerce").fillna(-1)
    return series
