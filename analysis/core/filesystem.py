"""File-system problems as user errors, and which paths are the same file or folder.

A full disk, a read-only file system, a denied permission or a file where a folder is expected are
not bugs in trialkit: they end with exit code 2 and one sentence naming the path and the cause, for
example ``cannot write to '/x/out': no space left on device`` (:class:`FileSystemError`). The
cause is worded from the error number (:data:`REASONS`), so it reads the same whatever library
raised it. An ``OSError`` whose number is not in :data:`REASONS` (a missing file trialkit itself
should have made, say) is left alone: it is a bug and is reported as one.

Paths are compared as real paths (absolute, symbolic links resolved) and, for folders that exist,
by device and inode too, so ``--out .``, ``--out ../trial`` and a symbolic link to the same folder
are recognised as the same place (:func:`real_path`, :func:`holds`).
"""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

from analysis.core.errors import UsageError

# Error numbers caused by the machine or by the paths the user gave, never by trialkit's logic.
REASONS: dict[int, str] = {
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.EROFS: "read-only file system",
    errno.ENOSPC: "no space left on device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EFBIG: "file too large",
    errno.EIO: "input/output error",
    errno.EISDIR: "it is a directory, not a file",
    errno.ENOTDIR: "a part of the path is a file, not a directory",
    errno.ENAMETOOLONG: "file name too long",
    errno.ELOOP: "too many levels of symbolic links",
    errno.EBUSY: "device or resource busy",
    errno.ETXTBSY: "file is busy",
    errno.EMFILE: "too many open files",
    errno.ENFILE: "too many open files in the system",
}


class FileSystemError(UsageError):
    """A file or folder cannot be read or written: the message names the path and the cause.

    ``path`` is the path concerned and ``reason`` the cause in words (``"permission denied"``).
    """

    def __init__(self, message: str, path: str | Path, reason: str) -> None:
        super().__init__(message)
        self.path = Path(path)
        self.reason = reason


class OutputRefusedError(UsageError):
    """An output location was refused because writing there could destroy something that is not a
    trialkit output (an input of the command, the working or home directory, a foreign folder)."""


def is_environment_error(error: BaseException) -> bool:
    """Whether ``error`` is an ``OSError`` the machine or the user's paths caused (see :data:`REASONS`)."""
    return isinstance(error, OSError) and error.errno in REASONS


def cannot(action: str, path: str | Path, error: OSError | str) -> FileSystemError:
    """``cannot ACTION 'PATH': REASON`` as a :class:`FileSystemError`.

    Examples
    --------
    >>> import errno
    >>> str(cannot("write to", "/x/out", OSError(errno.EROFS, "Read-only file system")))
    "cannot write to '/x/out': read-only file system"
    """
    if isinstance(error, str):
        reason = error
    else:
        reason = REASONS.get(error.errno or 0) or (error.strerror or str(error)).lower()
    return FileSystemError(f"cannot {action} '{path}': {reason}", path, reason)


def error_from_os_error(error: OSError) -> FileSystemError | None:
    """The user-facing form of an ``OSError`` that escaped with no more context, or ``None`` for a bug.

    Reads and writes trialkit knows about are reported where they happen; this is the last resort
    for an error raised inside a library (a notebook's temporary files, say). It names the file the
    error names; without one, it is not reported as a user error.
    """
    if not is_environment_error(error) or error.filename is None:
        return None
    writing = error.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG)
    return cannot("write to" if writing else "access", os.fsdecode(error.filename), error)


@contextlib.contextmanager
def reported_as(action: str, path: str | Path) -> Iterator[None]:
    """Turn an environment ``OSError`` raised in the block into ``cannot ACTION 'PATH': REASON``."""
    try:
        yield
    except OSError as error:
        if not is_environment_error(error):
            raise
        raise cannot(action, path, error) from error


def check_readable(path: str | Path, what: str) -> None:
    """Refuse an input that exists but cannot be read: a folder, or a file that cannot be opened.

    A missing file is left to the caller, which knows what the file should have been. A device or
    a named pipe is refused without being opened (opening a pipe waits for a writer).

    Raises
    ------
    FileSystemError
        ``cannot read WHAT 'PATH': it is a directory, not a file`` / ``...: permission denied`` /
        ``...: it is not a regular file (a device or a named pipe)``.
    """
    path = Path(path)
    with reported_as(f"read {what}", path):  # even a stat fails without permission on the folder
        if path.is_dir():
            raise cannot(f"read {what}", path, "it is a directory, not a file")
        if not path.exists():
            return
        if not path.is_file():
            raise cannot(f"read {what}", path, "it is not a regular file (a device or a named pipe)")
        with open(path, "rb"):
            pass


def read_input(path: str | Path, what: str) -> bytes:
    """The bytes of an input file; a folder or an unreadable file is a :class:`FileSystemError`."""
    check_readable(path, what)
    with reported_as(f"read {what}", path):
        return Path(path).read_bytes()


def real_path(path: str | Path) -> Path:
    """``path`` absolute, with ``.``, ``..`` and symbolic links resolved (as far as it exists)."""
    try:
        return Path(path).resolve()
    except (OSError, RuntimeError):  # a symbolic-link loop
        return Path(os.path.abspath(path))


def holds(folder: str | Path, path: str | Path) -> bool:
    """Whether ``folder`` is ``path`` or one of its ancestors (replacing it would delete ``path``).

    Compared as real paths and, where both exist, by device and inode (a bind mount or a second
    name of the same folder).
    """
    folder, path = real_path(folder), real_path(path)
    if folder == path or folder in path.parents:
        return True
    try:
        identity = os.stat(folder)
    except OSError:
        return False
    for candidate in (path, *path.parents):
        with contextlib.suppress(OSError):
            if os.path.samestat(identity, os.stat(candidate)):
                return True
    return False


def refuse_overwriting_inputs(outputs: Mapping[str, str | Path | None], inputs: Iterable[str | Path]) -> None:
    """Refuse an output file that is one of the command's input files, or two outputs that are one file.

    ``outputs`` maps how the user named each output (``"--output"``) to its path (``None``: not
    requested). Compared as real paths, so ``data.csv``, ``./data.csv`` and a symbolic link to it
    are the same file.

    Raises
    ------
    OutputRefusedError
        One sentence naming the output and the input it would overwrite.

    Examples
    --------
    >>> refuse_overwriting_inputs({"--output": "effects.csv"}, ["./effects.csv"])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    analysis.core.filesystem.OutputRefusedError: --output 'effects.csv' is an input of this command; ...
    """
    real_inputs = {real_path(p): Path(p) for p in inputs}
    seen: dict[Path, str] = {}
    for option, path in outputs.items():
        if path is None:
            continue
        real = real_path(path)
        if real in real_inputs or any(_same_file(real, other) for other in real_inputs):
            raise OutputRefusedError(
                f"{option} '{path}' is an input of this command; trialkit never overwrites its inputs, "
                "so choose another file name"
            )
        if real in seen:
            raise OutputRefusedError(f"{option} '{path}' is the same file as {seen[real]}; give each output its own name")
        seen[real] = f"{option} '{path}'"


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False
