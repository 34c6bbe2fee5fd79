"""Benchmark: end-to-end replay of a simulated night on a 2-worker LocalCluster.

Baseline, run in the same process on the same alerts: the same node functions called sequentially
in this one process (``read_alerts`` + ``run_batch``), no Dask. The ratio shows what the streamz
graph, the per-object lanes and the two workers buy on this machine.

Usage::

    python benchmarks/bench_replay.py [--n-objects 2000] [--batch-size 1000] [--stamps]
"""

from __future__ import annotations

import argparse
import atexit
import shutil
import tempfile
import time
import warnings
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n-objects", type=int, default=2000)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--stamps", action="store_true", help="also run the stamp classifier")
    args = parser.parse_args()
    warnings.simplefilter("ignore")

    from distributed import Client

    from alerce.io import read_alerts
    from alerce.simulate import simulate
    from alerce.store import Store
    from alerce.streams.cluster import _warm_up_worker, local_cluster
    from alerce.streams.replay import replay
    from alerce.streams.steps import PipelineConfig, run_batch

    tmp = Path(tempfile.mkdtemp(prefix="alerce-bench-replay-"))
    atexit.register(shutil.rmtree, tmp, True)  # simulated nights and stores take GBs
    t0 = time.perf_counter()
    sim = simulate(tmp / "night", n_objects=args.n_objects, seed=11, nights=1)
    print(f"simulated: {sim}  ({time.perf_counter() - t0:.1f} s)")

    # baseline: the same node functions, sequentially, in this process
    _warm_up_worker(True)
    url = f"sqlite:///{tmp / 'baseline.db'}"
    Store(url).close()
    config = PipelineConfig(store_url=url, stamp_classifier=args.stamps)
    t0 = time.perf_counter()
    files = sorted(str(p) for p in (tmp / "night").rglob("*.avro"))
    n_alerts = 0
    for i in range(0, len(files), args.batch_size):
        batch = read_alerts(files[i:i + args.batch_size], keep_stamps=args.stamps)
        summary = run_batch(batch, config)
        assert not summary.errors, summary.errors[:1]
        n_alerts += summary.alerts
    base = time.perf_counter() - t0
    print(f"baseline (1 process, no Dask): {n_alerts} alerts in {base:.1f} s = {n_alerts / base:,.0f} alerts/s")

    with local_cluster(args.workers) as cluster, \
            Client(cluster, set_as_default=False) as client:
        # warm the workers once (numba cache), as a long-running deployment would be
        replay(files[:50], store=f"sqlite:///{tmp / 'warm.db'}", client=client, batch_size=50,
               stamp_classifier=args.stamps)
        t0 = time.perf_counter()
        s = replay(str(tmp / "night"), store=f"sqlite:///{tmp / 'replay.db'}", client=client,
                   batch_size=args.batch_size, stamp_classifier=args.stamps)
        wall = time.perf_counter() - t0
    print(f"replay ({args.workers} workers): {s.alerts} alerts in {wall:.1f} s = {s.alerts / wall:,.0f} alerts/s")
    print(f"ratio replay / baseline: {base / wall:.2f}x")
    print(f"detections stored per second: {s.detections / wall:,.0f}")


if __name__ == "__main__":
    main()
