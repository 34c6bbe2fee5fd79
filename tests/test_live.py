"""The live pipeline against a real Kafka-protocol broker (tansu) and a real Dask cluster.

Every scenario ends with the same checks: the store holds every produced alert exactly once
(``detection`` rows with ``has_stamp``, keyed on (oid, candid)), poison messages are in the
dead-letter directory with their reason, and the group's committed offsets never point past an
alert that is not stored.
"""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import fastavro
import pytest
from conftest import ROOT, shared
from kafka_broker import TansuBroker

pytest.importorskip("confluent_kafka")

from alerce.store import Store  # noqa: E402
from alerce.streams.kafka import close_producers, create_topics, produce_packets  # noqa: E402
from alerce.streams.live import stream  # noqa: E402
from alerce.streams.output import decode_message  # noqa: E402

#: Consumer settings that make tansu's group joins fast (seconds, not tens of seconds).
FAST_GROUP = {"session_timeout_ms": 6000, "heartbeat_interval_ms": 500,
              "topic_metadata_refresh_interval_ms": 1000}


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    from alerce.streams.kafka import close_producers

    b = TansuBroker(tmp_path_factory.mktemp("tansu"))
    b.start()
    yield b
    close_producers()
    b.stop()


def real_alerts(*folders: str) -> list[tuple[bytes, int]]:
    """(raw packet, candid) of the real alerts of some folders."""
    out = []
    for folder in folders:
        for path in sorted(shared("ztf", "alerts", folder).glob("*.avro")):
            data = path.read_bytes()
            recs = list(fastavro.reader(io.BytesIO(data)))
            if len(recs) == 1:
                out.append((data, int(recs[0]["candid"])))
    return out


POISON = [
    b"definitely not avro",                                   # garbage bytes
    None,                                                     # truncated Avro (filled below)
    b"\x00" + (9999).to_bytes(4, "big") + b"\x02\x04abc",     # Confluent wire, unknown schema id
]


