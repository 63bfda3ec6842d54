"""BCa bootstrap CI of Hedges' g, two arms of 160, 10,000 resamples: trialkit vs pingouin vs bare NumPy.

Prints, from one run on the same data: trialkit's time (BCa, exact J, chunked), pingouin's
``compute_bootci(x, y, func="hedges", method="bca", n_boot=10000)`` time (the issue named
``method="cper"``, pingouin's old bias-corrected percentile; pingouin 0.7 replaced it with
``"bca"``, which is also the like-for-like comparison), and a bare vectorised
NumPy percentile bootstrap (the lower bound: no BCa, no chunking, no checks), with the ratios.
Then trialkit at 200,000 resamples with its peak traced memory (tracemalloc), to show the chunking
bounds memory. Run: ``.venv/bin/python benchmarks/bootstrap.py``.
"""

from __future__ import annotations

import time
import tracemalloc

import numpy as np
import pingouin as pg

from analysis.stats.effects import hedges_g_bootstrap

N, N_BOOT, SEED, REPEATS = 160, 10_000, 20231112, 5


def best_of(fn, repeats: int = REPEATS) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def bare_numpy(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    rng = np.random.default_rng(SEED)
    bx = x[rng.integers(0, N, size=(N_BOOT, N))]
    by = y[rng.integers(0, N, size=(N_BOOT, N))]
    sp = np.sqrt(
        (bx.var(axis=1, ddof=1) * (N - 1) + by.var(axis=1, ddof=1) * (N - 1)) / (2 * N - 2)
    )
    g = (1 - 3 / (4 * (2 * N - 2) - 1)) * (bx.mean(axis=1) - by.mean(axis=1)) / sp
    low, high = np.percentile(g, [2.5, 97.5])
    return float(low), float(high)


def main() -> None:
    rng = np.random.default_rng(1)
    x, y = rng.normal(0.5, 1.0, N), rng.normal(0.0, 1.0, N)

    ours_t, ours = best_of(lambda: hedges_g_bootstrap(x, y, n_boot=N_BOOT, seed=SEED))
    bare_t, bare = best_of(lambda: bare_numpy(x, y))
    ping_t, ping = best_of(
        lambda: pg.compute_bootci(
            x, y, func="hedges", method="bca", n_boot=N_BOOT, seed=SEED, decimals=6
        ),
        repeats=2,
    )

    print(f"Hedges' g, two arms of {N}, {N_BOOT:,} resamples (best of repeated runs)")
    print(
        f"  trialkit BCa (exact J, chunked) : {ours_t * 1e3:8.1f} ms  g = {ours.estimate:.4f}  CI [{ours.ci_low:.4f}, {ours.ci_high:.4f}]"
    )
    print(
        f"  pingouin compute_bootci bca     : {ping_t * 1e3:8.1f} ms  CI [{ping[0]:.4f}, {ping[1]:.4f}]"
    )
    print(
        f"  bare NumPy percentile (bound)   : {bare_t * 1e3:8.1f} ms  CI [{bare[0]:.4f}, {bare[1]:.4f}]"
    )
    print(f"  pingouin / trialkit = {ping_t / ours_t:6.1f}x   (target >= 10x)")
    print(f"  trialkit / bare     = {ours_t / bare_t:6.2f}x   (target <= 2x)")

    tracemalloc.start()
    start = time.perf_counter()
    big = hedges_g_bootstrap(x, y, n_boot=200_000, seed=SEED)
    elapsed = time.perf_counter() - start
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(
        f"  trialkit BCa, 200,000 resamples : {elapsed:8.2f} s   peak traced memory {peak / 2**20:.0f} MB"
        f"  CI [{big.ci_low:.4f}, {big.ci_high:.4f}]"
    )


if __name__ == "__main__":
    main()
