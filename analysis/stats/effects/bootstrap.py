"""Stratified, seeded, chunked bootstrap: percentile and BCa confidence intervals.

Resampling is done within each sample (for trialkit: within each arm), so every bootstrap replicate
keeps the arms' sizes. All replicates are computed by one vectorised ``statistic`` call per chunk of
resamples; the chunk size bounds memory (about ``CHUNK_ELEMENTS`` gathered values per sample at a
time), so 200,000 resamples of two arms of 160 need a few tens of MB, not gigabytes.

Reproducibility: the random stream of sample ``g`` is child ``g`` of ``SeedSequence(seed)``, and the
chunk size depends only on the sample sizes, so the same data and seed give the same replicates.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import special

from analysis.core.errors import UsageError
from analysis.core.tidy import check_ci_level

# Gathered values per sample per chunk (2**21 float64 = 16 MB); see the module docstring.
CHUNK_ELEMENTS = 2**21

Statistic = Callable[..., np.ndarray]


@dataclass(frozen=True)
class BootstrapResult:
    """A bootstrap confidence interval.

    Attributes
    ----------
    estimate : float
        The statistic on the original samples.
    ci_low, ci_high : float
        Interval limits (NaN when they cannot be formed; ``note`` says why).
    ci_level : float
        Confidence level.
    method : {"percentile", "bca"}
        Interval type.
    n_boot, seed : int
        Number of resamples and the seed they were drawn from.
    std_error : float
        Standard deviation of the bootstrap replicates.
    note : str or None
        Why the interval is missing, if it is.
    """

    estimate: float
    ci_low: float
    ci_high: float
    ci_level: float
    method: str
    n_boot: int
    seed: int
    std_error: float
    note: str | None = None


def _as_samples(samples: Sequence[np.ndarray]) -> list[np.ndarray]:
    arrays = [np.asarray(s, dtype=float) for s in samples]
    if not arrays:
        raise UsageError("bootstrap needs at least one sample")
    for i, a in enumerate(arrays):
        if a.ndim not in (1, 2) or a.shape[0] < 2:
            raise UsageError(f"bootstrap sample {i} must have at least 2 observations (rows)")
        if not np.all(np.isfinite(a)):
            raise UsageError(f"bootstrap sample {i} contains missing or infinite values")
    return arrays


def _check_counts(n_boot: int, seed: int) -> None:
    if not isinstance(n_boot, int | np.integer) or n_boot < 2:
        raise UsageError(f"n_boot must be an integer >= 2, got {n_boot!r}")
    if not isinstance(seed, int | np.integer) or seed < 0:
        raise UsageError(f"seed must be a non-negative integer, got {seed!r}")


def bootstrap_distribution(
    samples: Sequence[np.ndarray], statistic: Statistic, *, n_boot: int, seed: int
) -> np.ndarray:
    """Bootstrap replicates of ``statistic``, resampling each sample separately (stratified).

    Parameters
    ----------
    samples
        One array per stratum (arm), shape ``(n_g,)`` or ``(n_g, k)`` (rows are participants, so
        paired pre/post values stay together).
    statistic
        Vectorised: called as ``statistic(*batches)`` where batch ``g`` has shape ``(B, n_g)`` or
        ``(B, n_g, k)``; returns shape ``(B,)``.
    n_boot, seed
        Number of resamples and the seed.

    Returns
    -------
    numpy.ndarray
        ``n_boot`` replicates.

    Examples
    --------
    >>> x = np.array([1.0, 2.0, 4.0, 7.0])
    >>> bootstrap_distribution([x], lambda b: b.mean(axis=1), n_boot=5, seed=1).shape
    (5,)
    """
    arrays = _as_samples(samples)
    _check_counts(n_boot, seed)
    generators = [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(len(arrays))]
    widest = max(a.size for a in arrays)
    chunk = max(1, CHUNK_ELEMENTS // widest)
    out = np.empty(n_boot)
    for start in range(0, n_boot, chunk):
        b = min(chunk, n_boot - start)
        batches = [
            a[g.integers(0, a.shape[0], size=(b, a.shape[0]))]
            for a, g in zip(arrays, generators, strict=True)
        ]
        out[start : start + b] = statistic(*batches)
    return out


def jackknife_values(samples: Sequence[np.ndarray], statistic: Statistic) -> np.ndarray:
    """Leave-one-out values of ``statistic``: each observation of each sample left out in turn.

    Returns an array of length ``sum(n_g)`` (as ``scipy.stats.bootstrap`` does for several samples).
    """
    arrays = _as_samples(samples)
    values = []
    for g, a in enumerate(arrays):
        n = a.shape[0]
        # row i lists every index except i
        loo = np.tile(np.arange(n), (n, 1))[~np.eye(n, dtype=bool)].reshape(n, n - 1)
        batches = [
            a[loo] if h == g else np.broadcast_to(other[None], (n, *other.shape))
            for h, other in enumerate(arrays)
        ]
        values.append(statistic(*batches))
    return np.concatenate(values)


def bootstrap_ci(
    samples: Sequence[np.ndarray],
    statistic: Statistic,
    *,
    n_boot: int,
    seed: int,
    ci_level: float = 0.95,
    method: str = "bca",
) -> BootstrapResult:
    """Stratified bootstrap confidence interval, percentile or BCa (Efron 1987).

    Percentile: the ``(1 - ci_level)/2`` and ``(1 + ci_level)/2`` quantiles of the replicates
    (``numpy.quantile``, linear interpolation). BCa: those quantile levels are moved to
    ``Phi(z0 + (z0 + z_a) / (1 - a (z0 + z_a)))`` with bias correction
    ``z0 = Phi^-1(#{theta*_b < theta_hat} / B)`` and acceleration ``a = sum(u^3) / (6 (sum u^2)^1.5)``,
    ``u = mean(theta_(i)) - theta_(i)`` over the leave-one-out values of every sample -- the same
    definition as ``scipy.stats.bootstrap(method="BCa")`` for several samples.

    Parameters
    ----------
    samples, statistic
        As for :func:`bootstrap_distribution`.
    n_boot, seed
        Number of resamples and seed (both recorded in the result).
    ci_level
        Confidence level in (0, 1).
    method
        ``"bca"`` (default) or ``"percentile"``.

    Returns
    -------
    BootstrapResult

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> x, y = rng.normal(1, 1, 40), rng.normal(0, 1, 40)
    >>> r = bootstrap_ci([x, y], lambda a, b: a.mean(1) - b.mean(1), n_boot=2000, seed=1)
    >>> r.ci_low < r.estimate < r.ci_high
    True
    """
    if method not in ("bca", "percentile"):
        raise UsageError(f"bootstrap method must be 'bca' or 'percentile', got {method!r}")
    check_ci_level(ci_level)
    arrays = _as_samples(samples)
    estimate = float(statistic(*[a[None] for a in arrays])[0])
    boot = bootstrap_distribution(arrays, statistic, n_boot=n_boot, seed=seed)
    finite = np.isfinite(boot)
    alpha = (1 - ci_level) / 2
    common = dict(
        estimate=estimate, ci_level=ci_level, method=method, n_boot=int(n_boot), seed=int(seed)
    )
    if not finite.all():
        return BootstrapResult(
            ci_low=np.nan,
            ci_high=np.nan,
            std_error=np.nan,
            **common,
            note=f"{int((~finite).sum())} of {n_boot} bootstrap replicates are undefined; no interval",
        )
    std_error = float(boot.std(ddof=1))
    levels = np.array([alpha, 1 - alpha])
    if method == "bca":
        below = np.mean(boot < estimate)
        if below in (0.0, 1.0):
            return BootstrapResult(
                ci_low=np.nan,
                ci_high=np.nan,
                std_error=std_error,
                **common,
                note="every bootstrap replicate lies on one side of the estimate; BCa undefined",
            )
        z0 = special.ndtri(below)
        jack = jackknife_values(arrays, statistic)
        u = jack.mean() - jack
        denom = 6.0 * np.sum(u**2) ** 1.5
        accel = float(np.sum(u**3) / denom) if denom > 0 else 0.0
        z = special.ndtri(levels)
        levels = special.ndtr(z0 + (z0 + z) / (1 - accel * (z0 + z)))
    low, high = np.quantile(boot, levels)
    return BootstrapResult(ci_low=float(low), ci_high=float(high), std_error=std_error, **common)