def poison_messages(good: bytes) -> list[bytes]:
    msgs = list(POISON)
    msgs[1] = good[: len(good) // 3]
    return msgs


def stored_candids(url: str) -> list[int]:
    with Store(url) as st:
        det = st.read_table("detection", columns=["candid", "has_stamp"])
    return sorted(det.loc[det["has_stamp"].astype(bool), "candid"].astype("int64").tolist())


def committed(bootstrap: str, group: str, topic: str, partitions: int) -> dict[int, int]:
    from confluent_kafka import Consumer, TopicPartition

    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    try:
        got = c.committed([TopicPartition(topic, p) for p in range(partitions)], timeout=20)
        return {tp.partition: max(tp.offset, 0) for tp in got}
    finally:
        c.close()


def end_offsets(bootstrap: str, topic: str, partitions: int) -> dict[int, int]:
    """Next offset after the last message of each partition (read, not the broker's watermark)."""
    from alerce.streams.reconcile import kafka_packets

    ends = dict.fromkeys(range(partitions), 0)
    for p in kafka_packets(bootstrap, topic):
        _, part, off = p.source.rsplit("/", 2)
        ends[int(part)] = max(ends[int(part)], int(off) + 1)
    return ends


def read_topic(bootstrap: str, topic: str) -> list[bytes]:
    from alerce.streams.reconcile import kafka_packets

    return [p.payload for p in kafka_packets(bootstrap, topic)]


def new_topic(broker, partitions: int = 2, night: str = "20240101") -> str:
    topic = f"ztf_{night}_programid1_{uuid.uuid4().hex[:6]}"
    create_topics(broker.bootstrap, [topic], partitions=partitions)
    return topic


def test_live_end_to_end_with_poison_and_output(broker, dask_client, tmp_path):
    alerts = real_alerts("series_ZTF19aazzpje", "kowalski_v4.01_20231012_fp", "alerce_single")
    topic = new_topic(broker)
    produce_packets(broker.bootstrap, topic, [a for a, _ in alerts] + poison_messages(alerts[0][0]))
    url = f"sqlite:///{tmp_path / 'live.db'}"
    out_topic = f"annotated_{uuid.uuid4().hex[:6]}"
    dead = tmp_path / "dead"
    group = f"g-{uuid.uuid4().hex[:6]}"

    summary = stream(broker.bootstrap, "ztf_20240101_programid1_*", group, store=url,
                     output_topic=out_topic, dead_letter=str(dead), client=dask_client,
                     batch_size=10, idle_timeout=8, consumer_settings=FAST_GROUP,
                     handle_signals=False)

    expected = sorted({c for _, c in alerts})
    assert stored_candids(url) == expected                  # every alert, exactly once
    assert summary.bad_alerts == 3
    from alerce.io import read_dead_letters

    letters = read_dead_letters(dead)
    assert len(letters) == 3 and all(d.reason for d in letters)
    assert committed(broker.bootstrap, group, topic, 2) == end_offsets(broker.bootstrap, topic, 2)
    annotated = [decode_message(v) for v in read_topic(broker.bootstrap, out_topic)]
    assert sorted({m["candid"] for m in annotated}) == expected
    m = next(a for a in annotated if a["oid"] == "ZTF19aazzpje")
    assert m["object"]["ndet"] >= 1 and m["magstats"]
    dask_client.run(close_producers)


def test_pattern_subscription_moves_on_to_the_next_night(broker, dask_client, tmp_path):
    night1 = real_alerts("series_ZTF19aazzpje")[:7]
    night2 = real_alerts("series_ZTF19aazzpje")[7:]
    tag = uuid.uuid4().hex[:6]
    t1, t2 = f"ztf_20240326_{tag}", f"ztf_20240327_{tag}"
    create_topics(broker.bootstrap, [t1], partitions=1)
    produce_packets(broker.bootstrap, t1, [a for a, _ in night1])
    url = f"sqlite:///{tmp_path / 'nights.db'}"

    def _midnight():
        time.sleep(6)
        create_topics(broker.bootstrap, [t2], partitions=1)
        produce_packets(broker.bootstrap, t2, [a for a, _ in night2])

    threading.Thread(target=_midnight, daemon=True).start()
    stream(broker.bootstrap, f"^ztf_.*_{tag}$", f"g-{tag}", store=url, client=dask_client,
           batch_size=5, idle_timeout=15, consumer_settings=FAST_GROUP, handle_signals=False,
           features=False)
    assert stored_candids(url) == sorted({c for _, c in night1 + night2})


def test_worker_killed_mid_batch_loses_nothing(broker, tmp_path):
    from distributed import Client

    from alerce.streams.cluster import local_cluster

    alerts = real_alerts("series_ZTF19aazzpje", "kowalski_v4.01_20231012_fp", "fink_v3.3_20200101")
    topic = new_topic(broker)
    produce_packets(broker.bootstrap, topic, [a for a, _ in alerts])
    url = f"sqlite:///{tmp_path / 'kill.db'}"
    group = f"g-{uuid.uuid4().hex[:6]}"
    with local_cluster(2) as cluster, \
            Client(cluster, set_as_default=False) as client:
        killed = threading.Event()

        def _kill_one_worker():
            time.sleep(4)
            workers = list(client.scheduler_info()["workers"])
            try:
                client.run(os._exit, 1, workers=workers[:1])  # the nanny restarts it; its tasks rerun
            except OSError:  # CommClosedError: the worker died before it could answer
                killed.set()

        killer = threading.Thread(target=_kill_one_worker, daemon=True)
        killer.start()
        stream(broker.bootstrap, topic, group, store=url, client=client, batch_size=5,
               idle_timeout=10, consumer_settings=FAST_GROUP, handle_signals=False)
        killer.join(timeout=30)
    assert killed.is_set(), "the worker was not killed"
    assert stored_candids(url) == sorted({c for _, c in alerts})
    assert committed(broker.bootstrap, group, topic, 2) == end_offsets(broker.bootstrap, topic, 2)


def _run_cli_stream(bootstrap, topic, group, url, idle: float, log: Path) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "alerce.cli", "stream", "--kafka", bootstrap, "--topic", topic,
           "--group", group, "--store", url, "--batch-size", "4", "--idle-timeout", str(idle),
           "--max-batches-in-flight", "2", "--linger", "0.5", "--no-features"]
    env = {**os.environ, "ALERCE_KAFKA_CONFIG": str(log.parent / "fast.json")}
    (log.parent / "fast.json").write_text(
        '{"session.timeout.ms": 6000, "heartbeat.interval.ms": 500}')
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=open(log, "ab"), stderr=subprocess.STDOUT)


def test_pipeline_process_killed_and_restarted(broker, tmp_path):
    alerts = real_alerts("series_ZTF19aazzpje", "kowalski_v4.01_20231012_fp", "fink_v3.3_20200101")
    topic = new_topic(broker)
    produce_packets(broker.bootstrap, topic, [a for a, _ in alerts])
    url = f"sqlite:///{tmp_path / 'restart.db'}"
    group = f"g-{uuid.uuid4().hex[:6]}"
    log = tmp_path / "stream.log"

    proc = _run_cli_stream(broker.bootstrap, topic, group, url, idle=60, log=log)
    deadline = time.time() + 120
    while time.time() < deadline and len(stored_candids_safe(url)) < 5:
        time.sleep(0.5)
    proc.send_signal(signal.SIGKILL)  # no drain, no final commit
    proc.wait(30)
    # committed offsets never point past an alert that is not stored
    stored = set(stored_candids_safe(url))
    offsets = committed(broker.bootstrap, group, topic, 2)
    by_partition = _candids_by_offset(broker.bootstrap, topic)
    for p, off in offsets.items():
        if off >= 0:
            assert all(c in stored for o, c in by_partition.get(p, []) if o < off)

    proc = _run_cli_stream(broker.bootstrap, topic, group, url, idle=6, log=log)
    assert proc.wait(300) == 0, log.read_text()[-3000:]
    assert stored_candids(url) == sorted({c for _, c in alerts})
    assert committed(broker.bootstrap, group, topic, 2) == end_offsets(broker.bootstrap, topic, 2)


