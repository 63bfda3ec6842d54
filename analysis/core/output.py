"""Writing outputs safely: atomic files and directories, stable CSV bytes, spreadsheet-safe cells.

Every file trialkit writes goes through this module, so that

* a run writes into a staging directory next to the destination and swaps it into place only when
  every stage succeeded (an interrupted or failed run leaves the previous outputs intact);
* single files are written to a temporary name and renamed (``os.replace`` is atomic on POSIX);
* tables are written with a fixed float representation, ``\\n`` line ends and UTF-8, so the same
  inputs give byte-identical files;
* text cells a spreadsheet would execute as a formula (leading ``=``, ``+``, ``-``, ``@``, tab, CR)
  are prefixed with ``'`` unless they are numbers (OWASP CSV-injection guidance);
* a folder is only ever replaced if trialkit made it (it carries the marker file
  :data:`MARKER`), is empty or absent, and never if it is or holds an input of the run, the
  working directory, the home directory or the file-system root (:func:`check_output_directory`);
* a full disk, a read-only file system or a denied permission is one sentence naming the path and
  the cause (:class:`analysis.core.filesystem.FileSystemError`, exit code 2), and leaves the
  previous outputs as they were and no temporary file or staging folder behind.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import shutil
import stat
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

import pandas as pd

from analysis.core.filesystem import (
    REASONS,
    FileSystemError,
    OutputRefusedError,
    cannot,
    holds,
    real_path,
    reported_as,
)

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


def _formula_free(column: pd.Series) -> bool:
    """No distinct value of the column would be changed by :func:`neutralise_formula`."""
    try:
        distinct = pd.unique(column.dropna())
    except TypeError:  # unhashable cells: let the caller check each one
        return False
    return all(neutralise_formula(value) is value for value in distinct)


def spreadsheet_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``frame`` whose text cells cannot run as spreadsheet formulas."""
    safe = frame.copy()
    for column in safe.columns:
        if safe[column].dtype == object or pd.api.types.is_string_dtype(safe[column]):
            if _formula_free(safe[column]):  # checked once per distinct value: linear, not per cell
                continue
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


def make_directory(folder: Path) -> Path:
    """``mkdir -p folder``; a file in the way or an unwritable parent is a :class:`FileSystemError`."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError) as error:
        blocker = next((p for p in (folder, *folder.parents) if p.exists() and not p.is_dir()), folder)
        reason = "it is a file, not a directory" if blocker == folder else f"'{blocker}' is a file, not a directory"
        raise cannot("write to", folder, reason) from error
    except OSError as error:
        if error.errno not in REASONS:
            raise
        raise cannot("write to", folder, error) from error
    return folder


def _is_stream(path: Path) -> bool:
    """A character device or a pipe (``/dev/stdout``, ``/dev/null``): written in place, not replaced."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return False
    return stat.S_ISCHR(mode) or stat.S_ISFIFO(mode)


def write_bytes(path: Path, data: bytes | Iterable[bytes]) -> Path:
    """Write ``data`` to ``path`` atomically (temporary file in the same folder, then rename).

    ``data`` may be an iterable of byte strings, written one after the other (a large table
    streamed without its whole text in memory).

    A character device or pipe (``--output /dev/stdout``) is written in place instead. A failure
    (full disk, read-only file system, permission denied, a folder at ``path``) raises
    :class:`~analysis.core.filesystem.FileSystemError` naming ``path``; the temporary file is
    removed and ``path`` keeps its previous content.
    """
    path = Path(path)
    with reported_as("write to", path):
        if path.is_dir():
            raise cannot("write to", path, "it is a directory, not a file")
    make_directory(path.parent)
    with reported_as("write to", path):
        pieces = [data] if isinstance(data, bytes | bytearray) else data
        if _is_stream(path):
            with open(path, "wb") as handle:
                for piece in pieces:
                    handle.write(piece)
            return path
        if path.exists() and not path.is_file():
            raise cannot("write to", path, "it is not a regular file")
        fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as handle:
                os.fchmod(handle.fileno(), 0o666 & ~_current_umask())  # mkstemp creates 0600
                for piece in pieces:
                    handle.write(piece)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temp)
            raise
    return path


def write_text(path: Path, text: str) -> Path:
    return write_bytes(path, text.encode("utf-8"))


# Rows converted to CSV text at a time by write_table: a long table is streamed, not held as text.
TABLE_CHUNK_ROWS = 200_000


