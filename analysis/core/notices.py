"""Notices: what trialkit tells the user beside its results, in its own words, and the record of them.

Libraries (pandas, NumPy, matplotlib, statsmodels, pandera, papermill) report odd conditions as
Python warnings, worded for programmers and printed with a source line. trialkit never lets them
reach the terminal as such: :func:`recording_warnings` catches every warning raised inside it,
turns it into one short sentence (:func:`describe_warning`) and keeps it in a :class:`NoticeLog`.
The command line prints the notices meant for the user as ``note: ...`` lines; a run writes them
all into its manifest (``warnings``), so a notice is never lost even when it is not printed.

trialkit's own notices are :class:`TrialkitNotice` warnings raised with :func:`notice`.

Recorders nest: an inner one (a run) passes each new notice on to the one around it (the command
line); the outermost one hands notices meant for the user to its ``forward`` callback or, when there
is none, to Python's warning display (so a library user still sees them, in trialkit's words).
"""

from __future__ import annotations

import builtins
import functools
import logging
import re
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")

# Library warnings that concern trialkit's own code or its dependencies, never the user's data:
# recorded, not printed.
_QUIET_CATEGORIES = (DeprecationWarning, PendingDeprecationWarning, FutureWarning, ImportWarning, ResourceWarning)
_QUIET_NAMES = {"PerformanceWarning", "DtypeWarning", "SettingWithCopyWarning", "ChainedAssignmentError"}
_GLYPH = re.compile(r"Glyph (\d+) .*missing from (?:current )?font|does not have a glyph for")


class TrialkitNotice(UserWarning):
    """Something the user should know about a result, in trialkit's words (printed as ``note:``)."""


def notice(message: str) -> None:
    """Tell the user something beside the results (recorded in the run's manifest, printed by the CLI).

    Examples
    --------
    >>> with recording_warnings(forward=print) as log:
    ...     notice("2 participants have no enrolment date")
    2 participants have no enrolment date
    >>> log.messages()
    ['2 participants have no enrolment date']
    """
    warnings.warn(TrialkitNotice(message), stacklevel=2)


def _library(filename: str) -> str:
    """The package a warning came from, from the file that raised it (``pandas``, ``trialkit``)."""
    parts = Path(filename).parts
    if "site-packages" in parts:
        after = parts[parts.index("site-packages") + 1 :]
        if after:
            return after[0].removesuffix(".py").split("-")[0]
    if "analysis" in parts:
        return "trialkit"
    return "python"


def _first_line(text: str, limit: int = 160) -> str:
    line = " ".join(str(text).strip().splitlines()[:1]).strip()
    return line if len(line) <= limit else line[: limit - 3] + "..."


def describe_warning(message: Warning | str, category: type[Warning], filename: str = "") -> tuple[str, bool]:
    """A library warning in trialkit's words, and whether the user should see it.

    Returns ``(text, shown)``; ``shown`` is False for warnings about trialkit's own code or its
    dependencies (deprecations, pandas performance hints), which are only recorded.

    Examples
    --------
    >>> describe_warning(RuntimeWarning("invalid value encountered in divide"), RuntimeWarning,
    ...                  "/venv/lib/python3.11/site-packages/numpy/core/fromnumeric.py")
    ('numerical problem in a calculation (numpy: invalid value encountered in divide); results that depend on it may be missing', True)
    """
    text = _first_line(str(message))
    if issubclass(category, TrialkitNotice):
        return str(message), True
    source = _library(filename)
    if _GLYPH.search(text):
        code = re.search(r"Glyph (\d+)|\[U\+([0-9A-Fa-f]+)\]", text)
        char = (chr(int(code[1])) if code[1] else chr(int(code[2], 16))) if code else ""
        what = f"{char}, U+{ord(char):04X}" if char else text
        return f"a figure label has a character its font cannot draw ({what}); it is drawn as a blank box", True
    if issubclass(category, _QUIET_CATEGORIES) or category.__name__ in _QUIET_NAMES:
        return f"{source} notice (not about the data): {text}", False
    if category.__name__ == "ConvergenceWarning":
        return f"a model fit reported a convergence problem ({source}: {text}); check the models table", True
    if issubclass(category, RuntimeWarning):
        return f"numerical problem in a calculation ({source}: {text}); results that depend on it may be missing", True
    return f"{source} reported: {text}", True


