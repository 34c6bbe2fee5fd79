"""Benchmark: the live pipeline on a local Kafka-protocol broker (tansu) and a 2-worker LocalCluster.

1. Kafka consume MB/s: our ``AlertConsumer`` (offset tracking, packets) against a plain
   confluent-kafka consumer loop over the same topic, in the same run.
2. Sustained throughput and latency: once the pipeline is running (kernels warmed up, consumer
   group joined, ``--warm-up`` alerts stored), simulated alerts are produced at ``--rate``
   alerts/s for ``--seconds``; latency runs from each message's produce timestamp to the moment
   its batch is stored (and, with classifiers, classified): p50/p95/p99.
3. Capacity: ``--burst`` alerts produced at once and drained as fast as the pipeline can.

Usage::

    python benchmarks/bench_live.py [--n-objects 6000] [--history-nights 2] [--rate 350] [--seconds 30]
        [--store postgresql] [--no-features] [--classifiers] [--workers 2] [--threads 1] [--lanes N]
        [--max-batches 1] [--linger 1.0]

Besides the rate over the whole run it prints the rate stored while alerts are produced (from 10 s in)
and how latency drifts from the first to the last fifth of the alerts: a pipeline that keeps up holds both
steady; one that falls behind grows its latency by the backlog over its rate.
"""

from __future__ import annotations

import argparse
import atexit
import shutil
import sys
import tempfile
import threading
import time
import uuid
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))


def consume_all(bootstrap: str, topic: str, ours: bool, expected: int) -> tuple[float, int]:
    """Seconds and bytes to read ``expected`` messages with our consumer or a plain one."""
    from confluent_kafka import Consumer

    from alerce.streams.kafka import AlertConsumer

    group = f"bench-{uuid.uuid4().hex[:6]}"
    settings = {"session_timeout_ms": 6000, "heartbeat_interval_ms": 500}
    got = nbytes = 0
    if ours:
        c = AlertConsumer(bootstrap, topic, group, **settings)
        t0 = None
        while got < expected:
            packets, refs = c.poll_batch(1000, 1.0)
            if packets and t0 is None:
                t0 = time.perf_counter()
            got += len(packets)
            nbytes += sum(len(p.payload) for p in packets)
            c.done(refs)
        elapsed = time.perf_counter() - t0
        c.commit()
        c.close()
    else:
        c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "auto.offset.reset": "earliest",
                      "enable.auto.commit": False, "session.timeout.ms": 6000,
                      "heartbeat.interval.ms": 500})
        c.subscribe([topic])
        t0 = None
        while got < expected:
            msgs = c.consume(1000, 1.0)
            if msgs and t0 is None:
                t0 = time.perf_counter()
            for m in msgs:
                if m.error() is None:
                    got += 1
                    nbytes += len(m.value())
        elapsed = time.perf_counter() - t0
        c.close()
    return elapsed, nbytes


def produce_at_rate(bootstrap: str, topic: str, payloads: list[bytes], rate: float) -> None:
    """Produce ``payloads`` in chunks of 0.1 s worth of alerts, paced at ``rate`` alerts/s."""
    from alerce.streams.kafka import produce_packets

    t_start = time.perf_counter()
    chunk = max(1, int(rate / 10))
    for i in range(0, len(payloads), chunk):
        produce_packets(bootstrap, topic, payloads[i:i + chunk])
        delay = t_start + (i + chunk) / rate - time.perf_counter()
        if delay > 0:
            time.sleep(delay)


def cpu_seconds() -> dict[str, tuple[float, float]]:
    """CPU seconds (user, system) so far of this process, its Dask workers and the servers."""
    import psutil

    me = psutil.Process()
    out = {"main (consumer, scheduler, producer)": tuple(me.cpu_times()[:2])}
    for child in me.children(recursive=True):
        try:
            name = child.name()
            t = tuple(child.cpu_times()[:2])
        except psutil.Error:
            continue
        key = "broker (tansu)" if "tansu" in name else (
            "postgresql" if "postgres" in name else "dask workers")
        user, system = out.get(key, (0.0, 0.0))
        out[key] = (user + t[0], system + t[1])
    return out


def wait_stored(pipe, n: int, timeout: float = 600.0) -> float:
    """Wait until the pipeline has stored ``n`` alerts; return ``time.perf_counter()`` then."""
    deadline = time.monotonic() + timeout
    while pipe.summary.alerts + pipe.summary.bad_alerts < n:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{pipe.summary.alerts} of {n} alerts stored after {timeout} s")
        time.sleep(0.02)
    return time.perf_counter()


