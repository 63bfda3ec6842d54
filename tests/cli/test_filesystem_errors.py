"""File-system errors are user errors: exit 2, one sentence naming the path and the cause.

A full disk, a read-only file system, a denied permission, a file where a folder is expected (or a
folder where a file is expected) used to end in exit code 70 and a traceback. Each case here
checks that the command

* exits with 2 and says ``cannot <read|write to> '<path>': <cause>``, without a traceback and
  without "internal error";
* leaves the previous outputs byte-identical;
* leaves no staging folder (``.NAME.PID.*.partial``), no ``.NAME.previous`` and no ``.part``
  temporary file behind.

The tests run as root, which ignores permission bits, so the failures are made in two real ways:
in-process, by making ``os.fsync`` / ``os.replace`` / ``tempfile.mkdtemp`` / ``os.mkdir`` / ``open``
raise the ``OSError`` the kernel would raise (ENOSPC, EROFS, EACCES); and for real, with
``/dev/full`` (every write fails with ENOSPC) and, where the machine allows it, a small tmpfs
mounted in a private mount namespace (``unshare -m``), filled up or remounted read-only.
"""

from __future__ import annotations

import builtins
import errno
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest

from analysis.cli import run_cli
from tests.conftest import REPO, SMALL_PLAN
from tests.test_bad_inputs import M, P

