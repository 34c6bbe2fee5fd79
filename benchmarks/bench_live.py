"""Benchmark: the live pipeline on a local Kafka-protocol broker (tansu) and a 2-worker LocalCluster.

1. Kafka consume MB/s: our ``AlertConsumer`` (offset tracking, packets) against a plain
   confluent-kafka consumer loop over the same topic, in the same run.
2. Sustained throughput and latency: simulated alerts are produced at ``--rate`` alerts/s for
   ``--seconds`` while ``alerce.streams.live.stream`` processes them; latency is measured from the
   message's produce timestamp to the moment its batch is stored (p50/p95/p99).

Usage::

    python benchmarks/bench_live.py [--n-objects 1500] [--rate 350] [--seconds 30]
"""

from __future__ import annotations

import argparse
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n-objects", type=int, default=1500)
    parser.add_argument("--rate", type=float, default=350.0, help="alerts/s produced")
    parser.add_argument("--seconds", type=float, default=30.0, help="how long to produce")
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--store", default=None,
                        help="store URL (default: a SQLite file in a temporary directory); "
                             "'postgresql' starts a throw-away PostgreSQL server")
    parser.add_argument("--no-features", action="store_true")
    args = parser.parse_args()
    warnings.simplefilter("ignore")

    from distributed import Client, LocalCluster
    from kafka_broker import TansuBroker

    from alerce.simulate import simulate
    from alerce.streams.kafka import close_producers, create_topics, produce_packets
    from alerce.streams.live import stream

    tmp = Path(tempfile.mkdtemp(prefix="alerce-bench-live-"))
    simulate(tmp / "night", n_objects=args.n_objects, seed=5, nights=1)
    payloads = [p.read_bytes() for p in sorted((tmp / "night").rglob("*.avro"))]
    print(f"simulated {len(payloads)} alerts, {sum(map(len, payloads)) / 1e6:.1f} MB")
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

        # 2. sustained rate and latency
        topic = "ztf_20240101_programid1"
        create_topics(broker.bootstrap, [topic], partitions=2)
        n_send = min(len(payloads), int(args.rate * args.seconds))
        sent = {"n": 0, "t_end": None}

        def _producer():
            t_start = time.perf_counter()
            chunk = max(1, int(args.rate / 10))
            for i in range(0, n_send, chunk):
                produce_packets(broker.bootstrap, topic, payloads[i:i + chunk])
                sent["n"] += len(payloads[i:i + chunk])
                delay = t_start + sent["n"] / args.rate - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
            sent["t_end"] = time.perf_counter()

        with LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None) as cluster, \
                Client(cluster, set_as_default=False) as client:
            from alerce.streams.cluster import warm_up

            warm_up(client)
            url = args.store or f"sqlite:///{tmp / 'live.db'}"
            if url == "postgresql":
                from pg import PgServer, find_pg_bin

                pg = PgServer(find_pg_bin())
                pg.start()
                url = pg.url(pg.create_database())
            producer = threading.Thread(target=_producer, daemon=True)
            t0 = time.perf_counter()
            producer.start()
            summary = stream(broker.bootstrap, topic, "bench", store=url, client=client,
                             batch_size=args.batch_size, poll_timeout=0.5, idle_timeout=5,
                             consumer_settings={"session_timeout_ms": 6000,
                                                "heartbeat_interval_ms": 500},
                             handle_signals=False, features=not args.no_features)
            producer.join()
            wall = time.perf_counter() - t0 - 5.0  # minus the idle timeout that ends the run
        lat = np.array(summary.latencies)
        print(f"produced {sent['n']} alerts at {args.rate:.0f}/s; stored {summary.alerts} "
              f"(bad {summary.bad_alerts}) in {wall:.1f} s = {summary.alerts / wall:,.0f} alerts/s")
        if len(lat):
            p50, p95, p99 = np.percentile(lat, [50, 95, 99])
            print(f"latency produce->stored: p50 {p50:.2f} s  p95 {p95:.2f} s  p99 {p99:.2f} s")
        close_producers()
    finally:
        broker.stop()
        if pg is not None:
            pg.stop()


if __name__ == "__main__":
    main()
