"""Finding or starting the Dask cluster an entry point runs on."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator


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
        Shape of the :func:`local_cluster` started (and closed on exit) when neither ``client``
        nor ``scheduler`` is given and no default client exists.

    Notes
    -----
    Resolution order: ``client`` argument, ``scheduler`` address, the default ``distributed``
    client of the session, a new ``LocalCluster``.
    """
    from distributed import Client, default_client

    if client is not None:
        yield client
        return
    if scheduler:
        from alerce.streams.gateway import check_scheduler_address

        check_scheduler_address(scheduler)
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
    with local_cluster(n_workers, threads_per_worker=threads_per_worker, processes=processes) as cluster, \
            Client(cluster, set_as_default=False) as c:
        yield c


#: glibc ``malloc`` settings of the worker processes :func:`local_cluster` starts. Dask's nanny
#: sets ``MALLOC_TRIM_THRESHOLD_=65536`` by default to hand freed memory back to the OS at once;
#: setting any such variable also turns off glibc's adaptive mmap threshold, so every array over
#: 128 KiB becomes a fresh ``mmap`` whose pages fault in zeroed, and is unmapped on release. The
#: pipeline allocates and frees many such arrays per batch (frames of light curves). Measured
#: (docs/benchmarks.md): in one process Dask's setting made 3.5x the page faults and 1.8x the
#: system time; in the workers of a replay, 2.3x the page faults. These values are glibc's own
#: adaptive steady state: the mmap threshold at its 32 MiB maximum, the trim threshold twice that.
WORKER_MALLOC_ENVIRON = {"MALLOC_MMAP_THRESHOLD_": "33554432", "MALLOC_TRIM_THRESHOLD_": "67108864"}


def local_cluster(n_workers: int | None = None, *, threads_per_worker: int = 1, processes: bool = True,
                  **kwargs):
    """A ``distributed.LocalCluster`` shaped for the pipeline (close it, or use it in ``with``).

    Parameters
    ----------
    n_workers : int, optional
        Worker processes (default ``min(cpu_count, 4)``).
    threads_per_worker : int
        Threads per worker (1 is best: decoding, pandas and the store writes hold the GIL).
    processes : bool
        Worker processes (True) or threads of this process.
    **kwargs
        Passed to ``LocalCluster`` (``env`` is merged with the settings below).

    Notes
    -----
    Worker processes start with :data:`WORKER_MALLOC_ENVIRON` (set before they spawn, where
    glibc reads it) and ``ALERCE_NUMBA_THREADS = cores // (n_workers * threads_per_worker)``: the
    numba threads of each task (see :func:`alerce.streams.science.numba_threads`).
    """
    import os

    import dask
    from distributed import LocalCluster

    from alerce.streams.science import NUMBA_THREADS_ENV

    cores = os.cpu_count() or 1
    if n_workers is None:
        n_workers = max(1, min(cores, 4))
    kwargs.setdefault("dashboard_address", None)
    if processes:
        # the numba kernels of a task may use the cores the worker threads leave free
        numba_threads = max(1, cores // (n_workers * threads_per_worker))
        kwargs["env"] = {NUMBA_THREADS_ENV: str(numba_threads), **kwargs.get("env", {})}
    spawn_env = {f"distributed.nanny.pre-spawn-environ.{k}": v for k, v in WORKER_MALLOC_ENVIRON.items()}
    with dask.config.set(spawn_env):  # read when the nannies are created, inside LocalCluster()
        return LocalCluster(n_workers=n_workers, threads_per_worker=threads_per_worker,
                            processes=processes, **kwargs)


def _warm_up_worker(features: bool = True) -> dict[str, float]:
    """Compile (or load from the numba cache) the hot kernels in this process; return timings."""
    import time

    timings = {}
    if features:
        t0 = time.perf_counter()
        from alerce.features import extract_features

        extract_features(_synthetic_detections(), None)
        timings["features"] = time.perf_counter() - t0
    return timings


def _synthetic_detections():
    """Two bands of a small sinusoidal light curve with every column the feature step reads."""
    import numpy as np
    import pandas as pd

    n = 24
    t = 58000.0 + np.arange(n) * 1.7
    mag = 18.0 + 0.3 * np.sin(2 * np.pi * t / 0.61)
    return pd.DataFrame({
        "oid": "warmup", "candid": np.arange(n), "mjd": t, "fid": np.tile([1, 2], n // 2),
        "magpsf": mag, "sigmapsf": 0.05, "magpsf_corr": mag, "sigmapsf_corr": 0.05,
        "sigmapsf_corr_ext": 0.05, "corrected": False, "dubious": False, "isdiffpos": 1,
        "rb": 0.9, "ra": 10.0, "dec": 20.0, "has_stamp": True,
    })


def warm_up(client, *, features: bool = True) -> dict[str, dict[str, float]]:
    """Compile the numba kernels once on every worker before the first batch.

    Kernels are compiled with ``cache=True``: the first worker on a machine writes the cache
    (``NUMBA_CACHE_DIR`` if set), later ones load it in a fraction of the time. Returns the
    per-worker timings in seconds.
    """
    return client.run(_warm_up_worker, features)
