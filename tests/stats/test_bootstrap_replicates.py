"""bootstrap_ci given the replicates it would draw gives the same interval without drawing them."""

import numpy as np
import pytest

from analysis.core.errors import UsageError
from analysis.stats.effects.bootstrap import bootstrap_ci, bootstrap_distribution


def _difference(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return a.mean(axis=-1) - b.mean(axis=-1)


def test_given_replicates_give_the_same_interval_and_are_checked():
    rng = np.random.default_rng(2)
    samples = [rng.normal(1.0, 1.0, 30), rng.normal(0.0, 2.0, 25)]
    drawn = bootstrap_ci(samples, _difference, n_boot=500, seed=9)
    replicates = bootstrap_distribution(samples, _difference, n_boot=500, seed=9)
    assert bootstrap_ci(samples, _difference, n_boot=500, seed=9, replicates=replicates) == drawn
    # other replicates move the interval: they are used, not ignored
    other = bootstrap_ci(samples, _difference, n_boot=500, seed=9, replicates=replicates + 1.0)
    assert other.ci_low != drawn.ci_low
    with pytest.raises(UsageError, match="n_boot = 500"):
        bootstrap_ci(samples, _difference, n_boot=500, seed=9, replicates=replicates[:10])
