"""Engines beyond one machine: the Dask engine (``trialkit run PLAN --engine dask``).

* :mod:`~analysis.engine.cluster`: which cluster (``--scheduler``, ``DASK_SCHEDULER_ADDRESS``, or
  a local cluster of 2 worker processes) and the lazy Dask import.
* :mod:`~analysis.engine.partitions`: a directory of Parquet files read, validated and derived
  partition by partition with the pandas engine's functions; failures gathered into one table.
* :mod:`~analysis.engine.moments`: mergeable moments (Chan et al.'s parallel formula).
* :mod:`~analysis.engine.summaries`: the per-partition sufficient statistics (map).
* :mod:`~analysis.engine.tables`: result tables from the merged statistics (finish).
* :mod:`~analysis.engine.run`: the run, its outputs and manifest.

Nothing here imports Dask at module level.
"""

ENGINES = ("pandas", "dask")
