"""Participant data: bootstrap statistics, vectorised over resamples.

Owns :func:`hedges_g_bootstrap` (BCa or percentile CI of Hedges' g, stratified by arm), its batch
statistic ``_hedges_g_batch`` and ``ratio_of_means_batch`` (ratio of mean changes, used by the
ratio-of-improvements bootstrap rows of :mod:`analysis.stats.effects.trial_table`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from analysis.core.errors import UsageError
from analysis.core.tidy import check_ci_level
from analysis.stats.effects.bootstrap import BootstrapResult, _check_counts, bootstrap_ci
from analysis.stats.effects.common import hedges_j


def _hedges_g_batch(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Hedges' g (exact J) of each row pair of ``x`` (B, n1) and ``y`` (B, n2), vectorised.

    Uses sums and sums of squares (one pass each); callers centre the data first, which removes the
    cancellation that this form would otherwise suffer when the mean is large relative to the SD.
    """
    n1, n2 = x.shape[-1], y.shape[-1]
    s1, s2 = x.sum(axis=-1), y.sum(axis=-1)
    ss1 = np.einsum("...i,...i->...", x, x)
    ss2 = np.einsum("...i,...i->...", y, y)
    pooled_var = (ss1 - s1 * s1 / n1 + ss2 - s2 * s2 / n2) / (n1 + n2 - 2)
    # a resample without variation in either arm has no g: NaN (counted and reported by bootstrap_ci)
    with np.errstate(divide="ignore", invalid="ignore"):
        return hedges_j(n1 + n2 - 2) * (s1 / n1 - s2 / n2) / np.sqrt(pooled_var)


def _hedges_g_loo(g: int, samples: Sequence[np.ndarray]) -> np.ndarray:
    """Exact leave-one-out values of :func:`_hedges_g_batch` for sample ``g``, in O(n).

    Leaving ``a_i`` out of a sample with mean ``m`` and centred sum of squares ``S``: the mean
    becomes ``m - (a_i - m)/(n - 1)`` and ``S`` becomes ``S - n/(n - 1) (a_i - m)^2``.
    """
    x, y = samples
    a, other = (x, y) if g == 0 else (y, x)
    n, k = a.size, other.size
    dev = a - a.mean()
    mean_loo = a.mean() - dev / (n - 1)
    ss_loo = np.maximum(dev @ dev - n / (n - 1) * dev * dev, 0.0)
    dev_other = other - other.mean()
    diff = mean_loo - other.mean() if g == 0 else other.mean() - mean_loo
    df = n + k - 3
    with np.errstate(divide="ignore", invalid="ignore"):
        return hedges_j(df) * diff / np.sqrt((ss_loo + dev_other @ dev_other) / df)


_hedges_g_batch.leave_one_out = _hedges_g_loo  # type: ignore[attr-defined]


def hedges_g_bootstrap(
    treatment: np.ndarray,
    control: np.ndarray,
    *,
    n_boot: int,
    seed: int,
    ci_level: float = 0.95,
    method: str = "bca",
):
    """Bootstrap CI (BCa by default, or percentile) of Hedges' g, resampling within each arm.

    The statistic is :func:`standardized_mean_difference`'s g (exact J), computed for all resamples
    at once; memory is bounded by chunking (:mod:`analysis.stats.effects.bootstrap`). Returns a
    :class:`analysis.stats.effects.bootstrap.BootstrapResult` with ``n_boot`` and ``seed``. Compare
    ``pingouin.compute_bootci(x, y, func="hedges")`` (which uses the approximate J).

    Examples
    --------
    >>> rng = np.random.default_rng(3)
    >>> r = hedges_g_bootstrap(rng.normal(0.5, 1, 50), rng.normal(0, 1, 50), n_boot=1000, seed=7)
    >>> r.ci_low < r.estimate < r.ci_high, r.n_boot, r.seed
    (True, 1000, 7)
    """
    x = np.asarray(treatment, dtype=float)
    y = np.asarray(control, dtype=float)
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise UsageError("hedges_g_bootstrap needs finite values (found a missing or infinite value)")
    if method not in ("bca", "percentile"):
        raise UsageError(f"bootstrap method must be 'bca' or 'percentile', got {method!r}")
    check_ci_level(ci_level)
    _check_counts(n_boot, seed)
    if min(x.size, y.size) >= 2 and x.max() == x.min() and y.max() == y.min():
        return BootstrapResult(
            estimate=np.nan, ci_low=np.nan, ci_high=np.nan, ci_level=ci_level, method=method,
            n_boot=int(n_boot), seed=int(seed), std_error=np.nan,
            note="both arms have SD 0 (no variation within either arm): Hedges' g is undefined",
        )
    big = max(np.abs(x).max(initial=0.0), np.abs(y).max(initial=0.0))
    if big > 1e150 or 0 < big < 1e-150:  # g is scale invariant: keep sums of squares in range
        x, y = x / big, y / big
    centre = np.concatenate([x, y]).mean()  # g is shift invariant; centring keeps the sums exact
    return bootstrap_ci(
        [x - centre, y - centre],
        _hedges_g_batch,
        n_boot=n_boot,
        seed=seed,
        ci_level=ci_level,
        method=method,
    )


def ratio_of_means_batch(t: np.ndarray, c: np.ndarray) -> np.ndarray:
    # A resample whose control change is exactly 0 has an unbounded ratio: +/-inf is its value.
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        return t.mean(axis=-1) / c.mean(axis=-1)


def _ratio_loo(g: int, samples: Sequence[np.ndarray]) -> np.ndarray:
    """Exact leave-one-out values of :func:`ratio_of_means_batch` for sample ``g``, in O(n)."""
    t, c = samples
    a = t if g == 0 else c
    mean_loo = a.mean() - (a - a.mean()) / (a.size - 1)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        return mean_loo / c.mean() if g == 0 else t.mean() / mean_loo


ratio_of_means_batch.leave_one_out = _ratio_loo  # type: ignore[attr-defined]