def _table_csv_chunks(frame: pd.DataFrame) -> Iterator[bytes]:
    header = len(table_csv_bytes(frame.iloc[:0]))
    for start in range(0, len(frame), TABLE_CHUNK_ROWS):
        data = table_csv_bytes(frame.iloc[start : start + TABLE_CHUNK_ROWS])
        yield data if start == 0 else data[header:]  # the header once


def write_table(frame: pd.DataFrame, path: Path) -> Path:
    """Write a table as CSV (spreadsheet-safe, byte-stable) atomically, a block of rows at a time
    (the same bytes as :func:`table_csv_bytes` of the whole table)."""
    if len(frame) <= TABLE_CHUNK_ROWS:
        return write_bytes(path, table_csv_bytes(frame))
    return write_bytes(path, _table_csv_chunks(frame))


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


# Every folder trialkit replaces as a whole carries this file (small JSON naming the tool and the
# kind of output). Only a folder with it -- or an empty or absent one -- is ever replaced.
MARKER = ".trialkit-output"


def marker_text(kind: str) -> str:
    """The marker's content: ``{"tool": "trialkit", "kind": KIND}`` (no time stamp: byte-stable)."""
    return json.dumps({"tool": "trialkit", "kind": kind}) + "\n"


def _json_object(path: Path) -> dict | None:
    try:
        if path.stat().st_size > 16 << 20:
            return None
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def is_trialkit_output(folder: Path) -> bool:
    """Whether ``folder`` was written by trialkit, and so may be replaced by the next run.

    It carries the marker :data:`MARKER` whose JSON names ``"tool": "trialkit"``. Transition rule
    for outputs written before the marker existed: a ``manifest.json`` that is trialkit's (a JSON
    object with a ``trialkit_version`` key, as ``run`` and ``grant-report`` write, or with
    ``trialkit`` among its ``packages``, as ``replicate`` and ``power`` write). Any other
    ``manifest.json`` is someone else's.
    """
    if _has_marker(folder):
        return True
    if (folder / MARKER).exists():
        return False  # a marker that is not trialkit's
    manifest = _json_object(folder / "manifest.json") if (folder / "manifest.json").is_file() else None
    if manifest is None:
        return False
    packages = manifest.get("packages")
    return "trialkit_version" in manifest or (isinstance(packages, dict) and "trialkit" in packages)


def _has_marker(folder: Path) -> bool:
    content = _json_object(folder / MARKER) if (folder / MARKER).is_file() else None
    return content is not None and content.get("tool") == "trialkit"


def _refusal(folder: Path, why: str) -> OutputRefusedError:
    return OutputRefusedError(f"refusing to replace '{folder}' with trialkit outputs: {why}; choose another output directory")


def check_output_directory(destination: str | Path, inputs: Iterable[str | Path] = ()) -> Path:
    """Refuse an output directory whose replacement could delete what is not a trialkit output.

    Refused (:class:`~analysis.core.filesystem.OutputRefusedError`, exit code 2): the file-system
    root; a folder that is or holds an input of the run (``inputs``: plan, data files, data
    dictionary ...) or trialkit's own bundled files (contracts, notebooks, example data, study
    template); the working directory, the home directory or a folder holding either; an existing
    file; a non-empty folder that is neither a trialkit output (:func:`is_trialkit_output`) nor
    inside one. Paths are compared as real paths,
    so ``--out .``, ``--out ..`` and a symbolic link are judged by the folder they name. Returns
    the real path.
    """
    from analysis.core.resources import EXAMPLES_DIR, NOTEBOOKS_DIR, SCHEMAS_DIR, TEMPLATES_DIR

    folder = real_path(destination)
    if folder == Path(folder.anchor):
        raise _refusal(folder, "it is the file-system root")
    protected = [(Path(p), "an input of this run") for p in inputs]
    protected += [(SCHEMAS_DIR, "trialkit's data contracts"), (NOTEBOOKS_DIR, "trialkit's report notebooks"),
                  (EXAMPLES_DIR, "trialkit's example data"), (TEMPLATES_DIR, "trialkit's study template")]
    with contextlib.suppress(OSError):
        protected.append((Path.cwd(), "the current working directory"))
    with contextlib.suppress(RuntimeError, KeyError, OSError):
        protected.append((Path.home(), "your home directory"))
    for path, what in protected:
        if holds(folder, path):
            raise _refusal(folder, f"it is {what}" if real_path(path) == folder else f"it holds {what} ('{real_path(path)}')")
    with reported_as("write to", folder):
        if folder.exists() and not folder.is_dir():
            raise cannot("write to", folder, "it is a file, not a directory")
        inside_output = any(_has_marker(parent) for parent in folder.parents)  # e.g. DIR/adam of a run
        if folder.is_dir() and any(folder.iterdir()) and not (is_trialkit_output(folder) or inside_output):
            raise _refusal(folder, f"it already holds files and is not a trialkit output (it has no {MARKER} file)")
    return folder


