"""Progress of long loops (bootstrap resamples, imputed datasets, simulated trials), for a display.

A loop that can take more than a moment takes an optional ``progress`` callback and calls it as
``progress(done, total)`` after each step (a chunk of resamples, one imputed dataset ...). Reporting
never changes a result: the callback is given counts, never data, and is called after the step.

When the caller passes no callback, the loop reports to the one installed with
:func:`reporting_progress`, if any. The command line installs one for the whole command, so a loop
deep inside ``trialkit run`` shows on the terminal without every function in between passing a
callback along; library callers see nothing unless they ask.

Examples
--------
>>> seen = []
>>> with reporting_progress(lambda what, total: lambda done, total: seen.append((what, done, total))):
...     report = loop_progress("resamples", 4)
...     for done in (2, 4):
...         report(done, 4)
>>> seen
[('resamples', 2, 4), ('resamples', 4, 4)]
>>> loop_progress("resamples", 4)(4, 4)  # nothing installed: reporting does nothing
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

ProgressCallback = Callable[[int, int], None]
"""Called as ``progress(done, total)`` after each step of a loop."""

ProgressFactory = Callable[[str, int], ProgressCallback]
"""Called as ``factory(what, total)`` when a loop starts; returns the loop's callback."""

_installed: ContextVar[ProgressFactory | None] = ContextVar("trialkit_progress", default=None)


def _ignore(done: int, total: int) -> None:
    return None


def loop_progress(what: str, total: int, progress: ProgressCallback | None = None) -> ProgressCallback:
    """The callback a loop of ``total`` steps reports to.

    ``progress`` if given; otherwise a callback from the factory installed with
    :func:`reporting_progress` (``what`` names the loop, e.g. ``"bootstrap resamples"``); otherwise
    one that does nothing.
    """
    if progress is not None:
        return progress
    factory = _installed.get()
    return factory(what, total) if factory is not None else _ignore


@contextmanager
def reporting_progress(factory: ProgressFactory | None) -> Iterator[None]:
    """Loops started inside this block without their own callback report to ``factory``."""
    token = _installed.set(factory)
    try:
        yield
    finally:
        _installed.reset(token)
