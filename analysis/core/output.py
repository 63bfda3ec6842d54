"""Writing outputs safely: atomic files and directories, stable CSV bytes, spreadsheet-safe cells.

Every file trialkit writes goes through this module, so that

* a run writes into a staging directory next to the destination and swaps it into place only when
  every stage succeeded (an interrupted or failed run leaves the previous outputs intact);
* single files are written to a temporary name and renamed (``os.replace`` is atomic on POSIX);
* tables are written with a fixed float representation, ``\\n`` line ends and UTF-8, so the same
  inputs give byte-identical files;
* text cells a spreadsheet would execute as a formula (leading ``=``, ``+``, ``-``, ``@``, tab, CR)
  are prefixed with ``'`` unless they are numbers (OWASP CSV-injection guidance).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pandas as pd

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")

_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")

# Stages a run may write, relative to its output directory. Plans cannot name output paths, so a
# path from data can never escape the output directory; `safe_child` enforces it anyway.


def neutralise_formula(value: object) -> object:
    """Prefix ``'`` to a text cell a spreadsheet would evaluate; numbers and other types pass.

    Examples
    --------
    >>> neutralise_formula("=HYPERLINK(1)"), neutralise_formula("-3.5"), neutralise_formula("ok")
    ("'=HYPERLINK(1)", '-3.5', 'ok')
    """
    if isinstance(value, str) and value.startswith(FORMULA_START) and not _NUMBER.match(value):
        return "'" + value
    return value


def spreadsheet_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``frame`` whose text cells cannot run as spreadsheet formulas."""
    safe = frame.copy()
    for column in safe.columns:
        if safe[column].dtype == object or pd.api.types.is_string_dtype(safe[column]):
            safe[column] = safe[column].map(neutralise_formula)
    safe.columns = [neutralise_formula(str(c)) for c in safe.columns]
    return safe


def table_csv_bytes(frame: pd.DataFrame) -> bytes:
    """The exact bytes trialkit writes for a table (formula-safe, ``\\n``, shortest float repr)."""
    text = spreadsheet_safe(frame).to_csv(index=False, lineterminator="\n", na_rep="")
    return text.encode("utf-8")


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_bytes(path: Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (temporary file in the same folder, then rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_current_umask())  # mkstemp creates 0600; give the usual permissions
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        raise
    return path


def write_text(path: Path, text: str) -> Path:
    return write_bytes(path, text.encode("utf-8"))


def write_table(frame: pd.DataFrame, path: Path) -> Path:
    """Write a table as CSV (spreadsheet-safe, byte-stable) atomically."""
    return write_bytes(path, table_csv_bytes(frame))


def safe_child(root: Path, relative: str | Path) -> Path:
    """``root / relative``, refusing any path that would land outside ``root``."""
    candidate = (root / relative).resolve()
    if not candidate.is_relative_to(root.resolve()):
        raise ValueError(f"output path '{relative}' escapes the output directory")
    return candidate


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _recover(destination: Path) -> None:
    """Undo what an interrupted run left beside ``destination``.

    * staging directories (``.NAME.PID.*.partial``) of runs whose process no longer exists are
      removed (a running process's staging directory is left alone);
    * if a run was killed between moving the old outputs aside and moving the new ones in,
      ``destination`` is missing and ``.NAME.previous`` holds the complete old outputs: they are
      moved back.
    """
    # exactly the names staged_directory makes (mkdtemp's random part has no dot)
    staging_name = re.compile(rf"^\.{re.escape(destination.name)}\.(\d+)\.[^.]+\.partial$")
    for stale in destination.parent.iterdir():
        match = staging_name.match(stale.name)
        if match and stale.is_dir() and not _alive(int(match.group(1))):
            shutil.rmtree(stale, ignore_errors=True)
    previous = destination.with_name(f".{destination.name}.previous")
    if previous.is_dir() and not destination.exists():
        os.replace(previous, destination)


def _refuse_foreign(destination: Path) -> None:
    """Only an empty folder or an earlier trialkit output (it has ``manifest.json``) may be
    replaced: ``--out ~/Documents`` must never delete a user's files."""
    from analysis.core.errors import UsageError

    if destination.exists() and not destination.is_dir():
        raise UsageError(f"output path '{destination}' is a file, not a directory")
    if destination.is_dir() and any(destination.iterdir()) and not (destination / "manifest.json").is_file():
        raise UsageError(
            f"output directory '{destination}' already holds files that are not a trialkit output "
            "(no manifest.json); choose an empty or new --out directory"
        )


@contextlib.contextmanager
def staged_directory(destination: Path) -> Iterator[Path]:
    """Yield a fresh staging directory; on success it replaces ``destination`` as a whole.

    On any error (or interruption) the staging directory is removed and ``destination`` is left
    exactly as it was. The staging directory's name starts with ``.``, carries the process id and
    ends in ``.partial`` so it never looks like a finished output; one left behind by a killed
    process (SIGKILL runs no clean-up) is removed by the next run into the same destination.
    """
    destination = destination.resolve()
    destination.parent.mkdir(parents=True, exist_ok=True)
    _recover(destination)
    _refuse_foreign(destination)
    staging = Path(
        tempfile.mkdtemp(prefix=f".{destination.name}.{os.getpid()}.", suffix=".partial", dir=destination.parent)
    )
    try:
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    previous = destination.with_name(f".{destination.name}.previous")
    shutil.rmtree(previous, ignore_errors=True)
    if destination.exists():
        os.replace(destination, previous)
    # (a kill between these two renames leaves the old outputs in `previous`; `_recover` restores them)
    os.replace(staging, destination)
    shutil.rmtree(previous, ignore_errors=True)