@dataclass
class NoticeLog:
    """The notices of one command or run: each distinct text once, in order, with how often it came."""

    forward: Callable[[str], None] | None = None
    parent: NoticeLog | None = None
    entries: dict[str, dict[str, object]] = field(default_factory=dict)

    def add(self, text: str, shown: bool, source: str) -> None:
        entry = self.entries.get(text)
        if entry is not None:
            entry["count"] = int(entry["count"]) + 1  # type: ignore[call-overload]
            return
        self.entries[text] = {"note": text, "shown": shown, "source": source, "count": 1}
        if self.parent is not None:
            self.parent.add(text, shown, source)
        elif shown and self.forward is not None:
            self.forward(text)
        elif shown:
            _ORIGINAL_SHOW(TrialkitNotice(text), TrialkitNotice, "trialkit", 0)

    def messages(self, shown_only: bool = True) -> list[str]:
        """The distinct notices (by default only those meant for the user), in order."""
        return [text for text, entry in self.entries.items() if entry["shown"] or not shown_only]

    def records(self) -> list[dict[str, object]]:
        """Every notice as ``{note, shown, source, count}`` (for a manifest)."""
        return [dict(entry) for entry in self.entries.values()]


_ORIGINAL_SHOW = warnings.showwarning
_ACTIVE: list[NoticeLog] = []


class _LogHandler(logging.Handler):
    """Library log records of level WARNING and above go into the notice log, not the terminal."""

    def emit(self, record: logging.LogRecord) -> None:
        if _ACTIVE and record.levelno >= logging.WARNING:
            _ACTIVE[-1].add(f"{record.name} log: {_first_line(record.getMessage())}", False, record.name.split(".")[0])


def active_log() -> NoticeLog | None:
    """The innermost :func:`recording_warnings` log, if any (what a manifest records)."""
    return _ACTIVE[-1] if _ACTIVE else None


@contextmanager
def recording_warnings(forward: Callable[[str], None] | None = None) -> Iterator[NoticeLog]:
    """Catch every warning raised inside, as notices in a :class:`NoticeLog` (nothing is printed here).

    Parameters
    ----------
    forward
        Called once with each distinct notice meant for the user, when no outer recorder is active
        (the command line prints it). Inside another recorder, notices pass on to that one instead.

    Examples
    --------
    >>> import warnings
    >>> with recording_warnings(forward=print) as log:
    ...     warnings.warn("Glyph 26481 (CJK) missing from font(s) DejaVu Sans.")
    ...     warnings.warn("use .loc instead", FutureWarning)
    a figure label has a character its font cannot draw (\u6771, U+6771); it is drawn as a blank box
    >>> [entry["shown"] for entry in log.records()]
    [True, False]
    """
    log = NoticeLog(forward=forward, parent=active_log())
    handler = _LogHandler()
    root = logging.getLogger()
    with warnings.catch_warnings():  # the filters in force stay as they are; only the display changes

        def show(message, category, filename, lineno, file=None, line=None) -> None:
            text, shown = describe_warning(message, category, filename)
            log.add(text, shown, _library(filename) if not issubclass(category, TrialkitNotice) else "trialkit")

        warnings.showwarning = show
        _ACTIVE.append(log)
        root.addHandler(handler)
        try:
            yield log
        finally:
            root.removeHandler(handler)
            _ACTIVE.remove(log)


def records_warnings(function: Callable[P, R]) -> Callable[P, R]:
    """Run ``function`` inside :func:`recording_warnings`, so what it writes (a manifest) can list
    the notices of its own run (:func:`active_log`); they still reach any outer recorder."""

    @functools.wraps(function)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with recording_warnings():
            return function(*args, **kwargs)

    return wrapper


def manifest_notices() -> list[dict[str, object]]:
    """The notices recorded so far by the innermost recorder, for a manifest's ``warnings`` list."""
    log = active_log()
    return log.records() if log is not None else []


_PRINTED = re.compile(r"(?:^|\s)([A-Z]\w*Warning): (.+)$")


def replay_warnings(text: str, where: str) -> None:
    """Record warnings another process printed (a notebook kernel's stderr) as if raised here:
    each ``...: SomeWarning: message`` line becomes a notice; other lines are recorded as printed
    output of ``where``, not shown."""
    log = active_log()
    if log is None:
        return
    for line in text.splitlines():
        if not line.strip() or line[:1].isspace():  # blank, or the source line a warning echoes
            continue
        match = _PRINTED.search(line)
        if match is None:
            log.add(f"{where} printed: {_first_line(line)}", False, where)
            continue
        name, message = match.groups()
        category = getattr(builtins, name, None)
        if not (isinstance(category, type) and issubclass(category, Warning)):
            category = type(name, (UserWarning,), {})
        description, shown = describe_warning(message, category, line.split(":", 1)[0])
        log.add(description, shown, where)
