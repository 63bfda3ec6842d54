"""Mergeable sufficient statistics: counts, centred moments and co-moment matrices.

Each partition summarises its own rows (mean and centred sums of squares about its own mean, never
raw sums of squares, which lose every digit when the mean is large against the spread); the
summaries are merged pairwise with the parallel formula of Chan, Golub and LeVeque (1979):
``n = na + nb``, ``delta = mb - ma``, ``m = ma + delta nb / n``,
``M = Ma + Mb + delta delta' na nb / n``. The merge is associative, so the result does not depend
on how many partitions or workers there are beyond the last bits of rounding.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import reduce

import numpy as np


@dataclass(frozen=True)
class Moments:
    """Count, mean vector and co-moment matrix ``sum (z - mean)(z - mean)'`` of rows ``z``.

    A single variable is the 1 x 1 case; ``low`` and ``high`` are the column minima and maxima.

    Examples
    --------
    >>> import numpy as np
    >>> a = Moments.of(np.array([[1.0], [2.0]]))
    >>> b = Moments.of(np.array([[3.0], [4.0], [5.0]]))
    >>> both = a.merge(b)
    >>> both.n, float(both.mean[0]), float(both.comoment[0, 0])
    (5, 3.0, 10.0)
    """

    n: int
    mean: np.ndarray
    comoment: np.ndarray
    low: np.ndarray
    high: np.ndarray

    @classmethod
    def empty(cls, k: int) -> Moments:
        nan = np.full(k, np.nan)
        return cls(0, np.zeros(k), np.zeros((k, k)), nan, nan.copy())

    @classmethod
    def of(cls, rows: np.ndarray) -> Moments:
        """The moments of the rows of a 2-D array (rows with a missing value must be removed first)."""
        rows = np.asarray(rows, dtype=float)
        k = rows.shape[1]
        if rows.shape[0] == 0:
            return cls.empty(k)
        mean = rows.mean(axis=0)
        centred = rows - mean
        return cls(rows.shape[0], mean, centred.T @ centred, rows.min(axis=0), rows.max(axis=0))

    def merge(self, other: Moments) -> Moments:
        """Chan et al.'s parallel combination of two summaries."""
        if other.n == 0:
            return self
        if self.n == 0:
            return other
        n = self.n + other.n
        delta = other.mean - self.mean
        mean = self.mean + delta * (other.n / n)
        comoment = self.comoment + other.comoment + np.outer(delta, delta) * (self.n * other.n / n)
        return Moments(n, mean, comoment, np.fmin(self.low, other.low), np.fmax(self.high, other.high))

    @property
    def covariance(self) -> np.ndarray:
        """Sample covariance (divisor ``n - 1``); NaN with fewer than 2 rows."""
        if self.n < 2:
            return np.full_like(self.comoment, np.nan)
        return self.comoment / (self.n - 1)


def merge_all(parts: list[Moments]) -> Moments:
    """Merge summaries left to right (the order of the partitions, so reruns give the same bits)."""
    return reduce(Moments.merge, parts)


def merge_keyed(parts: list[dict]) -> dict:
    """Merge dictionaries of :class:`Moments` (or of integer counts) key by key."""
    out: dict = {}
    for part in parts:
        for key, value in part.items():
            if key not in out:
                out[key] = value
            elif isinstance(value, Moments):
                out[key] = out[key].merge(value)
            else:
                out[key] = out[key] + value
    return out
