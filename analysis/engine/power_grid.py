"""Simulation-based power over a grid of designs, one Dask task per grid point.

A grid is written ``d=0.3,0.5 n=50,100 r=0.5 dropout=0,0.2`` (each name once; every combination,
the last name varying fastest). Point ``i`` of the grid is simulated with the seed
``numpy.random.SeedSequence(seed).spawn(len(grid))[i]`` (its first 32-bit word), so every point's
result depends only on the recorded seed and its position, never on the number of workers or on
which engine ran it: the pandas engine runs the same points serially with the same seeds.

Each point is :func:`analysis.stats.power.simulate_power_ancova` (follow-up ~ arm + baseline, with
pre-post correlation ``r``) at ``round(n (1 - dropout))`` analysed participants per arm (dropout
missing completely at random, analysed as complete cases).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from analysis.core.errors import UsageError

GRID_NAMES = {"d": "standardised effect size", "n": "participants per arm (enrolled)",
              "r": "baseline-follow-up correlation", "dropout": "share lost before follow-up"}
DEFAULTS = {"r": 0.0, "dropout": 0.0}


@dataclass(frozen=True)
class GridPoint:
    """One design of the grid: its position, values and the seed derived for it."""

    index: int
    d: float
    n: int
    r: float
    dropout: float
    seed: int

    @property
    def n_analysed(self) -> int:
        return int(round(self.n * (1.0 - self.dropout)))


def parse_grid(specs: list[str], seed: int) -> list[GridPoint]:
    """The grid points of ``["d=0.3,0.5", "n=50,100", ...]`` with their derived seeds.

    Examples
    --------
    >>> points = parse_grid(["d=0.3,0.5", "n=50"], seed=1)
    >>> [(p.index, p.d, p.n, p.dropout) for p in points]
    [(0, 0.3, 50, 0.0), (1, 0.5, 50, 0.0)]
    """
    import numpy as np

    values: dict[str, list[float]] = {}
    for spec in specs:
        name, sep, text = spec.partition("=")
        name = name.strip().lower()
        if not sep or name not in GRID_NAMES:
            raise UsageError(f"grid entry {spec!r} must be NAME=V1,V2,... with NAME one of {', '.join(GRID_NAMES)}")
        if name in values:
            raise UsageError(f"grid name '{name}' is given twice")
        try:
            values[name] = [float(v) for v in text.split(",") if v.strip()]
        except ValueError:
            raise UsageError(f"grid entry {spec!r}: the values must be numbers separated by commas") from None
        if not values[name]:
            raise UsageError(f"grid entry {spec!r} has no values")
    for required in ("d", "n"):
        if required not in values:
            raise UsageError(f"the grid needs '{required}=...' ({GRID_NAMES[required]})")
    for n in values["n"]:
        if n != int(n) or n < 3:
            raise UsageError(f"grid n must be whole numbers >= 3, found {n:g}")
    for share in values.get("dropout", []):
        if not 0 <= share < 1:
            raise UsageError(f"grid dropout must be in [0, 1), found {share:g}")
    names = list(values)
    combos = list(itertools.product(*(values[name] for name in names)))
    children = np.random.SeedSequence(seed).spawn(len(combos))
    points = []
    for index, (combo, child) in enumerate(zip(combos, children, strict=True)):
        given = {**DEFAULTS, **dict(zip(names, combo, strict=True))}
        points.append(GridPoint(index, float(given["d"]), int(given["n"]), float(given["r"]), float(given["dropout"]),
                                int(child.generate_state(1, dtype=np.uint32)[0])))
    return points


def simulate_point(point: GridPoint, n_sims: int, alpha: float) -> dict:
    """Simulated power at one grid point (runs on a worker, or serially)."""
    from analysis.stats.power import simulate_power_ancova

    if point.n_analysed < 3:
        raise UsageError(f"grid point {point.index}: fewer than 3 participants per arm remain after dropout")
    sim = simulate_power_ancova(point.d, point.n_analysed, r=point.r, n_sims=n_sims, seed=point.seed, alpha=alpha)
    return {"grid_index": point.index, "d": point.d, "n_per_arm": point.n, "r": point.r, "dropout": point.dropout,
            "n_analysed_per_arm": point.n_analysed, "power": sim.power,
            "mc_se": sim.mc_se, "mean_estimate": sim.mean_estimate,
            "n_sims": n_sims, "seed": point.seed}


def power_grid(points: list[GridPoint], n_sims: int, alpha: float = 0.05, client=None):
    """Every grid point's simulated power, serially (``client`` None) or as one Dask task each.

    Returns a frame in grid order; identical whichever way it ran.
    """
    import pandas as pd

    if client is None:
        rows = [simulate_point(p, n_sims, alpha) for p in points]
    else:
        futures = client.map(simulate_point, points, n_sims=n_sims, alpha=alpha, pure=False)
        rows = client.gather(futures)
    return pd.DataFrame(rows)


def run_power_grid(grid: str, n_sims: int, seed: int, alpha: float = 0.05, *, engine: str = "pandas",
                   scheduler: str | None = None):
    """``trialkit power --simulate N --grid "d=0.3,0.5 n=50,100"``: parse, run on the engine, and
    return ``(frame, where)``, ``where`` saying which engine (and scheduler) ran it."""
    if n_sims < 1:
        raise UsageError("--grid needs --simulate N (the simulated trials per grid point)")
    points = parse_grid(grid.replace(";", " ").split(), seed)
    if engine != "dask":
        return power_grid(points, n_sims, alpha), {"engine": "pandas"}
    from analysis.engine.cluster import connect

    with connect(scheduler) as (client, info):
        frame = power_grid(points, n_sims, alpha, client=client)
    return frame, {"engine": "dask", "scheduler": info.address, "cluster": info.kind, "workers": info.workers}