POWER = ["power", "--d", "0.5", "--n", "20"]
ARMS = "study,n1i,m1i,sd1i,n2i,m2i,sd2i\nA,20,5.1,1.2,21,4.2,1.3\nB,30,6.0,1.5,29,5.1,1.4\n"
CAUSES = {
    errno.ENOSPC: "no space left on device",
    errno.EROFS: "read-only file system",
    errno.EACCES: "permission denied",
    errno.EDQUOT: "disk quota exceeded",
}


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def leftovers(folder: Path) -> list[str]:
    """Staging folders, moved-aside outputs and temporary files anywhere under ``folder``."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")
                  if p.name.endswith((".partial", ".previous", ".part")))


def failed_cleanly(code: int, capsys, path: Path | str, cause: str, action: str = "write to") -> None:
    captured = capsys.readouterr()
    text = captured.out + captured.err
    assert code == 2, text
    assert "Traceback" not in text and "internal error" not in text, text
    assert f"cannot {action} '{path}': {cause}" in captured.err, text
    assert len([line for line in captured.err.splitlines() if line.startswith("error:")]) == 1, text


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """A small trial and a finished run of it (copied by each test that needs one)."""
    root = tmp_path_factory.mktemp("previous")
    (root / "plan.yaml").write_text(SMALL_PLAN, encoding="utf-8")
    (root / "participants.csv").write_text(P, encoding="utf-8")
    (root / "measurements.csv").write_text(M, encoding="utf-8")
    assert run_cli(["run", str(root / "plan.yaml"), "--out", str(root / "out"), "--no-report"]) == 0
    return root


@pytest.fixture
def previous(finished_run, tmp_path):
    """(plan, out) with ``out`` a copy of a finished run, in a folder of its own."""
    out = tmp_path / "results" / "out"
    shutil.copytree(finished_run / "out", out)
    return finished_run / "plan.yaml", out


def raising(number: int, when=lambda *args, **kwargs: True, original=None):
    """A stand-in for an os function that raises ``OSError(number)`` when ``when(*args)`` holds."""

    def fake(*args, **kwargs):
        if when(*args, **kwargs):
            raise OSError(number, os.strerror(number), str(args[0]) if args else None)
        return original(*args, **kwargs)

    return fake


# ---------------------------------------------------------------------------------------------
# A run's output folder: full, read-only, not permitted, a file


@pytest.mark.parametrize("number", [errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES])
def test_writing_the_outputs_fails_midway(previous, capsys, monkeypatch, number):
    plan, out = previous
    before = snapshot(out)
    monkeypatch.setattr(os, "fsync", raising(number))  # every output file is fsync'ed before its rename
    code = run_cli(["run", str(plan), "--out", str(out), "--no-report"])
    failed_cleanly(code, capsys, out.resolve(), CAUSES[number])
    assert snapshot(out) == before
    assert leftovers(out.parent) == []


def test_the_staging_folder_cannot_be_created_on_a_read_only_file_system(previous, capsys, monkeypatch):
    plan, out = previous
    before = snapshot(out)
    original = tempfile.mkdtemp
    beside_out = lambda *a, **k: Path(str(k.get("dir", ""))) == out.resolve().parent  # noqa: E731
    monkeypatch.setattr(tempfile, "mkdtemp", raising(errno.EROFS, beside_out, original))
    code = run_cli(["run", str(plan), "--out", str(out), "--no-report"])
    failed_cleanly(code, capsys, out.resolve(), "read-only file system")
    assert snapshot(out) == before and leftovers(out.parent) == []


@pytest.mark.parametrize("step", ["move the old outputs aside", "move the new outputs in"])
def test_the_final_swap_fails_and_the_old_outputs_are_put_back(previous, capsys, monkeypatch, step):
    plan, out = previous
    before = snapshot(out)
    original = os.replace
    if step == "move the old outputs aside":
        when = lambda src, dst, **k: Path(src) == out.resolve()  # noqa: E731
    else:
        when = lambda src, dst, **k: str(src).endswith(".partial")  # noqa: E731
    monkeypatch.setattr(os, "replace", raising(errno.EACCES, when, original))
    code = run_cli(["run", str(plan), "--out", str(out), "--no-report"])
    failed_cleanly(code, capsys, out.resolve(), "permission denied")
    assert snapshot(out) == before
    assert leftovers(out.parent) == []


def test_the_output_folders_parent_cannot_be_created(finished_run, tmp_path, capsys, monkeypatch):
    original = os.mkdir
    monkeypatch.setattr(os, "mkdir", raising(errno.EACCES, lambda p, *a, **k: Path(p) == tmp_path / "new", original))
    code = run_cli(["run", str(finished_run / "plan.yaml"), "--out", str(tmp_path / "new" / "out"), "--no-report"])
    failed_cleanly(code, capsys, tmp_path / "new", "permission denied")
    assert list(tmp_path.iterdir()) == []


def test_the_output_path_is_a_file(finished_run, tmp_path, capsys):
    existing = tmp_path / "out"
    existing.write_text("a file of mine")
    code = run_cli(["run", str(finished_run / "plan.yaml"), "--out", str(existing), "--no-report"])
    failed_cleanly(code, capsys, existing.resolve(), "it is a file, not a directory")
    code = run_cli(["run", str(finished_run / "plan.yaml"), "--out", str(existing / "sub"), "--no-report"])
    failed_cleanly(code, capsys, existing.resolve(), "it is a file, not a directory")
    assert existing.read_text() == "a file of mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


@pytest.mark.parametrize("number", [errno.ENOSPC, errno.EROFS])
def test_power_outputs_on_a_full_or_read_only_disk(tmp_path, capsys, monkeypatch, number):
    out = tmp_path / "power"
    assert run_cli([*POWER, "--out", str(out)]) == 0
    before = snapshot(out)
    capsys.readouterr()
    monkeypatch.setattr(os, "fsync", raising(number))
    failed_cleanly(run_cli([*POWER, "--n", "30", "--out", str(out)]), capsys, out.resolve(), CAUSES[number])
    assert snapshot(out) == before and leftovers(tmp_path) == []


# ---------------------------------------------------------------------------------------------
# Single output files


def test_a_full_device_for_a_single_output_file(tmp_path, capsys):
    """/dev/full: a real device on which every write fails with ENOSPC."""
    data = tmp_path / "arms.csv"
    data.write_text(ARMS)
    code = run_cli(["escalc", "--measure", "SMD", "--input", str(data), "--output", "/dev/full"])
    failed_cleanly(code, capsys, "/dev/full", "no space left on device")
    effects = tmp_path / "effects.csv"
    effects.write_text("study,yi,vi\nA,0.5,0.04\nB,0.3,0.05\nC,0.4,0.03\n")
    failed_cleanly(run_cli(["meta", "--input", str(effects), "--output", "/dev/full"]), capsys, "/dev/full",
                   "no space left on device")
    assert Path("/dev/full").is_char_device()  # written in place, never replaced by a regular file


def test_a_single_output_file_keeps_its_previous_content_when_the_rename_fails(tmp_path, capsys, monkeypatch):
    data = tmp_path / "arms.csv"
    data.write_text(ARMS)
    output = tmp_path / "effects.csv"
    assert run_cli(["escalc", "--measure", "SMD", "--input", str(data), "--output", str(output)]) == 0
    before = output.read_bytes()
    original = os.replace
    monkeypatch.setattr(os, "replace", raising(errno.EROFS, lambda s, d, **k: Path(d) == output, original))
    code = run_cli(["escalc", "--measure", "MD", "--input", str(data), "--output", str(output)])
    failed_cleanly(code, capsys, output, "read-only file system")
    assert output.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["arms.csv", "effects.csv"]  # no .part file


def test_a_single_output_file_that_is_a_folder_or_below_a_file(tmp_path, capsys):
    data = tmp_path / "arms.csv"
    data.write_text(ARMS)
    (tmp_path / "folder").mkdir()
    code = run_cli(["escalc", "--measure", "SMD", "--input", str(data), "--output", str(tmp_path / "folder")])
    failed_cleanly(code, capsys, tmp_path / "folder", "it is a directory, not a file")
    code = run_cli(["escalc", "--measure", "SMD", "--input", str(data), "--output", str(data / "x.csv")])
    failed_cleanly(code, capsys, data, "it is a file, not a directory")
    assert data.read_text() == ARMS


# ---------------------------------------------------------------------------------------------
# Inputs that cannot be read


def deny_reading(monkeypatch, target: Path) -> None:
    """``open(target)`` fails with EACCES, as for a file without read permission."""
    original = builtins.open

    def fake(file, *args, **kwargs):
        if isinstance(file, str | Path) and Path(file).resolve() == target.resolve():
            raise PermissionError(errno.EACCES, "Permission denied", str(file))
        return original(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", fake)


@pytest.mark.parametrize("which", ["plan.yaml", "participants.csv", "measurements.csv"])
def test_an_input_without_read_permission(finished_run, tmp_path, capsys, monkeypatch, which):
    deny_reading(monkeypatch, finished_run / which)
    code = run_cli(["run", str(finished_run / "plan.yaml"), "--out", str(tmp_path / "out"), "--no-report"])
    captured = capsys.readouterr()
    assert code == 2, captured.err
    assert "Traceback" not in captured.err and "internal error" not in captured.err
    assert which in captured.err and "permission denied" in captured.err and "cannot read" in captured.err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("which", ["plan", "participants", "measurements"])
def test_a_folder_given_where_an_input_file_belongs(tmp_path, capsys, which):
    (tmp_path / "participants.csv").write_text(P)
    (tmp_path / "measurements.csv").write_text(M)
    (tmp_path / "plan.yaml").write_text(SMALL_PLAN)
    target = tmp_path / ("plan.yaml" if which == "plan" else f"{which}.csv")
    target.unlink()
    target.mkdir()
    code = run_cli(["run", str(tmp_path / "plan.yaml"), "--out", str(tmp_path / "out"), "--no-report"])
    captured = capsys.readouterr()
    assert code == 2 and "Traceback" not in captured.err, captured.err
    assert "it is a directory, not a file" in captured.err and target.name in captured.err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("command", ["escalc", "meta"])
def test_effect_tables_that_are_folders_or_unreadable(tmp_path, capsys, monkeypatch, command):
    extra = ["--measure", "SMD"] if command == "escalc" else []
    folder = tmp_path / "effects"
    folder.mkdir()
    failed_cleanly(run_cli([command, *extra, "--input", str(folder)]), capsys, folder, "it is a directory, not a file",
                   action=f"read the {'input' if command == 'escalc' else 'effects'} file")
    table = tmp_path / "effects.csv"
    table.write_text(ARMS if command == "escalc" else "study,yi,vi\nA,0.5,0.04\nB,0.3,0.05\n")
    deny_reading(monkeypatch, table)
    code = run_cli([command, *extra, "--input", str(table)])
    captured = capsys.readouterr()
    assert code == 2 and "permission denied" in captured.err and str(table) in captured.err, captured.err


# ---------------------------------------------------------------------------------------------
# The last resort in run_cli, and what stays a bug


def test_an_os_error_raised_inside_a_library_names_its_file(monkeypatch, capsys):
    from analysis.stats import power

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", "/var/tmp/library-scratch")

    monkeypatch.setattr(power, "ttest_power", full)
    failed_cleanly(run_cli(POWER), capsys, "/var/tmp/library-scratch", "no space left on device")


def test_an_os_error_that_is_a_bug_is_still_reported_as_one(monkeypatch, capsys):
    from analysis.stats import power

    def bug(*args, **kwargs):
        raise FileNotFoundError(errno.ENOENT, "No such file or directory", "/trialkit/internal/table.csv")

    monkeypatch.setattr(power, "ttest_power", bug)
    assert run_cli(POWER) == 70
    assert "internal error" in capsys.readouterr().err


def test_a_real_process_on_a_full_device_prints_no_traceback(tmp_path):
    data = tmp_path / "arms.csv"
    data.write_text(ARMS)
    result = subprocess.run(
        [sys.executable, "-m", "analysis", "escalc", "--measure", "SMD", "--input", str(data), "--output", "/dev/full"],
        capture_output=True, text=True, cwd=tmp_path, timeout=120,
        env={k: v for k, v in os.environ.items() if k != "TRIALKIT_DEBUG"} | {"PYTHONPATH": str(REPO)},
    )
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert "cannot write to '/dev/full': no space left on device" in result.stderr


# ---------------------------------------------------------------------------------------------
# A real small file system (tmpfs in a private mount namespace), when the machine allows it

DRIVER = textwrap.dedent("""
    import hashlib, json, os, subprocess, sys
    from pathlib import Path

    mount, mode, repo = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], check=True)
    env = {k: v for k, v in os.environ.items() if k != "TRIALKIT_DEBUG"} | {"PYTHONPATH": repo}

    def trialkit(*args):
        return subprocess.run([sys.executable, "-m", "analysis", *args], capture_output=True, text=True, env=env, cwd="/")

    def snapshot():
        return {str(p.relative_to(mount)): hashlib.sha256(p.read_bytes()).hexdigest()
                for p in sorted(mount.rglob("*")) if p.is_file()}

    first = trialkit("power", "--d", "0.5", "--n", "20", "--out", str(mount / "out"))
    if mode == "full":
        with open(mount / "filler", "wb") as handle:  # leave too little room for another output
            try:
                handle.write(b"x" * (1 << 20))
            except OSError:
                pass
    else:
        subprocess.run(["mount", "-o", "remount,ro", str(mount)], check=True)
    before = snapshot()
    second = trialkit("power", "--d", "0.5", "--n", "30", "--out", str(mount / "out"))
    after = snapshot()
    print(json.dumps({"first": first.returncode, "code": second.returncode, "stderr": second.stderr,
                      "same": before == after, "names": sorted(p.name for p in mount.iterdir())}))
