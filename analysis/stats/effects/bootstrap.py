"""Stratified, seeded, chunked bootstrap: percentile and BCa confidence intervals.

Resampling is done within each sample (for trialkit: within each arm), so every bootstrap replicate
keeps the arms' sizes. All replicates are computed by one vectorised ``statistic`` call per chunk of
resamples; the chunk size bounds memory (about ``CHUNK_ELEMENTS`` gathered values per sample at a
time), so 200,000 resamples of two arms of 160 need a few tens of MB, not gigabytes.

Reproducibility: the random stream of sample ``g`` is child ``g`` of ``SeedSequence(seed)``, drawn in
order chunk after chunk (NumPy's bounded-integer stream does not depend on how it is split), so the
same data and seed give the same replicates whatever the chunk size.

Resource limits (:mod:`analysis.core.limits`): the replicates themselves (8 bytes each) must fit in
the memory budget, or the request is refused before it starts; chunks are sized to a share of the
budget; the resampling loop stops at the time limit. The BCa jackknife is computed in chunks of
leave-one-out rows (memory linear in n), or, for statistics that provide an exact leave-one-out
formula (``statistic.leave_one_out``, as the mean-based statistics of
:mod:`analysis.stats.effects.participant_bootstrap` do), in O(n) time when the direct computation
would gather more than ``JACKKNIFE_DIRECT_ELEMENTS`` values.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import special

from analysis.core.errors import UsageError
from analysis.core.limits import Deadline, check_memory, rows_per_chunk
from analysis.core.progress import ProgressCallback, loop_progress
from analysis.core.tidy import check_ci_level

# Gathered values per sample per chunk (2**21 float64 = 16 MB); see the module docstring.
CHUNK_ELEMENTS = 2**21
# The jackknife gathers sum n_g (n_g - 1) values: up to this many it is computed directly (in chunks
# of rows); beyond it a statistic's exact leave-one-out formula is used when it has one.
JACKKNIFE_DIRECT_ELEMENTS = 2**26
# Without an exact formula the direct jackknife is quadratic in n: refuse beyond this many values.
JACKKNIFE_MAX_ELEMENTS = 2**34

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
    samples: Sequence[np.ndarray],
    statistic: Statistic,
    *,
    n_boot: int,
    seed: int,
    progress: ProgressCallback | None = None,
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
    progress
        Called as ``progress(done, n_boot)`` after each chunk of resamples (default: the callback
        installed with :func:`analysis.core.progress.reporting_progress`, if any); it does not
        change the replicates.

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
    advice = "use fewer resamples (n_boot)"
    check_memory(8.0 * n_boot, f"a bootstrap of {n_boot:,} resamples", advice)
    # one resample: an int64 index and a float64 value per observation, and the statistic's
    # temporaries (about as much again)
    per_resample = 32.0 * sum(a.size for a in arrays)
    check_memory(per_resample, f"one bootstrap resample of {sum(a.shape[0] for a in arrays):,} observations", "use a smaller sample")
    generators = [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(len(arrays))]
    widest = max(a.size for a in arrays)
    chunk = max(1, min(CHUNK_ELEMENTS // widest, rows_per_chunk(per_resample)))
    out = np.empty(n_boot)
    deadline = Deadline(f"a bootstrap of {n_boot:,} resamples", UsageError, advice)
    report = loop_progress("bootstrap resamples", n_boot, progress)
    for start in range(0, n_boot, chunk):
        deadline.check()
        b = min(chunk, n_boot - start)
        batches = [
            a[g.integers(0, a.shape[0], size=(b, a.shape[0]))]
            for a, g in zip(arrays, generators, strict=True)
        ]
        out[start : start + b] = statistic(*batches)
        report(start + b, n_boot)
    return out


def jackknife_values(samples: Sequence[np.ndarray], statistic: Statistic) -> np.ndarray:
    """Leave-one-out values of ``statistic``: each observation of each sample left out in turn.

    Returns an array of length ``sum(n_g)`` (as ``scipy.stats.bootstrap`` does for several samples).

    Memory is linear in n: the leave-one-out rows are built and evaluated a chunk at a time (each
    row's value is the same as if all rows were built at once). When the direct computation would
    gather more than :data:`JACKKNIFE_DIRECT_ELEMENTS` values and ``statistic`` has an exact
    ``leave_one_out(g, samples)`` formula, that O(n) formula is used instead.

    Raises
    ------
    UsageError
        The direct computation would gather more than :data:`JACKKNIFE_MAX_ELEMENTS` values and the
        statistic has no exact formula (use the percentile interval instead of BCa).
    """
    arrays = _as_samples(samples)
    gathered = sum(float(a.shape[0]) * (a.shape[0] - 1) * (a.size // a.shape[0]) for a in arrays)
    exact = getattr(statistic, "leave_one_out", None)
    if gathered > JACKKNIFE_DIRECT_ELEMENTS and exact is not None:
        return np.concatenate([np.asarray(exact(g, arrays), dtype=float) for g in range(len(arrays))])
    if gathered > JACKKNIFE_MAX_ELEMENTS:
        raise UsageError(
            f"the BCa jackknife of this statistic over {sum(a.shape[0] for a in arrays):,} observations "
            f"would evaluate {gathered:.3g} values (quadratic in n), more than trialkit's limit of "
            f"{JACKKNIFE_MAX_ELEMENTS:.3g}; use method='percentile'"
        )
    deadline = Deadline("the BCa jackknife", UsageError, "use method='percentile'")
    values = []
    for g, a in enumerate(arrays):
        n = a.shape[0]
        width = a.size // n
        others = sum(o.size for h, o in enumerate(arrays) if h != g)
        # per row: the gathered values and their int64 index, and the statistic's temporaries
        chunk = rows_per_chunk(24.0 * ((n - 1) * width + others))
        positions = np.arange(n - 1)
        for start in range(0, n, chunk):
            deadline.check()
            rows = np.arange(start, min(n, start + chunk))
            # row i lists every index except i, in order
            loo = positions[None, :] + (positions[None, :] >= rows[:, None])
            batches = [
                a[loo] if h == g else np.broadcast_to(other[None], (rows.size, *other.shape))
                for h, other in enumerate(arrays)
            ]
            values.append(np.asarray(statistic(*batches), dtype=float))
    return np.concatenate(values)


def bootstrap_ci(
    samples: Sequence[np.ndarray],
    statistic: Statistic,
    *,
    n_boot: int,
    seed: int,
    ci_level: float = 0.95,
    method: str = "bca",
    replicates: np.ndarray | None = None,
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
    replicates
        The replicates ``bootstrap_distribution(samples, statistic, n_boot=n_boot, seed=seed)``
        returns, when the caller has them already (an estimation plot draws them): not drawn again.

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
    _check_counts(n_boot, seed)
    estimate = float(statistic(*[a[None] for a in arrays])[0])
    alpha = (1 - ci_level) / 2
    common = dict(
        estimate=estimate, ci_level=ci_level, method=method, n_boot=int(n_boot), seed=int(seed)
    )
    if not np.isfinite(estimate):
        return BootstrapResult(
            ci_low=np.nan, ci_high=np.nan, std_error=np.nan, **(common | {"estimate": np.nan}),
            note="the statistic is undefined for the observed samples; no bootstrap",
        )
    if replicates is None:
        boot = bootstrap_distribution(arrays, statistic, n_boot=n_boot, seed=seed)
    else:
        boot = np.asarray(replicates, dtype=float)
        if boot.shape != (n_boot,):
            raise UsageError(f"replicates must hold the n_boot = {n_boot} replicates, not shape {boot.shape}")
    finite = np.isfinite(boot)
    if not finite.all():
        return BootstrapResult(
            ci_low=np.nan,
            ci_high=np.nan,
            std_error=np.nan,
            **common,
            note=f"{int((~finite).sum())} of {n_boot} bootstrap replicates are undefined; no interval",
        )
    with np.errstate(over="ignore", invalid="ignore"):
        std_error = float(boot.std(ddof=1))
    if not np.isfinite(std_error):
        return BootstrapResult(
            ci_low=np.nan, ci_high=np.nan, std_error=np.nan, **common,
            note="the bootstrap replicates are outside the floating-point range (overflow); no interval",
        )
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
        if not np.all(np.isfinite(jack)):
            return BootstrapResult(
                ci_low=np.nan,
                ci_high=np.nan,
                std_error=std_error,
                **common,
                note=f"{int((~np.isfinite(jack)).sum())} leave-one-out values of the statistic are undefined; BCa undefined",
            )
        with np.errstate(over="ignore", invalid="ignore"):
            u = jack.mean() - jack
            denom = 6.0 * np.sum(u**2) ** 1.5
            accel = float(np.sum(u**3) / denom) if denom > 0 else 0.0
        if not np.isfinite(accel):
            return BootstrapResult(
                ci_low=np.nan, ci_high=np.nan, std_error=std_error, **common,
                note="the BCa acceleration is outside the floating-point range; BCa undefined",
            )
        z = special.ndtri(levels)
        levels = special.ndtr(z0 + (z0 + z) / (1 - accel * (z0 + z)))
    low, high = np.quantile(boot, levels)
    return BootstrapResult(ci_low=float(low), ci_high=float(high), std_error=std_error, **common)
