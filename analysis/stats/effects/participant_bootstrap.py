"""Participant data: bootstrap statistics, vectorised over resamples.

Owns :func:`hedges_g_bootstrap` (BCa or percentile CI of Hedges' g, stratified by arm), its batch
statistic ``_hedges_g_batch`` and ``_ratio_batch`` (ratio of mean changes, used by the
ratio-of-improvements bootstrap rows of :mod:`analysis.stats.effects.trial_table`).
"""

from __future__ import annotations

import numpy as np

from analysis.stats.effects.bootstrap import bootstrap_ci
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
    return hedges_j(n1 + n2 - 2) * (s1 / n1 - s2 / n2) / np.sqrt(pooled_var)


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
    centre = np.concatenate([x, y]).mean()  # g is shift invariant; centring keeps the sums exact
    return bootstrap_ci(
        [x - centre, y - centre],
        _hedges_g_batch,
        n_boot=n_boot,
        seed=seed,
        ci_level=ci_level,
        method=method,
    )


def _ratio_batch(t: np.ndarray, c: np.ndarray) -> np.ndarray:
    # A resample whose control change is exactly 0 has an unbounded ratio: +/-inf is its value.
    with np.errstate(divide="ignore", invalid="ignore"):
        return t.mean(axis=-1) / c.mean(axis=-1)