""")


def _namespace_available() -> bool:
    if shutil.which("unshare") is None or shutil.which("mount") is None:
        return False
    probe = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c",
                            "d=$(mktemp -d) && mount -t tmpfs -o size=64k tmpfs $d && umount $d && rmdir $d"],
                           capture_output=True, timeout=30)
    return probe.returncode == 0


@pytest.mark.skipif(not _namespace_available(), reason="cannot mount a tmpfs in a private mount namespace here")
@pytest.mark.parametrize(("mode", "cause"), [("full", "no space left on device"), ("read-only", "read-only file system")])
def test_a_real_full_or_read_only_file_system(tmp_path, mode, cause):
    mount = tmp_path / "mnt"
    mount.mkdir()
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER)
    result = subprocess.run(["unshare", "-m", "--propagation", "private", sys.executable, str(driver), str(mount), mode, str(REPO)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["first"] == 0, report
    assert report["code"] == 2, report
    assert "Traceback" not in report["stderr"] and "internal error" not in report["stderr"], report
    assert f"'{mount / 'out'}': {cause}" in report["stderr"], report
    assert report["same"], report
    assert [name for name in report["names"] if name.endswith((".partial", ".previous", ".part"))] == [], report


def test_a_named_pipe_given_as_a_data_file_is_refused_without_waiting_for_a_writer(tmp_path):
    (tmp_path / "plan.yaml").write_text(SMALL_PLAN)
    (tmp_path / "measurements.csv").write_text(M)
    os.mkfifo(tmp_path / "participants.csv")
    result = subprocess.run(
        [sys.executable, "-m", "analysis", "run", "plan.yaml", "--out", "out", "--no-report"],
        capture_output=True, text=True, cwd=tmp_path, timeout=120,
        env={k: v for k, v in os.environ.items() if k != "TRIALKIT_DEBUG"} | {"PYTHONPATH": str(REPO)},
    )
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert "participants.csv" in result.stderr and "not a regular file" in result.stderr
    assert not (tmp_path / "out").exists()