def stored_candids_safe(url: str) -> list[int]:
    try:
        return stored_candids(url)
    except Exception:  # noqa: BLE001 - the store may not exist yet
        return []


def _candids_by_offset(bootstrap: str, topic: str) -> dict[int, list[tuple[int, int]]]:
    from alerce.streams.reconcile import kafka_packets

    out: dict[int, list[tuple[int, int]]] = {}
    for p in kafka_packets(bootstrap, topic):
        _, part, off = p.source.rsplit("/", 2)
        rec = next(iter(fastavro.reader(io.BytesIO(p.payload))))
        out.setdefault(int(part), []).append((int(off), int(rec["candid"])))
    return out


def test_store_outage_is_retried(broker, dask_client, tmp_path, pg_server):
    """PostgreSQL stopped for a while: batches fail, are retried, nothing is committed early."""
    alerts = real_alerts("series_ZTF19aazzpje", "kowalski_v4.01_20231012_fp")
    topic = new_topic(broker)
    produce_packets(broker.bootstrap, topic, [a for a, _ in alerts])
    name = pg_server.create_database()
    url = pg_server.url(name)
    Store(url).close()
    group = f"g-{uuid.uuid4().hex[:6]}"
    pg_ctl = str(pg_server.bindir / "pg_ctl")

    def _outage():
        time.sleep(3)
        pg_server._run(pg_ctl, "-D", str(pg_server.data), "-m", "fast", "-w", "stop")
        time.sleep(8)
        opts = (f"-p {pg_server.port} -k {pg_server.root} -c listen_addresses=127.0.0.1 "
                "-c fsync=off -c max_connections=60")
        pg_server._run(pg_ctl, "-D", str(pg_server.data), "-o", opts, "-l", str(pg_server.log),
                       "-w", "-t", "60", "start")

    t = threading.Thread(target=_outage, daemon=True)
    t.start()
    summary = stream(broker.bootstrap, topic, group, store=url, client=dask_client, batch_size=4,
                     idle_timeout=20, consumer_settings=FAST_GROUP, handle_signals=False,
                     features=False)
    t.join()
    assert stored_candids(url) == sorted({c for _, c in alerts})
    assert summary.bad_alerts == 0
    assert committed(broker.bootstrap, group, topic, 2) == end_offsets(broker.bootstrap, topic, 2)


def test_reconcile_pushes_missing_alerts(broker, dask_client, tmp_path):
    from alerce.streams.reconcile import reconcile
    from alerce.streams.replay import replay

    alerts = real_alerts("series_ZTF19aazzpje", "alerce_single")
    topic = new_topic(broker)
    produce_packets(broker.bootstrap, topic, [a for a, _ in alerts])
    url = f"sqlite:///{tmp_path / 'rec.db'}"
    # store only part of the night, as if a crash had lost the rest
    part = sorted(shared("ztf", "alerts", "series_ZTF19aazzpje").glob("*.avro"))[:5]
    replay([str(p) for p in part], store=url, client=dask_client, features=False)
    before = len(stored_candids(url))
    report = reconcile(url, kafka=broker.bootstrap, topics=topic, client=dask_client)
    assert report.in_source == len(alerts)
    assert report.in_store_before == before
    assert report.missing == len(alerts) - before
    assert report.pushed == report.missing and report.missing_after == 0
    assert stored_candids(url) == sorted({c for _, c in alerts})



