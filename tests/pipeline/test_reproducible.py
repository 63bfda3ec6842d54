"""Reproducibility: same inputs and seed give byte-identical outputs, and `trialkit verify` proves it.

The example trial is run twice -- once in this process, once as ``python -m analysis`` in a fresh
interpreter (a different process, hash seed and import order) -- and every output file except the
manifest (timestamps) is compared byte for byte: tables, the analysis dataset (CSV and Parquet),
and every figure (PNG and SVG) together with the table the figures are drawn from.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from analysis.cli import run_cli
from analysis.core.provenance import PACKAGES
from analysis.pipeline import verify
from tests.conftest import EXAMPLE_PLAN, REPO


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    """The example run in this process and in a fresh interpreter, with copies of its inputs."""
    root = tmp_path_factory.mktemp("repro")
    # a private copy of the plan and data, so a test may change an input
    shutil.copytree(EXAMPLE_PLAN.parent.parent / "examples", root / "data" / "examples")
    (root / "data" / "studies").mkdir()
    plan = root / "data" / "studies" / EXAMPLE_PLAN.name
    shutil.copy(EXAMPLE_PLAN, plan)
    first = root / "first"
    assert run_cli(["run", str(plan), "--out", str(first), "--no-report"]) == 0
    second = subprocess.run(
        [sys.executable, "-m", "analysis", "run", "data/studies/" + EXAMPLE_PLAN.name, "--out", "second", "--no-report"],
        cwd=root, capture_output=True, text=True, env=os.environ | {"PYTHONPATH": str(REPO), "PYTHONHASHSEED": "random"},
        timeout=300,
    )
    assert second.returncode == 0, second.stderr
    return root, plan, first, root / "second"


def test_every_output_is_byte_identical_across_processes(two_runs):
    _root, _plan, first, second = two_runs
    a, b = _files(first), _files(second)
    assert set(a) == set(b)
    figures = [name for name in a if name.startswith("figures/")]
    assert len(figures) >= 12 and any(n.endswith(".png") for n in figures) and any(n.endswith(".svg") for n in figures)
    differing = sorted(name for name in a if a[name] != b[name])
    assert differing == ["manifest.json"]  # start/finish times and the command line only


def test_manifests_differ_only_in_times_and_command(two_runs):
    _root, _plan, first, second = two_runs
    m1 = json.loads((first / "manifest.json").read_text())
    m2 = json.loads((second / "manifest.json").read_text())
    volatile = {"started_at", "finished_at", "timings_seconds", "command", "working_directory"}
    assert {k: v for k, v in m1.items() if k not in volatile} == {k: v for k, v in m2.items() if k not in volatile}


def test_manifest_records_what_a_rerun_needs(two_runs):
    root, plan, _first, second = two_runs
    manifest = json.loads((second / "manifest.json").read_text())
    # the command line as typed, and where it was typed (its paths are relative)
    assert manifest["command"] == ["trialkit", "run", "data/studies/" + EXAMPLE_PLAN.name, "--out", "second", "--no-report"]
    assert Path(manifest["working_directory"]) == root
    assert manifest["plan"] == {"path": str(plan), "sha256": hashlib.sha256(plan.read_bytes()).hexdigest()}
    for entry in manifest["inputs"]:
        data = Path(entry["path"]).read_bytes()
        assert entry["sha256"] == hashlib.sha256(data).hexdigest()
        assert entry["bytes"] == len(data)
    assert {entry["role"] for entry in manifest["inputs"]} == {"participants", "measurements"}
    assert manifest["seed"] == 20231112
    assert set(manifest["packages"]) == set(PACKAGES)
    assert manifest["python"] == sys.version.split()[0]
    # every file written is listed with its hash (the manifest itself and the folder's trialkit marker excepted)
    listed = {entry["path"]: entry["sha256"] for entry in manifest["files"]}
    on_disk = {name: hashlib.sha256(data).hexdigest() for name, data in _files(second).items()
               if name not in {"manifest.json", ".trialkit-output"}}
    assert listed == on_disk


def test_resampled_rows_record_the_seed_and_another_seed_changes_them(two_runs, tmp_path):
    _root, plan, first, _second = two_runs
    effects = pd.read_csv(first / "tables" / "effect_sizes.csv")
    resampled = effects[effects["n_boot"].notna()]
    assert len(resampled) > 0
    assert (resampled["seed"] == 20231112).all() and (resampled["n_boot"] == 2000).all()
    other = tmp_path / "other"
    assert run_cli(["run", str(plan), "--out", str(other), "--no-report", "--seed", "1"]) == 0
    # the seed matters (so the byte-identity above is not a table with nothing random in it) ...
    assert (other / "tables" / "effect_sizes.csv").read_bytes() != (first / "tables" / "effect_sizes.csv").read_bytes()
    # ... and only where something is resampled or imputed
    assert (other / "tables" / "descriptives.csv").read_bytes() == (first / "tables" / "descriptives.csv").read_bytes()
    assert json.loads((other / "manifest.json").read_text())["seed"] == 1


def test_verify_reruns_and_confirms(two_runs, capfd):
    _root, _plan, first, _second = two_runs
    assert run_cli(["verify", str(first / "manifest.json")]) == 0
    err = capfd.readouterr().err
    files = len(json.loads((first / "manifest.json").read_text())["files"])
    assert f"verified: {files} files byte-identical to the recorded run" in err


def test_verify_reports_a_changed_input_and_a_differing_output(two_runs, tmp_path, capfd):
    _root, plan, first, _second = two_runs
    # a recorded output hash that the rerun cannot match
    manifest = json.loads((first / "manifest.json").read_text())
    for entry in manifest["files"]:
        if entry["path"] == "tables/models.csv":
            entry["sha256"] = "0" * 64
    tampered = tmp_path / "manifest.json"
    tampered.write_text(json.dumps(manifest))
    assert verify(tampered).differing_files == ["tables/models.csv"]
    # an input changed since the run (a value edited in the measurements)
    measurements = Path(next(e["path"] for e in manifest["inputs"] if e["role"] == "measurements"))
    original = measurements.read_bytes()
    lines = original.decode().splitlines(keepends=True)
    row = next(i for i, line in enumerate(lines) if ",week12,pain_intensity," in line and not line.rstrip().endswith(","))
    head, value = lines[row].rstrip("\n").rsplit(",", 1)
    lines[row] = f"{head},{(int(float(value)) + 1) % 11}\n"
    try:
        measurements.write_text("".join(lines))
        capfd.readouterr()
        assert run_cli(["verify", str(first / "manifest.json")]) == 1
        err = " ".join(capfd.readouterr().err.split())
        assert f"input changed since the run: {measurements}" in err
        assert "differs: tables/" in err  # the edited value changes the results
    finally:
        measurements.write_bytes(original)


def test_verify_rejects_something_that_is_not_a_manifest(tmp_path, capfd):
    bogus = tmp_path / "manifest.json"
    bogus.write_text('{"plan": 1}')
    assert run_cli(["verify", str(bogus)]) == 2
    assert "not a trialkit manifest" in capfd.readouterr().err
