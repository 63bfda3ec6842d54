"""The Dask engine on a real ``distributed.LocalCluster`` of 2 worker processes.

One cluster for the module (start-up costs seconds). Every statistic is checked against the pandas
engine's own functions run on the same data (an independent computation: full participant-level
data, statsmodels OLS for the ANCOVA, NumPy/pandas moments), at 1e-10 relative.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from analysis.core.errors import DataError, UsageError
from analysis.core.output import table_csv_bytes
from analysis.pipeline import between_arm_table, load_trial
from analysis.stats.describe import describe
from analysis.stats.effects import effect_sizes_table
from analysis.stats.effects.summaries import meta_exports
from analysis.stats.models.ancova import ancova
from analysis.stats.models.missing import missing_table
from analysis.stats.models.plan_models import models_table
from tests.conftest import EXAMPLE_PLAN

distributed = pytest.importorskip("distributed", reason="the dask extra is part of the CI environment")

EXAMPLE_DATA = (Path(EXAMPLE_PLAN).parent / "../examples/precision-release-sim").resolve()
N_BOOT = 200
NUMBERS = ["estimate", "std_error", "statistic", "df", "p_value", "ci_low", "ci_high"]
# The MMRM's Satterthwaite df take the REML information by central differences of the gradient
# (step 1e-4), which magnify the rounding of the pattern sums: the pandas engine's own df move by
# up to 1.0e-9 relative on the example when only the participants' order is changed (relabelled
# ids), so summing the patterns partition by partition cannot hold them to 1e-10.
MMRM_DF_TOLERANCE = 1e-8


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as local:
        yield local


def write_plan(folder: Path, participants: dict, measurements: dict) -> Path:
    plan = yaml.safe_load(Path(EXAMPLE_PLAN).read_text())
    plan["data"] = {"participants": participants, "measurements": measurements}
    plan["analysis"]["n_boot"] = N_BOOT
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "plan.yaml"
    path.write_text(yaml.safe_dump(plan, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def example_plan(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("example")
    return write_plan(folder, {"path": str(EXAMPLE_DATA / "participants.csv")},
                      {"path": str(EXAMPLE_DATA / "measurements.csv"), "layout": "long"})


def partition(folder: Path, n_parts: int = 3) -> tuple[Path, Path]:
    """The example as Parquet directories: participants in contiguous blocks, each participant's
    measurements in the file of the same position, cells stored as text as in the CSV."""
    participants = pd.read_csv(EXAMPLE_DATA / "participants.csv", dtype=str)
    measurements = pd.read_csv(EXAMPLE_DATA / "measurements.csv", dtype=str)
    pdir, mdir = folder / "participants", folder / "measurements"
    pdir.mkdir(parents=True)
    mdir.mkdir(parents=True)
    for k, block in enumerate(np.array_split(np.arange(len(participants)), n_parts)):
        part = participants.iloc[block]
        part.to_parquet(pdir / f"part-{k:03d}.parquet", index=False)
        rows = measurements[measurements["participant_id"].isin(part["participant_id"])]
        rows.to_parquet(mdir / f"part-{k:03d}.parquet", index=False)
    return pdir, mdir


@pytest.fixture(scope="module")
def partitioned_plan(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("partitioned")
    pdir, mdir = partition(folder / "data")
    return write_plan(folder, {"path": str(pdir), "format": "parquet"},
                      {"path": str(mdir), "format": "parquet", "layout": "long"})


@pytest.fixture(scope="module")
def pandas_reference(example_plan):
    """The pandas engine's functions on the example's CSV files."""
    trial = load_trial(example_plan)
    plan = trial.plan
    labels = {"treatment": plan.arms.treatment.label, "control": plan.arms.control.label}
    fits = {o.name: ancova(trial.dataset, outcome=o.name, visit=plan.visits.primary, covariates=list(plan.covariates),
                           participants=trial.participants, robust=True, ci_level=plan.analysis.ci_level, labels=labels)
            for o in plan.outcomes}
    return {
        "descriptives": describe(trial.dataset, ci_level=plan.analysis.ci_level),
        "between_arms": between_arm_table(effect_sizes_table(trial.dataset, plan, n_boot=N_BOOT, seed=plan.seed)),
        "ancova": fits,
        "missing": missing_table(trial.dataset),
        "effect_sizes": effect_sizes_table(trial.dataset, plan, n_boot=N_BOOT, seed=plan.seed),
        **{f"meta_{k}": v for k, v in meta_exports(trial.dataset, plan).items()},
        "models": pandas_models(trial),
    }


def pandas_models(trial) -> pd.DataFrame:
    """The pandas engine's ``models.csv`` without the multiple-imputation sensitivity rows (which
    the dask engine does not compute)."""
    table = models_table(trial.dataset, trial.plan, trial.participants)
    return table[~table["note"].str.contains("sensitivity analysis", regex=False)].reset_index(drop=True)


def check_models(got: pd.DataFrame, want: pd.DataFrame, mmrm_df: float = MMRM_DF_TOLERANCE,
                 mmrm_other: float = 1e-10) -> None:
    """Every row of the pandas engine's models table (ANCOVA and MMRM), text equal, numbers to
    1e-10 relative (the MMRM's df to ``mmrm_df``, its other numbers to ``mmrm_other``)."""
    text = ["outcome", "visit", "contrast", "measure", "method", "note"]
    assert got[text].astype(str).values.tolist() == want[text].astype(str).values.tolist()
    mmrm = want["method"].str.startswith("MMRM").to_numpy()
    assert mmrm.sum() >= 3
    numbers = [c for c in [*NUMBERS, "ci_level", "n_treatment", "n_control", "p_adjusted"] if c in want.columns]
    close(got[~mmrm], want[~mmrm], numbers)
    close(got[mmrm], want[mmrm], [c for c in numbers if c != "df"], tolerance=mmrm_other)
    close(got[mmrm], want[mmrm], ["df"], tolerance=mmrm_df)


def close(actual: pd.DataFrame, expected: pd.DataFrame, columns: list[str], tolerance: float = 1e-10) -> None:
    a = actual[columns].to_numpy(float)
    e = expected[columns].to_numpy(float)
    assert a.shape == e.shape
    assert np.array_equal(np.isnan(a), np.isnan(e))
    both = ~np.isnan(e)
    assert np.all(np.abs(a[both] - e[both]) <= tolerance * np.maximum(1.0, np.abs(e[both])))


def check_against_pandas(out: Path, reference: dict) -> None:
    tables = out / "tables"
    got = pd.read_csv(tables / "descriptives.csv")
    want = reference["descriptives"]
    assert got[["outcome", "visit", "arm", "variable"]].values.tolist() == want[["outcome", "visit", "arm", "variable"]].values.tolist()
    close(got, want, ["visit_week", "n", "n_missing", "mean", "sd", "median", "q1", "q3", "min", "max", "ci_low", "ci_high"])
    got = pd.read_csv(tables / "between_arms.csv")
    want = reference["between_arms"]
    assert got[["outcome", "visit", "measure", "method"]].values.tolist() == want[["outcome", "visit", "measure", "method"]].values.tolist()
    close(got, want, [*NUMBERS, "n_treatment", "n_control", "n_boot", "seed"])
    pd.testing.assert_frame_equal(pd.read_csv(tables / "missing.csv"), reference["missing"], check_dtype=False)
    # gathered tables, made by the pandas engine's own functions: equal as written
    for name, key in (("tables/effect_sizes.csv", "effect_sizes"), ("meta/arm_summaries.csv", "meta_arm_summaries"),
                      ("meta/effect_sizes.csv", "meta_effect_sizes")):
        assert (out / name).read_bytes() == table_csv_bytes(reference[key])
    models = pd.read_csv(tables / "models.csv")
    check_models(models, reference["models"])
    for outcome, fit in reference["ancova"].items():
        rows = models[(models["outcome"] == outcome) & models["method"].str.startswith("ANCOVA")]
        effect = rows[rows["measure"] != "adjusted mean"].reset_index(drop=True)
        assert effect["method"].tolist() == fit.effect["method"].tolist()
        close(effect, fit.effect, [*NUMBERS, "n_treatment", "n_control"])
        means = rows[rows["measure"] == "adjusted mean"].reset_index(drop=True)
        close(means, fit.adjusted_means, ["estimate", "std_error", "df", "ci_low", "ci_high"])


def test_example_matches_the_pandas_engine(cluster, example_plan, pandas_reference, tmp_path):
    from analysis.engine.run import run_dask

    out = run_dask(example_plan, tmp_path / "out", scheduler=cluster.scheduler_address)
    check_against_pandas(out, pandas_reference)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["engine"]["name"] == "dask" and manifest["engine"]["partitions"] == 1


def test_partitioned_copy_matches_the_pandas_engine_through_the_cli(cluster, partitioned_plan, pandas_reference, tmp_path):
    from analysis.cli import run_cli

    out = tmp_path / "out"
    code = run_cli(["run", str(partitioned_plan), "--out", str(out), "--engine", "DASK", "--scheduler", cluster.scheduler_address])
    assert code == 0
    check_against_pandas(out, pandas_reference)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["engine"]["scheduler"] == cluster.scheduler_address
    assert manifest["engine"]["cluster"] == "existing" and manifest["engine"]["partitions"] == 3
    assert len(manifest["inputs"]) == 6 and sum(i["rows"] for i in manifest["inputs"][::2]) == 120


def test_mmrm_as_primary_model_with_plan_options_matches_the_pandas_engine(cluster, tmp_path):
    """The MMRM as the primary model (so Holm's p_adjusted sits on its rows), Kenward-Roger df and
    baseline:visit, on 4 partitions, against the pandas engine's models table on the same files."""
    from analysis.engine.run import run_dask

    pdir, mdir = partition(tmp_path / "data", n_parts=4)
    path = write_plan(tmp_path, {"path": str(pdir), "format": "parquet"},
                      {"path": str(mdir), "format": "parquet", "layout": "long"})
    plan = yaml.safe_load(path.read_text())
    plan["analysis"].update({"primary_model": "mmrm", "mmrm_df": "kenward-roger", "mmrm_terms": ["baseline:visit"]})
    path.write_text(yaml.safe_dump(plan, sort_keys=False))
    out = run_dask(path, tmp_path / "out", scheduler=cluster.scheduler_address)
    want = pandas_models(load_trial(path))
    assert want["method"].str.contains("Kenward-Roger", regex=False).sum() == 9
    assert want["p_adjusted"].notna().sum() == 2 and want.loc[want["p_adjusted"].notna(), "measure"].eq("LS-mean difference").all()
    # Kenward-Roger with baseline:visit is worse conditioned: relabelling the participants alone
    # moves the pandas engine's own df by up to 6.2e-8 and its CI limits by 8.1e-10 on these data
    check_models(pd.read_csv(out / "tables" / "models.csv"), want, mmrm_df=2e-7, mmrm_other=5e-9)
    manifest = json.loads((out / "manifest.json").read_text())
    assert not any("MMRM" in entry for entry in manifest["engine"]["not_computed"])


def test_rerun_gives_identical_bytes(cluster, partitioned_plan, tmp_path, monkeypatch):
    from analysis.engine.run import run_dask

    outs = [run_dask(partitioned_plan, tmp_path / "a", scheduler=cluster.scheduler_address)]
    monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", cluster.scheduler_address)  # the second finds it here
    outs.append(run_dask(partitioned_plan, tmp_path / "b"))
    manifest = json.loads((outs[1] / "manifest.json").read_text())
    assert manifest["engine"]["scheduler"] == cluster.scheduler_address and manifest["engine"]["cluster"] == "existing"
    for name in ("descriptives.csv", "between_arms.csv", "models.csv", "missing.csv", "effect_sizes.csv"):
        assert (outs[0] / "tables" / name).read_bytes() == (outs[1] / "tables" / name).read_bytes()


def test_failures_of_every_partition_are_gathered(cluster, tmp_path):
    from analysis.cli import run_cli
    from analysis.engine.run import run_dask

    pdir, mdir = partition(tmp_path / "data")
    first = pd.read_parquet(mdir / "part-000.parquet")
    first.loc[first.index[4], "value"] = "999"  # out of range, 5th record of the file
    first.to_parquet(mdir / "part-000.parquet", index=False)
    last = pd.read_parquet(pdir / "part-002.parquet")
    last.loc[last.index[1], "arm"] = "XX"  # unknown arm code, 2nd record
    moved = last["participant_id"].iloc[2]
    last.to_parquet(pdir / "part-002.parquet", index=False)
    # a participant whose measurements sit in another pair of files
    second = pd.read_parquet(mdir / "part-001.parquet")
    stray = pd.read_parquet(mdir / "part-002.parquet")
    stray_rows = stray[stray["participant_id"] == moved]
    pd.concat([second, stray_rows]).to_parquet(mdir / "part-001.parquet", index=False)
    stray[stray["participant_id"] != moved].to_parquet(mdir / "part-002.parquet", index=False)
    # a participant listed in two participants files (appended as the last record of part-001)
    listed = pd.read_parquet(pdir / "part-001.parquet")
    twice = pd.read_parquet(pdir / "part-000.parquet").iloc[[0]]
    pd.concat([listed, twice]).to_parquet(pdir / "part-001.parquet", index=False)
    plan = write_plan(tmp_path, {"path": str(pdir), "format": "parquet"},
                      {"path": str(mdir), "format": "parquet", "layout": "long"})
    with pytest.raises(DataError) as caught:
        run_dask(plan, tmp_path / "out", scheduler=cluster.scheduler_address)
    table = caught.value.failures
    files = {Path(f).name for f in table["file"]}
    assert {"part-000.parquet", "part-002.parquet", "part-001.parquet"} <= files
    as_list = table.assign(file=[f"{Path(f).parent.name}/{Path(f).name}" for f in table["file"]]).values.tolist()
    assert ["measurements/part-000.parquet", 5, "value", "pain_interference must be within its valid range 30 to 90 T-score", "999.0"] in as_list or any(
        r[0] == "measurements/part-000.parquet" and r[1] == 5 and r[2] == "value" and "valid range" in r[3] for r in as_list)
    assert any(r[0] == "participants/part-002.parquet" and r[1] == 2 and r[2] == "arm" for r in as_list)
    assert any(r[0] == "measurements/part-001.parquet" and "one file" in r[3] and "part-002.parquet" in r[3] and r[4] == moved
               for r in as_list)
    assert any(r[0] == "participants/part-001.parquet" and r[1] == len(listed) + 1 and "unique across the partition files" in r[3]
               and "part-000.parquet" in r[3] and r[4] == twice["participant_id"].iloc[0] for r in as_list)
    assert not (tmp_path / "out").exists()
    # through the command line: exit 1, the one failure table, nothing written
    code = run_cli(["run", str(plan), "--out", str(tmp_path / "out"), "--engine", "dask", "--scheduler", cluster.scheduler_address])
    assert code == 1 and not (tmp_path / "out").exists()


def test_unequal_directories_are_refused(cluster, tmp_path):
    from analysis.engine.run import run_dask

    pdir, mdir = partition(tmp_path / "data")
    (mdir / "part-002.parquet").unlink()
    plan = write_plan(tmp_path, {"path": str(pdir), "format": "parquet"},
                      {"path": str(mdir), "format": "parquet", "layout": "long"})
    with pytest.raises(DataError, match="2 measurements file"):
        run_dask(plan, tmp_path / "out", scheduler=cluster.scheduler_address)


def test_scheduler_option_beats_the_environment(monkeypatch):
    from analysis.engine.cluster import scheduler_address

    monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", "tcp://env:8786")
    assert scheduler_address("tcp://option:8786") == "tcp://option:8786"
    assert scheduler_address(None) == "tcp://env:8786"
    monkeypatch.delenv("DASK_SCHEDULER_ADDRESS")
    assert scheduler_address(None) is None


def test_without_dask_the_engine_says_how_to_install(monkeypatch, example_plan, tmp_path, capsys):
    from analysis.cli import run_cli
    from analysis.engine.cluster import require_dask

    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed now raises ImportError
    with pytest.raises(UsageError, match=r"pip install 'trialkit\[dask\]'"):
        require_dask()
    assert run_cli(["run", str(example_plan), "--out", str(tmp_path / "o"), "--engine", "dask"]) == 2
    assert "pip install 'trialkit[dask]'" in capsys.readouterr().err


def test_import_and_help_load_no_dask():
    code = ("import sys, analysis, analysis.engine, analysis.engine.cluster\n"
            "from analysis.cli import run_cli\n"
            "run_cli(['run', '--help'])\n"
            "print(sorted(m for m in ('dask', 'distributed') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert result.stdout.strip().splitlines()[-1] == "[]"


def test_power_grid_does_not_depend_on_workers(cluster):
    from analysis.engine.power_grid import parse_grid, power_grid
    from analysis.stats.power import simulate_power_ancova

    points = parse_grid(["d=0.3,0.5", "n=20,40", "dropout=0,0.2"], seed=11)
    serial = power_grid(points, n_sims=300)
    with distributed.Client(cluster.scheduler_address) as client:
        parallel = power_grid(points, n_sims=300, client=client)
    pd.testing.assert_frame_equal(serial, parallel, check_exact=True)
    # the seeds come from SeedSequence(11).spawn(8) by grid position, and point 5 (d 0.5, n 20,
    # dropout 0.2) is the plain simulation at 16 analysed per arm with that seed
    child = np.random.SeedSequence(11).spawn(8)[5]
    seed5 = int(child.generate_state(1, dtype=np.uint32)[0])
    row = serial.iloc[5]
    assert (row["d"], row["n_per_arm"], row["dropout"], row["n_analysed_per_arm"], row["seed"]) == (0.5, 20, 0.2, 16, seed5)
    assert row["power"] == simulate_power_ancova(0.5, 16, r=0.0, n_sims=300, seed=seed5).power


def test_power_grid_command_same_on_both_engines(cluster, tmp_path):
    from analysis.cli import run_cli

    base = ["power", "--grid", "d=0.4 n=15,25 r=0.5", "--simulate", "200", "--seed", "5"]
    assert run_cli([*base, "--out", str(tmp_path / "serial")]) == 0
    assert run_cli([*base, "--engine", "dask", "--scheduler", cluster.scheduler_address, "--out", str(tmp_path / "dask")]) == 0
    serial = (tmp_path / "serial" / "power_grid.csv").read_bytes()
    assert serial == (tmp_path / "dask" / "power_grid.csv").read_bytes()
    manifest = json.loads((tmp_path / "dask" / "manifest.json").read_text())
    assert manifest["engine"]["scheduler"] == cluster.scheduler_address and manifest["seed"] == 5
    assert pd.read_csv(tmp_path / "serial" / "power_grid.csv")["n_per_arm"].tolist() == [15, 25]