def test_broker_restart_keeps_the_pipeline_going(tmp_path, dask_client):
    """tansu keeps its log in memory here: a restart loses the broker's data, not ours.

    Alerts stored before the restart stay stored; the consumer reconnects, its offsets are reset
    to the new log (a new tracker epoch), and alerts produced after the restart are all stored.
    """
    b = TansuBroker(tmp_path)
    b.start()
    try:
        before = real_alerts("series_ZTF19aazzpje")
        after = real_alerts("kowalski_v4.01_20231012_fp")
        topic = "ztf_20240105_programid1"
        create_topics(b.bootstrap, [topic], partitions=1)
        produce_packets(b.bootstrap, topic, [a for a, _ in before])
        url = f"sqlite:///{tmp_path / 'restart_broker.db'}"
        result = {}

        def _run():
            result["summary"] = stream(b.bootstrap, topic, "g-restart", store=url, client=dask_client,
                                       batch_size=5, idle_timeout=25, consumer_settings=FAST_GROUP,
                                       handle_signals=False, features=False)

        runner = threading.Thread(target=_run)
        runner.start()
        deadline = time.time() + 180
        while time.time() < deadline and len(stored_candids_safe(url)) < len(before):
            time.sleep(0.5)
        assert stored_candids(url) == sorted({c for _, c in before})
        close_producers()
        b.restart()
        create_topics(b.bootstrap, [topic], partitions=1)
        produce_packets(b.bootstrap, topic, [a for a, _ in after])
        runner.join(300)
        assert not runner.is_alive()
        assert stored_candids(url) == sorted({c for _, c in before + after})
    finally:
        close_producers()
        b.stop()


def test_batches_in_flight_are_bounded_and_held_back_messages_coalesce(broker, dask_client, tmp_path):
    """While ``max_batches_in_flight`` batches run, polled messages wait in one pending batch."""
    from alerce.simulate import simulate
    from alerce.streams.kafka import AlertConsumer
    from alerce.streams.live import LivePipeline
    from alerce.streams.steps import PipelineConfig

    simulate(tmp_path / "night", n_objects=40, seed=3)
    payloads = [p.read_bytes() for p in sorted((tmp_path / "night").rglob("*.avro"))]
    topic = new_topic(broker)
    produce_packets(broker.bootstrap, topic, payloads)
    url = f"sqlite:///{tmp_path / 'live.db'}"
    Store(url).close()
    consumer = AlertConsumer(broker.bootstrap, topic, f"g-{uuid.uuid4().hex[:6]}", **FAST_GROUP)
    pipe = LivePipeline(consumer, dask_client, PipelineConfig(store_url=url, features=False),
                        batch_size=25, poll_timeout=0.2, max_batches_in_flight=1)
    held_back = 0
    deadline = time.monotonic() + 120
    while (pipe.summary.alerts + pipe.summary.bad_alerts < len(payloads)
           and time.monotonic() < deadline):
        pipe.step()
        assert pipe._batches_in_flight() <= 1
        assert len(pipe._pending[0]) <= 25
        held_back += bool(pipe._pending[0])
        assert pipe.in_flight() >= bool(pipe._pending[0])
    pipe.run(idle_timeout=1)  # drain and close
    assert pipe.summary.alerts == len(payloads) and pipe.summary.bad_alerts == 0
    assert held_back > 0                                     # messages did wait for room
    assert pipe.summary.batches <= -(-len(payloads) // 25) + 1
    assert set(pipe.summary.stages) >= {"load", "process", "write", "write_wait"}
    with Store(url) as st:
        det = st.read_table("detection", columns=["candid", "has_stamp"])
    assert int(det["has_stamp"].astype(bool).sum()) == len(payloads)


class _TrickleConsumer:
    """Stands in for AlertConsumer: one message per poll, nothing to commit."""

    def __init__(self):
        self.offset = 0

    def poll_batch(self, n, timeout):
        from alerce.io.sources import Packet
        from alerce.streams.kafka import MessageRef

        self.offset += 1
        return [Packet(f"t/0/{self.offset}", b"x")], [MessageRef("t", 0, self.offset)]

    def commit(self):
        return False

    def done(self, refs):
        pass

    def close(self):
        pass


@pytest.mark.parametrize("linger, expected_in_flight", [(0.0, 2), (60.0, 1)])
def test_linger_holds_a_partial_batch_while_another_runs(dask_client, tmp_path, linger, expected_in_flight):
    from alerce.streams.live import LivePipeline
    from alerce.streams.steps import PipelineConfig

    pipe = LivePipeline(_TrickleConsumer(), dask_client, PipelineConfig(store_url=f"sqlite:///{tmp_path / 's.db'}"),
                        batch_size=10, max_batches_in_flight=2, linger=linger)
    emitted = []

    def record(entry):  # stands in for the cluster: entries stay in flight
        emitted.append(entry)
        pipe._fifo.append(entry)

    pipe._emit = record
    for _ in range(5):
        pipe.step()
    # the first message leaves at once (nothing in flight); with a linger the next ones wait for more
    assert pipe._batches_in_flight() == expected_in_flight
    assert len(emitted[0].refs) == 1
    if linger:
        assert len(pipe._pending[0]) == 4
        for _ in range(10):
            pipe.step()
        assert len(emitted) == 2 and len(emitted[1].refs) == 10  # a full batch leaves without waiting
