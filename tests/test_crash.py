"""Crash safety: a run killed at any stage leaves the previous outputs exactly as they were.

A complete run of the bundled example is put in place first. Then the same run is started again in
a subprocess and killed with SIGKILL (no clean-up code runs) at each stage, detected from the
progress lines it prints on stderr ("> analyse", ...), and at fixed delays. After every kill:

* every file of the previous output is byte-identical (and no file was added or removed);
* no directory other than the real one looks complete (has ``manifest.json``) unless it is clearly
  marked as unfinished: a hidden name ending in ``.partial``;
* the next run into the same directory removes those leftovers and succeeds.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from analysis.cli import run_cli
from analysis.core.output import staged_directory
from tests.conftest import EXAMPLE_PLAN, REPO

# (stage whose progress line triggers the kill or None for "after the delay from start", delay in s)
KILL_POINTS = [
    (None, 0.3),  # during interpreter start-up and imports
    ("read, validate and derive", 0.0),
    ("analyse", 0.0),
    ("analyse", 0.5),  # in the middle of the models
    ("write tables", 0.0),
    ("draw figures", 0.0),
    ("draw figures", 0.4),  # some figures written into the staging directory
    ("render report", 1.0),  # while the Jupyter kernel executes the report notebook
]


def snapshot(root: Path) -> dict[str, str]:
    """SHA-256 of every file under ``root``, by relative path."""
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def _descendants(pid: int) -> list[int]:
    """Process ids of every descendant of ``pid`` (from /proc), children first."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found, frontier = [], [pid]
    while frontier:
        children = [child for child, parent in parents.items() if parent in frontier]
        found += children
        frontier = children
    return found


def _kill_tree(process: subprocess.Popen) -> None:
    """SIGKILL the run and everything it started (a notebook kernel runs in its own process group)."""
    children = _descendants(process.pid)
    os.killpg(process.pid, signal.SIGKILL)
    for child in children:
        try:
            os.kill(child, signal.SIGKILL)
        except ProcessLookupError:
            pass
    process.wait(timeout=30)


def _run_and_kill(out: Path, stage: str | None, delay: float) -> tuple[int, str]:
    command = [sys.executable, "-m", "analysis", "run", str(EXAMPLE_PLAN), "--out", str(out)]
    if stage != "render report":
        command.append("--no-report")
    process = subprocess.Popen(
        command, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, cwd=REPO,
        env=os.environ | {"PYTHONPATH": str(REPO)}, start_new_session=True,
    )
    seen = []
    try:
        if stage is not None:
            assert process.stderr is not None
            for line in process.stderr:
                seen.append(line)
                if line.strip() == f"> {stage}":
                    break
            else:
                pytest.fail(f"the run ended before stage {stage!r}: {''.join(seen)}")
        time.sleep(delay)
    finally:
        _kill_tree(process)
    return process.returncode, "".join(seen)


@pytest.fixture(scope="module")
def previous(tmp_path_factory):
    root = tmp_path_factory.mktemp("crash")
    out = root / "out"
    assert run_cli(["run", str(EXAMPLE_PLAN), "--out", str(out)]) == 0
    return root, out, snapshot(out)


@pytest.mark.parametrize(("stage", "delay"), KILL_POINTS, ids=[f"{s or 'start'}+{d}s" for s, d in KILL_POINTS])
def test_killed_run_leaves_previous_outputs_intact(previous, stage, delay):
    root, out, before = previous
    returncode, progress = _run_and_kill(out, stage, delay)
    assert returncode == -signal.SIGKILL, f"the run was not killed (exit {returncode}): {progress}"
    assert snapshot(out) == before
    for entry in root.iterdir():
        if entry == out:
            continue
        # anything else is a staging directory, hidden and marked unfinished, whatever it holds
        assert entry.name.startswith(f".{out.name}.") and entry.name.endswith(".partial"), entry.name


def test_next_run_removes_leftovers_and_succeeds(previous):
    root, out, before = previous
    _run_and_kill(out, "draw figures", 0.4)
    assert any(entry.name.endswith(".partial") for entry in root.iterdir())
    assert run_cli(["run", str(EXAMPLE_PLAN), "--out", str(out)]) == 0
    assert sorted(entry.name for entry in root.iterdir()) == ["out"]
    after = snapshot(out)
    assert set(after) == set(before)
    # same inputs and seed: every file is identical except the run's timestamps and notebook metadata
    assert {k for k in after if after[k] != before[k]} <= {"manifest.json", "report.html"}


def test_outputs_moved_aside_are_restored_by_the_next_run(tmp_path):
    """A kill between the two renames of the swap leaves the old outputs in ``.out.previous``;
    the next run into ``out`` moves them back before staging (and keeps them if it fails)."""
    out = tmp_path / "out"
    aside = tmp_path / ".out.previous"
    aside.mkdir()
    (aside / "manifest.json").write_text("{}")
    (aside / ".trialkit-output").write_text('{"tool": "trialkit", "kind": "run"}')
    with pytest.raises(RuntimeError), staged_directory(out, inputs=()):
        raise RuntimeError("this run fails")
    assert (out / "manifest.json").read_text() == "{}"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_only_staging_directories_of_dead_processes_are_removed(tmp_path):
    dead_pid = subprocess.Popen(["true"])
    dead_pid.wait()  # its pid now belongs to no process
    dead = tmp_path / f".out.{dead_pid.pid}.abc123.partial"
    alive = tmp_path / f".out.{os.getpid()}.def456.partial"
    other = tmp_path / f".out.old.{dead_pid.pid}.ghi789.partial"  # staging of a destination 'out.old'
    for folder in (dead, alive, other):
        folder.mkdir()
    with staged_directory(tmp_path / "out", inputs=()) as stage:
        (stage / "a.txt").write_text("new")
    assert not dead.exists()
    assert alive.exists() and other.exists()
    assert (tmp_path / "out" / "a.txt").read_text() == "new"
