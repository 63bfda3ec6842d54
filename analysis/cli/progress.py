"""What a running command is doing, on stderr.

A command calls :func:`stage` as each step that can take more than a second begins (``trialkit run``
passes it to :func:`analysis.pipeline.run` as its ``progress``); long loops (bootstrap resamples,
imputed datasets, simulated trials) report through :mod:`analysis.core.progress`, which
:func:`analysis.cli.run_cli` connects to :func:`loop_reporter` for the whole command.

* On a terminal: a rich display, one row per step with a spinner, then a tick and its time when
  it is done (a cross if the command stopped there), and a bar with counts for a running loop.
* When stderr is not a terminal (a log, a pipe, CI): one plain line per step, ``> step``, and
  nothing for loops; no escape codes.
* ``trialkit --quiet`` (``-q``): nothing of either; results and errors are still printed.

A command calls :func:`finish` before it prints its result, so the result follows the display.
"""

from __future__ import annotations

from typing import Any

from rich.markup import escape

from analysis.cli import console
from analysis.core.progress import ProgressCallback


def _ignore(done: int, total: int) -> None:
    return None


class Display:
    """The progress of one command; the rich display starts on the first step it shows."""

    def __init__(self, *, quiet: bool = False) -> None:
        self.quiet = quiet
        self._progress: Any = None  # rich.progress.Progress, imported only when it is shown
        self._stage: Any = None  # the running step's task id
        self._loops: set[Any] = set()  # the running loops' task ids

    @property
    def interactive(self) -> bool:
        """A rich display is shown: not quiet, and stderr is a terminal (really one: FORCE_COLOR
        in a CI log makes rich treat the log as a terminal, but a log gets plain lines)."""
        isatty = getattr(console.file, "isatty", None)
        return not self.quiet and console.is_terminal and bool(isatty and isatty())

    def stage(self, text: str) -> None:
        """A step begins; the previous one, if any, is done."""
        if self.quiet:
            return
        if not self.interactive:
            console.print(f"> {escape(text)}", soft_wrap=True, highlight=False)
            return
        progress = self._started()
        self._finish_stage()
        self._stage = progress.add_task(escape(text), total=None)

    def loop(self, what: str, total: int) -> ProgressCallback:
        """The callback of a loop of ``total`` steps: a bar on a terminal, nothing otherwise."""
        if not self.interactive or total < 1:
            return _ignore
        progress = self._started()
        task = progress.add_task(f"  {escape(what)}", total=total, loop=True)
        self._loops.add(task)

        def report(done: int, _total: int) -> None:
            if task not in self._loops:
                return
            if done >= total:
                self._loops.discard(task)
                progress.remove_task(task)  # a finished loop leaves the display
            else:
                progress.update(task, completed=done)

        return report

    def close(self, *, failed: bool = False) -> None:
        """The command ended: mark the running step done (or stopped) and stop the display."""
        if self._progress is None:
            return
        if failed and self._stage is not None:
            self._progress.update(self._stage, failed=True)
            self._stage = None
        self._finish_stage()
        for task in self._loops:  # loops a failure interrupted
            self._progress.remove_task(task)
        self._loops.clear()
        self._progress.stop()
        self._progress = None

    def _finish_stage(self) -> None:
        if self._stage is not None:
            self._progress.update(self._stage, total=1, completed=1)
            self._stage = None

    def _started(self) -> Any:
        if self._progress is None:
            self._progress = _rich_progress()
            self._progress.start()
        return self._progress


def _rich_progress() -> Any:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        ProgressColumn,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
    )
    from rich.text import Text

    class StepSpinner(SpinnerColumn):
        def render(self, task: Any) -> Any:
            if task.fields.get("failed"):
                return Text("✗", style="red")
            return super().render(task)

    class OnlyForLoops(ProgressColumn):
        def __init__(self, column: ProgressColumn) -> None:
            super().__init__()
            self.column = column

        def render(self, task: Any) -> Any:
            return self.column.render(task) if task.fields.get("loop") else Text("")

    return Progress(
        StepSpinner(finished_text=Text("✓", style="green")),
        TextColumn("{task.description}"),
        OnlyForLoops(BarColumn(bar_width=24)),
        OnlyForLoops(MofNCompleteColumn()),
        TimeElapsedColumn(),
        console=console,
    )


_current: list[Display] = [Display()]


def start(*, quiet: bool = False) -> Display:
    """A new display for the command about to run (called by :func:`analysis.cli.run_cli`)."""
    _current[0] = Display(quiet=quiet)
    return _current[0]


def current() -> Display:
    """The running command's display."""
    return _current[0]


def set_quiet(quiet: bool) -> None:
    """``trialkit --quiet``: no progress for the running command."""
    _current[0].quiet = quiet


def stage(text: str) -> None:
    """A step of the running command begins (shown as described in the module docstring)."""
    _current[0].stage(text)


def finish() -> None:
    """The running command's steps are over: end the display (each step then shows its time) so that
    what the command prints next (its result) comes after it."""
    _current[0].close()


def loop_reporter(what: str, total: int) -> ProgressCallback:
    """The factory :func:`analysis.cli.run_cli` installs with
    :func:`analysis.core.progress.reporting_progress` for the whole command."""
    return _current[0].loop(what, total)
