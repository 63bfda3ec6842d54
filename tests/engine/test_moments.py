"""Mergeable moments: Chan et al.'s parallel formula against two-pass NumPy on the whole data."""

from __future__ import annotations

import numpy as np

from analysis.engine.moments import Moments, merge_all, merge_keyed


def test_merged_moments_equal_the_whole_data():
    rng = np.random.default_rng(3)
    rows = rng.normal([5.0, -2.0, 100.0], [1.0, 3.0, 0.5], size=(1000, 3))
    pieces = np.array_split(rows, [7, 8, 400, 401, 990])  # uneven, one single row, one empty-ish
    merged = merge_all([Moments.of(p) for p in pieces])
    centred = rows - rows.mean(axis=0)
    assert merged.n == 1000
    np.testing.assert_allclose(merged.mean, rows.mean(axis=0), rtol=1e-13)
    np.testing.assert_allclose(merged.comoment, centred.T @ centred, rtol=1e-11)
    np.testing.assert_allclose(merged.covariance, np.cov(rows, rowvar=False), rtol=1e-11)
    np.testing.assert_array_equal(merged.low, rows.min(axis=0))
    np.testing.assert_array_equal(merged.high, rows.max(axis=0))


def test_large_mean_small_spread_keeps_its_digits():
    # mean / SD = 1e8: raw sums of squares (1e20 against a sum of squared deviations of 1e4) lose
    # every digit; centred moments merged by Chan's formula keep them
    rng = np.random.default_rng(4)
    x = 1e8 + rng.normal(0, 1.0, 10_000)
    merged = merge_all([Moments.of(p[:, None]) for p in np.array_split(x, 13)])
    two_pass = x.var(ddof=1)
    assert abs(merged.covariance[0, 0] - two_pass) <= 1e-8 * two_pass
    naive = (np.sum(x * x) - x.size * x.mean() ** 2) / (x.size - 1)
    assert abs(naive - two_pass) > 1e-2 * two_pass


def test_empty_parts_and_keyed_merge():
    empty = Moments.empty(1)
    one = Moments.of(np.array([[2.0], [4.0]]))
    assert empty.merge(one) is one and one.merge(empty) is one
    merged = merge_keyed([{"a": one, "n": 2}, {"a": Moments.of(np.array([[6.0]])), "n": 3}])
    assert merged["n"] == 5 and merged["a"].n == 3 and float(merged["a"].mean[0]) == 4.0
    assert float(merged["a"].comoment[0, 0]) == 8.0  # (2-4)^2 + 0 + (6-4)^2
