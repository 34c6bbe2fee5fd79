"""Benchmark: packets split by object lane before decoding, against decode-then-split.

A simulated night is replayed as packets (``replay_packets``, the path Kafka messages and tarball
members take) on a 2-worker ``local_cluster`` into a copy of a store that already holds the
previous night (the live case). Two dispatch modes, same process, same cluster, same input:

``decode-then-split`` (baseline)  one task decodes the batch, ``select_lane`` splits the decoded
                                  batch, each lane's share is shipped to the lane's worker
``routed``                        the client reads each packet's object id (``alerce.io.peek``)
                                  and sends each lane its raw packets; the lane decodes them

Runs alternate (baseline, routed, baseline, ...) so that a drift in the machine's speed hits both;
the ratio compares the medians. Worker CPU per alert comes from the worker processes' user and
system times.

Usage::

    python benchmarks/bench_lane_routing.py [--n-objects 6000] [--rounds 3] [--batch-size 1000]
"""

from __future__ import annotations

import argparse
import atexit
import shutil
import statistics
import tempfile
import time
import warnings
from pathlib import Path


def worker_cpu_seconds() -> float:
    """User + system seconds so far of this process's child processes (the Dask workers)."""
    import psutil

    total = 0.0
    for child in psutil.Process().children(recursive=True):
        try:
            total += sum(child.cpu_times()[:2])
        except psutil.Error:
            continue
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n-objects", type=int, default=6000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=1000)
    args = parser.parse_args()
    warnings.simplefilter("ignore")

    from distributed import Client

    from alerce.io import iter_packets
    from alerce.simulate import simulate
    from alerce.streams.cluster import local_cluster, warm_up
    from alerce.streams.replay import replay, replay_packets

    tmp = Path(tempfile.mkdtemp(prefix="alerce-bench-routing-"))
    atexit.register(shutil.rmtree, tmp, True)
    simulate(tmp / "sim", n_objects=args.n_objects, seed=6, nights=2)
    history, night = sorted(p for p in (tmp / "sim").iterdir() if p.is_dir())
    packets = list(iter_packets(sorted(str(p) for p in night.glob("*.avro"))))
    print(f"simulated {args.n_objects} objects; replaying {len(packets)} alerts of night {night.name} "
          f"onto a store holding night {history.name}")
    results: dict[bool, list[tuple[float, float]]] = {False: [], True: []}
    with local_cluster(2) as cluster, Client(cluster, set_as_default=False) as client:
        warm_up(client)
        base = tmp / "history.db"
        replay(str(history), store=f"sqlite:///{base}", client=client)
        for r in range(args.rounds):
            for routed in (False, True):
                db = tmp / f"run_{r}_{routed}.db"
                shutil.copy(base, db)
                cpu0, t0 = worker_cpu_seconds(), time.perf_counter()
                s = replay_packets(packets, store=f"sqlite:///{db}", client=client,
                                   batch_size=args.batch_size, route_packets=routed)
                wall, cpu = time.perf_counter() - t0, worker_cpu_seconds() - cpu0
                assert s.alerts == len(packets) and not s.errors, s.errors[:1]
                results[routed].append((s.alerts / wall, cpu / s.alerts * 1e3))
                print(f"round {r + 1} {'routed' if routed else 'decode-then-split':17s} {s.alerts / wall:6,.0f} "
                      f"alerts/s  worker CPU {cpu / s.alerts * 1e3:.2f} ms/alert")
                db.unlink()
    med = {k: (statistics.median(x for x, _ in v), statistics.median(c for _, c in v)) for k, v in results.items()}
    print(f"median decode-then-split: {med[False][0]:,.0f} alerts/s, {med[False][1]:.2f} ms/alert of worker CPU")
    print(f"median routed:            {med[True][0]:,.0f} alerts/s, {med[True][1]:.2f} ms/alert of worker CPU")
    print(f"ratio routed / decode-then-split: {med[True][0] / med[False][0]:.2f}x alerts/s, "
          f"{med[False][1] / med[True][1]:.2f}x less worker CPU per alert")


if __name__ == "__main__":
    main()
