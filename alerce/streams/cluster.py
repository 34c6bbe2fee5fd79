"""Finding or starting the Dask cluster an entry point runs on."""

from __future__ import annotations

import contextlib
from typing import Iterator


@contextlib.contextmanager
def dask_client(client=None, *, scheduler: str | None = None, n_workers: int | None = None,
                threads_per_worker: int = 1, processes: bool = True) -> Iterator:
    """Yield a ``distributed.Client`` for a pipeline run.

    Parameters
    ----------
    client : distributed.Client, optional
        Used as is and left open (e.g. ``GatewayCluster.get_client()``).
    scheduler : str, optional
        Address of a running scheduler (``tcp://host:8786``) to connect to; closed on exit.
    n_workers, threads_per_worker, processes
        Shape of the ``LocalCluster`` started (and closed on exit) when neither ``client`` nor
        ``scheduler`` is given and no default client exists.

    Notes
    -----
    Resolution order: ``client`` argument, ``scheduler`` address, the default ``distributed``
    client of the session, a new ``LocalCluster``.
    """
    from distributed import Client, LocalCluster, default_client

    if client is not None:
        yield client
        return
    if scheduler:
        with Client(scheduler, set_as_default=False) as c:
            yield c
        return
    try:
        existing = default_client()
    except ValueError:
        existing = None
    if existing is not None:
        yield existing
        return
    import os

    if n_workers is None:
        n_workers = max(1, min(os.cpu_count() or 1, 4))
    with LocalCluster(
        n_workers=n_workers,
        threads_per_worker=threads_per_worker,
        processes=processes,
        dashboard_address=None,
    ) as cluster, Client(cluster, set_as_default=False) as c:
        yield c
