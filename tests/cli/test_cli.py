"""Exit codes 0/1/2, messages that name what is wrong, and never a traceback."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd

from analysis.cli import run_cli
from tests.conftest import EXAMPLE_PLAN, SMALL_MEASUREMENTS, SMALL_PLAN


def trialkit(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "analysis", *args], capture_output=True, text=True, cwd=cwd)


def test_help_lists_the_commands():
    result = trialkit("--help")
    assert result.returncode == 0
    for command in ("run", "validate", "simulate"):
        assert command in result.stdout


def test_validate_example_is_exit_0(capsys, tmp_path):
    assert run_cli(["validate", str(EXAMPLE_PLAN), "--failures", str(tmp_path / "f.csv")]) == 0
    assert "valid: 120 participants" in capsys.readouterr().err
    assert not (tmp_path / "f.csv").exists()


def test_validate_invalid_data_is_exit_1_with_failure_table(small_trial, tmp_path):
    plan = small_trial(measurements=SMALL_MEASUREMENTS.replace("P2,w8,pain,4", "P2,w8,pain,11"))
    failures_csv = tmp_path / "failures.csv"
    result = trialkit("validate", str(plan), "--failures", str(failures_csv))
    assert result.returncode == 1
    assert "Traceback" not in result.stderr + result.stdout
    assert "measurements.csv" in result.stderr and "valid range" in result.stderr
    table = pd.read_csv(failures_csv)
    assert table[["row", "column"]].values.tolist() == [[7, "value"]]


def test_bad_plan_is_exit_2_with_one_sentence(small_trial):
    plan = small_trial(plan=SMALL_PLAN.replace("seed: 7", "sede: 7"))
    result = trialkit("validate", str(plan))
    assert result.returncode == 2
    assert "unknown key 'sede'" in result.stderr
    assert "Traceback" not in result.stderr


def test_bad_usage_is_exit_2():
    assert trialkit("run").returncode == 2
    assert trialkit("no-such-command").returncode == 2
    result = trialkit("simulate", str(EXAMPLE_PLAN), "--seed", "many")
    assert result.returncode == 2 and "Traceback" not in result.stderr


def test_run_on_invalid_data_writes_nothing(small_trial, tmp_path):
    plan = small_trial(measurements=SMALL_MEASUREMENTS + "P9,base,pain,5\n")
    out = tmp_path / "out"
    result = trialkit("run", str(plan), "--out", str(out), "--no-report")
    assert result.returncode == 1
    assert "participant must be listed in the participants file" in result.stderr
    assert not out.exists()
    assert not any(p.name.endswith(".partial") for p in tmp_path.iterdir())


def test_version_is_the_installed_distributions():
    from importlib.metadata import version

    result = trialkit("--version")
    assert result.returncode == 0
    assert result.stdout == f"trialkit {version('trialkit')}\n"