def sample_stored(pipe, stop: threading.Event, every: float = 0.25) -> list[tuple[float, int]]:
    """(time, alerts stored) pairs every ``every`` seconds until ``stop`` is set (run in a thread)."""
    samples: list[tuple[float, int]] = []
    while not stop.is_set():
        samples.append((time.perf_counter(), pipe.summary.alerts))
        stop.wait(every)
    return samples


def steady_rate(samples: list[tuple[float, int]], start: float, end: float) -> float:
    """Alerts stored per second between ``start`` and ``end`` (nearest samples)."""
    inside = [(t, n) for t, n in samples if start <= t <= end]
    if len(inside) < 2:
        return float("nan")
    (t0, n0), (t1, n1) = inside[0], inside[-1]
    return (n1 - n0) / (t1 - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n-objects", type=int, default=6000)
    parser.add_argument("--history-nights", type=int, default=2,
                        help="earlier simulated nights replayed into the store first (0: every "
                             "object of the live night is new, the cold-start worst case)")
    parser.add_argument("--rate", type=float, default=350.0, help="alerts/s produced")
    parser.add_argument("--seconds", type=float, default=30.0, help="how long to produce")
    parser.add_argument("--batch-size", type=int, default=2000)
    parser.add_argument("--store", default=None,
                        help="store URL (default: a SQLite file in a temporary directory); "
                             "'postgresql' starts a throw-away PostgreSQL server")
    parser.add_argument("--no-features", action="store_true")
    parser.add_argument("--workers", type=int, default=2, help="LocalCluster worker processes")
    parser.add_argument("--threads", type=int, default=1, help="threads per worker")
    parser.add_argument("--lanes", type=int, default=None, help="object lanes (default: all worker threads)")
    parser.add_argument("--linger", type=float, default=1.0, help="LivePipeline linger (s)")
    parser.add_argument("--max-batches", type=int, default=1,
                        help="LivePipeline max_batches_in_flight")
    parser.add_argument("--classifiers", action="store_true",
                        help="also run the stamp and light-curve classifiers")
    parser.add_argument("--warm-up", type=int, default=500,
                        help="alerts processed before the measurement starts")
    parser.add_argument("--burst", type=int, default=3000,
                        help="alerts produced at once after the sustained phase (capacity)")
    args = parser.parse_args()
    warnings.simplefilter("ignore")

    from distributed import Client
    from kafka_broker import TansuBroker

    from alerce.simulate import simulate
    from alerce.store import Store
    from alerce.streams.cluster import local_cluster, warm_up
    from alerce.streams.kafka import AlertConsumer, close_producers, create_topics, produce_packets
    from alerce.streams.live import LivePipeline
    from alerce.streams.steps import PipelineConfig

    tmp = Path(tempfile.mkdtemp(prefix="alerce-bench-live-"))
    atexit.register(shutil.rmtree, tmp, True)  # simulated nights and stores take GBs
    simulate(tmp / "sim", n_objects=args.n_objects, seed=5, nights=args.history_nights + 1)
    nights = sorted(p for p in (tmp / "sim").iterdir() if p.is_dir())
    history, live_night = nights[:-1], nights[-1]
    payloads = [p.read_bytes() for p in sorted(live_night.glob("*.avro"))]
    print(f"simulated {args.n_objects} objects; live night {live_night.name}: {len(payloads)} alerts, "
          f"{sum(map(len, payloads)) / 1e6:.1f} MB; {len(history)} earlier night(s) as history")
    broker = TansuBroker(tmp)
    broker.start()
    pg = None
    try:
        # 1. consume throughput
        topic = "bench_consume"
        create_topics(broker.bootstrap, [topic], partitions=2)
        produce_packets(broker.bootstrap, topic, payloads)
        plain_s, nbytes = consume_all(broker.bootstrap, topic, ours=False, expected=len(payloads))
        ours_s, _ = consume_all(broker.bootstrap, topic, ours=True, expected=len(payloads))
        print(f"consume plain confluent-kafka: {nbytes / 1e6 / plain_s:,.1f} MB/s "
              f"({len(payloads) / plain_s:,.0f} msg/s)")
        print(f"consume AlertConsumer:         {nbytes / 1e6 / ours_s:,.1f} MB/s "
              f"({len(payloads) / ours_s:,.0f} msg/s); ratio {plain_s / ours_s:.2f}")

        # 2. sustained rate and latency, measured once the pipeline is running
        topic = "ztf_20240101_programid1"
        create_topics(broker.bootstrap, [topic], partitions=2)
        n_warm = min(args.warm_up, len(payloads) // 4)
        n_send = min(len(payloads) - n_warm, int(args.rate * args.seconds))
        n_burst = min(args.burst, len(payloads) - n_warm - n_send)

        with local_cluster(args.workers, threads_per_worker=args.threads) as cluster, \
                Client(cluster, set_as_default=False) as client:
            url = args.store or f"sqlite:///{tmp / 'live.db'}"
            if url == "postgresql":
                from pg import PgServer, find_pg_bin

                pg = PgServer(find_pg_bin())
                pg.start()
                url = pg.url(pg.create_database())
            Store(url).close()
            if history:
                from alerce.streams.replay import replay

                t0 = time.perf_counter()
                r = replay([str(p) for p in history], store=url, client=client,
                           features=not args.no_features or args.classifiers)
                print(f"history: {r.alerts} alerts of {len(history)} earlier night(s) replayed into "
                      f"the store in {time.perf_counter() - t0:.0f} s (not timed below)")
            t_start = time.perf_counter()
            warm_up(client, features=not args.no_features or args.classifiers)
            consumer = AlertConsumer(broker.bootstrap, topic, "bench", session_timeout_ms=6000,
                                     heartbeat_interval_ms=500)
            config = PipelineConfig(store_url=url, features=not args.no_features or args.classifiers,
                                    stamp_classifier=args.classifiers,
                                    lc_classifier=args.classifiers)
            pipe = LivePipeline(consumer, client, config, batch_size=args.batch_size,
                                poll_timeout=0.5, max_batches_in_flight=args.max_batches, n_lanes=args.lanes,
                                linger=args.linger)
            runner = threading.Thread(target=pipe.run, daemon=True)
            runner.start()
            # warm-up alerts: group join, worker warm caches; not part of the figures
            produce_packets(broker.bootstrap, topic, payloads[:n_warm])
            wait_stored(pipe, n_warm)
            print(f"pipeline ready {time.perf_counter() - t_start:.1f} s after start "
                  f"(kernel warm-up, group join, {n_warm} warm-up alerts stored)")

            done = n_warm
            lat0 = len(pipe.summary.latencies)
            cpu0 = cpu_seconds()
            stop, samples = threading.Event(), []
            sampler = threading.Thread(target=lambda: samples.extend(sample_stored(pipe, stop)), daemon=True)
            t0 = time.perf_counter()
            sampler.start()
            produce_at_rate(broker.bootstrap, topic, payloads[done:done + n_send], args.rate)
            t_produced = time.perf_counter() - t0
            t_stored = wait_stored(pipe, done + n_send) - t0
            stop.set()
            sampler.join()
            done += n_send
            cpu1 = cpu_seconds()
            lat = np.array(pipe.summary.latencies[lat0:])
            print(f"sustained: produced {n_send} alerts at {args.rate:.0f}/s over {t_produced:.1f} s; "
                  f"all stored {t_stored - t_produced:.1f} s after the last was produced "
                  f"({n_send / t_stored:,.0f} alerts/s over the run)")
            # steady state: the store rate while alerts arrive, from 10 s in (the pipeline has caught
            # up with the first batches) to the end of production; keeping up means ~ the offered rate
            print(f"stored while producing (from 10 s in to the last produce): "
                  f"{steady_rate(samples, t0 + 10.0, t0 + t_produced):,.0f} alerts/s")
            if len(lat):
                p50, p95, p99 = np.percentile(lat, [50, 95, 99])
                print(f"latency produce->stored: p50 {p50:.2f} s  p95 {p95:.2f} s  p99 {p99:.2f} s  "
                      f"max {lat.max():.2f} s")
                fifth = max(1, len(lat) // 5)
                print(f"latency drift: median of the first fifth {np.median(lat[:fifth]):.2f} s, "
                      f"of the last fifth {np.median(lat[-fifth:]):.2f} s (a pipeline that falls behind "
                      "grows by the backlog / its rate)")
            busy = {k: [(cpu1[k][i] - cpu0.get(k, (0.0, 0.0))[i]) / t_stored for i in (0, 1)] for k in cpu1}
            print("CPU during the sustained phase (cores busy on average, of which in the kernel): " + ", ".join(
                f"{k} {sum(v):.2f} ({v[1]:.2f})" for k, v in busy.items()))

            # 3. capacity: a backlog produced at once, drained as fast as the pipeline can
            if n_burst:
                produce_packets(broker.bootstrap, topic, payloads[done:done + n_burst])
                t0 = time.perf_counter()
                t_drained = wait_stored(pipe, done + n_burst) - t0
                print(f"capacity: a backlog of {n_burst} alerts drained in {t_drained:.1f} s = "
                      f"{n_burst / t_drained:,.0f} alerts/s")
            pipe.stop()
            runner.join(timeout=120)
            print(f"summary: {pipe.summary.format()}")
            stages = "  ".join(f"{k} {v:.1f}" for k, v in pipe.summary.stages.items())
            print(f"worker seconds per stage (all batches): {stages}")
        close_producers()
    finally:
        broker.stop()
        if pg is not None:
            pg.stop()


if __name__ == "__main__":
    main()
