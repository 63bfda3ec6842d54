"""Which Dask cluster a run uses, and connecting to it.

``--scheduler ADDRESS`` wins, then the ``DASK_SCHEDULER_ADDRESS`` variable (what dask-jobqueue and
``dask scheduler`` print; an HPC cluster is used the same way), otherwise a
``distributed.LocalCluster`` of 2 worker processes with one thread each, started and closed by
the run. Dask is imported here only, inside the functions, so ``import analysis`` and
``trialkit --help`` never load it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from analysis.core.errors import UsageError

INSTALL_HINT = "the dask engine needs Dask: pip install 'trialkit[dask]'"
LOCAL_WORKERS = 2


def require_dask() -> None:
    """Raise :class:`UsageError` (exit 2) with the install command when Dask is not installed."""
    try:
        import dask  # noqa: F401
        import distributed  # noqa: F401
    except ImportError:
        raise UsageError(INSTALL_HINT) from None


def scheduler_address(option: str | None) -> str | None:
    """The scheduler to connect to: the option, else ``DASK_SCHEDULER_ADDRESS``, else None (local).

    Examples
    --------
    >>> scheduler_address("tcp://10.0.0.5:8786")
    'tcp://10.0.0.5:8786'
    """
    if option:
        return option
    return os.environ.get("DASK_SCHEDULER_ADDRESS") or None


@dataclass(frozen=True)
class ClusterInfo:
    """What the run used, for the manifest: ``local`` or ``existing`` and the scheduler address."""

    kind: str
    address: str
    workers: int


@contextmanager
def connect(option: str | None = None) -> Iterator[tuple[object, ClusterInfo]]:
    """Yield a ``distributed.Client`` and :class:`ClusterInfo`; a local cluster is closed after."""
    require_dask()
    from distributed import Client, LocalCluster

    address = scheduler_address(option)
    if address is not None:
        try:
            client = Client(address, timeout="20s")
        except (OSError, TimeoutError) as exc:
            raise UsageError(f"cannot reach the Dask scheduler at {address}: {exc}") from None
        try:
            workers = len(client.scheduler_info().get("workers", {}))
            yield client, ClusterInfo("existing", address, workers)
        finally:
            client.close()
        return
    cluster = LocalCluster(
        n_workers=LOCAL_WORKERS, threads_per_worker=1, processes=True, dashboard_address=":0"
    )
    client = Client(cluster)
    try:
        yield client, ClusterInfo("local", str(cluster.scheduler_address), LOCAL_WORKERS)
    finally:
        client.close()
        cluster.close()