def _staging_error(error: BaseException, staging: Path, destination: Path) -> FileSystemError | None:
    """A write failure inside the staging folder, reported against the destination the user named."""
    if isinstance(error, FileSystemError):
        path = error.path
        reason = error.reason
    elif isinstance(error, OSError) and error.errno in REASONS:
        path = Path(os.fsdecode(error.filename)) if error.filename is not None else None
        reason = REASONS[error.errno]
        if path is None and error.errno not in (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG):
            return None
    else:
        return None
    if path is not None and not holds(staging, path):
        return None
    return cannot("write to", destination, reason)


def _swap(staging: Path, destination: Path) -> None:
    """Replace ``destination`` by ``staging``; on failure put the old outputs back and remove staging."""
    previous = destination.with_name(f".{destination.name}.previous")
    moved = False
    try:
        shutil.rmtree(previous, ignore_errors=True)
        if destination.exists():
            os.replace(destination, previous)
            moved = True
        # (a kill between these two renames leaves the old outputs in `previous`; `_recover` restores them)
        os.replace(staging, destination)
    except BaseException as error:
        if moved and not destination.exists():
            with contextlib.suppress(OSError):
                os.replace(previous, destination)
        shutil.rmtree(staging, ignore_errors=True)
        if isinstance(error, OSError) and error.errno in REASONS:
            raise cannot("write to", destination, error) from error
        raise
    shutil.rmtree(previous, ignore_errors=True)


@contextlib.contextmanager
def staged_directory(destination: Path, *, inputs: Iterable[str | Path], kind: str = "run") -> Iterator[Path]:
    """Yield a fresh staging directory; on success it replaces ``destination`` as a whole.

    Parameters
    ----------
    destination
        The output folder. It must be absent, empty or an earlier trialkit output, and must not be
        or hold an input, the working or home directory (:func:`check_output_directory`).
    inputs
        Every file the run reads (plan, data files, data dictionary, adverse events, effects ...);
        give ``()`` only when there is none.
    kind
        What the folder holds (``run``, ``grant-report``, ...), recorded in its :data:`MARKER`.

    On any error (or interruption) the staging directory is removed and ``destination`` is left
    exactly as it was; a full disk, read-only file system or denied permission is a
    :class:`~analysis.core.filesystem.FileSystemError` naming ``destination``. The staging
    directory's name starts with ``.``, carries the process id and ends in ``.partial`` so it never
    looks like a finished output; one left behind by a killed process (SIGKILL runs no clean-up) is
    removed by the next run into the same destination.
    """
    inputs = list(inputs)
    destination = check_output_directory(destination, inputs)
    make_directory(destination.parent)
    with reported_as("write to", destination):
        _recover(destination)
    destination = check_output_directory(destination, inputs)  # what `_recover` put back is checked too
    with reported_as("write to", destination):
        staging = Path(
            tempfile.mkdtemp(prefix=f".{destination.name}.{os.getpid()}.", suffix=".partial", dir=destination.parent)
        )
    try:
        with reported_as("write to", destination):
            os.chmod(staging, 0o777 & ~_current_umask())  # mkdtemp creates 0700; give the usual permissions
        yield staging
        write_text(staging / MARKER, marker_text(kind))
    except BaseException as error:
        shutil.rmtree(staging, ignore_errors=True)
        translated = _staging_error(error, staging, destination)
        if translated is not None:
            raise translated from error
        raise
    _swap(staging, destination)


def beside(folder: str | Path, suffix: str) -> Path:
    """The file ``FOLDER<suffix>`` next to ``folder`` (``out`` -> ``out.validation_failures.csv``).

    ``.`` and ``..`` are resolved first, so the name is never empty; the file-system root has no
    "beside", so ``/trialkit<suffix>`` stands for it (an output folder ``/`` is refused anyway).
    """
    path = Path(folder)
    if path.name in ("", ".", ".."):
        path = real_path(path)
    if path.name == "":
        return path / f"trialkit{suffix}"
    return path.with_name(path.name + suffix)
