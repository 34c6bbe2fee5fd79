"""Integrity check (paper section 4.8): compare what a source holds with what the store holds.

``reconcile`` re-reads a night (a Kafka topic from its first offset, or an archive directory),
compares its alert candids with the alerts in the store (``detection`` rows with ``has_stamp``),
pushes the missing packets through the same pipeline and reports the counts.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from alerce.io import Packet


@dataclass
class ReconcileReport:
    """Counts of a reconcile run."""

    in_source: int = 0
    bad_in_source: int = 0
    in_store_before: int = 0
    missing: int = 0
    pushed: int = 0
    missing_after: int = 0
    missing_candids: list[int] = field(default_factory=list)

    def format(self) -> str:
        return (f"alerts in source {self.in_source:,} (undecodable {self.bad_in_source:,}); "
                f"already stored {self.in_store_before:,}; missing {self.missing:,}; "
                f"pushed {self.pushed:,}; still missing {self.missing_after:,}")


def kafka_packets(bootstrap: str, topics: str | Sequence[str], timeout: float = 10.0,
                  idle: float = 3.0) -> Iterator[Packet]:
    """Every message of the topics from the first offset (no group membership, no commits).

    Reading stops once every partition reached its high watermark *and* no message arrived for
    ``idle`` seconds: some Kafka-protocol brokers under-report the watermark of batched
    produces, so the watermark alone is not trusted as the end.
    """
    import time

    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

    from alerce.streams.kafka import kafka_config

    if isinstance(topics, str):
        topics = [t for t in topics.split(",") if t]
    consumer = Consumer(kafka_config(bootstrap, group_id="alerce-reconcile", enable_auto_commit=False,
                                     enable_partition_eof=False))
    try:
        meta = consumer.list_topics(timeout=timeout)
        ends: dict[tuple[str, int], int] = {}
        assign = []
        for t in topics:
            if t not in meta.topics:
                raise ValueError(f"topic {t!r} does not exist on {bootstrap}")
            for p in meta.topics[t].partitions:
                _, high = consumer.get_watermark_offsets(TopicPartition(t, p), timeout=timeout)
                ends[(t, p)] = high
                assign.append(TopicPartition(t, p, OFFSET_BEGINNING))
        consumer.assign(assign)
        last = time.monotonic()
        while True:
            msgs = consumer.consume(num_messages=1000, timeout=min(1.0, idle))
            for m in msgs:
                if m.error() is not None:
                    continue
                key = (m.topic(), m.partition())
                ends[key] = max(ends.get(key, 0), 0)
                if m.offset() + 1 >= ends[key]:
                    ends[key] = -1  # watermark reached
                yield Packet(f"{m.topic()}/{m.partition()}/{m.offset()}", m.value() or b"")
            if msgs:
                last = time.monotonic()
            elif all(v <= 0 for v in ends.values()) and time.monotonic() - last >= idle:
                break
            elif time.monotonic() - last >= max(idle, timeout) * 3:
                break  # a partition never reached its reported watermark
    finally:
        consumer.close()


def reconcile(store: str, *, kafka: str | None = None, topics: str | Sequence[str] | None = None,
              archive: str | Sequence[str] | None = None, push: bool = True, client=None,
              batch_size: int = 2000, chunk: int = 5000) -> ReconcileReport:
    """Find the source's alerts missing from the store and push them through the pipeline.

    Parameters
    ----------
    store : str
        Store URL.
    kafka, topics : str, optional
        Re-read these topics from their first offset.
    archive : str or list of str, optional
        Or re-read archived packets (files, directories, tarballs, URLs).
    push : bool
        Process the missing packets (same nodes as replay/live); otherwise only report.
    """
    import pandas as pd

    from alerce.io import decode_packets, iter_packets
    from alerce.store import Store
    from alerce.streams.replay import replay_packets

    if (kafka is None) == (archive is None):
        raise ValueError("give either kafka= and topics=, or archive=")
    packets = kafka_packets(kafka, topics) if kafka is not None else iter_packets(archive)
    with Store(store) as st:
        det = st.read_table("detection", columns=["oid", "candid", "has_stamp"])
    stored = set(det.loc[det["has_stamp"].astype(bool), "candid"].astype("int64"))
    report = ReconcileReport(in_store_before=len(stored))
    missing_packets: list[Packet] = []
    buf: list[Packet] = []

    def _check(batch_packets: list[Packet]) -> None:
        batch = decode_packets(batch_packets, keep_stamps=False)
        report.bad_in_source += len(batch.dead_letters)
        alerts = batch.alerts
        report.in_source += len(alerts)
        if not len(alerts):
            return
        missing = alerts[~alerts["candid"].astype("int64").isin(stored)]
        report.missing_candids.extend(missing["candid"].astype("int64").tolist())
        sources = set(missing["source"])
        missing_packets.extend(p for p in batch_packets if p.source in sources)

    for p in packets:
        buf.append(p)
        if len(buf) >= chunk:
            _check(buf)
            buf = []
    if buf:
        _check(buf)
    report.missing = len(report.missing_candids)
    if push and missing_packets:
        summary = replay_packets(missing_packets, store=store, client=client, batch_size=batch_size)
        report.pushed = summary.alerts
    with Store(store) as st:
        det = st.read_table("detection", columns=["oid", "candid", "has_stamp"])
    now = set(det.loc[det["has_stamp"].astype(bool), "candid"].astype("int64"))
    report.missing_after = int(pd.Index(report.missing_candids).isin(list(now)).__invert__().sum())
    return report
