"""Resource limits: the memory budget of large arrays and the time limit of long computations.

trialkit refuses, with a one-sentence :class:`~analysis.core.errors.UsageError` naming the size and
the limit, any request whose working arrays would not fit in :data:`MEMORY_BUDGET_BYTES`, so the
operating system never has to kill it; computations that can be split (bootstrap resamples, the
jackknife, simulated trials) are done in chunks that fit instead. Iterative computations
(optimisers, root searches, resampling loops) stop after :data:`TIME_LIMIT_SECONDS` of wall-clock
time with a clear error rather than running on indefinitely.

The budget is ``min(1 GiB, a quarter of the machine's physical memory)``: one working set of that
size leaves room for the interpreter, pandas and the other tables of a run. Both limits are read
at call time (:func:`memory_budget`, :class:`Deadline`), so tests can patch the module constants.
"""

from __future__ import annotations

import os
import time

from analysis.core.errors import TrialkitError, UsageError

GIB = 2**30


def _physical_memory() -> int | None:
    try:
        return int(os.sysconf("SC_PHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, ValueError, OSError):  # not available on this platform
        return None


_PHYSICAL = _physical_memory()

# Largest working set (bytes) one computation may allocate: 1 GiB, or a quarter of the physical
# memory on a smaller machine.
MEMORY_BUDGET_BYTES: int = min(GIB, _PHYSICAL // 4) if _PHYSICAL else GIB

# Wall-clock limit (seconds) of one iterative computation (one model fit, one resampling run).
TIME_LIMIT_SECONDS: float = 600.0


def memory_budget() -> int:
    """The memory budget in bytes (:data:`MEMORY_BUDGET_BYTES`, read at call time)."""
    return int(MEMORY_BUDGET_BYTES)


def format_bytes(n_bytes: float) -> str:
    """``1.5 GiB``, ``512 MiB``, ``12 KiB``, ``100 bytes``."""
    for unit, size in (("GiB", GIB), ("MiB", 2**20), ("KiB", 2**10)):
        if n_bytes >= size:
            return f"{n_bytes / size:,.3g} {unit}"
    return f"{int(n_bytes)} bytes"


def check_memory(n_bytes: float, what: str, advice: str) -> None:
    """Refuse a request whose working arrays (``n_bytes``) exceed the budget.

    Raises
    ------
    UsageError
        ``"<what> would need <size> of working memory, more than trialkit's limit of <budget>;
        <advice>."``

    Examples
    --------
    >>> check_memory(1024, "a bootstrap of 10 resamples", "use fewer resamples")
    """
    budget = memory_budget()
    if n_bytes > budget:
        raise UsageError(
            f"{what} would need {format_bytes(n_bytes)} of working memory, more than trialkit's "
            f"limit of {format_bytes(budget)}; {advice}."
        )


def rows_per_chunk(bytes_per_row: float, *, share: float = 0.25) -> int:
    """How many rows of ``bytes_per_row`` bytes fit in ``share`` of the budget (at least 1)."""
    return max(1, int(memory_budget() * share // max(bytes_per_row, 1.0)))


class Deadline:
    """A wall-clock limit for one iterative computation.

    ``Deadline("the MMRM fit", ModelError, "try a simpler covariance")`` starts the clock;
    :meth:`check`, called once per iteration, raises ``error`` when :data:`TIME_LIMIT_SECONDS`
    have passed.

    Examples
    --------
    >>> deadline = Deadline("a loop")
    >>> deadline.check()
    """

    def __init__(
        self, what: str, error: type[TrialkitError] = UsageError, advice: str = "", seconds: float | None = None
    ) -> None:
        self.what = what
        self.error = error
        self.advice = advice
        self.seconds = float(TIME_LIMIT_SECONDS if seconds is None else seconds)
        self.start = time.monotonic()

    def expired(self) -> bool:
        return time.monotonic() - self.start > self.seconds

    def check(self) -> None:
        if self.expired():
            tail = f"; {self.advice}" if self.advice else ""
            raise self.error(f"{self.what} did not finish within trialkit's time limit of {self.seconds:g} s{tail}.")
